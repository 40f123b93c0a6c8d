#include "child.hh"

#include "accounts.hh"
#include "forward-signals.hh"
#include "grocker/error.hh"
#include "mounts.hh"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <sstream>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace grocker::sandbox {

namespace fs = std::filesystem;

void sendMessage(int fd, char kind, const std::string& text)
{
    std::string m = kind + text + '\0';
    (void)!::write(fd, m.data(), m.size());
}

[[noreturn]] void childFail(Child& c, const std::string& message)
{
    sendMessage(c.errFd, 'E', c.step.empty() ? message : "while " + c.step + ": " + message);
    ::_exit(127);
}

int statusCode(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

namespace {

void bringUpLoopback()
{
    AutoCloseFD s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s) throw SysError("unable to make a socket to set up the loopback interface");
    struct ifreq ifr = {};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) < 0)
        throw SysError("unable to read the flags of 'lo'");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) < 0) throw SysError("unable to bring up 'lo'");
}

// The capabilities a package install needs inside its own namespace: Docker's default set.
void limitCapabilities()
{
    static const int keep[] = {
        CAP_CHOWN,       CAP_DAC_OVERRIDE, CAP_FOWNER,  CAP_FSETID,           CAP_KILL,
        CAP_SETGID,      CAP_SETUID,       CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
        CAP_AUDIT_WRITE, CAP_SETFCAP,      CAP_MKNOD};
    for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
        bool kept = false;
        for (int k : keep)
            kept |= k == cap;
        if (!kept && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            throw SysError("unable to drop capability ", cap);
    }
}

[[noreturn]] void execCommand(Child& c)
{
    auto& s = *c.spec;
    try {
        c.step = "switching to user '" + (s.user.empty() ? std::string("root") : s.user) + "'";
        auto ids =
            resolveUser(s.user, readAccountFile("/etc/passwd"), readAccountFile("/etc/group"));
        c.step = "entering the working directory '" + s.workdir + "'";
        if (::chdir(s.workdir.c_str()) < 0) {
            // As Docker: a missing working directory is made.
            std::error_code ec;
            fs::create_directories(s.workdir, ec);
            if (::chdir(s.workdir.c_str()) < 0) throw SysError("unable to enter '", s.workdir, "'");
        }
        c.step = "dropping privileges";
        limitCapabilities();
        if (::setgroups(ids.groups.size(), ids.groups.data()) < 0 && errno != EPERM)
            throw SysError("unable to set the supplementary groups");
        if (::setresgid(ids.gid, ids.gid, ids.gid) < 0)
            throw SysError("unable to switch to gid ", ids.gid);
        if (::setresuid(ids.uid, ids.uid, ids.uid) < 0)
            throw SysError("unable to switch to uid ", ids.uid);
        // Nothing run from here can gain privileges: setuid binaries and file capabilities are
        // inert.
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            throw SysError("unable to set no_new_privs");
        if (s.outputFd >= 0 && (::dup2(s.outputFd, 1) < 0 || ::dup2(s.outputFd, 2) < 0))
            throw SysError("unable to send the command's output to grocker");
        if (s.outputFd < 0 && s.stdoutToStderr && ::dup2(2, 1) < 0)
            throw SysError("unable to send standard output to standard error");
        c.step = "starting '" + s.argv[0] + "'";
        std::vector<char*> argv, envp;
        for (auto& a : s.argv)
            argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        for (auto& e : s.env)
            envp.push_back(const_cast<char*>(e.c_str()));
        envp.push_back(nullptr);
        // execvpe looks in the PATH of this process: make it the command's.
        std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        for (auto& e : s.env)
            if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
        ::setenv("PATH", path.c_str(), 1);
        ::execvpe(argv[0], argv.data(), envp.data());
        int err = errno;
        throw SysError(err, concat("unable to run '", s.argv[0], "'",
                                   err == ENOENT ? " (not found in the image)" : ""));
    } catch (std::exception& e) {
        childFail(c, e.what());
    }
}

void setHostAndNetwork(Child& c)
{
    auto& s = *c.spec;
    c.step = "setting the hostname";
    if (::sethostname(s.hostname.data(), s.hostname.size()) < 0)
        throw SysError("unable to set the hostname");
    if (!s.hostNetwork) {
        c.step = "bringing up the loopback interface";
        bringUpLoopback();
    }
}

