#include "grocker/oci/image.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "oci-helpers.hh"

#include <cstdlib>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <string>
#include <sys/utsname.h>

using namespace grocker;
using namespace grocker::oci;
using grocker::test::errorOf;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

namespace {

const std::string hexA = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const std::string hexB = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string hexC = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";

json descriptorJson(std::string_view mediaType, const std::string& hex, int64_t size)
{
    return {{"mediaType", mediaType}, {"digest", "sha256:" + hex}, {"size", size}};
}

json manifestJson()
{
    return {{"schemaVersion", 2},
            {"mediaType", media::ociManifest},
            {"config", descriptorJson(media::ociConfig, hexA, 100)},
            {"layers", json::array({descriptorJson(media::ociLayerGzip, hexB, 200),
                                    descriptorJson(media::ociLayerGzip, hexC, 300)})}};
}

json indexJson()
{
    auto m = descriptorJson(media::ociManifest, hexA, 500);
    m["platform"] = {{"architecture", "amd64"}, {"os", "linux"}};
    return {{"schemaVersion", 2}, {"mediaType", media::ociIndex}, {"manifests", json::array({m})}};
}

json configJson()
{
    return {{"architecture", "amd64"},
            {"os", "linux"},
            {"rootfs", {{"type", "layers"}, {"diff_ids", json::array({"sha256:" + hexB})}}},
            {"config", {{"Env", json::array({"PATH=/usr/bin"})}}},
            {"history", json::array()}};
}

std::string manifestError(const json& j, std::string_view expected = {})
{
    return errorOf([&] { parseManifest(j.dump(), "manifest m", expected); });
}
std::string indexError(const json& j, std::string_view expected = {})
{
    return errorOf([&] { parseIndex(j.dump(), "index i", expected); });
}
std::string configError(const json& j)
{
    return errorOf([&] { parseConfig(j.dump(), "config c"); });
}

Descriptor descriptorOf(std::string_view bytes, std::string mediaType)
{
    return Descriptor{std::move(mediaType), sha256(bytes), int64_t(bytes.size())};
}

// Compares `actual` with the golden file tests/oci/data/<name>, or rewrites it when
// GROCKER_REGENERATE_GOLDEN=1.
void checkGolden(const std::string& name, const std::string& actual)
{
    auto path = test::testData() / "oci" / "data" / name;
    const char* regen = std::getenv("GROCKER_REGENERATE_GOLDEN");
    if (regen && std::string(regen) == "1") {
        test::writeTestFile(path, actual);
        std::cerr << "regenerated " << path << "\n";
        return;
    }
    std::string expected;
    try {
        expected = readFile(path);
    } catch (Error& e) {
        FAIL() << e.message() << " (run with GROCKER_REGENERATE_GOLDEN=1 to create it)";
    }
    EXPECT_EQ(actual, expected)
        << "the serialisation changed; if on purpose, run with GROCKER_REGENERATE_GOLDEN=1 "
           "and commit "
        << path;
}

} // namespace

// --- media types --------------------------------------------------------------------------

TEST(MediaType, Classifies)
{
    EXPECT_TRUE(media::isManifest(media::ociManifest));
    EXPECT_TRUE(media::isManifest(media::dockerManifest));
    EXPECT_FALSE(media::isManifest(media::ociIndex));
    EXPECT_TRUE(media::isIndex(media::ociIndex));
    EXPECT_TRUE(media::isIndex(media::dockerManifestList));
    EXPECT_FALSE(media::isIndex(media::dockerManifest));
    EXPECT_TRUE(media::isLayer(media::ociLayer));
    EXPECT_TRUE(media::isLayer(media::ociLayerGzip));
    EXPECT_TRUE(media::isLayer(media::ociLayerZstd));
    EXPECT_TRUE(media::isLayer(media::dockerLayerGzip));
    EXPECT_TRUE(media::isLayer(media::dockerLayerForeign));
    EXPECT_FALSE(media::isLayer(media::ociConfig));
}

// --- manifests ------------------------------------------------------------------------------

