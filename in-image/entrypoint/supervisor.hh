#pragma once
// Runs the entrypoint's processes as PID 1 must: passes the stop signals on, reaps every
// child (orphans included: it is a subreaper when not PID 1), relays the services' output
// to the log, and when one process of a group ends, stops the others.

#include "config-files.hh"
#include "grocker/error.hh"
#include "log.hh"

#include <chrono>
#include <csignal>
#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace grocker::entrypoint {

struct ProcessSpec {
    std::string name;              // in the log, and the syslog tag of its output
    std::vector<std::string> argv; // argv[0] is looked up in the PATH of `env`
    std::vector<std::string> env;  // KEY=VALUE
    std::optional<Account> user;   // switched to before exec (the entrypoint runs as root)
    std::vector<gid_t> groups;     // the user's groups
    bool captureOutput = false;    // stdout/stderr to the log (services), else inherited (commands)
    bool terminal = false;         // an interactive command: it gets the terminal's foreground
};

// A process could not be started; `status` is what a shell would exit with (127 not found,
// 126 not executable).
class StartError : public Error {
  public:
    StartError(int status_, const std::string& message) : Error(message), status(status_) {}
    int status;
};

class Supervisor {
  public:
    // Blocks the signals it handles (until destroyed): build it first thing, before anything
    // can start a process.
    explicit Supervisor(Log& log);
    ~Supervisor();
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    // Starts a process of the group that `wait` supervises.
    pid_t start(const ProcessSpec& spec);
    // Runs a set-up step to its end; returns its status and puts its output (both streams) in
    // `output`.
    int runToEnd(const ProcessSpec& spec, std::string& output);
    // Sends `sig` to every process still running (when the group cannot be completed).
    void signalAll(int sig);
    // While waiting, calls `onReadable` when `fd` has data.
    void watch(int fd, std::function<void()> onReadable);

    // Until every started process has ended. Returns the exit status: with one process, its
    // status (128 + signal when killed); with several, 0 when all ended with 0, else the status
    // of the first that did not.
    int wait();

    // How long the others get to stop after SIGTERM when one process of a group ended.
    std::chrono::milliseconds stopGrace{10000};

  private:
    struct Proc {
        pid_t pid;
        std::string name;
        bool running = true;
        int status = 0;
    };
    struct Stream {
        int fd;
        std::string tag;
        pid_t pid;
        Level level;
        std::string partial;
    };

    pid_t spawn(const ProcessSpec& spec, int out, int err);
    void reap();
    void stopOthers(const Proc& ended);
    bool readStream(Stream& s); // false at the end

    Log& log_;
    sigset_t oldMask_;
    int signalFd_ = -1;
    std::vector<Proc> procs_;
    std::vector<Stream> streams_;
    std::vector<std::pair<int, std::function<void()>>> watches_;
    std::vector<int> endOrder_; // statuses, in the order the processes ended
    bool stopping_ = false;
    std::optional<std::chrono::steady_clock::time_point> killAt_;
};

// The exit status for a wait() status: the code, or 128 + the signal that killed it.
int exitStatus(int waitStatus);

} // namespace grocker::entrypoint
