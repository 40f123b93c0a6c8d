#include "grocker/oci/tar-writer.hh"

#include "grocker/error.hh"
#include "oci-helpers.hh"

#include <cstring>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <string>
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
using ::testing::HasSubstr;

namespace {

constexpr size_t block = 512;

// A NUL-terminated header field.
std::string field(const std::string& bytes, size_t offset, size_t width)
{
    std::string f = bytes.substr(offset, width);
    return f.substr(0, f.find('\0'));
}

std::string archiveOf(const std::vector<std::pair<TarEntry, std::string>>& entries)
{
    StringSink s;
    TarWriter t(s);
    for (auto& [e, content] : entries) {
        if (e.type == TarEntry::Regular)
            t.addFile(e, content);
        else {
            t.writeHeader(e);
            t.endEntry();
        }
    }
    t.finish();
    return s.bytes;
}

TarEntry entry(std::string path, TarEntry::Type type = TarEntry::Regular)
{
    TarEntry e;
    e.path = std::move(path);
    e.type = type;
    e.mode = type == TarEntry::Directory ? 0755 : 0644;
    return e;
}

} // namespace

TEST(TarWriter, UstarHeaderFields)
{
    TarEntry e = entry("dir/file.txt");
    e.mode = 04755;
    e.uid = 1000;
    e.gid = 2000;
    e.mtime = 1700000000;
    auto bytes = archiveOf({{e, "hello"}});
    ASSERT_EQ(bytes.size(), 4 * block); // header, data, two zero blocks
    EXPECT_EQ(field(bytes, 0, 100), "dir/file.txt");
    EXPECT_EQ(field(bytes, 100, 8), "0004755");
    EXPECT_EQ(field(bytes, 108, 8), "0001750");
    EXPECT_EQ(field(bytes, 116, 8), "0003720");
    EXPECT_EQ(field(bytes, 124, 12), "00000000005");
    EXPECT_EQ(field(bytes, 136, 12), "14524770400");
    EXPECT_EQ(bytes[156], '0');
    EXPECT_EQ(bytes.substr(257, 6), std::string("ustar\0", 6));
    EXPECT_EQ(bytes.substr(263, 2), "00");
    // No user or group names, no device numbers for a file, no prefix.
    EXPECT_EQ(field(bytes, 265, 32), "");
    EXPECT_EQ(field(bytes, 297, 32), "");
    EXPECT_EQ(field(bytes, 329, 8), "");
    EXPECT_EQ(field(bytes, 345, 155), "");
    // The checksum: the header's byte sum with the checksum field as spaces.
    std::string h = bytes.substr(0, block);
    std::memset(h.data() + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h)
        sum += c;
    EXPECT_EQ(std::stoul(field(bytes, 148, 7), nullptr, 8), sum);
    EXPECT_EQ(bytes[155], ' ');
    EXPECT_EQ(bytes.substr(block, 5), "hello");
    EXPECT_EQ(bytes.substr(block + 5, block - 5), std::string(block - 5, '\0'));

    auto read = readArchive(bytes);
    ASSERT_EQ(read.size(), 1u);
    EXPECT_EQ(read[0].path, "dir/file.txt");
    EXPECT_EQ(read[0].type, '0');
    EXPECT_EQ(read[0].mode, 04755u);
    EXPECT_EQ(read[0].uid, 1000);
    EXPECT_EQ(read[0].gid, 2000);
    EXPECT_EQ(read[0].mtime, 1700000000);
    EXPECT_EQ(read[0].data, "hello");
    EXPECT_EQ(read[0].uname, "");
}

TEST(TarWriter, EndsWithTwoZeroBlocks)
{
    StringSink s;
    TarWriter t(s);
    t.addFile(entry("a"), std::string(700, 'x'));
    t.finish();
    ASSERT_EQ(s.bytes.size() % block, 0u);
    ASSERT_GE(s.bytes.size(), 2 * block);
    EXPECT_EQ(s.bytes.substr(s.bytes.size() - 2 * block), std::string(2 * block, '\0'));
    EXPECT_EQ(s.bytes.size(), block + 2 * block + 2 * block);
    EXPECT_EQ(t.bytesWritten(), s.bytes.size());
    EXPECT_EQ(s.finished, 1);
}

