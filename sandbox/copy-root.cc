#include "copy-root.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <linux/fs.h>
#include <map>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace grocker::sandbox {

namespace fs = std::filesystem;

namespace {

constexpr unsigned statxMask = STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_UID | STATX_GID |
                               STATX_ATIME | STATX_MTIME | STATX_CTIME | STATX_INO | STATX_SIZE |
                               STATX_BTIME;

// Paths in messages are the tree's own: "/" + rel.
std::string shown(const std::string& rel)
{
    return "/" + rel;
}
std::string child(const std::string& rel, const std::string& name)
{
    return rel.empty() ? name : rel + "/" + name;
}

struct statx statAt(int dirFd, const std::string& name, const std::string& where)
{
    struct statx st;
    // AT_NO_AUTOMOUNT: a mount point is stat'ed as it stands, never triggered.
    if (::statx(dirFd, name.c_str(), AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, statxMask, &st) < 0)
        throw SysError("unable to stat '", where, "'");
    return st;
}

bool statIfExists(int dirFd, const std::string& name, struct stat& st)
{
    if (::fstatat(dirFd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return true;
    if (errno == ENOENT) return false;
    throw SysError("unable to stat '", name, "'");
}

bool isWhiteout(const struct statx& st)
{
    return S_ISCHR(st.stx_mode) && st.stx_rdev_major == 0 && st.stx_rdev_minor == 0;
}

// Overlay's other whiteout form: an empty file marked user.overlay.whiteout.
bool isXattrWhiteout(int dirFd, const std::string& name, const struct statx& st)
{
    if (!S_ISREG(st.stx_mode) || st.stx_size != 0) return false;
    AutoCloseFD fd(::openat(dirFd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    return fd && ::fgetxattr(fd.get(), "user.overlay.whiteout", nullptr, 0) >= 0;
}

AutoCloseFD openDir(int dirFd, const std::string& name, const std::string& where)
{
    AutoCloseFD fd(::openat(dirFd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) throw SysError("unable to open folder '", where, "'");
    return fd;
}

// Removes `name` from `dirFd`, with everything under it when it is a folder.
void removeAt(int dirFd, const std::string& name, const std::string& where)
{
    if (::unlinkat(dirFd, name.c_str(), 0) == 0 || errno == ENOENT) return;
    if (errno != EISDIR) throw SysError("unable to remove '", where, "'");
    {
        auto sub = openDir(dirFd, name, where);
        for (auto& n : listFolder(sub.get(), where))
            removeAt(sub.get(), n, where + "/" + n);
    }
    if (::unlinkat(dirFd, name.c_str(), AT_REMOVEDIR) < 0)
        throw SysError("unable to remove folder '", where, "'");
}

bool isOverlayXattr(std::string_view name)
{
    return name.starts_with("user.overlay.") || name.starts_with("trusted.overlay.");
}

// What oci's layer writer keeps: losing one of these would change the committed layer, so
// failing to copy one is an error; others (security labels...) are the host's business.
bool reachesLayer(std::string_view name)
{
    return name == "security.capability" || name.starts_with("user.") ||
           name == "system.posix_acl_access" || name == "system.posix_acl_default";
}

std::vector<std::string> xattrNames(int fd, const std::string& where)
{
    std::vector<char> list(4096);
    ssize_t n;
    while ((n = ::flistxattr(fd, list.data(), list.size())) < 0 && errno == ERANGE)
        list.resize(list.size() * 4);
    if (n < 0) {
        if (errno == ENOTSUP) return {};
        throw SysError("unable to list the extended attributes of '", where, "'");
    }
    std::vector<std::string> names;
    for (ssize_t i = 0; i < n;) {
        std::string name(list.data() + i);
        i += ssize_t(name.size()) + 1;
        if (!isOverlayXattr(name)) names.push_back(std::move(name));
    }
    return names;
}

bool hasOpaqueMark(int dirFd)
{
    char v[2];
    return ::fgetxattr(dirFd, "user.overlay.opaque", v, sizeof v) == 1 && v[0] == 'y';
}

void setOpaqueMark(int dirFd, const std::string& where)
{
    if (::fsetxattr(dirFd, "user.overlay.opaque", "y", 1, 0) < 0)
        throw SysError("unable to mark '", where, "' as opaque (xattr user.overlay.opaque)");
}

// Copies entries with their metadata from one tree to another. Hardlinks between entries it
// copies stay hardlinks: the second name is linked to the first copy.
class Copier {
  public:
    // `skip` leaves out entries of the source (mount points); whiteouts are dropped when
    // `dropWhiteouts`, as inside an opaque lower folder they hide nothing.
    using Skip = std::function<bool(const struct statx&, const std::string& rel)>;
    Copier(int dstRootFd, bool dropWhiteouts, Skip skip)
        : dstRoot_(dstRootFd), dropWhiteouts_(dropWhiteouts), skip_(std::move(skip))
    {
    }

    void forgetLinks() { links_.clear(); }

    // Copies `name` of `srcDir` (at `rel` in both trees) into `dstDir`, where nothing has
    // that name, with all it holds.
    void copy(int srcDir, const std::string& name, const struct statx& st, int dstDir,
              const std::string& rel)
    {
        auto where = shown(rel);
        switch (st.stx_mode & S_IFMT) {
        case S_IFREG: {
            if (st.stx_nlink > 1) {
                auto [it, fresh] = links_.emplace(std::make_pair(st.stx_ino, devOf(st)), rel);
                if (!fresh) {
                    if (::linkat(dstRoot_, it->second.c_str(), dstDir, name.c_str(), 0) < 0)
                        throw SysError("unable to link '", where, "' to '", shown(it->second), "'");
                    return;
                }
            }
            AutoCloseFD src(::openat(srcDir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
            if (!src) throw SysError("unable to open '", where, "'");
            AutoCloseFD dst(::openat(dstDir, name.c_str(),
                                     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
            if (!dst) throw SysError("unable to create '", where, "'");
            copyContent(src.get(), dst.get(), st.stx_size, where);
            setMetadata(src.get(), dst.get(), st, where);
            setTimes(dst.get(), st, where);
            return;
        }
        case S_IFDIR: {
            if (::mkdirat(dstDir, name.c_str(), 0700) < 0)
                throw SysError("unable to create folder '", where, "'");
            auto src = openDir(srcDir, name, where);
            auto dst = openDir(dstDir, name, where);
            setMetadata(src.get(), dst.get(), st, where);
            copyChildren(src.get(), dst.get(), rel);
            setTimes(dst.get(), st, where);
            return;
        }
        case S_IFLNK: {
            std::string target(size_t(st.stx_size ? st.stx_size : 4096) + 1, '\0');
            ssize_t n = ::readlinkat(srcDir, name.c_str(), target.data(), target.size());
            if (n < 0) throw SysError("unable to read symlink '", where, "'");
            target.resize(size_t(n));
            if (::symlinkat(target.c_str(), dstDir, name.c_str()) < 0)
                throw SysError("unable to create symlink '", where, "'");
            setPathMetadata(dstDir, name, st, false, where);
            return;
        }
        case S_IFCHR:
        case S_IFBLK:
        case S_IFIFO: {
            if (dropWhiteouts_ && isWhiteout(st)) return;
            if (::mknodat(dstDir, name.c_str(), (st.stx_mode & S_IFMT) | 0600,
                          makedev(st.stx_rdev_major, st.stx_rdev_minor)) < 0) {
                // The kernel refuses real devices in a user namespace; one there could not be
                // opened anyway (overlay mounts in a user namespace are nodev, too).
                if (errno == EPERM && !S_ISFIFO(st.stx_mode)) return;
                throw SysError("unable to create '", where, "'");
            }
            setPathMetadata(dstDir, name, st, true, where);
            return;
        }
        default:
            // Sockets: runtime objects, which a layer cannot hold either.
            return;
        }
    }

    void copyChildren(int srcDir, int dstDir, const std::string& rel)
    {
        for (auto& n : listFolder(srcDir, shown(rel))) {
            auto r = child(rel, n);
            auto st = statAt(srcDir, n, shown(r));
            if (skip_ && skip_(st, r)) continue;
            copy(srcDir, n, st, dstDir, r);
        }
    }

    // Owner, then xattrs, then mode: chown clears setuid/setgid and security.capability.
    void setMetadata(int src, int dst, const struct statx& st, const std::string& where,
                     bool replaceXattrs = false)
    {
        if (::fchown(dst, st.stx_uid, st.stx_gid) < 0)
            throw SysError("unable to set the owner of '", where, "'");
        if (replaceXattrs)
            for (auto& name : xattrNames(dst, where))
                ::fremovexattr(dst, name.c_str());
        for (auto& name : xattrNames(src, where)) {
            ssize_t n;
            while ((n = ::fgetxattr(src, name.c_str(), value_.data(), value_.size())) < 0 &&
                   errno == ERANGE)
                value_.resize(value_.size() * 4);
            if (n < 0) {
                if (errno == ENODATA) continue;
                throw SysError("unable to read extended attribute '", name, "' of '", where, "'");
            }
            if (::fsetxattr(dst, name.c_str(), value_.data(), size_t(n), 0) < 0) {
                if (!reachesLayer(name) && (errno == EPERM || errno == ENOTSUP)) continue;
                throw SysError("unable to set extended attribute '", name, "' on '", where, "'");
            }
        }
        if (::fchmod(dst, st.stx_mode & 07777) < 0)
            throw SysError("unable to set the mode of '", where, "'");
    }

    void setTimes(int fd, const struct statx& st, const std::string& where)
    {
        struct timespec ts[2] = {{st.stx_atime.tv_sec, st.stx_atime.tv_nsec},
                                 {st.stx_mtime.tv_sec, st.stx_mtime.tv_nsec}};
        if (::futimens(fd, ts) < 0) throw SysError("unable to set the times of '", where, "'");
    }

  private:
    static uint64_t devOf(const struct statx& st)
    {
        return makedev(st.stx_dev_major, st.stx_dev_minor);
    }

    // Symlinks, fifos, devices: no fd to set things through, and no xattrs worth copying (user.*
    // ones are not allowed on them).
    void setPathMetadata(int dir, const std::string& name, const struct statx& st, bool mode,
                         const std::string& where)
    {
        if (::fchownat(dir, name.c_str(), st.stx_uid, st.stx_gid, AT_SYMLINK_NOFOLLOW) < 0)
            throw SysError("unable to set the owner of '", where, "'");
        if (mode && ::fchmodat(dir, name.c_str(), st.stx_mode & 07777, 0) < 0)
            throw SysError("unable to set the mode of '", where, "'");
        struct timespec ts[2] = {{st.stx_atime.tv_sec, st.stx_atime.tv_nsec},
                                 {st.stx_mtime.tv_sec, st.stx_mtime.tv_nsec}};
        if (::utimensat(dir, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) < 0)
            throw SysError("unable to set the times of '", where, "'");
    }

    // A reflink where the filesystem can (btrfs, xfs), else an in-kernel copy, else read/write.
    void copyContent(int src, int dst, uint64_t size, const std::string& where)
    {
        if (size == 0 || ::ioctl(dst, FICLONE, src) == 0) return;
        for (bool inKernel = true;;) {
            ssize_t n;
            if (inKernel) {
                n = ::copy_file_range(src, nullptr, dst, nullptr, 1 << 30, 0);
                if (n < 0 &&
                    (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
                    inKernel = false;
                    continue;
                }
            } else {
                n = ::read(src, buf_.data(), buf_.size());
                if (n > 0) writeFull(dst, buf_.data(), size_t(n), where);
            }
            if (n < 0) {
                if (errno == EINTR) continue;
                throw SysError("unable to copy '", where, "'");
            }
            if (n == 0) return;
        }
    }

    int dstRoot_;
    bool dropWhiteouts_;
    Skip skip_;
    std::map<std::pair<uint64_t, uint64_t>, std::string>
        links_; // (inode, device) → path of the copy
    std::vector<char> value_ = std::vector<char>(4096);
    std::vector<char> buf_ = std::vector<char>(1 << 20);
};

// Applies one lower dir's folder `src` onto the merged folder `dst`, as overlay would show them
// stacked: a whiteout removes what is below, an opaque folder replaces it, a folder merges.
void mergeDir(Copier& copier, int src, int dst, const std::string& rel)
{
    for (auto& name : listFolder(src, shown(rel))) {
        auto r = child(rel, name);
        auto where = shown(r);
        auto st = statAt(src, name, where);
        if (isWhiteout(st) || isXattrWhiteout(src, name, st)) {
            removeAt(dst, name, where);
            continue;
        }
        struct stat below;
        bool exists = statIfExists(dst, name, below);
        if (S_ISDIR(st.stx_mode) && exists && S_ISDIR(below.st_mode)) {
            auto srcSub = openDir(src, name, where);
            if (!hasOpaqueMark(srcSub.get())) {
                // The folder shows the metadata of the topmost layer that has it.
                auto dstSub = openDir(dst, name, where);
                copier.setMetadata(srcSub.get(), dstSub.get(), st, where, true);
                mergeDir(copier, srcSub.get(), dstSub.get(), r);
                copier.setTimes(dstSub.get(), st, where);
                continue;
            }
        }
        if (exists) removeAt(dst, name, where);
        copier.copy(src, name, st, dst, r);
    }
}

bool sameTime(const struct statx_timestamp& a, const struct statx_timestamp& b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

} // namespace

void copyLowerDirs(const std::vector<fs::path>& lowerDirs, int mergedFd)
{
    Copier copier(mergedFd, true, nullptr);
    for (auto it = lowerDirs.rbegin(); it != lowerDirs.rend(); ++it) {
        try {
            AutoCloseFD src(::open(it->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!src) throw SysError("unable to open folder '", it->string(), "'");
            // Hardlinks never cross layers: each layer was unpacked on its own.
            copier.forgetLinks();
            mergeDir(copier, src.get(), mergedFd, "");
        } catch (Error& e) {
            e.addContext(concat("while copying the layer in '", it->string(), "'"));
            throw;
        }
    }
}

struct RootSnapshot::Node {
    std::string name;
    uint32_t type = 0; // S_IFMT bits
    uint64_t ino = 0;
    bool hasBtime = false;
    struct statx_timestamp btime = {}, ctime = {};
    std::vector<Node> children; // folders only, by name in byte order
};

RootSnapshot::RootSnapshot() = default;
RootSnapshot::~RootSnapshot() = default;
RootSnapshot::RootSnapshot(RootSnapshot&&) noexcept = default;
RootSnapshot& RootSnapshot::operator=(RootSnapshot&&) noexcept = default;

namespace {

// Walks both snapshots and diffs with the same idea of what is out of the tree: mount points
// (a bind-mounted file can sit on the root's own filesystem, so st_dev alone cannot tell), and
// the paths the sandbox mounted on. A folder on another device is out too; other files are
// not, as overlay (a store on an overlay) reports some with the device of the layer below.
struct Outside {
    uint32_t devMajor, devMinor;
    const std::set<std::string>& skip;
    bool operator()(const struct statx& st, const std::string& rel) const
    {
        if ((st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
            (st.stx_attributes & STATX_ATTR_MOUNT_ROOT))
            return true;
        if (S_ISDIR(st.stx_mode) && (st.stx_dev_major != devMajor || st.stx_dev_minor != devMinor))
            return true;
        return skip.contains(rel);
    }
};

RootSnapshot::Node nodeOf(const std::string& name, const struct statx& st)
{
    RootSnapshot::Node n;
    n.name = name;
    n.type = st.stx_mode & S_IFMT;
    n.ino = st.stx_ino;
    n.hasBtime = st.stx_mask & STATX_BTIME;
    n.btime = st.stx_btime;
    n.ctime = st.stx_ctime;
    return n;
}

void record(RootSnapshot::Node& dir, int dirFd, const std::string& rel, const Outside& outside,
            struct statx_timestamp& maxCtime)
{
    for (auto& name : listFolder(dirFd, shown(rel))) {
        auto r = child(rel, name);
        auto st = statAt(dirFd, name, shown(r));
        if (outside(st, r)) continue;
        if (st.stx_ctime.tv_sec > maxCtime.tv_sec ||
            (st.stx_ctime.tv_sec == maxCtime.tv_sec && st.stx_ctime.tv_nsec > maxCtime.tv_nsec))
            maxCtime = st.stx_ctime;
        auto& n = dir.children.emplace_back(nodeOf(name, st));
        if (S_ISDIR(st.stx_mode)) {
            auto sub = openDir(dirFd, name, shown(r));
            record(n, sub.get(), r, outside, maxCtime);
        }
    }
}

// A folder of the upper dir, made only when something under it changed, with the metadata of
// the merged folder it stands for.
struct UpperDir {
    UpperDir* parent = nullptr;
    std::string name, rel;
    int mergedFd = -1;
    struct statx st = {};
    AutoCloseFD fd;

    int get(Copier& copier)
    {
        if (fd) return fd.get();
        int p = parent->get(copier);
        if (::mkdirat(p, name.c_str(), 0700) < 0)
            throw SysError("unable to create folder '", shown(rel), "' in the upper dir");
        fd = openDir(p, name, shown(rel));
        copier.setMetadata(mergedFd, fd.get(), st, shown(rel));
        return fd.get();
    }
};

class Differ {
  public:
    Differ(int upperRootFd, const Outside& outside)
        : copier_(upperRootFd, false, outside), outside_(outside)
    {
    }

    void diffDir(int afterFd, const RootSnapshot::Node& before, UpperDir& up)
    {
        auto names = listFolder(afterFd, shown(up.rel));
        auto& kids = before.children;
        size_t i = 0, j = 0;
        while (i < names.size() || j < kids.size()) {
            int order = i == names.size()  ? 1
                        : j == kids.size() ? -1
                                           : names[i].compare(kids[j].name);
            if (order > 0) {
                // Gone: one whiteout hides it with all it held.
                writeWhiteout(up.get(copier_), kids[j].name, child(up.rel, kids[j].name));
                j++;
                continue;
            }
            auto& name = names[i];
            auto r = child(up.rel, name);
            auto st = statAt(afterFd, name, shown(r));
            i++;
            if (order < 0) {
                if (!outside_(st, r)) copier_.copy(afterFd, name, st, up.get(copier_), r);
                continue;
            }
            auto& old = kids[j++];
            if (outside_(st, r)) continue;
            bool changed = !sameTime(st.stx_ctime, old.ctime);
            // An inode number can be reused at once (ext4 does): the birth time tells a new one.
            bool same = (st.stx_mode & S_IFMT) == old.type && st.stx_ino == old.ino &&
                        (!old.hasBtime || !(st.stx_mask & STATX_BTIME) ||
                         sameTime(st.stx_btime, old.btime));
            if (!same) {
                // Replaced: a folder made anew hides all that was below, as overlay marks it.
                int dst = up.get(copier_);
                copier_.copy(afterFd, name, st, dst, r);
                if (S_ISDIR(st.stx_mode))
                    setOpaqueMark(openDir(dst, name, shown(r)).get(), shown(r));
            } else if (S_ISDIR(st.stx_mode)) {
                auto sub = openDir(afterFd, name, shown(r));
                UpperDir down;
                down.parent = &up;
                down.name = name;
                down.rel = r;
                down.mergedFd = sub.get();
                down.st = st;
                if (changed) down.get(copier_); // its own metadata or its entries changed
                diffDir(sub.get(), old, down);
                if (down.fd) copier_.setTimes(down.fd.get(), st, shown(r));
            } else if (changed) {
                copier_.copy(afterFd, name, st, up.get(copier_), r);
            }
        }
    }

  private:
    // Overlay's whiteout, a 0/0 character device; before Linux 5.8 a user namespace may not
    // make one, and overlay's other form, an empty file marked user.overlay.whiteout, does.
    static void writeWhiteout(int dirFd, const std::string& name, const std::string& rel)
    {
        if (::mknodat(dirFd, name.c_str(), S_IFCHR | 0000, makedev(0, 0)) == 0) return;
        if (errno != EPERM)
            throw SysError("unable to create the whiteout for '", shown(rel), "' in the upper dir");
        AutoCloseFD fd(::openat(dirFd, name.c_str(),
                                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0000));
        if (!fd || ::fsetxattr(fd.get(), "user.overlay.whiteout", "y", 1, 0) < 0)
            throw SysError("unable to create the whiteout for '", shown(rel), "' in the upper dir");
    }

    Copier copier_;
    const Outside& outside_;
};

} // namespace

RootSnapshot RootSnapshot::take(int rootFd, std::set<std::string> skip)
{
    RootSnapshot s;
    struct statx st;
    if (::statx(rootFd, "", AT_EMPTY_PATH, STATX_INO, &st) < 0)
        throw SysError("unable to stat the sandbox root");
    s.devMajor_ = st.stx_dev_major;
    s.devMinor_ = st.stx_dev_minor;
    s.skip_ = std::move(skip);
    s.root_ = std::make_unique<Node>();
    s.root_->type = S_IFDIR;
    struct statx_timestamp maxCtime = {};
    record(*s.root_, rootFd, "", Outside{s.devMajor_, s.devMinor_, s.skip_}, maxCtime);
    s.maxCtimeSec_ = maxCtime.tv_sec;
    s.maxCtimeNsec_ = maxCtime.tv_nsec;
    return s;
}

void RootSnapshot::settle(int probeDirFd) const
{
    // Timestamps come from a clock that ticks every few milliseconds: a file changed in the
    // tick the copy ended in would keep its ctime. Wait for the next tick, as git does for its
    // racy index entries.
    const char* probe = ".grocker-ctime-probe";
    AutoCloseFD fd(
        ::openat(probeDirFd, probe, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) throw SysError("unable to create the probe file '", probe, "'");
    for (int i = 0; i < 5000; i++) {
        struct statx st;
        if (::statx(fd.get(), "", AT_EMPTY_PATH, STATX_CTIME, &st) < 0)
            throw SysError("unable to stat the probe file");
        if (st.stx_ctime.tv_sec > maxCtimeSec_ ||
            (st.stx_ctime.tv_sec == maxCtimeSec_ && st.stx_ctime.tv_nsec > maxCtimeNsec_))
            break;
        ::usleep(1000);
        if (::fchmod(fd.get(), i % 2 ? 0600 : 0644) < 0)
            throw SysError("unable to touch the probe file");
    }
    fd.reset();
    if (::unlinkat(probeDirFd, probe, 0) < 0)
        throw SysError("unable to remove the probe file '", probe, "'");
}

void RootSnapshot::writeDiff(int rootFd, int upperFd) const
{
    if (!root_) throw Error("no snapshot of the root was taken");
    Outside outside{devMajor_, devMinor_, skip_};
    Differ differ(upperFd, outside);
    UpperDir top;
    top.fd.reset(::fcntl(upperFd, F_DUPFD_CLOEXEC, 0));
    if (!top.fd) throw SysError("unable to duplicate the upper dir's descriptor");
    differ.diffDir(rootFd, *root_, top);
}

} // namespace grocker::sandbox
