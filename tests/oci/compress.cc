#include "grocker/oci/compress.hh"

#include "grocker/error.hh"
#include "grocker/oci/digest.hh"
#include "oci-helpers.hh"

#include <gtest/gtest.h>
#include <random>
#include <zlib.h>

using namespace grocker;
using namespace grocker::oci;
using grocker::test::run;
using grocker::test::StringSink;
using grocker::test::TempDir;
using grocker::test::writeTestFile;

namespace {

constexpr size_t blockSize = 128 * 1024;

// Fails once more than `limit` bytes have been written to it.
class FailingSink : public Sink {
  public:
    explicit FailingSink(size_t limit) : limit_(limit) {}
    void write(const void*, size_t len) override
    {
        written_ += len;
        if (written_ > limit_) throw Error("disk full while writing 'layer.tmp'");
    }

  private:
    size_t limit_;
    size_t written_ = 0;
};

// std::mt19937's sequence is fixed by the standard, so these inputs are the same everywhere
// (the golden digest depends on it); distributions are not, so raw outputs are used.
std::string randomData(size_t size, uint32_t seed)
{
    std::mt19937 gen(seed);
    std::string s(size, '\0');
    for (auto& c : s)
        c = char(gen() >> 24);
    return s;
}

// Text-like data with long and short repeats, as in source trees and /usr/share.
std::string compressibleData(size_t size, uint32_t seed)
{
    static const char* words[] = {"layer",  "manifest", "config", "sha256",  "blob",
                                  "index",  "tar",      "gzip",   "zstd",    "whiteout",
                                  "rootfs", "diff_ids", "\n",     "\t",      "{",
                                  "}",      "0",        "1",      "usr/lib", "etc/passwd"};
    std::mt19937 gen(seed);
    std::string s;
    s.reserve(size + 16);
    while (s.size() < size) {
        s += words[gen() % std::size(words)];
        s += ' ';
    }
    s.resize(size);
    return s;
}

// Compresses `input`, handing it over `chunk` bytes at a time as a tar writer would.
std::string compress(std::string_view input, Compression c, unsigned threads, size_t chunk = 512,
                     int level = 0)
{
    StringSink out;
    auto sink = makeCompressor(out, {c, level, threads});
    for (size_t pos = 0; pos < input.size(); pos += chunk)
        sink->write(input.substr(pos, chunk));
    sink->finish();
    EXPECT_EQ(out.finished, 1);
    return out.bytes;
}

// Decompresses with a real tool, as a registry client or containerd would.
std::string decompressWith(const std::string& tool, const std::string& compressed)
{
    TempDir dir;
    writeTestFile(dir / "blob", compressed);
    auto r = run({tool, "-dc", (dir / "blob").string()});
    EXPECT_EQ(r.status, 0) << tool << ": " << r.err;
    return r.out;
}

// Inflates with zlib and checks that the data is exactly one gzip member: some clients stop
// after the first member.
std::string inflateOneMember(const std::string& compressed)
{
    z_stream strm{};
    EXPECT_EQ(inflateInit2(&strm, 16 + 15), Z_OK);
    strm.next_in = (Bytef*)compressed.data();
    strm.avail_in = uInt(compressed.size());
    std::string out;
    char buf[65536];
    int rc;
    do {
        strm.next_out = (Bytef*)buf;
        strm.avail_out = sizeof buf;
        rc = inflate(&strm, Z_NO_FLUSH);
        out.append(buf, sizeof buf - strm.avail_out);
    } while (rc == Z_OK);
    EXPECT_EQ(rc, Z_STREAM_END);
    EXPECT_EQ(strm.avail_in, 0u) << "bytes after the first gzip member";
    inflateEnd(&strm);
    return out;
}

uint32_t le32(std::string_view s, size_t at)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | uint8_t(s[at + i]);
    return v;
}

struct Input {
    std::string name;
    std::string data;
};

std::vector<Input> inputs()
{
    return {
        {"Empty", ""},
        {"OneByte", "x"},
        {"ExactlyOneBlock", randomData(blockSize, 1)},
        {"OneBlockAndOneByte", compressibleData(blockSize + 1, 2)},
        {"ManyBlocksRandom", randomData(5 << 20, 3)},
        {"ManyBlocksCompressible", compressibleData(5 << 20, 4)},
        {"Mixed", compressibleData(700000, 5) + randomData(300000, 6) + std::string(400000, 'a')},
    };
}