TEST(TarWriter, EmptyArchive)
{
    StringSink s;
    TarWriter t(s);
    t.finish();
    EXPECT_EQ(s.bytes, std::string(2 * block, '\0'));
    EXPECT_TRUE(readArchive(s.bytes).empty());
}

TEST(TarWriter, SizesOnBlockBoundaries)
{
    for (size_t n : {size_t(0), size_t(1), block - 1, block, block + 1, 3 * block}) {
        auto bytes = archiveOf({{entry("f"), std::string(n, 'q')}});
        size_t dataBlocks = (n + block - 1) / block;
        EXPECT_EQ(bytes.size(), (1 + dataBlocks + 2) * block) << n;
        auto read = readArchive(bytes);
        ASSERT_EQ(read.size(), 1u);
        EXPECT_EQ(read[0].data, std::string(n, 'q'));
    }
}

TEST(TarWriter, AllTypes)
{
    TarEntry dir = entry("d/", TarEntry::Directory);
    TarEntry link = entry("d/link", TarEntry::Symlink);
    link.linkTarget = "../target";
    link.mode = 0777;
    TarEntry hard = entry("d/hard", TarEntry::HardLink);
    hard.linkTarget = "d/file";
    TarEntry chr = entry("dev/null", TarEntry::CharDevice);
    chr.devMajor = 1;
    chr.devMinor = 3;
    chr.mode = 0666;
    TarEntry blk = entry("dev/sda", TarEntry::BlockDevice);
    blk.devMajor = 8;
    blk.devMinor = 0;
    blk.mode = 0660;
    TarEntry fifo = entry("run/fifo", TarEntry::Fifo);
    auto bytes = archiveOf({{dir, ""},
                            {entry("d/file"), "content"},
                            {link, ""},
                            {hard, ""},
                            {chr, ""},
                            {blk, ""},
                            {fifo, ""}});
    auto r = readArchive(bytes);
    ASSERT_EQ(r.size(), 7u);
    EXPECT_EQ(r[0].path, "d/");
    EXPECT_EQ(r[0].type, '5');
    EXPECT_EQ(r[0].mode, 0755u);
    EXPECT_EQ(r[1].data, "content");
    EXPECT_EQ(r[2].type, '2');
    EXPECT_EQ(r[2].symlink, "../target");
    EXPECT_EQ(r[3].type, '1');
    EXPECT_EQ(r[3].hardlink, "d/file");
    EXPECT_EQ(r[3].size, 0);
    EXPECT_EQ(r[4].type, '3');
    EXPECT_EQ(r[4].devMajor, 1u);
    EXPECT_EQ(r[4].devMinor, 3u);
    EXPECT_EQ(r[5].type, '4');
    EXPECT_EQ(r[5].devMajor, 8u);
    EXPECT_EQ(r[6].type, '6');
    // Raw type flags and device fields.
    EXPECT_EQ(bytes[156], '5');
    size_t chrHeader = 5 * block; // d/, d/file (header + data), link, hard
    EXPECT_EQ(bytes[chrHeader + 156], '3');
    EXPECT_EQ(field(bytes, chrHeader + 329, 8), "0000001");
    EXPECT_EQ(field(bytes, chrHeader + 337, 8), "0000003");
}

TEST(TarWriter, GnuTarListsIt)
{
    TempDir tmp;
    TarEntry e = entry("a.txt");
    e.mtime = 86400;
    TarEntry l = entry("l", TarEntry::Symlink);
    l.linkTarget = "a.txt";
    l.mode = 0777;
    writeTestFile(tmp / "x.tar",
                  archiveOf({{entry("d/", TarEntry::Directory), ""}, {e, "hello"}, {l, ""}}));
    auto r = run({"tar", "--numeric-owner", "--utc", "-tvf", (tmp / "x.tar").string()});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(r.out, "drwxr-xr-x 0/0               0 1970-01-01 00:00 d/\n"
                     "-rw-r--r-- 0/0               5 1970-01-02 00:00 a.txt\n"
                     "lrwxrwxrwx 0/0               0 1970-01-01 00:00 l -> a.txt\n");
}

