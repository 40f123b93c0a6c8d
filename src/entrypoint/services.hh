#pragma once
// The application's services as `grocker build` writes them into the runner image
// (/etc/grocker/services.json, described in docs/services.md), read and checked at start.

#include "error.hh"
#include "nginx-words.hh"

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace grocker::entrypoint {

// nginx on port 8080 in front of uwsgi running `callable` from the virtualenv.
struct WsgiService {
    std::string callable;                                     // module:callable
    std::vector<std::pair<std::string, std::string>> statics; // URL prefix → folder
    std::string media; // folder for X-Accel-Redirect, or empty
    int processes = 2; // uwsgi workers
};

// A plain long-running command.
struct CommandService {
    std::vector<std::string> argv;
};

struct Service {
    std::string name;
    std::variant<WsgiService, CommandService> spec;
};

struct Services {
    std::string app, version; // for the help text; may be empty
    std::string venv;         // the application's virtualenv; may be empty when no wsgi service
    // uwsgi's plugin for Python: "python3" for Debian's uwsgi-core; empty for a uwsgi with Python
    // built in (the PyPI one, in the venv, on runtimes whose Python is not Debian's).
    std::string uwsgiPlugin = "python3";
    std::vector<Service> services;
    std::vector<std::string> crontab; // the `cron` instance's jobs

    const Service* find(std::string_view name) const;
};

// Every mistake found in a services file, one line each ("FILE: services.www.processes: ...").
class ConfigError : public Error {
  public:
    explicit ConfigError(std::vector<std::string> problems);
    std::vector<std::string> problems;
};

// Parses and checks the text of a services file; `source` names it in the messages.
// Throws ConfigError listing every problem at once.
Services parseServices(const std::string& text, const std::string& source);

// Reads `path`; a missing file gives no services (an image not made by `grocker build`).
Services loadServices(const std::filesystem::path& path);

} // namespace grocker::entrypoint
