#include "grocker/oci/layer-unpacker.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "layer-reader.hh"
#include "unpack-paths.hh"

#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <cerrno>
#include <climits>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <memory>
#include <string_view>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <unordered_set>
#include <vector>

namespace grocker::oci {

using namespace unpacking;

namespace {

// A folder whose mode and times are applied once every entry is in place: a read-only folder
// must not block the creation of its children, and creating children changes its mtime.
struct PendingFolder {
    std::string path;
    dev_t dev;
    ino_t ino;
    mode_t mode;
    bool hasTimes;
    timespec times[2];
};

class Unpacker {
  public:
    Unpacker(const std::string& what, const UnpackOptions& options, AutoCloseFD root)
        : what_(what), options_(options), root_(std::move(root))
    {
        if (auto real = readProcFdLink(root_.get())) rootPrefix_ = *real == "/" ? "/" : *real + "/";
    }

    void apply(struct archive* a, struct archive_entry* entry);
    // Applies the folders' deferred metadata.
    void finish();
    // One warning per kind of thing skipped, once the layer is known to be whole.
    void reportSkipped() const;

  private:
    struct Skipped {
        size_t count = 0;
        std::string first;
        void add(std::string why)
        {
            if (count++ == 0) first = std::move(why);
        }
    };

    [[noreturn]] void refuse(const std::string& why) const
    {
        throw Error("layer ", what_, ": entry '", entry_, "' ", why, "; refusing it");
    }
    // `path` is relative to the root; the entry is named too when the path is not its own.
    [[noreturn]] void fail(int err, const std::string& operation, const std::string& path) const
    {
        throw SysError(
            err, concat("layer ", what_, ": unable to ", operation, " '", path.empty() ? "/" : path,
                        "'", path == entryPath_ ? "" : concat(" (for entry '", entry_, "')")));
    }
    [[noreturn]] void fail(const std::string& operation, const std::string& path) const
    {
        fail(errno, operation, path);
    }

    int openInRoot(const std::string& path, uint64_t flags) const;
    AutoCloseFD openFolder(const std::vector<std::string>& parts, size_t count, bool create);
    bool removeExisting(int parentFd, const std::string& name, const std::string& path,
                        bool keepFolder);
    void removeAll(int parentFd, const std::string& name, const std::string& path);
    void clearOpaque(int dirFd, const std::string& path);
    void applyWhiteout(const std::vector<std::string>& parts);
    void createFile(struct archive* a, struct archive_entry* entry, int parentFd,
                    const std::string& name);
    void createHardLink(struct archive_entry* entry, int parentFd, const std::string& name);
    void applyMetadata(struct archive_entry* entry, int fd, bool pathFd, bool deferred);
    void setXattrs(struct archive_entry* entry, int fd, bool pathFd);
    void addLayerPath(std::string path);
    std::string locationOf(int dirFd, const std::string& lexicalPath) const;

