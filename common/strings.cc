#include "grocker/strings.hh"

#include "grocker/error.hh"

#include <cstdio>

namespace grocker {

std::string shellQuote(std::string_view word)
{
    std::string out = "'";
    for (char c : word) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    return out + "'";
}

std::string join(const std::vector<std::string>& words, std::string_view separator)
{
    std::string s;
    for (size_t i = 0; i < words.size(); ++i) {
        if (i) s += separator;
        s += words[i];
    }
    return s;
}

std::string joinQuoted(const std::vector<std::string>& words)
{
    std::string s;
    for (size_t i = 0; i < words.size(); ++i) {
        if (i) s += ' ';
        s += shellQuote(words[i]);
    }
    return s;
}

std::string normalisePythonName(std::string_view name)
{
    std::string out;
    out.reserve(name.size());
    bool inRun = false;
    for (char c : name) {
        if (c == '-' || c == '_' || c == '.') {
            if (!inRun) out += '-';
            inRun = true;
            continue;
        }
        inRun = false;
        out += (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
    }
    return out;
}

std::string hexString(std::string_view bytes)
{
    static const char digits[] = "0123456789abcdef";
    std::string hex(bytes.size() * 2, '0');
    for (size_t i = 0; i < bytes.size(); i++) {
        auto c = static_cast<unsigned char>(bytes[i]);
        hex[2 * i] = digits[c >> 4];
        hex[2 * i + 1] = digits[c & 15];
    }
    return hex;
}

bool isIdentifier(std::string_view s)
{
    auto letter = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    };
    if (s.empty() || !letter(s[0])) return false;
    for (char c : s)
        if (!letter(c) && !(c >= '0' && c <= '9')) return false;
    return true;
}

std::string humanBytes(uint64_t n)
{
    if (n < 1000) return std::to_string(n) + " B";
    const char* units[] = {"kB", "MB", "GB", "TB"};
    double v = double(n) / 1000;
    size_t u = 0;
    while (v >= 1000 && u < 3) {
        v /= 1000;
        u++;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
    return buf;
}

std::string plural(uint64_t n, std::string_view one, std::string_view many)
{
    return concat(n, " ", n == 1 ? one : many);
}

std::string_view trimmed(std::string_view s)
{
    auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string lowercase(std::string_view s)
{
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return out;
}

namespace {
const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64Encode(std::string_view data)
{
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < data.size(); i += 3) {
        uint32_t v = uint32_t(uint8_t(data[i])) << 16 | uint32_t(uint8_t(data[i + 1])) << 8 |
                     uint8_t(data[i + 2]);
        for (int k = 3; k >= 0; k--)
            out += alphabet[(v >> (6 * k)) & 63];
    }
    if (size_t rest = data.size() - i) {
        uint32_t v = uint32_t(uint8_t(data[i])) << 16 |
                     (rest == 2 ? uint32_t(uint8_t(data[i + 1])) << 8 : 0);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += rest == 2 ? alphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::string base64Decode(std::string_view text)
{
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    size_t i = 0;
    for (; i < text.size() && text[i] != '='; i++) {
        const char* p = std::char_traits<char>::find(alphabet, 64, text[i]);
        if (!p) throw Error("invalid base64: unexpected character at offset ", i);
        acc = acc << 6 | uint32_t(p - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += char((acc >> bits) & 0xff);
        }
    }
    for (; i < text.size(); i++)
        if (text[i] != '=') throw Error("invalid base64: data after padding at offset ", i);
    return out;
}

} // namespace grocker
