#include "grocker/oci/transport.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/layer-writer.hh"
#include "grocker/oci/store.hh"
#include "oci-helpers.hh"

#include <functional>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <map>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace grocker;
using namespace grocker::oci;
using grocker::test::errorOf;
using grocker::test::inChildProcesses;
using grocker::test::readArchive;
using grocker::test::run;
using grocker::test::TempDir;
using grocker::test::writeTestFile;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace fs = std::filesystem;

namespace {

const std::string transports =
    "use scratch, oci:DIR[:TAG], oci-archive:FILE[:REF], docker-archive:FILE[:REF] or docker://REF";

// An image of one layer holding `content`, for `arch`, committed to `store`.
Image makeImage(Store& store, const fs::path& work, const std::string& content,
                const std::string& arch = "", Compression compression = Compression::Gzip)
{
    auto tree = work / ("tree-" + std::to_string(std::hash<std::string>{}(content + arch)));
    writeTestFile(tree / "content.txt", content);
    LayerOptions o;
    o.compress.compression = compression;
    auto layer = writeLayer(store, tree, "/", o);
    auto config = ImageConfig::scratch();
    if (!arch.empty()) config.json["architecture"] = arch;
    config.json["rootfs"]["diff_ids"].push_back(layer.diffId.str());
    config.json["history"].push_back({{"created", rfc3339(0)}, {"created_by", "test " + content}});
    config.json["config"]["Env"] = json::array({"CONTENT=" + content});
    Manifest m;
    m.layers.push_back(layer.descriptor);
    return commitImage(store, m, config);
}

// The files of the tar `file`, by path.
std::map<std::string, std::string> archiveFiles(const fs::path& file)
{
    std::map<std::string, std::string> out;
    for (auto& e : readArchive(readFile(file)))
        out[e.path] = e.data;
    return out;
}

// Copies every blob of `image` from `store` into the layout folder `dir`.
void copyBlobs(const Store& store, const Image& image, const fs::path& dir)
{
    fs::create_directories(dir / "blobs" / "sha256");
    std::vector<Digest> ds{image.manifestDescriptor.digest, image.manifest.config.digest};
    for (auto& l : image.manifest.layers)
        ds.push_back(l.digest);
    for (auto& d : ds)
        writeTestFile(dir / "blobs" / "sha256" / d.hex(), readFile(store.blobPath(d)));
}

Descriptor withPlatform(Descriptor d, const std::string& arch)
{
    d.platform = Platform{};
    d.platform->os = "linux";
    d.platform->architecture = arch;
    return d;
}

Platform platform(const std::string& arch)
{
    Platform p;
    p.os = "linux";
    p.architecture = arch;
    return p;
}

std::string otherArch()
{
    return Platform::host().architecture == "arm64" ? "amd64" : "arm64";
}

void flipLastByte(const fs::path& p)
{
    ASSERT_EQ(::chmod(p.c_str(), 0644), 0);
    auto bytes = readFile(p);
    bytes.back() = char(bytes.back() ^ 1);
    writeTestFile(p, bytes);
}

} // namespace

// --- ImageRef -----------------------------------------------------------------------------

TEST(ImageRef, Scratch)
{
    auto r = ImageRef::parse("scratch");
    EXPECT_EQ(r.kind, ImageRef::Kind::Scratch);
    EXPECT_EQ(r.str(), "scratch");
}

TEST(ImageRef, OciDir)
{
    auto r = ImageRef::parse("oci:/var/images/app");
    EXPECT_EQ(r.kind, ImageRef::Kind::Oci);
    EXPECT_EQ(r.path, "/var/images/app");
    EXPECT_EQ(r.ref, "");
    EXPECT_EQ(r.str(), "oci:/var/images/app");
    r = ImageRef::parse("oci:out:v1.2");
    EXPECT_EQ(r.path, "out");
    EXPECT_EQ(r.ref, "v1.2");
    EXPECT_EQ(r.str(), "oci:out:v1.2");
}

TEST(ImageRef, OciArchive)
{
    auto r = ImageRef::parse("oci-archive:/tmp/a.tar:app:1");
    EXPECT_EQ(r.kind, ImageRef::Kind::OciArchive);
    EXPECT_EQ(r.path, "/tmp/a.tar");
    EXPECT_EQ(r.ref, "app:1"); // the path ends at the first ':'
    EXPECT_EQ(r.str(), "oci-archive:/tmp/a.tar:app:1");
    EXPECT_EQ(ImageRef::parse("oci-archive:a.tar").ref, "");
}

