#include "grocker/sandbox/sandbox.hh"

#include "child.hh"
#include "forward-signals.hh"
#include "grocker/error.hh"
#include "mounts.hh"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace grocker::sandbox {

namespace fs = std::filesystem;

Volume Volume::parse(const std::string& text)
{
    Volume v;
    std::string rest = text;
    if (rest.ends_with(":ro")) {
        v.readOnly = true;
        rest.resize(rest.size() - 3);
    } else if (rest.ends_with(":rw")) {
        rest.resize(rest.size() - 3);
    }
    auto colon = rest.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size())
        throw UsageError("--volume '", text, "' must be HOST:CONTAINER[:ro]");
    v.host = rest.substr(0, colon);
    v.container = rest.substr(colon + 1);
    if (v.container[0] != '/')
        throw UsageError("--volume '", text, "': the container path must be absolute");
    if (auto c = v.container.find(':'); c != std::string::npos)
        throw UsageError("--volume '", text, "': unknown mode '", v.container.substr(c + 1),
                         "': use ro or rw");
    std::error_code ec;
    bool exists = fs::exists(v.host, ec);
    if (ec)
        throw Error("--volume '", text, "': unable to read '", v.host.string(),
                    "': ", ec.message());
    if (!exists) throw UsageError("--volume '", text, "': '", v.host.string(), "' does not exist");
    v.host = fs::canonical(v.host);
    return v;
}

void checkUserNamespaces()
{
    std::ifstream max("/proc/sys/user/max_user_namespaces");
    long n = -1;
    if (max >> n && n == 0)
        throw Error("user namespaces are disabled: /proc/sys/user/max_user_namespaces is 0; "
                    "set it to 15000 or more (sysctl user.max_user_namespaces=15000)");
    std::ifstream clone("/proc/sys/kernel/unprivileged_userns_clone");
    if (::geteuid() != 0 && clone >> n && n == 0)
        throw Error(
            "unprivileged user namespaces are disabled: /proc/sys/kernel/unprivileged_userns_clone "
            "is 0; set it to 1 or run as root");
}

namespace {

RootfsMode rootfsModeFromEnv()
{
    const char* v = std::getenv("GROCKER_SANDBOX_ROOTFS");
    std::string_view s = v ? v : "";
    if (s.empty() || s == "auto") return RootfsMode::Auto;
    if (s == "overlay") return RootfsMode::Overlay;
    if (s == "copy") return RootfsMode::Copy;
    throw UsageError("GROCKER_SANDBOX_ROOTFS='", s,
                     "': use overlay, copy, or leave it unset to try overlay first");
}

// Set once a sandbox of this process found overlay refused: later ones copy at once, and the
// user is told only once.
bool overlayRefused = false;

// Reads the sandbox's messages until it ends: warnings are shown as they come, the error (if
// any) is returned.
std::string readMessages(int fd, const SandboxSpec& spec)
{
    std::string pending, error;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        pending.append(buf, size_t(n));
        for (size_t end; (end = pending.find('\0')) != std::string::npos;
             pending.erase(0, end + 1)) {
            auto kind = pending[0];
            auto text = pending.substr(1, end - 1);
            if (kind == 'R') {
                overlayRefused = true;
                if (spec.warn)
                    spec.warn(text);
                else
                    std::cerr << "grocker: warning: " << text << std::endl;
            } else {
                error += (error.empty() ? "" : "; ") + text;
            }
        }
    }
    return error + pending;
}

// runDir's upper, work and merged folders, owned by the sandbox's root.
void prepareRunDir(const SandboxSpec& spec, const IdMap& map)
{
    for (auto d : {"upper", "work", "merged"}) {
        std::error_code ec;
        fs::create_directories(spec.runDir / d, ec);
        if (ec) throw Error("unable to create '", (spec.runDir / d).string(), "': ", ec.message());
    }
    if (map.privileged && !map.isIdentity()) {
        // As root the container's root is not the host's: the run folder (where it lists its
        // mount points), overlay's upper and work dirs and the root they show must be its own,
        // as a rootless caller's are.
        auto [uid, gid] = map.rootOutside();
        for (auto& d :
             {spec.runDir, spec.runDir / "upper", spec.runDir / "work", spec.runDir / "merged"})
            if (::chown(d.c_str(), uid, gid) < 0)
                throw SysError("unable to give '", d.string(), "' to the sandbox's root");
    }
}

} // namespace

Sandbox::Sandbox(const SandboxSpec& spec, const IdMap& map) : spec_(spec)
{
    if (spec_.argv.empty()) throw UsageError("no command to run");
    if (runningSandboxes() >= maxRunning) throw Error("over ", maxRunning, " sandboxes at once");
    checkUserNamespaces();
    prepareRunDir(spec_, map);
    int go[2], err[2];
    if (::pipe2(go, O_CLOEXEC) < 0 || ::pipe2(err, O_CLOEXEC) < 0)
        throw SysError("unable to make a pipe");
    AutoCloseFD goRead(go[0]), goWrite(go[1]), errWrite(err[1]);
    errRead_ = AutoCloseFD(err[0]);

    auto mode = rootfsModeFromEnv();
    if (mode == RootfsMode::Auto && overlayRefused) mode = RootfsMode::Copy;
    Child c{.spec = &spec_,
            .goFd = goRead.get(),
            .errFd = errWrite.get(),
            .mode = mode,
            .plan = planMounts(spec_),
            .nested = map.privileged && !map.isIdentity()};
    int flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | SIGCHLD;
    if (!c.nested) flags |= CLONE_NEWUTS | CLONE_NEWIPC | (spec_.hostNetwork ? 0 : CLONE_NEWNET);
    // As fork does, with no stack of its own: without CLONE_VM the child has a copy of this
    // one. The init (which copies and diffs trees in copy mode) then has a normal stack, with
    // no size limit, that sanitizers know (on a heap stack ASan misreads every throw). Only
    // from the thread that runs grocker's work: the child has no other thread, and must find
    // no lock (malloc's, a stream's) held by one.
    pid_t pid = pid_t(::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, 0L));
    if (pid == 0) childMain(c);
    if (pid < 0) {
        int e = errno;
        throw SysError(
            e,
            concat(
                "unable to start the sandbox (clone)",
                e == ENOSPC
                    ? ": the user namespace limit is reached (/proc/sys/user/max_user_namespaces)"
                : e == EPERM ? ": user namespaces are not allowed for this user"
                             : ""));
    }
    pid_ = pid;
    goRead.reset();
    errWrite.reset();
    try {
        map.withHostIds().apply(pid);
    } catch (Error& e) {
        kill();
        e.addContext("while mapping user ids of the sandbox");
        throw;
    }
    forwardSignalsTo(pid);
    (void)!::write(goWrite.get(), "g", 1);
}

int Sandbox::reap()
{
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = 0;
    return status;
}

void Sandbox::kill()
{
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    reap();
}

int Sandbox::wait()
{
    if (pid_ <= 0) throw Error("the sandbox was already waited for");
    std::string message = readMessages(errRead_.get(), spec_);
    errRead_.reset();
    pid_t pid = pid_;
    int status = reap();
    stopForwarding(pid);
    removeCreatedMountPoints(spec_.runDir);
    if (!message.empty()) throw Error("sandbox: ", message);
    return statusCode(status);
}

Sandbox::~Sandbox()
{
    if (pid_ <= 0) return;
    pid_t pid = pid_;
    kill();
    stopForwarding(pid);
}

int runSandbox(const SandboxSpec& spec, const IdMap& map)
{
    Sandbox box(spec, map);
    return box.wait();
}

} // namespace grocker::sandbox
