#include "grocker/registry/progress.hh"

#include "grocker/display.hh"

#include <atomic>
#include <iomanip>
#include <sstream>
#include <unordered_map>

namespace grocker::registry {

using Clock = std::chrono::steady_clock;

Progress::Mode Progress::detect(bool quiet)
{
    return quiet || display().mode() == ProgressMode::Quiet ? Mode::Quiet : Mode::Shown;
}

Progress::Progress(Mode mode, std::string verb)
    : mode_(mode), verb_(std::move(verb)), begun_(Clock::now())
{
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

namespace {

struct Started {
    std::string label;
    uint64_t total;
    Clock::time_point at;
};

// The display's ids of the transfers in flight, and what their done line needs.
std::mutex startedMutex;
std::unordered_map<int, Started>& started()
{
    static std::unordered_map<int, Started> m;
    return m;
}

} // namespace

int Progress::start(std::string label, uint64_t total)
{
    static std::atomic<int> unshown{-1};
    int id = mode_ == Mode::Quiet ? unshown-- : display().beginTransfer(label, total);
    std::lock_guard g(startedMutex);
    started()[id] = Started{std::move(label), total, Clock::now()};
    return id;
}

void Progress::update(int id, uint64_t bytes)
{
    if (mode_ != Mode::Quiet) display().transferProgress(id, bytes);
}

void Progress::done(int id, const std::string& note)
{
    Started s;
    {
        std::lock_guard g(startedMutex);
        s = started()[id];
        started().erase(id);
    }
    double secs = std::chrono::duration<double>(Clock::now() - s.at).count();
    std::ostringstream line;
    line << verb_ << " " << s.label << " (" << formatBytes(s.total) << ") in " << std::fixed
         << std::setprecision(2) << secs << " s";
    if (!note.empty()) line << ", " << note;
    {
        std::lock_guard g(mutex_);
        moved_ += s.total;
        transferred_++;
    }
    display().endTransfer(id, mode_ == Mode::Quiet ? "" : line.str(), s.total, verb_ == "pushed");
}

void Progress::skipped(std::string label, uint64_t size, const std::string& note)
{
    {
        std::lock_guard g(mutex_);
        skipped_++;
    }
    if (mode_ != Mode::Quiet)
        display().detail("skipped " + label + " (" + formatBytes(size) + "): " + note);
}

void Progress::summary(const std::string& what)
{
    if (mode_ == Mode::Quiet) return;
    std::lock_guard g(mutex_);
    double secs = std::chrono::duration<double>(Clock::now() - begun_).count();
    std::ostringstream s;
    s << verb_ << " " << what << ": " << transferred_ << (transferred_ == 1 ? " blob" : " blobs")
      << " (" << formatBytes(moved_) << ") in " << std::fixed << std::setprecision(2) << secs
      << " s";
    if (secs > 0.05 && moved_) s << " (" << formatBytes(uint64_t(double(moved_) / secs)) << "/s)";
    if (skipped_) s << ", " << skipped_ << " already there";
    display().message(s.str());
}

} // namespace grocker::registry
