#include "grocker/oci/store.hh"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <fcntl.h>
#include <iostream>
#include <map>
#include <set>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "grocker/error.hh"

namespace grocker::oci {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// flock, retried on EINTR; false when a LOCK_NB request would have to wait.
bool flockOrBusy(int fd, int op, const fs::path& path)
{
    while (::flock(fd, op) < 0) {
        if (errno == EINTR) continue;
        if (errno == EWOULDBLOCK && (op & LOCK_NB)) return false;
        throw SysError("unable to lock '", path.string(), "'");
    }
    return true;
}

// The pid in a temp name ".tmp-<pid>-..." (tempName(), and the folders grocker build makes
// with that prefix), or 0.
pid_t tempOwner(const std::string& name)
{
    if (!name.starts_with(".tmp-")) return 0;
    return pid_t(std::atoi(name.c_str() + 5));
}

// Only ESRCH says gone: EPERM is a live process of another user. A pid reused since keeps its
// files (kept, never wrongly removed).
bool processGone(pid_t pid) { return pid > 0 && ::kill(pid, 0) < 0 && errno == ESRCH; }

// Whether some process holds an flock on the lock file at `path` (probed with a shared lock
// taken and dropped at once: key locks are exclusive). A file that cannot be opened counts
// as held: it is left alone.
bool lockHeld(const fs::path& path)
{
    AutoCloseFD fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd) return true;
    while (::flock(fd.get(), LOCK_SH | LOCK_NB) < 0)
        if (errno != EINTR) return true;
    return false;
}

constexpr std::string_view removedBy = ": grocker fsck --repair or grocker purge removes it";

// What dead processes left:
// - temp files and folders named ".tmp-<pid>-..." whose process is gone: BlobWriter and
//   unpacking in tmp/, grocker build's work folders there, writeFileAtomic beside its target
//   (the store's root, every cache folder, sources/, layers/, wheels/);
// - with `runFolders` (known when no other grocker process has the store: its gc lock taken
//   exclusive), the run folders of steps, whose names carry no pid;
// - with `locks`, the key lock files of grocker build (locks/KEY.lock) that no process holds.
//   Removing one that a process has opened but not yet locked would let two processes hold
//   "the" lock: only a process holding the gc lock exclusive removes them.
std::vector<StoreLeftover> findLeftovers(const fs::path& root, bool runFolders, bool locks)
{
    std::vector<StoreLeftover> out;
    std::vector<fs::path> caches;
    std::error_code ec;
    for (auto& e : fs::directory_iterator(root / "cache", ec))
        if (e.is_directory(ec) && !e.is_symlink(ec)) caches.push_back(e.path());
    std::sort(caches.begin(), caches.end());
    std::vector<fs::path> dirs{root / "tmp", root, root / "sources" / "sha256", root / "layers", root / "wheels"};
    dirs.insert(dirs.end(), caches.begin(), caches.end());
    for (auto& dir : dirs) {
        for (auto& e : fs::directory_iterator(dir, ec)) {
            auto name = e.path().filename().string();
            pid_t pid = tempOwner(name);
            if (processGone(pid))
                out.push_back({e.path(), concat("leftover of process ", pid, ", which is gone", removedBy),
                    StoreLeftover::Kind::Temp});
        }
    }
    if (runFolders)
        for (auto& e : fs::directory_iterator(root / "run", ec))
            out.push_back({e.path(), concat("leftover run folder of a step whose grocker process is gone", removedBy),
                StoreLeftover::Kind::Run});
    if (!locks) return out;
    for (auto& e : fs::directory_iterator(root / "locks", ec)) {
        auto name = e.path().filename().string();
        if (!name.ends_with(".lock") || !e.is_regular_file(ec) || lockHeld(e.path())) continue;
        out.push_back({e.path(), concat("lock file of a build step that no process holds", removedBy),
            StoreLeftover::Kind::Lock});
    }
    return out;
}

} // namespace

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
        // root: open each up before removing.
        if (S_ISDIR(st.st_mode) && ::geteuid() != 0) {
            ::chmod(p.c_str(), 0700);
            for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator();
                 it.increment(ec))
                if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
            ec.clear();
        }
        fs::remove_all(p, ec);
        if (ec) throw Error("unable to remove '", p.string(), "': ", ec.message());
    }
}

FileLock::FileLock(const fs::path& path, bool exclusive)
{
    fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd_) throw SysError("unable to open lock file '", path.string(), "'");
    while (::flock(fd_.get(), exclusive ? LOCK_EX : LOCK_SH) < 0)
        if (errno != EINTR) throw SysError("unable to lock '", path.string(), "'");
}

