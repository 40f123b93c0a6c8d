#include "services-format.hh"

#include "nginx-words.hh"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace grocker::entrypoint {

namespace {

using Json = nlohmann::ordered_json;

// What a JSON value is, in a message: `"4"` → a string, `4` → a number.
std::string describe(const Json& v)
{
    std::string text = v.dump();
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    return concat(v.type_name(), " ", text);
}

// Present and not null: `grocker build` may write null for an optional key it has no value for.
bool has(const Json& obj, const char* key)
{
    return obj.contains(key) && !obj[key].is_null();
}

// `a.b.c`: Python identifiers joined by dots.
bool isDottedName(std::string_view s)
{
    size_t start = 0;
    for (;;) {
        auto dot = s.find('.', start);
        if (!isIdentifier(s.substr(start, dot == std::string_view::npos ? dot : dot - start)))
            return false;
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
    }
}

bool isServiceName(std::string_view s)
{
    if (s.empty() || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'))
            return false;
    return true;
}

class Checker {
  public:
    explicit Checker(std::string source) : source_(std::move(source)) {}

    void problem(const std::string& key, const std::string& what)
    {
        problems_.push_back(source_ + ": " + (key.empty() ? "" : key + ": ") + what);
    }
    const std::vector<std::string>& problems() const { return problems_; }

    void unknownKeys(const Json& obj, const std::string& key, const std::vector<std::string>& known)
    {
        for (auto& [k, v] : obj.items()) {
            bool ok = false;
            for (auto& n : known)
                ok |= n == k;
            if (!ok)
                problem(key.empty() ? k : key + "." + k,
                        concat("unknown key (known: ", join(known, ", "), ")"));
        }
    }

    std::string string(const Json& v, const std::string& key)
    {
        if (!v.is_string()) {
            problem(key, concat("must be a string, not ", describe(v)));
            return {};
        }
        auto s = v.get<std::string>();
        if (s.find('\0') != std::string::npos) problem(key, "must not hold a NUL character");
        return s;
    }

    // An absolute folder that nginx can name (no spaces, quotes, `;{}$#\`).
    std::string folder(const Json& v, const std::string& key)
    {
        auto s = string(v, key);
        if (!v.is_string()) return s;
        if (s.empty() || s[0] != '/')
            problem(key, concat("must be an absolute path, not '", s, "'"));
        else if (!isPlainNginxWord(s))
            problem(key, concat("'", s, "' ", nginxMisreads, ": rename the folder"));
        return s;
    }

  private:
    std::string source_;
    std::vector<std::string> problems_;
};

WsgiService parseWsgi(Checker& c, const Json& s, const std::string& key)
{
    WsgiService w;
    c.unknownKeys(s, key, {"kind", "wsgi", "static", "media", "processes"});
    if (!has(s, "wsgi")) {
        c.problem(key, "a wsgi service needs 'wsgi': MODULE:CALLABLE, as myapp.wsgi:application");
    } else {
        w.callable = c.string(s["wsgi"], key + ".wsgi");
        if (s["wsgi"].is_string()) {
            auto colon = w.callable.find(':');
            if (colon == std::string::npos ||
                !isDottedName(std::string_view(w.callable).substr(0, colon)) ||
                !isDottedName(std::string_view(w.callable).substr(colon + 1)))
                c.problem(key + ".wsgi",
                          concat("'", w.callable,
                                 "' must be MODULE:CALLABLE, as myapp.wsgi:application"));
        }
    }
    if (has(s, "static")) {
        auto& st = s["static"];
        if (!st.is_object()) {
            c.problem(key + ".static",
                      concat("must be an object of URL prefix → folder, not ", describe(st)));
        } else {
            for (auto& [prefix, dir] : st.items()) {
                auto k = key + ".static." + prefix;
                if (auto p = staticPrefixProblem(prefix); !p.empty()) c.problem(k, p);
                w.statics.emplace_back(prefix, c.folder(dir, k));
            }
        }
    }
    if (has(s, "media")) w.media = c.folder(s["media"], key + ".media");
    if (has(s, "processes")) {
        auto& p = s["processes"];
        if (!p.is_number_integer() || p.get<long long>() < 1 || p.get<long long>() > 512)
            c.problem(key + ".processes",
                      concat("must be a whole number from 1 to 512, not ", describe(p)));
        else
            w.processes = p.get<int>();
    }
    return w;
}

CommandService parseCommand(Checker& c, const Json& s, const std::string& key)
{
    CommandService cmd;
    c.unknownKeys(s, key, {"kind", "command"});
    if (!has(s, "command")) {
        c.problem(key, "a command service needs 'command': the program and its arguments, as "
                       "[\"myapp-worker\", \"-v\"]");
        return cmd;
    }
    auto& a = s["command"];
    if (!a.is_array() || a.empty()) {
        c.problem(key + ".command",
                  concat("must be a non-empty array of strings, not ", describe(a)));
        return cmd;
    }
    for (size_t i = 0; i < a.size(); i++)
        cmd.argv.push_back(c.string(a[i], concat(key, ".command[", i, "]")));
    if (!cmd.argv.empty() && cmd.argv[0].empty())
        c.problem(key + ".command[0]", "the program name is empty");
    return cmd;
}

} // namespace

ConfigError::ConfigError(std::vector<std::string> p) : Error(join(p, "\n")), problems(std::move(p))
{
}

const Service* Services::find(std::string_view name) const
{
    for (auto& s : services)
        if (s.name == name) return &s;
    return nullptr;
}

Services parseServices(const std::string& text, const std::string& source)
{
    Json doc;
    try {
        doc = Json::parse(text);
    } catch (Json::exception& e) {
        // "[json.exception.parse_error.101] parse error at line 3, column 5: ..." → from "parse
        // error"; also out_of_range.406, "number overflow parsing '1e999'".
        std::string what = e.what();
        if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
        throw ConfigError({concat(source, ": not valid JSON: ", what)});
    }
    Checker c(source);
    Services out;
    if (!doc.is_object())
        throw ConfigError({concat(source, ": must hold a JSON object, not ", describe(doc))});
    c.unknownKeys(doc, "", {"app", "version", "venv", "uwsgi_plugin", "services", "crontab"});
    if (has(doc, "app")) out.app = c.string(doc["app"], "app");
    if (has(doc, "version")) out.version = c.string(doc["version"], "version");
    if (has(doc, "venv")) {
        out.venv = c.string(doc["venv"], "venv");
        if (doc["venv"].is_string() && (out.venv.empty() || out.venv[0] != '/'))
            c.problem("venv", concat("must be an absolute path, not '", out.venv, "'"));
    }
    if (has(doc, "uwsgi_plugin")) {
        out.uwsgiPlugin = c.string(doc["uwsgi_plugin"], "uwsgi_plugin");
        if (!std::all_of(out.uwsgiPlugin.begin(), out.uwsgiPlugin.end(), [](char ch) {
                return std::islower(static_cast<unsigned char>(ch)) ||
                       std::isdigit(static_cast<unsigned char>(ch)) || ch == '_';
            }))
            c.problem("uwsgi_plugin",
                      concat("must be a uwsgi plugin name (a-z, 0-9, _) or empty, not '",
                             out.uwsgiPlugin, "'"));
    }
    if (has(doc, "services")) {
        auto& ss = doc["services"];
        if (!ss.is_object()) {
            c.problem("services",
                      concat("must be an object of service name → service, not ", describe(ss)));
        } else {
            for (auto& [name, s] : ss.items()) {
                auto key = "services." + name;
                if (name == "cron") {
                    c.problem(key,
                              "'cron' is the cron instance's name: give the service another name");
                    continue;
                }
                if (!isServiceName(name)) {
                    c.problem(key, "a service name is letters, digits and _.- and starts with a "
                                   "letter or digit");
                    continue;
                }
                if (!s.is_object()) {
                    c.problem(key, concat("must be an object with a 'kind', not ", describe(s)));
                    continue;
                }
                auto kind =
                    has(s, "kind") && s["kind"].is_string() ? s["kind"].get<std::string>() : "";
                if (kind == "wsgi") {
                    out.services.push_back({name, parseWsgi(c, s, key)});
                    if (!has(doc, "venv"))
                        c.problem(key, "a wsgi service needs 'venv' at the top level: the "
                                       "virtualenv holding the application");
                } else if (kind == "command") {
                    out.services.push_back({name, parseCommand(c, s, key)});
                } else {
                    c.problem(key + ".kind", has(s, "kind")
                                                 ? concat("must be \"wsgi\" or \"command\", not ",
                                                          describe(s["kind"]))
                                                 : "missing: \"wsgi\" or \"command\"");
                }
            }
        }
    }
    if (has(doc, "crontab")) {
        auto& ct = doc["crontab"];
        if (!ct.is_array()) {
            c.problem("crontab", concat("must be an array of crontab lines, not ", describe(ct)));
        } else {
            for (size_t i = 0; i < ct.size(); i++) {
                auto key = concat("crontab[", i, "]");
                auto line = c.string(ct[i], key);
                if (!ct[i].is_string()) continue;
                if (line.find_first_of("\n\r") != std::string::npos)
                    c.problem(
                        key,
                        "a crontab line must not hold a line break: give each job its own entry");
                else if (line.find_first_not_of(" \t") == std::string::npos)
                    c.problem(key, "is empty");
                out.crontab.push_back(line);
            }
        }
    }
    if (!c.problems().empty()) throw ConfigError(c.problems());
    return out;
}

namespace {

Json serviceJson(const Service& s)
{
    if (auto* cmd = std::get_if<CommandService>(&s.spec))
        return Json{{"kind", "command"}, {"command", cmd->argv}};
    auto& w = std::get<WsgiService>(s.spec);
    Json statics = Json::object();
    for (auto& [prefix, folder] : w.statics)
        statics[prefix] = folder;
    return Json{{"kind", "wsgi"},
                {"wsgi", w.callable},
                {"static", statics},
                {"media", w.media.empty() ? Json(nullptr) : Json(w.media)},
                {"processes", w.processes}};
}

} // namespace

std::string writeServices(const Services& s)
{
    Json services = Json::object();
    for (auto& service : s.services)
        services[service.name] = serviceJson(service);
    Json doc{{"app", s.app},         {"version", s.version},
             {"venv", s.venv},       {"uwsgi_plugin", s.uwsgiPlugin},
             {"services", services}, {"crontab", s.crontab}};
    return doc.dump(2) + "\n";
}

} // namespace grocker::entrypoint
