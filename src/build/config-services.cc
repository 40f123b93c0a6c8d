// The application's services of a configuration file, their commands split as sh would, and
// what the runner's services.json says of them (services-format.hh writes it).
#include "config-layer.hh"
#include "nginx-words.hh"
#include "services-format.hh"

#include <algorithm>
#include <cstring>

namespace grocker {

namespace config {

void FileLayer::services(const Entry& e)
{
    if (e.value.IsNull()) return;
    if (!e.value.IsMap()) return expected(e, "a mapping of service name: service");
    for (auto& s : entries(e.value, e.path)) {
        if (s.key == "cron") {
            for (auto& [text, node] : scalarItems(s, "a list of crontab lines", "a crontab line")) {
                if (auto p = checkCronLine(text))
                    problem(node, s.path, *p);
                else
                    appendUnique(config_.crontab, std::string(trimmed(text)));
            }
            continue;
        }
        if (!isPlainName(s.key)) {
            problem(
                s.keyNode, e.path,
                concat(quote(s.key), " is not a service name (letters, digits, '.', '_' and '-')"));
            continue;
        }
        if (!s.value.IsMap()) {
            expected(s, "a mapping with 'wsgi' or 'command'");
            continue;
        }
        size_t before = problems_.size();
        auto svc = service(s);
        if (problems_.size() == before) config_.services[s.key] = svc;
    }
}

Service FileLayer::service(const Entry& s)
{
    Service svc;
    auto fields = entries(s.value, s.path);
    auto has = [&](std::string_view k) {
        return std::any_of(fields.begin(), fields.end(),
                           [&](const Entry& f) { return f.key == k; });
    };
    if (has("wsgi") && has("command"))
        problem(s.keyNode, s.path, "a service has 'wsgi' or 'command', not both");
    else if (!has("wsgi") && !has("command"))
        problem(s.keyNode, s.path, "a service needs 'wsgi' (a WSGI application) or 'command'");
    svc.kind = has("wsgi") ? Service::Kind::Wsgi : Service::Kind::Command;
    for (auto& f : fields) {
        bool wsgiOnly = f.key == "static" || f.key == "media" || f.key == "processes";
        if (wsgiOnly && has("command") && !has("wsgi")) {
            problem(f.keyNode, f.path, concat("only wsgi services have '", f.key, "'"));
        } else if (f.key == "wsgi") {
            if (auto v = scalar(f, "'module:callable'")) {
                if (auto p = checkWsgi(*v))
                    problem(f.value, f.path, *p);
                else
                    svc.wsgi = *v;
            }
        } else if (f.key == "static") {
            statics(f, svc.statics);
        } else if (f.key == "media") {
            if (auto v = scalar(f, "an absolute path")) {
                if (auto p = checkServedFolder(*v, "the media folder"))
                    problem(f.value, f.path, *p);
                else
                    svc.media = *v;
            }
        } else if (f.key == "processes") {
            if (auto v = scalar(f, "a number of processes")) {
                if (auto n = smallInt(*v, 1, 64))
                    svc.processes = *n;
                else
                    problem(f.value, f.path,
                            concat(quote(*v), " is not a number of processes (1 to 64)"));
            }
        } else if (f.key == "command") {
            command(f, svc.command);
        } else {
            problem(f.keyNode, f.path, unknownKey(f.key, serviceKeys));
        }
    }
    return svc;
}

void FileLayer::statics(const Entry& f, std::map<std::string, std::string>& to)
{
    if (f.value.IsNull()) return;
    if (!f.value.IsMap()) return expected(f, "a mapping of URL prefix: folder");
    for (auto& s : entries(f.value, f.path)) {
        if (!s.key.starts_with('/') || !s.key.ends_with('/')) {
            problem(s.keyNode, f.path,
                    concat("URL prefix ", quote(s.key), " must start and end with '/'"));
            continue;
        }
        if (auto p = entrypoint::staticPrefixProblem(s.key); !p.empty()) {
            problem(s.keyNode, s.path, p);
            continue;
        }
        auto v = scalar(s, "a folder");
        if (!v) continue;
        if (auto p = checkServedFolder(*v, "a static folder"))
            problem(s.value, f.path, concat("folder ", *p));
        else
            to[s.key] = *v;
    }
}

void FileLayer::command(const Entry& f, std::vector<std::string>& to)
{
    if (f.value.IsScalar()) {
        try {
            to = splitCommand(f.value.Scalar());
        } catch (const UsageError& e) {
            return problem(f.value, f.path, e.message());
        }
    } else if (f.value.IsSequence()) {
        for (auto& [text, node] : scalarItems(f, "", "a string"))
            to.push_back(text);
        if (to.size() != f.value.size()) return; // a bad item, said already
    } else {
        return expected(f, "a string or a list of strings");
    }
    if (to.empty() || to[0].empty())
        problem(whereOf(f), f.path, "the command is empty");
    else if (std::any_of(to.begin(), to.end(),
                         [](const std::string& w) { return w.find('\0') != std::string::npos; }))
        problem(whereOf(f), f.path,
                "the command holds a NUL character, which no program's argument can carry");
}

nlohmann::json serviceJson(const Service& s)
{
    using nlohmann::json;
    if (s.kind == Service::Kind::Command) return json{{"command", s.command}};
    json j{{"wsgi", s.wsgi}, {"static", s.statics}, {"processes", s.processes}};
    if (!s.media.empty()) j["media"] = s.media;
    return j;
}

} // namespace config

std::string servicesJson(const Config& c, const std::string& app, const std::string& version,
                         const std::string& venv, const std::string& uwsgiPlugin)
{
    entrypoint::Services out{app, version, venv, uwsgiPlugin, {}, c.crontab};
    for (const auto& [name, s] : c.services) {
        if (s.kind == Service::Kind::Command) {
            out.services.push_back({name, entrypoint::CommandService{s.command}});
        } else {
            entrypoint::WsgiService w{
                s.wsgi, {s.statics.begin(), s.statics.end()}, s.media, s.processes};
            out.services.push_back({name, std::move(w)});
        }
    }
    return entrypoint::writeServices(out);
}

std::vector<std::string> splitCommand(const std::string& s)
{
    std::vector<std::string> words;
    std::string word;
    bool inWord = false;
    auto bad = [&](std::string_view why) { return UsageError(why, " in ", config::quote(s)); };
    for (size_t i = 0; i < s.size(); i++) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\n') {
            if (inWord) words.push_back(std::move(word)), word.clear(), inWord = false;
            continue;
        }
        inWord = true;
        if (c == '\'') {
            auto end = s.find('\'', i + 1);
            if (end == std::string::npos) throw bad("unterminated '");
            word += s.substr(i + 1, end - i - 1);
            i = end;
        } else if (c == '"') {
            // Inside "…", '\' escapes only what sh lets it escape.
            for (i++;; i++) {
                if (i >= s.size()) throw bad("unterminated \"");
                if (s[i] == '"') break;
                if (s[i] == '\\' && i + 1 < s.size() && std::strchr("\"\\$`", s[i + 1])) i++;
                word += s[i];
            }
        } else if (c == '\\') {
            if (i + 1 >= s.size()) throw bad("a lone '\\' at the end");
            word += s[++i];
        } else {
            word += c;
        }
    }
    if (inWord) words.push_back(std::move(word));
    return words;
}

} // namespace grocker