fs::path Store::defaultRoot()
{
    if (const char* r = std::getenv("GROCKER_ROOT"); r && *r) return r;
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "grocker";
    if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "grocker";
    throw Error("no store location: set GROCKER_ROOT, XDG_CACHE_HOME or HOME, or pass --root");
}

Store::Store(fs::path root, Leftovers leftovers) : root_(std::move(root))
{
    std::error_code ec;
    fs::create_directories(root_ / "blobs" / "sha256", ec);
    if (!ec) fs::create_directories(root_ / "tmp", ec);
    if (ec)
        throw Error("unable to create the store at '", root_.string(), "': ", ec.message(),
            "; pass --root or set GROCKER_ROOT to a writable folder");
    if (!fs::exists(root_ / "oci-layout")) writeFileAtomic(root_ / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    if (!fs::exists(root_ / "index.json")) {
        auto l = lock(true);
        if (!fs::exists(root_ / "index.json")) writeFileAtomic(root_ / "index.json", canonical(toJson(Index{})));
    }
    auto gcPath = root_ / "gc.lock";
    gcLock_.reset(::open(gcPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!gcLock_) throw SysError("unable to open the store's lock file '", gcPath.string(), "'");
    // Exclusive for a moment if no other grocker process has the store open: then nothing in
    // it is in use, and run folders of killed steps (whose names carry no pid) can go too.
    bool alone = flockOrBusy(gcLock_.get(), LOCK_EX | LOCK_NB, gcPath);
    aloneAtOpen_ = alone;
    if (leftovers == Leftovers::Remove) cleanLeftovers(alone);
    else if (alone) deadAtOpen_ = findLeftovers(root_, true, false); // for check() to report
    if (!flockOrBusy(gcLock_.get(), LOCK_SH | LOCK_NB, gcPath)) {
        // Only an exclusive holder makes this wait: a purge or an fsck --repair, for minutes.
        std::cerr << "grocker: waiting for the store '" << root_.string()
                  << "': another grocker process (purge or fsck --repair) is cleaning it\n";
        flockOrBusy(gcLock_.get(), LOCK_SH, gcPath);
    }
}

void Store::cleanLeftovers(bool everything)
{
    // Best effort: what cannot be removed here (files of subordinate ids, when rootless) is
    // reported by grocker fsck and removed by fsck --repair or purge, in a user namespace.
    for (auto& l : findLeftovers(root_, everything, everything)) {
        try {
            removeTrees({l.path});
        } catch (Error&) {
            deadAtOpen_.push_back(l);
        }
    }
}

void Store::lockExclusive(const std::function<void()>& waiting)
{
    if (exclusive_) return;
    auto gcPath = root_ / "gc.lock";
    if (!flockOrBusy(gcLock_.get(), LOCK_EX | LOCK_NB, gcPath)) {
        // flock(2) converts by unlocking first: the failed attempt left this Store with no
        // lock, which is what waiting for the exclusive one needs anyway.
        if (waiting) waiting();
        flockOrBusy(gcLock_.get(), LOCK_EX, gcPath);
    }
    exclusive_ = true;
}

fs::path Store::blobPath(const Digest& d) const { return root_ / "blobs" / d.algorithm() / d.hex(); }

bool Store::hasBlob(const Digest& d) const
{
    struct stat st;
    return ::stat(blobPath(d).c_str(), &st) == 0;
}

Store::BlobWriter::BlobWriter(Store& store) : store_(store), tmp_(store.tmpDir() / tempName())
{
    fd_.reset(::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd_) throw SysError("unable to create a blob file in '", store.tmpDir().string(), "'");
    sink_ = std::make_unique<FdSink>(fd_.get(), tmp_.string());
}

Store::BlobWriter::~BlobWriter()
{
    if (!committed_) ::unlink(tmp_.c_str());
}

void Store::BlobWriter::write(const void* data, size_t len)
{
    hash_.update(data, len);
    size_ += len;
    sink_->write(data, len);
}

void Store::BlobWriter::finish() { sink_->finish(); }

Descriptor Store::BlobWriter::commit(std::string mediaType, const std::optional<Digest>& expected, const std::string& what)
{
    sink_->finish();
    Digest d = hash_.finish();
    if (expected && *expected != d)
        throw Error(what, " has digest ", d.str(), " but ", expected->str(),
            " was expected; the source is corrupt or was changed: fetch it again");
    if (::fchmod(fd_.get(), 0444) < 0) throw SysError("unable to set the mode of '", tmp_.string(), "'");
    if (::fsync(fd_.get()) < 0) throw SysError("unable to sync '", tmp_.string(), "'");
    fd_.reset();
    auto dest = store_.blobPath(d);
    if (::rename(tmp_.c_str(), dest.c_str()) < 0)
        throw SysError("unable to move blob '", tmp_.string(), "' to '", dest.string(), "'");
    committed_ = true;
    fsyncDir(dest.parent_path());
    return Descriptor{std::move(mediaType), d, int64_t(size_)};
}

Descriptor Store::putBlob(std::string_view bytes, std::string mediaType)
{
    auto d = sha256(bytes);
    if (hasBlob(d)) return Descriptor{std::move(mediaType), d, int64_t(bytes.size())};
    BlobWriter w(*this);
    w.write(bytes.data(), bytes.size());
    return w.commit(std::move(mediaType));
}

Descriptor Store::importFd(int fd, std::string mediaType, const std::optional<Digest>& expected, const std::string& what)
{
    BlobWriter w(*this);
    std::vector<char> buf(1 << 20);
    for (;;) {
        size_t n = readSome(fd, buf.data(), buf.size(), what);
        if (!n) break;
        w.write(buf.data(), n);
    }
    return w.commit(std::move(mediaType), expected, what);
}

Descriptor Store::importFile(const fs::path& path, std::string mediaType, const std::optional<Digest>& expected,
    const std::string& what)
{
    AutoCloseFD fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw SysError("unable to open '", path.string(), "'");
    return importFd(fd.get(), std::move(mediaType), expected, what);
}

std::string Store::readBlob(const Descriptor& d, const std::string& what) const
{
    // Manifests and configs are small; a huge one is garbage, not something to load.
    constexpr int64_t limit = 64 << 20;
    if (d.size > limit) throw Error(what, " is ", d.size, " bytes, more than the ", limit, " a manifest or config may have");
    std::string bytes;
    try {
        bytes = readFile(blobPath(d.digest));
    } catch (Error& e) {
        e.addContext("while reading " + what + " from the store");
        throw;
    }
    verifyBlob(bytes, d, what + " in the store at '" + blobPath(d.digest).string() + "'");
    return bytes;
}

AutoCloseFD Store::openBlob(const Digest& d, const std::string& what) const
{
    AutoCloseFD fd(::open(blobPath(d).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw SysError("unable to open ", what, " (", d.str(), ") in the store '", root_.string(), "'");
    return fd;
}

void Store::verifyStoredBlob(const Digest& d, const std::string& what) const
{
    auto fd = openBlob(d, what);
    Sha256 h;
    std::vector<char> buf(1 << 20);
    for (;;) {
        size_t n = readSome(fd.get(), buf.data(), buf.size(), what);
        if (!n) break;
        h.update(buf.data(), n);
    }
    auto actual = h.finish();
    if (actual != d)
        throw Error(what, " in the store is corrupt (its content has digest ", actual.str(), "); remove '",
            blobPath(d).string(), "' and fetch it again");
}

Index Store::readIndex() const
{
    auto bytes = readFile(root_ / "index.json");
    return parseIndex(bytes, "the store's index '" + (root_ / "index.json").string() + "'");
}

void Store::setRef(const std::string& name, Descriptor manifest)
{
    auto l = lock(true);
    Index idx = readIndex();
    std::erase_if(idx.manifests, [&](const Descriptor& d) {
        auto it = d.annotations.find("org.opencontainers.image.ref.name");
        return it != d.annotations.end() && it->second == name;
    });
    manifest.annotations["org.opencontainers.image.ref.name"] = name;
    idx.manifests.push_back(std::move(manifest));
    writeFileAtomic(root_ / "index.json", canonical(toJson(idx)));
}

std::optional<Descriptor> Store::getRef(const std::string& name) const
{
    for (auto& d : readIndex().manifests) {
        auto it = d.annotations.find("org.opencontainers.image.ref.name");
        if (it != d.annotations.end() && it->second == name) return d;
    }
    return std::nullopt;
}

namespace {
// A blob seen in many repositories keeps the latest few: enough to find one to mount from.
constexpr size_t maxSources = 16;
}

std::vector<std::string> Store::sourcesOf(const Digest& d) const
{
    std::vector<std::string> out;
    auto path = root_ / "sources" / d.algorithm() / d.hex();
    AutoCloseFD fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return out; // none known (or unreadable: mounting is only an optimisation)
    std::string text;
    try {
        text = readFd(fd.get());
    } catch (Error&) {
        return out;
    }
    for (size_t pos = 0; pos < text.size();) {
        auto nl = text.find('\n', pos);
        auto line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        if (!line.empty() && std::find(out.begin(), out.end(), line) == out.end()) out.push_back(line);
        if (nl == std::string::npos) break;
        pos = nl + 1;
    }
    return out;
}

void Store::recordSource(const Digest& d, const std::string& repository)
{
    if (repository.empty() || repository.find('\n') != std::string::npos) return;
    auto known = sourcesOf(d);
    if (!known.empty() && known.back() == repository) return;
    auto dir = root_ / "sources" / d.algorithm();
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw Error("unable to create '", dir.string(), "': ", ec.message());
    std::erase(known, repository);
    known.push_back(repository);
    if (known.size() > maxSources) known.erase(known.begin(), known.end() - maxSources);
    std::string text;
    for (auto& r : known) text += r + "\n";
    // Not synced: a lost record only costs an upload that a mount would have saved.
    auto path = dir / d.hex();
    auto tmp = dir / tempName();
    {
        AutoCloseFD fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        if (!fd) throw SysError("unable to create '", tmp.string(), "'");
        writeFull(fd.get(), text, tmp.string());
    }
    if (::rename(tmp.c_str(), path.c_str()) < 0) {
        ::unlink(tmp.c_str());
        throw SysError("unable to rename '", tmp.string(), "' to '", path.string(), "'");
    }
}

void copyFileAtomic(const fs::path& from, const fs::path& to, mode_t mode)
{
    AutoCloseFD in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) throw SysError("unable to open '", from.string(), "'");
    fs::path tmp = to.parent_path() / tempName();
    AutoCloseFD out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!out) throw SysError("unable to create '", tmp.string(), "'");
    try {
        for (;;) {
            ssize_t n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, 1 << 30, 0);
            if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL)) {
                // Old kernels or odd filesystems: plain copy.
                std::vector<char> buf(1 << 20);
                for (;;) {
                    size_t r = readSome(in.get(), buf.data(), buf.size(), from.string());
                    if (!r) break;
                    writeFull(out.get(), buf.data(), r, tmp.string());
                }
                break;
            }
            if (n < 0) {
                if (errno == EINTR) continue;
                throw SysError("unable to copy '", from.string(), "' to '", tmp.string(), "'");
            }
            if (n == 0) break;
        }
        if (::fchmod(out.get(), mode) < 0 || ::fsync(out.get()) < 0) throw SysError("unable to sync '", tmp.string(), "'");
        out.reset();
        if (::rename(tmp.c_str(), to.c_str()) < 0) throw SysError("unable to rename '", tmp.string(), "' to '", to.string(), "'");
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
}

