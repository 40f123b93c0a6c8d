#include "grocker/oci/layer-writer.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/store.hh"
#include "grocker/oci/tar-writer.hh"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <vector>

namespace grocker::oci {

namespace fs = std::filesystem;

int64_t sourceDateEpochFromEnv()
{
    const char* v = std::getenv("SOURCE_DATE_EPOCH");
    if (!v || !*v) return 0;
    char* end = nullptr;
    errno = 0;
    long long n = std::strtoll(v, &end, 10);
    if (errno || *end || n < 0)
        throw UsageError("SOURCE_DATE_EPOCH='", v,
                         "' is not a number of seconds since 1970: unset it or fix it");
    return n;
}

std::string layerMediaType(Compression c)
{
    switch (c) {
    case Compression::Gzip:
        return std::string(media::ociLayerGzip);
    case Compression::Zstd:
        return std::string(media::ociLayerZstd);
    case Compression::None:
        break;
    }
    return std::string(media::ociLayer);
}

namespace {

bool isOverlayXattr(std::string_view name)
{
    return name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.");
}

// Only these reach a layer: file capabilities (ping, ...), user attributes and ACLs. SELinux
// labels and the like belong to the host, and overlay's own attributes to overlay.
bool keepXattr(std::string_view name)
{
    if (isOverlayXattr(name)) return false;
    return name == "security.capability" || name.starts_with("user.") ||
           name == "system.posix_acl_access" || name == "system.posix_acl_default";
}

using Xattrs = std::vector<std::pair<std::string, std::string>>;

class Walker {
  public:
    Walker(TarWriter& tar, const LayerOptions& o, fs::path root)
        : tar_(tar), opt_(o), root_(std::move(root))
    {
    }

    void walkDir(int dirFd, const std::string& hostPath, const std::string& tarPrefix)
    {
        for (auto& name : listFolder(dirFd, hostPath))
            entry(dirFd, hostPath + "/" + name, name, tarPrefix + name);
    }

    void directoryEntry(const struct stat& st, const std::string& tarPath, Xattrs xs)
    {
        TarEntry e = base(st, tarPath + "/", std::move(xs));
        e.type = TarEntry::Directory;
        tar_.writeHeader(e);
        tar_.endEntry();
        count++;
    }

    Xattrs xattrsOf(const std::string& hostPath)
    {
        bool whiteout = false, opaque = false;
        return xattrs(hostPath, whiteout, opaque);
    }

    uint64_t count = 0;

  private:
    Xattrs xattrs(const std::string& hostPath, bool& whiteout, bool& opaque)
    {
        Xattrs out;
        char list[65536];
        ssize_t n = ::llistxattr(hostPath.c_str(), list, sizeof list);
        if (n < 0) {
            if (errno == ENOTSUP || errno == ENODATA) return out;
            throw SysError("unable to list the extended attributes of '", hostPath, "'");
        }
        for (ssize_t i = 0; i < n;) {
            std::string name(list + i);
            i += ssize_t(name.size()) + 1;
            if (opt_.overlayUpper && isOverlayXattr(name)) {
                auto suffix = name.substr(name.find("overlay.") + 8);
                if (suffix == "whiteout") whiteout = true;
                if (suffix == "opaque") {
                    char v[8] = {};
                    ssize_t vn = ::lgetxattr(hostPath.c_str(), name.c_str(), v, sizeof v - 1);
                    if (vn == 1 && v[0] == 'y') opaque = true;
                }
                continue;
            }
            if (!keepXattr(name)) continue;
            std::string value(4096, '\0');
            ssize_t vn;
            while ((vn = ::lgetxattr(hostPath.c_str(), name.c_str(), value.data(), value.size())) <
                       0 &&
                   errno == ERANGE)
                value.resize(value.size() * 4);
            if (vn < 0)
                throw SysError("unable to read extended attribute '", name, "' of '", hostPath,
                               "'");
            value.resize(size_t(vn));
            out.emplace_back(name, value);
        }
        std::sort(out.begin(), out.end());
        return out;
    }

