#include "grocker/registry/auth.hh"

#include "grocker/error.hh"
#include "text.hh"

#include <algorithm>
#include <set>

namespace grocker::registry {

namespace {

// RFC 9110 tchar.
bool tchar(char c)
{
    return isalnum((unsigned char)c) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
bool token68char(char c)
{
    return isalnum((unsigned char)c) ||
           std::string_view("-._~+/").find(c) != std::string_view::npos;
}

class ChallengeParser {
  public:
    explicit ChallengeParser(std::string_view text) : s_(text) {}

    std::vector<Challenge> parse()
    {
        std::vector<Challenge> out;
        for (;;) {
            skipSeparators();
            if (end()) break;
            Challenge c;
            auto scheme = token();
            if (scheme.empty()) fail("expected an authentication scheme");
            c.scheme = lower(scheme);
            bool space = skipSpace();
            if (space && !end() && s_[i_] != ',') params(c);
            out.push_back(std::move(c));
        }
        return out;
    }

  private:
    bool end() const { return i_ >= s_.size(); }
    bool skipSpace()
    {
        size_t start = i_;
        while (!end() && (s_[i_] == ' ' || s_[i_] == '\t'))
            i_++;
        return i_ > start;
    }
    void skipSeparators()
    {
        while (!end() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == ','))
            i_++;
    }
    std::string_view token()
    {
        size_t start = i_;
        while (!end() && tchar(s_[i_]))
            i_++;
        return s_.substr(start, i_ - start);
    }
    [[noreturn]] void fail(const std::string& what) const
    {
        throw Error("malformed WWW-Authenticate header '", s_.substr(0, 300), "': ", what,
                    " at offset ", i_);
    }

    // After the scheme: a token68, or name=value pairs until the next challenge's scheme.
    void params(Challenge& c)
    {
        // token68: its characters then '='s, then the end or a comma.
        size_t save = i_;
        while (!end() && token68char(s_[i_]))
            i_++;
        if (i_ > save) {
            while (!end() && s_[i_] == '=')
                i_++;
            size_t stop = i_;
            skipSpace();
            // "name=value" goes on after the '='; a token68 ends there.
            if (end() || s_[i_] == ',') {
                c.token68 = std::string(s_.substr(save, stop - save));
                return;
            }
        }
        i_ = save;
        for (;;) {
            skipSpace();
            size_t start = i_;
            auto name = token();
            if (name.empty()) fail("expected a parameter name");
            skipSpace();
            if (end() || s_[i_] != '=') {
                // Not "name=": the start of the next challenge.
                if (c.params.empty()) fail(concat("expected '=' after '", name, "'"));
                i_ = start;
                return;
            }
            i_++;
            skipSpace();
            std::string value;
            if (!end() && s_[i_] == '"') {
                i_++;
                for (;;) {
                    if (end()) fail("unterminated quoted string");
                    char ch = s_[i_++];
                    if (ch == '"') break;
                    if (ch == '\\') {
                        if (end()) fail("unterminated quoted string");
                        ch = s_[i_++];
                    }
                    value += ch;
                }
            } else {
                // Lenient: some servers leave URLs and scopes unquoted.
                size_t vs = i_;
                while (!end() && s_[i_] != ',' && s_[i_] != ' ' && s_[i_] != '\t')
                    i_++;
                value = std::string(s_.substr(vs, i_ - vs));
                if (value.empty()) fail(concat("empty value for '", name, "'"));
            }
            c.params[lower(name)] = std::move(value);
            skipSpace();
            if (end()) return;
            if (s_[i_] != ',') fail("expected ',' between parameters");
            // Commas may repeat (empty list elements are allowed by the list syntax).
            while (!end() && (s_[i_] == ',' || s_[i_] == ' ' || s_[i_] == '\t'))
                i_++;
            if (end()) return;
        }
    }

    std::string_view s_;
    size_t i_ = 0;
};

} // namespace

std::string Challenge::param(const std::string& name) const
{
    auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
}

std::vector<Challenge> parseWwwAuthenticate(std::string_view header)
{
    return ChallengeParser(header).parse();
}

std::optional<Scope> Scope::parse(std::string_view text)
{
    auto first = text.find(':');
    auto last = text.rfind(':');
    if (first == std::string_view::npos || first == last) return std::nullopt;
    Scope s;
    s.type = std::string(text.substr(0, first));
    s.name = std::string(text.substr(first + 1, last - first - 1));
    if (s.type.empty() || s.name.empty()) return std::nullopt;
    auto actions = text.substr(last + 1);
    for (size_t pos = 0; pos <= actions.size();) {
        auto comma = actions.find(',', pos);
        auto a = actions.substr(pos, comma == std::string_view::npos ? std::string_view::npos
                                                                     : comma - pos);
        if (!a.empty()) s.actions.emplace_back(a);
        if (comma == std::string_view::npos) break;
        pos = comma + 1;
    }
    return s;
}

std::string Scope::str() const
{
    std::string s = type + ":" + name + ":";
    for (size_t i = 0; i < actions.size(); i++)
        s += (i ? "," : "") + actions[i];
    return s;
}

std::vector<std::string> unionScopes(const std::vector<std::string>& a,
                                     const std::vector<std::string>& b)
{
    std::map<std::pair<std::string, std::string>, std::set<std::string>> merged;
    std::set<std::string> opaque;
    for (auto* list : {&a, &b})
        for (auto& text : *list) {
            auto s = Scope::parse(text);
            if (!s) {
                if (!text.empty()) opaque.insert(text);
                continue;
            }
            auto& actions = merged[{s->type, s->name}];
            actions.insert(s->actions.begin(), s->actions.end());
        }
    std::vector<std::string> out;
    for (auto& [key, actions] : merged) {
        Scope s{key.first, key.second, {actions.begin(), actions.end()}};
        out.push_back(s.str());
    }
    out.insert(out.end(), opaque.begin(), opaque.end());
    std::sort(out.begin(), out.end());
    return out;
}

bool coversScopes(const std::vector<std::string>& have, const std::vector<std::string>& want)
{
    return unionScopes(have, want) == unionScopes(have, {});
}

std::vector<std::string> splitScopes(std::string_view param)
{
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < param.size()) {
        auto sp = param.find(' ', pos);
        auto s =
            param.substr(pos, sp == std::string_view::npos ? std::string_view::npos : sp - pos);
        if (!s.empty()) out.emplace_back(s);
        if (sp == std::string_view::npos) break;
        pos = sp + 1;
    }
    return out;
}

std::string repositoryScope(const std::string& name, bool push)
{
    return "repository:" + name + (push ? ":pull,push" : ":pull");
}

} // namespace grocker::registry