TEST(ImageRef, DockerArchive)
{
    auto r = ImageRef::parse("docker-archive:/tmp/a.tar:busybox:1");
    EXPECT_EQ(r.kind, ImageRef::Kind::DockerArchive);
    EXPECT_EQ(r.path, "/tmp/a.tar");
    EXPECT_EQ(r.ref, "busybox:1");
    EXPECT_EQ(r.str(), "docker-archive:/tmp/a.tar:busybox:1");
    EXPECT_EQ(ImageRef::parse("docker-archive:a.tar").str(), "docker-archive:a.tar");
    // The name is a docker reference, checked early: misuse, said with the location.
    EXPECT_EQ(errorOf([] { ImageRef::parse("docker-archive:a.tar:Bad"); }),
              "image location 'docker-archive:a.tar:Bad': invalid image reference 'Bad': "
              "repository names must be lowercase");
    EXPECT_THROW(ImageRef::parse("docker-archive:a.tar:Bad"), UsageError);
}

TEST(ImageRef, Docker)
{
    auto r = ImageRef::parse("docker://localhost:5000/app:1");
    EXPECT_EQ(r.kind, ImageRef::Kind::Docker);
    EXPECT_EQ(r.ref, "localhost:5000/app:1");
    EXPECT_EQ(r.str(), "docker://localhost:5000/app:1");
    EXPECT_EQ(ImageRef::parse("docker://ubuntu").ref, "ubuntu");
    EXPECT_EQ(errorOf([] { ImageRef::parse("docker://UPPER"); }),
              "image location 'docker://UPPER': invalid image reference 'UPPER': repository names "
              "must be lowercase");
    EXPECT_EQ(errorOf([] { ImageRef::parse("docker://"); }),
              "image location 'docker://': invalid image reference '': it is empty");
    EXPECT_THROW(ImageRef::parse("docker://UPPER"), UsageError);
}

TEST(ImageRef, DockerNeedsSlashes)
{
    EXPECT_EQ(errorOf([] { ImageRef::parse("docker:ubuntu"); }),
              "image location 'docker:ubuntu': docker references start with docker://");
    EXPECT_EQ(errorOf([] { ImageRef::parse("docker:/ubuntu"); }),
              "image location 'docker:/ubuntu': docker references start with docker://");
    EXPECT_THROW(ImageRef::parse("docker:ubuntu"), UsageError);
}

TEST(ImageRef, UnknownTransport)
{
    EXPECT_EQ(errorOf([] { ImageRef::parse("ftp:x"); }),
              "unknown transport 'ftp' in 'ftp:x': " + transports);
    EXPECT_EQ(errorOf([] { ImageRef::parse("ubuntu:22.04"); }),
              "unknown transport 'ubuntu' in 'ubuntu:22.04': " + transports);
    EXPECT_EQ(errorOf([] { ImageRef::parse("containers-storage:x"); }),
              "unknown transport 'containers-storage' in 'containers-storage:x': " + transports);
    EXPECT_THROW(ImageRef::parse("ftp:x"), UsageError);
}

TEST(ImageRef, NoTransport)
{
    EXPECT_EQ(errorOf([] { ImageRef::parse("ubuntu"); }),
              "image location 'ubuntu' has no transport: " + transports);
    EXPECT_EQ(errorOf([] { ImageRef::parse(""); }),
              "image location '' has no transport: " + transports);
    EXPECT_THROW(ImageRef::parse("ubuntu"), UsageError);
}

TEST(ImageRef, EmptyPath)
{
    EXPECT_EQ(errorOf([] { ImageRef::parse("oci:"); }), "image location 'oci:' has an empty path");
    EXPECT_EQ(errorOf([] { ImageRef::parse("oci::tag"); }),
              "image location 'oci::tag' has an empty path");
    EXPECT_EQ(errorOf([] { ImageRef::parse("docker-archive:"); }),
              "image location 'docker-archive:' has an empty path");
    EXPECT_THROW(ImageRef::parse("oci-archive:"), UsageError);
}

// --- commit, save, load ---------------------------------------------------------------------

TEST(CommitImage, Canonical)
{
    TempDir tmp;
    Store store(tmp / "s");
    auto img = makeImage(store, tmp.path(), "hello");
    EXPECT_EQ(img.manifestDescriptor.mediaType, media::ociManifest);
    EXPECT_EQ(img.manifest.mediaType, media::ociManifest);
    EXPECT_EQ(img.manifest.config.mediaType, media::ociConfig);
    EXPECT_EQ(img.manifestBytes, canonical(toJson(img.manifest)));
    EXPECT_EQ(img.configBytes, canonical(img.config.json));
    EXPECT_EQ(img.manifestDescriptor.digest, sha256(img.manifestBytes));
    EXPECT_EQ(img.manifestDescriptor.size, int64_t(img.manifestBytes.size()));
    EXPECT_EQ(img.manifest.config.digest, sha256(img.configBytes));
    EXPECT_TRUE(store.hasBlob(img.manifestDescriptor.digest));
    EXPECT_TRUE(store.hasBlob(img.manifest.config.digest));
    // The same inputs, the same digests.
    auto again = makeImage(store, tmp / "again", "hello");
    EXPECT_EQ(again.manifestDescriptor.digest, img.manifestDescriptor.digest);

    auto fromStore = imageFromStore(store, img.manifestDescriptor);
    EXPECT_EQ(fromStore.manifestBytes, img.manifestBytes);
    EXPECT_EQ(fromStore.configBytes, img.configBytes);
}