// The command's side of a nested sandbox: a user namespace that maps the range only (0–65535 of
// the init's), which the init maps once `ready` says it is made, and uts, ipc and network
// namespaces that user namespace owns (so its root may bind low ports, as in any container).
void enterCommandNamespaces(Child& c, int ready, int mapped)
{
    c.step = "entering the command's user namespace";
    int flags =
        CLONE_NEWUSER | CLONE_NEWUTS | CLONE_NEWIPC | (c.spec->hostNetwork ? 0 : CLONE_NEWNET);
    if (::unshare(flags) < 0) throw SysError("unable to make the command's namespaces");
    if (::write(ready, "r", 1) != 1) throw SysError("unable to tell the init");
    char go;
    if (::read(mapped, &go, 1) != 1) throw Error("the init did not map the command's ids");
    if (::setresgid(0, 0, 0) < 0 || ::setresuid(0, 0, 0) < 0)
        throw SysError("unable to become root in the command's namespace");
    setHostAndNetwork(c);
}

// The init's side: the command's map, "0 0 65536" for users and groups.
void mapCommand(pid_t cmd, int ready, int mapped)
{
    char r;
    if (::read(ready, &r, 1) != 1) throw Error("the command did not make its user namespace");
    for (const char* file : {"uid_map", "gid_map"}) {
        auto path = concat("/proc/", cmd, "/", file);
        AutoCloseFD fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
        static const char range[] = "0 0 65536\n";
        if (!fd || ::write(fd.get(), range, sizeof range - 1) != ssize_t(sizeof range - 1))
            throw SysError("unable to write the command's ", file);
    }
    if (::write(mapped, "m", 1) != 1) throw SysError("unable to tell the command");
}

// Copy mode, once the command is done: what it changed in the root goes into the upper dir,
// as overlay would have put it there.
void writeChanges(Child& c)
{
    // What the command left running could still write: the tree is read once it is still,
    // as an overlay upper dir is once the pid namespace is gone.
    ::kill(-1, SIGKILL);
    while (::wait(nullptr) > 0 || errno == EINTR) {
    }
    try {
        c.step = "writing the step's changes into the upper dir (copy mode)";
        AutoCloseFD root(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!root) throw SysError("unable to open the root");
        c.snapshot.writeDiff(root.get(), c.upperFd.get());
    } catch (std::exception& e) {
        childFail(c, e.what());
    }
}

// The init is a copy of grocker: its /proc/1/cmdline, comm and environ would show grocker's
// command line and environment (host paths, --env values, tokens) to the command. They are
// overwritten here, in the init's own copy of them, before anything runs in the namespace. Not
// a re-exec of a separate init: grocker is dynamically linked and, after pivot_root, would be
// loaded from the image's libraries; and in copy mode the init keeps the root's snapshot in
// memory. The rest of its memory is out of the command's reach (not dumpable, see prepareInit).
void hideHostCommandLine()
{
    static const char name[] = "grocker-init";
    if (::prctl(PR_SET_NAME, name, 0, 0, 0) < 0) throw SysError("unable to rename the init");
    // The bounds of the arguments and environment: fields 48-51 of /proc/self/stat, counted
    // after the command name, which may hold spaces and parentheses.
    auto stat = readFile("/proc/self/stat");
    auto nameEnd = stat.rfind(')');
    if (nameEnd == std::string::npos) throw Error("unable to read /proc/self/stat");
    std::istringstream fields(stat.substr(nameEnd + 1));
    std::vector<unsigned long> f;
    for (std::string x; fields >> x;)
        f.push_back(std::strtoul(x.c_str(), nullptr, 10));
    if (f.size() < 49)
        throw Error("/proc/self/stat has no argument bounds (Linux 3.5 or newer is needed)");
    auto argStart = reinterpret_cast<char*>(f[45]), argEnd = reinterpret_cast<char*>(f[46]);
    auto envStart = reinterpret_cast<char*>(f[47]), envEnd = reinterpret_cast<char*>(f[48]);
    if (argEnd <= argStart || envEnd < envStart)
        throw Error("/proc/self/stat has no argument bounds");
    std::memset(envStart, 0, size_t(envEnd - envStart));
    std::memset(argStart, 0, size_t(argEnd - argStart));
    size_t n = std::min(sizeof name - 1, size_t(argEnd - argStart) - 1);
    std::memcpy(argStart, name, n);
    // A last byte that is not NUL makes the kernel show the arguments up to their first NUL
    // (as after setproctitle), not the zeros after the name.
    if (n + 1 < size_t(argEnd - argStart)) argEnd[-1] = ' ';
    ::clearenv();
}

} // namespace

