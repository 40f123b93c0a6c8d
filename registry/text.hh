#pragma once
// The small text arithmetic of HTTP fields that the registry library's parts share (header
// names, auth keys, numbers in headers): one copy each, private to the library.

#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace grocker::registry {

// ASCII lower case: header names, schemes and hosts compare without case; other bytes stay.
inline std::string lower(std::string_view s)
{
    std::string out(s);
    for (auto& c : out)
        c = char(tolower((unsigned char)c));
    return out;
}

// Without the blanks around a header value (and a line's CR LF at its end).
inline std::string_view trim(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

// A decimal number of ASCII digits only (no sign, no blank), of at most 19 digits so that it
// fits in 64 bits; nullopt otherwise.
inline std::optional<uint64_t> parseDecimal(std::string_view s)
{
    if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string_view::npos)
        return std::nullopt;
    uint64_t n = 0;
    for (char c : s)
        n = n * 10 + uint64_t(c - '0');
    return n;
}

} // namespace grocker::registry
