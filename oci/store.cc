#include "grocker/oci/store.hh"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "grocker/oci/error.hh"

namespace grocker::oci {

namespace fs = std::filesystem;
using nlohmann::json;

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

Store::Store(fs::path root) : root_(std::move(root))
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
    cleanStaleTemps();
}

void Store::cleanStaleTemps()
{
    // Temp names are ".tmp-<pid>-...": a temp file whose writer is gone is garbage.
    // writeFileAtomic leaves its temp files beside the target (index.json at the root).
    for (auto& dir : {tmpDir(), root_}) {
        std::error_code ec;
        for (auto& e : fs::directory_iterator(dir, ec)) {
            auto name = e.path().filename().string();
            if (name.rfind(".tmp-", 0) != 0) continue;
            pid_t pid = std::atoi(name.c_str() + 5);
            if (pid > 0 && ::kill(pid, 0) < 0 && errno == ESRCH) {
                std::error_code ec2;
                fs::remove_all(e.path(), ec2);
            }
        }
    }
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

} // namespace grocker::oci