// --- upkeep: grocker fsck and grocker purge ------------------------------------------------

std::string StoreIssue::line() const
{
    return where.string() + ": " + what + (repair.empty() ? "" : "; " + repair);
}

bool CheckReport::consistent() const
{
    return std::all_of(issues.begin(), issues.end(), [](const StoreIssue& i) { return i.leftover || !i.repair.empty(); });
}

uint64_t GcReport::bytes() const
{
    return blobs.bytes + stepEntries.bytes + cacheEntries.bytes + buildEnvs.bytes + layers.bytes + leftovers.bytes;
}

void Store::removeRefs(const std::vector<std::string>& names)
{
    if (names.empty()) return;
    auto l = lock(true);
    Index idx = readIndex();
    std::erase_if(idx.manifests, [&](const Descriptor& d) {
        auto it = d.annotations.find("org.opencontainers.image.ref.name");
        return it != d.annotations.end() && std::find(names.begin(), names.end(), it->second) != names.end();
    });
    writeFileAtomic(root_ / "index.json", canonical(toJson(idx)));
}

namespace {

void unlinkFile(const fs::path& p)
{
    if (::unlink(p.c_str()) < 0 && errno != ENOENT) throw SysError("unable to remove '", p.string(), "'");
}

bool isHex64(std::string_view s)
{
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string refName(const Descriptor& d)
{
    auto it = d.annotations.find("org.opencontainers.image.ref.name");
    return it == d.annotations.end() ? std::string() : it->second;
}

// The entries of a folder, sorted (reports in a stable order); none when it does not exist.
std::vector<fs::directory_entry> entriesOf(const fs::path& dir)
{
    std::vector<fs::directory_entry> out;
    std::error_code ec;
    for (auto& e : fs::directory_iterator(dir, ec)) out.push_back(e);
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.path() < b.path(); });
    return out;
}