    TarEntry base(const struct stat& st, std::string tarPath, Xattrs xs)
    {
        TarEntry e;
        e.path = std::move(tarPath);
        e.mode = st.st_mode & 07777;
        if (opt_.owner) std::tie(e.uid, e.gid) = opt_.owner(st.st_uid, st.st_gid);
        e.mtime = std::min<int64_t>(st.st_mtime, opt_.sourceDateEpoch);
        if (e.mtime < 0) e.mtime = 0;
        e.xattrs = std::move(xs);
        return e;
    }

    // A .pyc file checked by its source's timestamp (PEP 552: flags 0) records that source's
    // mtime, which the layer clamps: the record is clamped the same way, so that Python still
    // takes the .pyc for the source's (Debian's packages compile theirs when installed, with
    // their sources' mtimes from the .deb, later than the default epoch). Without it, every
    // Python of the image would compile each module it imports again, at every start, and could
    // not save the result (2 s of 'pip --version' with 355 modules compiled).
    void clampPycTimestamp(char* data, size_t n) const
    {
        auto u32 = [&](size_t at) {
            return uint32_t(uint8_t(data[at])) | uint32_t(uint8_t(data[at + 1])) << 8 |
                   uint32_t(uint8_t(data[at + 2])) << 16 | uint32_t(uint8_t(data[at + 3])) << 24;
        };
        if (n < 16 || data[2] != '\r' || data[3] != '\n' || u32(4) != 0) return;
        int64_t clamped = std::max<int64_t>(0, std::min<int64_t>(u32(8), opt_.sourceDateEpoch));
        for (size_t i = 0; i < 4; i++)
            data[8 + i] = char(uint8_t(uint64_t(clamped) >> (8 * i)));
    }

    void whiteoutEntry(const std::string& tarPath)
    {
        auto slash = tarPath.rfind('/');
        std::string dir = slash == std::string::npos ? "" : tarPath.substr(0, slash + 1);
        std::string name = slash == std::string::npos ? tarPath : tarPath.substr(slash + 1);
        TarEntry e;
        e.path = dir + ".wh." + name;
        e.mode = 0;
        e.mtime = std::min<int64_t>(0, opt_.sourceDateEpoch);
        tar_.writeHeader(e);
        tar_.endEntry();
        count++;
    }

