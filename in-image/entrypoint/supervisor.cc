#include "supervisor.hh"

#include "grocker/file.hh"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

namespace grocker::entrypoint {

namespace {

// Passed on to the processes: the stop signals, reload (HUP) and the user signals.
constexpr int forwarded[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2};

sigset_t handledSignals()
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    for (int s : forwarded)
        sigaddset(&set, s);
    return set;
}

std::string signalName(int sig)
{
    const char* abbrev = ::sigabbrev_np(sig);
    return abbrev ? concat("SIG", abbrev) : concat("signal ", sig);
}

std::string describeEnd(int waitStatus)
{
    if (WIFSIGNALED(waitStatus)) return concat("was killed by ", signalName(WTERMSIG(waitStatus)));
    return concat("exited with status ", WEXITSTATUS(waitStatus));
}

// What a child reports through its close-on-exec pipe when it could not exec: errno, then the step.
struct ChildFailure {
    int err;
    char step[240];
};

[[noreturn]] void childFail(int reportFd, int err, const char* step)
{
    ChildFailure f{err, {}};
    std::strncpy(f.step, step, sizeof f.step - 1);
    (void)!::write(reportFd, &f, sizeof f);
    ::_exit(127);
}

// The child between fork and exec: only async-signal-safe calls on data prepared before fork.
[[noreturn]] void childExec(const ProcessSpec& spec, char* const argv[], char* const envp[],
                            const char* path, int reportFd, int out, int err)
{
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    // Every signal to its default, as an init must hand them on: one ignored when we were
    // started (a shell's background job starts with SIGINT and SIGQUIT ignored, and a shell
    // cannot trap a signal ignored at its start) would stay ignored in every service.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
    if (spec.terminal && ::isatty(STDIN_FILENO) && ::tcgetpgrp(STDIN_FILENO) == ::getpgrp()) {
        // Its own process group in the terminal's foreground, so ^C reaches it once, from the
        // terminal, and not a second time from us passing SIGINT on.
        pid_t old = ::getpgrp();
        if (::setpgid(0, 0) == 0 && ::tcsetpgrp(STDIN_FILENO, ::getpid()) < 0) ::setpgid(0, old);
    }
    if (out >= 0 && ::dup2(out, STDOUT_FILENO) < 0)
        childFail(reportFd, errno, "redirecting its stdout");
    if (err >= 0 && ::dup2(err, STDERR_FILENO) < 0)
        childFail(reportFd, errno, "redirecting its stderr");
    if (spec.user) {
        // In a user namespace that denies setgroups, keeping the current groups is all we can do.
        if (::setgroups(spec.groups.size(), spec.groups.data()) < 0 && errno != EPERM)
            childFail(reportFd, errno, "setting its groups");
        if (::setresgid(spec.user->gid, spec.user->gid, spec.user->gid) < 0)
            childFail(reportFd, errno, "switching to the user's group");
        if (::setresuid(spec.user->uid, spec.user->uid, spec.user->uid) < 0)
            childFail(reportFd, errno, "switching to the user");
    }
    // execvpe looks the program up in this process's PATH: make it the command's.
    if (path) ::setenv("PATH", path, 1);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvpe(argv[0], argv, envp);
    childFail(reportFd, errno, "");
}

std::string pathOf(const std::vector<std::string>& env)
{
    for (auto& e : env)
        if (e.starts_with("PATH=")) return e.substr(5);
    return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

struct Pipe {
    AutoCloseFD read, write;
    Pipe()
    {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) < 0) throw SysError(errno, "unable to make a pipe");
        read.reset(fds[0]);
        write.reset(fds[1]);
    }
};

} // namespace

int exitStatus(int waitStatus)
{
    return WIFSIGNALED(waitStatus) ? 128 + WTERMSIG(waitStatus) : WEXITSTATUS(waitStatus);
}

Supervisor::Supervisor(Log& log) : log_(log)
{
    sigset_t set = handledSignals();
    if (::sigprocmask(SIG_BLOCK, &set, &oldMask_) < 0)
        throw SysError(errno, "unable to block signals");
    signalFd_ = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signalFd_ < 0) throw SysError(errno, "unable to make a signalfd");
    // Writing to a closed log pipe must not kill PID 1.
    ::signal(SIGPIPE, SIG_IGN);
    // When not PID 1 (under `grocker run`, or `docker run --init`), orphans still come to us.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

