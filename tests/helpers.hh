#pragma once
// Shared test helpers: temporary folders, files, running a command and reading its output.

#include <filesystem>
#include <string>
#include <vector>

namespace grocker::test {

// A fresh folder under $TMPDIR, removed at the end of the test.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

void writeTestFile(const std::filesystem::path& path, const std::string& content, unsigned mode = 0644);

struct RunResult {
    int status;        // exit status, or 128 + signal
    std::string out;   // stdout
    std::string err;   // stderr
};
// Runs argv (argv[0] looked up in PATH) and waits for it.
RunResult run(const std::vector<std::string>& argv, const std::string& input = "");

// The test data folder (tests/ in the source tree).
std::filesystem::path testData();

} // namespace grocker::test
