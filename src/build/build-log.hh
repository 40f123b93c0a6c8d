#pragma once
// The logs of builds, kept in the store (logs/): each build's whole output, unfiltered, as
// `grocker log` shows it. Bounded: the newest `keptLogs` only, at most `logLimit` bytes each
// and `logsLimit` in all.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace grocker::build {

inline constexpr size_t keptLogs = 20;
inline constexpr uint64_t logLimit = 16 << 20;
inline constexpr uint64_t logsLimit = 64 << 20;

// The logs of the store at `root`, oldest first (their names start with the time).
std::vector<std::filesystem::path> buildLogs(const std::filesystem::path& root);

// A new log's path for a build of `release`, after removing the oldest logs so that, with it,
// the bounds hold.
std::filesystem::path newBuildLog(const std::filesystem::path& root, const std::string& release);

// The log a user names: "" for the newest, else a log's file name (or its start), or the
// newest whose release part contains `name`. Throws a UsageError that lists what there is.
std::filesystem::path findBuildLog(const std::filesystem::path& root, const std::string& name);

} // namespace grocker::build