TEST(ParseManifest, Valid)
{
    auto m = parseManifest(manifestJson().dump(), "manifest m");
    EXPECT_EQ(m.mediaType, media::ociManifest);
    EXPECT_EQ(m.config.mediaType, media::ociConfig);
    EXPECT_EQ(m.config.digest.hex(), hexA);
    EXPECT_EQ(m.config.size, 100);
    ASSERT_EQ(m.layers.size(), 2u);
    EXPECT_EQ(m.layers[1].digest.hex(), hexC);
    EXPECT_EQ(m.layers[1].size, 300);
    EXPECT_FALSE(m.subject);
}

TEST(ParseManifest, DockerSchema2)
{
    auto j = manifestJson();
    j["mediaType"] = media::dockerManifest;
    j["config"]["mediaType"] = media::dockerConfig;
    auto m = parseManifest(j.dump(), "manifest m", media::dockerManifest);
    EXPECT_EQ(m.mediaType, media::dockerManifest);
}

TEST(ParseManifest, MissingMediaTypeTakesTheExpectedOne)
{
    auto j = manifestJson();
    j.erase("mediaType");
    EXPECT_EQ(parseManifest(j.dump(), "m").mediaType, media::ociManifest);
    EXPECT_EQ(parseManifest(j.dump(), "m", media::dockerManifest).mediaType, media::dockerManifest);
}

TEST(ParseManifest, MediaTypeDisagreesWithReferrer)
{
    EXPECT_EQ(manifestError(manifestJson(), media::dockerManifest),
              "manifest m says its mediaType is 'application/vnd.oci.image.manifest.v1+json' but "
              "it was referred to as "
              "'application/vnd.docker.distribution.manifest.v2+json'");
}

TEST(ParseManifest, IndexIsNotAManifest)
{
    EXPECT_EQ(manifestError(indexJson()),
              "manifest m is an index ('application/vnd.oci.image.index.v1+json'), not an image "
              "manifest");
    // Without a mediaType, the shape tells.
    auto j = indexJson();
    j.erase("mediaType");
    EXPECT_EQ(manifestError(j),
              "manifest m is an index ('application/vnd.oci.image.index.v1+json'), not an image "
              "manifest");
}

TEST(ParseManifest, ManifestTypeWithIndexShape)
{
    auto j = manifestJson();
    j["manifests"] = json::array();
    EXPECT_EQ(manifestError(j),
              "manifest m says it is 'application/vnd.oci.image.manifest.v1+json' but has "
              "'manifests' like an index");
}

TEST(ParseManifest, UnsupportedMediaType)
{
    auto j = manifestJson();
    j["mediaType"] = "application/json";
    EXPECT_EQ(manifestError(j), "manifest m: unsupported manifest media type 'application/json'");
}

TEST(ParseManifest, MalformedLayerDigestNamesTheLayer)
{
    auto j = manifestJson();
    j["layers"][1]["digest"] = "sha256:xyz";
    EXPECT_EQ(manifestError(j), "manifest m layer 1: malformed digest 'sha256:xyz': expected 64 "
                                "lowercase hex digits after 'sha256:'");
    j = manifestJson();
    j["config"]["digest"] = "md5:00";
    EXPECT_EQ(manifestError(j), "manifest m config: malformed digest 'md5:00': unsupported "
                                "algorithm 'md5' (sha256 and sha512 are)");
}

TEST(ParseManifest, NegativeSize)
{
    auto j = manifestJson();
    j["layers"][0]["size"] = -1;
    EXPECT_THAT(
        manifestError(j),
        MatchesRegex("manifest m layer 0 \\(sha256:[0-9a-f]{64}\\): size must be a non-negative "
                     "integer, not -1: the image is not valid OCI; ask its publisher to fix it"));
    j["layers"][0]["size"] = 9223372036854775808ull;
    EXPECT_THAT(
        manifestError(j),
        HasSubstr("size must be a non-negative integer of at most 2^63-1 (a descriptor's int64), "
                  "not 9223372036854775808"));
}

TEST(ParseManifest, SizeOfWrongType)
{
    auto j = manifestJson();
    j["layers"][0]["size"] = "200";
    EXPECT_THAT(manifestError(j), HasSubstr("size must be a non-negative integer, not \"200\""));
    j["layers"][0]["size"] = 1.5;
    EXPECT_THAT(manifestError(j), HasSubstr("size must be a non-negative integer, not 1.5"));
    j["layers"][0].erase("size");
    EXPECT_EQ(manifestError(j), "manifest m layer 0: missing field 'size'");
}

