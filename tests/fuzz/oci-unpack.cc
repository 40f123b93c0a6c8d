// libFuzzer target for layer unpacking: each input is a layer (tar; gzip or zstd too, which
// libarchive recognises by their magic) applied onto a fresh root folder that already holds
// lower-layer content, including symbolic links that lead out of the root. Beside the root
// stands a canary folder: after every input it must be exactly as it was (same entries, modes,
// owners, times, link counts, contents), and nothing else may appear beside the root. The root
// is removed after each input.
//
// The last byte of the input (after a tar's end, where it changes nothing of the archive)
// picks the options: bit 0 overlay whiteouts, bit 1 no ownership, bit 2 check a digest (the
// input's own, so "is corrupt" must never be said). Built with -Dfuzz=true and clang;
// scripts/test-fuzz runs it (as root, so ownership, device nodes and trusted.* xattrs are tried).

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/digest.hh"
#include "grocker/oci/layer-unpacker.hh"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <vector>

using namespace grocker;
using namespace grocker::oci;
namespace fs = std::filesystem;

namespace {

fs::path work; // <tmp>/grocker-fuzz-unpack-XXXXXX, holding root/ and canary/
std::map<std::string, std::string> canaryBefore;

[[noreturn]] void fatal(const std::string& why)
{
    std::fprintf(stderr, "oci-unpack: %s\n", why.c_str());
    std::abort();
}

void check(bool ok, const std::string& what)
{
    if (!ok) fatal(concat(what, ": ", std::strerror(errno)));
}

// Every entry under `dir` (recursively, never following links) with what an escape could change.
void snapshot(const std::string& dir, const std::string& rel,
              std::map<std::string, std::string>& out)
{
    DIR* d = ::opendir(dir.c_str());
    check(d != nullptr, "unable to list " + dir);
    while (auto* ent = ::readdir(d)) {
        std::string name = ent->d_name;
        if (name == "." || name == "..") continue;
        std::string path = dir + "/" + name, key = rel + "/" + name;
        struct stat st;
        check(::lstat(path.c_str(), &st) == 0, "unable to inspect " + path);
        std::string desc =
            concat(std::oct, st.st_mode, std::dec, " ", st.st_uid, ":", st.st_gid, " n",
                   st.st_nlink, " s", st.st_size, " m", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec,
                   " c", st.st_ctim.tv_sec, ".", st.st_ctim.tv_nsec, " i", st.st_ino);
        char xattrs[4096];
        ssize_t n = ::llistxattr(path.c_str(), xattrs, sizeof xattrs);
        if (n > 0) desc += " x" + std::string(xattrs, size_t(n));
        if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t t = ::readlink(path.c_str(), target, sizeof target);
            if (t > 0) desc += " -> " + std::string(target, size_t(t));
        } else if (S_ISREG(st.st_mode)) {
            desc += " = " + readFile(path);
        }
        out[key] = desc;
        if (S_ISDIR(st.st_mode)) snapshot(path, key, out);
    }
    ::closedir(d);
}

void write(const fs::path& path, const std::string& text)
{
    AutoCloseFD fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    check(bool(fd), "unable to create " + path.string());
    writeFull(fd.get(), text, path.string());
}

// What lower layers left: ordinary content, and links out of the root that an archive may try
// to write through.
void makeRoot(const fs::path& root)
{
    check(::mkdir(root.c_str(), 0755) == 0, "unable to create " + root.string());
    check(::mkdir((root / "etc").c_str(), 0755) == 0, "mkdir etc");
    write(root / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
    check(::mkdir((root / "usr").c_str(), 0755) == 0, "mkdir usr");
    check(::mkdir((root / "usr/lib").c_str(), 0755) == 0, "mkdir usr/lib");
    write(root / "usr/lib/os-release", "ID=debian\n");
    check(::symlink("usr/lib", (root / "lib").c_str()) == 0, "symlink lib");
    check(::symlink("../canary", (root / "up").c_str()) == 0, "symlink up");
    check(::symlink((work / "canary").c_str(), (root / "abs").c_str()) == 0, "symlink abs");
    check(::symlink("../../canary/file", (root / "etc/shadow").c_str()) == 0, "symlink etc/shadow");
    check(::symlink("..", (root / "parent").c_str()) == 0, "symlink parent");
}

// Removes a tree whatever modes the layer left on its folders.
void removeTree(const std::string& path)
{
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        ::chmod(path.c_str(), 0700);
        if (DIR* d = ::opendir(path.c_str())) {
            std::vector<std::string> names;
            while (auto* ent = ::readdir(d))
                if (std::strcmp(ent->d_name, ".") && std::strcmp(ent->d_name, ".."))
                    names.emplace_back(ent->d_name);
            ::closedir(d);
            for (auto& n : names)
                removeTree(path + "/" + n);
        }
        check(::rmdir(path.c_str()) == 0, "unable to remove folder " + path);
    } else {
        check(::unlink(path.c_str()) == 0, "unable to remove " + path);
    }
}

void cleanUp()
{
    removeTree(work.string());
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***)
{
    const char* tmp = std::getenv("TMPDIR");
    work = makeTempDir(tmp && *tmp ? tmp : "/tmp", "grocker-fuzz-unpack-");
    fs::path canary = work / "canary";
    check(::mkdir(canary.c_str(), 0755) == 0, "mkdir canary");
    write(canary / "file", "canary\n");
    check(::mkdir((canary / "sub").c_str(), 0700) == 0, "mkdir canary/sub");
    write(canary / "sub/deep", "deep\n");
    check(::symlink("file", (canary / "link").c_str()) == 0, "symlink canary/link");
    snapshot(work.string(), "", canaryBefore);
    std::atexit(cleanUp);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    unsigned flags = size ? data[size - 1] : 0;
    UnpackOptions options;
    options.overlayWhiteouts = flags & 1;
    options.preserveOwnership = !(flags & 2);
    options.warn = [](const std::string&) {};
    std::optional<Digest> expected;
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    if (flags & 4) expected = sha256(bytes);

    AutoCloseFD layer(::memfd_create("layer", MFD_CLOEXEC));
    check(bool(layer), "memfd_create");
    writeFull(layer.get(), bytes, "layer");
    check(::lseek(layer.get(), 0, SEEK_SET) == 0, "lseek");

    fs::path root = work / "root";
    makeRoot(root);
    try {
        unpackLayerFd(layer.get(), "fuzz", root, options, expected);
    } catch (Error& e) {
        // The digest error starts so; an entry's name (quoted later in other errors) can hold the
        // same words.
        if (e.message().starts_with("layer fuzz is corrupt: its content has digest "))
            fatal("a layer checked against its own digest: " + e.message());
    }
    removeTree(root.string());

    std::map<std::string, std::string> after;
    snapshot(work.string(), "", after);
    if (after != canaryBefore) {
        std::string diff;
        for (auto& [k, v] : after)
            if (auto it = canaryBefore.find(k); it == canaryBefore.end() || it->second != v)
                diff += "\n  now:    " + k + " " + v;
        for (auto& [k, v] : canaryBefore)
            if (auto it = after.find(k); it == after.end() || it->second != v)
                diff += "\n  before: " + k + " " + v;
        fatal("the layer changed something outside the root:" + diff);
    }
    return 0;
}
