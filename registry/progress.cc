#include "grocker/registry/progress.hh"

#include <cstdio>
#include <iomanip>
#include <sstream>
#include <unistd.h>

namespace grocker::registry {

using Clock = std::chrono::steady_clock;

Progress::Mode Progress::detect(bool quiet)
{
    if (quiet) return Mode::Quiet;
    const char* term = std::getenv("TERM");
    return ::isatty(2) && !(term && std::string(term) == "dumb") ? Mode::Live : Mode::Plain;
}

Progress::Progress(Mode mode, std::ostream& out, std::string verb)
    : mode_(mode), out_(out), verb_(std::move(verb)), begun_(Clock::now())
{
}

Progress::~Progress()
{
    std::lock_guard g(mutex_);
    clearLive();
}

std::string Progress::formatBytes(uint64_t b)
{
    std::ostringstream s;
    if (b < 1000) {
        s << b << " B";
        return s.str();
    }
    const char* units[] = {"kB", "MB", "GB", "TB"};
    double v = double(b) / 1000;
    int u = 0;
    while (v >= 1000 && u < 3) {
        v /= 1000;
        u++;
    }
    s << std::fixed << std::setprecision(v < 10 ? 2 : 1) << v << " " << units[u];
    return s.str();
}

int Progress::start(std::string label, uint64_t total)
{
    std::lock_guard g(mutex_);
    entries_.push_back(Entry{std::move(label), total, 0, Clock::now(), true});
    if (mode_ == Mode::Live) redraw(true);
    return int(entries_.size() - 1);
}

void Progress::update(int id, uint64_t bytes)
{
    if (mode_ != Mode::Live) return;
    std::lock_guard g(mutex_);
    entries_[size_t(id)].bytes = bytes;
    redraw(false);
}

std::string Progress::line(const Entry& e, Clock::time_point now) const
{
    double secs = std::chrono::duration<double>(now - e.started).count();
    std::ostringstream s;
    s << "  " << e.label << "  " << formatBytes(e.bytes);
    if (e.total) s << " / " << formatBytes(e.total);
    if (secs > 0.05) s << "  " << formatBytes(uint64_t(double(e.bytes) / secs)) << "/s";
    return s.str();
}

void Progress::clearLive()
{
    if (mode_ != Mode::Live || !liveLines_) return;
    out_ << "\033[" << liveLines_ << "A\033[J";
    liveLines_ = 0;
    out_.flush();
}

void Progress::redraw(bool force)
{
    auto now = Clock::now();
    if (!force && now - lastDraw_ < std::chrono::milliseconds(100)) return;
    lastDraw_ = now;
    std::string text;
    // Appended piece by piece: g++ 12 at -O3 sees a false overlap (-Wrestrict) in
    // `"literal" + std::string` and the release build stops on it.
    if (liveLines_) text.append("\033[").append(std::to_string(liveLines_)).append("A");
    size_t lines = 0;
    for (auto& e : entries_)
        if (e.active) {
            text.append("\r").append(line(e, now)).append("\033[K\n");
            lines++;
        }
    text += "\033[J";
    liveLines_ = lines;
    out_ << text;
    out_.flush();
}

void Progress::done(int id, const std::string& note)
{
    if (mode_ == Mode::Quiet) return;
    std::lock_guard g(mutex_);
    auto& e = entries_[size_t(id)];
    e.active = false;
    e.bytes = e.total ? e.total : e.bytes;
    moved_ += e.bytes;
    transferred_++;
    double secs = std::chrono::duration<double>(Clock::now() - e.started).count();
    std::ostringstream s;
    s << verb_ << " " << e.label << " (" << formatBytes(e.bytes) << ") in " << std::fixed
      << std::setprecision(2) << secs << " s";
    if (!note.empty()) s << ", " << note;
    clearLive();
    out_ << s.str() << "\n";
    if (mode_ == Mode::Live) redraw(true);
    out_.flush();
}

void Progress::skipped(std::string label, uint64_t size, const std::string& note)
{
    if (mode_ == Mode::Quiet) return;
    std::lock_guard g(mutex_);
    skipped_++;
    clearLive();
    out_ << "skipped " << label << " (" << formatBytes(size) << "): " << note << "\n";
    if (mode_ == Mode::Live) redraw(true);
    out_.flush();
}

void Progress::summary(const std::string& what)
{
    if (mode_ == Mode::Quiet) return;
    std::lock_guard g(mutex_);
    clearLive();
    double secs = std::chrono::duration<double>(Clock::now() - begun_).count();
    std::ostringstream s;
    s << verb_ << " " << what << ": " << transferred_ << (transferred_ == 1 ? " blob" : " blobs")
      << " (" << formatBytes(moved_) << ") in " << std::fixed << std::setprecision(2) << secs
      << " s";
    if (secs > 0.05 && moved_) s << " (" << formatBytes(uint64_t(double(moved_) / secs)) << "/s)";
    if (skipped_) s << ", " << skipped_ << " already there";
    out_ << s.str() << "\n";
    out_.flush();
}

} // namespace grocker::registry
