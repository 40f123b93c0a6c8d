#include "grocker/sandbox/sandbox.hh"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <sched.h>
#include <set>
#include <sstream>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "copy-root.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"

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
    if (v.container[0] != '/') throw UsageError("--volume '", text, "': the container path must be absolute");
    if (auto c = v.container.find(':'); c != std::string::npos)
        throw UsageError("--volume '", text, "': unknown mode '", v.container.substr(c + 1), "': use ro or rw");
    std::error_code ec;
    bool exists = fs::exists(v.host, ec);
    if (ec) throw Error("--volume '", text, "': unable to read '", v.host.string(), "': ", ec.message());
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
        throw Error("unprivileged user namespaces are disabled: /proc/sys/kernel/unprivileged_userns_clone "
                    "is 0; set it to 1 or run as root");
}

namespace {

// How the root filesystem is made: GROCKER_SANDBOX_ROOTFS=overlay or copy forces one; unset,
// overlay is tried first and copying is the fallback.
enum class RootfsMode { Auto, Overlay, Copy };

RootfsMode rootfsModeFromEnv()
{
    const char* v = std::getenv("GROCKER_SANDBOX_ROOTFS");
    std::string_view s = v ? v : "";
    if (s.empty() || s == "auto") return RootfsMode::Auto;
    if (s == "overlay") return RootfsMode::Overlay;
    if (s == "copy") return RootfsMode::Copy;
    throw UsageError("GROCKER_SANDBOX_ROOTFS='", s, "': use overlay, copy, or leave it unset to try overlay first");
}

// Set once a sandbox of this process found overlay refused: later ones copy at once, and the
// user is told only once.
bool overlayRefused = false;

// What the child needs, in the parent's memory, which the child has a copy of.
struct Child {
    const SandboxSpec* spec;
    int goFd;  // read: the parent wrote the id maps
    int errFd; // write: messages for the parent (see sendMessage)
    RootfsMode mode;
    std::string step;
    // Copy mode: the root is a copy, whose changes the init writes into the upper dir once the
    // command is done.
    bool copied = false;
    AutoCloseFD upperFd;              // opened before pivot_root, after which it is out of reach
    std::set<std::string> mountedOn; // paths relative to the root
    RootSnapshot snapshot;
    // As root with a range of its own: the init's namespace also maps the host's low ids (for
    // the store's folders, see IdMap::withHostIds), so the command gets a user namespace of its
    // own, with the range only, and its uts, ipc and network namespaces (see enterCommandNamespaces).
    bool nested = false;
};

// Messages from the sandbox to the parent, on one pipe: a kind ('E' an error, after which the
// sandbox ends; 'R' overlay was refused, a warning shown at once), the text, a NUL.
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

// Hints for what the kernel says, as bubblewrap gives.
std::string mountHint(int err, const std::string& what)
{
    if (err == EPERM && what == "overlay")
        return " (this kernel does not allow overlay mounts in a user namespace: Linux 5.11 or newer is needed)";
    if (err == ENOSPC) return " (too many mounts: check /proc/sys/fs/mount-max)";
    return "";
}

// Why the kernel may refuse overlay in a user namespace, as far as errno tells.
std::string overlayRefusal(int err)
{
    switch (err) {
    case EPERM: return ": this kernel or a security module forbids it; Linux 5.11 or newer allows it";
    case EINVAL: return ": overlay cannot use the store's filesystem, as with an overlay or NFS";
    case ENODEV: return ": this kernel has no overlay filesystem";
    default: return "";
    }
}

void doMount(const std::string& source, const std::string& target, const char* type, unsigned long flags,
    const std::string& data = {})
{
    if (::mount(source.c_str(), target.c_str(), type, flags, data.empty() ? nullptr : data.c_str()) < 0) {
        int err = errno;
        throw SysError(err, concat("unable to mount ", type ? type : source.c_str(), " on '", target, "'",
                                mountHint(err, type ? type : "")));
    }
}

long openat2(int dirfd, const char* path, struct open_how* how)
{
    return ::syscall(SYS_openat2, dirfd, path, how, sizeof *how);
}

// Makes sure `path` exists in the root (as a folder or an empty file), without ever leaving
// it, and returns what it had to make, parents first: none of it is the step's change.
std::vector<std::string> ensureMountPoint(int rootFd, const std::string& path, bool dir)
{
    std::vector<std::string> made;
    std::string rel = path.substr(path.find_first_not_of('/'));
    struct open_how how = {};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    long fd = openat2(rootFd, rel.c_str(), &how);
    if (fd >= 0) {
        ::close(int(fd));
        return made;
    }
    // Make the parents, one at a time, each resolved in the root.
    std::string prefix;
    std::istringstream parts(rel);
    std::string part;
    std::vector<std::string> comps;
    while (std::getline(parts, part, '/'))
        if (!part.empty()) comps.push_back(part);
    for (size_t i = 0; i < comps.size(); i++) {
        struct open_how h = {};
        h.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
        h.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        long parent = prefix.empty() ? ::fcntl(rootFd, F_DUPFD_CLOEXEC, 0) : openat2(rootFd, prefix.c_str(), &h);
        if (parent < 0) throw SysError("unable to open '/", prefix, "' in the sandbox root");
        AutoCloseFD p{static_cast<int>(parent)};
        bool last = i + 1 == comps.size();
        bool fresh = false;
        if (last && !dir) {
            int f = ::openat(p.get(), comps[i].c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
            if (f < 0 && errno != EEXIST) throw SysError("unable to create mount point '", path, "'");
            if (f >= 0) ::close(f);
            fresh = f >= 0;
        } else if (::mkdirat(p.get(), comps[i].c_str(), 0755) < 0) {
            if (errno != EEXIST) throw SysError("unable to create mount point '", path, "'");
        } else {
            fresh = true;
        }
        prefix += (prefix.empty() ? "" : "/") + comps[i];
        if (fresh) made.push_back("/" + prefix);
    }
    return made;
}

void bringUpLoopback()
{
    AutoCloseFD s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s) throw SysError("unable to make a socket to set up the loopback interface");
    struct ifreq ifr = {};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) < 0) throw SysError("unable to read the flags of 'lo'");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) < 0) throw SysError("unable to bring up 'lo'");
}