uint64_t fileBytes(const fs::path& p)
{
    struct stat st;
    return ::lstat(p.c_str(), &st) == 0 ? uint64_t(st.st_size) : 0;
}

// Apparent size of a file or folder, each hard-linked file once; what cannot be read is left
// out (folders of subordinate ids, rootless).
uint64_t treeBytes(const fs::path& p)
{
    struct stat st;
    if (::lstat(p.c_str(), &st) < 0) return 0;
    if (!S_ISDIR(st.st_mode)) return uint64_t(st.st_size);
    uint64_t total = 0;
    std::set<std::pair<dev_t, ino_t>> seen;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (::lstat(it->path().c_str(), &st) < 0 || !S_ISREG(st.st_mode)) continue;
        if (st.st_nlink > 1 && !seen.insert({st.st_dev, st.st_ino}).second) continue;
        total += uint64_t(st.st_size);
    }
    return total;
}

Digest hashFile(const fs::path& p)
{
    AutoCloseFD fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw SysError("unable to open '", p.string(), "'");
    Sha256 h;
    std::vector<char> buf(1 << 20);
    for (;;) {
        size_t n = readSome(fd.get(), buf.data(), buf.size(), p.string());
        if (!n) break;
        h.update(buf.data(), n);
    }
    return h.finish();
}

