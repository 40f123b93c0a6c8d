// URL arithmetic a registry client needs: Location headers resolved, origins compared (where
// the Authorization header may go), queries added and hidden from messages.

#include "grocker/registry/http.hh"
#include "text.hh"

#include <cctype>

namespace grocker::registry {

namespace {

struct Uri {
    std::optional<std::string> scheme, authority, query;
    std::string path;
};

Uri parseUri(std::string_view s)
{
    Uri u;
    if (auto hash = s.find('#'); hash != std::string_view::npos) s = s.substr(0, hash);
    size_t i = 0;
    if (!s.empty() && isalpha((unsigned char)s[0])) {
        while (i < s.size() &&
               (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
            i++;
        if (i < s.size() && s[i] == ':') {
            u.scheme = lower(s.substr(0, i));
            s = s.substr(i + 1);
        }
    }
    if (s.starts_with("//")) {
        auto end = s.find_first_of("/?", 2);
        u.authority = std::string(
            s.substr(2, end == std::string_view::npos ? std::string_view::npos : end - 2));
        s = end == std::string_view::npos ? std::string_view() : s.substr(end);
    }
    auto q = s.find('?');
    u.path = std::string(s.substr(0, q));
    if (q != std::string_view::npos) u.query = std::string(s.substr(q + 1));
    return u;
}

std::string removeDotSegments(std::string_view in)
{
    std::string out;
    while (!in.empty()) {
        if (in.starts_with("../"))
            in.remove_prefix(3);
        else if (in.starts_with("./"))
            in.remove_prefix(2);
        else if (in.starts_with("/./"))
            in.remove_prefix(2);
        else if (in == "/.")
            in = "/";
        else if (in.starts_with("/../") || in == "/..") {
            in = in.size() == 3 ? std::string_view("/") : in.substr(3);
            auto slash = out.rfind('/');
            out.erase(slash == std::string::npos ? 0 : slash);
        } else if (in == "." || in == "..")
            in = {};
        else {
            size_t next = in.find('/', 1);
            out.append(in.substr(0, next));
            in = next == std::string_view::npos ? std::string_view() : in.substr(next);
        }
    }
    return out;
}

std::string compose(const Uri& u)
{
    std::string s;
    if (u.scheme) s += *u.scheme + ":";
    if (u.authority) s += "//" + *u.authority;
    s += u.path;
    if (u.query) s += "?" + *u.query;
    return s;
}

} // namespace

std::string resolveUrl(std::string_view base, std::string_view reference)
{
    Uri b = parseUri(base), r = parseUri(reference), t;
    if (r.scheme) {
        t = r;
        t.path = removeDotSegments(r.path);
    } else {
        if (r.authority) {
            t.authority = r.authority;
            t.path = removeDotSegments(r.path);
            t.query = r.query;
        } else {
            if (r.path.empty()) {
                t.path = b.path;
                t.query = r.query ? r.query : b.query;
            } else {
                if (r.path.starts_with("/")) {
                    t.path = removeDotSegments(r.path);
                } else {
                    std::string merged;
                    if (b.authority && b.path.empty())
                        merged = "/" + r.path;
                    else {
                        auto slash = b.path.rfind('/');
                        merged = (slash == std::string::npos ? "" : b.path.substr(0, slash + 1)) +
                                 r.path;
                    }
                    t.path = removeDotSegments(merged);
                }
                t.query = r.query;
            }
            t.authority = b.authority;
        }
        t.scheme = b.scheme;
    }
    return compose(t);
}

namespace {
// host and port of an authority, userinfo dropped.
std::pair<std::string, std::string> hostPort(std::string_view authority)
{
    if (auto at = authority.rfind('@'); at != std::string_view::npos)
        authority = authority.substr(at + 1);
    if (authority.starts_with("[")) {
        auto close = authority.find(']');
        auto host = authority.substr(1, close == std::string_view::npos ? std::string_view::npos
                                                                        : close - 1);
        std::string_view port;
        if (close != std::string_view::npos && close + 1 < authority.size() &&
            authority[close + 1] == ':')
            port = authority.substr(close + 2);
        return {lower(host), std::string(port)};
    }
    auto colon = authority.rfind(':');
    if (colon == std::string_view::npos) return {lower(authority), ""};
    return {lower(authority.substr(0, colon)), std::string(authority.substr(colon + 1))};
}
} // namespace

std::string urlOrigin(std::string_view url)
{
    Uri u = parseUri(url);
    std::string scheme = u.scheme.value_or("");
    auto [host, port] = hostPort(u.authority.value_or(""));
    if (port.empty()) port = scheme == "https" ? "443" : scheme == "http" ? "80" : "";
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    return scheme + "://" + host + (port.empty() ? "" : ":" + port);
}

std::string urlPeer(std::string_view url)
{
    auto origin = urlOrigin(url);
    auto sep = origin.find("://");
    return sep == std::string::npos ? origin : origin.substr(sep + 3);
}

std::string urlHost(std::string_view url)
{
    return hostPort(parseUri(url).authority.value_or("")).first;
}

std::string percentEncode(std::string_view text)
{
    static const char digits[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
            out += char(c);
        else {
            out += '%';
            out += digits[c >> 4];
            out += digits[c & 15];
        }
    }
    return out;
}

std::string addQuery(std::string url, std::string_view key, std::string_view value)
{
    std::string fragment;
    if (auto hash = url.find('#'); hash != std::string::npos) {
        fragment = url.substr(hash);
        url.erase(hash);
    }
    auto q = url.find('?');
    if (q == std::string::npos)
        url += '?';
    else if (q + 1 < url.size() && url.back() != '&')
        url += '&';
    return url + percentEncode(key) + "=" + percentEncode(value) + fragment;
}

std::string withoutPassword(std::string_view url)
{
    std::string u(url);
    auto scheme = u.find("://");
    if (scheme == std::string::npos) return u;
    auto hostStart = scheme + 3;
    // The user information ends at the authority's last '@' (a password may hold an '@' that
    // was not percent-encoded: all of it is hidden).
    auto end = u.find_first_of("/?#", hostStart);
    auto at = u.rfind('@', end == std::string::npos ? std::string::npos : end);
    if (at == std::string::npos || at < hostStart || (end != std::string::npos && at > end))
        return u;
    auto colon = u.find(':', hostStart);
    // A user alone is a token, as pip reads it: hidden whole.
    if (colon == std::string::npos || colon > at)
        return u.substr(0, hostStart) + "***" + u.substr(at);
    return u.substr(0, colon + 1) + "***" + u.substr(at);
}

std::string withoutCredentials(std::string_view url)
{
    std::string u(url.substr(0, url.find_first_of("?#")));
    auto scheme = u.find("://");
    if (scheme == std::string::npos) return u;
    auto hostStart = scheme + 3;
    auto end = u.find('/', hostStart);
    auto at = u.rfind('@', end == std::string::npos ? std::string::npos : end);
    if (at == std::string::npos || at < hostStart) return u;
    return u.substr(0, hostStart) + u.substr(at + 1);
}

std::string redactUrl(std::string_view url)
{
    auto q = url.find_first_of("?#");
    if (q == std::string_view::npos) return withoutPassword(url);
    return withoutPassword(url.substr(0, q)) + "?…";
}

bool isLoopbackHost(std::string_view host)
{
    if (host.starts_with("[") && host.ends_with("]")) host = host.substr(1, host.size() - 2);
    if (host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1") return true;
    // 127.0.0.0/8, in dotted-quad form only.
    if (!host.starts_with("127.")) return false;
    int parts = 0;
    size_t pos = 0;
    while (pos <= host.size()) {
        auto dot = host.find('.', pos);
        auto p =
            host.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos);
        if (p.empty() || p.size() > 3 ||
            p.find_first_not_of("0123456789") != std::string_view::npos ||
            std::stoi(std::string(p)) > 255)
            return false;
        parts++;
        if (dot == std::string_view::npos) break;
        pos = dot + 1;
    }
    return parts == 4;
}

} // namespace grocker::registry
