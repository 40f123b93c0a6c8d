// Tests of sandbox/copy-root.cc without namespaces: the copy of the lower dirs (whiteouts, opaque
// folders, hardlinks) and the snapshot of a root, what it records and how the diff is written.

#include "copy-root.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "helpers.hh"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

using namespace grocker;
using namespace grocker::sandbox;
using grocker::test::TempDir;
using grocker::test::writeTestFile;
namespace fs = std::filesystem;

namespace {

AutoCloseFD openDir(const fs::path& p)
{
    AutoCloseFD fd(::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) throw SysError("unable to open '", p.string(), "'");
    return fd;
}

// Every path under `root`, relative, sorted, folders with a trailing '/'.
std::vector<std::string> tree(const fs::path& root)
{
    std::vector<std::string> paths;
    for (auto& e : fs::recursive_directory_iterator(root)) {
        auto rel = e.path().lexically_relative(root).string();
        paths.push_back(e.is_directory() && !e.is_symlink() ? rel + "/" : rel);
    }
    std::sort(paths.begin(), paths.end());
    return paths;
}

// Overlay's whiteout in either form: a 0/0 character device, or (where a user namespace may not
// make one) an empty file marked user.overlay.whiteout.
bool isWhiteout(const fs::path& p)
{
    struct stat st;
    if (::lstat(p.c_str(), &st) < 0) return false;
    if (S_ISCHR(st.st_mode)) return st.st_rdev == makedev(0, 0);
    return S_ISREG(st.st_mode) && st.st_size == 0 &&
           ::lgetxattr(p.c_str(), "user.overlay.whiteout", nullptr, 0) >= 0;
}

bool isOpaque(const fs::path& p)
{
    char v[2];
    return ::lgetxattr(p.c_str(), "user.overlay.opaque", v, sizeof v) == 1 && v[0] == 'y';
}

// A layer's whiteout that needs no privilege.
void writeXattrWhiteout(const fs::path& p)
{
    writeTestFile(p, "");
    if (::setxattr(p.c_str(), "user.overlay.whiteout", "y", 1, 0) < 0)
        throw SysError("unable to mark ", p.string());
}

// A root with a few files, its snapshot, and an upper dir to write the diff into.
struct Root {
    TempDir dir;
    fs::path root = dir / "root", upper = dir / "upper";
    RootSnapshot snapshot;

    Root()
    {
        fs::create_directories(root / "etc/apt");
        fs::create_directories(root / "usr/bin");
        fs::create_directories(upper);
        writeTestFile(root / "etc/hostname", "box\n");
        writeTestFile(root / "etc/resolv.conf", "nameserver 10.0.0.1\n");
        writeTestFile(root / "etc/apt/sources.list",
                      "deb http://deb.debian.org/debian bookworm main\n");
        writeTestFile(root / "usr/bin/tool", "#!/bin/sh\n", 0755);
        fs::create_symlink("tool", root / "usr/bin/alias");
    }
    void take(std::set<std::string> skip = {})
    {
        snapshot = RootSnapshot::take(openDir(root).get(), std::move(skip));
        // Without waiting, a change in the clock tick of the snapshot would keep its ctime.
        snapshot.settle(openDir(upper).get());
    }
    std::vector<std::string> diff()
    {
        snapshot.writeDiff(openDir(root).get(), openDir(upper).get());
        return tree(upper);
    }
};

} // namespace

TEST(RootSnapshot, NothingChangedWritesNothing)
{
    Root r;
    r.take();
    EXPECT_TRUE(r.diff().empty());
}

TEST(RootSnapshot, SettleLeavesNoProbe)
{
    Root r;
    r.take();
    EXPECT_TRUE(tree(r.upper).empty());
}

TEST(RootSnapshot, NewAndChangedFilesWithTheirFolders)
{
    Root r;
    r.take();
    writeTestFile(r.root / "etc/apt/new.list", "deb http://example.invalid/ stable main\n");
    writeTestFile(r.root / "etc/hostname", "other\n");
    fs::create_directories(r.root / "opt/app");
    writeTestFile(r.root / "opt/app/run", "x", 0700);
    EXPECT_EQ(r.diff(),
              (std::vector<std::string>{"etc/", "etc/apt/", "etc/apt/new.list", "etc/hostname",
                                        "opt/", "opt/app/", "opt/app/run"}));
    EXPECT_EQ(readFile(r.upper / "etc/hostname"), "other\n");
    EXPECT_EQ(fs::status(r.upper / "opt/app/run").permissions() & fs::perms::all,
              fs::perms::owner_all);
    EXPECT_FALSE(isOpaque(r.upper / "opt")) << "a new folder hides nothing";
}

TEST(RootSnapshot, MetadataChangeCopiesTheFile)
{
    Root r;
    r.take();
    fs::permissions(r.root / "usr/bin/tool", fs::perms::owner_all);
    EXPECT_EQ(r.diff(), (std::vector<std::string>{"usr/", "usr/bin/", "usr/bin/tool"}));
    EXPECT_EQ(fs::status(r.upper / "usr/bin/tool").permissions() & fs::perms::all,
              fs::perms::owner_all);
}

