#pragma once
// What a registry's authentication is made of: WWW-Authenticate challenges (RFC 7235, several
// in one header, quoted parameters with escapes), token scopes ("repository:NAME:pull,push") and
// their union, as the distribution token spec uses them, and base64 for Basic credentials.

#include "grocker/strings.hh"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grocker::registry {

struct Challenge {
    std::string scheme;                        // lowercase: "bearer", "basic", ...
    std::map<std::string, std::string> params; // names lowercase, values unquoted
    std::string token68;                       // the rare "Scheme token68" form

    // The value of a parameter, empty when absent.
    std::string param(const std::string& name) const;
};

// Parses a WWW-Authenticate value (or several joined by ", "). Throws an Error saying where
// the text is malformed.
std::vector<Challenge> parseWwwAuthenticate(std::string_view header);

// A token scope: "repository:library/ubuntu:pull,push". The name may hold ':' (a registry
// host with a port), so the type ends at the first ':' and the actions start after the last.
struct Scope {
    std::string type, name;
    std::vector<std::string> actions;

    static std::optional<Scope> parse(std::string_view text);
    std::string str() const;
};

// The union of two scope lists: one entry per (type, name), actions merged and sorted, the
// whole sorted, so equal sets give equal text. Unparseable scopes are kept as they are.
std::vector<std::string> unionScopes(const std::vector<std::string>& a,
                                     const std::vector<std::string>& b);
// Whether every action of every scope in `want` is in `have`.
bool coversScopes(const std::vector<std::string>& have, const std::vector<std::string>& want);
// A challenge's scope parameter: scopes separated by spaces.
std::vector<std::string> splitScopes(std::string_view param);
// "repository:NAME:pull" or "repository:NAME:pull,push".
std::string repositoryScope(const std::string& name, bool push);

// Basic credentials are base64 of user:password (common/'s one base64).
using grocker::base64Decode;
using grocker::base64Encode;

} // namespace grocker::registry