TEST(ParseManifest, WrongTypes)
{
    auto j = manifestJson();
    j["config"]["mediaType"] = 3;
    EXPECT_EQ(manifestError(j),
              "manifest m config: field 'mediaType' must be a string, not number");

    j = manifestJson();
    j["layers"] = json::object();
    EXPECT_EQ(manifestError(j), "manifest m: 'layers' must be an array");

    j = manifestJson();
    j["layers"][0] = "sha256:" + hexB;
    EXPECT_EQ(manifestError(j), "manifest m layer 0: a descriptor must be an object");

    j = manifestJson();
    j["mediaType"] = json::array();
    EXPECT_EQ(manifestError(j), "manifest m: field 'mediaType' must be a string, not array");

    j = manifestJson();
    j["annotations"] = {{"k", 1}};
    EXPECT_EQ(manifestError(j), "manifest m: annotation 'k' must be a string");

    j = manifestJson();
    j["annotations"] = "x";
    EXPECT_EQ(manifestError(j), "manifest m: 'annotations' must be an object of strings");

    j = manifestJson();
    j["layers"][0]["urls"] = "http://x";
    EXPECT_EQ(manifestError(j), "manifest m layer 0: 'urls' must be an array of strings");

    j = manifestJson();
    j["layers"][0]["mediaType"] = "not a type";
    EXPECT_EQ(manifestError(j), "manifest m layer 0: malformed media type 'not a type'");

    j = manifestJson();
    j.erase("config");
    EXPECT_EQ(manifestError(j), "manifest m: missing field 'config'");
}

TEST(ParseManifest, NotJson)
{
    EXPECT_THAT(errorOf([] { parseManifest("{not json", "manifest m"); }),
                StartsWith("manifest m is not valid JSON: "));
    EXPECT_THAT(errorOf([] { parseManifest("", "manifest m"); }),
                StartsWith("manifest m is not valid JSON: "));
    EXPECT_EQ(errorOf([] { parseManifest("[1,2]", "manifest m"); }),
              "manifest m must be a JSON object, not array");
    EXPECT_EQ(errorOf([] { parseManifest("\"s\"", "manifest m"); }),
              "manifest m must be a JSON object, not string");
    // A number too large for a double is nlohmann's out_of_range, not a parse_error (found by
    // tests/fuzz/oci-images.cc).
    EXPECT_THAT(errorOf([] { parseManifest(R"({"schemaVersion":2,"size":1e999})", "manifest m"); }),
                StartsWith("manifest m is not valid JSON: "));
    EXPECT_THAT(errorOf([] { parseConfig(R"({"architecture":1e999})", "config c"); }),
                StartsWith("config c is not valid JSON: "));
}

TEST(ParseManifest, SchemaVersion)
{
    auto j = manifestJson();
    j["schemaVersion"] = 1;
    EXPECT_EQ(manifestError(j), "manifest m: schemaVersion must be 2, not 1");
    j["schemaVersion"] = "2";
    EXPECT_EQ(manifestError(j), "manifest m: schemaVersion must be 2, not \"2\"");
    j.erase("schemaVersion");
    EXPECT_EQ(manifestError(j), "manifest m: missing field 'schemaVersion'");
}

TEST(ParseManifest, OptionalFields)
{
    auto j = manifestJson();
    j["annotations"] = {{"org.opencontainers.image.title", "x"}};
    j["subject"] = descriptorJson(media::ociManifest, hexC, 9);
    j["artifactType"] = "application/vnd.example+json";
    j["layers"][0]["urls"] = json::array({"https://example.com/l"});
    j["layers"][0]["annotations"] = json::object({{"a", "b"}});
    auto m = parseManifest(j.dump(), "m");
    EXPECT_EQ(m.annotations.at("org.opencontainers.image.title"), "x");
    ASSERT_TRUE(m.subject);
    EXPECT_EQ(m.subject->digest.hex(), hexC);
    EXPECT_EQ(m.artifactType, "application/vnd.example+json");
    EXPECT_EQ(m.layers[0].urls, std::vector<std::string>{"https://example.com/l"});
    EXPECT_EQ(m.layers[0].annotations.at("a"), "b");
}