TEST(TarWriter, LongNameUsesPaxPath)
{
    std::string longPath = std::string(60, 'a') + "/" + std::string(60, 'b') + "/file.txt";
    ASSERT_GT(longPath.size(), 100u);
    auto bytes = archiveOf({{entry(longPath), "x"}});
    EXPECT_EQ(bytes[156], 'x'); // a PAX extended header first
    EXPECT_THAT(bytes, HasSubstr(" path=" + longPath + "\n"));
    auto r = readArchive(bytes);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].path, longPath);
    EXPECT_EQ(r[0].data, "x");

    TempDir tmp;
    writeTestFile(tmp / "x.tar", bytes);
    auto t = run({"tar", "-tf", (tmp / "x.tar").string()});
    EXPECT_EQ(t.status, 0) << t.err;
    EXPECT_EQ(t.out, longPath + "\n");
}

TEST(TarWriter, NameOfExactly100NeedsNoPax)
{
    std::string p(100, 'n');
    auto bytes = archiveOf({{entry(p), "x"}});
    EXPECT_EQ(bytes[156], '0');
    EXPECT_EQ(readArchive(bytes)[0].path, p);
}

TEST(TarWriter, PaxRecordLengthsAcrossDigitBoundaries)
{
    // A record's length counts its own digits: check lengths around 10, 100 and 1000.
    for (size_t len = 101; len < 1100; len += (len < 130 || (len > 980 && len < 1010)) ? 1 : 37) {
        std::string p = std::string(len - 2, 'p') + "/f";
        auto r = readArchive(archiveOf({{entry(p), "y"}}));
        ASSERT_EQ(r.size(), 1u) << len;
        EXPECT_EQ(r[0].path, p) << len;
    }
}

TEST(TarWriter, LongDirectoryName)
{
    std::string p = std::string(120, 'd') + "/";
    auto bytes = archiveOf({{entry(p, TarEntry::Directory), ""}});
    // The PAX header's own name has no trailing slash.
    EXPECT_EQ(field(bytes, 0, 100), ("PaxHeaders/" + std::string(120, 'd')).substr(0, 100));
    auto r = readArchive(bytes);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].path, p);
    EXPECT_EQ(r[0].type, '5');
}

TEST(TarWriter, LongLinkTargets)
{
    std::string target = "/" + std::string(150, 't');
    TarEntry l = entry("link", TarEntry::Symlink);
    l.linkTarget = target;
    TarEntry h = entry("hard", TarEntry::HardLink);
    h.linkTarget = std::string(130, 'f');
    auto bytes = archiveOf({{entry(std::string(130, 'f')), "data"}, {l, ""}, {h, ""}});
    EXPECT_THAT(bytes, HasSubstr(" linkpath=" + target + "\n"));
    auto r = readArchive(bytes);
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[1].symlink, target);
    EXPECT_EQ(r[2].hardlink, std::string(130, 'f'));
}

TEST(TarWriter, XattrsAsSchily)
{
    TarEntry e = entry("bin/ping");
    e.xattrs = {{"security.capability", std::string("\x01\x00\x00\x02\x00\x20\x00\x00", 8)},
                {"user.x", "1"}};
    auto bytes = archiveOf({{e, "elf"}});
    EXPECT_EQ(bytes[156], 'x');
    EXPECT_THAT(bytes, HasSubstr(" SCHILY.xattr.user.x=1\n"));
    EXPECT_THAT(bytes, HasSubstr(" SCHILY.xattr.security.capability="));
    auto r = readArchive(bytes);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].xattrs.size(), 2u);
    EXPECT_EQ(r[0].xattrs["user.x"], "1");
    EXPECT_EQ(r[0].xattrs["security.capability"],
              std::string("\x01\x00\x00\x02\x00\x20\x00\x00", 8));
    EXPECT_EQ(r[0].data, "elf");
}

TEST(TarWriter, BigIdsViaPax)
{
    TarEntry e = entry("f");
    e.uid = 2097152; // 07777777 + 1: does not fit 7 octal digits
    e.gid = 4000000000u;
    auto bytes = archiveOf({{e, ""}});
    EXPECT_THAT(bytes, HasSubstr(" uid=2097152\n"));
    EXPECT_THAT(bytes, HasSubstr(" gid=4000000000\n"));
    auto r = readArchive(bytes);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].uid, 2097152);
    EXPECT_EQ(r[0].gid, 4000000000);

    // The largest id that fits needs no PAX header.
    e.uid = e.gid = 2097151;
    bytes = archiveOf({{e, ""}});
    EXPECT_EQ(bytes[156], '0');
    EXPECT_EQ(field(bytes, 108, 8), "7777777");
    EXPECT_EQ(readArchive(bytes)[0].uid, 2097151);
}