Supervisor::~Supervisor()
{
    for (auto& s : streams_)
        ::close(s.fd);
    ::close(signalFd_);
    ::sigprocmask(SIG_SETMASK, &oldMask_, nullptr);
}

pid_t Supervisor::spawn(const ProcessSpec& spec, int out, int err)
{
    if (spec.argv.empty()) throw Error("no command to run for ", spec.name);
    std::vector<char*> argv, envp;
    for (auto& a : spec.argv)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (auto& e : spec.env)
        envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    auto path = pathOf(spec.env);
    Pipe report;
    pid_t pid = ::fork();
    if (pid < 0) throw SysError(errno, "unable to start '", spec.argv[0], "' (fork)");
    if (pid == 0)
        childExec(spec, argv.data(), envp.data(), path.c_str(), report.write.get(), out, err);
    report.write.reset();
    ChildFailure f{};
    ssize_t n;
    while ((n = ::read(report.read.get(), &f, sizeof f)) < 0 && errno == EINTR) {
    }
    if (n <= 0) return pid; // exec closed the pipe: it runs
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    f.step[sizeof f.step - 1] = 0;
    auto user = spec.user ? concat(" as user ", spec.user->name) : std::string();
    if (f.step[0])
        throw StartError(126, concat("unable to start '", spec.argv[0], "'", user, ": ", f.step,
                                     ": ", std::strerror(f.err)));
    if (f.err == ENOENT)
        throw StartError(127, concat("unable to run '", spec.argv[0], "': no such ",
                                     spec.argv[0].find('/') == std::string::npos
                                         ? concat("command in PATH (", path, ")")
                                         : "file"));
    if (f.err == EACCES)
        throw StartError(126, concat("unable to run '", spec.argv[0], "'", user,
                                     ": permission denied (is it executable? chmod +x it)"));
    throw StartError(
        126, concat("unable to run '", spec.argv[0], "'", user, ": ", std::strerror(f.err)));
}

pid_t Supervisor::start(const ProcessSpec& spec)
{
    std::optional<Pipe> out, err;
    if (spec.captureOutput) {
        out.emplace();
        err.emplace();
        // Owned by the user, so that it can open them again by name (nginx's /dev/stdout).
        for (int fd : {out->write.get(), err->write.get()})
            if (spec.user && ::fchown(fd, spec.user->uid, spec.user->gid) < 0)
                throw SysError(errno, "unable to give the output pipes of ", spec.name, " to ",
                               spec.user->name);
    }
    pid_t pid = spawn(spec, out ? out->write.get() : -1, err ? err->write.get() : -1);
    procs_.push_back({pid, spec.name});
    if (spec.captureOutput) {
        for (auto* p : {&*out, &*err}) {
            p->write.reset();
            ::fcntl(p->read.get(), F_SETFL, O_NONBLOCK);
        }
        streams_.push_back({out->read.release(), spec.name, pid, Level::Info, {}});
        streams_.push_back({err->read.release(), spec.name, pid, Level::Notice, {}});
    }
    return pid;
}

int Supervisor::runToEnd(const ProcessSpec& spec, std::string& output)
{
    Pipe out;
    pid_t pid = spawn(spec, out.write.get(), out.write.get());
    out.write.reset();
    output.clear();
    char buf[4096];
    for (;;) {
        auto n = ::read(out.read.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        output.append(buf, size_t(n));
    }
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    while (!output.empty() && output.back() == '\n')
        output.pop_back();
    return exitStatus(status);
}

void Supervisor::signalAll(int sig)
{
    stopping_ = true;
    for (auto& p : procs_)
        if (p.running) ::kill(p.pid, sig);
}

void Supervisor::watch(int fd, std::function<void()> onReadable)
{
    watches_.emplace_back(fd, std::move(onReadable));
}

void Supervisor::stopOthers(const Proc& ended)
{
    std::string others;
    for (auto& p : procs_)
        if (p.running) {
            ::kill(p.pid, SIGTERM);
            others += (others.empty() ? "" : " and ") + p.name;
        }
    if (others.empty()) return;
    log_.warning(concat(ended.name, " ended: stopping ", others));
    killAt_ = std::chrono::steady_clock::now() + stopGrace;
}

void Supervisor::reap()
{
    for (;;) {
        int status;
        pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid <= 0) return; // none left to reap now (ECHILD), or all running
        for (auto& p : procs_) {
            if (p.pid != pid || !p.running) continue;
            p.running = false;
            p.status = exitStatus(status);
            endOrder_.push_back(p.status);
            log_.info(concat(p.name, " (pid ", pid, ") ", describeEnd(status)));
            if (procs_.size() > 1 && !stopping_) {
                stopping_ = true;
                stopOthers(p);
            }
        }
    }
}

