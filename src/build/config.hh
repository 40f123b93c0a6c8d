#pragma once
// The build configuration: `.grocker.yml` and `-c` files (YAML) merged over the packaged
// defaults, then the command line, with the original Grocker's keys plus `services`.
// docs/configuration.md is the user's reference; docs/services.md describes `services`.

#include "grocker/error.hh"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace grocker {

// An apt repository added to the root image (and so to the compiler image).
struct Repository {
    std::string uri; // a one-line sources.list entry: "deb http://… suite component…"
    std::string key; // an armored PGP public key signing it; empty when apt already trusts it
    bool operator==(const Repository&) const = default;
};

// Debian packages the project needs on top of its runtime's.
struct Dependencies {
    std::vector<std::string> run;   // in the root image, so in the compiler and the runner
    std::vector<std::string> build; // in the compiler image only
    bool operator==(const Dependencies&) const = default;
};

// A long-running service of the application, started by the runner's entrypoint by name.
struct Service {
    enum class Kind { Wsgi, Command };
    Kind kind = Kind::Command;
    // Wsgi: nginx on 8080 in front of uwsgi running this "module:callable".
    std::string wsgi;
    std::map<std::string, std::string> statics; // URL prefix "/static/" → folder "/app/static"
    std::string media; // folder served through X-Accel-Redirect; empty: none
    int processes = 2; // uwsgi workers, 1 to 64
    // Command: the program and its arguments (a string in YAML is split as a shell would).
    std::vector<std::string> command;
    bool operator==(const Service&) const = default;
};

struct Config {
    std::string runtime = "bookworm/3.11";   // a name of runtimes.hh's table
    std::string pipConstraint;               // absolute path of a pip constraints file; empty: none
    std::vector<std::string> volumes;        // absolute container paths
    std::vector<int> ports;                  // exposed ports, 1 to 65535
    std::map<std::string, std::string> envs; // environment of the runner image
    std::map<std::string, Repository> repositories; // name → apt repository
    Dependencies dependencies;
    std::string dockerImagePrefix; // "registry.example.com/team"; empty: no push
    std::string imageBaseName;     // empty: the project's name (+ extras)
    std::string entrypointName;    // an app console script; empty: Grocker's entrypoint
    std::string imageName;         // -n/--image-name only (not a file key); empty: derived
    std::map<std::string, Service> services; // name → service ("cron" is not one: see crontab)
    std::vector<std::string> crontab;        // `services: cron:` lines, for user grocker
    // The runner's platforms ("linux/amd64", normalised, in order): one runner each, under an
    // image index. Empty: this machine's only.
    std::vector<std::string> platforms;
    bool operator==(const Config&) const = default;
};

// What the command line of `grocker build` sets, as typed: checked here so that its mistakes
// are reported together with the files'. Empty/nullopt: not given.
struct ConfigOverrides {
    std::optional<std::string> runtime;        // -r/--runtime
    std::optional<std::string> pipConstraint;  // --pip-constraint, relative to the working folder
    std::vector<std::string> volumes;          // --volume
    std::vector<std::string> ports;            // --port
    std::vector<std::string> envs;             // --env KEY=VALUE
    std::optional<std::string> entrypointName; // -e/--entrypoint
    std::optional<std::string> imagePrefix;    // --image-prefix
    std::optional<std::string> imageBaseName;  // --image-base-name
    std::optional<std::string> imageName;      // -n/--image-name
    std::optional<std::string> platforms;      // --platform, comma-separated
};

// Every mistake of a configuration, one per line as "FILE:LINE:COLUMN: key 'x': problem" (or
// "command line: option '--x': problem"), after a first line counting them: what() has
// several lines, unlike other errors.
class ConfigError : public UsageError {
  public:
    explicit ConfigError(std::vector<std::string> problems);
    const std::vector<std::string>& problems() const { return problems_; }

  private:
    std::vector<std::string> problems_;
};

// Merges the packaged defaults, each of `files` in order (or `workDir/.grocker.yml` when
// `files` is empty and it exists), then `overrides`; relative `files` and command-line paths
// are taken from `workDir`. Checks everything before throwing one ConfigError.
Config loadConfig(const std::vector<std::filesystem::path>& files, const ConfigOverrides& overrides,
                  const std::filesystem::path& workDir = std::filesystem::current_path());

// Merges one YAML document named `fileName` (for messages) over `base`, its relative paths
// taken from `baseDir`. Throws ConfigError. For tests and fuzzing: loadConfig is the program's.
Config mergeConfigText(Config base, const std::string& yaml, const std::string& fileName,
                       const std::filesystem::path& baseDir);

// Every key of `config`, canonical (sorted keys, defaults included): dump() is stable across
// runs and machines, save pip_constraint's path. A cache key hashes the parts defining its image.
nlohmann::json toJson(const Config& config);

// The text of the runner's /etc/grocker/services.json (docs/services.md), ending in a newline.
std::string servicesJson(const Config& config, const std::string& app, const std::string& version,
                         const std::string& venv, const std::string& uwsgiPlugin = "python3");

// Splits a command as POSIX sh would split words: blanks separate, '…' and "…" quote, '\'
// escapes; nothing is expanded. Throws UsageError on an unterminated quote or trailing '\'.
std::vector<std::string> splitCommand(const std::string& command);

} // namespace grocker