// A step cache entry (written by grocker build): {"layer": descriptor, "diffId": ..., "step": ...}.
struct StepEntry {
    Descriptor layer;
    Digest diffId;
};

StepEntry parseStepEntry(const fs::path& p)
{
    try {
        auto j = json::parse(readFile(p));
        return StepEntry{parseDescriptor(j.at("layer"), "its layer"), Digest::parse(j.at("diffId").get<std::string>())};
    } catch (json::parse_error&) {
        throw Error("it is not valid JSON (cut short?)");
    } catch (json::exception& e) {
        throw Error("it lacks a layer descriptor or a diffId (", e.what(), ")");
    }
}

// Entries of a cache folder worth reading: "<key>.json", not temp files.
bool cacheEntryName(const std::string& name) { return name.ends_with(".json") && !name.starts_with(".tmp-"); }

// The state of every stored blob, hashed once (in parallel: a store holds gigabytes of layers).
class BlobStates {
public:
    enum class State { Good, Corrupt, Missing };
    struct Info {
        State state = State::Missing;
        int64_t size = 0;
        std::string actual; // the digest of a corrupt blob's content, or why it is unreadable
    };

    BlobStates(const Store& store, unsigned jobs) : store_(store)
    {
        std::vector<fs::path> files;
        for (auto& e : entriesOf(store.root() / "blobs" / "sha256"))
            if (isHex64(e.path().filename().string()) && e.is_regular_file()) files.push_back(e.path());
        std::vector<Info> infos(files.size());
        std::atomic<size_t> next{0};
        auto work = [&] {
            for (size_t i; (i = next++) < files.size();) infos[i] = hash(files[i]);
        };
        if (!jobs) jobs = std::max(1u, std::thread::hardware_concurrency());
        std::vector<std::thread> threads;
        for (unsigned t = 1; t < std::min<size_t>(jobs, files.size()); t++) threads.emplace_back(work);
        work();
        for (auto& t : threads) t.join();
        for (size_t i = 0; i < files.size(); i++) states_["sha256:" + files[i].filename().string()] = infos[i];
    }

    // Blobs written after the listing (by a concurrent build) are hashed when asked about.
    const Info& of(const Digest& d)
    {
        auto it = states_.find(d.str());
        if (it != states_.end()) return it->second;
        return states_[d.str()] = d.algorithm() == "sha256" ? hash(store_.blobPath(d)) : Info{};
    }

    std::map<std::string, Info>& all() { return states_; }

    // Why `d` cannot be used, or nothing. `kind`: "layer", "config", "manifest".
    std::optional<std::string> problem(const Descriptor& d, const std::string& kind)
    {
        auto& info = of(d.digest);
        auto name = kind + " " + d.digest.str();
        if (info.state == State::Missing) return name + " is missing";
        if (info.state == State::Corrupt) return name + " is corrupt";
        if (info.size != d.size) return concat(name, " has ", info.size, " bytes, not the ", d.size, " its descriptor says");
        return std::nullopt;
    }

private:
    static Info hash(const fs::path& p)
    {
        Info info;
        struct stat st;
        if (::stat(p.c_str(), &st) < 0) return info;
        info.size = int64_t(st.st_size);
        try {
            auto actual = hashFile(p);
            info.state = actual.hex() == p.filename().string() ? State::Good : State::Corrupt;
            info.actual = "its content has digest " + actual.str();
        } catch (Error& e) {
            info.state = State::Corrupt;
            info.actual = e.message();
        }
        return info;
    }

