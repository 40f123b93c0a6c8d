#include "grocker/registry/registry.hh"

#include "grocker/error.hh"

#include <chrono>
#include <gtest/gtest.h>
#include <set>

using namespace grocker;
using namespace grocker::registry;
using namespace grocker::oci;

namespace {

Descriptor entry(const std::string& hexChar, std::optional<Platform> p,
                 std::map<std::string, std::string> annotations = {})
{
    Descriptor d;
    d.mediaType = std::string(media::ociManifest);
    d.digest = Digest::parse("sha256:" + std::string(64, hexChar[0]));
    d.size = 100;
    d.platform = std::move(p);
    d.annotations = std::move(annotations);
    return d;
}

Platform platform(std::string os, std::string arch, std::string variant = {})
{
    Platform p;
    p.os = std::move(os);
    p.architecture = std::move(arch);
    p.variant = std::move(variant);
    return p;
}

std::string chooseError(const Index& idx, const Platform& p)
{
    try {
        choosePlatform(idx, p, "the index sha256:ff");
    } catch (Error& e) {
        return e.message();
    }
    return "(no error)";
}

} // namespace

TEST(ChoosePlatform, SkipsAttestationsAndPicksTheHostsArchitecture)
{
    Index idx;
    idx.manifests = {entry("a", platform("linux", "arm64", "v8")),
                     entry("b", platform("unknown", "unknown"),
                           {{"vnd.docker.reference.type", "attestation-manifest"},
                            {"vnd.docker.reference.digest", "sha256:c"}}),
                     entry("c", platform("linux", "amd64"))};
    EXPECT_EQ(choosePlatform(idx, platform("linux", "amd64"), "i").digest.hex(),
              std::string(64, 'c'));
    EXPECT_EQ(choosePlatform(idx, platform("linux", "x86_64"), "i").digest.hex(),
              std::string(64, 'c'));
    EXPECT_EQ(choosePlatform(idx, platform("linux", "aarch64"), "i").digest.hex(),
              std::string(64, 'a'));
    EXPECT_EQ(choosePlatform(idx, platform("linux", "arm64"), "i").digest.hex(),
              std::string(64, 'a'));
    EXPECT_EQ(
        chooseError(idx, platform("linux", "s390x")),
        "the index sha256:ff has no image for linux/s390x (it has: linux/arm64/v8, linux/amd64)");
}

TEST(ChoosePlatform, AttestationByAnnotationOnly)
{
    Index idx;
    idx.manifests = {entry("a", platform("linux", "amd64"),
                           {{"vnd.docker.reference.type", "attestation-manifest"}}),
                     entry("b", platform("linux", "amd64"))};
    EXPECT_EQ(choosePlatform(idx, platform("linux", "amd64"), "i").digest.hex(),
              std::string(64, 'b'));
}

TEST(ChoosePlatform, VariantsAndNestedIndexes)
{
    Index idx;
    auto nested = entry("d", platform("linux", "amd64"));
    nested.mediaType = std::string(media::ociIndex);
    idx.manifests = {nested, entry("e", platform("linux", "arm", "v6")),
                     entry("f", platform("linux", "arm", "v7"))};
    EXPECT_EQ(choosePlatform(idx, platform("linux", "arm", "v7"), "i").digest.hex(),
              std::string(64, 'f'));
    EXPECT_EQ(choosePlatform(idx, platform("linux", "armhf"), "i").digest.hex(),
              std::string(64, 'f'));
    EXPECT_EQ(
        chooseError(idx, platform("linux", "amd64")),
        "the index sha256:ff has no image for linux/amd64 (it has: linux/arm/v6, linux/arm/v7)");
}

TEST(ChoosePlatform, SingleEntryWithoutPlatform)
{
    Index idx;
    idx.manifests = {entry("a", std::nullopt)};
    EXPECT_EQ(choosePlatform(idx, platform("linux", "amd64"), "i").digest.hex(),
              std::string(64, 'a'));
    Index empty;
    EXPECT_EQ(chooseError(empty, platform("linux", "amd64")),
              "the index sha256:ff has no image for linux/amd64 (it has: none)");
}

