#include "grocker/oci/digest.hh"

#include "grocker/error.hh"
#include "helpers.hh"

#include <gtest/gtest.h>
#include <string>

using namespace grocker;
using namespace grocker::oci;

namespace {

const std::string emptyHex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string abcHex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

// The message Digest::parse throws for `text`, or "" when it parses.
std::string parseError(std::string_view text)
{
    try {
        Digest::parse(text);
    } catch (Error& e) {
        return e.message();
    }
    return "";
}

} // namespace

TEST(Digest, ParsesSha256)
{
    auto d = Digest::parse("sha256:" + abcHex);
    EXPECT_EQ(d.algorithm(), "sha256");
    EXPECT_EQ(d.hex(), abcHex);
    EXPECT_EQ(d.str(), "sha256:" + abcHex);
    EXPECT_EQ(d.shortHex(), "ba7816bf8f01");
    EXPECT_FALSE(d.empty());
    EXPECT_TRUE(Digest::valid("sha256:" + abcHex));
}

TEST(Digest, ParsesSha512)
{
    std::string hex(128, 'a');
    auto d = Digest::parse("sha512:" + hex);
    EXPECT_EQ(d.algorithm(), "sha512");
    EXPECT_EQ(d.hex(), hex);
    EXPECT_TRUE(Digest::valid("sha512:" + hex));
}

TEST(Digest, DefaultIsEmpty)
{
    Digest d;
    EXPECT_TRUE(d.empty());
    EXPECT_EQ(d.algorithm(), "");
}

TEST(Digest, Compares)
{
    auto a = Digest::parse("sha256:" + abcHex), b = Digest::parse("sha256:" + emptyHex);
    EXPECT_EQ(a, Digest::parse("sha256:" + abcHex));
    EXPECT_NE(a, b);
    EXPECT_LT(a, b); // 'b' < 'e'
}

TEST(Digest, RejectsUppercaseHex)
{
    std::string upper = "sha256:" + std::string(64, 'A');
    EXPECT_FALSE(Digest::valid(upper));
    EXPECT_EQ(parseError(upper),
              "malformed digest '" + upper + "': expected 64 lowercase hex digits after 'sha256:'");
}

TEST(Digest, RejectsShortAndLongHex)
{
    EXPECT_EQ(parseError("sha256:abc"),
              "malformed digest 'sha256:abc': expected 64 lowercase hex digits after 'sha256:'");
    std::string longer = "sha256:" + abcHex + "0";
    EXPECT_EQ(parseError(longer), "malformed digest '" + longer +
                                      "': expected 64 lowercase hex digits after 'sha256:'");
    EXPECT_EQ(parseError("sha256:"),
              "malformed digest 'sha256:': expected 64 lowercase hex digits after 'sha256:'");
}

TEST(Digest, RejectsNonHex)
{
    std::string g = "sha256:" + std::string(63, 'a') + "g";
    EXPECT_EQ(parseError(g),
              "malformed digest '" + g + "': expected 64 lowercase hex digits after 'sha256:'");
}

TEST(Digest, RejectsUnknownAlgorithm)
{
    EXPECT_EQ(parseError("md5:d41d8cd98f00b204e9800998ecf8427e"),
              "malformed digest 'md5:d41d8cd98f00b204e9800998ecf8427e': unsupported algorithm "
              "'md5' (sha256 and sha512 are)");
    EXPECT_EQ(parseError("SHA256:" + abcHex),
              "malformed digest 'SHA256:" + abcHex +
                  "': unsupported algorithm 'SHA256' (sha256 and sha512 are)");
    EXPECT_EQ(parseError(":" + abcHex), "malformed digest ':" + abcHex +
                                            "': unsupported algorithm '' (sha256 and sha512 are)");
}

TEST(Digest, Sha512NeedsItsOwnLength)
{
    // A sha256-sized hex string is not a sha512 digest, and the reverse.
    EXPECT_EQ(parseError("sha512:" + abcHex),
              "malformed digest 'sha512:" + abcHex +
                  "': expected 128 lowercase hex digits after 'sha512:'");
    std::string hex128(128, 'b');
    EXPECT_EQ(parseError("sha256:" + hex128),
              "malformed digest 'sha256:" + hex128 +
                  "': expected 64 lowercase hex digits after 'sha256:'");
}

TEST(Digest, RejectsMissingColon)
{
    EXPECT_EQ(parseError(""), "malformed digest '': expected 'sha256:' followed by 64 hex digits");
    EXPECT_EQ(parseError(abcHex),
              "malformed digest '" + abcHex + "': expected 'sha256:' followed by 64 hex digits");
    EXPECT_FALSE(Digest::valid(""));
}

TEST(Digest, LongInputIsCutInTheMessage)
{
    std::string junk = "sha256:" + std::string(1000, 'z');
    auto msg = parseError(junk);
    EXPECT_EQ(msg, "malformed digest '" + junk.substr(0, 200) +
                       "': expected 64 lowercase hex digits after 'sha256:'");
}

TEST(Digest, ParseThrowsError)
{
    EXPECT_THROW(Digest::parse("nope"), Error);
}

TEST(Sha256, KnownVectors)
{
    EXPECT_EQ(sha256("").str(), "sha256:" + emptyHex);
    EXPECT_EQ(sha256("abc").str(), "sha256:" + abcHex);
    // FIPS 180-2's two-block vector.
    EXPECT_EQ(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").hex(),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, StreamingEqualsOneShot)
{
    std::string data;
    for (int i = 0; i < 100000; i++)
        data += char('a' + (i * 7919) % 26);
    auto whole = sha256(data);
    const size_t chunks[] = {1, 3, 63, 64, 65, 4096, 99999};
    for (size_t chunk : chunks) {
        Sha256 h;
        for (size_t pos = 0; pos < data.size(); pos += chunk)
            h.update(std::string_view(data).substr(pos, chunk));
        EXPECT_EQ(h.finish(), whole) << "chunk " << chunk;
    }
}

TEST(Sha256, EmptyUpdatesChangeNothing)
{
    Sha256 h;
    h.update(nullptr, 0);
    h.update("ab");
    h.update("", 0);
    h.update("c");
    EXPECT_EQ(h.finish().hex(), abcHex);
}

TEST(Sha256, FinishResets)
{
    Sha256 h;
    h.update("abc");
    EXPECT_EQ(h.finish().hex(), abcHex);
    EXPECT_EQ(h.finish().hex(), emptyHex);
    h.update("abc");
    EXPECT_EQ(h.finish().hex(), abcHex);
}

TEST(Sha256, Moves)
{
    Sha256 a;
    a.update("ab");
    Sha256 b(std::move(a));
    b.update("c");
    EXPECT_EQ(b.finish().hex(), abcHex);
    Sha256 c;
    c = std::move(b);
    c.update("abc");
    EXPECT_EQ(c.finish().hex(), abcHex);
}

TEST(Sha256, DigestRoundTripsThroughParse)
{
    auto d = sha256("hello");
    EXPECT_EQ(Digest::parse(d.str()), d);
}
