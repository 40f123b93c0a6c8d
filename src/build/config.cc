// The configuration's layers merged in order (packaged defaults, files, command line) and checked
// at one checkpoint; its canonical JSON for cache keys.
#include "config.hh"

#include "config-layer.hh"
#include "grocker/file.hh"
#include "grocker/oci/image.hh"

#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace grocker {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace config;

namespace {

// The text of `path`, cut after `limit` + 1 bytes: enough to tell that it is too large, without
// reading a huge file (or an endless one, such as /dev/zero) whole.
std::string readAtMost(const fs::path& path, size_t limit)
{
    AutoCloseFD fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw SysError("unable to open '", path.string(), "'");
    std::string text;
    char buffer[65536];
    while (text.size() <= limit) {
        size_t n = readSome(fd.get(), buffer, sizeof buffer, path.string());
        if (n == 0) break;
        text.append(buffer, n);
    }
    return text;
}

void mergeFile(const fs::path& path, const std::string& name, Config& config,
               std::vector<std::string>& problems)
{
    std::string text;
    try {
        text = readAtMost(path, maxConfigFileSize);
    } catch (const SysError& e) {
        problems.push_back(
            concat(name, ": cannot read the configuration file: ", std::strerror(e.errNo())));
        return;
    } catch (const Error& e) {
        problems.push_back(concat(name, ": cannot read the configuration file: ", e.message()));
        return;
    }
    FileLayer(name, fs::absolute(path).parent_path(), config, problems).merge(text);
}

// --- The command line, the last layer ---------------------------------------------------------

void mergeOverrides(const ConfigOverrides& o, const fs::path& workDir, Config& c,
                    std::vector<std::string>& problems)
{
    auto problem = [&](std::string_view option, const std::string& what) {
        problems.push_back(concat("command line: option '", option, "': ", what));
    };
    if (o.runtime) {
        if (auto p = checkRuntime(*o.runtime))
            problem("--runtime", *p);
        else
            c.runtime = *o.runtime;
    }
    if (o.pipConstraint) {
        std::string path;
        if (o.pipConstraint->empty())
            c.pipConstraint.clear();
        else if (auto p = resolveReadableFile(*o.pipConstraint, workDir, path))
            problem("--pip-constraint", *p);
        else
            c.pipConstraint = path;
    }
    for (auto path : o.volumes) {
        if (auto p = checkVolume(path))
            problem("--volume", *p);
        else
            appendUnique(c.volumes, path);
    }
    for (const auto& text : o.ports) {
        int port = 0;
        if (auto p = parsePort(text, port))
            problem("--port", *p);
        else
            appendUnique(c.ports, port);
    }
    for (const auto& kv : o.envs) {
        auto eq = kv.find('=');
        if (eq == std::string::npos)
            problem("--env", concat(quote(kv), " must be KEY=VALUE"));
        else if (auto p = checkEnvName(kv.substr(0, eq)))
            problem("--env", *p);
        else if (auto v = checkEnvValue(std::string_view(kv).substr(eq + 1)))
            problem("--env", concat("the value of ", quote(kv.substr(0, eq)), " ", *v));
        else
            c.envs[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    auto name = [&](const std::optional<std::string>& value, std::string_view option,
                    std::string& to, Problem (*check)(std::string_view)) {
        if (!value) return;
        if (value->empty())
            to.clear();
        else if (auto p = check(*value))
            problem(option, *p);
        else
            to = *value;
    };
    name(o.entrypointName, "--entrypoint", c.entrypointName, checkEntrypointName);
    name(o.imagePrefix, "--image-prefix", c.dockerImagePrefix, checkImagePrefix);
    name(o.imageBaseName, "--image-base-name", c.imageBaseName, checkImageBaseName);
    name(o.imageName, "--image-name", c.imageName, checkImageName);
    if (o.platforms) {
        c.platforms.clear();
        std::vector<std::string> listed;
        for (size_t start = 0;;) {
            auto comma = o.platforms->find(',', start);
            listed.push_back(o.platforms->substr(start, comma - start));
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
        for (auto& p : listed)
            if (auto text = checkPlatform(p))
                problem("--platform", *text);
            else
                appendUnique(c.platforms, oci::Platform::parse(p).str());
    }
}

std::string listProblems(const std::vector<std::string>& problems)
{
    std::string s = concat("the configuration has ", problems.size(),
                           problems.size() == 1 ? " mistake:" : " mistakes:");
    for (const auto& p : problems)
        s += concat("\n", p);
    return s;
}
} // namespace

ConfigError::ConfigError(std::vector<std::string> problems)
    : UsageError(listProblems(problems)), problems_(std::move(problems))
{
}

Config loadConfig(const std::vector<fs::path>& files, const ConfigOverrides& overrides,
                  const fs::path& workDir)
{
    auto dir = fs::absolute(workDir);
    Config config; // the packaged defaults are Config's initial values
    std::vector<std::string> problems;
    if (files.empty()) {
        auto implicit = dir / ".grocker.yml";
        std::error_code ec;
        if (fs::exists(fs::symlink_status(implicit, ec)))
            mergeFile(implicit, ".grocker.yml", config, problems);
    }
    for (const auto& f : files)
        mergeFile(f.is_absolute() ? f : dir / f, f.string(), config, problems);
    mergeOverrides(overrides, dir, config, problems);
    // Checkpoint: every layer has been read, so the user sees all of the mistakes at once.
    if (!problems.empty()) throw ConfigError(std::move(problems));
    return config;
}

Config mergeConfigText(Config base, const std::string& yaml, const std::string& fileName,
                       const fs::path& baseDir)
{
    std::vector<std::string> problems;
    FileLayer(fileName, fs::absolute(baseDir), base, problems).merge(yaml);
    if (!problems.empty()) throw ConfigError(std::move(problems));
    return base;
}

// The keys of a configuration file, so that the result reads back as one (JSON is YAML).
json toJson(const Config& c)
{
    json repos = json::object();
    for (const auto& [name, r] : c.repositories)
        repos[name] = json{{"uri", r.uri}, {"key", r.key}};
    json services = json::object();
    for (const auto& [name, s] : c.services)
        services[name] = serviceJson(s);
    services["cron"] = c.crontab;
    return json{
        {"runtime", c.runtime},
        {"pip_constraint", c.pipConstraint},
        {"volumes", c.volumes},
        {"ports", c.ports},
        {"envs", c.envs},
        {"repositories", repos},
        {"dependencies", {{"run", c.dependencies.run}, {"build", c.dependencies.build}}},
        {"docker_image_prefix", c.dockerImagePrefix},
        {"image_base_name", c.imageBaseName},
        {"entrypoint_name", c.entrypointName},
        {"services", services},
        {"platforms", c.platforms},
    };
}

} // namespace grocker