    const std::string& what_;
    const UnpackOptions& options_;
    AutoCloseFD root_;
    // The entry at hand, as the archive names it and as a path under the root.
    std::string entry_;
    std::string entryPath_;
    // Where the entry really is under the root, once symlinks in its folder are resolved.
    std::string entryLocation_;
    // The root's real path with a trailing slash, to turn /proc/self/fd links into locations.
    std::string rootPrefix_;
    // The location of everything this layer put in place, with its ancestors: an opaque marker
    // removes all the rest of its folder, wherever it stands in the archive, and a `.wh.`
    // whiteout only hides what lower layers left (image-spec, "Whiteouts"). Locations rather
    // than archive names, so that `lib/x` and `usr/lib/x` are one when lib -> usr/lib.
    std::unordered_set<std::string> layerPaths_;
    std::vector<PendingFolder> pendingFolders_;
    Skipped devices_, xattrs_, ownership_;
};

int Unpacker::openInRoot(const std::string& path, uint64_t flags) const
{
    open_how how{};
    how.flags = flags | O_CLOEXEC;
    // RESOLVE_IN_ROOT resolves ".." and absolute symlinks as if the root were "/", as a
    // container sees them (`lib -> /usr/lib` works); magic links would leave the root.
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    for (int attempt = 0;; attempt++) {
        long fd = ::syscall(SYS_openat2, root_.get(), path.empty() ? "." : path.c_str(), &how,
                            sizeof how);
        if (fd >= 0) return int(fd);
        // The kernel asks for a retry when a rename raced with a walk that must stay in the root.
        if (errno == EAGAIN && attempt < 32) continue;
        if (errno == ENOSYS)
            throw Error(
                "layer ", what_,
                ": openat2 is not available; unpacking layers safely needs Linux 5.6 or later");
        return -1;
    }
}

// Opens the folder made of the first `count` parts under the root, creating missing ones
// (0755, owned by the caller) when `create`. Returns an invalid fd when the folder is missing
// and `create` is false.
AutoCloseFD Unpacker::openFolder(const std::vector<std::string>& parts, size_t count, bool create)
{
    std::string path = joinPath(parts, count);
    AutoCloseFD fd(openInRoot(path, O_PATH | O_DIRECTORY));
    if (fd) return fd;
    if (errno != ENOENT && !(errno == ENOTDIR && !create)) fail("open folder", path);
    if (!create) return {};

    // One level at a time, each resolved again from the root, so a symlink met on the way is
    // followed inside the root and every mkdirat is relative to a folder known to be in it.
    AutoCloseFD current(openInRoot("", O_PATH | O_DIRECTORY));
    if (!current) fail("open folder", "");
    std::string prefix;
    for (size_t i = 0; i < count; i++) {
        prefix = childPath(prefix, parts[i]);
        AutoCloseFD next(openInRoot(prefix, O_PATH | O_DIRECTORY));
        if (!next && errno == ENOENT) {
            if (::mkdirat(current.get(), parts[i].c_str(), 0755) == 0) {
                // The umask must not decide the mode of folders the image did not describe.
                AutoCloseFD made(::openat(current.get(), parts[i].c_str(),
                                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
                if (!made || ::fchmod(made.get(), 0755) != 0)
                    fail("set the mode of folder", prefix);
            } else if (errno == EEXIST) {
                // It exists but did not resolve: a symlink whose target is missing in the root.
                char target[4096];
                ssize_t n =
                    ::readlinkat(current.get(), parts[i].c_str(), target, sizeof target - 1);
                if (n >= 0)
                    refuse(concat("goes through '", prefix, "', a symbolic link to '",
                                  std::string(target, size_t(n)),
                                  "', which leads to no folder inside the root"));
                fail(ENOTDIR, "create folder", prefix);
            } else
                fail("create folder", prefix);
            next.reset(openInRoot(prefix, O_PATH | O_DIRECTORY));
        }
        if (!next) fail("open folder", prefix);
        current = std::move(next);
    }
    return current;
}

// Removes what stands at `name` unless it is a folder and `keepFolder`; returns whether a
// folder was kept.
bool Unpacker::removeExisting(int parentFd, const std::string& name, const std::string& path,
                              bool keepFolder)
{
    struct stat st;
    if (::fstatat(parentFd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return false;
        fail("inspect", path);
    }
    if (S_ISDIR(st.st_mode) && keepFolder) return true;
    removeAll(parentFd, name, path);
    return false;
}

// Removes `name` and, for a folder, everything in it, never following a symlink: each level is
// opened relative to its parent with O_NOFOLLOW.
void Unpacker::removeAll(int parentFd, const std::string& name, const std::string& path)
{
    struct stat st;
    if (::fstatat(parentFd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return;
        fail("inspect", path);
    }
    if (!S_ISDIR(st.st_mode)) {
        if (::unlinkat(parentFd, name.c_str(), 0) != 0 && errno != ENOENT) fail("remove", path);
        return;
    }
    {
        AutoCloseFD dir(
            ::openat(parentFd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!dir) fail("open folder", path);
        // Without CAP_DAC_OVERRIDE (rootless), a read-only folder cannot be emptied.
        if ((st.st_mode & 0700) != 0700) (void)::fchmod(dir.get(), (st.st_mode & 07777) | 0700);
        for (auto& child : listFolder(dir.get(), path, what_))
            removeAll(dir.get(), child, childPath(path, child));
    }
    if (::unlinkat(parentFd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
        fail("remove folder", path);
}

// Removes from the folder everything this layer did not put there, recursing into the folders
// it did (a folder kept from below must lose its lower content too).
void Unpacker::clearOpaque(int dirFd, const std::string& path)
{
    for (auto& name : listFolder(dirFd, path, what_)) {
        std::string child = childPath(path, name);
        if (!layerPaths_.contains(child)) {
            removeAll(dirFd, name, child);
            continue;
        }
        struct stat st;
        if (::fstatat(dirFd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) fail("inspect", child);
        if (!S_ISDIR(st.st_mode)) continue;
        AutoCloseFD sub(
            ::openat(dirFd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub) fail("open folder", child);
        clearOpaque(sub.get(), child);
    }
}

// The folder's path under the root, as the kernel resolved it; the archive's own path when
// /proc is not there to tell.
std::string Unpacker::locationOf(int dirFd, const std::string& lexicalPath) const
{
    auto real = readProcFdLink(dirFd);
    if (!real || rootPrefix_.empty()) return lexicalPath;
    if (*real + "/" == rootPrefix_) return "";
    if (real->starts_with(rootPrefix_)) return real->substr(rootPrefix_.size());
    return lexicalPath;
}

void Unpacker::addLayerPath(std::string path)
{
    // Once a path is in, its ancestors are too.
    while (!path.empty() && layerPaths_.insert(path).second) {
        auto slash = path.rfind('/');
        path.resize(slash == std::string::npos ? 0 : slash);
    }
}

void Unpacker::applyWhiteout(const std::vector<std::string>& parts)
{
    const std::string& name = parts.back();
    size_t parentCount = parts.size() - 1;
    std::string parentPath = joinPath(parts, parentCount);

    if (name == opaqueMarker) {
        // The marker says the folder is in this layer: make it if needed, as for any entry.
        AutoCloseFD dir = openFolder(parts, parentCount, true);
        std::string location = locationOf(dir.get(), parentPath);
        clearOpaque(dir.get(), location);
        addLayerPath(location);
        if (options_.overlayWhiteouts) {
            // overlayfs mounted with userxattr (as it is in a user namespace) reads this form.
            auto proc = concat("/proc/self/fd/", dir.get());
            if (::setxattr(proc.c_str(), "user.overlay.opaque", "y", 1, 0) < 0)
                fail("mark as opaque", parentPath.empty() ? std::string("/") : parentPath);
        }
        return;
    }
    // Other `.wh..wh.` names are aufs bookkeeping (hard link folders), never content.
    if (name.starts_with(whiteoutMetaPrefix)) return;

    std::string target = name.substr(whiteoutPrefix.size());
    if (target.empty() || target == "." || target == ".." || target.find('/') != std::string::npos)
        refuse(concat("is a whiteout of '", target, "', which names no entry of its folder"));
    // Nothing to hide in a folder that does not exist, except in an overlay lower dir, where the
    // whiteout stands for the layers below.
    AutoCloseFD dir = openFolder(parts, parentCount, options_.overlayWhiteouts);
    if (!dir) return;
    if (layerPaths_.contains(childPath(locationOf(dir.get(), parentPath), target))) return;
    removeAll(dir.get(), target, childPath(parentPath, target));
    if (options_.overlayWhiteouts) {
        // A 0/0 character device is overlayfs's whiteout; the kernel lets a user namespace
        // make this one device (Linux 5.8).
        if (::mknodat(dir.get(), target.c_str(), S_IFCHR | 0, makedev(0, 0)) < 0)
            fail("create the overlay whiteout", childPath(parentPath, target));
    }
}

void Unpacker::createFile(struct archive* a, struct archive_entry* entry, int parentFd,
                          const std::string& name)
{
    AutoCloseFD fd(::openat(parentFd, name.c_str(),
                            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) fail("create file", entryPath_);
    for (;;) {
        const void* block;
        size_t size;
        la_int64_t offset;
        int r = archive_read_data_block(a, &block, &size, &offset);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN)
            throw Error("layer ", what_, ": unable to read the content of '", entry_,
                        "': ", archive_error_string(a));
        // Offsets jump over the holes of sparse files.
        auto* p = static_cast<const char*>(block);
        while (size > 0) {
            ssize_t n = ::pwrite(fd.get(), p, size, offset);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) fail("write file", entryPath_);
            p += n;
            size -= size_t(n);
            offset += n;
        }
    }
    // A sparse file may end with a hole.
    if (archive_entry_size_is_set(entry) && ::ftruncate(fd.get(), archive_entry_size(entry)) != 0)
        fail("set the size of file", entryPath_);
    applyMetadata(entry, fd.get(), false, false);
}

void Unpacker::createHardLink(struct archive_entry* entry, int parentFd, const std::string& name)
{
    std::string rawTarget = archive_entry_hardlink(entry);
    auto targetParts = splitPath(rawTarget);
    if (!targetParts)
        refuse(concat("is a hard link to '", rawTarget, "', which points outside the root"));
    if (targetParts->empty())
        refuse(concat("is a hard link to '", rawTarget, "', the root folder"));
    std::string targetPath = joinPath(*targetParts, targetParts->size());
    if (targetPath == entryPath_) return;

    // The target's folder is resolved in the root like any path; its last component is never
    // followed (linkat without AT_SYMLINK_FOLLOW links a symlink itself).
    AutoCloseFD targetDir = openFolder(*targetParts, targetParts->size() - 1, false);
    const std::string& targetName = targetParts->back();
    struct stat st;
    if (!targetDir ||
        ::fstatat(targetDir.get(), targetName.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            refuse(concat("is a hard link to '", rawTarget, "', which does not exist in the root"));
        fail("inspect", targetPath);
    }
    if (S_ISDIR(st.st_mode))
        refuse(concat("is a hard link to '", rawTarget, "', which is a folder"));

    removeExisting(parentFd, name, entryPath_, false);
    if (::linkat(targetDir.get(), targetName.c_str(), parentFd, name.c_str(), 0) != 0)
        fail("create a hard link to '" + targetPath + "' at", entryPath_);
}

// Ownership, then xattrs, then mode: chown clears setuid/setgid and security.capability.
// `pathFd` says `fd` is O_PATH (symlinks, fifos, devices), which fchmod and fsetxattr refuse.
void Unpacker::applyMetadata(struct archive_entry* entry, int fd, bool pathFd, bool deferred)
{
    if (options_.preserveOwnership) {
        auto uid = uid_t(archive_entry_uid(entry));
        auto gid = gid_t(archive_entry_gid(entry));
        if (::fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
            // EINVAL: the id has no mapping in this user namespace.
            if (errno != EPERM && errno != EINVAL) fail("change the owner of", entryPath_);
            ownership_.add(concat(uid, ":", gid, " on '", entryPath_, "': ", std::strerror(errno)));
        }
    }
    setXattrs(entry, fd, pathFd);

    mode_t mode = archive_entry_perm(entry) & 07777;
    timespec times[2];
    bool hasTimes = archive_entry_mtime_is_set(entry);
    if (hasTimes) {
        times[1] = {archive_entry_mtime(entry), archive_entry_mtime_nsec(entry)};
        times[0] = archive_entry_atime_is_set(entry)
                       ? timespec{archive_entry_atime(entry), archive_entry_atime_nsec(entry)}
                       : times[1];
    }

    if (deferred) {
        struct stat st;
        if (::fstat(fd, &st) != 0) fail("inspect", entryPath_);
        PendingFolder folder{entryLocation_, st.st_dev, st.st_ino, mode, hasTimes, {}};
        if (hasTimes) std::copy(times, times + 2, folder.times);
        pendingFolders_.push_back(std::move(folder));
        return;
    }
    bool isSymlink = archive_entry_filetype(entry) == AE_IFLNK;
    // Linux has no mode on symlinks.
    if (!isSymlink) {
        int r = pathFd ? ::chmod(procFdPath(fd).c_str(), mode) : ::fchmod(fd, mode);
        if (r != 0) fail("set the mode of", entryPath_);
    }
    if (hasTimes && ::utimensat(fd, "", times, AT_EMPTY_PATH) != 0)
        fail("set the times of", entryPath_);
}

void Unpacker::setXattrs(struct archive_entry* entry, int fd, bool pathFd)
{
    if (archive_entry_xattr_reset(entry) == 0) return;
    const char* name;
    const void* value;
    size_t size;
    // libarchive reports an xattr twice when the archive carries it both as SCHILY.xattr and
    // LIBARCHIVE.xattr (as its own pax writer does).
    std::unordered_set<std::string> seen;
    while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK) {
        if (!seen.insert(name).second) continue;
        // Through /proc, an O_PATH fd of a symlink designates the symlink itself.
        int r = pathFd ? ::setxattr(procFdPath(fd).c_str(), name, value, size, 0)
                       : ::fsetxattr(fd, name, value, size, 0);
        if (r == 0) continue;
        // trusted.* and security.* need privileges; user.* is refused on symlinks and devices;
        // some filesystems store none.
        if (errno != EPERM && errno != EACCES && errno != ENOTSUP)
            fail(concat("set extended attribute ", name, " on"), entryPath_);
        xattrs_.add(concat(name, " on '", entryPath_, "': ", std::strerror(errno)));
    }
}

void Unpacker::apply(struct archive* a, struct archive_entry* entry)
{
    const char* rawName = archive_entry_pathname(entry);
    if (!rawName) rawName = archive_entry_pathname_utf8(entry);
    if (!rawName) throw Error("layer ", what_, ": an entry has a name that cannot be read");
    entry_ = rawName;
    auto parts = splitPath(entry_);
    if (!parts) refuse("points outside the root");
    entryPath_ = joinPath(*parts, parts->size());

    bool hardLink = archive_entry_hardlink(entry) != nullptr;
    auto type = archive_entry_filetype(entry);
    entryLocation_ = entryPath_;
    if (parts->empty()) {
        // "./" describes the image's "/": its mode and owner are the root folder's.
        if (hardLink || type != AE_IFDIR) refuse("names the root folder itself");
        AutoCloseFD fd(openInRoot("", O_RDONLY | O_DIRECTORY));
        if (!fd) fail("open folder", "");
        applyMetadata(entry, fd.get(), false, true);
        return;
    }
    auto last = lastRawComponent(entry_);
    if (last == "." || last == "..") refuse(concat("ends with '", last, "'"));

    const std::string& name = parts->back();
    if (name.starts_with(whiteoutPrefix)) {
        applyWhiteout(*parts);
        return;
    }
    if (options_.keep && !options_.keep(entryPath_, hardLink ? unsigned(AE_IFREG) : type)) return;

    AutoCloseFD parent = openFolder(*parts, parts->size() - 1, true);
    entryLocation_ = childPath(locationOf(parent.get(), joinPath(*parts, parts->size() - 1)), name);
    if (hardLink) {
        createHardLink(entry, parent.get(), name);
        addLayerPath(entryLocation_);
        return;
    }

    switch (type) {
    case AE_IFREG:
        removeExisting(parent.get(), name, entryPath_, false);
        createFile(a, entry, parent.get(), name);
        break;
    case AE_IFDIR: {
        // A folder over a folder merges into it (its content from lower layers stays).
        if (!removeExisting(parent.get(), name, entryPath_, true) &&
            ::mkdirat(parent.get(), name.c_str(), 0700) != 0)
            fail("create folder", entryPath_);
        AutoCloseFD fd(
            ::openat(parent.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd) fail("open folder", entryPath_);
        applyMetadata(entry, fd.get(), false, true);
        break;
    }
    case AE_IFLNK: {
        const char* target = archive_entry_symlink(entry);
        if (!target) throw Error("layer ", what_, ": symbolic link '", entry_, "' has no target");
        removeExisting(parent.get(), name, entryPath_, false);
        // Stored as the archive says: it is only ever resolved inside the root.
        if (::symlinkat(target, parent.get(), name.c_str()) != 0)
            fail("create symbolic link", entryPath_);
        AutoCloseFD fd(::openat(parent.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
        if (!fd) fail("open symbolic link", entryPath_);
        applyMetadata(entry, fd.get(), true, false);
        break;
    }
    case AE_IFIFO:
    case AE_IFCHR:
    case AE_IFBLK: {
        removeExisting(parent.get(), name, entryPath_, false);
        mode_t kind = type == AE_IFIFO ? S_IFIFO : type == AE_IFCHR ? S_IFCHR : S_IFBLK;
        dev_t dev = type == AE_IFIFO
                        ? 0
                        : makedev(archive_entry_rdevmajor(entry), archive_entry_rdevminor(entry));
        if (::mknodat(parent.get(), name.c_str(), kind | 0600, dev) != 0) {
            // Without CAP_MKNOD in the initial user namespace (rootless), as umoci --rootless.
            if (errno == EPERM && kind != S_IFIFO) {
                devices_.add(entryPath_);
                return;
            }
            fail(type == AE_IFIFO ? "create fifo" : "create device node", entryPath_);
        }
        AutoCloseFD fd(::openat(parent.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
        if (!fd) fail("open", entryPath_);
        applyMetadata(entry, fd.get(), true, false);
        break;
    }
    default:
        throw Error("layer ", what_, ": entry '", entry_, "' has a type (", concat(std::oct, type),
                    ") that an image layer cannot hold");
    }
    addLayerPath(entryLocation_);
}

void Unpacker::finish()
{
    // Deepest first: a folder left without search permission must not stop its children.
    std::stable_sort(pendingFolders_.begin(), pendingFolders_.end(), [](auto& x, auto& y) {
        auto depth = [](const std::string& p) {
            return p.empty() ? 0 : 1 + std::count(p.begin(), p.end(), '/');
        };
        return depth(x.path) > depth(y.path);
    });
    for (auto& folder : pendingFolders_) {
        entry_ = entryPath_ = folder.path;
        AutoCloseFD fd(openInRoot(folder.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        struct stat st;
        // A later entry of the layer may have replaced the folder: its metadata is then gone too.
        if (!fd || ::fstat(fd.get(), &st) != 0 || st.st_dev != folder.dev ||
            st.st_ino != folder.ino)
            continue;
        if (::fchmod(fd.get(), folder.mode) != 0) fail("set the mode of folder", folder.path);
        if (folder.hasTimes && ::futimens(fd.get(), folder.times) != 0)
            fail("set the times of folder", folder.path);
    }
}

void Unpacker::reportSkipped() const
{
    if (!options_.warn) return;
    if (devices_.count)
        options_.warn(concat("layer ", what_, ": skipped ", devices_.count,
                             " device node(s) (first: '", devices_.first,
                             "'): creating device nodes needs privileges that this process lacks"));
    if (ownership_.count)
        options_.warn(concat("layer ", what_, ": could not apply the owner of ", ownership_.count,
                             " entries (first: ", ownership_.first, ")"));
    if (xattrs_.count)
        options_.warn(concat("layer ", what_, ": could not set ", xattrs_.count,
                             " extended attribute(s) (first: ", xattrs_.first, ")"));
}

} // namespace

void unpackLayer(const std::filesystem::path& layerFile, const std::filesystem::path& root,
                 const UnpackOptions& options, const std::optional<Digest>& expectedDigest)
{
    AutoCloseFD fd(::open(layerFile.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw SysError("unable to open layer '", layerFile.string(), "'");
    unpackLayerFd(fd.get(), layerFile.string(), root, options, expectedDigest);
}

void unpackLayerFd(int fd, const std::string& what, const std::filesystem::path& root,
                   const UnpackOptions& options, const std::optional<Digest>& expectedDigest)
{
    AutoCloseFD rootFd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!rootFd)
        throw SysError("unable to open root folder '", root.string(), "' to unpack layer ", what);

    Unpacker unpacker(what, options, std::move(rootFd));
    readLayerEntries(fd, what, expectedDigest, [&](struct archive* a, struct archive_entry* entry) {
        unpacker.apply(a, entry);
    });
    unpacker.finish();
    unpacker.reportSkipped();
}

} // namespace grocker::oci