class RoundTrip : public testing::TestWithParam<std::tuple<Compression, size_t>> {
  protected:
    Compression compression() const { return std::get<0>(GetParam()); }
    const Input& input() const
    {
        static const std::vector<Input> all = inputs();
        return all[std::get<1>(GetParam())];
    }
};

TEST_P(RoundTrip, RealToolsDecompress)
{
    auto& data = input().data;
    auto compressed = compress(data, compression(), 2);
    if (compression() == Compression::Gzip) {
        EXPECT_EQ(decompressWith("gzip", compressed), data);
        EXPECT_EQ(decompressWith("pigz", compressed), data);
        EXPECT_EQ(inflateOneMember(compressed), data);
        TempDir dir;
        writeTestFile(dir / "blob.gz", compressed);
        auto r = run({"gzip", "-t", (dir / "blob.gz").string()});
        EXPECT_EQ(r.status, 0) << r.err;
    } else {
        EXPECT_EQ(decompressWith("zstd", compressed), data);
    }
}

// The layer digest must not depend on the machine's core count nor on how the tar writer
// splits its writes.
TEST_P(RoundTrip, OutputIndependentOfThreadsAndWrites)
{
    auto& data = input().data;
    auto one = compress(data, compression(), 1, 512);
    EXPECT_EQ(compress(data, compression(), 2, 4096), one);
    EXPECT_EQ(compress(data, compression(), 4, 1000000), one);
    EXPECT_EQ(compress(data, compression(), 3, 1), one) << "odd thread count, byte writes";
}

INSTANTIATE_TEST_SUITE_P(All, RoundTrip,
                         testing::Combine(testing::Values(Compression::Gzip, Compression::Zstd),
                                          testing::Range(size_t(0), inputs().size())),
                         [](const auto& p) {
                             return std::string(compressionName(std::get<0>(p.param))) + "_" +
                                    inputs()[std::get<1>(p.param)].name;
                         });

TEST(Gzip, HeaderAndTrailer)
{
    auto data = compressibleData(3 * blockSize + 17, 7);
    auto gz = compress(data, Compression::Gzip, 2);
    ASSERT_GE(gz.size(), 18u);
    // Magic, deflate, no flags, mtime 0, xfl 0, OS 255: nothing about the build machine.
    EXPECT_EQ(gz.substr(0, 10), std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10));
    EXPECT_EQ(le32(gz, gz.size() - 8), crc32(0, (const Bytef*)data.data(), uInt(data.size())));
    EXPECT_EQ(le32(gz, gz.size() - 4), data.size());
}

TEST(Gzip, LevelsDecompressAndDiffer)
{
    auto data = compressibleData(1 << 20, 8);
    auto fast = compress(data, Compression::Gzip, 2, 65536, 1);
    auto best = compress(data, Compression::Gzip, 2, 65536, 9);
    EXPECT_EQ(decompressWith("gzip", fast), data);
    EXPECT_EQ(decompressWith("gzip", best), data);
    EXPECT_LT(best.size(), fast.size());
    EXPECT_EQ(compress(data, Compression::Gzip, 2, 65536, 6), compress(data, Compression::Gzip, 2));
}

// Catches any change of the gzip output, which would change every layer digest. The digest
// was also reproduced by an independent Python zlib implementation of the same block rules.
// A zlib upgrade that changes deflate's choices would show up here too: check the round trips
// still pass, then update the digest.
TEST(Gzip, Golden)
{
    auto data = compressibleData(1 << 20, 42) + randomData(300000, 43) + std::string(100000, '\0');
    auto gz = compress(data, Compression::Gzip, 2, 4096);
    EXPECT_EQ(sha256(gz).str(),
              "sha256:6d030e87b46c7ab03de23057463b67cff47ba1b9716f6c9fd2b80ced96a25772");
    EXPECT_EQ(decompressWith("gzip", gz), data);
}

TEST(Zstd, FrameHasChecksumAndNoContentSize)
{
    for (auto size : {size_t(0), size_t(1000), size_t(3 << 20)}) {
        auto zst = compress(compressibleData(size, 9), Compression::Zstd, 2);
        ASSERT_GE(zst.size(), 5u);
        EXPECT_EQ(zst.substr(0, 4), std::string("\x28\xb5\x2f\xfd", 4));
        auto descriptor = uint8_t(zst[4]);
        EXPECT_TRUE(descriptor & 0x04) << "content checksum flag, size " << size;
        // The size is pledged unknown: no Frame_Content_Size, whatever was buffered.
        EXPECT_EQ(descriptor & 0xe0, 0) << "size " << size;
    }
}

