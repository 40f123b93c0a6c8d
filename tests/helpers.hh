#pragma once
// Shared test helpers: temporary folders, files, running a command and reading its output,
// work spread over child processes.

#include <filesystem>
#include <functional>
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

void writeTestFile(const std::filesystem::path& path, const std::string& content,
                   unsigned mode = 0644);

struct RunResult {
    int status;      // exit status, or 128 + signal
    std::string out; // stdout
    std::string err; // stderr
};
// Runs argv (argv[0] looked up in PATH) and waits for it.
RunResult run(const std::vector<std::string>& argv, const std::string& input = "");

// Runs work(0) ... work(n - 1) at once, each in a child process of its own, and waits for them
// all. A child that throws (its message goes to stderr) or dies fails the test, named by k.
void inChildProcesses(int n, const std::function<void(int k)>& work);

// The test data folder (tests/ in the source tree).
std::filesystem::path testData();

} // namespace grocker::test
