#pragma once
// /etc/grocker/services.json: the application's services as `grocker build` writes them into the
// runner image and as its entrypoint reads them at start (docs/services.md). One structure with
// its writer and its reader, so that the two sides cannot drift apart; common/ and nlohmann/json
// only, so that the static entrypoint links it.

#include "grocker/error.hh"

#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace grocker::entrypoint {

// Where the runner image holds the file.
inline constexpr std::string_view servicesPath = "/etc/grocker/services.json";

// nginx on port 8080 in front of uwsgi running `callable` from the virtualenv.
struct WsgiService {
    std::string callable;                                     // module:callable
    std::vector<std::pair<std::string, std::string>> statics; // URL prefix → folder
    std::string media; // folder for X-Accel-Redirect, or empty
    int processes = 2; // uwsgi workers
    bool operator==(const WsgiService&) const = default;
};

// A plain long-running command.
struct CommandService {
    std::vector<std::string> argv;
    bool operator==(const CommandService&) const = default;
};

struct Service {
    std::string name;
    std::variant<WsgiService, CommandService> spec;
    bool operator==(const Service&) const = default;
};

struct Services {
    std::string app, version; // for the help text; may be empty
    std::string venv;         // the application's virtualenv; may be empty when no wsgi service
    // uwsgi's plugin for Python: "python3" for Debian's uwsgi-core; empty for a uwsgi with Python
    // built in (the PyPI one, in the venv, on runtimes whose Python is not Debian's).
    std::string uwsgiPlugin = "python3";
    std::vector<Service> services;    // in the file's order
    std::vector<std::string> crontab; // the `cron` instance's jobs

    const Service* find(std::string_view name) const;
    bool operator==(const Services&) const = default;
};

// Every mistake found in a services file, one line each ("FILE: services.www.processes: ...").
class ConfigError : public Error {
  public:
    explicit ConfigError(std::vector<std::string> problems);
    std::vector<std::string> problems;
};

// The file's text: every key written (an optional one with no value as null), two-space
// indented, ending in a newline. The same structure gives the same bytes: a layer of the runner.
std::string writeServices(const Services& services);

// Parses and checks the text of a services file; `source` names it in the messages.
// Throws ConfigError listing every problem at once.
Services parseServices(const std::string& text, const std::string& source);

} // namespace grocker::entrypoint
