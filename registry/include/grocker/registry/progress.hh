#pragma once
// Progress of blob transfers, told to the process's display (grocker/display.hh): on a
// terminal a live line per blob in flight (bytes, rate), and a line per blob when it is done;
// quiet, nothing. A summary line at the end, unless quiet. Thread-safe: the workers of a pull
// or push report to one Progress.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace grocker::registry {

class Progress {
  public:
    enum class Mode { Quiet, Shown };
    // Quiet when asked or when the display is; shown otherwise.
    static Mode detect(bool quiet);

    // `verb`: "pulled" or "pushed".
    Progress(Mode mode, std::string verb);

    // A blob starts moving; returns its id.
    int start(std::string label, uint64_t total);
    // Bytes moved so far (absolute).
    void update(int id, uint64_t bytes);
    // Done: `note` says how ("", "exists", "mounted from x").
    void done(int id, const std::string& note = {});
    // A blob with nothing to move (already there): said only when verbose.
    void skipped(std::string label, uint64_t size, const std::string& note);
    // "pushed 5 blobs (312.4 MB) in 3.1 s, 2 already there".
    void summary(const std::string& what);

    static std::string formatBytes(uint64_t bytes);

  private:
    Mode mode_;
    std::string verb_;
    std::mutex mutex_;
    std::chrono::steady_clock::time_point begun_;
    uint64_t moved_ = 0;
    int transferred_ = 0, skipped_ = 0;
};

} // namespace grocker::registry