// Remount read-only keeping the flags the kernel locked (nosuid, nodev, ...) in a user namespace.
void remountReadOnly(const std::string& target)
{
    struct statvfs st;
    if (::statvfs(target.c_str(), &st) < 0) throw SysError("unable to stat '", target, "'");
    unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
    if (st.f_flag & ST_NOSUID) flags |= MS_NOSUID;
    if (st.f_flag & ST_NODEV) flags |= MS_NODEV;
    if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
    if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
    if (::mount("none", target.c_str(), nullptr, flags, nullptr) < 0) throw SysError("unable to make '", target, "' read-only");
}

struct UserIds {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
};

// Looks NAME or UID[:GID] up in the sandbox's /etc/passwd and /etc/group.
UserIds resolveUser(const std::string& user)
{
    UserIds ids;
    if (user.empty()) return ids;
    std::string name = user, group;
    if (auto c = user.find(':'); c != std::string::npos) {
        name = user.substr(0, c);
        group = user.substr(c + 1);
    }
    auto numeric = [](const std::string& s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos; };
    bool found = false;
    std::ifstream passwd("/etc/passwd");
    std::string line;
    while (std::getline(passwd, line)) {
        std::vector<std::string> f;
        std::istringstream s(line);
        std::string x;
        while (std::getline(s, x, ':')) f.push_back(x);
        if (f.size() < 4) continue;
        if (f[0] == name || (numeric(name) && f[2] == name)) {
            ids.uid = uid_t(std::stoul(f[2]));
            ids.gid = gid_t(std::stoul(f[3]));
            found = true;
            break;
        }
    }
    if (!found) {
        if (!numeric(name)) throw Error("user '", name, "' is not in the image's /etc/passwd");
        ids.uid = uid_t(std::stoul(name));
        ids.gid = ids.uid;
    }
    if (!group.empty()) {
        if (numeric(group))
            ids.gid = gid_t(std::stoul(group));
        else {
            std::ifstream groups("/etc/group");
            bool g = false;
            while (std::getline(groups, line)) {
                auto c1 = line.find(':');
                if (line.substr(0, c1) != group) continue;
                auto c2 = line.find(':', c1 + 1), c3 = line.find(':', c2 + 1);
                ids.gid = gid_t(std::stoul(line.substr(c2 + 1, c3 - c2 - 1)));
                g = true;
            }
            if (!g) throw Error("group '", group, "' is not in the image's /etc/group");
        }
    }
    ids.groups = {ids.gid};
    return ids;
}

