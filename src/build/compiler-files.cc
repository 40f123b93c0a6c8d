// The host's handling of the files of the compile pass: what a box left in its /out, what an
// index or a folder gives, copied into cache/files under its digest and checked there.

#include "compiler.hh"
#include "embedded-scripts.hh"
#include "grocker/error.hh"
#include "grocker/oci/image.hh"

#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <deque>
#include <fcntl.h>
#include <iostream>
#include <set>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace grocker::build::compiling {

namespace fs = std::filesystem;
using namespace grocker::oci;
using nlohmann::json;

bool hex64(const std::string& s)
{
    return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Copies what `fd` reads (at most maxFileSize bytes) into cache/files under its digest; an
// existing file of that digest stays. `what` names the source in errors.
Digest putFile(const Store& store, int fd, const std::string& what)
{
    fs::create_directories(filesDir(store));
    auto tmp = filesDir(store) / (".tmp-" + tempName());
    AutoCloseFD out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
    if (!out) throw SysError("unable to create '", tmp.string(), "'");
    AutoDelete removeTmp(tmp);
    Sha256 h;
    uint64_t total = 0;
    std::vector<char> buf(1 << 20);
    for (size_t n; (n = readSome(fd, buf.data(), buf.size(), what)) > 0;) {
        total += n;
        if (total > maxFileSize) throw Error(what, " is over ", maxFileSize >> 30, " GiB: refused");
        h.update(buf.data(), n);
        writeFull(out.get(), buf.data(), n, tmp.string());
    }
    if (::fsync(out.get()) < 0) throw SysError("unable to sync '", tmp.string(), "'");
    auto d = h.finish();
    auto dest = filePath(store, d);
    if (::rename(tmp.c_str(), dest.c_str()) < 0)
        throw SysError("unable to store '", dest.string(), "'");
    removeTmp.release();
    return d;
}

Digest putHostFile(const Store& store, const fs::path& path, const std::string& what,
                   bool followLinks)
{
    AutoCloseFD fd(
        ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | (followLinks ? 0 : O_NOFOLLOW)));
    struct stat st;
    if (!fd || ::fstat(fd.get(), &st) < 0 || !S_ISREG(st.st_mode))
        throw Error("unable to read ", what, ": not a readable regular file");
    return putFile(store, fd.get(), what);
}

// Opens `name` in the folder `dirFd` as a step left it: no symlink followed, no FIFO waited on,
// a regular file only.
AutoCloseFD openUntrusted(int dirFd, const std::string& name, const std::string& what)
{
    AutoCloseFD fd(::openat(dirFd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd) throw SysError("unable to read ", what);
    struct stat st;
    if (::fstat(fd.get(), &st) < 0 || !S_ISREG(st.st_mode))
        throw Error(what, " is not a regular file: refused");
    return fd;
}

// The names in a box's /out, read without following links.
std::vector<std::string> outNames(const fs::path& out, AutoCloseFD& dirFd)
{
    dirFd.reset(::open(out.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!dirFd) throw SysError("unable to open the step's output folder '", out.string(), "'");
    return listFolder(dirFd.get(), out.string());
}

// Writes a cache entry the host made.
void writeEntry(const fs::path& path, const json& j)
{
    fs::create_directories(path.parent_path());
    writeFileAtomic(path, canonical(j));
}

// Folders the sandbox's grocker user (uid 1000 inside) must write, and grocker read afterwards.
void prepareForGrocker(Context& ctx, const fs::path& dir)
{
    if (::chmod(dir.c_str(), 0755) < 0)
        throw SysError("unable to make '", dir.string(), "' readable");
    sandbox::runInUserNamespace(ctx.map, [&] {
        if (::chown(dir.c_str(), 1000, 1000) < 0)
            throw SysError("unable to give '", dir.string(), "' to user grocker");
    });
}

// Unpacks a wheel for a build environment: the archive's top and its .data/purelib and
// .data/platlib, as `pip install --target` lays them out; scripts, headers and data left out.
void extractWheel(const fs::path& wheel, const fs::path& target)
{
    std::unique_ptr<struct archive, decltype(&archive_read_free)> a(archive_read_new(),
                                                                    archive_read_free);
    archive_read_support_format_zip(a.get());
    if (archive_read_open_filename(a.get(), wheel.c_str(), 1 << 16) != ARCHIVE_OK)
        throw Error("unable to read the wheel '", wheel.string(),
                    "': ", archive_error_string(a.get()));
    struct archive_entry* e;
    int r;
    while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
        std::string path = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
        std::vector<std::string> parts;
        for (size_t start = 0; start <= path.size();) {
            auto slash = path.find('/', start);
            parts.push_back(path.substr(start, slash - start));
            if (slash == std::string::npos) break;
            start = slash + 1;
        }
        bool dir = archive_entry_filetype(e) == AE_IFDIR || path.ends_with("/");
        if (dir && !parts.empty() && parts.back().empty()) parts.pop_back();
        for (auto& p : parts)
            if (p.empty() || p == "." || p == ".." || p.find('\\') != std::string::npos)
                throw Error("the wheel '", wheel.filename().string(), "' holds the path '", path,
                            "', refused");
        if (parts.size() >= 2 && parts[0].ends_with(".data")) {
            if (parts[1] != "purelib" && parts[1] != "platlib") continue;
            parts.erase(parts.begin(), parts.begin() + 2);
            if (parts.empty()) continue;
        }
        fs::path dest = target;
        for (auto& p : parts)
            dest /= p;
        if (dir) {
            fs::create_directories(dest);
            continue;
        }
        if (archive_entry_filetype(e) != AE_IFREG)
            throw Error("the wheel '", wheel.filename().string(), "' holds '", path,
                        "', which is not a regular file");
        fs::create_directories(dest.parent_path());
        mode_t mode = (archive_entry_perm(e) & 0111) ? 0755 : 0644;
        AutoCloseFD out(
            ::open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
        if (!out) throw SysError("unable to write '", dest.string(), "'");
        const void* block;
        size_t size;
        la_int64_t offset;
        int rr;
        while ((rr = archive_read_data_block(a.get(), &block, &size, &offset)) == ARCHIVE_OK)
            writeFull(out.get(), block, size, dest.string());
        if (rr != ARCHIVE_EOF)
            throw Error("unable to read '", path, "' of the wheel '", wheel.string(),
                        "': ", archive_error_string(a.get()));
    }
    if (r != ARCHIVE_EOF)
        throw Error("the wheel '", wheel.string(),
                    "' is not a readable zip: ", archive_error_string(a.get()));
}

// Whether `file` is a wheel or an sdist of `name` `version`; throws when it is neither.
bool isSdistOf(const std::string& file, const std::string& name, const std::string& version)
{
    if (auto w = parseWheelName(file)) {
        if (normalisePythonName(w->name) == normalisePythonName(name) &&
            sameVersion(w->version, version))
            return false;
    } else if (auto v = sdistVersion(file, name); v && sameVersion(*v, version)) {
        return true;
    }
    throw Error("the file '", file.substr(0, 200), "' is not a wheel or sdist of ", name, " ",
                version);
}

} // namespace grocker::build::compiling
