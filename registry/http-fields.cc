// Values of the HTTP fields (headers) that steer retries and resumed transfers.

#include "grocker/registry/http.hh"
#include "text.hh"

#include <ctime>

namespace grocker::registry {

std::optional<double> parseRetryAfter(std::string_view value, std::time_t now)
{
    value = trim(value);
    if (value.empty()) return std::nullopt;
    if (value.find_first_not_of("0123456789") == std::string_view::npos) {
        if (value.size() > 9) return std::nullopt;
        return double(std::stol(std::string(value)));
    }
    std::string text(value);
    // IMF-fixdate, then the two obsolete forms RFC 9110 asks recipients to accept.
    for (const char* format :
         {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %d %H:%M:%S %Y"}) {
        struct tm tm = {};
        const char* end = strptime(text.c_str(), format, &tm);
        if (!end || *end) continue;
        time_t when = timegm(&tm);
        return when > now ? double(when - now) : 0.0;
    }
    return std::nullopt;
}

std::optional<uint64_t> parseUploadRange(std::string_view value)
{
    value = trim(value);
    if (value.starts_with("bytes=")) value.remove_prefix(6);
    auto dash = value.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    auto start = parseDecimal(value.substr(0, dash)), end = parseDecimal(value.substr(dash + 1));
    if (!start || !end || *start != 0 || *end < *start) return std::nullopt;
    return *end == 0 ? 0 : *end + 1;
}

std::optional<uint64_t> bytesToSkip(long status, std::string_view contentRange, uint64_t have)
{
    if (status == 200) return have;
    if (status != 206) return std::nullopt;
    auto v = trim(contentRange);
    if (!v.starts_with("bytes ")) return std::nullopt;
    v.remove_prefix(6);
    auto dash = v.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    auto start = parseDecimal(v.substr(0, dash));
    if (!start || *start != have) return std::nullopt;
    return 0;
}

} // namespace grocker::registry