// The capabilities a package install needs inside its own namespace: Docker's default set.
void limitCapabilities()
{
    static const int keep[] = {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID,
        CAP_SETUID, CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_AUDIT_WRITE, CAP_SETFCAP, CAP_MKNOD};
    for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
        bool kept = false;
        for (int k : keep) kept |= k == cap;
        if (!kept && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            throw SysError("unable to drop capability ", cap);
    }
}

// The PID 1 of each running sandbox, to which the caller's SIGINT and SIGTERM are passed on
// (several run at once: the compile pass builds packages side by side).
constexpr size_t maxRunning = 64;
volatile pid_t forwardTo[maxRunning] = {};
size_t running = 0;
struct sigaction oldInt, oldTerm;

void forwardSignal(int sig)
{
    for (auto& p : forwardTo)
        if (p > 0) ::kill(p, sig);
}

int statusCode(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

[[noreturn]] void execCommand(Child& c)
{
    auto& s = *c.spec;
    try {
        c.step = "switching to user '" + (s.user.empty() ? std::string("root") : s.user) + "'";
        auto ids = resolveUser(s.user);
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
        if (::setresgid(ids.gid, ids.gid, ids.gid) < 0) throw SysError("unable to switch to gid ", ids.gid);
        if (::setresuid(ids.uid, ids.uid, ids.uid) < 0) throw SysError("unable to switch to uid ", ids.uid);
        // Nothing run from here can gain privileges: setuid binaries and file capabilities are inert.
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) throw SysError("unable to set no_new_privs");
        if (s.stdoutToStderr && ::dup2(2, 1) < 0) throw SysError("unable to send standard output to standard error");
        c.step = "starting '" + s.argv[0] + "'";
        std::vector<char*> argv, envp;
        for (auto& a : s.argv) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        for (auto& e : s.env) envp.push_back(const_cast<char*>(e.c_str()));
        envp.push_back(nullptr);
        // execvpe looks in the PATH of this process: make it the command's.
        std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        for (auto& e : s.env)
            if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
        ::setenv("PATH", path.c_str(), 1);
        ::execvpe(argv[0], argv.data(), envp.data());
        int err = errno;
        throw SysError(err, concat("unable to run '", s.argv[0], "'", err == ENOENT ? " (not found in the image)" : ""));
    } catch (std::exception& e) {
        childFail(c, e.what());
    }
}

void setHostAndNetwork(Child& c);

