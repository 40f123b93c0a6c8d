#pragma once
// What grocker tells the person running it, in one place: messages, warnings, the steps of a
// build with their output, and blob transfers. Drawn for a terminal (tty: running steps and
// transfers live at the bottom, redrawn in place, each step's last output lines under it,
// collapsed when it succeeds), for a log (plain: one line per event, prefixed with the time
// since the start), or not at all (quiet: warnings and errors only). Everything, unfiltered,
// also goes to the build's log file when one is open. Thread-safe: pulls and pushes report
// from their workers; step output is read by the thread that waits for the step (no thread of
// its own: sandboxes are cloned from the build's thread, which must find no lock held).

#include "grocker/file.hh"

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <vector>

namespace grocker {

enum class ProgressMode { Quiet, Plain, Tty };

// --progress's value: auto (tty when standard error is a terminal, else plain), tty, plain or
// quiet; "" takes $GROCKER_PROGRESS, then auto. `quiet` (-q) wins. Throws a UsageError.
ProgressMode progressMode(const std::string& option, bool quiet);

// Step output a person cannot act on, hidden unless verbose (debconf's notices, pip's progress
// bars and upgrade notices); kept in the log.
bool isNoise(std::string_view line);

// A line of a command's output made safe to print: the text after its last carriage return (a
// progress bar redrawn), terminal escape sequences and control characters removed, invalid
// UTF-8 replaced. A hostile build step must not be able to rewrite the user's terminal.
std::string printableLine(std::string_view raw);

class Display {
  public:
    using Clock = std::chrono::steady_clock;
    // Aborted: it could not be run or waited for (the error says why, elsewhere).
    enum class Outcome { Done, Failed, Retried, Aborted };

    // Starts afresh (no steps, no transfers, the clock at 0), writing to `fd` (standard error;
    // tests give a file).
    void configure(ProgressMode mode, bool verbose, int fd = 2);
    ProgressMode mode() const { return mode_; }
    bool verbose() const { return verbose_; }

    // An event: "[ 12.3s] text" in plain, a line above the live ones on a terminal.
    void message(const std::string& text);
    // Shown only when verbose; always logged.
    void detail(const std::string& text);
    // "grocker: warning: text", shown even when quiet.
    void warning(const std::string& text);
    // "grocker: error: text" (how main reports a failed command), logged too.
    void error(const std::string& text);

    // A step starts running (`how`: "over the root's Python slice", or ""); returns its id.
    int beginStep(const std::string& name, const std::string& how = "");
    // A pipe for the step's output: returns its write end, to hand to the command (as its
    // standard output and error) and then close; the display reads the other end.
    AutoCloseFD outputPipe(int step);
    // Reads the running steps' output and keeps the terminal live until the process `pid`, a
    // child of this one, has ended (it is not reaped: the caller waits for it).
    void waitForExit(pid_t pid);
    // The step ended. Failed: its last lines and the log's path are shown (both modes); `why`
    // says how it failed ("exited with status 1"). Retried: it runs again, differently.
    // Aborted: only logged.
    void endStep(int step, Outcome outcome, const std::string& why = "");
    // A step that did not run: `how` is "cached", "from the build cache", ...
    void skippedStep(const std::string& name, const std::string& how);

    // Blob transfers (pulls and pushes): live lines on a terminal, a line each when done.
    int beginTransfer(const std::string& label, uint64_t total);
    void transferProgress(int id, uint64_t bytes);
    // `line` says what was done ("pulled layer sha256:… (3.1 MB) in 0.4 s"); `pushed` counts
    // the bytes as pushed rather than pulled, for the summary. An id of -1: a transfer not
    // shown, whose bytes count; an empty line: nothing said.
    void endTransfer(int id, const std::string& line, uint64_t bytes, bool pushed);

    // Everything from now on is also appended to `file` (made 0600), at most `limit` bytes.
    void openLog(const std::filesystem::path& file, uint64_t limit);
    void closeLog();
    std::filesystem::path logPath() const;

    // The table at the end of a build: every step (ran or cached, and its time), the bytes
    // pulled and pushed, then `result` lines ("image: …"). Nothing when quiet.
    void summary(const std::vector<std::string>& result);

    // Clears the live lines (before the process prints its result or exits).
    void finish();

    // The time spent in the display so far (drawing, reading and writing lines): its cost.
    double busySeconds() const;

  private:
    struct Step {
        std::string name, how, shortName;
        enum class State { Running, Done, Failed, Retried, Skipped } state = State::Running;
        std::string skippedHow;
        Clock::time_point started;
        double seconds = 0;
        AutoCloseFD output;
        std::string partial;
        std::deque<std::string> tail;
    };
    struct Transfer {
        std::string label;
        uint64_t total = 0, bytes = 0;
        Clock::time_point started;
        bool active = true;
    };

    // The lock, and the time it was held added to busy_.
    struct Busy {
        explicit Busy(const Display& d) : display(d), lock(d.mutex_), since(Clock::now()) {}
        ~Busy() { display.busy_ += Clock::now() - since; }
        const Display& display;
        std::lock_guard<std::mutex> lock;
        Clock::time_point since;
    };

    std::string stamp() const;
    void printLocked(const std::string& plainLine, const std::string& ttyLine);
    void logLocked(const std::string& line);
    void readOutputLocked(Step& step, bool final);
    void lineLocked(Step& step, std::string_view raw);
    void drawLocked(bool force);
    std::string eraseLiveLocked(size_t width);
    void writeErr(const std::string& text);

    mutable std::mutex mutex_;
    ProgressMode mode_ = ProgressMode::Plain;
    bool verbose_ = false;
    int fd_ = 2;
    Clock::time_point begun_ = Clock::now(), lastDraw_;
    std::vector<Step> steps_;
    std::vector<Transfer> transfers_;
    std::string pending_; // lines to print above the live ones at the next draw
    std::vector<size_t> liveWidths_;
    uint64_t pulled_ = 0, pushed_ = 0;
    AutoCloseFD log_;
    std::filesystem::path logPath_;
    uint64_t logBytes_ = 0, logLimit_ = 0;
    bool logCut_ = false;
    mutable Clock::duration busy_{};
};

// The process's display.
Display& display();

} // namespace grocker
