#pragma once
// The small text files the entrypoint reads at start: /config/env, /config/smtp,
// /proc/net/route, /etc/passwd and /etc/group. Pure parsers, so the tests feed them text, and
// the one reader of the files that the container's user mounts in /config.
//
// Whatever is mounted in /config may be anything (a link to /etc/shadow once was): messages about
// those files name the file, the line and what is wrong, and never quote what the line holds.

#include <optional>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace grocker::entrypoint {

using EnvList = std::vector<std::pair<std::string, std::string>>;

// The text of a file the container's user mounts in /config (env, smtp): nothing when it does not
// exist; nothing, with a line in `warnings`, when it is not a regular file (a symbolic link, a
// FIFO, a folder, a device): a link is never followed, a FIFO never waited on. Throws SysError
// when it cannot be read.
std::optional<std::string> readConfigFile(const std::string& path,
                                          std::vector<std::string>& warnings);

// KEY=VALUE lines, as `docker run --env-file` reads them: blank lines and lines starting with
// `#` are skipped, leading spaces are dropped, the value is kept verbatim (no quotes removed).
// Throws ConfigError naming every bad line ("/config/env:3: ..."), without its text.
EnvList parseEnvFile(const std::string& text, const std::string& source);

// Where mail goes: an SMTP relay that takes mail without authentication.
struct Relay {
    std::string host; // a name, an IPv4 address, or an IPv6 address without brackets
    int port = 25;
    std::string origin; // where it was found, for the log: "/config/smtp", "SMTP_HOST", ...

    std::string str() const; // host:port, IPv6 in brackets
};

// HOST, HOST:PORT, [IPV6] or [IPV6]:PORT. Throws Error naming `source` when malformed, quoting
// `text` when `echo` (SMTP_HOST, which the user typed), else saying only what is wrong.
Relay parseRelay(const std::string& text, const std::string& source, bool echo = true);

// The first line of /config/smtp that is neither blank nor a `#` comment, parsed by parseRelay
// without echo.
Relay parseSmtpFile(const std::string& text, const std::string& source);

// The gateway of the default IPv4 route in the text of /proc/net/route (the one with the
// lowest metric), as a dotted address; nothing when there is no default route.
std::optional<std::string> defaultGateway(const std::string& procNetRoute);

struct Account {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
    std::string home;
};

// The entry of /etc/passwd (its text) named `name`, or with uid `uid`.
std::optional<Account> findAccount(const std::string& passwd, const std::string& name);
std::optional<Account> findAccount(const std::string& passwd, uid_t uid);

// The account's groups: its primary group, then the groups of /etc/group (text) listing it.
std::vector<gid_t> accountGroups(const std::string& group, const Account& account);

} // namespace grocker::entrypoint
