#pragma once
// Where the entrypoint's lines and its services' output go: the host's syslog through /dev/log
// when it is mounted, else stdout and stderr.

#include <ctime>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace grocker::entrypoint {

enum class Level { Error = 3, Warning = 4, Notice = 5, Info = 6 };

class Log {
  public:
    // To syslog when a syslog daemon answers on `devLog` now, else to stdout/stderr.
    explicit Log(std::string devLog = "/dev/log");
    ~Log();
    Log(const Log&) = delete;
    Log& operator=(const Log&) = delete;

    bool toSyslog() const { return fd_ >= 0; }
    // Quiet: the entrypoint's own info lines are dropped (a command's output stays its own).
    void setQuiet(bool quiet) { quiet_ = quiet; }

    void info(const std::string& message) { own(Level::Info, message); }
    void warning(const std::string& message) { own(Level::Warning, message); }
    void error(const std::string& message) { own(Level::Error, message); }

    // A line a service's process wrote (without its newline), tagged with the program's name.
    void line(const std::string& tag, pid_t pid, Level level, std::string_view text);
    // What a service's process wrote, as it came, when there is no syslog.
    static void raw(int fd, std::string_view data);

  private:
    void own(Level level, const std::string& message);
    bool send(const std::string& message);

    std::string devLog_;
    int fd_ = -1;
    bool stream_ = false;
    bool quiet_ = false;
};

// An RFC 3164 message as glibc's syslog() writes it: "<PRI>Mmm dd hh:mm:ss TAG[PID]: TEXT",
// facility daemon.
std::string syslogMessage(Level level, std::time_t when, const std::string& tag, pid_t pid,
                          std::string_view text);

// The text of a message received on a syslog socket, without its "<PRI>" and timestamp.
std::string_view syslogText(std::string_view message);

// A syslog socket of our own on `path`, for the cron instance when no /dev/log is mounted:
// Debian's cron logs only to syslog, and what it says belongs in the container's log.
class SyslogRelay {
  public:
    explicit SyslogRelay(const std::string& path);
    ~SyslogRelay();
    SyslogRelay(const SyslogRelay&) = delete;
    SyslogRelay& operator=(const SyslogRelay&) = delete;
    int fd() const { return fd_; }
    // Writes every waiting message to stderr, one line each.
    void drain();

  private:
    std::string path_;
    int fd_ = -1;
};

} // namespace grocker::entrypoint