namespace {

std::vector<std::pair<std::string, Descriptor>> blobsOfSizes(std::vector<int64_t> sizes)
{
    std::vector<std::pair<std::string, Descriptor>> out;
    char hex = 'a';
    for (auto size : sizes) {
        Descriptor d;
        d.mediaType = "application/vnd.oci.image.layer.v1.tar+gzip";
        d.digest = Digest::parse("sha256:" + std::string(64, hex++));
        d.size = size;
        out.emplace_back("layer sha256:" + d.digest.shortHex(), d);
    }
    return out;
}

std::string sizeError(const std::vector<int64_t>& sizes, std::optional<uint64_t> free)
{
    try {
        checkBlobSizes(blobsOfSizes(sizes), free, "/var/cache/grocker", "127.0.0.1:5000/app:v1");
    } catch (Error& e) {
        return e.message();
    }
    return "";
}

} // namespace

TEST(BlobSizes, WhatFitsPasses)
{
    EXPECT_EQ(sizeError({}, 0), "");
    EXPECT_EQ(sizeError({100, 200}, 300), "");
    EXPECT_EQ(sizeError({0}, 0), "");
    // Free space unknown (statvfs failed): nothing can be judged.
    EXPECT_EQ(sizeError({INT64_MAX}, std::nullopt), "");
}

TEST(BlobSizes, OneBlobLargerThanTheFreeSpace)
{
    EXPECT_EQ(sizeError({100, INT64_MAX}, 50'000'000'000),
              "layer sha256:" + std::string(64, 'b') +
                  " of 127.0.0.1:5000/app:v1 says it has 9223372036854775807 bytes "
                  "(9223372.0 TB), more than the 50.0 GB free where the store is "
                  "('/var/cache/grocker'): refused before downloading anything; free some space "
                  "(grocker purge, or --root on a larger filesystem) or check the image");
}

TEST(BlobSizes, AllTogetherLargerThanTheFreeSpace)
{
    // Each fits, the sum does not; and a sum of huge sizes never wraps around.
    EXPECT_EQ(sizeError({600, 600}, 1000),
              "the 2 blobs to download of 127.0.0.1:5000/app:v1 make more than 1000 bytes, the "
              "1.00 kB free where the store is ('/var/cache/grocker'): "
              "refused before downloading anything; free some space (grocker purge, or --root "
              "on a larger filesystem) or check the image");
    EXPECT_NE(sizeError({INT64_MAX, INT64_MAX, INT64_MAX}, UINT64_MAX), "");
}

// keepMerged, with writers simulated: the shared object is a set of entries, and a writer that
// read before our write writes its stale merge during our pause, before our read-back.
TEST(KeepMerged, ReadAgainAfterThePauseAndWriteAgainWhenDropped)
{
    std::set<std::string> shared{"theirs"};
    std::set<std::string> stale = shared; // what the other writer read, before our write
    int reads = 0, writes = 0;
    auto read = [&] {
        reads++;
        // The other writer's write lands after ours, before our read-back: it drops ours.
        if (writes == 1 && reads == 2) {
            stale.insert("other");
            shared = stale;
        }
        return shared.count("ours") > 0;
    };
    auto write = [&] {
        writes++;
        shared.insert("ours");
    };
    keepMerged(read, write, 8, "the index");
    EXPECT_EQ(writes, 2);
    // Read first, back after the first write, again before the second, back after it and once
    // more (another writer was seen): no read right after a write, none between a read and a write.
    EXPECT_EQ(reads, 5);
    EXPECT_EQ(shared, (std::set<std::string>{"theirs", "other", "ours"}));
}

TEST(KeepMerged, PatientReadsBackAfterAtLeast150Ms)
{
    // One writer alone: written once, read back once, after the patient pause.
    bool written = false;
    int reads = 0;
    auto start = std::chrono::steady_clock::now();
    keepMerged([&] { return reads++, written; }, [&] { written = true; }, 8, "the .sig", true);
    EXPECT_EQ(reads, 2);
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(150));
}

TEST(KeepMerged, NothingWrittenWhenOursIsThereAndAnErrorAfterTheTries)
{
    int writes = 0;
    keepMerged([] { return true; }, [&] { writes++; }, 8, "the index");
    EXPECT_EQ(writes, 0);
    try {
        keepMerged([] { return false; }, [&] { writes++; }, 2, "the index X");
        FAIL() << "no error";
    } catch (Error& e) {
        EXPECT_EQ(
            e.message(),
            "the index X lost our entries on every try: too many writers at once; push again");
    }
    EXPECT_EQ(writes, 2);
}
