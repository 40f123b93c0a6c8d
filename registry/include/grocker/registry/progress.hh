#pragma once
// Progress of blob transfers. On a terminal: one live line per blob in flight (bytes, rate),
// redrawn at most ten times a second, and a line per blob when it is done. Without a terminal
// (CI logs): only the line per blob when done. Quiet: nothing. Always a summary at the end,
// unless quiet. Thread-safe: the workers of a pull or push report to one Progress.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

namespace grocker::registry {

class Progress {
  public:
    enum class Mode { Quiet, Plain, Live };
    // Live when `out` is stderr and stderr is a terminal, Plain otherwise; Quiet when asked.
    static Mode detect(bool quiet);

    Progress(Mode mode, std::ostream& out, std::string verb);
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    // A blob starts moving; returns its id.
    int start(std::string label, uint64_t total);
    // Bytes moved so far (absolute).
    void update(int id, uint64_t bytes);
    // Done: `note` says how ("", "exists", "mounted from x").
    void done(int id, const std::string& note = {});
    // A blob with nothing to move (already there).
    void skipped(std::string label, uint64_t size, const std::string& note);
    // "pushed 5 blobs (312.4 MB) in 3.1 s, 2 already there".
    void summary(const std::string& what);

    static std::string formatBytes(uint64_t bytes);

  private:
    struct Entry {
        std::string label;
        uint64_t total = 0, bytes = 0;
        std::chrono::steady_clock::time_point started;
        bool active = true;
    };
    void redraw(bool force);
    void clearLive();
    std::string line(const Entry& e, std::chrono::steady_clock::time_point now) const;

    Mode mode_;
    std::ostream& out_;
    std::string verb_;
    std::mutex mutex_;
    std::vector<Entry> entries_;
    size_t liveLines_ = 0;
    std::chrono::steady_clock::time_point begun_, lastDraw_;
    uint64_t moved_ = 0;
    int transferred_ = 0, skipped_ = 0;
};

} // namespace grocker::registry