TEST(RootSnapshot, RemovedEntriesBecomeOneWhiteoutEach)
{
    Root r;
    r.take();
    fs::remove(r.root / "usr/bin/alias");
    fs::remove_all(r.root / "etc/apt");
    EXPECT_EQ(r.diff(),
              (std::vector<std::string>{"etc/", "etc/apt", "usr/", "usr/bin/", "usr/bin/alias"}));
    EXPECT_TRUE(isWhiteout(r.upper / "etc/apt")) << "one whiteout for the folder and all it held";
    EXPECT_TRUE(isWhiteout(r.upper / "usr/bin/alias"));
}

TEST(RootSnapshot, ReplacedFolderIsOpaque)
{
    Root r;
    r.take();
    fs::remove_all(r.root / "etc/apt");
    fs::create_directories(r.root / "etc/apt");
    writeTestFile(r.root / "etc/apt/only.list", "");
    EXPECT_EQ(r.diff(), (std::vector<std::string>{"etc/", "etc/apt/", "etc/apt/only.list"}));
    EXPECT_TRUE(isOpaque(r.upper / "etc/apt"));
    EXPECT_FALSE(isOpaque(r.upper / "etc"));
}

TEST(RootSnapshot, ReplacedFileOfAnotherTypeIsCopied)
{
    Root r;
    r.take();
    fs::remove(r.root / "usr/bin/alias");
    writeTestFile(r.root / "usr/bin/alias", "now a file\n");
    EXPECT_EQ(r.diff(), (std::vector<std::string>{"usr/", "usr/bin/", "usr/bin/alias"}));
    EXPECT_EQ(readFile(r.upper / "usr/bin/alias"), "now a file\n");
}

TEST(RootSnapshot, SkippedPathsAreNeitherRecordedNorDiffed)
{
    Root r;
    r.take({"etc/resolv.conf"});
    writeTestFile(r.root / "etc/resolv.conf", "nameserver 10.9.9.9\n");
    EXPECT_TRUE(r.diff().empty());
    // Gone, it leaves no whiteout; its folder's own times changed, though.
    fs::remove(r.root / "etc/resolv.conf");
    EXPECT_EQ(r.diff(), (std::vector<std::string>{"etc/"}));
}

TEST(RootSnapshot, WriteDiffWithoutSnapshot)
{
    Root r;
    try {
        r.snapshot.writeDiff(openDir(r.root).get(), openDir(r.upper).get());
        FAIL() << "no error";
    } catch (Error& e) {
        EXPECT_STREQ(e.what(), "no snapshot of the root was taken");
    }
}

TEST(CopyLowerDirs, StacksLayersAsOverlayShowsThem)
{
    TempDir dir;
    auto top = dir / "top", base = dir / "base", merged = dir / "merged";
    fs::create_directories(merged);
    writeTestFile(base / "etc/keep", "base\n");
    writeTestFile(base / "etc/gone", "base\n");
    writeTestFile(base / "etc/over", "base\n");
    writeTestFile(base / "var/cache/old", "base\n");
    writeTestFile(top / "etc/over", "top\n");
    writeTestFile(top / "etc/new", "top\n");
    writeXattrWhiteout(top / "etc/gone");
    fs::create_directories(top / "var/cache");
    if (::setxattr((top / "var/cache").c_str(), "user.overlay.opaque", "y", 1, 0) < 0)
        throw SysError("setxattr");
    writeTestFile(top / "var/cache/fresh", "top\n");
    writeTestFile(top / "bin/a", "same inode\n");
    fs::create_hard_link(top / "bin/a", top / "bin/b");
    fs::create_symlink("a", top / "bin/c");

    copyLowerDirs({top, base}, openDir(merged).get());
    EXPECT_EQ(tree(merged), (std::vector<std::string>{"bin/", "bin/a", "bin/b", "bin/c", "etc/",
                                                      "etc/keep", "etc/new", "etc/over", "var/",
                                                      "var/cache/", "var/cache/fresh"}));
    EXPECT_EQ(readFile(merged / "etc/over"), "top\n");
    EXPECT_TRUE(fs::equivalent(merged / "bin/a", merged / "bin/b")) << "a hardlink stays one";
    EXPECT_EQ(fs::read_symlink(merged / "bin/c"), "a");
    EXPECT_FALSE(isOpaque(merged / "var/cache")) << "overlay's own marks are not copied";
}

TEST(CopyLowerDirs, MissingLayerNamesIt)
{
    TempDir dir;
    fs::create_directories(dir / "merged");
    try {
        copyLowerDirs({dir / "nope"}, openDir(dir / "merged").get());
        FAIL() << "no error";
    } catch (Error& e) {
        auto layer = (dir / "nope").string();
        EXPECT_EQ(std::string(e.what()), "while copying the layer in '" + layer +
                                             "': unable to open folder '" + layer +
                                             "': No such file or directory");
    }
}
