#include "grocker/display.hh"

#include "grocker/error.hh"
#include "grocker/strings.hh"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace grocker {

namespace {

constexpr size_t tailLines = 40; // shown when a step fails
constexpr size_t liveLines = 4;  // of a running step, on a terminal
constexpr size_t maxLine = 64 * 1024;

bool stderrIsTerminal()
{
    const char* term = std::getenv("TERM");
    return ::isatty(2) && !(term && std::string_view(term) == "dumb");
}

std::string seconds(double s)
{
    char b[32];
    std::snprintf(b, sizeof b, "%.1fs", s);
    return b;
}

// Columns of a printable line: one per code point (wide characters are rare in build output).
size_t columns(std::string_view s)
{
    return size_t(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

std::string cut(std::string_view s, size_t width)
{
    size_t n = 0;
    for (size_t i = 0; i < s.size(); i++)
        if ((s[i] & 0xC0) != 0x80 && n++ == width) return std::string(s.substr(0, i));
    return std::string(s);
}

// "compile: grocker-greeting 1.0.0" → "compile grocker-greeting", "compile: /src/app/" →
// "compile app": what prefixes its output.
std::string shortNameOf(const std::string& name)
{
    auto colon = name.find(": ");
    if (colon == std::string::npos) return cut(name, 24);
    auto rest = std::string_view(name).substr(colon + 2);
    auto word = rest.substr(0, rest.find(' '));
    while (word.size() > 1 && word.ends_with('/'))
        word.remove_suffix(1);
    if (auto slash = word.rfind('/'); slash != std::string_view::npos && slash + 1 < word.size())
        word = word.substr(slash + 1);
    return cut(name.substr(0, colon) + " " + std::string(word), 32);
}

size_t terminalWidth(int fd)
{
    winsize w{};
    if (::ioctl(fd, TIOCGWINSZ, &w) == 0 && w.ws_col > 8) return w.ws_col;
    return 80;
}

} // namespace

ProgressMode progressMode(const std::string& option, bool quiet)
{
    std::string v = option;
    bool fromEnv = false;
    if (v.empty())
        if (const char* e = std::getenv("GROCKER_PROGRESS"); e && *e) {
            v = e;
            fromEnv = true;
        }
    ProgressMode m;
    if (v.empty() || v == "auto")
        m = stderrIsTerminal() ? ProgressMode::Tty : ProgressMode::Plain;
    else if (v == "tty")
        m = ProgressMode::Tty;
    else if (v == "plain")
        m = ProgressMode::Plain;
    else if (v == "quiet")
        m = ProgressMode::Quiet;
    else
        throw UsageError(fromEnv ? "GROCKER_PROGRESS" : "--progress", " is '", v,
                         "': use auto, tty, plain or quiet");
    return quiet ? ProgressMode::Quiet : m;
}

bool isNoise(std::string_view l)
{
    auto starts = [&](std::string_view p) { return l.starts_with(p); };
    auto has = [&](std::string_view p) { return l.find(p) != std::string_view::npos; };
    // debconf without a terminal or apt-utils, in every apt-get install.
    if (starts("debconf: ")) return true;
    // apt's database progress, dpkg's per-package chatter in a minbase.
    if (starts("(Reading database ...")) return true;
    // pip: progress bars (what is left of a redrawn line), notices about itself.
    if (has("\u2501") || has("|\u2588")) return true;
    if (starts("[notice] ")) return true;
    if (starts("WARNING: Running pip as the 'root' user")) return true;
    return false;
}

std::string printableLine(std::string_view raw)
{
    // A progress bar redraws its line with \r: what a terminal would show is the last text.
    while (!raw.empty() && (raw.back() == '\r' || raw.back() == '\n'))
        raw.remove_suffix(1);
    if (auto cr = raw.rfind('\r'); cr != std::string_view::npos) raw = raw.substr(cr + 1);
    std::string out;
    out.reserve(raw.size());
    for (size_t i = 0; i < raw.size();) {
        auto c = static_cast<unsigned char>(raw[i]);
        if (c == 0x1b) { // ESC: skip the sequence (CSI ... final, OSC ... BEL/ST, ESC x)
            i++;
            if (i < raw.size() && raw[i] == '[') {
                i++;
                while (i < raw.size() && !(raw[i] >= 0x40 && raw[i] <= 0x7e))
                    i++;
                i++;
            } else if (i < raw.size() && raw[i] == ']') {
                while (i < raw.size() && raw[i] != '\a' && raw[i] != 0x1b)
                    i++;
                i += i < raw.size() && raw[i] == 0x1b ? 2 : 1;
            } else {
                i++;
            }
            continue;
        }
        if (c == '\t') {
            out += "    ";
            i++;
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            i++;
            continue;
        }
        if (c < 0x80) {
            out += char(c);
            i++;
            continue;
        }
        // UTF-8: a valid sequence is kept, but not the C1 controls (U+0080..U+009F, which some
        // terminals obey); anything else is one replacement character.
        size_t len = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        bool valid = len && i + len <= raw.size() && c < 0xF5;
        for (size_t k = 1; valid && k < len; k++)
            valid = (static_cast<unsigned char>(raw[i + k]) & 0xC0) == 0x80;
        if (valid && len == 3) {
            auto c1 = static_cast<unsigned char>(raw[i + 1]);
            valid = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
        }
        if (valid && len == 4) {
            auto c1 = static_cast<unsigned char>(raw[i + 1]);
            valid = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
        }
        if (!valid) {
            out += "\uFFFD";
            i++;
            continue;
        }
        bool c1control = len == 2 && c == 0xC2 && static_cast<unsigned char>(raw[i + 1]) < 0xA0;
        if (!c1control) out.append(raw.substr(i, len));
        i += len;
    }
    return out;
}

Display& display()
{
    static Display d;
    return d;
}

void Display::configure(ProgressMode mode, bool verbose, int fd)
{
    Busy g(*this);
    mode_ = mode;
    verbose_ = verbose;
    fd_ = fd;
    begun_ = Clock::now();
    steps_.clear();
    transfers_.clear();
    pending_.clear();
    liveWidths_.clear();
    pulled_ = pushed_ = 0;
    busy_ = {};
}

std::string Display::stamp() const
{
    char b[32];
    std::snprintf(b, sizeof b, "[%5.1fs] ",
                  std::chrono::duration<double>(Clock::now() - begun_).count());
    return b;
}

void Display::writeErr(const std::string& text)
{
    for (size_t done = 0; done < text.size();) {
        auto n = ::write(fd_, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; // stderr closed: nothing to tell anyone
        done += size_t(n);
    }
}

void Display::logLocked(const std::string& line)
{
    if (!log_ || logCut_) return;
    std::string text = stamp() + line + "\n";
    // Room is kept for the line that says so.
    if (logBytes_ + text.size() + 128 > logLimit_) {
        text = stamp() + "grocker: the log is cut here: it reached " + humanBytes(logLimit_) + "\n";
        logCut_ = true;
    }
    logBytes_ += text.size();
    (void)!::write(log_.get(), text.data(), text.size());
}

void Display::printLocked(const std::string& plainLine, const std::string& ttyLine)
{
    if (mode_ == ProgressMode::Plain) {
        writeErr(stamp() + plainLine + "\n");
    } else if (mode_ == ProgressMode::Tty) {
        pending_ += ttyLine + "\n";
        drawLocked(true);
    }
}

void Display::message(const std::string& text)
{
    Busy g(*this);
    logLocked(text);
    printLocked(text, text);
}

void Display::detail(const std::string& text)
{
    Busy g(*this);
    logLocked(text);
    if (verbose_) printLocked(text, text);
}

void Display::warning(const std::string& text)
{
    Busy g(*this);
    std::string line = "grocker: warning: " + text;
    logLocked(line);
    if (mode_ == ProgressMode::Tty) {
        pending_ += line + "\n";
        drawLocked(true);
    } else {
        writeErr(line + "\n");
    }
}

void Display::error(const std::string& text)
{
    Busy g(*this);
    std::string line = "grocker: error: " + text;
    logLocked(line);
    if (mode_ == ProgressMode::Tty && !liveWidths_.empty()) {
        pending_ += line + "\n";
        drawLocked(true);
    } else {
        writeErr(line + "\n");
    }
}

int Display::beginStep(const std::string& name, const std::string& how)
{
    Busy g(*this);
    Step s;
    s.name = name;
    s.how = how;
    s.shortName = shortNameOf(name);
    s.started = Clock::now();
    steps_.push_back(std::move(s));
    std::string text = name + ": running" + (how.empty() ? "" : " " + how);
    logLocked(text);
    if (mode_ == ProgressMode::Plain) writeErr(stamp() + text + "\n");
    if (mode_ == ProgressMode::Tty) drawLocked(true);
    return int(steps_.size() - 1);
}

AutoCloseFD Display::outputPipe(int id)
{
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) < 0) throw SysError("unable to make a pipe for a step's output");
    AutoCloseFD read(fds[0]), write(fds[1]);
    if (::fcntl(read.get(), F_SETFL, O_NONBLOCK) < 0)
        throw SysError("unable to make a step's output pipe non-blocking");
    Busy g(*this);
    steps_[size_t(id)].output = std::move(read);
    return write;
}

void Display::lineLocked(Step& step, std::string_view raw)
{
    auto line = printableLine(raw);
    logLocked(step.shortName + " | " + line);
    if (!verbose_ && isNoise(line)) return;
    step.tail.push_back(line);
    if (step.tail.size() > tailLines) step.tail.pop_front();
    if (mode_ == ProgressMode::Plain) writeErr(stamp() + step.shortName + " | " + line + "\n");
}

void Display::readOutputLocked(Step& step, bool final)
{
    char buf[16384];
    while (step.output) {
        auto n = ::read(step.output.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            // EOF: every writer is gone. EAGAIN: nothing more for now; at the end the step's
            // processes are gone, and a writer left is another sandbox's init (which inherited
            // the pipe when it was cloned), which writes nothing.
            if (n == 0 || final) step.output.reset();
            break;
        }
        step.partial.append(buf, size_t(n));
        size_t start = 0;
        for (size_t nl; (nl = step.partial.find('\n', start)) != std::string::npos; start = nl + 1)
            lineLocked(step, std::string_view(step.partial).substr(start, nl - start));
        step.partial.erase(0, start);
        if (step.partial.size() > maxLine) {
            lineLocked(step, step.partial);
            step.partial.clear();
        }
    }
    if (final && !step.partial.empty()) {
        lineLocked(step, step.partial);
        step.partial.clear();
    }
}

void Display::waitForExit(pid_t pid)
{
    AutoCloseFD pidfd(int(::syscall(SYS_pidfd_open, pid, 0)));
    for (;;) {
        std::vector<pollfd> fds;
        std::vector<size_t> which;
        {
            Busy g(*this);
            fds.push_back({pidfd.get(), POLLIN, 0});
            for (size_t i = 0; i < steps_.size(); i++)
                if (steps_[i].output) {
                    fds.push_back({steps_[i].output.get(), POLLIN, 0});
                    which.push_back(i);
                }
        }
        // Without a pidfd (Linux before 5.3), the process is looked at every 50 ms.
        int timeout = mode_ == ProgressMode::Tty || !pidfd ? (pidfd ? 100 : 50) : -1;
        int n = ::poll(fds.data(), fds.size(), timeout);
        if (n < 0 && errno != EINTR) throw SysError("unable to wait for a step's output");
        {
            Busy g(*this);
            for (size_t k = 1; n > 0 && k < fds.size(); k++)
                if (fds[k].revents) readOutputLocked(steps_[which[k - 1]], false);
            drawLocked(false);
        }
        if (pidfd) {
            if (n > 0 && fds[0].revents) return;
        } else {
            siginfo_t si{};
            if (::waitid(P_PID, id_t(pid), &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
                si.si_pid == pid)
                return;
        }
    }
}

void Display::endStep(int id, Outcome outcome, const std::string& why)
{
    Busy g(*this);
    auto& s = steps_[size_t(id)];
    readOutputLocked(s, true);
    s.output.reset();
    s.seconds = std::chrono::duration<double>(Clock::now() - s.started).count();
    if (outcome == Outcome::Retried || outcome == Outcome::Aborted) {
        s.state = outcome == Outcome::Retried ? Step::State::Retried : Step::State::Failed;
        logLocked(s.name + ": " + (why.empty() ? "stopped" : why) + " after " + seconds(s.seconds));
        drawLocked(true);
        return;
    }
    if (outcome == Outcome::Done) {
        s.state = Step::State::Done;
        logLocked(s.name + ": done in " + seconds(s.seconds));
        printLocked(s.name + ": done in " + seconds(s.seconds),
                    "\u2714 " + s.name + "  " + seconds(s.seconds));
        return;
    }
    s.state = Step::State::Failed;
    std::string head =
        s.name + ": failed after " + seconds(s.seconds) + (why.empty() ? "" : ": " + why) +
        (s.tail.empty()              ? ", with no output"
         : s.tail.size() < tailLines ? "; its output:"
                                     : "; its last " + std::to_string(tailLines) + " lines:");
    logLocked(head);
    std::string block;
    for (auto& l : s.tail)
        block += "  | " + l + "\n";
    if (!logPath_.empty())
        block += "  the build's whole log: " + logPath_.string() + " (grocker log)\n";
    if (mode_ == ProgressMode::Tty) {
        pending_ += "\u2718 " + head + "\n" + block;
        drawLocked(true);
    } else {
        // Even when quiet: what failed is what the user needs.
        writeErr((mode_ == ProgressMode::Plain ? stamp() : "") + head + "\n" + block);
    }
}

void Display::skippedStep(const std::string& name, const std::string& how)
{
    Busy g(*this);
    Step s;
    s.name = name;
    s.state = Step::State::Skipped;
    s.skippedHow = how;
    steps_.push_back(std::move(s));
    logLocked(name + ": " + how);
    printLocked(name + ": " + how, "\u00b7 " + name + "  " + how);
}

int Display::beginTransfer(const std::string& label, uint64_t total)
{
    Busy g(*this);
    transfers_.push_back(Transfer{label, total, 0, Clock::now(), true});
    drawLocked(true);
    return int(transfers_.size() - 1);
}

void Display::transferProgress(int id, uint64_t bytes)
{
    if (mode_ != ProgressMode::Tty) return;
    Busy g(*this);
    transfers_[size_t(id)].bytes = bytes;
    drawLocked(false);
}

void Display::endTransfer(int id, const std::string& line, uint64_t bytes, bool pushed)
{
    Busy g(*this);
    if (id >= 0) transfers_[size_t(id)].active = false;
    (pushed ? pushed_ : pulled_) += bytes;
    if (line.empty()) {
        drawLocked(true);
        return;
    }
    logLocked(line);
    printLocked(line, line);
}

void Display::openLog(const std::filesystem::path& file, uint64_t limit)
{
    AutoCloseFD fd(
        ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) throw SysError("unable to open the log '", file.string(), "'");
    Busy g(*this);
    log_ = std::move(fd);
    logPath_ = file;
    logBytes_ = 0;
    logLimit_ = limit;
    logCut_ = false;
}

void Display::closeLog()
{
    Busy g(*this);
    log_.reset();
}

std::filesystem::path Display::logPath() const
{
    Busy g(*this);
    return logPath_;
}

std::string Display::eraseLiveLocked(size_t width)
{
    if (liveWidths_.empty()) return {};
    // Rows the live lines take now: more than one each when the terminal got narrower. Then
    // the new lines are not drawn over the old ones row for row: those are cleared first.
    size_t rows = 0;
    for (auto w : liveWidths_)
        rows += std::max<size_t>(1, (w + width - 1) / width);
    bool wrapped = rows != liveWidths_.size();
    liveWidths_.clear();
    return "\033[" + std::to_string(rows) + "A\r" + (wrapped ? "\033[J" : "");
}

void Display::drawLocked(bool force)
{
    if (mode_ != ProgressMode::Tty) return;
    auto now = Clock::now();
    if (!force && now - lastDraw_ < std::chrono::milliseconds(100)) return;
    lastDraw_ = now;
    size_t width = terminalWidth(fd_);
    // Drawn over the last frame, each line cleared to its end, what is left below cleared at
    // the end: no moment shows a blank area (no flicker).
    std::string frame = eraseLiveLocked(width);
    for (size_t start = 0, nl; (nl = pending_.find('\n', start)) != std::string::npos;
         start = nl + 1)
        frame.append(pending_, start, nl - start).append("\033[K\n");
    pending_.clear();
    auto live = [&](const std::string& text) {
        auto shown = cut(text, width - 1);
        liveWidths_.push_back(columns(shown));
        frame.append(shown).append("\033[K\n");
    };
    for (auto& s : steps_) {
        if (s.state != Step::State::Running) continue;
        double secs = std::chrono::duration<double>(now - s.started).count();
        live("\u25cf " + s.name + (s.how.empty() ? "" : " (" + s.how + ")") + "  " + seconds(secs));
        size_t from = s.tail.size() > liveLines ? s.tail.size() - liveLines : 0;
        for (size_t i = from; i < s.tail.size(); i++)
            live("  \u2502 " + s.tail[i]);
    }
    for (auto& t : transfers_) {
        if (!t.active) continue;
        double secs = std::chrono::duration<double>(now - t.started).count();
        std::string text = "  \u2193 " + t.label + "  " + humanBytes(t.bytes);
        if (t.total) text += " / " + humanBytes(t.total);
        if (secs > 0.05) text += "  " + humanBytes(uint64_t(double(t.bytes) / secs)) + "/s";
        live(text);
    }
    frame += "\033[J";
    writeErr(frame);
}

void Display::summary(const std::vector<std::string>& result)
{
    Busy g(*this);
    if (mode_ == ProgressMode::Tty) drawLocked(true);
    size_t ran = 0, skipped = 0;
    std::string table;
    char b[64];
    for (auto& s : steps_) {
        if (s.state == Step::State::Skipped) {
            skipped++;
            std::snprintf(b, sizeof b, "  %-8s %8s  ",
                          s.skippedHow == "cached" ? "cached" : "reused", "");
        } else if (s.state == Step::State::Retried) {
            std::snprintf(b, sizeof b, "  %-8s %8s  ", "retried", seconds(s.seconds).c_str());
        } else {
            ran++;
            std::snprintf(b, sizeof b, "  %-8s %8s  ",
                          s.state == Step::State::Failed ? "failed" : "ran",
                          seconds(s.seconds).c_str());
        }
        table +=
            b + s.name +
            (s.state == Step::State::Skipped && s.skippedHow != "cached" ? " (" + s.skippedHow + ")"
                                                                         : "") +
            "\n";
    }
    double total = std::chrono::duration<double>(Clock::now() - begun_).count();
    std::string text = "steps: " + std::to_string(ran) + " ran, " + std::to_string(skipped) +
                       " cached, in " + seconds(total) + "\n" + table;
    text += "data: pulled " + humanBytes(pulled_) + ", pushed " + humanBytes(pushed_) + "\n";
    for (auto& r : result)
        text += r + "\n";
    // The display's own cost, for bench/progress.
    std::snprintf(b, sizeof b, "display: %.1f ms of the %.1f s",
                  std::chrono::duration<double, std::milli>(busy_).count(), total);
    std::string logged = text + b + "\n";
    while (!logged.empty() && logged.back() == '\n')
        logged.pop_back();
    logLocked(logged);
    if (mode_ != ProgressMode::Quiet) writeErr(text);
}

double Display::busySeconds() const
{
    Busy g(*this);
    return std::chrono::duration<double>(busy_).count();
}

void Display::finish()
{
    Busy g(*this);
    if (mode_ != ProgressMode::Tty) return;
    std::string frame = eraseLiveLocked(terminalWidth(fd_));
    if (!frame.empty()) frame += "\033[J";
    frame += pending_;
    pending_.clear();
    if (!frame.empty()) writeErr(frame);
}

} // namespace grocker