namespace {

// Before anything of the command's: the init's own view of the world, the ids the parent mapped,
// the root, and (copy mode) the root's state to diff against.
void prepareInit(Child& c)
{
    // The parent's list of sandboxes came with the copy of its memory: their pids mean
    // nothing (or another process) in this namespace, where the init passes signals on.
    forgetForwarding();
    c.step = "starting the sandbox";
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    hideHostCommandLine();
    char go;
    if (::read(c.goFd, &go, 1) != 1) ::_exit(127); // the parent failed to map ids
    ::close(c.goFd);
    if (::setresgid(0, 0, 0) < 0 || ::setresuid(0, 0, 0) < 0)
        throw SysError("unable to become root in the user namespace");
    keepDeathSignal(c.errFd);
    auto& emulator = c.spec->emulator;
    if (emulator && !emulator->hostRule) {
        c.step = "opening the emulator " + emulator->interpreter.string();
        c.emulatorFd.reset(::open(emulator->interpreter.c_str(), O_RDONLY | O_CLOEXEC));
        if (!c.emulatorFd) throw SysError("unable to open '", emulator->interpreter.string(), "'");
    }
    carryOut(c);
    if (emulator && !emulator->hostRule) {
        // Registered from inside the root, through the descriptor opened outside it: the kernel
        // opens the interpreter when the rule is written (flag F) and keeps it.
        c.step = "registering " + emulator->name + " for " + emulator->platform;
        registerEmulator(*emulator, "/proc/sys/fs/binfmt_misc",
                         concat("/proc/self/fd/", c.emulatorFd.get()));
        c.emulatorFd.reset();
    }
    if (!c.nested) setHostAndNetwork(c);
    // The init keeps descriptors of folders outside the root (the upper dir, in copy mode):
    // not dumpable, its /proc/1/fd and /proc/1/root are closed to the command, which has no
    // CAP_SYS_PTRACE where the init's memory belongs (the caller's namespace).
    c.step = "securing the sandbox's init";
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        throw SysError("unable to make the init not dumpable");
    if (c.copied) {
        c.step = "recording the root before the command (copy mode)";
        AutoCloseFD root(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!root) throw SysError("unable to open the root");
        c.snapshot = RootSnapshot::take(root.get(), c.mountedOn);
        c.snapshot.settle(c.upperFd.get());
    }
}

// Forks the command (into namespaces of its own when nested) and returns its pid.
pid_t startCommand(Child& c)
{
    // Nested: the command says its user namespace is made (ready), the init that it mapped it.
    AutoCloseFD readyRead, readyWrite, mappedRead, mappedWrite;
    if (c.nested) {
        int ready[2], mapped[2];
        if (::pipe2(ready, O_CLOEXEC) < 0 || ::pipe2(mapped, O_CLOEXEC) < 0)
            childFail(c, concat("unable to make a pipe: ", std::strerror(errno)));
        readyRead.reset(ready[0]);
        readyWrite.reset(ready[1]);
        mappedRead.reset(mapped[0]);
        mappedWrite.reset(mapped[1]);
    }
    pid_t cmd = ::fork();
    if (cmd < 0) childFail(c, concat("unable to start the command: ", std::strerror(errno)));
    if (cmd == 0) {
        if (c.nested) {
            try {
                readyRead.reset();
                mappedWrite.reset();
                enterCommandNamespaces(c, readyWrite.get(), mappedRead.get());
            } catch (std::exception& e) {
                childFail(c, e.what());
            }
        }
        execCommand(c);
    }
    if (c.nested) {
        readyWrite.reset();
        mappedRead.reset();
        try {
            mapCommand(cmd, readyRead.get(), mappedWrite.get());
        } catch (std::exception& e) {
            ::kill(cmd, SIGKILL);
            childFail(c, e.what());
        }
    }
    return cmd;
}

} // namespace

[[noreturn]] void childMain(Child& c)
{
    // What a step makes must not depend on who runs grocker: every step starts with Docker's and
    // BuildKit's umask, whatever the caller's (077 would change the modes in every layer, and in
    // the wheels built from sdists).
    ::umask(022);
    try {
        prepareInit(c);
    } catch (std::exception& e) {
        childFail(c, e.what());
    }
    // PID 1: start the command, pass signals on, reap every orphan, exit with the command's status.
    pid_t cmd = startCommand(c);
    // In copy mode the pipe stays open: writing the changes can still fail.
    if (!c.copied) ::close(c.errFd);
    forwardInitSignalsTo(cmd);
    for (;;) {
        int status;
        pid_t p = ::wait(&status);
        if (p < 0) {
            if (errno == EINTR) continue;
            ::_exit(127);
        }
        if (p == cmd) {
            if (c.copied) writeChanges(c);
            ::_exit(statusCode(status));
        }
    }
}

} // namespace grocker::sandbox
