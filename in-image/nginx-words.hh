#pragma once
// The rules nginx puts on the words of services.json that the entrypoint writes into nginx's
// configuration (static URL prefixes, static and media folders), applied alike by `grocker build`
// when it reads the configuration (src/build/config-*.cc) and when services.json is read
// (services-format.cc), so that a build never makes an image whose service refuses to start.
// Header-only: both sides include it, neither links the other's code.

#include <string>
#include <string_view>

namespace grocker::entrypoint {

// Why a word is refused, for messages of both sides.
inline constexpr std::string_view nginxMisreads =
    "holds a character nginx would misread (space, quote, ;{}$#\\)";

// A word nginx reads as one token, with no variables: no blank or control character, no quote,
// none of `;{}$#\`.
inline bool isPlainNginxWord(std::string_view s)
{
    for (unsigned char c : s)
        if (c <= ' ' || c == 0x7f ||
            std::string_view(";{}\"'$#\\").find(char(c)) != std::string_view::npos)
            return false;
    return !s.empty();
}

// What is wrong with a URL prefix of `static` (an nginx `location`), or nothing (empty).
inline std::string staticPrefixProblem(std::string_view prefix)
{
    if (prefix.empty() || prefix[0] != '/')
        return "the URL prefix must start with '/', as /static/";
    if (!isPlainNginxWord(prefix)) return "the URL prefix " + std::string(nginxMisreads);
    if (prefix == "/")
        return "the URL prefix '/' would hide the application: use a prefix such as /static/";
    return {};
}

} // namespace grocker::entrypoint