// libzstd cuts a multi-threaded frame into jobs of 8 MiB at level 3: the round trips above fit
// in one job, this spans three, so several workers really share the frame.
TEST(Zstd, ManyJobsIndependentOfThreads)
{
    auto data = compressibleData(20 << 20, 13);
    auto one = compress(data, Compression::Zstd, 1, 65536);
    EXPECT_EQ(compress(data, Compression::Zstd, 2, 4096), one);
    EXPECT_EQ(compress(data, Compression::Zstd, 4, 1 << 20), one);
    EXPECT_EQ(decompressWith("zstd", one), data);
}

TEST(Compress, NonePassesThrough)
{
    auto data = compressibleData(300000, 10);
    EXPECT_EQ(compress(data, Compression::None, 0, 777), data);
}

TEST(Compress, DefaultThreads)
{
    auto data = compressibleData(2 << 20, 11);
    EXPECT_EQ(compress(data, Compression::Gzip, 0), compress(data, Compression::Gzip, 1));
    EXPECT_EQ(compress(data, Compression::Zstd, 0), compress(data, Compression::Zstd, 1));
}

// An error in the pipeline (here the sink below) reaches the caller, is reported again on
// later calls, and the compressor still shuts down cleanly.
TEST(Compress, ErrorsReachTheCaller)
{
    auto data = randomData(3 << 20, 12);
    for (auto c : {Compression::Gzip, Compression::Zstd}) {
        for (unsigned threads : {1u, 2u, 4u}) {
            for (size_t limit : {size_t(0), size_t(1 << 20)}) {
                SCOPED_TRACE(concat(compressionName(c), " threads ", threads, " limit ", limit));
                FailingSink out(limit);
                auto sink = makeCompressor(out, {c, 0, threads});
                std::string message;
                try {
                    for (size_t pos = 0; pos < data.size(); pos += 10000)
                        sink->write(std::string_view(data).substr(pos, 10000));
                    sink->finish();
                } catch (const Error& e) {
                    message = e.what();
                }
                EXPECT_EQ(message, "disk full while writing 'layer.tmp'");
                try {
                    sink->write("more");
                    ADD_FAILURE() << "write after an error succeeded";
                } catch (const Error& e) {
                    EXPECT_STREQ(e.what(), "disk full while writing 'layer.tmp'");
                }
                EXPECT_THROW(sink->finish(), Error);
            }
        }
    }
}

TEST(Compress, ParseAndName)
{
    for (auto c : {Compression::None, Compression::Gzip, Compression::Zstd})
        EXPECT_EQ(parseCompression(compressionName(c)), c);
    EXPECT_EQ(compressionName(Compression::Gzip), "gzip");
    EXPECT_EQ(compressionName(Compression::Zstd), "zstd");
    EXPECT_EQ(compressionName(Compression::None), "none");
}

TEST(Compress, ParseUnknown)
{
    for (auto name : {"lz4", "", "GZIP", "gzip "}) {
        try {
            parseCompression(name);
            ADD_FAILURE() << "accepted '" << name << "'";
        } catch (const UsageError& e) {
            EXPECT_EQ(e.message(), concat("unknown compression '", name, "': use gzip or zstd"));
        }
    }
}

TEST(Compress, LevelOutOfRange)
{
    StringSink out;
    try {
        makeCompressor(out, {Compression::Gzip, 10, 1});
        ADD_FAILURE();
    } catch (const UsageError& e) {
        EXPECT_EQ(e.message(), "compression level 10 is out of range for gzip: use 1 to 9");
    }
    try {
        makeCompressor(out, {Compression::Zstd, 99, 1});
        ADD_FAILURE();
    } catch (const UsageError& e) {
        EXPECT_EQ(e.message(), "compression level 99 is out of range for zstd: use 1 to 22");
    }
}

TEST(Compress, Detect)
{
    EXPECT_EQ(detectCompression(compress("hello", Compression::Gzip, 1)), Compression::Gzip);
    EXPECT_EQ(detectCompression(compress("hello", Compression::Zstd, 1)), Compression::Zstd);
    EXPECT_EQ(detectCompression(std::string(512, '\0')), Compression::None);
    EXPECT_EQ(detectCompression(""), Compression::None);
    EXPECT_EQ(detectCompression("\x1f"), Compression::None);
    EXPECT_EQ(detectCompression("\x28\xb5\x2f"), Compression::None);
}

} // namespace
