#include "grocker/file.hh"

#include "grocker/error.hh"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace grocker {

namespace fs = std::filesystem;

AutoCloseFD& AutoCloseFD::operator=(AutoCloseFD&& other) noexcept
{
    if (this != &other) reset(other.release());
    return *this;
}

AutoCloseFD::~AutoCloseFD()
{
    reset();
}

int AutoCloseFD::release()
{
    int fd = fd_;
    fd_ = -1;
    return fd;
}

void AutoCloseFD::reset(int fd)
{
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
}

AutoDelete& AutoDelete::operator=(AutoDelete&& other) noexcept
{
    if (this != &other) {
        this->~AutoDelete();
        path_ = std::move(other.path_);
        other.path_.clear();
    }
    return *this;
}

AutoDelete::~AutoDelete()
{
    if (path_.empty()) return;
    std::error_code ec;
    // Folders made read-only (unpacked layers) must be writable again to be removed.
    for (auto it = fs::recursive_directory_iterator(
             path_, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
    }
    ::chmod(path_.c_str(), 0700);
    fs::remove_all(path_, ec);
}

fs::path makeTempDir(const fs::path& parent, const std::string& prefix)
{
    std::string templ = (parent / (prefix + "XXXXXX")).string();
    if (!::mkdtemp(templ.data()))
        throw SysError("unable to create a temporary folder in '", parent.string(), "'");
    return templ;
}

std::string readFd(int fd)
{
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw SysError("unable to read");
        }
        if (n == 0) break;
        out.append(buf, size_t(n));
    }
    return out;
}

std::string readFile(const fs::path& path)
{
    AutoCloseFD fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw SysError("unable to open '", path.string(), "'");
    try {
        return readFd(fd.get());
    } catch (Error& e) {
        e.addContext("while reading '" + path.string() + "'");
        throw;
    }
}

void writeFull(int fd, const void* data, size_t len, const std::string& what)
{
    auto p = static_cast<const char*>(data);
    while (len > 0) {
        ssize_t n = ::write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            throw SysError(
                err, concat("unable to write to '", what, "'",
                            err == ENOSPC ? " (the disk is full: free space and retry)" : ""));
        }
        p += n;
        len -= size_t(n);
    }
}

size_t readSome(int fd, void* buf, size_t len, const std::string& what)
{
    for (;;) {
        ssize_t n = ::read(fd, buf, len);
        if (n >= 0) return size_t(n);
        if (errno != EINTR) throw SysError("unable to read '", what, "'");
    }
}

std::vector<std::string> listFolder(int dirFd, const std::string& where)
{
    int fd = ::openat(dirFd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw SysError("unable to open folder '", where, "'");
    DIR* d = ::fdopendir(fd);
    if (!d) {
        ::close(fd);
        throw SysError("unable to read folder '", where, "'");
    }
    std::vector<std::string> names;
    // readdir tells the end of the folder from an error only through errno.
    errno = 0;
    while (auto* de = ::readdir(d)) {
        std::string_view n = de->d_name;
        if (n != "." && n != "..") names.emplace_back(n);
    }
    int err = errno;
    ::closedir(d);
    if (err) throw SysError(err, concat("unable to read folder '", where, "'"));
    std::sort(names.begin(), names.end());
    return names;
}

void fsyncDir(const fs::path& dir)
{
    AutoCloseFD fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) throw SysError("unable to open folder '", dir.string(), "'");
    if (::fsync(fd.get()) < 0) throw SysError("unable to sync folder '", dir.string(), "'");
}

std::string tempName()
{
    static std::atomic<unsigned> counter{0};
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return concat(".tmp-", ::getpid(), "-", counter++, "-", std::hex, rng() & 0xffffffff);
}

void writeFileAtomic(const fs::path& path, std::string_view data, mode_t mode)
{
    fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
    fs::path tmp = dir / tempName();
    AutoCloseFD fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (!fd) throw SysError("unable to create '", tmp.string(), "'");
    try {
        writeFull(fd.get(), data, tmp.string());
        if (::fchmod(fd.get(), mode) < 0)
            throw SysError("unable to set the mode of '", tmp.string(), "'");
        if (::fsync(fd.get()) < 0) throw SysError("unable to sync '", tmp.string(), "'");
        fd.reset();
        if (::rename(tmp.c_str(), path.c_str()) < 0)
            throw SysError("unable to rename '", tmp.string(), "' to '", path.string(), "'");
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
    fsyncDir(dir);
}

} // namespace grocker