TEST(ImageFromStore, LayerCountMismatch)
{
    TempDir tmp;
    Store store(tmp / "s");
    auto img = makeImage(store, tmp.path(), "x");
    Manifest m = img.manifest;
    auto bad = commitImage(store, m, ImageConfig::scratch()); // one layer, no diff_ids
    EXPECT_EQ(errorOf([&] { imageFromStore(store, bad.manifestDescriptor); }),
              "manifest " + bad.manifestDescriptor.digest.str() +
                  " has 1 layers but its config has 0 diff_ids");
}

TEST(LoadImage, Scratch)
{
    TempDir tmp;
    Store store(tmp / "s");
    auto img = loadImage(store, ImageRef::parse("scratch"));
    EXPECT_TRUE(img.manifest.layers.empty());
    EXPECT_TRUE(img.config.diffIds().empty());
    EXPECT_TRUE(store.hasBlob(img.manifestDescriptor.digest));
}

TEST(OciDir, RoundTrip)
{
    TempDir tmp;
    Store src(tmp / "src");
    auto img = makeImage(src, tmp.path(), "round trip");
    auto dir = tmp / "layout";
    saveImage(src, img, ImageRef::parse("oci:" + dir.string() + ":v1"));

    EXPECT_EQ(readFile(dir / "oci-layout"), R"({"imageLayoutVersion":"1.0.0"})");
    auto idx = parseIndex(readFile(dir / "index.json"), "index.json");
    ASSERT_EQ(idx.manifests.size(), 1u);
    EXPECT_EQ(idx.manifests[0].digest, img.manifestDescriptor.digest);
    EXPECT_EQ(idx.manifests[0].annotations,
              (std::map<std::string, std::string>{{"org.opencontainers.image.ref.name", "v1"}}));
    EXPECT_EQ(readFile(dir / "blobs" / "sha256" / img.manifestDescriptor.digest.hex()),
              img.manifestBytes);
    EXPECT_EQ(readFile(dir / "blobs" / "sha256" / img.manifest.config.digest.hex()),
              img.configBytes);
    EXPECT_TRUE(fs::exists(dir / "blobs" / "sha256" / img.manifest.layers[0].digest.hex()));
    EXPECT_FALSE(fs::exists(dir / "index.json.lock"));

    Store dst(tmp / "dst");
    auto loaded = loadImage(dst, ImageRef::parse("oci:" + dir.string() + ":v1"));
    EXPECT_EQ(loaded.manifestDescriptor.digest, img.manifestDescriptor.digest);
    EXPECT_EQ(loaded.manifestBytes, img.manifestBytes);
    EXPECT_EQ(loaded.configBytes, img.configBytes);
    EXPECT_TRUE(dst.hasBlob(img.manifest.layers[0].digest));
    EXPECT_NO_THROW(dst.verifyStoredBlob(img.manifest.layers[0].digest, "layer"));
    // With one image, no tag is needed.
    EXPECT_EQ(loadImage(dst, ImageRef::parse("oci:" + dir.string())).manifestDescriptor.digest,
              img.manifestDescriptor.digest);
}

TEST(OciDir, TwoTagsInOneFolder)
{
    TempDir tmp;
    Store src(tmp / "src");
    auto a = makeImage(src, tmp.path(), "image a");
    auto b = makeImage(src, tmp.path(), "image b");
    auto dir = tmp / "layout";
    saveImage(src, a, ImageRef::parse("oci:" + dir.string() + ":a"));
    saveImage(src, b, ImageRef::parse("oci:" + dir.string() + ":b"));
    Store dst(tmp / "dst");
    EXPECT_EQ(
        loadImage(dst, ImageRef::parse("oci:" + dir.string() + ":a")).manifestDescriptor.digest,
        a.manifestDescriptor.digest);
    EXPECT_EQ(
        loadImage(dst, ImageRef::parse("oci:" + dir.string() + ":b")).manifestDescriptor.digest,
        b.manifestDescriptor.digest);
    EXPECT_EQ(errorOf([&] { loadImage(dst, ImageRef::parse("oci:" + dir.string())); }),
              "oci:" + dir.string() + " holds 2 images; name one with its tag (tags: a, b)");
    EXPECT_EQ(errorOf([&] { loadImage(dst, ImageRef::parse("oci:" + dir.string() + ":c")); }),
              "oci:" + dir.string() + ":c: no image tagged 'c' (tags: a, b)");

    // Saving a tag again replaces it.
    saveImage(src, b, ImageRef::parse("oci:" + dir.string() + ":a"));
    auto idx = parseIndex(readFile(dir / "index.json"), "index.json");
    EXPECT_EQ(idx.manifests.size(), 2u);
    EXPECT_EQ(
        loadImage(dst, ImageRef::parse("oci:" + dir.string() + ":a")).manifestDescriptor.digest,
        b.manifestDescriptor.digest);
}