    const Store& store_;
    std::map<std::string, Info> states_;
};

} // namespace

CheckReport Store::check(const CheckOptions& o)
{
    if (o.repair && !exclusive_) throw Error("internal error: repairing the store '", root_.string(), "' needs the exclusive gc lock");
    Remover remove = o.remove ? o.remove : Remover(removeTrees);
    CheckReport r;
    auto issue = [&](fs::path where, std::string what) -> StoreIssue& {
        r.issues.push_back(StoreIssue{std::move(where), std::move(what), {}});
        return r.issues.back();
    };
    // Carries out a repair, saying what was done, or why it could not be.
    auto repair = [&](StoreIssue& i, const std::string& done, const std::function<void()>& action) {
        if (!o.repair) return;
        try {
            action();
            i.repair = done;
        } catch (Error& e) {
            i.what += " (not repaired: " + e.message() + ")";
        }
    };

    // The refs first, then the blobs: every blob a ref read here names was stored before it.
    auto indexPath = root_ / "index.json";
    std::optional<Index> index;
    try {
        index = readIndex();
    } catch (Error& e) {
        auto& i = issue(indexPath, "unreadable index of the store's images: " + e.message());
        auto aside = root_ / concat("index.json.corrupt-", ::time(nullptr));
        repair(i, "kept as '" + aside.filename().string() + "' and replaced by an empty index: every ref is gone", [&] {
            auto l = lock(true);
            if (::rename(indexPath.c_str(), aside.c_str()) < 0) throw SysError("unable to rename '", indexPath.string(), "'");
            writeFileAtomic(indexPath, canonical(toJson(Index{})));
        });
    }
    auto layoutPath = root_ / "oci-layout";
    try {
        auto j = json::parse(readFile(layoutPath));
        if (j.at("imageLayoutVersion").get<std::string>() != "1.0.0") throw Error("its version is not 1.0.0");
    } catch (std::exception& e) {
        auto& i = issue(layoutPath, concat("unreadable OCI layout file: ", e.what()));
        repair(i, "rewritten", [&] { writeFileAtomic(layoutPath, R"({"imageLayoutVersion":"1.0.0"})"); });
    }

    // 1. blobs: each hashes to its name.
    BlobStates blobs(*this, o.jobs);
    for (auto& e : entriesOf(root_ / "blobs" / "sha256")) {
        auto name = e.path().filename().string();
        if (!isHex64(name) || !e.is_regular_file()) {
            auto& i = issue(e.path(), "not a blob: the blobs folder holds only files named by their sha256 digest");
            repair(i, "removed", [&] { remove({e.path()}); });
            continue;
        }
        r.blobs++;
        auto& info = blobs.all()["sha256:" + name];
        if (info.state != BlobStates::State::Corrupt) continue;
        auto& i = issue(e.path(), "corrupt blob: " + info.actual);
        repair(i, "removed", [&] { unlinkFile(e.path()); });
    }

    // 2. refs: each image whole (manifest, config, layers; indexes recursively).
    std::map<std::string, std::optional<std::string>> checked;
    std::function<std::optional<std::string>(const Descriptor&, int)> imageProblem;
    imageProblem = [&](const Descriptor& d, int depth) -> std::optional<std::string> {
        if (auto it = checked.find(d.digest.str()); it != checked.end()) return it->second;
        auto what = "manifest " + d.digest.str();
        auto result = [&]() -> std::optional<std::string> {
            if (auto p = blobs.problem(d, "manifest")) return p;
            try {
                auto bytes = readFile(blobPath(d.digest));
                auto type = d.mediaType.empty() ? sniffMediaType(bytes, what) : d.mediaType;
                if (media::isIndex(type)) {
                    if (depth > 8) return what + ": indexes nested more than 8 deep";
                    for (auto& m : parseIndex(bytes, what, type).manifests)
                        if (auto p = imageProblem(m, depth + 1)) return p;
                    return std::nullopt;
                }
                if (!media::isManifest(type)) return std::nullopt; // an artifact: present is all we can say
                auto m = parseManifest(bytes, what, type);
                if (auto p = blobs.problem(m.config, "config")) return p;
                auto config = parseConfig(readFile(blobPath(m.config.digest)), "config " + m.config.digest.str());
                if (config.diffIds().size() != m.layers.size())
                    return concat(what, " has ", m.layers.size(), " layers but its config has ", config.diffIds().size(),
                        " diff_ids");
                for (auto& l : m.layers) {
                    // Non-distributable layers are fetched from their URLs, never stored.
                    if (!l.urls.empty() && blobs.of(l.digest).state == BlobStates::State::Missing) continue;
                    if (auto p = blobs.problem(l, "layer")) return p;
                }
            } catch (Error& e) {
                return e.message();
            }
            return std::nullopt;
        }();
        checked[d.digest.str()] = result;
        return result;
    };
    std::vector<size_t> incomplete;
    if (index) {
        for (size_t n = 0; n < index->manifests.size(); n++) {
            auto& d = index->manifests[n];
            r.refs++;
            auto problem = imageProblem(d, 0);
            if (!problem) continue;
            auto name = refName(d);
            issue(indexPath, (name.empty() ? "image " + d.digest.str() + " (no ref name)"
                                           : "ref '" + name + "' (" + d.digest.str() + ")") +
                                 " is incomplete: " + *problem);
            incomplete.push_back(r.issues.size() - 1);
        }
        if (o.repair && !incomplete.empty()) {
            // Dropped by name and digest under the index lock: a ref set again since is kept.
            std::vector<Descriptor> drop;
            for (auto& d : index->manifests)
                if (imageProblem(d, 0)) drop.push_back(d);
            try {
                auto l = lock(true);
                Index now = readIndex();
                std::erase_if(now.manifests, [&](const Descriptor& d) {
                    return std::any_of(drop.begin(), drop.end(),
                        [&](const Descriptor& x) { return x.digest == d.digest && refName(x) == refName(d); });
                });
                writeFileAtomic(indexPath, canonical(toJson(now)));
                for (auto n : incomplete) r.issues[n].repair = "dropped the ref: build or pull the image again";
            } catch (Error& e) {
                for (auto n : incomplete) r.issues[n].what += " (not repaired: " + e.message() + ")";
            }
        }
    }

    // 3. step cache: each entry names a stored layer.
    for (auto& e : entriesOf(root_ / "cache" / "steps")) {
        if (!cacheEntryName(e.path().filename().string())) continue;
        r.stepEntries++;
        std::optional<std::string> problem;
        try {
            auto entry = parseStepEntry(e.path());
            if (auto p = blobs.problem(entry.layer, "layer")) problem = "its " + *p;
        } catch (Error& ex) {
            problem = ex.message();
        }
        if (!problem) continue;
        auto& i = issue(e.path(), "broken step cache entry: " + *problem);
        repair(i, "removed", [&] { unlinkFile(e.path()); });
    }

    // 4-5. the parts of the store with formats of their own (the build's caches).
    for (auto* part : o.parts) r.cacheEntries += part->check(*this, o.repair, remove, r.issues);

    // 6. unpacked layers. The sandbox unpacks into tmp/ and renames the whole folder to
    // layers/<diff_id hex>: a layer under its name is complete, so only strays are found here.
    for (auto& e : entriesOf(root_ / "layers")) {
        auto name = e.path().filename().string();
        if (tempOwner(name)) continue; // a leftover, below
        bool dir = e.is_directory() && !e.is_symlink();
        if ((isHex64(name) || name == "empty") && dir) {
            r.layers += name != "empty";
            continue;
        }
        auto& i = issue(e.path(), dir ? "not an unpacked layer: they are named by their diff_id"
                                      : "not an unpacked layer: not a folder");
        repair(i, "removed", [&] {
            // Renamed away first: a repair killed half-way leaves no half folder here.
            auto gone = tmpDir() / tempName();
            if (::rename(e.path().c_str(), gone.c_str()) < 0) throw SysError("unable to move '", e.path().string(), "'");
            remove({gone});
        });
    }

    // 7. what dead processes left: temp files of gone pids; run folders and unheld key locks
    // only when known to be no other grocker process's (run folders found when this Store was
    // opened alone, locks when it was; all when it is exclusive). Reported, never a failure
    // of the check: they take room but harm nothing, and the next command opening the store
    // alone removes them.
    auto leftovers = findLeftovers(root_, exclusive_, exclusive_ || aloneAtOpen_);
    for (auto& l : deadAtOpen_) {
        // Lock files were probed again, above: one may be held by now.
        if (l.kind == StoreLeftover::Kind::Lock || !fs::exists(l.path)) continue;
        if (std::none_of(leftovers.begin(), leftovers.end(), [&](auto& x) { return x.path == l.path; }))
            leftovers.push_back(l);
    }
    std::sort(leftovers.begin(), leftovers.end(), [](auto& a, auto& b) { return a.path < b.path; });
    for (auto& l : leftovers) {
        auto& i = issue(l.path, l.what);
        i.leftover = true;
        repair(i, "removed", [&] { remove({l.path}); });
    }
    return r;
}

