#pragma once
// The checks of configuration values, alike for files (config-yaml.cc and the files beside it)
// and the command line (config.cc). Each returns the problem, or nothing when the value is good.
// Private to the configuration: loadConfig (config.hh) is what the rest of grocker calls.

#include "grocker/strings.hh"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace grocker::config {

using Problem = std::optional<std::string>;

constexpr std::string_view topKeys[] = {"runtime",
                                        "pip_constraint",
                                        "volumes",
                                        "ports",
                                        "envs",
                                        "repositories",
                                        "dependencies",
                                        "docker_image_prefix",
                                        "image_base_name",
                                        "entrypoint_name",
                                        "services",
                                        "platforms"};
constexpr std::string_view repositoryKeys[] = {"uri", "key"};
constexpr std::string_view dependencyKeys[] = {"run", "build"};
constexpr std::string_view serviceKeys[] = {"wsgi", "command", "static", "media", "processes"};

// A configuration is a few kilobytes: a larger file is likely a wrong one (a log, an image).
constexpr size_t maxConfigFileSize = 1024 * 1024;

// "unknown key (did you mean 'ports'?)", or the list of `known` keys when none is near.
std::string unknownKey(std::string_view key, std::span<const std::string_view> known);

// `text` in quotes for a message: cut when long, control characters escaped.
std::string quote(std::string_view text);
bool isDigits(std::string_view s);
std::optional<int> smallInt(std::string_view text, int min, int max);
bool validUtf8(std::string_view s);
bool isPlainName(std::string_view s);

// These take the value as written and may put it in canonical form (paths).
Problem checkVolume(std::string& path);
Problem checkServedFolder(std::string& path, std::string_view what);
Problem parsePort(std::string_view text, int& port);
Problem checkEnvValue(std::string_view value);
Problem checkEnvName(std::string_view name);
Problem resolveReadableFile(std::string_view text, const std::filesystem::path& baseDir,
                            std::string& out);
Problem checkRuntime(std::string_view name);
// "linux/arm64": a Linux platform grocker can build for (its Debian architecture known).
Problem checkPlatform(std::string_view text);
Problem checkImagePrefix(std::string_view prefix);
Problem checkImageBaseName(std::string_view name);
Problem checkImageName(std::string_view name);
Problem checkEntrypointName(std::string_view name);
Problem checkPackage(std::string_view pkg);
Problem checkSourcesLine(std::string_view text);
Problem checkArmoredKey(std::string_view text);
Problem checkWsgi(std::string_view text);
Problem checkCronLine(std::string_view text); // config-crontab.cc

template <typename T> void appendUnique(std::vector<T>& to, const T& item)
{
    if (std::find(to.begin(), to.end(), item) == to.end()) to.push_back(item);
}

} // namespace grocker::config