// --- indexes --------------------------------------------------------------------------------

TEST(ParseIndex, Valid)
{
    auto i = parseIndex(indexJson().dump(), "index i");
    ASSERT_EQ(i.manifests.size(), 1u);
    ASSERT_TRUE(i.manifests[0].platform);
    EXPECT_EQ(i.manifests[0].platform->architecture, "amd64");
    EXPECT_EQ(i.manifests[0].platform->os, "linux");
}

TEST(ParseIndex, ManifestIsNotAnIndex)
{
    EXPECT_EQ(indexError(manifestJson()),
              "index i is an image manifest ('application/vnd.oci.image.manifest.v1+json'), not an "
              "index");
    auto j = manifestJson();
    j.erase("mediaType");
    EXPECT_EQ(indexError(j), "index i is an image manifest "
                             "('application/vnd.oci.image.manifest.v1+json'), not an index");
}

TEST(ParseIndex, IndexWithLayers)
{
    auto j = indexJson();
    j["layers"] = json::array();
    EXPECT_EQ(indexError(j), "index i: an index must not have 'layers'");
}

TEST(ParseIndex, MediaTypeDisagreesWithReferrer)
{
    EXPECT_EQ(indexError(indexJson(), media::dockerManifestList),
              "index i says its mediaType is 'application/vnd.oci.image.index.v1+json' but it was "
              "referred to as "
              "'application/vnd.docker.distribution.manifest.list.v2+json'");
}

TEST(ParseIndex, BadEntries)
{
    auto j = indexJson();
    j["manifests"][0]["digest"] = "sha256:ABC";
    EXPECT_EQ(indexError(j), "index i manifest 0: malformed digest 'sha256:ABC': expected 64 "
                             "lowercase hex digits after 'sha256:'");
    j = indexJson();
    j["manifests"][0]["platform"] = "linux/amd64";
    EXPECT_EQ(indexError(j), "index i manifest 0: 'platform' must be an object");
    j = indexJson();
    j["manifests"][0]["platform"].erase("os");
    EXPECT_EQ(indexError(j), "index i manifest 0 platform: missing field 'os'");
    j = indexJson();
    j["manifests"] = json::object();
    EXPECT_EQ(indexError(j), "index i: 'manifests' must be an array");
    j = indexJson();
    j["schemaVersion"] = 1;
    EXPECT_EQ(indexError(j), "index i: schemaVersion must be 2, not 1");
}

TEST(ParseIndex, PlatformFields)
{
    auto j = indexJson();
    j["manifests"][0]["platform"] = {{"architecture", "arm"},
                                     {"os", "linux"},
                                     {"variant", "v7"},
                                     {"os.version", "10"},
                                     {"os.features", json::array({"f1"})}};
    auto i = parseIndex(j.dump(), "i");
    auto& p = *i.manifests[0].platform;
    EXPECT_EQ(p.variant, "v7");
    EXPECT_EQ(p.osVersion, "10");
    EXPECT_EQ(p.osFeatures, std::vector<std::string>{"f1"});
    // And back.
    EXPECT_EQ(toJson(i)["manifests"][0]["platform"], j["manifests"][0]["platform"]);
}

TEST(SniffMediaType, FromFieldOrShape)
{
    EXPECT_EQ(sniffMediaType(manifestJson().dump(), "x"), media::ociManifest);
    EXPECT_EQ(sniffMediaType(indexJson().dump(), "x"), media::ociIndex);
    auto j = indexJson();
    j.erase("mediaType");
    EXPECT_EQ(sniffMediaType(j.dump(), "x"), media::ociIndex);
    j = manifestJson();
    j.erase("mediaType");
    EXPECT_EQ(sniffMediaType(j.dump(), "x"), media::ociManifest);
    j["mediaType"] = media::dockerManifestList;
    EXPECT_EQ(sniffMediaType(j.dump(), "x"), media::dockerManifestList);
    EXPECT_THAT(errorOf([] { sniffMediaType("nope", "blob b"); }),
                StartsWith("blob b is not valid JSON: "));
}

