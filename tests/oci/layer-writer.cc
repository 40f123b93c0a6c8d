#include "grocker/oci/layer-writer.hh"

#include "grocker/error.hh"
#include "grocker/oci/store.hh"
#include "oci-helpers.hh"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <map>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <vector>

using namespace grocker;
using namespace grocker::oci;
using grocker::test::errorOf;
using grocker::test::readArchive;
using grocker::test::ReadEntry;
using grocker::test::run;
using grocker::test::StringSink;
using grocker::test::TempDir;
using grocker::test::writeTestFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace fs = std::filesystem;

namespace {

std::vector<ReadEntry> layerEntries(const fs::path& dir, const std::string& target = "/",
                                    const LayerOptions& o = {})
{
    StringSink s;
    auto n = writeLayerTar(s, dir, target, o);
    auto entries = readArchive(s.bytes);
    EXPECT_EQ(n, entries.size());
    return entries;
}

std::vector<std::string> pathsOf(const std::vector<ReadEntry>& entries)
{
    std::vector<std::string> out;
    for (auto& e : entries)
        out.push_back(e.path);
    return out;
}

const ReadEntry& find(const std::vector<ReadEntry>& entries, const std::string& path)
{
    for (auto& e : entries)
        if (e.path == path) return e;
    static ReadEntry none;
    ADD_FAILURE() << "no entry '" << path << "'";
    return none;
}

void setXattr(const fs::path& p, const std::string& name, const std::string& value)
{
    ASSERT_EQ(::lsetxattr(p.c_str(), name.c_str(), value.data(), value.size(), 0), 0)
        << "setxattr " << name << " on " << p << ": " << strerror(errno);
}

void setTimes(const fs::path& p, int64_t atime, int64_t mtime)
{
    struct timespec ts[2] = {{time_t(atime), 0}, {time_t(mtime), 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0)
        << p << ": " << strerror(errno);
}

void mkdirMode(const fs::path& p, mode_t mode)
{
    fs::create_directories(p);
    ASSERT_EQ(::chmod(p.c_str(), mode), 0);
}

void makeSocket(const fs::path& p)
{
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    ASSERT_LT(p.string().size(), sizeof addr.sun_path);
    std::strcpy(addr.sun_path, p.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << strerror(errno);
    ::close(fd);
}

// Deterministic bytes that span several 128 KiB compression blocks.
std::string bigContent()
{
    std::string s;
    uint32_t x = 12345;
    while (s.size() < 300000) {
        x = x * 1103515245 + 12345;
        s += "line " + std::to_string(x >> 16) + (x & 0x100 ? " layer\n" : " blob\n");
    }
    return s;
}

// A small tree with every kind of entry a layer holds. `variant` changes what must not matter:
// creation order (so readdir order), times, owners.
void makeTree(const fs::path& root, int variant)
{
    mkdirMode(root, 0755);
    std::vector<std::function<void()>> steps = {
        [&] { writeTestFile(root / "etc" / "app.conf", "key = value\n", 0644); },
        [&] { writeTestFile(root / "bin" / "tool", "#!/bin/sh\necho hi\n", 0755); },
        [&] { writeTestFile(root / "data" / "big.txt", bigContent(), 0600); },
        [&] { writeTestFile(root / "empty", "", 0400); },
        [&] { mkdirMode(root / "var" / "empty", 0711); },
    };
    if (variant % 2) std::reverse(steps.begin(), steps.end());
    for (auto& s : steps)
        s();
    ::chmod((root / "etc").c_str(), 0755);
    ::chmod((root / "bin").c_str(), 0755);
    ::chmod((root / "data").c_str(), 0750);
    ::chmod((root / "var").c_str(), 0755);
    ASSERT_EQ(::link((root / "bin" / "tool").c_str(), (root / "bin" / "tool-link").c_str()), 0);
    ASSERT_EQ(::symlink("../etc/app.conf", (root / "bin" / "conf").c_str()), 0);
    setXattr(root / "bin" / "tool", "user.origin", "test");
    if (variant) {
        for (auto& e : fs::recursive_directory_iterator(root)) {
            ASSERT_EQ(::lchown(e.path().c_str(), 1000, 2000), 0);
            setTimes(e.path(), 1000000 + variant * 7777, 2000000000 + variant * 99);
        }
    }
}

LayerOptions options(Compression c, int64_t epoch = 1000000)
{
    LayerOptions o;
    o.compress.compression = c;
    o.sourceDateEpoch = epoch;
    return o;
}

} // namespace

// --- the tar ------------------------------------------------------------------------------

TEST(LayerWriter, EntriesSortedDepthFirst)
{
    TempDir tmp;
    auto root = tmp / "root";
    writeTestFile(root / "b", "b");
    writeTestFile(root / "a.txt", "a");
    writeTestFile(root / "a" / "z", "z");
    writeTestFile(root / "a" / "B", "B");
    writeTestFile(root / "C", "C");
    // Byte order within each folder ("C" < "a" < "a.txt" < "b"), a folder followed by its content.
    EXPECT_THAT(pathsOf(layerEntries(root)), ElementsAre("C", "a/", "a/B", "a/z", "a.txt", "b"));
}

TEST(LayerWriter, MtimesClampedToSourceDateEpoch)
{
    TempDir tmp;
    auto root = tmp / "root";
    writeTestFile(root / "new", "n");
    writeTestFile(root / "old", "o");
    fs::create_directories(root / "d");
    setTimes(root / "new", 5, 2000000000);
    setTimes(root / "old", 5, 500);
    setTimes(root / "d", 5, 2000000000);
    LayerOptions o;
    o.sourceDateEpoch = 1000;
    auto e = layerEntries(root, "/", o);
    EXPECT_EQ(find(e, "new").mtime, 1000);
    EXPECT_EQ(find(e, "old").mtime, 500); // older than the epoch: kept
    EXPECT_EQ(find(e, "d/").mtime, 1000);
    // The default epoch is 0: every mtime is 0.
    for (auto& entry : layerEntries(root))
        EXPECT_EQ(entry.mtime, 0) << entry.path;
}

// A .pyc records its source's mtime (PEP 552); the layer clamps the source's, so the record is
// clamped too and Python still takes the .pyc. Hash-checked ones and other files are as they are.
TEST(LayerWriter, PycSourceTimestampsClampedLikeMtimes)
{
    TempDir tmp;
    auto root = tmp / "root";
    auto pyc = [](uint32_t flags, uint32_t mtime) {
        std::string h = "\xa7\x0d\r\n";
        for (uint32_t v : {flags, mtime, 42u})
            for (int i = 0; i < 4; i++)
                h += char(uint8_t(v >> (8 * i)));
        return h + "code";
    };
    auto le32 = [](const std::string& data, size_t at) {
        uint32_t v = 0;
        for (int i = 0; i < 4; i++)
            v |= uint32_t(uint8_t(data[at + i])) << (8 * i);
        return v;
    };
    writeTestFile(root / "__pycache__/new.cpython-311.pyc", pyc(0, 1700000000));
    writeTestFile(root / "__pycache__/old.cpython-311.pyc", pyc(0, 500));
    writeTestFile(root / "__pycache__/hashed.cpython-311.pyc", pyc(1, 1700000000));
    writeTestFile(root / "notpyc.bin", pyc(0, 1700000000));
    writeTestFile(root / "short.pyc", "\xa7\x0d\r\n");
    LayerOptions o;
    o.sourceDateEpoch = 1000;
    auto e = layerEntries(root, "/", o);
    auto& fresh = find(e, "__pycache__/new.cpython-311.pyc").data;
    EXPECT_EQ(le32(fresh, 8), 1000u);
    EXPECT_EQ(fresh.substr(0, 8), pyc(0, 0).substr(0, 8));
    EXPECT_EQ(fresh.substr(12), pyc(0, 0).substr(12)); // the source size and the code kept
    EXPECT_EQ(le32(find(e, "__pycache__/old.cpython-311.pyc").data, 8), 500u);
    EXPECT_EQ(find(e, "__pycache__/hashed.cpython-311.pyc").data, pyc(1, 1700000000));
    EXPECT_EQ(find(e, "notpyc.bin").data, pyc(0, 1700000000));
    EXPECT_EQ(find(e, "short.pyc").data, "\xa7\x0d\r\n");
    // The default epoch: 0.
    EXPECT_EQ(le32(find(layerEntries(root), "__pycache__/new.cpython-311.pyc").data, 8), 0u);
}

TEST(LayerWriter, OwnersAreRootByDefault)
{
    TempDir tmp;
    auto root = tmp / "root";
    writeTestFile(root / "d" / "f", "x");
    ASSERT_EQ(::chown((root / "d").c_str(), 1000, 2000), 0);
    ASSERT_EQ(::chown((root / "d" / "f").c_str(), 1001, 2001), 0);
    for (auto& e : layerEntries(root)) {
        EXPECT_EQ(e.uid, 0) << e.path;
        EXPECT_EQ(e.gid, 0) << e.path;
    }
}

TEST(LayerWriter, OwnersMappedByCallback)
{
    TempDir tmp;
    auto root = tmp / "root";
    writeTestFile(root / "d" / "f", "x");
    ASSERT_EQ(::chown((root / "d").c_str(), 1000, 2000), 0);
    ASSERT_EQ(::chown((root / "d" / "f").c_str(), 1001, 2001), 0);
    ASSERT_EQ(::symlink("f", (root / "d" / "l").c_str()), 0);
    ASSERT_EQ(::lchown((root / "d" / "l").c_str(), 1002, 2002), 0);
    LayerOptions o;
    std::vector<std::pair<uid_t, gid_t>> asked;
    o.owner = [&](uid_t u, gid_t g) {
        asked.emplace_back(u, g);
        return std::pair<uint64_t, uint64_t>(u - 1000 + 5000000, g - 2000 + 70);
    };
    auto e = layerEntries(root, "/", o);
    EXPECT_EQ(find(e, "d/").uid, 5000000); // beyond ustar's 7 octal digits: PAX
    EXPECT_EQ(find(e, "d/").gid, 70);
    EXPECT_EQ(find(e, "d/f").uid, 5000001);
    EXPECT_EQ(find(e, "d/f").gid, 71);
    EXPECT_EQ(find(e, "d/l").uid, 5000002); // the link's own owner, not its target's
    EXPECT_EQ(asked.size(), 3u);
}

TEST(LayerWriter, HardlinksAfterTheirTarget)
{
    TempDir tmp;
    auto root = tmp / "root";
    writeTestFile(root / "m" / "x", "shared");
    ASSERT_EQ(::link((root / "m" / "x").c_str(), (root / "a").c_str()), 0);
    ASSERT_EQ(::link((root / "m" / "x").c_str(), (root / "z").c_str()), 0);
    auto e = layerEntries(root);
    EXPECT_THAT(pathsOf(e), ElementsAre("a", "m/", "m/x", "z"));
    EXPECT_EQ(e[0].type, '0');
    EXPECT_EQ(e[0].data, "shared");
    EXPECT_EQ(e[2].type, '1');
    EXPECT_EQ(e[2].hardlink, "a");
    EXPECT_EQ(e[2].data, "");
    EXPECT_EQ(e[3].type, '1');
    EXPECT_EQ(e[3].hardlink, "a");

    // Under a target, the link names the target's path in the image.
    auto p = layerEntries(root, "/app");
    EXPECT_EQ(find(p, "app/z").hardlink, "app/a");
}

TEST(LayerWriter, Symlinks)
{
    TempDir tmp;
    auto root = tmp / "root";
    fs::create_directories(root);
    ASSERT_EQ(::symlink("../x/y", (root / "rel").c_str()), 0);
    ASSERT_EQ(::symlink("/usr/bin/python3", (root / "abs").c_str()), 0);
    std::string longTarget = "/" + std::string(200, 'l');
    ASSERT_EQ(::symlink(longTarget.c_str(), (root / "long").c_str()), 0);
    auto e = layerEntries(root);
    EXPECT_EQ(find(e, "rel").type, '2');
    EXPECT_EQ(find(e, "rel").symlink, "../x/y");
    EXPECT_EQ(find(e, "rel").mode, 0777u);
    EXPECT_EQ(find(e, "abs").symlink, "/usr/bin/python3");
    EXPECT_EQ(find(e, "long").symlink, longTarget);
}

TEST(LayerWriter, ModesKept)
{
    TempDir tmp;
    auto root = tmp / "root";
    writeTestFile(root / "suid", "x", 04755);
    writeTestFile(root / "ro", "x", 0400);
    mkdirMode(root / "sticky", 01777);
    auto e = layerEntries(root);
    EXPECT_EQ(find(e, "suid").mode, 04755u);
    EXPECT_EQ(find(e, "ro").mode, 0400u);
    EXPECT_EQ(find(e, "sticky/").mode, 01777u);
    EXPECT_EQ(find(e, "sticky/").type, '5');
}

TEST(LayerWriter, XattrsFiltered)
{
    TempDir tmp;
    auto root = tmp / "root";
    writeTestFile(root / "f", "x");
    setXattr(root / "f", "user.x", "1");
    setXattr(root / "f", "security.selinux", "system_u:object_r:bin_t:s0");
    setXattr(root / "f", "trusted.foo", "bar");
    setXattr(root / "f", "trusted.overlay.opaque", "y"); // not an overlay upper: still dropped
    // File capabilities (VFS_CAP_REVISION_2, cap_net_raw permitted) are kept: ping needs them.
    const std::string cap(
        "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);
    writeTestFile(root / "ping", "elf", 0755);
    setXattr(root / "ping", "security.capability", cap);
    auto e = layerEntries(root);
    ASSERT_EQ(e.size(), 2u);
    EXPECT_EQ(find(e, "f").xattrs, (std::map<std::string, std::string>{{"user.x", "1"}}));
    EXPECT_EQ(find(e, "ping").xattrs,
              (std::map<std::string, std::string>{{"security.capability", cap}}));
}

TEST(LayerWriter, SpecialFiles)
{
    TempDir tmp;
    auto root = tmp / "root";
    fs::create_directories(root);
    ASSERT_EQ(::mknod((root / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
    ASSERT_EQ(::mknod((root / "loop").c_str(), S_IFBLK | 0660, makedev(7, 0)), 0);
    ASSERT_EQ(::mkfifo((root / "fifo").c_str(), 0600), 0);
    ASSERT_EQ(::mknod((root / "wh").c_str(), S_IFCHR | 0600, makedev(0, 0)), 0);
    makeSocket(root / "sock");
    auto e = layerEntries(root);
    // The socket is skipped; without overlayUpper a 0/0 device is just a device.
    EXPECT_THAT(pathsOf(e), ElementsAre("fifo", "loop", "null", "wh"));
    EXPECT_EQ(find(e, "null").type, '3');
    EXPECT_EQ(find(e, "null").devMajor, 1u);
    EXPECT_EQ(find(e, "null").devMinor, 3u);
    EXPECT_EQ(find(e, "loop").type, '4');
    EXPECT_EQ(find(e, "loop").devMajor, 7u);
    EXPECT_EQ(find(e, "fifo").type, '6');
    EXPECT_EQ(find(e, "wh").type, '3');
}

TEST(LayerWriter, TargetPrefix)
{
    TempDir tmp;
    auto root = tmp / "root";
    writeTestFile(root / "f", "x");
    writeTestFile(root / "s" / "g", "y");
    ::chmod(root.c_str(), 0750);
    setTimes(root, 1, 2000000000);
    LayerOptions o;
    o.sourceDateEpoch = 1234;
    auto e = layerEntries(root, "/app", o);
    EXPECT_THAT(pathsOf(e), ElementsAre("app/", "app/f", "app/s/", "app/s/g"));
    EXPECT_EQ(e[0].type, '5');
    EXPECT_EQ(e[0].mode, 0750u); // the source folder's own metadata
    EXPECT_EQ(e[0].mtime, 1234);
}

TEST(LayerWriter, DeepTargetPrefix)
{
    TempDir tmp;
    auto root = tmp / "root";
    writeTestFile(root / "f", "x");
    ::chmod(root.c_str(), 0700);
    auto e = layerEntries(root, "/opt/my/app/");
    EXPECT_THAT(pathsOf(e), ElementsAre("opt/", "opt/my/", "opt/my/app/", "opt/my/app/f"));
    EXPECT_EQ(e[0].mode, 0755u); // leading folders: root's 0755
    EXPECT_EQ(e[1].mode, 0755u);
    EXPECT_EQ(e[2].mode, 0700u);
    EXPECT_EQ(layerEntries(root, "/./opt//app").size(), 3u);
}

TEST(LayerWriter, LeadingFoldersDoNotCopyTheSourceXattrs)
{
    TempDir tmp;
    auto root = tmp / "root";
    writeTestFile(root / "f", "x");
    setXattr(root, "user.x", "1");
    auto e = layerEntries(root, "/opt/app");
    ASSERT_THAT(pathsOf(e), ElementsAre("opt/", "opt/app/", "opt/app/f"));
    EXPECT_EQ(e[1].xattrs.size(), 1u); // the target is the source folder
    // The leading folders are made up: they carry nothing of the source folder's.
    EXPECT_TRUE(e[0].xattrs.empty()) << "opt/ has " << e[0].xattrs.size() << " xattrs, e.g. user.x";
}

TEST(LayerWriter, BadTargets)
{
    TempDir tmp;
    fs::create_directories(tmp / "root");
    StringSink s;
    EXPECT_EQ(errorOf([&] { writeLayerTar(s, tmp / "root", "app", {}); }),
              "layer target 'app' must be an absolute path in the image, such as /app");
    EXPECT_EQ(errorOf([&] { writeLayerTar(s, tmp / "root", "", {}); }),
              "layer target '' must be an absolute path in the image, such as /app");
    EXPECT_EQ(errorOf([&] { writeLayerTar(s, tmp / "root", "/a/../b", {}); }),
              "layer target '/a/../b' must not contain '..'");
    EXPECT_THROW(writeLayerTar(s, tmp / "root", "app", {}), UsageError);
}

TEST(LayerWriter, MissingFolder)
{
    TempDir tmp;
    StringSink s;
    EXPECT_EQ(errorOf([&] { writeLayerTar(s, tmp / "nope", "/", {}); }),
              "unable to open folder '" + (tmp / "nope").string() + "': No such file or directory");
}

// --- overlay upper dirs -------------------------------------------------------------------

TEST(LayerWriter, OverlayWhiteouts)
{
    TempDir tmp;
    auto root = tmp / "upper";
    fs::create_directories(root / "etc");
    ASSERT_EQ(::mknod((root / "etc" / "gone").c_str(), S_IFCHR | 0000, makedev(0, 0)), 0);
    writeTestFile(root / "etc" / "kept", "k");
    writeTestFile(root / "xw", "");
    setXattr(root / "xw", "user.overlay.whiteout", "y");
    writeTestFile(root / "tw", "");
    setXattr(root / "tw", "trusted.overlay.whiteout", "y");
    ASSERT_EQ(::mknod((root / "realdev").c_str(), S_IFCHR | 0600, makedev(1, 5)), 0);
    LayerOptions o;
    o.overlayUpper = true;
    auto e = layerEntries(root, "/", o);
    EXPECT_THAT(pathsOf(e),
                ElementsAre("etc/", "etc/.wh.gone", "etc/kept", "realdev", ".wh.tw", ".wh.xw"));
    auto& wh = find(e, "etc/.wh.gone");
    EXPECT_EQ(wh.type, '0');
    EXPECT_EQ(wh.size, 0);
    EXPECT_EQ(wh.mode, 0u);
    EXPECT_EQ(wh.uid, 0);
    EXPECT_TRUE(find(e, ".wh.xw").xattrs.empty());
    EXPECT_EQ(find(e, "realdev").type, '3'); // only 0/0 devices are whiteouts

    auto p = layerEntries(root, "/app", o);
    EXPECT_THAT(pathsOf(p), ElementsAre("app/", "app/etc/", "app/etc/.wh.gone", "app/etc/kept",
                                        "app/realdev", "app/.wh.tw", "app/.wh.xw"));
}

TEST(LayerWriter, OverlayOpaqueDirs)
{
    TempDir tmp;
    auto root = tmp / "upper";
    writeTestFile(root / "d" / "a", "a");
    writeTestFile(root / "u" / "a", "a");
    writeTestFile(root / "x" / "a", "a");
    writeTestFile(root / "n" / "a", "a");
    setXattr(root / "d", "trusted.overlay.opaque", "y");
    setXattr(root / "u", "user.overlay.opaque", "y");
    setXattr(root / "x", "user.overlay.opaque", "x"); // "x": holds xattr whiteouts, not opaque
    setXattr(root / "d", "user.keep", "1");
    LayerOptions o;
    o.overlayUpper = true;
    auto e = layerEntries(root, "/", o);
    EXPECT_THAT(pathsOf(e), ElementsAre("d/", "d/.wh..wh..opq", "d/a", "n/", "n/a", "u/",
                                        "u/.wh..wh..opq", "u/a", "x/", "x/a"));
    // The overlay attributes themselves never reach the layer.
    EXPECT_EQ(find(e, "d/").xattrs, (std::map<std::string, std::string>{{"user.keep", "1"}}));
    EXPECT_TRUE(find(e, "u/").xattrs.empty());
    EXPECT_TRUE(find(e, "x/").xattrs.empty());
    auto& opq = find(e, "d/.wh..wh..opq");
    EXPECT_EQ(opq.type, '0');
    EXPECT_EQ(opq.size, 0);
}

TEST(LayerWriter, OpaqueIgnoredOutsideOverlayMode)
{
    TempDir tmp;
    auto root = tmp / "upper";
    writeTestFile(root / "d" / "a", "a");
    setXattr(root / "d", "trusted.overlay.opaque", "y");
    EXPECT_THAT(pathsOf(layerEntries(root)), ElementsAre("d/", "d/a"));
}

// --- blobs in the store ---------------------------------------------------------------------

TEST(WriteLayer, DiffIdIsTheTarsDigest)
{
    TempDir tmp;
    makeTree(tmp / "tree", 0);
    Store store(tmp / "store");
    for (auto c : {Compression::Gzip, Compression::Zstd, Compression::None}) {
        auto o = options(c);
        StringSink tar;
        writeLayerTar(tar, tmp / "tree", "/", o);
        auto r = writeLayer(store, tmp / "tree", "/", o);
        EXPECT_EQ(r.diffId, sha256(tar.bytes)) << compressionName(c);
        EXPECT_EQ(r.descriptor.mediaType, layerMediaType(c));
        EXPECT_EQ(r.entries, readArchive(tar.bytes).size());
        if (c == Compression::None) {
            EXPECT_EQ(r.descriptor.digest, r.diffId);
        } else {
            EXPECT_NE(r.descriptor.digest, r.diffId);
        }
    }
    EXPECT_EQ(layerMediaType(Compression::Gzip), "application/vnd.oci.image.layer.v1.tar+gzip");
    EXPECT_EQ(layerMediaType(Compression::Zstd), "application/vnd.oci.image.layer.v1.tar+zstd");
    EXPECT_EQ(layerMediaType(Compression::None), "application/vnd.oci.image.layer.v1.tar");
}

TEST(WriteLayer, BlobCommittedReadOnly)
{
    TempDir tmp;
    makeTree(tmp / "tree", 0);
    Store store(tmp / "store");
    auto r = writeLayer(store, tmp / "tree", "/", options(Compression::Gzip));
    auto path = tmp / "store" / "blobs" / "sha256" / r.descriptor.digest.hex();
    EXPECT_EQ(store.blobPath(r.descriptor.digest), path);
    struct stat st;
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0444u);
    EXPECT_EQ(int64_t(st.st_size), r.descriptor.size);
    EXPECT_NO_THROW(store.verifyStoredBlob(r.descriptor.digest, "layer"));
    // Nothing left behind in the temp folder.
    EXPECT_TRUE(fs::is_empty(store.tmpDir()));
}

TEST(WriteLayer, GzipDecompressesToTheDiffId)
{
    TempDir tmp;
    makeTree(tmp / "tree", 0);
    Store store(tmp / "store");
    auto r = writeLayer(store, tmp / "tree", "/", options(Compression::Gzip));
    auto out = run({"gzip", "-dc", store.blobPath(r.descriptor.digest).string()});
    ASSERT_EQ(out.status, 0) << out.err;
    EXPECT_EQ(sha256(out.out), r.diffId);
    // One member, no name, mtime 0 (gzip -lv shows neither).
    auto blob = readFile(store.blobPath(r.descriptor.digest));
    ASSERT_GE(blob.size(), 10u);
    EXPECT_EQ(blob.substr(0, 3), "\x1f\x8b\x08");
    EXPECT_EQ(blob[3] & 0x08, 0) << "FNAME set";
    EXPECT_EQ(blob.substr(4, 4), std::string(4, '\0')) << "MTIME not 0";
}

TEST(WriteLayer, ZstdDecompressesToTheDiffId)
{
    TempDir tmp;
    makeTree(tmp / "tree", 0);
    Store store(tmp / "store");
    auto r = writeLayer(store, tmp / "tree", "/", options(Compression::Zstd));
    auto out = run({"zstd", "-dc", store.blobPath(r.descriptor.digest).string()});
    ASSERT_EQ(out.status, 0) << out.err;
    EXPECT_EQ(sha256(out.out), r.diffId);
}

TEST(WriteLayer, Reproducible)
{
    TempDir tmp;
    makeTree(tmp / "one", 0);
    makeTree(tmp / "two", 1);
    makeTree(tmp / "three", 2);
    for (auto c : {Compression::Gzip, Compression::Zstd}) {
        Store s1(tmp / ("store1-" + std::string(compressionName(c))));
        Store s2(tmp / ("store2-" + std::string(compressionName(c))));
        auto o = options(c);
        auto a = writeLayer(s1, tmp / "one", "/", o);
        auto b = writeLayer(s2, tmp / "two", "/", o);
        auto d = writeLayer(s2, tmp / "three", "/", o);
        EXPECT_EQ(a.diffId, b.diffId) << compressionName(c);
        EXPECT_EQ(a.descriptor.digest, b.descriptor.digest) << compressionName(c);
        EXPECT_EQ(a.descriptor.size, b.descriptor.size) << compressionName(c);
        EXPECT_EQ(a.diffId, d.diffId) << compressionName(c);
        EXPECT_EQ(a.descriptor.digest, d.descriptor.digest) << compressionName(c);
        // The thread count does not change the bytes.
        auto o1 = o;
        o1.compress.threads = 1;
        auto o3 = o;
        o3.compress.threads = 3;
        EXPECT_EQ(writeLayer(s1, tmp / "two", "/", o1).descriptor.digest, a.descriptor.digest)
            << compressionName(c);
        EXPECT_EQ(writeLayer(s1, tmp / "two", "/", o3).descriptor.digest, a.descriptor.digest)
            << compressionName(c);
    }
}

TEST(WriteLayer, ReproducibleTarContent)
{
    // What the reproducibility rests on, checked directly: the entries of both trees.
    TempDir tmp;
    makeTree(tmp / "one", 0);
    makeTree(tmp / "two", 1);
    auto o = options(Compression::None);
    auto a = layerEntries(tmp / "one", "/", o), b = layerEntries(tmp / "two", "/", o);
    ASSERT_EQ(pathsOf(a), pathsOf(b));
    EXPECT_THAT(pathsOf(a),
                ElementsAre("bin/", "bin/conf", "bin/tool", "bin/tool-link", "data/",
                            "data/big.txt", "empty", "etc/", "etc/app.conf", "var/", "var/empty/"));
    for (auto& e : a) {
        EXPECT_EQ(e.uid, 0) << e.path;
        EXPECT_EQ(e.mtime, 1000000) << e.path;
    }
    EXPECT_EQ(find(a, "bin/tool-link").type, '1');
    EXPECT_EQ(find(a, "bin/tool").xattrs.at("user.origin"), "test");
}

TEST(WriteLayer, ErrorLeavesNoBlob)
{
    TempDir tmp;
    Store store(tmp / "store");
    EXPECT_EQ(errorOf([&] { writeLayer(store, tmp / "nope", "/", options(Compression::Gzip)); }),
              "while writing a layer from '" + (tmp / "nope").string() +
                  "': unable to open folder '" + (tmp / "nope").string() +
                  "': No such file or directory");
    EXPECT_TRUE(fs::is_empty(tmp / "store" / "blobs" / "sha256"));
    EXPECT_TRUE(fs::is_empty(store.tmpDir()));
}

TEST(WriteLayer, GoldenDigests)
{
    // A fixed tree: a change to these digests is a change of the layer format (tar or gzip),
    // which changes every image Grocker builds. Update them only on purpose.
    TempDir tmp;
    auto root = tmp / "golden";
    mkdirMode(root, 0755);
    writeTestFile(root / "etc" / "hostname", "grocker\n", 0644);
    writeTestFile(root / "usr" / "bin" / "hello", "#!/bin/sh\necho hello\n", 0755);
    writeTestFile(root / "usr" / "share" / "doc" / "big.txt", bigContent(), 0644);
    ::chmod((root / "etc").c_str(), 0755);
    ::chmod((root / "usr").c_str(), 0755);
    ::chmod((root / "usr" / "bin").c_str(), 0755);
    ::chmod((root / "usr" / "share").c_str(), 0755);
    ::chmod((root / "usr" / "share" / "doc").c_str(), 0755);
    ASSERT_EQ(::symlink("hello", (root / "usr" / "bin" / "hi").c_str()), 0);
    ASSERT_EQ(::link((root / "etc" / "hostname").c_str(), (root / "etc" / "hostname.bak").c_str()),
              0);
    setXattr(root / "usr" / "bin" / "hello", "user.golden", "1");
    for (auto& e : fs::recursive_directory_iterator(root))
        setTimes(e.path(), 0, 2000000000);
    Store store(tmp / "store");
    auto gz = writeLayer(store, root, "/", options(Compression::Gzip, 1700000000));
    EXPECT_EQ(gz.diffId.str(),
              "sha256:3ab225a7ec0f3940f5f9600f5014d39ce49632c92493880f4a1739fc4ed99fd8");
    EXPECT_EQ(gz.descriptor.digest.str(),
              "sha256:7d7eb072f9c93850b5256452c470261cf373c01167358b3a48a80272dd5b6859");
    EXPECT_EQ(gz.entries, 10u);
}

// --- SOURCE_DATE_EPOCH ----------------------------------------------------------------------

TEST(SourceDateEpoch, FromEnv)
{
    ::unsetenv("SOURCE_DATE_EPOCH");
    EXPECT_EQ(sourceDateEpochFromEnv(), 0);
    ::setenv("SOURCE_DATE_EPOCH", "", 1);
    EXPECT_EQ(sourceDateEpochFromEnv(), 0);
    ::setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    EXPECT_EQ(sourceDateEpochFromEnv(), 1700000000);
    ::setenv("SOURCE_DATE_EPOCH", "12abc", 1);
    EXPECT_EQ(
        errorOf([] { sourceDateEpochFromEnv(); }),
        "SOURCE_DATE_EPOCH='12abc' is not a number of seconds since 1970: unset it or fix it");
    ::setenv("SOURCE_DATE_EPOCH", "-1", 1);
    EXPECT_THROW(sourceDateEpochFromEnv(), UsageError);
    ::setenv("SOURCE_DATE_EPOCH", "99999999999999999999999", 1);
    EXPECT_THROW(sourceDateEpochFromEnv(), UsageError);
    ::unsetenv("SOURCE_DATE_EPOCH");
}