GcReport Store::collectGarbage(const GcOptions& o)
{
    if (!exclusive_) throw Error("internal error: collecting garbage in the store '", root_.string(), "' needs the exclusive gc lock");
    Remover remove = o.remove ? o.remove : Remover(removeTrees);
    GcReport r;
    if (!o.dryRun) removeRefs(o.dropRefs);

    // What the refs left need. A damaged image keeps what can be read of it (fsck's business).
    std::set<std::string> reachable, diffIds;
    std::function<void(const Descriptor&, int)> walk = [&](const Descriptor& d, int depth) {
        if (!reachable.insert(d.digest.str()).second || depth > 8) return;
        try {
            auto bytes = readFile(blobPath(d.digest));
            auto what = "manifest " + d.digest.str();
            auto type = d.mediaType.empty() ? sniffMediaType(bytes, what) : d.mediaType;
            if (media::isIndex(type)) {
                for (auto& m : parseIndex(bytes, what, type).manifests) walk(m, depth + 1);
                return;
            }
            if (!media::isManifest(type)) return;
            auto m = parseManifest(bytes, what, type);
            reachable.insert(m.config.digest.str());
            for (auto& l : m.layers) reachable.insert(l.digest.str());
            auto config = parseConfig(readFile(blobPath(m.config.digest)), "config");
            for (auto& id : config.diffIds()) diffIds.insert(id.hex());
        } catch (Error&) {
        }
    };
    for (auto& d : readIndex().manifests)
        if (std::find(o.dropRefs.begin(), o.dropRefs.end(), refName(d)) == o.dropRefs.end()) walk(d, 0);

    // Blobs and cache entries are this user's files, unlinked here; what may hold files of
    // subordinate ids (layers, leftovers) goes to `remove`, in one batch.
    auto drop = [&](GcReport::Freed& f, const fs::path& p, uint64_t bytes) {
        f.count++;
        f.bytes += bytes;
        if (!o.dryRun && ::unlink(p.c_str()) < 0 && errno != ENOENT) throw SysError("unable to remove '", p.string(), "'");
    };
    // Step cache entries stay while their layer is in a kept image: an entry for a purged
    // root or compiler would keep its layer, the bulk of what purging frees.
    for (auto& e : entriesOf(root_ / "cache" / "steps")) {
        if (!cacheEntryName(e.path().filename().string())) continue;
        bool keep = false;
        try {
            keep = reachable.count(parseStepEntry(e.path()).layer.digest.str()) > 0;
        } catch (Error&) {
        }
        if (!keep) drop(r.stepEntries, e.path(), fileBytes(e.path()));
    }
    for (auto& e : entriesOf(root_ / "blobs" / "sha256")) {
        auto name = e.path().filename().string();
        if (!isHex64(name) || reachable.count("sha256:" + name)) continue;
        drop(r.blobs, e.path(), fileBytes(e.path()));
    }
    // Where-seen records of blobs no longer stored: not counted, tiny.
    for (auto& e : entriesOf(root_ / "sources" / "sha256")) {
        auto name = e.path().filename().string();
        if (isHex64(name) && !o.dryRun && !hasBlob(Digest::parse("sha256:" + name))) ::unlink(e.path().c_str());
    }
    // Unpacked layers of no kept image; each renamed away first, so that a purge killed
    // half-way never leaves a half layer under its name for the sandbox to use.
    std::vector<fs::path> layers; // and build environments and leftovers
    auto dropTree = [&](GcReport::Freed& f, const fs::path& p) {
        f.count++;
        f.bytes += treeBytes(p);
        if (o.dryRun) return;
        auto gone = tmpDir() / tempName();
        if (::rename(p.c_str(), gone.c_str()) < 0) throw SysError("unable to move '", p.string(), "' away");
        layers.push_back(gone);
    };
    for (auto& e : entriesOf(root_ / "layers")) {
        auto name = e.path().filename().string();
        if (isHex64(name) && !diffIds.count(name)) dropTree(r.layers, e.path());
    }
    for (auto* part : o.parts) part->sweep(*this, reachable, o.dryRun, r, layers);
    for (auto& l : findLeftovers(root_, true, true)) {
        r.leftovers.count++;
        r.leftovers.bytes += treeBytes(l.path);
        if (!o.dryRun) layers.push_back(l.path);
    }
    if (!layers.empty()) remove(layers);
    return r;
}

} // namespace grocker::oci