// --- configs --------------------------------------------------------------------------------

TEST(ParseConfig, Valid)
{
    auto c = parseConfig(configJson().dump(), "config c");
    ASSERT_EQ(c.diffIds().size(), 1u);
    EXPECT_EQ(c.diffIds()[0].hex(), hexB);
    EXPECT_EQ(c.platform().architecture, "amd64");
    EXPECT_EQ(c.platform().os, "linux");
    // Unknown fields survive.
    auto j = configJson();
    j["x-custom"] = {{"k", 1}};
    EXPECT_EQ(parseConfig(j.dump(), "c").json["x-custom"]["k"], 1);
}

TEST(ParseConfig, Errors)
{
    auto j = configJson();
    j.erase("architecture");
    EXPECT_EQ(configError(j), "config c: missing field 'architecture'");
    j = configJson();
    j["os"] = 1;
    EXPECT_EQ(configError(j), "config c: field 'os' must be a string, not number");
    j = configJson();
    j["variant"] = 7;
    EXPECT_EQ(configError(j), "config c: field 'variant' must be a string, not number");
    j = configJson();
    j["rootfs"]["type"] = "tarballs";
    EXPECT_EQ(configError(j), "config c: rootfs.type must be 'layers'");
    j = configJson();
    j["rootfs"] = json::array();
    EXPECT_EQ(configError(j), "config c: 'rootfs' must be an object");
    j = configJson();
    j["rootfs"]["diff_ids"] = json::array({"sha256:" + hexB, "sha256:nothex"});
    EXPECT_EQ(configError(j), "config c: rootfs.diff_ids[1]: malformed digest 'sha256:nothex': "
                              "expected 64 lowercase hex digits after "
                              "'sha256:'");
    j = configJson();
    j["rootfs"]["diff_ids"] = json::array({7});
    EXPECT_EQ(configError(j), "config c: rootfs.diff_ids[0] must be a string");
    j = configJson();
    j["rootfs"].erase("diff_ids");
    EXPECT_EQ(configError(j), "config c rootfs: missing field 'diff_ids'");
    j = configJson();
    j["config"] = "x";
    EXPECT_EQ(configError(j), "config c: 'config' must be an object");
    j = configJson();
    j["history"] = json::object();
    EXPECT_EQ(configError(j), "config c: 'history' must be an array");
    EXPECT_EQ(errorOf([] { parseConfig("[]", "config c"); }),
              "config c must be a JSON object, not array");
}

TEST(ImageConfig, Scratch)
{
    auto c = ImageConfig::scratch();
    EXPECT_EQ(c.json["os"], "linux");
    EXPECT_EQ(c.json["architecture"], Platform::host().architecture);
    EXPECT_TRUE(c.diffIds().empty());
    // It is a valid config.
    EXPECT_NO_THROW(parseConfig(canonical(c.json), "scratch"));
}

// --- verifyBlob -----------------------------------------------------------------------------

TEST(VerifyBlob, Accepts)
{
    EXPECT_NO_THROW(verifyBlob("abc", descriptorOf("abc", "x"), "blob b"));
}

TEST(VerifyBlob, SizeMismatch)
{
    auto d = descriptorOf("abcd", "x");
    EXPECT_EQ(errorOf([&] { verifyBlob("abc", d, "blob b"); }),
              "blob b has 3 bytes but its descriptor says 4; the source is corrupt or was changed: "
              "fetch it again");
}

TEST(VerifyBlob, DigestMismatch)
{
    auto d = descriptorOf("abd", "x");
    EXPECT_EQ(errorOf([&] { verifyBlob("abc", d, "blob b"); }),
              "blob b has digest sha256:" + hexA + " but " + d.digest.str() +
                  " was expected; the source is corrupt or was changed: fetch it again");
}

TEST(VerifyBlob, Sha512IsNotSupported)
{
    Descriptor d{"x", Digest::parse("sha512:" + std::string(128, 'a')), 3};
    EXPECT_EQ(errorOf([&] { verifyBlob("abc", d, "blob b"); }),
              "blob b: digest algorithm 'sha512' is not supported (sha256 is)");
}

