#include "mounts.hh"

#include "child.hh"
#include "grocker/error.hh"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <linux/openat2.h>
#include <sstream>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace grocker::sandbox {

namespace fs = std::filesystem;

namespace {

// glibc 2.36 has no wrapper for it.
long openat2(int dirfd, const char* path, struct open_how* how)
{
    return ::syscall(SYS_openat2, dirfd, path, how, sizeof *how);
}

using Kind = MountOp::Kind;
using Point = MountOp::Point;

// Hints for what the kernel says, as bubblewrap gives.
std::string mountHint(int err, const std::string& what)
{
    if (err == EPERM && what == "overlay")
        return " (this kernel does not allow overlay mounts in a user namespace: Linux 5.11 or "
               "newer is needed)";
    if (err == ENOSPC) return " (too many mounts: check /proc/sys/fs/mount-max)";
    return "";
}

// Why the kernel may refuse overlay in a user namespace, as far as errno tells.
std::string overlayRefusal(int err)
{
    switch (err) {
    case EPERM:
        return ": this kernel or a security module forbids it; Linux 5.11 or newer allows it";
    case EINVAL:
        return ": overlay cannot use the store's filesystem, as with an overlay or NFS";
    case ENODEV:
        return ": this kernel has no overlay filesystem";
    default:
        return "";
    }
}

void doMount(const std::string& source, const std::string& target, const char* type,
             unsigned long flags, const std::string& data = {})
{
    if (::mount(source.c_str(), target.c_str(), type, flags,
                data.empty() ? nullptr : data.c_str()) < 0) {
        int err = errno;
        throw SysError(err, concat("unable to mount ", type ? type : source.c_str(), " on '",
                                   target, "'", mountHint(err, type ? type : "")));
    }
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
    if (AutoCloseFD fd{int(openat2(rootFd, rel.c_str(), &how))}) return made;
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
        long parent = prefix.empty() ? ::fcntl(rootFd, F_DUPFD_CLOEXEC, 0)
                                     : openat2(rootFd, prefix.c_str(), &h);
        if (parent < 0) throw SysError("unable to open '/", prefix, "' in the sandbox root");
        AutoCloseFD p{static_cast<int>(parent)};
        bool last = i + 1 == comps.size();
        bool fresh = false;
        if (last && !dir) {
            AutoCloseFD f(::openat(p.get(), comps[i].c_str(),
                                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
            if (!f && errno != EEXIST) throw SysError("unable to create mount point '", path, "'");
            fresh = bool(f);
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
    if (::mount("none", target.c_str(), nullptr, flags, nullptr) < 0)
        throw SysError("unable to make '", target, "' read-only");
}

std::string viaFd(const AutoCloseFD& fd)
{
    return concat("/proc/self/fd/", fd.get());
}

// What the loop keeps between operations: the root being built, and the list of the mount
// points it had to make there.
struct MountState {
    Child& c;
    std::string merged;
    AutoCloseFD root;
    std::ofstream created;

    // The mount point `path` (made if missing, listed in runDir/mount-points), opened through the
    // root: a symlink in the image cannot send a mount outside it.
    AutoCloseFD point(const std::string& path, bool dir)
    {
        for (auto& m : ensureMountPoint(root.get(), path, dir))
            created << m << "\n";
        auto inRoot = fs::path(path).lexically_normal().relative_path().string();
        while (inRoot.ends_with('/'))
            inRoot.pop_back();
        c.mountedOn.insert(inRoot);
        struct open_how how = {};
        how.flags = O_PATH | O_CLOEXEC;
        how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        std::string rel = path.substr(1);
        long fd = openat2(root.get(), rel.c_str(), &how);
        if (fd < 0) throw SysError("unable to open mount point '", path, "'");
        return AutoCloseFD(int(fd));
    }

    // The operation's target as the mount call names it; `held` keeps the mount point open.
    std::string at(const MountOp& op, AutoCloseFD& held)
    {
        if (op.point == Point::InNewTmpfs) return merged + op.target;
        held = point(op.target, op.point != Point::File);
        return viaFd(held);
    }
};

void mountOverlay(Child& c, MountState& m, const std::string& options)
{
    c.step = "mounting the root filesystem (overlay)";
    if (::mount("overlay", m.merged.c_str(), "overlay", 0, options.c_str()) == 0) return;
    int err = errno;
    // What kernels and security modules say when overlay is not for user namespaces (or not
    // there at all, or not over this filesystem).
    bool refused = err == EPERM || err == EINVAL || err == ENODEV || err == ENOTSUP;
    if (c.mode == RootfsMode::Overlay || !refused)
        throw SysError(err, concat("unable to mount overlay on '", m.merged, "'",
                                   mountHint(err, "overlay"),
                                   c.mode == RootfsMode::Overlay
                                       ? " (GROCKER_SANDBOX_ROOTFS=overlay: no copy fallback)"
                                       : ""));
    sendMessage(c.errFd, 'R',
                concat("overlay mounts are not allowed in this user namespace (",
                       std::strerror(err), overlayRefusal(err),
                       "): copying the image's layers instead, which is slower"));
    c.mode = RootfsMode::Copy;
}

void copyRoot(Child& c, MountState& m)
{
    auto& s = *c.spec;
    c.step = "copying the image's layers into the root (copy mode)";
    {
        AutoCloseFD merged(::open(m.merged.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!merged) throw SysError("unable to open '", m.merged, "'");
        copyLowerDirs(s.lowerDirs, merged.get());
    }
    // pivot_root needs a mount point.
    doMount(m.merged, m.merged, nullptr, MS_BIND);
    auto upper = s.runDir / "upper";
    c.upperFd.reset(::open(upper.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!c.upperFd) throw SysError("unable to open '", upper.string(), "'");
    c.copied = true;
}

// Overlay, or where it is refused (or GROCKER_SANDBOX_ROOTFS=copy) a copy of the lower dirs.
void makeRoot(Child& c, MountState& m, const std::string& overlayOptions)
{
    if (c.spec->lowerDirs.empty()) throw Error("no lower dir");
    if (c.mode != RootfsMode::Copy) mountOverlay(c, m, overlayOptions);
    if (c.mode == RootfsMode::Copy) copyRoot(c, m);
    m.root.reset(::open(m.merged.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!m.root) throw SysError("unable to open '", m.merged, "'");
    m.created.open(c.spec->runDir / "mount-points");
}

void bindDevNode(const std::string& device, const std::string& target)
{
    AutoCloseFD f(::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666));
    if (!f) throw SysError("unable to create '", target, "'");
    doMount(device, target, nullptr, MS_BIND);
}

void bind(const MountOp& op, MountState& m)
{
    if (op.ifSourceExists && !fs::exists(op.source)) return;
    bool dir =
        op.point == Point::LikeSource ? fs::is_directory(op.source) : op.point != Point::File;
    auto target = m.point(op.target, dir);
    doMount(op.source, viaFd(target), nullptr, MS_BIND | (op.recursive ? MS_REC : 0));
    // Opened again: the first fd still names what is under the new mount.
    if (op.readOnly) remountReadOnly(viaFd(m.point(op.target, dir)));
}

void pivotRoot(const std::string& merged)
{
    if (::chdir(merged.c_str()) < 0) throw SysError("unable to enter '", merged, "'");
    // pivot_root(".", "."): the old root ends up on top and is detached, with no folder to make.
    if (::syscall(SYS_pivot_root, ".", ".") < 0)
        throw SysError("unable to pivot_root to '", merged, "'");
    if (::umount2(".", MNT_DETACH) < 0) throw SysError("unable to detach the old root");
    if (::chdir("/") < 0) throw SysError("unable to enter /");
}

} // namespace

void carryOut(Child& c)
{
    MountState m{c, (c.spec->runDir / "merged").string(), {}, {}};
    for (auto& op : c.plan) {
        if (!op.step.empty()) c.step = op.step;
        AutoCloseFD held;
        switch (op.kind) {
        case Kind::MakePrivate:
            doMount("none", op.target, nullptr, MS_REC | MS_PRIVATE);
            break;
        case Kind::Root:
            makeRoot(c, m, op.data);
            break;
        case Kind::Proc:
            doMount("proc", m.at(op, held), "proc", op.flags);
            break;
        case Kind::Tmpfs:
            doMount("tmpfs", m.at(op, held), "tmpfs", op.flags, op.data);
            break;
        case Kind::DevNode:
            bindDevNode(op.source, m.at(op, held));
            break;
        case Kind::Mkdir:
            ::mkdir(m.at(op, held).c_str(), op.mode);
            break;
        case Kind::Devpts:
            doMount("devpts", m.at(op, held), "devpts", op.flags, op.data);
            break;
        case Kind::Symlink:
            (void)!::symlink(op.source.c_str(), m.at(op, held).c_str());
            break;
        case Kind::Bind:
            bind(op, m);
            break;
        case Kind::PivotRoot:
            m.created.close();
            pivotRoot(m.merged);
            break;
        }
    }
}

void removeCreatedMountPoints(const fs::path& runDir)
{
    std::ifstream in(runDir / "mount-points");
    std::vector<std::string> paths;
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) paths.push_back(line);
    // The upper dir is the command's: a folder it turned into a symlink is never followed.
    AutoCloseFD upper(
        ::open((runDir / "upper").c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    for (auto it = paths.rbegin(); upper && it != paths.rend(); ++it) {
        fs::path rel = fs::path(it->substr(1)).lexically_normal();
        if (rel.empty() || !rel.has_filename()) continue;
        struct open_how how = {};
        how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
        how.resolve =
            RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
        auto parentRel = rel.parent_path().empty() ? std::string(".") : rel.parent_path().string();
        long parent = openat2(upper.get(), parentRel.c_str(), &how);
        if (parent < 0) continue;
        AutoCloseFD parentFd{int(parent)};
        auto name = rel.filename().string();
        struct stat st;
        if (::fstatat(parentFd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        if (S_ISDIR(st.st_mode))
            ::unlinkat(parentFd.get(), name.c_str(),
                       AT_REMOVEDIR); // only if the command left it empty
        else if (S_ISREG(st.st_mode) && st.st_size == 0)
            ::unlinkat(parentFd.get(), name.c_str(), 0);
    }
    ::unlink((runDir / "mount-points").c_str());
}

} // namespace grocker::sandbox
