#include "grocker/oci/store.hh"

#include "grocker/error.hh"
#include "store-upkeep.hh"

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

namespace grocker::oci {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::vector<std::shared_ptr<StorePart>>& registeredParts()
{
    static std::vector<std::shared_ptr<StorePart>> parts;
    return parts;
}

} // namespace

void setStoreParts(std::vector<std::shared_ptr<StorePart>> parts)
{
    registeredParts() = std::move(parts);
}

fs::path Store::defaultRoot()
{
    if (const char* r = std::getenv("GROCKER_ROOT"); r && *r) return r;
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "grocker";
    if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "grocker";
    throw Error("no store location: set GROCKER_ROOT, XDG_CACHE_HOME or HOME, or pass --root");
}

Store::Store(fs::path root, Leftovers leftovers)
    : Store(std::move(root), leftovers, registeredParts())
{
}

Store::Store(fs::path root, Leftovers leftovers, std::vector<std::shared_ptr<StorePart>> parts)
    : root_(std::move(root)), parts_(std::move(parts))
{
    std::error_code ec;
    fs::create_directories(root_ / "blobs" / "sha256", ec);
    if (!ec) fs::create_directories(root_ / "tmp", ec);
    if (ec)
        throw Error("unable to create the store at '", root_.string(), "': ", ec.message(),
                    "; pass --root or set GROCKER_ROOT to a writable folder");
    if (!fs::exists(root_ / "oci-layout"))
        writeFileAtomic(root_ / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    if (!fs::exists(root_ / "index.json")) {
        auto l = lock(true);
        if (!fs::exists(root_ / "index.json"))
            writeFileAtomic(root_ / "index.json", canonical(toJson(Index{})));
    }
    auto gcPath = root_ / "gc.lock";
    gcLock_.reset(::open(gcPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!gcLock_) throw SysError("unable to open the store's lock file '", gcPath.string(), "'");
    // Exclusive for a moment if no other grocker process has the store open: then nothing in
    // it is in use, and run folders of killed steps (whose names carry no pid) can go too.
    bool alone = flockOrBusy(gcLock_.get(), LOCK_EX | LOCK_NB, gcPath);
    aloneAtOpen_ = alone;
    if (leftovers == Leftovers::Remove) cleanLeftovers(alone);
    // For check() to report. (Folders it cannot list, check() lists again and reports.)
    else if (alone)
        deadAtOpen_ = findLeftovers(true, false).found;
    if (!flockOrBusy(gcLock_.get(), LOCK_SH | LOCK_NB, gcPath)) {
        // Only an exclusive holder makes this wait: a purge or an fsck --repair, for minutes.
        std::cerr << "grocker: waiting for the store '" << root_.string()
                  << "': another grocker process (purge or fsck --repair) is cleaning it\n";
        flockOrBusy(gcLock_.get(), LOCK_SH, gcPath);
    }
}

// What dead processes left:
// - temp files and folders named ".tmp-<pid>-..." whose process is gone: BlobWriter and
//   unpacking in tmp/, writeFileAtomic beside its target (the store's root, sources/), and what
//   the parts find in their folders;
// - with `alone` (known when no other grocker process has the store: its gc lock taken
//   exclusive), what the parts know dead though its name carries no pid (run folders);
// - with `locks`, the lock files under locks/ (build steps', the sandbox's) that no process
//   holds. Removing one that a process has opened but not yet locked would let two processes
//   hold "the" lock: only a process holding the gc lock exclusive removes them.
LeftoverSearch Store::findLeftovers(bool alone, bool locks) const
{
    LeftoverSearch s;
    s.alone = alone;
    for (auto& dir : {root_ / "tmp", root_, root_ / "sources" / "sha256"})
        s.deadTemps(dir);
    for (auto& part : parts_)
        part->leftovers(*this, s);
    if (!locks) return s;
    for (auto& e : s.entries(root_ / "locks")) {
        auto name = e.path().filename().string();
        std::error_code ec; // an entry that cannot be stat'ed is gone, or not a lock file to judge
        if (!name.ends_with(".lock") || !e.is_regular_file(ec) || lockHeld(e.path())) continue;
        s.add(e.path(), "lock file of a build step that no process holds",
              StoreLeftover::Kind::Lock);
    }
    return s;
}

void Store::cleanLeftovers(bool everything)
{
    // Best effort: what cannot be removed here (files of subordinate ids, when rootless) is
    // reported by grocker fsck and removed by fsck --repair or purge, in a user namespace; a
    // folder that cannot be listed, fsck reports too.
    for (auto& l : findLeftovers(everything, everything).found) {
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

fs::path Store::blobPath(const Digest& d) const
{
    return root_ / "blobs" / d.algorithm() / d.hex();
}

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

void Store::BlobWriter::finish()
{
    sink_->finish();
}

Descriptor Store::BlobWriter::commit(std::string mediaType, const std::optional<Digest>& expected,
                                     const std::string& what)
{
    sink_->finish();
    Digest d = hash_.finish();
    if (expected && *expected != d)
        throw Error(what, " has digest ", d.str(), " but ", expected->str(),
                    " was expected; the source is corrupt or was changed: fetch it again");
    if (::fchmod(fd_.get(), 0444) < 0)
        throw SysError("unable to set the mode of '", tmp_.string(), "'");
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

Descriptor Store::importFd(int fd, std::string mediaType, const std::optional<Digest>& expected,
                           const std::string& what)
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

Descriptor Store::importFile(const fs::path& path, std::string mediaType,
                             const std::optional<Digest>& expected, const std::string& what)
{
    AutoCloseFD fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw SysError("unable to open '", path.string(), "'");
    return importFd(fd.get(), std::move(mediaType), expected, what);
}

std::string Store::readBlob(const Descriptor& d, const std::string& what) const
{
    // Manifests and configs are small; a huge one is garbage, not something to load.
    constexpr int64_t limit = 64 << 20;
    if (d.size > limit)
        throw Error(what, " is ", d.size, " bytes, more than the ", limit,
                    " a manifest or config may have");
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
    if (!fd)
        throw SysError("unable to open ", what, " (", d.str(), ") in the store '", root_.string(),
                       "'");
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
        throw Error(what, " in the store is corrupt (its content has digest ", actual.str(),
                    "); remove '", blobPath(d).string(), "' and fetch it again");
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
} // namespace

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
        if (!line.empty() && std::find(out.begin(), out.end(), line) == out.end())
            out.push_back(line);
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
    for (auto& r : known)
        text += r + "\n";
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
            if (n < 0 &&
                (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL)) {
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
        if (::fchmod(out.get(), mode) < 0 || ::fsync(out.get()) < 0)
            throw SysError("unable to sync '", tmp.string(), "'");
        out.reset();
        if (::rename(tmp.c_str(), to.c_str()) < 0)
            throw SysError("unable to rename '", tmp.string(), "' to '", to.string(), "'");
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
}

void Store::removeRefs(const std::vector<std::string>& names)
{
    if (names.empty()) return;
    auto l = lock(true);
    Index idx = readIndex();
    std::erase_if(idx.manifests, [&](const Descriptor& d) {
        auto it = d.annotations.find("org.opencontainers.image.ref.name");
        return it != d.annotations.end() &&
               std::find(names.begin(), names.end(), it->second) != names.end();
    });
    writeFileAtomic(root_ / "index.json", canonical(toJson(idx)));
}

} // namespace grocker::oci