TEST(OciDir, UntaggedSavedTwiceIsListedOnce)
{
    TempDir tmp;
    Store src(tmp / "src");
    auto a = makeImage(src, tmp.path(), "image a");
    auto dir = tmp / "layout";
    saveImage(src, a, ImageRef::parse("oci:" + dir.string()));
    saveImage(src, a, ImageRef::parse("oci:" + dir.string()));
    auto idx = parseIndex(readFile(dir / "index.json"), "index.json");
    ASSERT_EQ(idx.manifests.size(), 1u);
    EXPECT_TRUE(idx.manifests[0].annotations.empty());
}

TEST(OciDir, NameRefGetsContainerdName)
{
    TempDir tmp;
    Store src(tmp / "src");
    auto a = makeImage(src, tmp.path(), "image a");
    auto dir = tmp / "layout";
    saveImage(src, a, ImageRef::parse("oci:" + dir.string() + ":example.com/app:2"));
    auto idx = parseIndex(readFile(dir / "index.json"), "index.json");
    ASSERT_EQ(idx.manifests.size(), 1u);
    EXPECT_EQ(idx.manifests[0].annotations,
              (std::map<std::string, std::string>{
                  {"io.containerd.image.name", "example.com/app:2"},
                  {"org.opencontainers.image.ref.name", "example.com/app:2"}}));
}

TEST(OciDir, Errors)
{
    TempDir tmp;
    Store dst(tmp / "dst");
    EXPECT_EQ(errorOf([&] { loadImage(dst, ImageRef::parse("oci:" + (tmp / "nope").string())); }),
              "oci:" + (tmp / "nope").string() + ": no such folder; check the path");
    fs::create_directories(tmp / "empty");
    EXPECT_EQ(errorOf([&] { loadImage(dst, ImageRef::parse("oci:" + (tmp / "empty").string())); }),
              "oci:" + (tmp / "empty").string() + ": not an OCI image layout (no oci-layout file)");
    EXPECT_EQ(errorOf([&] {
                  saveImage(dst, loadImage(dst, ImageRef::parse("scratch")),
                            ImageRef::parse("scratch"));
              }),
              "while writing scratch: scratch cannot be a destination");
    EXPECT_THROW(
        saveImage(dst, loadImage(dst, ImageRef::parse("scratch")), ImageRef::parse("scratch")),
        UsageError);
    EXPECT_EQ(errorOf([&] { loadImage(dst, ImageRef::parse("docker://ubuntu")); }),
              "docker:// images are read by the registry library");
}

TEST(OciDir, CorruptLayerIsRefused)
{
    TempDir tmp;
    Store src(tmp / "src");
    auto img = makeImage(src, tmp.path(), "to be corrupted");
    auto dir = tmp / "layout";
    saveImage(src, img, ImageRef::parse("oci:" + dir.string() + ":v1"));
    auto layer = img.manifest.layers[0].digest;
    auto path = dir / "blobs" / "sha256" / layer.hex();
    flipLastByte(path);
    Store dst(tmp / "dst");
    auto location = "oci:" + dir.string() + ":v1";
    EXPECT_EQ(errorOf([&] { loadImage(dst, ImageRef::parse(location)); }),
              location + " layer " + layer.str() + " has digest " + sha256(readFile(path)).str() +
                  " but " + layer.str() +
                  " was expected; the source is corrupt or was changed: fetch it again");
    EXPECT_FALSE(dst.hasBlob(layer));
    EXPECT_TRUE(fs::is_empty(dst.tmpDir()));
}

TEST(OciDir, ConcurrentSavesKeepEveryTag)
{
    // Several processes tagging into one layout: index.json updates must not be lost.
    // A lock file removed after use let two writers hold two different files (lost tags);
    // the layout folder itself is now the lock.
    TempDir tmp;
    Store src(tmp / "src");
    auto img = makeImage(src, tmp.path(), "shared");
    for (int round = 0; round < 10; round++) {
        auto dir = tmp / ("layout" + std::to_string(round));
        inChildProcesses(8, [&](int k) {
            saveImage(src, img, ImageRef::parse("oci:" + dir.string() + ":t" + std::to_string(k)));
        });
        auto idx = parseIndex(readFile(dir / "index.json"), "index.json");
        EXPECT_EQ(idx.manifests.size(), 8u)
            << "round " << round << ": " << readFile(dir / "index.json");
    }
}

