#include "grocker/process.hh"

#include "grocker/file.hh"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace grocker {

bool ProcessResult::succeeded() const
{
    return WIFEXITED(waitStatus) && WEXITSTATUS(waitStatus) == 0;
}

int ProcessResult::exitCode() const
{
    return WIFEXITED(waitStatus) ? WEXITSTATUS(waitStatus) : 128 + WTERMSIG(waitStatus);
}

std::optional<int> ProcessResult::signal() const
{
    if (WIFSIGNALED(waitStatus)) return WTERMSIG(waitStatus);
    return std::nullopt;
}

namespace {

// A started program: killed and reaped when abandoned (an exception), so that none is left
// running or as a zombie.
class Child {
  public:
    explicit Child(pid_t pid) : pid_(pid) {}
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child()
    {
        if (pid_ < 0) return;
        ::kill(pid_, SIGKILL);
        wait();
    }

    // Its wait status, once it ended.
    int wait()
    {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
        return status;
    }

  private:
    pid_t pid_;
};

struct Pipe {
    AutoCloseFD read, write;
};

// Close-on-exec: the program gets its ends as 0, 1 and 2 only, and a program started by another
// thread meanwhile gets none.
Pipe makePipe(const std::string& program)
{
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) < 0) throw SysError("unable to create a pipe for ", program);
    return {AutoCloseFD(fds[0]), AutoCloseFD(fds[1])};
}

// SIGPIPE blocked in this thread while it writes to the program: a program gone before reading
// all its input makes write() fail with EPIPE instead of killing this process. The SIGPIPE
// raised meanwhile is taken back before the mask is restored (unless one was pending already).
class SigpipeBlocked {
  public:
    SigpipeBlocked()
    {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
        sigset_t pending;
        sigpending(&pending);
        wasPending_ = sigismember(&pending, SIGPIPE) == 1;
    }
    SigpipeBlocked(const SigpipeBlocked&) = delete;
    SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;
    ~SigpipeBlocked()
    {
        int saved = errno;
        if (!wasPending_) {
            timespec zero{};
            while (::sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
            }
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
        errno = saved;
    }

  private:
    sigset_t pipe_, old_;
    bool wasPending_ = false;
};

// Starts the program with `in` as its standard input and `out` as its standard output (and
// error), every other descriptor closed, no signal blocked and SIGPIPE at its default action
// (an ignored signal stays ignored across exec otherwise).
pid_t spawn(const std::vector<std::string>& argv, int in, int out, bool mergeStderr)
{
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in, 0);
    posix_spawn_file_actions_adddup2(&actions, out, 1);
    if (mergeStderr) posix_spawn_file_actions_adddup2(&actions, out, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    // Descriptors other code opened without O_CLOEXEC are not the program's either.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, pipe;
    sigemptyset(&none);
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &pipe);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> args;
    for (auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = -1;
    int rc = ::posix_spawnp(&pid, argv[0].c_str(), &actions, &attr, args.data(), environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw SpawnError(rc, "unable to run '", argv[0], "'");
    return pid;
}

// Feeds `input` and collects the output together, with poll: a program that writes much
// before reading all its input cannot fill one pipe while this process waits on the other.
std::string exchange(AutoCloseFD in, AutoCloseFD out, std::string_view input, size_t maxOutput,
                     const std::string& program)
{
    SigpipeBlocked blocked;
    std::string output;
    size_t written = 0;
    if (input.empty()) in.reset();
    // Non-blocking: a write must not wait for the program to read the part that did not fit.
    if (in) ::fcntl(in.get(), F_SETFL, ::fcntl(in.get(), F_GETFL) | O_NONBLOCK);
    char buf[65536];
    while (out || in) {
        pollfd fds[2];
        nfds_t n = 0;
        int outAt = -1, inAt = -1;
        if (out) fds[outAt = int(n++)] = {out.get(), POLLIN, 0};
        if (in) fds[inAt = int(n++)] = {in.get(), POLLOUT, 0};
        if (::poll(fds, n, -1) < 0) {
            if (errno == EINTR) continue;
            throw SysError("unable to wait for '", program, "'");
        }
        if (inAt >= 0 && fds[inAt].revents) {
            ssize_t k = ::write(in.get(), input.data() + written, input.size() - written);
            if (k < 0 && errno == EPIPE) {
                in.reset(); // it stopped reading: its output and status say why
            } else if (k < 0 && errno != EINTR && errno != EAGAIN) {
                throw SysError("unable to write to '", program, "'");
            } else if (k > 0 && (written += size_t(k)) == input.size()) {
                in.reset(); // end of its input
            }
        }
        if (outAt >= 0 && fds[outAt].revents) {
            ssize_t k = ::read(out.get(), buf, sizeof buf);
            if (k < 0 && errno != EINTR && errno != EAGAIN)
                throw SysError("unable to read the output of '", program, "'");
            if (k == 0) out.reset();
            if (k <= 0) continue;
            if (output.size() + size_t(k) > maxOutput)
                throw Error("'", program, "' wrote more than ", maxOutput,
                            " bytes of output; stopped");
            output.append(buf, size_t(k));
        }
    }
    return output;
}

} // namespace

ProcessResult runProgram(const std::vector<std::string>& argv, std::string_view input,
                         const ProcessOptions& options)
{
    if (argv.empty() || argv[0].empty()) throw Error("no program to run");
    const std::string& program = argv[0];
    Pipe in = makePipe(program), out = makePipe(program);
    Child child(spawn(argv, in.read.get(), out.write.get(), options.mergeStderr));
    // Only the program holds these ends now: its exit is the end of the output.
    in.read.reset();
    out.write.reset();
    ProcessResult result;
    result.output =
        exchange(std::move(in.write), std::move(out.read), input, options.maxOutput, program);
    result.waitStatus = child.wait();
    return result;
}

} // namespace grocker
