#include "build-log.hh"

#include "grocker/error.hh"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <unistd.h>

namespace grocker::build {

namespace fs = std::filesystem;

std::vector<fs::path> buildLogs(const fs::path& root)
{
    std::vector<fs::path> logs;
    std::error_code ec;
    for (auto& e : fs::directory_iterator(root / "logs", ec))
        if (e.path().extension() == ".log" && e.is_regular_file(ec)) logs.push_back(e.path());
    std::sort(logs.begin(), logs.end());
    return logs;
}

fs::path newBuildLog(const fs::path& root, const std::string& release)
{
    auto dir = root / "logs";
    fs::create_directories(dir);
    auto logs = buildLogs(root);
    uint64_t total = 0;
    std::vector<uint64_t> sizes;
    for (auto& l : logs) {
        std::error_code ec;
        auto size = fs::file_size(l, ec);
        sizes.push_back(ec ? 0 : size);
        total += sizes.back();
    }
    // Oldest first, until the new log fits: another build may remove the same one (ENOENT).
    for (size_t i = 0;
         i < logs.size() && (logs.size() - i >= keptLogs || total + logLimit > logsLimit); i++) {
        std::error_code ec;
        fs::remove(logs[i], ec);
        total -= sizes[i];
    }
    char when[32];
    auto now = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    std::strftime(when, sizeof when, "%Y%m%d-%H%M%S", &tm);
    std::string name;
    for (char c : release.substr(0, 60))
        name += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_'
                    ? c
                    : '_';
    return dir / concat(when, "-", ::getpid(), "-", name, ".log");
}

fs::path findBuildLog(const fs::path& root, const std::string& name)
{
    auto logs = buildLogs(root);
    if (logs.empty())
        throw UsageError("no build log in the store '", root.string(),
                         "': grocker build keeps one there for each build");
    if (name.empty()) return logs.back();
    for (auto it = logs.rbegin(); it != logs.rend(); ++it)
        if (it->filename().string().starts_with(name)) return *it;
    for (auto it = logs.rbegin(); it != logs.rend(); ++it) {
        // The release part: after "YYYYMMDD-HHMMSS-PID-".
        auto file = it->stem().string();
        size_t dashes = 0, at = 0;
        while (dashes < 3 && at < file.size())
            if (file[at++] == '-') dashes++;
        if (file.substr(at).find(name) != std::string::npos) return *it;
    }
    std::string there;
    for (auto& l : logs)
        there += "\n  " + l.filename().string();
    throw UsageError("no build log named '", name, "' in the store '", root.string(),
                     "'; there are:", there);
}

} // namespace grocker::build