// --- archives -------------------------------------------------------------------------------

TEST(OciArchive, RoundTrip)
{
    TempDir tmp;
    Store src(tmp / "src");
    auto img = makeImage(src, tmp.path(), "archive me");
    auto file = (tmp / "image.tar").string();
    saveImage(src, img, ImageRef::parse("oci-archive:" + file + ":v1"));
    Store dst(tmp / "dst");
    auto loaded = loadImage(dst, ImageRef::parse("oci-archive:" + file + ":v1"));
    EXPECT_EQ(loaded.manifestDescriptor.digest, img.manifestDescriptor.digest);
    EXPECT_EQ(loaded.manifestBytes, img.manifestBytes);
    EXPECT_EQ(loaded.configBytes, img.configBytes);
    EXPECT_NO_THROW(dst.verifyStoredBlob(img.manifest.layers[0].digest, "layer"));
    Store dst2(tmp / "dst2");
    EXPECT_EQ(loadImage(dst2, ImageRef::parse("oci-archive:" + file)).manifestDescriptor.digest,
              img.manifestDescriptor.digest);
    EXPECT_EQ(errorOf([&] { loadImage(dst2, ImageRef::parse("oci-archive:" + file + ":v2")); }),
              "oci-archive:" + file + ":v2: no image tagged 'v2' (tags: v1)");
    // No temp file left beside the archive.
    for (auto& e : fs::directory_iterator(tmp.path()))
        EXPECT_FALSE(e.path().filename().string().starts_with(".tmp-")) << e.path();
}

TEST(OciArchive, Contents)
{
    TempDir tmp;
    Store src(tmp / "src");
    auto img = makeImage(src, tmp.path(), "contents");
    auto file = tmp / "image.tar";
    saveImage(src, img, ImageRef::parse("oci-archive:" + file.string() + ":myapp:1.0"));
    auto files = archiveFiles(file);
    auto m = img.manifestDescriptor.digest.hex(), c = img.manifest.config.digest.hex(),
         l = img.manifest.layers[0].digest.hex();
    std::vector<std::string> names;
    for (auto& [k, v] : files)
        names.push_back(k);
    EXPECT_THAT(names, ::testing::UnorderedElementsAre(
                           "blobs/", "blobs/sha256/", "blobs/sha256/" + m, "blobs/sha256/" + c,
                           "blobs/sha256/" + l, "index.json", "manifest.json", "oci-layout"));
    EXPECT_EQ(files["oci-layout"], R"({"imageLayoutVersion":"1.0.0"})");
    auto idx = parseIndex(files["index.json"], "index.json");
    ASSERT_EQ(idx.manifests.size(), 1u);
    EXPECT_EQ(idx.manifests[0].annotations,
              (std::map<std::string, std::string>{
                  {"io.containerd.image.name", "docker.io/library/myapp:1.0"},
                  {"org.opencontainers.image.ref.name", "myapp:1.0"}}));
    EXPECT_EQ(json::parse(files["manifest.json"]),
              json::parse(R"([{"Config":"blobs/sha256/)" + c +
                          R"(","RepoTags":["myapp:1.0"],"Layers":["blobs/sha256/)" + l +
                          R"("]}])"));
    EXPECT_EQ(files["blobs/sha256/" + m], img.manifestBytes);

    // GNU tar reads it too.
    auto t = run({"tar", "-tf", file.string()});
    EXPECT_EQ(t.status, 0) << t.err;
    EXPECT_THAT(t.out, HasSubstr("index.json\nmanifest.json\noci-layout\n"));
}

TEST(DockerArchive, Contents)
{
    TempDir tmp;
    Store src(tmp / "src");
    auto img = makeImage(src, tmp.path(), "docker contents");
    auto file = tmp / "image.tar";
    saveImage(src, img, ImageRef::parse("docker-archive:" + file.string() + ":myapp:1.0"));
    auto files = archiveFiles(file);
    auto idx = parseIndex(files["index.json"], "index.json");
    ASSERT_EQ(idx.manifests.size(), 1u);
    // docker save's convention: the ref.name is the tag alone.
    EXPECT_EQ(idx.manifests[0].annotations,
              (std::map<std::string, std::string>{
                  {"io.containerd.image.name", "docker.io/library/myapp:1.0"},
                  {"org.opencontainers.image.ref.name", "1.0"}}));
    auto mj = json::parse(files["manifest.json"]);
    ASSERT_TRUE(mj.is_array());
    ASSERT_EQ(mj.size(), 1u);
    EXPECT_EQ(mj[0]["RepoTags"], json::array({"myapp:1.0"}));
    EXPECT_EQ(mj[0]["Config"], "blobs/sha256/" + img.manifest.config.digest.hex());
    EXPECT_EQ(mj[0]["Layers"],
              json::array({"blobs/sha256/" + img.manifest.layers[0].digest.hex()}));
}

