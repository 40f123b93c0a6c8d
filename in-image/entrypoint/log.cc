#include "log.hh"

#include "grocker/error.hh"

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace grocker::entrypoint {

namespace {

constexpr int facilityDaemon = 3 << 3;
constexpr size_t maxMessage = 8192; // what a syslog daemon keeps of a datagram, at least

int connectSyslog(const std::string& path, int type)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return -1;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

} // namespace

std::string syslogMessage(Level level, std::time_t when, const std::string& tag, pid_t pid,
                          std::string_view text)
{
    std::tm tm{};
    ::localtime_r(&when, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%h %e %T", &tm);
    auto m = concat("<", facilityDaemon | int(level), ">", stamp, " ", tag, "[", pid, "]: ");
    m.append(text.substr(0, maxMessage));
    return m;
}

std::string_view syslogText(std::string_view m)
{
    if (m.starts_with('<')) {
        auto close = m.find('>');
        if (close != std::string_view::npos && close <= 4) m.remove_prefix(close + 1);
    }
    // "Mmm dd hh:mm:ss ": 16 characters, with ':' at 9 and 12.
    if (m.size() > 16 && m[3] == ' ' && m[9] == ':' && m[12] == ':' && m[15] == ' ')
        m.remove_prefix(16);
    while (!m.empty() && (m.back() == '\n' || m.back() == '\0'))
        m.remove_suffix(1);
    return m;
}

Log::Log(std::string devLog) : devLog_(std::move(devLog))
{
    fd_ = connectSyslog(devLog_, SOCK_DGRAM);
    if (fd_ < 0 && errno == EPROTOTYPE) {
        fd_ = connectSyslog(devLog_, SOCK_STREAM);
        stream_ = fd_ >= 0;
    }
}

Log::~Log()
{
    if (fd_ >= 0) ::close(fd_);
}

bool Log::send(const std::string& message)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        // A stream socket needs the end marked; glibc ends each message with a NUL.
        auto n = ::send(fd_, message.c_str(), message.size() + (stream_ ? 1 : 0), MSG_NOSIGNAL);
        if (n >= 0) return true;
        // The syslog daemon restarted: connect again once.
        ::close(fd_);
        fd_ = connectSyslog(devLog_, stream_ ? SOCK_STREAM : SOCK_DGRAM);
        if (fd_ < 0) break; // gone for good: from now on, stdout and stderr
    }
    return false;
}

void Log::own(Level level, const std::string& message)
{
    if (quiet_ && level == Level::Info) return;
    if (toSyslog() &&
        send(syslogMessage(level, std::time(nullptr), "grocker-entrypoint", ::getpid(), message)))
        return;
    const char* kind = level == Level::Error     ? "error: "
                       : level == Level::Warning ? "warning: "
                                                 : "";
    raw(STDERR_FILENO, concat("grocker-entrypoint: ", kind, message, "\n"));
}

void Log::line(const std::string& tag, pid_t pid, Level level, std::string_view text)
{
    if (toSyslog() && send(syslogMessage(level, std::time(nullptr), tag, pid, text))) return;
    raw(level <= Level::Notice ? STDERR_FILENO : STDOUT_FILENO, concat(text, "\n"));
}

void Log::raw(int fd, std::string_view data)
{
    while (!data.empty()) {
        auto n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; // nowhere left to say it
        data.remove_prefix(size_t(n));
    }
}

SyslogRelay::SyslogRelay(const std::string& path) : path_(path)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        throw Error("the syslog socket path '", path, "' is too long");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw SysError(errno, "unable to make a syslog socket");
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
        int err = errno;
        ::close(fd_);
        throw SysError(err, "unable to listen on '", path, "'");
    }
    // Every user's programs log here (cron's jobs run as the application's user).
    ::chmod(path.c_str(), 0666);
}

SyslogRelay::~SyslogRelay()
{
    ::close(fd_);
    ::unlink(path_.c_str());
}

void SyslogRelay::drain()
{
    char buf[maxMessage + 64];
    for (;;) {
        auto n = ::recv(fd_, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        Log::raw(STDERR_FILENO, concat(syslogText(std::string_view(buf, size_t(n))), "\n"));
    }
}

} // namespace grocker::entrypoint