bool Supervisor::readStream(Stream& s)
{
    char buf[65536];
    for (;;) {
        auto n = ::read(s.fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return true;
        if (n <= 0) {
            if (!s.partial.empty()) log_.line(s.tag, s.pid, s.level, s.partial);
            s.partial.clear();
            return false;
        }
        s.partial.append(buf, size_t(n));
        size_t start = 0;
        for (size_t nl; (nl = s.partial.find('\n', start)) != std::string::npos; start = nl + 1)
            log_.line(s.tag, s.pid, s.level, std::string_view(s.partial).substr(start, nl - start));
        s.partial.erase(0, start);
        // A line with no end in sight goes out in pieces.
        constexpr size_t maxLine = 8192;
        while (s.partial.size() >= maxLine) {
            log_.line(s.tag, s.pid, s.level, std::string_view(s.partial).substr(0, maxLine));
            s.partial.erase(0, maxLine);
        }
    }
}

int Supervisor::wait()
{
    using Clock = std::chrono::steady_clock;
    // After the last process ended, its output may still be in the pipes (or held open by a
    // grandchild it left behind): read it for a moment, not forever.
    std::optional<Clock::time_point> drainUntil;
    for (;;) {
        bool running = false;
        for (auto& p : procs_)
            running |= p.running;
        if (!running) {
            if (streams_.empty()) break;
            if (!drainUntil) drainUntil = Clock::now() + std::chrono::seconds(2);
            if (Clock::now() >= *drainUntil) break;
        }
        std::vector<pollfd> fds{{signalFd_, POLLIN, 0}};
        for (auto& s : streams_)
            fds.push_back({s.fd, POLLIN, 0});
        for (auto& [fd, f] : watches_)
            fds.push_back({fd, POLLIN, 0});
        int timeout = -1;
        auto until = [&](Clock::time_point t) {
            auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - Clock::now()).count();
            ms = std::max<decltype(ms)>(ms, 0);
            timeout = timeout < 0 ? int(ms) : std::min(timeout, int(ms));
        };
        if (killAt_) until(*killAt_);
        if (drainUntil) until(*drainUntil);
        if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR)
            throw SysError(errno, "unable to poll");

        if (fds[0].revents & POLLIN) {
            signalfd_siginfo si;
            while (::read(signalFd_, &si, sizeof si) == sizeof si) {
                int sig = int(si.ssi_signo);
                if (sig == SIGCHLD) continue; // reaped below, whatever the number of SIGCHLDs
                if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) stopping_ = true;
                std::string to;
                for (auto& p : procs_)
                    if (p.running) {
                        ::kill(p.pid, sig);
                        to += (to.empty() ? "" : " and ") + p.name;
                    }
                if (!to.empty()) log_.info(concat("passing ", signalName(sig), " on to ", to));
            }
        }
        reap();
        // Streams first, then watches: the indexes in `fds` follow that order.
        size_t i = 1;
        for (auto it = streams_.begin(); it != streams_.end(); i++) {
            if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) && !readStream(*it)) {
                ::close(it->fd);
                it = streams_.erase(it);
            } else {
                ++it;
            }
        }
        for (auto& [fd, f] : watches_)
            if (fds[i++].revents & POLLIN) f();
        if (killAt_ && Clock::now() >= *killAt_) {
            for (auto& p : procs_)
                if (p.running) {
                    log_.warning(concat(p.name, " (pid ", p.pid, ") did not stop within ",
                                        stopGrace.count() / 1000, " s of SIGTERM: killing it"));
                    ::kill(p.pid, SIGKILL);
                }
            killAt_.reset();
        }
    }
    if (procs_.size() == 1) return procs_[0].status;
    for (int s : endOrder_)
        if (s != 0) return s;
    return 0;
}

} // namespace grocker::entrypoint