    void entry(int dirFd, const std::string& hostPath, const std::string& name,
               const std::string& tarPath)
    {
        struct stat st;
        if (::fstatat(dirFd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0)
            throw SysError("unable to stat '", hostPath, "'");
        if (opt_.overlayUpper && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
            whiteoutEntry(tarPath);
            return;
        }
        bool whiteout = false, opaque = false;
        Xattrs xs = xattrs(hostPath, whiteout, opaque);
        if (whiteout && S_ISREG(st.st_mode)) {
            whiteoutEntry(tarPath);
            return;
        }
        switch (st.st_mode & S_IFMT) {
        case S_IFDIR: {
            directoryEntry(st, tarPath, std::move(xs));
            if (opaque) {
                TarEntry e;
                e.path = tarPath + "/.wh..wh..opq";
                e.mode = 0;
                tar_.writeHeader(e);
                tar_.endEntry();
                count++;
            }
            AutoCloseFD sub(
                ::openat(dirFd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!sub) throw SysError("unable to open folder '", hostPath, "'");
            walkDir(sub.get(), hostPath, tarPath + "/");
            return;
        }
        case S_IFREG: {
            if (st.st_nlink > 1) {
                auto key = std::make_pair(st.st_dev, st.st_ino);
                auto [it, fresh] = links_.emplace(key, tarPath);
                if (!fresh) {
                    TarEntry e = base(st, tarPath, xs);
                    e.type = TarEntry::HardLink;
                    e.linkTarget = it->second;
                    tar_.writeHeader(e);
                    tar_.endEntry();
                    count++;
                    return;
                }
            }
            TarEntry e = base(st, tarPath, xs);
            e.size = uint64_t(st.st_size);
            AutoCloseFD fd(::openat(dirFd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
            if (!fd) throw SysError("unable to open '", hostPath, "'");
            tar_.writeHeader(e);
            uint64_t left = e.size;
            bool first = true;
            while (left) {
                size_t n = readSome(fd.get(), buf_.data(), std::min<uint64_t>(left, buf_.size()),
                                    hostPath);
                if (!n) break;
                if (first && name.ends_with(".pyc")) clampPycTimestamp(buf_.data(), n);
                first = false;
                tar_.writeData(buf_.data(), n);
                left -= n;
            }
            tar_.endEntry(); // throws if the file shrank while it was read
            count++;
            return;
        }
        case S_IFLNK: {
            TarEntry e = base(st, tarPath, xs);
            e.type = TarEntry::Symlink;
            std::string target(size_t(st.st_size ? st.st_size : 4096) + 1, '\0');
            ssize_t n = ::readlinkat(dirFd, name.c_str(), target.data(), target.size());
            if (n < 0) throw SysError("unable to read symlink '", hostPath, "'");
            target.resize(size_t(n));
            e.linkTarget = target;
            tar_.writeHeader(e);
            tar_.endEntry();
            count++;
            return;
        }
        case S_IFCHR:
        case S_IFBLK:
        case S_IFIFO: {
            TarEntry e = base(st, tarPath, xs);
            e.type = S_ISCHR(st.st_mode)   ? TarEntry::CharDevice
                     : S_ISBLK(st.st_mode) ? TarEntry::BlockDevice
                                           : TarEntry::Fifo;
            e.devMajor = major(st.st_rdev);
            e.devMinor = minor(st.st_rdev);
            tar_.writeHeader(e);
            tar_.endEntry();
            count++;
            return;
        }
        default:
            // Sockets cannot be put in a tar; they are runtime objects anyway.
            return;
        }
    }

    TarWriter& tar_;
    const LayerOptions& opt_;
    fs::path root_;
    std::map<std::pair<dev_t, ino_t>, std::string> links_;
    std::vector<char> buf_ = std::vector<char>(1 << 20);
};

std::string normaliseTarget(const std::string& target)
{
    if (target.empty() || target[0] != '/')
        throw UsageError("layer target '", target,
                         "' must be an absolute path in the image, such as /app");
    std::string out;
    for (auto& part : fs::path(target)) {
        auto p = part.string();
        if (p == "/" || p == "." || p.empty()) continue;
        if (p == "..") throw UsageError("layer target '", target, "' must not contain '..'");
        out += p + "/";
    }
    return out; // "" for "/", else "a/b/"
}

} // namespace

uint64_t writeLayerTar(Sink& out, const fs::path& dir, const std::string& target,
                       const LayerOptions& options)
{
    std::string prefix = normaliseTarget(target);
    AutoCloseFD root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root) throw SysError("unable to open folder '", dir.string(), "'");
    TarWriter tar(out);
    Walker w(tar, options, dir);
    if (!prefix.empty()) {
        // The folders leading to the target, then the target itself with the source's metadata.
        struct stat st;
        if (::fstat(root.get(), &st) < 0) throw SysError("unable to stat '", dir.string(), "'");
        struct stat parent = st;
        parent.st_mode = S_IFDIR | 0755;
        parent.st_uid = parent.st_gid = 0;
        std::string path;
        auto parts = prefix.substr(0, prefix.size() - 1);
        for (size_t pos = 0;;) {
            auto slash = parts.find('/', pos);
            path = parts.substr(0, slash);
            bool last = slash == std::string::npos;
            w.directoryEntry(last ? st : parent, path, last ? w.xattrsOf(dir.string()) : Xattrs{});
            if (last) break;
            pos = slash + 1;
        }
    }
    w.walkDir(root.get(), dir.string(), prefix);
    tar.finish();
    return w.count;
}

LayerResult writeLayer(Store& store, const fs::path& dir, const std::string& target,
                       const LayerOptions& options)
{
    auto blob = store.newBlob();
    auto compressor = makeCompressor(*blob, options.compress);
    HashingSink tarHash(*compressor);
    LayerResult r;
    try {
        r.entries = writeLayerTar(tarHash, dir, target, options);
    } catch (Error& e) {
        e.addContext("while writing a layer from '" + dir.string() + "'");
        throw;
    }
    r.diffId = tarHash.digest();
    r.descriptor = blob->commit(layerMediaType(options.compress.compression));
    return r;
}

} // namespace grocker::oci
