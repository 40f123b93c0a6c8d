#include "unpack-paths.hh"

#include "grocker/error.hh"

#include <cerrno>
#include <climits>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

namespace grocker::oci::unpacking {

// Splits an archive path into components, resolving "." and ".." lexically, as `filepath.Clean`
// does for Docker and containerd. Returns nothing when ".." climbs above the root.
std::optional<std::vector<std::string>> splitPath(std::string_view name)
{
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= name.size()) {
        size_t end = name.find('/', start);
        if (end == std::string_view::npos) end = name.size();
        auto part = name.substr(start, end - start);
        if (part == "..") {
            if (parts.empty()) return std::nullopt;
            parts.pop_back();
        } else if (!part.empty() && part != ".")
            parts.emplace_back(part);
        start = end + 1;
    }
    return parts;
}

std::string joinPath(const std::vector<std::string>& parts, size_t count)
{
    std::string path;
    for (size_t i = 0; i < count; i++) {
        if (i) path += '/';
        path += parts[i];
    }
    return path;
}

std::string childPath(const std::string& parent, const std::string& name)
{
    return parent.empty() ? name : parent + "/" + name;
}

// The last component of a raw archive name, ignoring trailing slashes.
std::string_view lastRawComponent(std::string_view name)
{
    while (!name.empty() && name.back() == '/')
        name.remove_suffix(1);
    auto slash = name.rfind('/');
    return slash == std::string_view::npos ? name : name.substr(slash + 1);
}

std::string procFdPath(int fd)
{
    return concat("/proc/self/fd/", fd);
}

std::optional<std::string> readProcFdLink(int fd)
{
    char buf[PATH_MAX];
    ssize_t n = ::readlink(procFdPath(fd).c_str(), buf, sizeof buf);
    if (n <= 0 || size_t(n) >= sizeof buf) return std::nullopt;
    return std::string(buf, size_t(n));
}

// Names in a folder, read from a fresh fd so the caller's fd offset is left alone. They are read
// in full before anything is removed, since removing while reading may skip entries.
std::vector<std::string> listFolder(int dirFd, const std::string& path, const std::string& what)
{
    int fd = ::openat(dirFd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw SysError("layer ", what, ": unable to read folder '", path, "'");
    DIR* dir = ::fdopendir(fd);
    if (!dir) {
        ::close(fd);
        throw SysError("layer ", what, ": unable to read folder '", path, "'");
    }
    std::vector<std::string> names;
    errno = 0;
    while (auto* ent = ::readdir(dir)) {
        std::string_view name = ent->d_name;
        if (name != "." && name != "..") names.emplace_back(name);
    }
    int err = errno;
    ::closedir(dir);
    if (err) throw SysError(err, concat("layer ", what, ": unable to read folder '", path, "'"));
    return names;
}

} // namespace grocker::oci::unpacking
