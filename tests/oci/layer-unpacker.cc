#include "grocker/oci/layer-unpacker.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/image-summary.hh"
#include "grocker/oci/layer-files.hh"
#include "grocker/oci/store.hh"
#include "oci-helpers.hh"

#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <locale.h>
#include <memory>
#include <sched.h>
#include <set>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utility>
#include <vector>
#include <zlib.h>

namespace grocker::oci {
namespace {

namespace fs = std::filesystem;
using test::errorOf;
using test::TempDir;
using test::writeTestFile;

constexpr int64_t defaultMtime = 1700000000;

// One archive entry, as the layers of these tests describe them.
struct Entry {
    std::string name;
    unsigned type = AE_IFREG;
    std::string content;
    unsigned mode = 0644;
    int64_t uid = 0;
    int64_t gid = 0;
    int64_t mtime = defaultMtime;
    std::string link; // symlink target, or hard link target when hardLink
    bool hardLink = false;
    unsigned devMajor = 0;
    unsigned devMinor = 0;
    std::vector<std::pair<std::string, std::string>> xattrs;
};

enum class Filter { none, gzip, zstd };

// Writes the entries as they are, in order, with libarchive's pax writer (which keeps hostile
// names such as "../x" verbatim).
void writeLayer(const fs::path& file, const std::vector<Entry>& entries,
                Filter filter = Filter::none)
{
    // Names are UTF-8, as in the layers of any registry; the tests themselves run in the C
    // locale, which the unpacker must cope with.
    static locale_t utf8 = ::newlocale(LC_ALL_MASK, "C.UTF-8", locale_t(0));
    locale_t previous = ::uselocale(utf8);
    struct RestoreLocale {
        locale_t previous;
        ~RestoreLocale() { ::uselocale(previous); }
    } restore{previous};
    std::unique_ptr<struct archive, decltype(&archive_write_free)> a(archive_write_new(),
                                                                     archive_write_free);
    auto check = [&](int r, const char* what) {
        if (r != ARCHIVE_OK)
            throw std::runtime_error(concat(what, ": ", archive_error_string(a.get())));
    };
    check(archive_write_set_format_pax_restricted(a.get()), "pax");
    if (filter == Filter::gzip) check(archive_write_add_filter_gzip(a.get()), "gzip");
    if (filter == Filter::zstd) check(archive_write_add_filter_zstd(a.get()), "zstd");
    check(archive_write_open_filename(a.get(), file.c_str()), "open");
    for (auto& e : entries) {
        std::unique_ptr<struct archive_entry, decltype(&archive_entry_free)> ae(archive_entry_new(),
                                                                                archive_entry_free);
        archive_entry_set_pathname(ae.get(), e.name.c_str());
        archive_entry_set_filetype(ae.get(), e.hardLink ? AE_IFREG : e.type);
        archive_entry_set_perm(ae.get(), e.mode);
        archive_entry_set_uid(ae.get(), e.uid);
        archive_entry_set_gid(ae.get(), e.gid);
        archive_entry_set_mtime(ae.get(), e.mtime, 0);
        archive_entry_set_size(
            ae.get(), e.type == AE_IFREG && !e.hardLink ? la_int64_t(e.content.size()) : 0);
        if (e.hardLink)
            archive_entry_set_hardlink(ae.get(), e.link.c_str());
        else if (e.type == AE_IFLNK)
            archive_entry_set_symlink(ae.get(), e.link.c_str());
        if (e.type == AE_IFCHR || e.type == AE_IFBLK) {
            archive_entry_set_rdevmajor(ae.get(), e.devMajor);
            archive_entry_set_rdevminor(ae.get(), e.devMinor);
        }
        for (auto& [key, value] : e.xattrs)
            archive_entry_xattr_add_entry(ae.get(), key.c_str(), value.data(), value.size());
        check(archive_write_header(a.get(), ae.get()), e.name.c_str());
        if (!e.content.empty() &&
            archive_write_data(a.get(), e.content.data(), e.content.size()) < 0)
            throw std::runtime_error(
                concat("data of ", e.name, ": ", archive_error_string(a.get())));
    }
    check(archive_write_close(a.get()), "close");
}

Entry dir(std::string name, unsigned mode = 0755)
{
    return {.name = std::move(name), .type = AE_IFDIR, .mode = mode};
}
Entry file(std::string name, std::string content = "", unsigned mode = 0644)
{
    return {.name = std::move(name), .content = std::move(content), .mode = mode};
}
Entry symlink(std::string name, std::string target)
{
    return {.name = std::move(name), .type = AE_IFLNK, .mode = 0777, .link = std::move(target)};
}
Entry hardLink(std::string name, std::string target)
{
    return {.name = std::move(name), .link = std::move(target), .hardLink = true};
}

struct stat lstatOf(const fs::path& path)
{
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) throw SysError("lstat '", path.string(), "'");
    return st;
}

bool existsNoFollow(const fs::path& path)
{
    return fs::exists(fs::symlink_status(path));
}

// Everything that can be seen of a tree without following symlinks, one line per entry; used
// to prove that nothing outside the root changed.
std::string describeTree(const fs::path& top, const std::set<std::string>& skip)
{
    std::vector<std::string> lines;
    for (auto it = fs::recursive_directory_iterator(top); it != fs::recursive_directory_iterator();
         ++it) {
        std::string rel = it->path().lexically_relative(top).string();
        if (it.depth() == 0 && skip.contains(rel)) {
            it.disable_recursion_pending();
            continue;
        }
        struct stat st = lstatOf(it->path());
        std::string line =
            concat(rel, " mode=", std::oct, st.st_mode, std::dec, " owner=", st.st_uid, ":",
                   st.st_gid, " links=", st.st_nlink, " size=", st.st_size,
                   " mtime=", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
        if (S_ISLNK(st.st_mode)) line += " -> " + fs::read_symlink(it->path()).string();
        if (S_ISREG(st.st_mode)) line += " content=" + readFile(it->path());
        lines.push_back(line);
    }
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (auto& l : lines)
        out += l + "\n";
    return out;
}

// Each test unpacks into <tmp>/root, beside a canary file and a canary folder that must come
// out of every case exactly as they went in.
class LayerUnpacker : public ::testing::Test {
  protected:
    void SetUp() override
    {
        fs::create_directories(root);
        fs::create_directories(tmp / "layers");
        writeTestFile(canary, "canary\n", 0644);
        writeTestFile(canaryDir / "inside", "inside\n", 0600);
        ::chmod(canaryDir.c_str(), 0750);
        outsideBefore = describeTree(tmp.path(), {"root", "layers"});
    }

    void TearDown() override
    {
        EXPECT_EQ(describeTree(tmp.path(), {"root", "layers"}), outsideBefore)
            << "something outside the root changed";
        for (auto name : {"escape", "x", "y"})
            EXPECT_FALSE(existsNoFollow(tmp.path().parent_path() / name))
                << name << " was created beside the test folder";
    }

    fs::path layer(const std::string& name) const { return tmp / "layers" / name; }

    void unpack(const fs::path& layerFile, UnpackOptions options = {},
                const std::optional<Digest>& digest = {})
    {
        options.warn = [this](const std::string& message) { warnings.push_back(message); };
        unpackLayer(layerFile, root, options, digest);
    }

    // Writes a layer from the entries and unpacks it, returning the error text or "(no error)".
    std::string unpackEntries(const std::string& name, const std::vector<Entry>& entries)
    {
        writeLayer(layer(name), entries);
        return errorOf([&] { unpack(layer(name)); });
    }

    TempDir tmp;
    fs::path root = tmp / "root";
    fs::path canary = tmp / "canary";
    fs::path canaryDir = tmp / "canary-dir";
    std::string outsideBefore;
    std::vector<std::string> warnings;
};

// --- normal layers

TEST_F(LayerUnpacker, UnpacksEveryKindOfEntry)
{
    Entry roDir = dir("srv/ro/", 0555);
    roDir.uid = roDir.gid = 1000;
    roDir.mtime = 1500000000;
    Entry inside = file("srv/ro/inside", "in a read-only folder\n", 0600);
    inside.uid = inside.gid = 1000;
    Entry hostname = file("etc/hostname", "box\n");
    hostname.mtime = 1600000000;
    Entry tagged = file("etc/tagged", "x");
    tagged.xattrs = {{"user.foo", "bar"}};
    Entry sudo = file("usr/bin/sudo", "#!/bin/sh\n", 04755);
    Entry shared = dir("srv/shared/", 03775);
    Entry link = symlink("home/user/up", "../..");
    link.uid = link.gid = 1000;
    link.mtime = 1400000000;
    Entry fifo{.name = "run/fifo", .type = AE_IFIFO, .mode = 0620};
    Entry null{.name = "dev/null", .type = AE_IFCHR, .mode = 0666, .devMajor = 1, .devMinor = 3};
    writeLayer(layer("l1"), {dir("./"), dir("etc/"), hostname, tagged, sudo, roDir, inside, shared,
                             symlink("bin", "usr/bin"), symlink("abs", "/etc/../nowhere"),
                             hardLink("usr/bin/sudoedit", "usr/bin/sudo"), dir("home/user/", 0750),
                             link, fifo, null});
    unpack(layer("l1"));

    EXPECT_EQ(readFile(root / "etc/hostname"), "box\n");
    EXPECT_EQ(lstatOf(root / "etc/hostname").st_mode & 07777, 0644u);
    EXPECT_EQ(lstatOf(root / "etc/hostname").st_mtim.tv_sec, 1600000000);
    EXPECT_EQ(lstatOf(root / "usr/bin/sudo").st_mode & 07777, 04755u);
    EXPECT_EQ(lstatOf(root / "srv/shared").st_mode & 07777, 03775u);
    // Parent folders the archive does not list are made 0755.
    EXPECT_EQ(lstatOf(root / "usr").st_mode & 07777, 0755u);
    EXPECT_EQ(lstatOf(root / "usr/bin").st_mode & 07777, 0755u);

    // The read-only folder got its content, then its mode, owner and mtime.
    auto ro = lstatOf(root / "srv/ro");
    EXPECT_EQ(ro.st_mode & 07777, 0555u);
    EXPECT_EQ(ro.st_uid, 1000u);
    EXPECT_EQ(ro.st_gid, 1000u);
    EXPECT_EQ(ro.st_mtim.tv_sec, 1500000000);
    EXPECT_EQ(readFile(root / "srv/ro/inside"), "in a read-only folder\n");
    EXPECT_EQ(lstatOf(root / "srv/ro/inside").st_uid, 1000u);
    EXPECT_EQ(lstatOf(root / "srv/ro/inside").st_mode & 07777, 0600u);

    EXPECT_EQ(fs::read_symlink(root / "bin"), "usr/bin");
    EXPECT_EQ(fs::read_symlink(root / "abs"), "/etc/../nowhere");
    auto up = lstatOf(root / "home/user/up");
    EXPECT_TRUE(S_ISLNK(up.st_mode));
    EXPECT_EQ(up.st_uid, 1000u);
    EXPECT_EQ(up.st_mtim.tv_sec, 1400000000);
    EXPECT_EQ(lstatOf(root / "home/user").st_mode & 07777, 0750u);

    EXPECT_EQ(lstatOf(root / "usr/bin/sudoedit").st_ino, lstatOf(root / "usr/bin/sudo").st_ino);
    EXPECT_EQ(lstatOf(root / "usr/bin/sudo").st_nlink, 2u);

    EXPECT_TRUE(S_ISFIFO(lstatOf(root / "run/fifo").st_mode));
    EXPECT_EQ(lstatOf(root / "run/fifo").st_mode & 07777, 0620u);
    auto dev = lstatOf(root / "dev/null");
    EXPECT_TRUE(S_ISCHR(dev.st_mode));
    EXPECT_EQ(dev.st_rdev, makedev(1, 3));
    EXPECT_EQ(dev.st_mode & 07777, 0666u);

    char value[16];
    ssize_t n = ::getxattr((root / "etc/tagged").c_str(), "user.foo", value, sizeof value);
    ASSERT_EQ(n, 3) << std::strerror(errno);
    EXPECT_EQ(std::string(value, 3), "bar");
    EXPECT_EQ(lstatOf(root).st_mode & 07777, 0755u);
    EXPECT_TRUE(warnings.empty());
}

TEST_F(LayerUnpacker, WhiteoutRemovesWhatLowerLayersLeft)
{
    writeLayer(layer("l1"), {file("file", "old"), file("dir/a/b", "b"), file("keep", "k")});
    writeLayer(layer("l2"), {file(".wh.file"), file(".wh.dir")});
    unpack(layer("l1"));
    unpack(layer("l2"));
    EXPECT_FALSE(existsNoFollow(root / "file"));
    EXPECT_FALSE(existsNoFollow(root / "dir"));
    EXPECT_FALSE(existsNoFollow(root / ".wh.file"));
    EXPECT_FALSE(existsNoFollow(root / ".wh.dir"));
    EXPECT_EQ(readFile(root / "keep"), "k");
}

TEST_F(LayerUnpacker, WhiteoutDoesNotHideAnEntryOfItsOwnLayer)
{
    // image-spec: "Files that are present in the same layer as a whiteout file can only be
    // hidden by opaque whiteout files."
    EXPECT_EQ(unpackEntries("l1", {file("a", "mine"), file(".wh.a")}), "(no error)");
    EXPECT_EQ(readFile(root / "a"), "mine");
    EXPECT_FALSE(existsNoFollow(root / ".wh.a"));
}

TEST_F(LayerUnpacker, OpaqueMarkerAfterNewEntriesKeepsThem)
{
    writeLayer(layer("l1"), {file("dir/old", "old"), file("dir/sub/old2", "old"),
                             file("dir/gone/x", "x"), file("other/keep", "k")});
    // The marker comes last, and dir/sub is not listed: its lower content must still go.
    writeLayer(layer("l2"), {dir("dir/"), file("dir/new", "new"), file("dir/sub/new2", "new"),
                             file("dir/.wh..wh..opq")});
    unpack(layer("l1"));
    unpack(layer("l2"));
    EXPECT_EQ(readFile(root / "dir/new"), "new");
    EXPECT_EQ(readFile(root / "dir/sub/new2"), "new");
    EXPECT_FALSE(existsNoFollow(root / "dir/old"));
    EXPECT_FALSE(existsNoFollow(root / "dir/sub/old2"));
    EXPECT_FALSE(existsNoFollow(root / "dir/gone"));
    EXPECT_FALSE(existsNoFollow(root / "dir/.wh..wh..opq"));
    EXPECT_EQ(readFile(root / "other/keep"), "k");
}

TEST_F(LayerUnpacker, OpaqueMarkerFirstEmptiesTheFolder)
{
    writeLayer(layer("l1"), {file("dir/old", "old"), file("dir/sub/old2", "old")});
    writeLayer(layer("l2"), {dir("dir/"), file("dir/.wh..wh..opq"), file("dir/new", "new")});
    unpack(layer("l1"));
    unpack(layer("l2"));
    std::set<std::string> names;
    for (auto& e : fs::directory_iterator(root / "dir"))
        names.insert(e.path().filename());
    EXPECT_EQ(names, std::set<std::string>{"new"});
}

TEST_F(LayerUnpacker, FileReplacesFolderAndFolderReplacesFile)
{
    writeLayer(layer("l1"), {dir("a/"), file("a/child", "c"), file("b", "file b")});
    writeLayer(layer("l2"), {file("a", "now a file"), dir("b/", 0700), file("b/c", "in b")});
    unpack(layer("l1"));
    unpack(layer("l2"));
    EXPECT_EQ(readFile(root / "a"), "now a file");
    EXPECT_TRUE(fs::is_directory(fs::symlink_status(root / "b")));
    EXPECT_EQ(lstatOf(root / "b").st_mode & 07777, 0700u);
    EXPECT_EQ(readFile(root / "b/c"), "in b");
}

TEST_F(LayerUnpacker, FolderOverFolderKeepsItsContentAndTakesTheNewMetadata)
{
    writeLayer(layer("l1"), {dir("d/"), file("d/old", "old")});
    Entry d = dir("d/", 0710);
    d.uid = 1000;
    d.gid = 1001;
    writeLayer(layer("l2"), {d});
    unpack(layer("l1"));
    unpack(layer("l2"));
    EXPECT_EQ(readFile(root / "d/old"), "old");
    auto st = lstatOf(root / "d");
    EXPECT_EQ(st.st_mode & 07777, 0710u);
    EXPECT_EQ(st.st_uid, 1000u);
    EXPECT_EQ(st.st_gid, 1001u);
}

TEST_F(LayerUnpacker, ReadsGzipAndZstdLayersAndChecksTheirDigest)
{
    for (auto [filter, name, magic] :
         {std::tuple{Filter::gzip, "gz", std::string("\x1f\x8b", 2)},
          std::tuple{Filter::zstd, "zst", std::string("\x28\xb5\x2f\xfd", 4)}}) {
        SCOPED_TRACE(name);
        writeLayer(layer(name), {file(concat("from-", name), name)}, filter);
        std::string bytes = readFile(layer(name));
        ASSERT_EQ(bytes.substr(0, magic.size()), magic);
        unpack(layer(name), {}, sha256(bytes));
        EXPECT_EQ(readFile(root / concat("from-", name)), name);
    }
}

// `data` as one gzip member (zlib's deflate with a gzip wrapper).
std::string gzipMember(const std::string& data)
{
    z_stream z{};
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("deflateInit2");
    std::string out(deflateBound(&z, data.size()) + 64, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = uInt(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = uInt(out.size());
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

// gzip allows several members one after the other (what `cat a.gz b.gz` makes, and what
// parallel compressors write): the layer is their concatenation. Bytes after the last member
// are left alone, as gzip and libarchive leave them; the digest still covers them.
TEST_F(LayerUnpacker, ReadsGzipLayersOfSeveralMembersAndIgnoresWhatFollowsTheLast)
{
    std::string big;
    for (int i = 0; i < 30000; i++)
        big += concat(i * 7919, "\n");
    writeLayer(layer("plain"), {file("big", big), file("after", "x")});
    std::string tar = readFile(layer("plain"));
    // Split in the middle of a file's data, not on a tar block.
    std::string members = gzipMember(tar.substr(0, 70001)) + gzipMember(tar.substr(70001));
    writeTestFile(layer("members"), members);
    unpack(layer("members"), {}, sha256(members));
    EXPECT_EQ(readFile(root / "big"), big);
    EXPECT_EQ(readFile(root / "after"), "x");

    std::string trailing = gzipMember(tar) + std::string(100, '\0') + "JUNK";
    writeTestFile(layer("trailing"), trailing);
    fs::remove_all(root);
    fs::create_directories(root);
    unpack(layer("trailing"), {}, sha256(trailing));
    EXPECT_EQ(readFile(root / "big"), big);
    // A damaged deflate stream is an error that says so, with or without a known digest.
    std::string broken = gzipMember(tar);
    for (size_t i = 20; i < 60; i++)
        broken[i] = char(0xff);
    writeTestFile(layer("broken"), broken);
    EXPECT_NE(errorOf([&] { unpack(layer("broken")); }).find("the gzip stream is broken"),
              std::string::npos);
}

TEST_F(LayerUnpacker, DigestMismatchIsAnError)
{
    writeLayer(layer("l1"), {file("a", "a")}, Filter::gzip);
    Digest actual = sha256(readFile(layer("l1")));
    Digest expected = sha256("something else");
    EXPECT_EQ(errorOf([&] { unpack(layer("l1"), {}, expected); }),
              concat("layer ", layer("l1").string(), " is corrupt: its content has digest ",
                     actual.str(), " but ", expected.str(),
                     " was expected; remove it and pull again"));
}

TEST_F(LayerUnpacker, TruncatedLayerIsReportedAsCorruptWhenItsDigestIsKnown)
{
    std::string big;
    for (int i = 0; i < 20000; i++)
        big += concat(i * 7919, "\n");
    writeLayer(layer("full"), {file("big", big), file("after", "x")}, Filter::gzip);
    std::string bytes = readFile(layer("full"));
    Digest expected = sha256(bytes);
    std::string cut = bytes.substr(0, bytes.size() / 2);
    writeTestFile(layer("cut"), cut);
    EXPECT_EQ(errorOf([&] { unpack(layer("cut"), {}, expected); }),
              concat("layer ", layer("cut").string(), " is corrupt: its content has digest ",
                     sha256(cut).str(), " but ", expected.str(),
                     " was expected; remove it and pull again"));
    // Without a digest the symptom is all there is to tell.
    EXPECT_NE(errorOf([&] {
                  unpack(layer("cut"));
              }).find("layer " + layer("cut").string() + ": unable to read"),
              std::string::npos);
}

TEST_F(LayerUnpacker, ReadsFromTheFdCurrentOffset)
{
    writeLayer(layer("l1"), {file("a", "from fd")});
    writeTestFile(layer("prefixed"), "JUNK" + readFile(layer("l1")));
    AutoCloseFD fd(::open(layer("prefixed").c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::lseek(fd.get(), 4, SEEK_SET), 4);
    unpackLayerFd(fd.get(), "sha256:test", root, {}, sha256(readFile(layer("l1"))));
    EXPECT_EQ(readFile(root / "a"), "from fd");
}

TEST_F(LayerUnpacker, WithoutPreserveOwnershipFilesBelongToTheCaller)
{
    Entry f = file("owned", "x");
    f.uid = f.gid = 1000;
    Entry d = dir("d/");
    d.uid = d.gid = 1000;
    writeLayer(layer("l1"), {f, d});
    unpack(layer("l1"), {.preserveOwnership = false});
    for (auto name : {"owned", "d"}) {
        EXPECT_EQ(lstatOf(root / name).st_uid, ::getuid()) << name;
        EXPECT_EQ(lstatOf(root / name).st_gid, ::getgid()) << name;
    }
    EXPECT_TRUE(warnings.empty());
}

TEST_F(LayerUnpacker, SymlinkedParentFolderResolvesInsideTheRoot)
{
    // As in merged-/usr images: lib -> /usr/lib, then entries under lib/.
    EXPECT_EQ(unpackEntries(
                  "l1", {dir("usr/lib/"), symlink("lib", "/usr/lib"), file("lib/libc.so", "elf")}),
              "(no error)");
    EXPECT_EQ(readFile(root / "usr/lib/libc.so"), "elf");
    EXPECT_TRUE(fs::is_symlink(root / "lib"));
}

TEST_F(LayerUnpacker, KeepsNonAsciiNamesAsTheyAre)
{
    // The process runs in the C locale, as most of CI does: names must not be converted.
    EXPECT_EQ(unpackEntries("l1", {file("caf\u00e9/na\u00efve.txt", "utf-8")}), "(no error)");
    EXPECT_EQ(readFile(root / "caf\u00e9/na\u00efve.txt"), "utf-8");
}

TEST_F(LayerUnpacker, ErrorsNameTheLayerAndTheEntry)
{
    EXPECT_EQ(unpackEntries("l1", {file("f", "a file"), file("f/x", "x")}),
              concat("layer ", layer("l1").string(),
                     ": unable to open folder 'f' (for entry 'f/x'): Not a directory"));
}

// --- rootless: device nodes cannot be made

// Makes this process root of a new user namespace in which only its own ids are mapped: it has
// every capability there, but mknod of a device still needs CAP_MKNOD in the initial one.
void enterUserNamespace()
{
    uid_t uid = ::getuid();
    gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER) != 0) throw SysError("unshare(CLONE_NEWUSER)");
    auto write = [](const char* path, const std::string& text) {
        AutoCloseFD fd(::open(path, O_WRONLY | O_CLOEXEC));
        if (!fd) throw SysError("open ", path);
        writeFull(fd.get(), text, path);
    };
    write("/proc/self/setgroups", "deny");
    write("/proc/self/uid_map", concat("0 ", uid, " 1"));
    write("/proc/self/gid_map", concat("0 ", gid, " 1"));
}

// Unpacks in a forked child that entered a user namespace, and returns the child's report: one
// "warning: ..." line per warning, or "error: ...".
std::string unpackRootless(const fs::path& layerFile, const fs::path& root, bool preserveOwnership)
{
    int pipeFds[2];
    if (::pipe2(pipeFds, O_CLOEXEC) != 0) throw SysError("pipe2");
    pid_t pid = ::fork();
    if (pid < 0) throw SysError("fork");
    if (pid == 0) {
        // Nothing may escape the child: it reports on the pipe and leaves with _exit.
        ::close(pipeFds[0]);
        std::string report;
        int status = 0;
        try {
            enterUserNamespace();
            UnpackOptions options{.preserveOwnership = preserveOwnership,
                                  .warn = [&](const std::string& message) {
                                      report += "warning: " + message + "\n";
                                  }};
            unpackLayer(layerFile, root, options);
        } catch (const std::exception& e) {
            report += concat("error: ", e.what(), "\n");
            status = 1;
        }
        (void)!::write(pipeFds[1], report.data(), report.size());
        ::_exit(status);
    }
    ::close(pipeFds[1]);
    std::string report = readFd(pipeFds[0]);
    ::close(pipeFds[0]);
    int status;
    if (::waitpid(pid, &status, 0) != pid) throw SysError("waitpid");
    if (!WIFEXITED(status)) report += concat("child killed by signal ", WTERMSIG(status), "\n");
    return report;
}

TEST_F(LayerUnpacker, RootlessSkipsDeviceNodesAndPrivilegedXattrsWithOneWarningEach)
{
    Entry hostname = file("etc/hostname", "box\n");
    hostname.xattrs = {{"trusted.a", "1"}, {"trusted.b", "2"}, {"user.c", "3"}};
    writeLayer(layer("l1"),
               {dir("dev/"),
                {.name = "dev/null", .type = AE_IFCHR, .mode = 0666, .devMajor = 1, .devMinor = 3},
                {.name = "dev/sda", .type = AE_IFBLK, .mode = 0660, .devMajor = 8},
                {.name = "dev/initctl", .type = AE_IFIFO, .mode = 0600},
                hostname});
    std::string l1 = layer("l1").string();
    EXPECT_EQ(unpackRootless(layer("l1"), root, false),
              concat("warning: layer ", l1,
                     ": skipped 2 device node(s) (first: 'dev/null'): creating device nodes needs "
                     "privileges that this process "
                     "lacks\n",
                     "warning: layer ", l1,
                     ": could not set 2 extended attribute(s) (first: trusted.a on 'etc/hostname': "
                     "Operation not permitted)\n"));
    EXPECT_FALSE(existsNoFollow(root / "dev/null"));
    EXPECT_FALSE(existsNoFollow(root / "dev/sda"));
    EXPECT_TRUE(S_ISFIFO(lstatOf(root / "dev/initctl").st_mode));
    EXPECT_EQ(readFile(root / "etc/hostname"), "box\n");
    char value[4];
    EXPECT_EQ(::getxattr((root / "etc/hostname").c_str(), "user.c", value, sizeof value), 1);
}

TEST_F(LayerUnpacker, RootlessOwnershipThatCannotBeAppliedIsOneWarning)
{
    // Only uid 0 is mapped in the child: 1000 cannot be given.
    Entry a = file("a", "a");
    a.uid = a.gid = 1000;
    Entry b = file("b", "b");
    b.uid = b.gid = 1000;
    writeLayer(layer("l1"), {a, b, file("c", "c")});
    EXPECT_EQ(unpackRootless(layer("l1"), root, true),
              concat("warning: layer ", layer("l1").string(),
                     ": could not apply the owner of 2 entries (first: 1000:1000 on 'a': Invalid "
                     "argument)\n"));
    EXPECT_EQ(readFile(root / "b"), "b");
    EXPECT_EQ(lstatOf(root / "b").st_mode & 07777, 0644u);
}

// --- hostile layers: each is refused or contained, and the fixture checks that nothing
// outside the root changed.

TEST_F(LayerUnpacker, DotDotNamesAreRefused)
{
    for (auto name : {"../escape", "a/../../escape", "../../escape", "./../x"}) {
        SCOPED_TRACE(name);
        EXPECT_EQ(unpackEntries("l1", {file(name, "pwned")}),
                  concat("layer ", layer("l1").string(), ": entry '", name,
                         "' points outside the root; refusing it"));
    }
    EXPECT_FALSE(existsNoFollow(tmp / "escape"));
}

TEST_F(LayerUnpacker, AbsoluteNamesAreContained)
{
    EXPECT_EQ(
        unpackEntries("l1", {file("/grocker-test-abs-escape", "inside"), file("//etc///x", "x")}),
        "(no error)");
    EXPECT_EQ(readFile(root / "grocker-test-abs-escape"), "inside");
    EXPECT_EQ(readFile(root / "etc/x"), "x");
    EXPECT_FALSE(existsNoFollow("/grocker-test-abs-escape"));
}

TEST_F(LayerUnpacker, SymlinkToAboveTheRootIsFollowedInsideIt)
{
    EXPECT_EQ(unpackEntries("l1", {symlink("evil", "/.."), file("evil/x", "x"),
                                   symlink("evil2", "../../"), file("evil2/y", "y")}),
              "(no error)");
    EXPECT_EQ(readFile(root / "x"), "x");
    EXPECT_EQ(readFile(root / "y"), "y");
    EXPECT_FALSE(existsNoFollow(tmp / "x"));
    EXPECT_FALSE(existsNoFollow(tmp / "y"));
}

TEST_F(LayerUnpacker, SymlinkToAnOutsideFolderIsNotWrittenThrough)
{
    for (auto target : {canaryDir.string(), std::string("../canary-dir")}) {
        SCOPED_TRACE(target);
        EXPECT_EQ(unpackEntries("l1", {symlink("evil", target), file("evil/x", "pwned")}),
                  concat("layer ", layer("l1").string(),
                         ": entry 'evil/x' goes through 'evil', a symbolic link to '", target,
                         "', which leads to no folder inside the root; refusing it"));
    }
}

TEST_F(LayerUnpacker, HardLinkToAboveTheRootIsRefused)
{
    EXPECT_EQ(unpackEntries("l1", {hardLink("h", "../canary")}),
              concat("layer ", layer("l1").string(),
                     ": entry 'h' is a hard link to '../canary', which points outside the root; "
                     "refusing it"));
    EXPECT_FALSE(existsNoFollow(root / "h"));
}

TEST_F(LayerUnpacker, HardLinkToAnAbsolutePathNeverLinksTheHostFile)
{
    auto passwdLinks = lstatOf("/etc/passwd").st_nlink;
    EXPECT_EQ(unpackEntries("l1", {hardLink("h", canary.string())}),
              concat("layer ", layer("l1").string(), ": entry 'h' is a hard link to '",
                     canary.string(), "', which does not exist in the root; refusing it"));
    EXPECT_EQ(unpackEntries("l2", {hardLink("h", "/etc/passwd")}),
              concat("layer ", layer("l2").string(),
                     ": entry 'h' is a hard link to '/etc/passwd', which does not exist in the "
                     "root; refusing it"));
    // With an /etc/passwd in the image, the link is to that one.
    EXPECT_EQ(unpackEntries("l3", {file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
                                   hardLink("h", "/etc/passwd")}),
              "(no error)");
    EXPECT_EQ(lstatOf(root / "h").st_ino, lstatOf(root / "etc/passwd").st_ino);
    EXPECT_EQ(lstatOf("/etc/passwd").st_nlink, passwdLinks);
}

TEST_F(LayerUnpacker, HardLinkThroughSymlinksStaysInsideTheRoot)
{
    EXPECT_EQ(unpackEntries("l1", {symlink("up", ".."), hardLink("h", "up/canary")}),
              concat("layer ", layer("l1").string(),
                     ": entry 'h' is a hard link to 'up/canary', which does not exist in the root; "
                     "refusing it"));
    // A hard link to a symlink links the symlink, not what it points to.
    EXPECT_EQ(unpackEntries("l2", {symlink("s", canary.string()), hardLink("h2", "s")}),
              "(no error)");
    EXPECT_TRUE(fs::is_symlink(root / "h2"));
    EXPECT_EQ(fs::read_symlink(root / "h2"), canary);
}

TEST_F(LayerUnpacker, HardLinkToAFolderIsRefused)
{
    EXPECT_EQ(unpackEntries("l1", {dir("d/"), hardLink("h", "d")}),
              concat("layer ", layer("l1").string(),
                     ": entry 'h' is a hard link to 'd', which is a folder; refusing it"));
}

TEST_F(LayerUnpacker, WhiteoutsOfDotsOrAboveTheRootAreRefused)
{
    EXPECT_EQ(unpackEntries("l1", {file(".wh..")}),
              concat("layer ", layer("l1").string(),
                     ": entry '.wh..' is a whiteout of '.', which names no entry of its folder; "
                     "refusing it"));
    EXPECT_EQ(unpackEntries("l2", {file("a/.wh...")}),
              concat("layer ", layer("l2").string(),
                     ": entry 'a/.wh...' is a whiteout of '..', which names no entry of its "
                     "folder; refusing it"));
    EXPECT_EQ(unpackEntries("l3", {file("../.wh.canary")}),
              concat("layer ", layer("l3").string(),
                     ": entry '../.wh.canary' points outside the root; refusing it"));
    EXPECT_EQ(
        unpackEntries("l4", {file(".wh.")}),
        concat(
            "layer ", layer("l4").string(),
            ": entry '.wh.' is a whiteout of '', which names no entry of its folder; refusing it"));
}

TEST_F(LayerUnpacker, OpaqueMarkerThroughASymlinkToOutsideIsRefused)
{
    for (auto target : {canaryDir.string(), std::string("../canary-dir")}) {
        SCOPED_TRACE(target);
        EXPECT_EQ(unpackEntries("l1", {symlink("dir", target), file("dir/.wh..wh..opq")}),
                  concat("layer ", layer("l1").string(),
                         ": entry 'dir/.wh..wh..opq' goes through 'dir', a symbolic link to '",
                         target, "', which leads to no folder inside the root; refusing it"));
    }
}

TEST_F(LayerUnpacker, WhiteoutsThroughASymlinkToAboveTheRootStayInside)
{
    writeLayer(layer("lower"), {file("canary", "the root's own"), file("lower-file", "x")});
    unpack(layer("lower"));
    EXPECT_EQ(unpackEntries("l1", {symlink("up", ".."), file("up/.wh.canary")}), "(no error)");
    EXPECT_FALSE(existsNoFollow(root / "canary"));
    EXPECT_TRUE(existsNoFollow(root / "lower-file"));
    // "up" is the root itself: the opaque marker empties the root but for this layer's entries.
    EXPECT_EQ(unpackEntries("l2", {symlink("up", ".."), file("up/.wh..wh..opq")}), "(no error)");
    std::set<std::string> names;
    for (auto& e : fs::directory_iterator(root))
        names.insert(e.path().filename());
    EXPECT_EQ(names, std::set<std::string>{"up"});
}

TEST_F(LayerUnpacker, SymlinkReplacedByAFolderIsNotWrittenThrough)
{
    Entry evilDir = dir("evil/", 0777);
    evilDir.uid = evilDir.gid = 1000;
    // Across layers...
    writeLayer(layer("l1"), {symlink("evil", canaryDir.string())});
    writeLayer(layer("l2"), {evilDir, file("evil/x", "x")});
    unpack(layer("l1"));
    unpack(layer("l2"));
    EXPECT_TRUE(fs::is_directory(fs::symlink_status(root / "evil")));
    EXPECT_EQ(lstatOf(root / "evil").st_mode & 07777, 0777u);
    EXPECT_EQ(readFile(root / "evil/x"), "x");
    // ...and within one.
    EXPECT_EQ(unpackEntries("l3", {symlink("evil2", canaryDir.string()), dir("evil2/", 0777),
                                   file("evil2/x", "x")}),
              "(no error)");
    EXPECT_EQ(readFile(root / "evil2/x"), "x");
}

TEST_F(LayerUnpacker, FileOverASymlinkIsNotWrittenThrough)
{
    Entry f = file("evil", "pwned", 0777);
    f.uid = f.gid = 1000;
    EXPECT_EQ(unpackEntries("l1", {symlink("evil", canary.string()), f}), "(no error)");
    EXPECT_EQ(readFile(root / "evil"), "pwned");
    EXPECT_TRUE(S_ISREG(lstatOf(root / "evil").st_mode));
}

TEST_F(LayerUnpacker, MetadataIsNeverAppliedThroughASymlink)
{
    // A folder's mode and mtime are applied at the end: by then "d" is a symlink to outside.
    Entry d = dir("d/", 0777);
    d.mtime = 1;
    Entry s = symlink("s", canary.string());
    s.uid = s.gid = 1000;
    s.mtime = 1;
    EXPECT_EQ(unpackEntries("l1", {d, symlink("d", canaryDir.string()), s}), "(no error)");
    EXPECT_TRUE(fs::is_symlink(root / "d"));
    EXPECT_EQ(lstatOf(root / "s").st_uid, 1000u);
}

TEST_F(LayerUnpacker, NamesEndingWithDotsAreRefused)
{
    EXPECT_EQ(
        unpackEntries("l1", {dir("a/b/..")}),
        concat("layer ", layer("l1").string(), ": entry 'a/b/../' ends with '..'; refusing it"));
    EXPECT_EQ(unpackEntries("l2", {file("a/.", "x")}),
              concat("layer ", layer("l2").string(), ": entry 'a/.' ends with '.'; refusing it"));
    EXPECT_EQ(unpackEntries("l3", {file("a/..", "x")}),
              concat("layer ", layer("l3").string(),
                     ": entry 'a/..' names the root folder itself; refusing it"));
}

TEST_F(LayerUnpacker, KeepSkipsWhatItRefusesAndAppliesEveryWhiteout)
{
    writeLayer(layer("l1"), {dir("usr/", 0750), file("usr/a", "a"), file("usr/b", "b"),
                             symlink("lib", "usr/lib"), file("gone", "g")});
    writeLayer(layer("l2"), {file(".wh.gone"), file("usr/c", "c")});
    UnpackOptions o;
    std::vector<std::pair<std::string, unsigned>> asked;
    o.keep = [&](const std::string& path, unsigned type) {
        asked.emplace_back(path, type);
        return type != AE_IFREG || path == "usr/a" || path == "gone";
    };
    unpack(layer("l1"), o);
    unpack(layer("l2"), o);
    EXPECT_EQ(readFile(root / "usr/a"), "a");
    EXPECT_FALSE(existsNoFollow(root / "usr/b"));
    EXPECT_FALSE(existsNoFollow(root / "usr/c"));
    EXPECT_FALSE(existsNoFollow(root / "gone")); // kept by l1, whited out by l2
    EXPECT_EQ(fs::read_symlink(root / "lib"), "usr/lib");
    EXPECT_EQ(lstatOf(root / "usr").st_mode & 07777, 0750u);
    EXPECT_NE(
        std::find(asked.begin(), asked.end(), std::pair<std::string, unsigned>("usr", AE_IFDIR)),
        asked.end());
    EXPECT_NE(
        std::find(asked.begin(), asked.end(), std::pair<std::string, unsigned>("lib", AE_IFLNK)),
        asked.end());
}

TEST(LayerSummary, TheFoldersThatHoldMostOfALayer)
{
    TempDir tmp;
    Store store(tmp / "store");
    auto big = [](size_t n) { return std::string(n, 'x'); };
    // home/grocker/venv/lib/site-packages holds 90% of home: the summary goes down to it; usr's
    // bytes are spread over two folders: it stays at usr.
    writeLayer(tmp / "l",
               {dir("home/"),
                file("home/grocker/venv/lib/site-packages/a/x", big(900)),
                file("home/grocker/venv/bin/python", big(100)),
                file("usr/bin/tool", big(600)),
                file("usr/lib/lib.so", big(500)),
                {.name = "usr/lib/link.so", .link = "usr/lib/lib.so", .hardLink = true},
                file("etc/conf", big(10)),
                file("toplevel", big(5))},
               Filter::gzip);
    auto l = store.importFile(tmp / "l", "application/vnd.oci.image.layer.v1.tar+gzip");
    auto s = summarizeLayer(store, l, 2);
    EXPECT_EQ(s.entries, 8u);
    EXPECT_EQ(s.bytes, 2115u); // the hardlink counts once
    ASSERT_EQ(s.largest.size(), 2u);
    EXPECT_EQ(s.largest[0], (std::pair<std::string, uint64_t>("usr", 1100)));
    EXPECT_EQ(s.largest[1],
              (std::pair<std::string, uint64_t>("home/grocker/venv/lib/site-packages/a", 900)));
}

TEST(LayerFiles, ReadImageFilesAsTheLayersLeaveThem)
{
    TempDir tmp;
    auto layer = [&](const std::string& name) { return tmp / name; };
    Store store(tmp / "store");
    writeLayer(layer("l1"), {file("etc/a", "old a"),
                             file("etc/b", "b"),
                             {.name = "etc/c", .link = "etc/b", .hardLink = true},
                             file("dir/x", "x"),
                             file("dir/y", "y"),
                             file("opq/z", "z"),
                             symlink("lib", "usr/lib"),
                             file("big", std::string(100, 'x')),
                             file("other", "not wanted")});
    writeLayer(layer("l2"),
               {file("etc/a", "new a"), file(".wh.dir"), dir("opq/"), file("opq/new", "n"),
                file("opq/.wh..wh..opq")},
               Filter::gzip);
    std::vector<Descriptor> layers;
    for (auto name : {"l1", "l2"})
        layers.push_back(store.importFile(layer(name), "application/vnd.oci.image.layer.v1.tar"));
    auto want = [](const std::string& p) { return p != "other" && p != "big"; };
    auto files = readImageFiles(store, layers, want, 1000, "the test image");
    std::vector<std::string> names;
    for (auto& [path, f] : files)
        names.push_back(path);
    EXPECT_EQ(names, (std::vector<std::string>{"etc/a", "etc/b", "etc/c", "lib", "opq/new"}));
    EXPECT_EQ(files["etc/a"].data, "new a");
    EXPECT_EQ(files["etc/c"].data, "b");
    EXPECT_TRUE(files["lib"].symlink);
    EXPECT_EQ(files["lib"].data, "usr/lib");
    EXPECT_FALSE(files["etc/a"].symlink);
    // A bound on what is read: a hostile image cannot make the pass read gigabytes.
    EXPECT_THAT(errorOf([&] {
                    readImageFiles(
                        store, layers, [](const std::string&) { return true; }, 50,
                        "the test image");
                }),
                ::testing::HasSubstr("the test image: the files read from layer sha256:"));
}

} // namespace
} // namespace grocker::oci