TEST(DockerArchive, RoundTripKeepsTheManifestDigest)
{
    for (auto c : {Compression::Gzip, Compression::Zstd, Compression::None}) {
        TempDir tmp;
        Store src(tmp / "src");
        auto img = makeImage(src, tmp.path(), "docker round trip", "", c);
        auto file = (tmp / "image.tar").string();
        saveImage(src, img, ImageRef::parse("docker-archive:" + file + ":myapp:1.0"));
        Store dst(tmp / "dst");
        // manifest.json has no manifest: it is rebuilt, and must come out byte for byte the same.
        auto loaded = loadImage(dst, ImageRef::parse("docker-archive:" + file));
        EXPECT_EQ(loaded.manifestBytes, img.manifestBytes) << compressionName(c);
        EXPECT_EQ(loaded.manifestDescriptor.digest, img.manifestDescriptor.digest)
            << compressionName(c);
        EXPECT_EQ(loaded.configBytes, img.configBytes) << compressionName(c);
        EXPECT_EQ(loaded.manifest.layers[0].mediaType, img.manifest.layers[0].mediaType)
            << compressionName(c);
        // Selected by name, in any spelling of it.
        EXPECT_EQ(loadImage(dst, ImageRef::parse("docker-archive:" + file + ":myapp:1.0"))
                      .manifestDescriptor.digest,
                  img.manifestDescriptor.digest);
        EXPECT_EQ(loadImage(dst, ImageRef::parse("docker-archive:" + file +
                                                 ":docker.io/library/myapp:1.0"))
                      .manifestDescriptor.digest,
                  img.manifestDescriptor.digest);
        EXPECT_EQ(errorOf([&] {
                      loadImage(dst, ImageRef::parse("docker-archive:" + file + ":other:1"));
                  }),
                  "docker-archive:" + file + ":other:1: no image named 'other:1'");
        // The same file read as an OCI archive gives the same image.
        Store dst2(tmp / "dst2");
        EXPECT_EQ(loadImage(dst2, ImageRef::parse("oci-archive:" + file)).manifestDescriptor.digest,
                  img.manifestDescriptor.digest);
    }
}

TEST(DockerArchive, NotAnArchive)
{
    TempDir tmp;
    Store dst(tmp / "dst");
    writeTestFile(tmp / "plain" / "hello", "hi");
    ASSERT_EQ(run({"tar", "-C", (tmp / "plain").string(), "-cf", (tmp / "plain.tar").string(), "."})
                  .status,
              0);
    EXPECT_EQ(errorOf([&] {
                  loadImage(dst, ImageRef::parse("docker-archive:" + (tmp / "plain.tar").string()));
              }),
              "docker-archive:" + (tmp / "plain.tar").string() +
                  ": not a docker-save archive (no manifest.json)");
    EXPECT_EQ(errorOf([&] {
                  loadImage(dst, ImageRef::parse("oci-archive:" + (tmp / "plain.tar").string()));
              }),
              "oci-archive:" + (tmp / "plain.tar").string() +
                  ": not an OCI archive (no index.json); it is truncated, or a docker save tar "
                  "(then use docker-archive:)");
    // A layout without its oci-layout file (a truncated archive) is refused too.
    Store src(tmp / "src");
    auto img = makeImage(src, tmp.path(), "no layout");
    saveImage(src, img, ImageRef::parse("oci:" + (tmp / "layout").string() + ":v1"));
    fs::remove(tmp / "layout" / "oci-layout");
    ASSERT_EQ(
        run({"tar", "-C", (tmp / "layout").string(), "-cf", (tmp / "nolayout.tar").string(), "."})
            .status,
        0);
    EXPECT_EQ(errorOf([&] {
                  loadImage(dst, ImageRef::parse("oci-archive:" + (tmp / "nolayout.tar").string()));
              }),
              "oci-archive:" + (tmp / "nolayout.tar").string() +
                  ": not an OCI archive (no oci-layout); it is truncated, or a docker save tar "
                  "(then use docker-archive:)");
    EXPECT_THAT(errorOf([&] {
                    loadImage(dst,
                              ImageRef::parse("oci-archive:" + (tmp / "missing.tar").string()));
                }),
                StartsWith("unable to open oci-archive:" + (tmp / "missing.tar").string()));
}

// --- multi-platform -------------------------------------------------------------------------

