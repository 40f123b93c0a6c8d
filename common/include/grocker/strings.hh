#pragma once
// Strings every part builds: messages (concat), shell words (quoted one by one, never pasted),
// joined lists, hex, base64, and the one normalisation of Python project names (PEP 503).

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace grocker {

// Concatenates its arguments with operator<< (std::format is not in Debian 12's g++).
template <typename... Args> std::string concat(Args&&... args)
{
    std::ostringstream s;
    (s << ... << std::forward<Args>(args));
    return s.str();
}

// One word for sh: in single quotes, each ' written as '\''. Any byte but NUL passes through.
std::string shellQuote(std::string_view word);

// The words joined by `separator`, as they are.
std::string join(const std::vector<std::string>& words, std::string_view separator = " ");

// The words joined by spaces, each one shellQuote()d: a command line sh reads back word for word.
std::string joinQuoted(const std::vector<std::string>& words);

// PEP 503: runs of '-', '_' and '.' become one '-', ASCII letters lower case ("Zope.Interface"
// and "zope_interface" are one project, "zope-interface").
std::string normalisePythonName(std::string_view name);

// The bytes in lowercase hexadecimal, two digits a byte.
std::string hexString(std::string_view bytes);

// A Python identifier, or a shell variable name, of ASCII only: a letter or '_' first, then
// letters, digits and '_'.
bool isIdentifier(std::string_view s);

// "123.5 MB": decimal units, one decimal, as docker says sizes.
std::string humanBytes(uint64_t n);

// "1 layer", "3 layers".
std::string plural(uint64_t n, std::string_view one, std::string_view many);

// `s` without the spaces, tabs, carriage returns and newlines around it.
std::string_view trimmed(std::string_view s);

// Base64, standard alphabet with padding (registry credentials, signatures, keys).
std::string base64Encode(std::string_view data);
// Standard alphabet, padding optional; throws an Error on other characters.
std::string base64Decode(std::string_view text);

// `s` with ASCII letters lowercased (names, header fields: not text in general).
std::string lowercase(std::string_view s);

} // namespace grocker