// --- platforms ------------------------------------------------------------------------------

TEST(Platform, Normalise)
{
    auto n = [](std::string arch, std::string variant = "") {
        Platform p;
        p.os = "linux";
        p.architecture = std::move(arch);
        p.variant = std::move(variant);
        return Platform::normalise(p).str();
    };
    EXPECT_EQ(n("x86_64"), "linux/amd64");
    EXPECT_EQ(n("x86-64"), "linux/amd64");
    EXPECT_EQ(n("aarch64"), "linux/arm64");
    EXPECT_EQ(n("arm64", "v8"), "linux/arm64");
    EXPECT_EQ(n("aarch64", "v8"), "linux/arm64");
    EXPECT_EQ(n("armhf"), "linux/arm/v7");
    EXPECT_EQ(n("armel"), "linux/arm/v6");
    EXPECT_EQ(n("i686"), "linux/386");
    EXPECT_EQ(n("ppc64el"), "linux/ppc64le");
    EXPECT_EQ(n("amd64"), "linux/amd64");
    EXPECT_EQ(n("riscv64"), "linux/riscv64");
}

TEST(Platform, Slug)
{
    EXPECT_EQ(Platform::parse("linux/arm64").slug(), "linux-arm64");
    EXPECT_EQ(Platform::parse("linux/armhf").slug(), "linux-arm-v7");
    EXPECT_EQ(Platform::parse("linux/amd64").slug(), "linux-amd64");
}

TEST(Platform, Matches)
{
    auto p = [](std::string arch, std::string variant = "", std::string os = "linux") {
        Platform r;
        r.os = std::move(os);
        r.architecture = std::move(arch);
        r.variant = std::move(variant);
        return r;
    };
    EXPECT_TRUE(p("amd64").matches(p("x86_64")));
    EXPECT_TRUE(p("x86_64").matches(p("amd64")));
    EXPECT_TRUE(p("arm64", "v8").matches(p("arm64")));
    EXPECT_TRUE(p("arm64").matches(p("arm64", "v8")));
    EXPECT_TRUE(p("aarch64").matches(p("arm64", "v8")));
    EXPECT_TRUE(p("arm", "v7").matches(p("arm"))); // no variant wanted: any will do
    EXPECT_FALSE(p("arm", "v6").matches(p("arm", "v7")));
    EXPECT_FALSE(p("amd64").matches(p("arm64")));
    EXPECT_FALSE(p("amd64", "", "windows").matches(p("amd64")));
}

TEST(Platform, Host)
{
    struct utsname u;
    uname(&u);
    auto h = Platform::host();
    EXPECT_EQ(h.os, "linux");
    if (std::string(u.machine) == "x86_64") {
        EXPECT_EQ(h.architecture, "amd64");
    } else if (std::string(u.machine) == "aarch64") {
        EXPECT_EQ(h.architecture, "arm64");
    }
    EXPECT_TRUE(h.matches(h));
}

// --- serialisation --------------------------------------------------------------------------

TEST(Canonical, SortedKeysNoSpaces)
{
    auto j =
        json::parse(R"({ "b" : 1, "a" : { "d" : [1, 2, {"z": null, "y": true}], "c" : "x y" } })");
    EXPECT_EQ(canonical(j), R"({"a":{"c":"x y","d":[1,2,{"y":true,"z":null}]},"b":1})");
}

TEST(Canonical, KeepsUnicodeAsUtf8)
{
    auto j = json::parse("{\"k\":\"caf\\u00e9\"}");
    EXPECT_EQ(canonical(j), "{\"k\":\"caf\xc3\xa9\"}");
}

TEST(Canonical, ManifestOutput)
{
    Manifest m = parseManifest(manifestJson().dump(2), "m");
    auto bytes = canonical(toJson(m));
    EXPECT_EQ(bytes.find(' '), std::string::npos);
    EXPECT_EQ(bytes.find('\n'), std::string::npos);
    EXPECT_THAT(bytes, StartsWith(R"({"config":{"digest":"sha256:)" + hexA + R"(","mediaType":)"));
    // Sorted top-level keys: config < layers < mediaType < schemaVersion.
    auto c = bytes.find("\"config\""), l = bytes.find("\"layers\""),
         mt = bytes.rfind("\"mediaType\""), s = bytes.find("\"schemaVersion\"");
    EXPECT_LT(c, l);
    EXPECT_LT(l, mt);
    EXPECT_LT(mt, s);
}