TEST(MultiPlatform, TopLevelEntriesPickTheHost)
{
    TempDir tmp;
    Store src(tmp / "src");
    auto host = makeImage(src, tmp.path(), "host image", Platform::host().architecture);
    auto other = makeImage(src, tmp.path(), "other image", otherArch());
    auto dir = tmp / "layout";
    copyBlobs(src, host, dir);
    copyBlobs(src, other, dir);
    writeTestFile(dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    Index idx;
    idx.manifests.push_back(withPlatform(other.manifestDescriptor, otherArch()));
    idx.manifests.push_back(withPlatform(host.manifestDescriptor, Platform::host().architecture));
    writeTestFile(dir / "index.json", canonical(toJson(idx)));

    Store dst(tmp / "dst");
    auto ref = ImageRef::parse("oci:" + dir.string());
    EXPECT_EQ(loadImage(dst, ref).manifestDescriptor.digest, host.manifestDescriptor.digest);
    EXPECT_EQ(loadImage(dst, ref, platform(otherArch())).manifestDescriptor.digest,
              other.manifestDescriptor.digest);
    EXPECT_EQ(errorOf([&] { loadImage(dst, ref, platform("s390x")); }),
              "oci:" + dir.string() + " holds 2 images; name one with its tag (tags: none)");
}

namespace {

// A layout (tmp/layout) whose index.json names `multi` an index of the other platform's image
// and the host's, in that order.
struct NestedLayout {
    Image host, other;
    fs::path dir;
    std::string nestedBytes; // the index's
};

NestedLayout nestedLayout(const TempDir& tmp, Store& src)
{
    NestedLayout l;
    l.host = makeImage(src, tmp.path(), "host image", Platform::host().architecture);
    l.other = makeImage(src, tmp.path(), "other image", otherArch());
    l.dir = tmp / "layout";
    copyBlobs(src, l.host, l.dir);
    copyBlobs(src, l.other, l.dir);
    writeTestFile(l.dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    Index nested;
    nested.manifests.push_back(withPlatform(l.other.manifestDescriptor, otherArch()));
    nested.manifests.push_back(
        withPlatform(l.host.manifestDescriptor, Platform::host().architecture));
    l.nestedBytes = canonical(toJson(nested));
    writeTestFile(l.dir / "blobs" / "sha256" / sha256(l.nestedBytes).hex(), l.nestedBytes);
    Index top;
    Descriptor d{std::string(media::ociIndex), sha256(l.nestedBytes),
                 int64_t(l.nestedBytes.size())};
    d.annotations["org.opencontainers.image.ref.name"] = "multi";
    top.manifests.push_back(d);
    writeTestFile(l.dir / "index.json", canonical(toJson(top)));
    return l;
}

} // namespace

TEST(MultiPlatform, NestedIndexPicksTheHost)
{
    TempDir tmp;
    Store src(tmp / "src");
    auto [host, other, dir, nestedBytes] = nestedLayout(tmp, src);

    Store dst(tmp / "dst");
    auto ref = ImageRef::parse("oci:" + dir.string() + ":multi");
    auto loaded = loadImage(dst, ref);
    EXPECT_EQ(loaded.manifestDescriptor.digest, host.manifestDescriptor.digest);
    EXPECT_EQ(loaded.config.platform().architecture, Platform::host().architecture);
    EXPECT_EQ(loadImage(dst, ref, platform(otherArch())).manifestDescriptor.digest,
              other.manifestDescriptor.digest);
    EXPECT_EQ(errorOf([&] { loadImage(dst, ref, platform("s390x")); }),
              "oci:" + dir.string() +
                  ":multi: the index has no image for linux/s390x (it has: linux/" + otherArch() +
                  ", " + Platform::host().str() + "); pick one of them (--platform)");

    // The same layout in an archive.
    auto file = tmp / "multi.tar";
    ASSERT_EQ(run({"tar", "-C", dir.string(), "-cf", file.string(), "."}).status, 0);
    Store dst2(tmp / "dst2");
    EXPECT_EQ(loadImage(dst2, ImageRef::parse("oci-archive:" + file.string() + ":multi"))
                  .manifestDescriptor.digest,
              host.manifestDescriptor.digest);
    EXPECT_EQ(
        loadImage(dst2, ImageRef::parse("oci-archive:" + file.string()), platform(otherArch()))
            .manifestDescriptor.digest,
        other.manifestDescriptor.digest);
}

TEST(MultiPlatform, ImageSetIsTheIndexWhole)
{
    TempDir tmp;
    Store src(tmp / "src");
    auto [host, other, dir, nestedBytes] = nestedLayout(tmp, src);
    auto check = [&](const ImageSet& set) {
        ASSERT_TRUE(set.index);
        EXPECT_EQ(set.index->digest, sha256(nestedBytes));
        EXPECT_TRUE(set.index->annotations.empty()); // the layout's name is not the index's
        ASSERT_EQ(set.images.size(), 2u);
        EXPECT_EQ(set.images[0].manifestDescriptor.digest, other.manifestDescriptor.digest);
        EXPECT_EQ(set.images[1].manifestDescriptor.digest, host.manifestDescriptor.digest);
    };
    Store dst(tmp / "dst");
    auto set = loadImageSet(dst, ImageRef::parse("oci:" + dir.string() + ":multi"));
    check(set);
    EXPECT_EQ(dst.readBlob(*set.index, "the index"), nestedBytes);
    // Written back, the same index names the same images.
    auto out = ImageRef::parse("oci:" + (tmp / "out").string() + ":copy");
    saveIndex(dst, *set.index, set.images, out);
    Store dst2(tmp / "dst2");
    check(loadImageSet(dst2, out));

    // From an archive.
    auto file = tmp / "multi.tar";
    ASSERT_EQ(run({"tar", "-C", dir.string(), "-cf", file.string(), "."}).status, 0);
    Store dst3(tmp / "dst3");
    check(loadImageSet(dst3, ImageRef::parse("oci-archive:" + file.string() + ":multi")));

    // One image: no index.
    saveImage(src, host, ImageRef::parse("oci:" + (tmp / "one").string() + ":one"));
    auto one = loadImageSet(dst, ImageRef::parse("oci:" + (tmp / "one").string() + ":one"));
    EXPECT_FALSE(one.index);
    ASSERT_EQ(one.images.size(), 1u);
    EXPECT_EQ(one.images[0].manifestDescriptor.digest, host.manifestDescriptor.digest);

    // An index that lists an artifact (an OCI 1.1 manifest whose config is the empty one): its
    // config is copied as it is, not read as an image's.
    auto empty = src.putBlob("{}", "application/vnd.oci.empty.v1+json");
    auto payload = src.putBlob("an attestation", "application/vnd.in-toto+json");
    Manifest artifact;
    artifact.config = empty;
    artifact.layers = {payload};
    artifact.artifactType = "application/vnd.example+json";
    auto artifactDesc = src.putBlob(canonical(toJson(artifact)), std::string(media::ociManifest));
    for (auto& b : {empty, payload, artifactDesc})
        writeTestFile(dir / "blobs" / "sha256" / b.digest.hex(), src.readBlob(b, "a blob"));
    Index withArtifact;
    withArtifact.manifests = {withPlatform(host.manifestDescriptor, Platform::host().architecture),
                              artifactDesc};
    auto artIndex = src.putBlob(canonical(toJson(withArtifact)), std::string(media::ociIndex));
    writeTestFile(dir / "blobs" / "sha256" / artIndex.digest.hex(),
                  src.readBlob(artIndex, "the index"));
    artIndex.annotations["org.opencontainers.image.ref.name"] = "art";
    Index named;
    named.manifests = {artIndex};
    auto multiIndexJson = grocker::readFile(dir / "index.json");
    writeTestFile(dir / "index.json", canonical(toJson(named)));
    auto art = loadImageSet(dst, ImageRef::parse("oci:" + dir.string() + ":art"));
    ASSERT_EQ(art.images.size(), 2u);
    EXPECT_EQ(art.images[1].manifestDescriptor.digest, artifactDesc.digest);
    EXPECT_EQ(art.images[1].configBytes, "{}");
    auto artOut = ImageRef::parse("oci:" + (tmp / "art-out").string() + ":art");
    saveIndex(dst, *art.index, art.images, artOut);
    Store dst5(tmp / "dst5");
    EXPECT_EQ(loadImageSet(dst5, artOut).index->digest, art.index->digest);
    writeTestFile(dir / "index.json", multiIndexJson);

    // An image of the index missing from the layout: refused, naming it.
    fs::remove(dir / "blobs" / "sha256" / host.manifest.config.digest.hex());
    Store dst4(tmp / "dst4");
    EXPECT_THAT(
        errorOf([&] { loadImageSet(dst4, ImageRef::parse("oci:" + dir.string() + ":multi")); }),
        HasSubstr("config " + host.manifest.config.digest.str() + " is not in the layout"));
}

// --- familiarName -------------------------------------------------------------------------

TEST(FamiliarName, Forms)
{
    EXPECT_EQ(familiarName("docker.io/library/busybox:1"), "busybox:1");
    EXPECT_EQ(familiarName("busybox"), "busybox:latest");
    EXPECT_EQ(familiarName("docker.io/org/app:2"), "org/app:2");
    EXPECT_EQ(familiarName("localhost:5000/app:3"), "localhost:5000/app:3");
}