TEST(TarWriter, BigSizeViaPax)
{
    StringSink s;
    TarWriter t(s);
    TarEntry e = entry("huge");
    e.size = uint64_t(1) << 34; // 16 GiB: more than 11 octal digits hold
    t.writeHeader(e);
    EXPECT_THAT(s.bytes, HasSubstr(" size=17179869184\n"));
    EXPECT_EQ(s.bytes[156], 'x');
}

TEST(TarWriter, NegativeMtimeIsZero)
{
    TarEntry e = entry("f");
    e.mtime = -5;
    auto bytes = archiveOf({{e, ""}});
    EXPECT_EQ(field(bytes, 136, 12), "00000000000");
}

TEST(TarWriter, TooMuchData)
{
    StringSink s;
    TarWriter t(s);
    TarEntry e = entry("f");
    e.size = 3;
    t.writeHeader(e);
    EXPECT_EQ(errorOf([&] { t.writeData("abcd", 4); }),
              "tar writer: more data than the entry's size (3 bytes)");
}

TEST(TarWriter, TooLittleData)
{
    StringSink s;
    TarWriter t(s);
    TarEntry e = entry("f");
    e.size = 5;
    t.writeHeader(e);
    t.writeData("abc", 3);
    EXPECT_EQ(errorOf([&] { t.endEntry(); }), "tar writer: entry ended 2 bytes short of its size "
                                              "(5): the file changed while it was read; retry");
}

TEST(TarWriter, NextHeaderBeforeDataIsAnError)
{
    StringSink s;
    TarWriter t(s);
    TarEntry e = entry("f");
    e.size = 5;
    t.writeHeader(e);
    EXPECT_EQ(errorOf([&] { t.writeHeader(entry("g")); }),
              "tar writer: entry 'g' started before the previous one was complete");
}

TEST(TarWriter, EmptyPathIsAnError)
{
    StringSink s;
    TarWriter t(s);
    EXPECT_EQ(errorOf([&] { t.writeHeader(entry("")); }), "tar writer: an entry has an empty path");
}

TEST(TarWriter, SizeIgnoredForNonRegular)
{
    TarEntry d = entry("d/", TarEntry::Directory);
    d.size = 1234;
    auto bytes = archiveOf({{d, ""}});
    EXPECT_EQ(field(bytes, 124, 12), "00000000000");
    EXPECT_EQ(bytes.size(), 3 * block);
}

TEST(TarWriter, SameEntriesSameBytes)
{
    auto make = [] {
        TarEntry a = entry(std::string(150, 'a'));
        a.xattrs = {{"user.a", "1"}, {"user.b", "2"}};
        a.uid = 3000000;
        a.mtime = 42;
        TarEntry l = entry("l", TarEntry::Symlink);
        l.linkTarget = std::string(200, 'z');
        return archiveOf({{entry("d/", TarEntry::Directory), ""}, {a, "content"}, {l, ""}});
    };
    auto first = make(), second = make();
    EXPECT_EQ(first, second);
    // And different entries, different bytes.
    TarEntry other = entry("d/", TarEntry::Directory);
    other.mtime = 1;
    EXPECT_NE(archiveOf({{other, ""}}), archiveOf({{entry("d/", TarEntry::Directory), ""}}));
}

TEST(TarWriter, StreamedDataEqualsAddFile)
{
    std::string content(5000, 'c');
    StringSink s;
    TarWriter t(s);
    TarEntry e = entry("f");
    e.size = content.size();
    t.writeHeader(e);
    for (size_t pos = 0; pos < content.size(); pos += 333)
        t.writeData(content.data() + pos, std::min<size_t>(333, content.size() - pos));
    t.endEntry();
    t.finish();
    EXPECT_EQ(s.bytes, archiveOf({{entry("f"), content}}));
}
