#include "grocker/oci/reference.hh"

#include "grocker/error.hh"

#include <cctype>

namespace grocker::oci {

namespace {

bool alnumLower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// path-component := [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
bool validComponent(std::string_view s)
{
    if (s.empty() || !alnumLower(s.front()) || !alnumLower(s.back())) return false;
    for (size_t i = 0; i < s.size();) {
        if (alnumLower(s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < s.size() && !alnumLower(s[j]))
            j++;
        auto sep = s.substr(i, j - i);
        bool ok = sep == "." || sep == "_" || sep == "__" ||
                  sep.find_first_not_of('-') == std::string_view::npos;
        if (!ok) return false;
        i = j;
    }
    return true;
}

bool validDomain(std::string_view d)
{
    // host[:port], host being DNS labels or a bracketed IPv6 address.
    std::string_view host = d, port;
    if (d.starts_with("[")) {
        auto close = d.find(']');
        if (close == std::string_view::npos) return false;
        host = d.substr(1, close - 1);
        if (host.empty() ||
            host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos)
            return false;
        auto rest = d.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':') return false;
            port = rest.substr(1);
            if (port.empty()) return false;
        }
    } else {
        auto colon = d.rfind(':');
        if (colon != std::string_view::npos) {
            port = d.substr(colon + 1);
            host = d.substr(0, colon);
            if (port.empty()) return false;
        }
        if (host.empty()) return false;
        size_t start = 0;
        for (;;) {
            auto dot = host.find('.', start);
            auto label = host.substr(start, dot == std::string_view::npos ? std::string_view::npos
                                                                          : dot - start);
            if (label.empty() || label.front() == '-' || label.back() == '-') return false;
            for (char c : label)
                if (!isalnum((unsigned char)c) && c != '-') return false;
            if (dot == std::string_view::npos) break;
            start = dot + 1;
        }
    }
    for (char c : port)
        if (!isdigit((unsigned char)c)) return false;
    return true;
}

} // namespace

bool validTag(std::string_view t)
{
    if (t.empty() || t.size() > 128) return false;
    if (!(isalnum((unsigned char)t[0]) || t[0] == '_')) return false;
    for (char c : t)
        if (!(isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-')) return false;
    return true;
}

Reference Reference::parse(std::string_view text)
{
    auto bad = [&](const std::string& why) {
        return Error("invalid image reference '", text.substr(0, 300), "': ", why);
    };
    if (text.empty()) throw bad("it is empty");
    Reference r;
    std::string_view rest = text;
    if (auto at = rest.find('@'); at != std::string_view::npos) {
        try {
            r.digest = Digest::parse(rest.substr(at + 1));
        } catch (Error& e) {
            throw bad(e.message());
        }
        rest = rest.substr(0, at);
    }
    // A tag is after the last ':' that follows the last '/'.
    auto lastSlash = rest.rfind('/');
    auto colon = rest.rfind(':');
    if (colon != std::string_view::npos &&
        (lastSlash == std::string_view::npos || colon > lastSlash)) {
        auto tag = rest.substr(colon + 1);
        if (!validTag(tag))
            throw bad(concat("tag '", tag.substr(0, 200),
                             "' is not valid: up to 128 letters, digits, '_', '.' and '-', not "
                             "starting with '.' or '-'"));
        r.tag = std::string(tag);
        rest = rest.substr(0, colon);
    }
    if (rest.empty()) throw bad("the repository name is empty");
    auto slash = rest.find('/');
    std::string_view first = rest.substr(0, slash);
    if (slash != std::string_view::npos &&
        (first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
         first == "localhost" || first.starts_with("["))) {
        if (!validDomain(first))
            throw bad(concat("registry host '", first, "' is not a valid host[:port]"));
        r.domain = std::string(first);
        rest = rest.substr(slash + 1);
    } else {
        r.domain = "docker.io";
    }
    if (r.domain == "index.docker.io") r.domain = "docker.io";
    for (size_t pos = 0;;) {
        auto s = rest.find('/', pos);
        auto comp =
            rest.substr(pos, s == std::string_view::npos ? std::string_view::npos : s - pos);
        if (!validComponent(comp)) {
            bool upper = false;
            for (char c : comp)
                upper |= bool(isupper((unsigned char)c));
            throw bad(upper ? "repository names must be lowercase"
                            : concat("path component '", comp.substr(0, 200),
                                     "' is not valid: lowercase letters and digits, separated by "
                                     "'.', '_', '__' or '-'"));
        }
        if (s == std::string_view::npos) break;
        pos = s + 1;
    }
    r.path = std::string(rest);
    if (r.domain == "docker.io" && r.path.find('/') == std::string::npos)
        r.path = "library/" + r.path;
    if (r.domain.size() + 1 + r.path.size() > 255)
        throw bad("the name is longer than 255 characters");
    if (r.tag.empty() && !r.digest) r.tag = "latest";
    return r;
}

std::string Reference::str() const
{
    std::string s = repository();
    if (!tag.empty()) s.append(1, ':').append(tag);
    if (digest) s.append(1, '@').append(digest->str());
    return s;
}

std::string Reference::apiHost() const
{
    return domain == "docker.io" ? "registry-1.docker.io" : domain;
}

} // namespace grocker::oci
