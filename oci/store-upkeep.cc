// What the store's check and garbage collection share: reports, the leftover search, removal.

#include "store-upkeep.hh"

#include "grocker/error.hh"
#include "grocker/oci/store-part.hh"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace grocker::oci {

namespace fs = std::filesystem;

namespace upkeep {

bool isHex64(std::string_view s)
{
    return Digest::valid(concat("sha256:", s));
}

std::string refName(const Descriptor& d)
{
    auto it = d.annotations.find("org.opencontainers.image.ref.name");
    return it == d.annotations.end() ? std::string() : it->second;
}

std::vector<fs::directory_entry> entriesOf(const fs::path& dir, std::string& error)
{
    std::vector<fs::directory_entry> out;
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec))
        out.push_back(*it);
    if (ec && ec != std::errc::no_such_file_or_directory) {
        error = concat("unable to list '", dir.string(), "': ", ec.message());
        return {};
    }
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.path() < b.path(); });
    return out;
}

void unlinkFile(const fs::path& p)
{
    if (::unlink(p.c_str()) < 0 && errno != ENOENT)
        throw SysError("unable to remove '", p.string(), "'");
}

uint64_t treeBytes(const fs::path& p)
{
    struct stat st;
    if (::lstat(p.c_str(), &st) < 0) return 0;
    if (!S_ISDIR(st.st_mode)) return uint64_t(st.st_size);
    uint64_t total = 0;
    std::set<std::pair<dev_t, ino_t>> seen;
    std::error_code ec;
    for (auto it =
             fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (::lstat(it->path().c_str(), &st) < 0 || !S_ISREG(st.st_mode)) continue;
        if (st.st_nlink > 1 && !seen.insert({st.st_dev, st.st_ino}).second) continue;
        total += uint64_t(st.st_size);
    }
    return total;
}

} // namespace upkeep

using namespace upkeep;

void removeTrees(const std::vector<fs::path>& paths)
{
    for (auto& p : paths) {
        struct stat st;
        if (::lstat(p.c_str(), &st) < 0) {
            if (errno == ENOENT) continue;
            throw SysError("unable to remove '", p.string(), "'");
        }
        std::error_code ec;
        // A read-only folder (layers have 0555 ones) cannot be emptied by its owner unless
        // root: open each up before removing. One that stays closed makes remove_all fail,
        // which says so.
        if (S_ISDIR(st.st_mode) && ::geteuid() != 0) {
            ::chmod(p.c_str(), 0700);
            for (auto it = fs::recursive_directory_iterator(p, ec);
                 !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
                if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
            ec.clear();
        }
        fs::remove_all(p, ec);
        if (ec) throw Error("unable to remove '", p.string(), "': ", ec.message());
    }
}

std::string StoreIssue::line() const
{
    return where.string() + ": " + what + (repair.empty() ? "" : "; " + repair);
}

bool CheckReport::consistent() const
{
    return std::all_of(issues.begin(), issues.end(),
                       [](const StoreIssue& i) { return i.leftover || !i.repair.empty(); });
}

size_t CheckReport::entriesOf(const std::string& kind) const
{
    auto it = entries.find(kind);
    return it == entries.end() ? 0 : it->second;
}

GcReport::Freed GcReport::partOf(const std::string& kind) const
{
    auto it = parts.find(kind);
    return it == parts.end() ? Freed{} : it->second;
}

uint64_t GcReport::bytes() const
{
    uint64_t total = blobs.bytes + leftovers.bytes;
    for (auto& [kind, f] : parts)
        total += f.bytes;
    return total;
}

pid_t tempOwner(const std::string& name)
{
    if (!name.starts_with(".tmp-")) return 0;
    return pid_t(std::atoi(name.c_str() + 5));
}

namespace {

// Only ESRCH says gone: EPERM is a live process of another user. A pid reused since keeps its
// files (kept, never wrongly removed).
bool processGone(pid_t pid)
{
    return pid > 0 && ::kill(pid, 0) < 0 && errno == ESRCH;
}

} // namespace

std::vector<fs::directory_entry> LeftoverSearch::entries(const fs::path& dir)
{
    std::string error;
    auto out = entriesOf(dir, error);
    if (!error.empty()) errors.push_back(error);
    return out;
}

void LeftoverSearch::add(fs::path path, const std::string& what, StoreLeftover::Kind kind)
{
    found.push_back({std::move(path), concat(what, removedBy), kind});
}

void LeftoverSearch::deadTemps(const fs::path& dir)
{
    for (auto& e : entries(dir)) {
        pid_t pid = tempOwner(e.path().filename().string());
        if (processGone(pid))
            add(e.path(), concat("leftover of process ", pid, ", which is gone"),
                StoreLeftover::Kind::Temp);
    }
}

} // namespace grocker::oci