void setupRoot(Child& c)
{
    auto& s = *c.spec;
    auto merged = (s.runDir / "merged").string();
    c.step = "making the mounts private";
    doMount("none", "/", nullptr, MS_REC | MS_PRIVATE);

    if (s.lowerDirs.empty()) throw Error("no lower dir");
    if (c.mode != RootfsMode::Copy) {
        c.step = "mounting the root filesystem (overlay)";
        std::string lowers;
        for (auto& l : s.lowerDirs) lowers += (lowers.empty() ? "" : ":") + l.string();
        // userxattr: in a user namespace overlay keeps its whiteout and opaque marks in user.*.
        auto options = "lowerdir=" + lowers + ",upperdir=" + (s.runDir / "upper").string() +
                       ",workdir=" + (s.runDir / "work").string() + ",userxattr";
        if (::mount("overlay", merged.c_str(), "overlay", 0, options.c_str()) < 0) {
            int err = errno;
            // What kernels and security modules say when overlay is not for user namespaces (or
            // not there at all, or not over this filesystem).
            bool refused = err == EPERM || err == EINVAL || err == ENODEV || err == ENOTSUP;
            if (c.mode == RootfsMode::Overlay || !refused)
                throw SysError(err, concat("unable to mount overlay on '", merged, "'", mountHint(err, "overlay"),
                                        c.mode == RootfsMode::Overlay ? " (GROCKER_SANDBOX_ROOTFS=overlay: no copy fallback)" : ""));
            sendMessage(c.errFd, 'R',
                concat("overlay mounts are not allowed in this user namespace (", std::strerror(err), overlayRefusal(err),
                    "): copying the image's layers instead, which is slower"));
            c.mode = RootfsMode::Copy;
        }
    }
    if (c.mode == RootfsMode::Copy) {
        c.step = "copying the image's layers into the root (copy mode)";
        {
            AutoCloseFD m(::open(merged.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!m) throw SysError("unable to open '", merged, "'");
            copyLowerDirs(s.lowerDirs, m.get());
        }
        // pivot_root needs a mount point.
        doMount(merged, merged, nullptr, MS_BIND);
        auto upper = s.runDir / "upper";
        c.upperFd.reset(::open(upper.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!c.upperFd) throw SysError("unable to open '", upper.string(), "'");
        c.copied = true;
    }

    AutoCloseFD root(::open(merged.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) throw SysError("unable to open '", merged, "'");
    std::ofstream created(s.runDir / "mount-points");
    auto point = [&](const std::string& path, bool dir) {
        for (auto& m : ensureMountPoint(root.get(), path, dir)) created << m << "\n";
        auto inRoot = fs::path(path).lexically_normal().relative_path().string();
        while (inRoot.ends_with('/')) inRoot.pop_back();
        c.mountedOn.insert(inRoot);
        // Resolved in the root: a symlink in the image cannot send a mount outside it.
        struct open_how how = {};
        how.flags = O_PATH | O_CLOEXEC;
        how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        std::string rel = path.substr(1);
        long fd = openat2(root.get(), rel.c_str(), &how);
        if (fd < 0) throw SysError("unable to open mount point '", path, "'");
        return AutoCloseFD(int(fd));
    };
    auto viaFd = [](const AutoCloseFD& fd) { return concat("/proc/self/fd/", fd.get()); };

    c.step = "mounting /proc";
    auto proc = point("/proc", true);
    doMount("proc", viaFd(proc), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC);

    c.step = "making /dev";
    auto dev = point("/dev", true);
    doMount("tmpfs", viaFd(dev), "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536k");
    auto devPath = merged + "/dev";
    for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"}) {
        auto target = devPath + "/" + node;
        AutoCloseFD f(::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666));
        if (!f) throw SysError("unable to create '", target, "'");
        doMount(std::string("/dev/") + node, target, nullptr, MS_BIND);
    }
    ::mkdir((devPath + "/pts").c_str(), 0755);
    ::mkdir((devPath + "/shm").c_str(), 01777);
    doMount("devpts", devPath + "/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
    doMount("tmpfs", devPath + "/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k");
    ::symlink("pts/ptmx", (devPath + "/ptmx").c_str());
    ::symlink("/proc/self/fd", (devPath + "/fd").c_str());
    ::symlink("/proc/self/fd/0", (devPath + "/stdin").c_str());
    ::symlink("/proc/self/fd/1", (devPath + "/stdout").c_str());
    ::symlink("/proc/self/fd/2", (devPath + "/stderr").c_str());

    c.step = "mounting /tmp";
    auto tmp = point("/tmp", true);
    doMount("tmpfs", viaFd(tmp), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");

    if (s.hostNetwork) {
        for (const char* f : {"/etc/resolv.conf", "/etc/hosts"}) {
            c.step = concat("mounting ", f);
            if (!fs::exists(f)) continue;
            auto target = point(f, false);
            doMount(f, viaFd(target), nullptr, MS_BIND);
            // Opened again: the first fd still names what is under the new mount.
            remountReadOnly(viaFd(point(f, false)));
        }
    }
    for (auto& v : s.volumes) {
        c.step = concat("mounting volume '", v.host.string(), "' on '", v.container, "'");
        bool dir = fs::is_directory(v.host);
        auto target = point(v.container, dir);
        doMount(v.host.string(), viaFd(target), nullptr, MS_BIND | MS_REC);
        if (v.readOnly) remountReadOnly(viaFd(point(v.container, dir)));
    }
    created.close();

    c.step = "entering the root (pivot_root)";
    if (::chdir(merged.c_str()) < 0) throw SysError("unable to enter '", merged, "'");
    // pivot_root(".", "."): the old root ends up on top and is detached, with no folder to make.
    if (::syscall(SYS_pivot_root, ".", ".") < 0) throw SysError("unable to pivot_root to '", merged, "'");
    if (::umount2(".", MNT_DETACH) < 0) throw SysError("unable to detach the old root");
    if (::chdir("/") < 0) throw SysError("unable to enter /");

    if (!c.nested) setHostAndNetwork(c);
}

void setHostAndNetwork(Child& c)
{
    auto& s = *c.spec;
    c.step = "setting the hostname";
    if (::sethostname(s.hostname.data(), s.hostname.size()) < 0) throw SysError("unable to set the hostname");
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
    int flags = CLONE_NEWUSER | CLONE_NEWUTS | CLONE_NEWIPC | (c.spec->hostNetwork ? 0 : CLONE_NEWNET);
    if (::unshare(flags) < 0) throw SysError("unable to make the command's namespaces");
    if (::write(ready, "r", 1) != 1) throw SysError("unable to tell the init");
    char go;
    if (::read(mapped, &go, 1) != 1) throw Error("the init did not map the command's ids");
    if (::setresgid(0, 0, 0) < 0 || ::setresuid(0, 0, 0) < 0) throw SysError("unable to become root in the command's namespace");
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
    while (::wait(nullptr) > 0 || errno == EINTR) {}
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
// memory. The rest of its memory is out of the command's reach (not dumpable, see childMain).
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
    for (std::string x; fields >> x;) f.push_back(std::strtoul(x.c_str(), nullptr, 10));
    if (f.size() < 49) throw Error("/proc/self/stat has no argument bounds (Linux 3.5 or newer is needed)");
    auto argStart = reinterpret_cast<char*>(f[45]), argEnd = reinterpret_cast<char*>(f[46]);
    auto envStart = reinterpret_cast<char*>(f[47]), envEnd = reinterpret_cast<char*>(f[48]);
    if (argEnd <= argStart || envEnd < envStart) throw Error("/proc/self/stat has no argument bounds");
    std::memset(envStart, 0, size_t(envEnd - envStart));
    std::memset(argStart, 0, size_t(argEnd - argStart));
    size_t n = std::min(sizeof name - 1, size_t(argEnd - argStart) - 1);
    std::memcpy(argStart, name, n);
    // A last byte that is not NUL makes the kernel show the arguments up to their first NUL
    // (as after setproctitle), not the zeros after the name.
    if (n + 1 < size_t(argEnd - argStart)) argEnd[-1] = ' ';
    ::clearenv();
}

[[noreturn]] void childMain(Child& c)
{
    try {
        // The parent's list of sandboxes came with the copy of its memory: their pids mean
        // nothing (or another process) in this namespace, where the init passes signals on.
        for (auto& p : forwardTo) p = 0;
        c.step = "starting the sandbox";
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        hideHostCommandLine();
        char go;
        if (::read(c.goFd, &go, 1) != 1) ::_exit(127); // the parent failed to map ids
        ::close(c.goFd);
        if (::setresgid(0, 0, 0) < 0 || ::setresuid(0, 0, 0) < 0) throw SysError("unable to become root in the user namespace");
        keepDeathSignal(c.errFd);
        setupRoot(c);
        // The init keeps descriptors of folders outside the root (the upper dir, in copy mode):
        // not dumpable, its /proc/1/fd and /proc/1/root are closed to the command, which has no
        // CAP_SYS_PTRACE where the init's memory belongs (the caller's namespace).
        c.step = "securing the sandbox's init";
        if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) throw SysError("unable to make the init not dumpable");
        if (c.copied) {
            c.step = "recording the root before the command (copy mode)";
            AutoCloseFD root(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!root) throw SysError("unable to open the root");
            c.snapshot = RootSnapshot::take(root.get(), c.mountedOn);
            c.snapshot.settle(c.upperFd.get());
        }
    } catch (std::exception& e) {
        childFail(c, e.what());
    }
    // PID 1: start the command, pass signals on, reap every orphan, exit with the command's status.
    int ready[2] = {-1, -1}, mapped[2] = {-1, -1};
    if (c.nested && (::pipe2(ready, O_CLOEXEC) < 0 || ::pipe2(mapped, O_CLOEXEC) < 0))
        childFail(c, concat("unable to make a pipe: ", std::strerror(errno)));
    pid_t cmd = ::fork();
    if (cmd < 0) childFail(c, concat("unable to start the command: ", std::strerror(errno)));
    if (cmd == 0) {
        if (c.nested) {
            try {
                ::close(ready[0]);
                ::close(mapped[1]);
                enterCommandNamespaces(c, ready[1], mapped[0]);
            } catch (std::exception& e) {
                childFail(c, e.what());
            }
        }
        execCommand(c);
    }
    if (c.nested) {
        ::close(ready[1]);
        ::close(mapped[0]);
        try {
            mapCommand(cmd, ready[0], mapped[1]);
        } catch (std::exception& e) {
            ::kill(cmd, SIGKILL);
            childFail(c, e.what());
        }
        ::close(ready[0]);
        ::close(mapped[1]);
    }
    // In copy mode the pipe stays open: writing the changes can still fail.
    if (!c.copied) ::close(c.errFd);
    forwardTo[0] = cmd; // the parent's other sandboxes were cleared at the start
    struct sigaction sa = {};
    sa.sa_handler = forwardSignal;
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) ::sigaction(sig, &sa, nullptr);
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

// Mount points made for the sandbox are not the step's changes.
void removeCreatedMountPoints(const SandboxSpec& spec)
{
    std::ifstream in(spec.runDir / "mount-points");
    std::vector<std::string> paths;
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) paths.push_back(line);
    // The upper dir is the command's: a folder it turned into a symlink is never followed.
    AutoCloseFD upper(::open((spec.runDir / "upper").c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    for (auto it = paths.rbegin(); upper && it != paths.rend(); ++it) {
        fs::path rel = fs::path(it->substr(1)).lexically_normal();
        if (rel.empty() || !rel.has_filename()) continue;
        struct open_how how = {};
        how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
        auto parentRel = rel.parent_path().empty() ? std::string(".") : rel.parent_path().string();
        long parent = openat2(upper.get(), parentRel.c_str(), &how);
        if (parent < 0) continue;
        AutoCloseFD parentFd{int(parent)};
        auto name = rel.filename().string();
        struct stat st;
        if (::fstatat(parentFd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        if (S_ISDIR(st.st_mode))
            ::unlinkat(parentFd.get(), name.c_str(), AT_REMOVEDIR); // only if the command left it empty
        else if (S_ISREG(st.st_mode) && st.st_size == 0)
            ::unlinkat(parentFd.get(), name.c_str(), 0);
    }
    ::unlink((spec.runDir / "mount-points").c_str());
}

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
        for (size_t end; (end = pending.find('\0')) != std::string::npos; pending.erase(0, end + 1)) {
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

// Signals to grocker go to each sandbox's PID 1, which passes them on.
void forwardSignalsTo(pid_t pid)
{
    for (auto& p : forwardTo)
        if (p == 0) {
            p = pid;
            break;
        }
    if (running++ > 0) return;
    struct sigaction sa = {};
    sa.sa_handler = forwardSignal;
    ::sigaction(SIGINT, &sa, &oldInt);
    ::sigaction(SIGTERM, &sa, &oldTerm);
}

void stopForwarding(pid_t pid)
{
    for (auto& p : forwardTo)
        if (p == pid) p = 0;
    if (--running > 0) return;
    ::sigaction(SIGINT, &oldInt, nullptr);
    ::sigaction(SIGTERM, &oldTerm, nullptr);
}

} // namespace

Sandbox::Sandbox(const SandboxSpec& spec, const IdMap& map) : spec_(spec)
{
    if (spec_.argv.empty()) throw UsageError("no command to run");
    if (running >= maxRunning) throw Error("over ", maxRunning, " sandboxes at once");
    checkUserNamespaces();
    for (auto d : {"upper", "work", "merged"}) {
        std::error_code ec;
        fs::create_directories(spec_.runDir / d, ec);
        if (ec) throw Error("unable to create '", (spec_.runDir / d).string(), "': ", ec.message());
    }
    if (map.privileged && !map.isIdentity()) {
        // As root the container's root is not the host's: the run folder (where it lists its
        // mount points), overlay's upper and work dirs and the root they show must be its own,
        // as a rootless caller's are.
        auto [uid, gid] = map.rootOutside();
        for (auto& d : {spec_.runDir, spec_.runDir / "upper", spec_.runDir / "work", spec_.runDir / "merged"})
            if (::chown(d.c_str(), uid, gid) < 0) throw SysError("unable to give '", d.string(), "' to the sandbox's root");
    }
    int go[2], err[2];
    if (::pipe2(go, O_CLOEXEC) < 0 || ::pipe2(err, O_CLOEXEC) < 0) throw SysError("unable to make a pipe");
    AutoCloseFD goRead(go[0]), goWrite(go[1]), errWrite(err[1]);
    errRead_ = AutoCloseFD(err[0]);

    auto mode = rootfsModeFromEnv();
    if (mode == RootfsMode::Auto && overlayRefused) mode = RootfsMode::Copy;
    Child c{&spec_, goRead.get(), errWrite.get(), mode, {}, false, {}, {}, {}, map.privileged && !map.isIdentity()};
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
        throw SysError(e, concat("unable to start the sandbox (clone)",
                              e == ENOSPC ? ": the user namespace limit is reached (/proc/sys/user/max_user_namespaces)"
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
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {}
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
    removeCreatedMountPoints(spec_);
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
