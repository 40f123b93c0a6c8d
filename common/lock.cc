#include "grocker/lock.hh"

#include "grocker/error.hh"

#include <cerrno>
#include <fcntl.h>
#include <sys/file.h>

namespace grocker {

namespace fs = std::filesystem;

FileLock::FileLock(const fs::path& path, bool exclusive)
{
    fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd_) throw SysError("unable to open lock file '", path.string(), "'");
    flockOrBusy(fd_.get(), exclusive ? LOCK_EX : LOCK_SH, path);
}

bool flockOrBusy(int fd, int op, const fs::path& path)
{
    while (::flock(fd, op) < 0) {
        if (errno == EINTR) continue;
        if (errno == EWOULDBLOCK && (op & LOCK_NB)) return false;
        throw SysError("unable to lock '", path.string(), "'");
    }
    return true;
}

bool lockHeld(const fs::path& path)
{
    AutoCloseFD fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd) return true;
    while (::flock(fd.get(), LOCK_SH | LOCK_NB) < 0)
        if (errno != EINTR) return true;
    return false;
}

} // namespace grocker