TEST(Serialise, ManifestRoundTrip)
{
    auto j = manifestJson();
    j["annotations"] = {{"b", "2"}, {"a", "1"}};
    j["subject"] = descriptorJson(media::ociManifest, hexC, 9);
    j["artifactType"] = "application/vnd.example+json";
    j["layers"][0]["urls"] = json::array({"https://example.com/l"});
    j["layers"][1]["annotations"] = {{"x", "y"}};
    auto m = parseManifest(j.dump(), "m");
    auto bytes = canonical(toJson(m));
    EXPECT_EQ(bytes, canonical(j));
    auto again = parseManifest(bytes, "m again");
    EXPECT_EQ(canonical(toJson(again)), bytes);
    EXPECT_EQ(again.layers[0].urls, m.layers[0].urls);
    EXPECT_EQ(again.annotations, m.annotations);
    EXPECT_EQ(again.subject->digest, m.subject->digest);
}

TEST(Serialise, IndexRoundTrip)
{
    auto j = indexJson();
    j["annotations"] = {{"k", "v"}};
    j["manifests"][0]["annotations"] = {{"org.opencontainers.image.ref.name", "v1"}};
    auto i = parseIndex(j.dump(), "i");
    EXPECT_EQ(canonical(toJson(i)), canonical(j));
    EXPECT_EQ(canonical(toJson(parseIndex(canonical(toJson(i)), "i2"))), canonical(j));
}

TEST(Serialise, EmptyOptionalFieldsAreLeftOut)
{
    Descriptor d{std::string(media::ociLayer), Digest::parse("sha256:" + hexA), 5};
    EXPECT_EQ(canonical(toJson(d)), R"({"digest":"sha256:)" + hexA + R"(","mediaType":")" +
                                        std::string(media::ociLayer) + R"(","size":5})");
    EXPECT_EQ(
        canonical(toJson(Index{})),
        R"({"manifests":[],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2})");
}

TEST(Rfc3339, Formats)
{
    EXPECT_EQ(rfc3339(0), "1970-01-01T00:00:00Z");
    EXPECT_EQ(rfc3339(1700000000), "2023-11-14T22:13:20Z");
}

// --- golden files ---------------------------------------------------------------------------

TEST(Golden, Manifest)
{
    Manifest m;
    m.config = Descriptor{std::string(media::ociConfig), sha256("config"), 6};
    m.layers.push_back(Descriptor{std::string(media::ociLayerGzip), sha256("layer one"), 1234});
    m.layers.push_back(Descriptor{std::string(media::ociLayerZstd), sha256("layer two"), 5678});
    m.layers[1].annotations["org.opencontainers.image.title"] = "two";
    m.annotations["org.opencontainers.image.version"] = "1.0";
    m.annotations["org.opencontainers.image.created"] = rfc3339(0);
    checkGolden("manifest.golden.json", canonical(toJson(m)));
}

TEST(Golden, Config)
{
    json j = {{"architecture", "amd64"},
              {"os", "linux"},
              {"created", rfc3339(0)},
              {"config",
               {{"Env", json::array({"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"})},
                {"Entrypoint", json::array({"/entrypoint"})},
                {"Cmd", json::array({"www"})},
                {"User", "grocker"},
                {"WorkingDir", "/app"},
                {"ExposedPorts", {{"8080/tcp", json::object()}}},
                {"Volumes", {{"/config", json::object()}}},
                {"Labels", {{"org.example", "x"}}}}},
              {"rootfs",
               {{"type", "layers"},
                {"diff_ids", json::array({sha256("layer one").str(), sha256("layer two").str()})}}},
              {"history", json::array({{{"created", rfc3339(0)}, {"created_by", "grocker root"}},
                                       {{"created", rfc3339(0)},
                                        {"created_by", "grocker runner"},
                                        {"comment", "app"}}})}};
    auto c = parseConfig(j.dump(4), "config");
    checkGolden("config.golden.json", canonical(c.json));
}
