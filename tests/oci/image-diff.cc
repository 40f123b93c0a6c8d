#include "grocker/oci/image-diff.hh"

#include "grocker/file.hh"
#include "grocker/oci/compress.hh"
#include "grocker/oci/layer-writer.hh"
#include "grocker/oci/store.hh"
#include "grocker/oci/tar-writer.hh"
#include "grocker/oci/transport.hh"
#include "oci-helpers.hh"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <map>
#include <string>
#include <sys/stat.h>
#include <vector>

using namespace grocker;
using namespace grocker::oci;
using grocker::test::errorOf;
using grocker::test::TempDir;
using grocker::test::writeTestFile;
using nlohmann::json;
using ::testing::ElementsAre;

namespace fs = std::filesystem;

namespace {

// One entry of a test layer, with the content of a regular file.
struct File {
    TarEntry entry;
    std::string content;
};

File file(std::string path, std::string content, uint32_t mode = 0644)
{
    return {{.path = std::move(path), .mode = mode, .mtime = 1700000000}, std::move(content)};
}
File folder(std::string path)
{
    return {{.path = std::move(path), .type = TarEntry::Directory, .mode = 0755}, {}};
}
File symlinkTo(std::string path, std::string target)
{
    return {{.path = std::move(path),
             .type = TarEntry::Symlink,
             .mode = 0777,
             .mtime = 1700000000,
             .linkTarget = std::move(target)},
            {}};
}

struct Layer {
    Descriptor blob;
    Digest diffId;
};

// A layer of these entries in this order, written with the project's tar writer; `padding`:
// zero bytes after the end of the archive (other archive bytes, the same entries).
Layer putLayer(Store& store, const std::vector<File>& files,
               Compression compression = Compression::Gzip, size_t padding = 0)
{
    auto blob = store.newBlob();
    auto compressor = makeCompressor(*blob, {.compression = compression, .threads = 1});
    HashingSink tarHash(*compressor);
    TarWriter tar(tarHash);
    for (auto& f : files) {
        if (f.entry.type == TarEntry::Regular) {
            tar.addFile(f.entry, f.content);
        } else {
            tar.writeHeader(f.entry);
            tar.endEntry();
        }
    }
    tar.finish();
    std::string zeros(padding, '\0');
    tarHash.write(zeros.data(), zeros.size());
    tarHash.finish();
    Layer l{{}, tarHash.digest()};
    l.blob = blob->commit(layerMediaType(compression));
    return l;
}

// An image of these layers, with `runConfig` as the config's "config".
Image putImage(Store& store, const std::vector<Layer>& layers, json runConfig = json::object())
{
    Image scratch = commitImage(store, Manifest{}, ImageConfig::scratch());
    ImageDraft draft(scratch, true, 0);
    for (auto& l : layers)
        draft.addLayer(l.blob, l.diffId, "test");
    draft.runConfig() = std::move(runConfig);
    return std::move(draft).commit(store);
}

LayerDiff compare(Store& store, const Layer& a, const Layer& b, size_t maxFiles = 0)
{
    LayerDiff d;
    d.before = a.blob;
    d.after = b.blob;
    diffLayerBlobs(store, d, {.maxFiles = maxFiles});
    return d;
}

std::map<std::string, const FileChange*> byPath(const LayerDiff& d)
{
    std::map<std::string, const FileChange*> out;
    for (auto& f : d.files)
        out[f.path()] = &f;
    return out;
}

// What a change says, in short: "changed mode,owner", "added", "removed".
std::string kindOf(const FileChange& c)
{
    switch (c.kind) {
    case FileChange::Kind::Added:
        return "added";
    case FileChange::Kind::Removed:
        return "removed";
    case FileChange::Kind::Changed:
        return "changed " + join(attributeNames(c.attributes), ",");
    }
    return "?";
}

const std::string capability("\x01\x00\x00\x02\x00\x20\x00\x00", 8);

} // namespace

TEST(LayerDiff, FindsEachKindOfChange)
{
    TempDir tmp;
    Store store(tmp / "store");
    auto xattrFile = [](std::vector<std::pair<std::string, std::string>> xattrs) {
        auto f = file("srv/xattr", "x");
        f.entry.xattrs = std::move(xattrs);
        return f;
    };
    auto owned = [](uint64_t uid) {
        auto f = file("srv/owner", "o");
        f.entry.uid = f.entry.gid = uid;
        return f;
    };
    auto touched = [](int64_t mtime) {
        auto f = file("srv/mtime", "m");
        f.entry.mtime = mtime;
        return f;
    };
    auto before =
        putLayer(store, {folder("srv/"), file("srv/content", "one"), file("srv/mode", "m"),
                         touched(1700000000), owned(0), file("srv/removed", "r"),
                         file("srv/same", "s"), symlinkTo("srv/link", "one"), file("srv/kind", "k"),
                         xattrFile({{"security.capability", capability}, {"user.a", "1"}})});
    auto after =
        putLayer(store, {folder("srv/"), file("srv/added", "new"), file("srv/content", "other"),
                         file("srv/mode", "m", 0755), touched(1700000001), owned(1000),
                         file("srv/same", "s"), symlinkTo("srv/link", "two"),
                         symlinkTo("srv/kind", "k"), xattrFile({{"user.a", "2"}})});
    auto d = compare(store, before, after);
    EXPECT_EQ(d.verdict, LayerDiff::Verdict::FilesDiffer);
    EXPECT_EQ(d.entriesBefore, 10u);
    EXPECT_EQ(d.entriesAfter, 10u);
    EXPECT_EQ(d.added, 1u);
    EXPECT_EQ(d.removed, 1u);
    EXPECT_EQ(d.changed, 7u);
    std::vector<std::string> seen;
    for (auto& f : d.files)
        seen.push_back(f.path() + ": " + kindOf(f));
    // By path; the identical srv/ and srv/same are not there.
    EXPECT_THAT(seen, ElementsAre("srv/added: added", "srv/content: changed content",
                                  "srv/kind: changed type,mode,content,link-target",
                                  "srv/link: changed link-target", "srv/mode: changed mode",
                                  "srv/mtime: changed mtime", "srv/owner: changed owner",
                                  "srv/removed: removed", "srv/xattr: changed xattrs"));

    auto files = byPath(d);
    auto& content = *files.at("srv/content");
    EXPECT_EQ(content.before->size, 3u);
    EXPECT_EQ(content.after->size, 5u);
    EXPECT_EQ("sha256:" + content.before->sha256, sha256("one").str());
    EXPECT_EQ("sha256:" + content.after->sha256, sha256("other").str());
    EXPECT_EQ(files.at("srv/mode")->after->mode, 0755u);
    EXPECT_EQ(files.at("srv/owner")->after->uid, 1000u);
    EXPECT_EQ(files.at("srv/owner")->after->gid, 1000u);
    EXPECT_EQ(files.at("srv/mtime")->before->mtime, 1700000000);
    EXPECT_EQ(files.at("srv/mtime")->after->mtime, 1700000001);
    EXPECT_EQ(files.at("srv/link")->before->linkTarget, "one");
    EXPECT_EQ(files.at("srv/link")->after->linkTarget, "two");
    EXPECT_EQ(files.at("srv/kind")->after->type, TarEntry::Symlink);
    EXPECT_EQ(files.at("srv/added")->after->sha256, sha256("new").hex());
    EXPECT_EQ(files.at("srv/removed")->before->type, TarEntry::Regular);

    auto& x = *files.at("srv/xattr");
    EXPECT_THAT(x.before->xattrs,
                ElementsAre(std::pair<std::string, std::string>("security.capability", capability),
                            std::pair<std::string, std::string>("user.a", "1")));
    auto changes = xattrChanges(*x.before, *x.after);
    ASSERT_EQ(changes.size(), 2u);
    EXPECT_EQ(changes[0].name, "security.capability");
    EXPECT_EQ(changes[0].before, capability);
    EXPECT_EQ(changes[0].after, std::nullopt);
    EXPECT_EQ(changes[1].name, "user.a");
    EXPECT_EQ(changes[1].before, "1");
    EXPECT_EQ(changes[1].after, "2");
}

TEST(LayerDiff, WhiteoutsAreMarkersNotFiles)
{
    TempDir tmp;
    Store store(tmp / "store");
    auto before = putLayer(store, {folder("etc/"), file("etc/keep", "k")});
    auto after = putLayer(store, {folder("etc/"), file("etc/.wh..wh..opq", ""),
                                  file("etc/.wh.gone", ""), file("etc/keep", "k")});
    auto d = compare(store, before, after);
    ASSERT_EQ(d.files.size(), 2u);
    auto files = byPath(d);
    auto& opaque = *files.at("etc/.wh..wh..opq")->after;
    EXPECT_EQ(opaque.marker(), FileInfo::Marker::Opaque);
    EXPECT_EQ(opaque.whiteoutTarget(), "etc");
    auto& whiteout = *files.at("etc/.wh.gone")->after;
    EXPECT_EQ(whiteout.marker(), FileInfo::Marker::Whiteout);
    EXPECT_EQ(whiteout.whiteoutTarget(), "etc/gone");
}

TEST(FileInfo, WhiteoutsByName)
{
    auto marker = [](std::string path) {
        FileInfo f{.path = std::move(path)};
        return std::pair(f.marker(), f.whiteoutTarget());
    };
    using M = FileInfo::Marker;
    EXPECT_EQ(marker(".wh.top"), std::pair(M::Whiteout, std::string("top")));
    EXPECT_EQ(marker("a/b/.wh.c"), std::pair(M::Whiteout, std::string("a/b/c")));
    EXPECT_EQ(marker("a/.wh..wh..opq"), std::pair(M::Opaque, std::string("a")));
    EXPECT_EQ(marker(".wh..wh..opq"), std::pair(M::Opaque, std::string("")));
    // aufs bookkeeping, and names that only look alike, are entries as any other.
    EXPECT_EQ(marker("a/.wh..wh.plnk"), std::pair(M::None, std::string("a/.wh..wh.plnk")));
    EXPECT_EQ(marker("a/x.wh.y"), std::pair(M::None, std::string("a/x.wh.y")));
}

TEST(LayerDiff, SameFilesOtherArchiveBytes)
{
    TempDir tmp;
    Store store(tmp / "store");
    std::vector<File> files{folder("app/"), file("app/a", "a"), file("app/b", "b")};
    auto layer = putLayer(store, files);

    // Other bytes after the end of the archive: same entries, same order.
    auto padded = putLayer(store, files, Compression::Gzip, 10240);
    ASSERT_NE(padded.diffId, layer.diffId);
    auto d = compare(store, layer, padded);
    EXPECT_EQ(d.verdict, LayerDiff::Verdict::SameFiles);
    EXPECT_TRUE(d.files.empty());
    EXPECT_EQ(d.entriesBefore, 3u);

    // The same entries in another order.
    auto reordered = putLayer(store, {files[0], files[2], files[1]});
    d = compare(store, layer, reordered);
    EXPECT_EQ(d.verdict, LayerDiff::Verdict::SameFilesOrder);
    EXPECT_TRUE(d.files.empty());

    // Another compression: the same tar, which diffImages does not even open.
    auto zstd = putLayer(store, files, Compression::Zstd);
    EXPECT_EQ(zstd.diffId, layer.diffId);
    EXPECT_EQ(compare(store, layer, zstd).verdict, LayerDiff::Verdict::SameFiles);
    auto a = putImage(store, {layer});
    auto b = putImage(store, {zstd});
    EXPECT_TRUE(layersToRead(a, b).empty());
    auto id = diffImages(store, a, b);
    ASSERT_EQ(id.layers.size(), 1u);
    EXPECT_EQ(id.layers[0].verdict, LayerDiff::Verdict::SameTar);
    EXPECT_FALSE(id.layers[0].read());
    ASSERT_EQ(id.layers[0].descriptor.size(), 1u);
    EXPECT_EQ(id.layers[0].descriptor[0].path, "mediaType");
    EXPECT_EQ(*id.layers[0].descriptor[0].after, layerMediaType(Compression::Zstd));
}

TEST(LayerDiff, MaxFilesKeepsTheFirstAndCountsAll)
{
    TempDir tmp;
    Store store(tmp / "store");
    auto before = putLayer(store, {file("a", "1"), file("b", "1"), file("c", "1")});
    auto after = putLayer(store, {file("a", "2"), file("b", "2"), file("c", "2"), file("d", "")});
    auto d = compare(store, before, after, 2);
    EXPECT_EQ(d.changed, 3u);
    EXPECT_EQ(d.added, 1u);
    ASSERT_EQ(d.files.size(), 2u);
    EXPECT_EQ(d.files[0].path(), "a");
    EXPECT_EQ(d.files[1].path(), "b");
}

TEST(LayerDiff, CorruptLayerIsNamed)
{
    TempDir tmp;
    Store store(tmp / "store");
    auto a = putLayer(store, {file("a", std::string(100000, 'a'))});
    auto b = putLayer(store, {file("a", "b")});
    auto path = store.blobPath(b.blob.digest);
    ::chmod(path.c_str(), 0644);
    auto bytes = readFile(path);
    bytes[bytes.size() / 2] ^= 1;
    writeTestFile(path, bytes, 0444);
    LayerDiff d;
    d.index = 1;
    d.before = a.blob;
    d.after = b.blob;
    auto message = errorOf([&] { diffLayerBlobs(store, d); });
    EXPECT_EQ(message,
              concat("while reading layer 2 of the second image: layer ", b.blob.digest.str(),
                     " is corrupt: its content has digest ", sha256(bytes).str(), " but ",
                     b.blob.digest.str(), " was expected; remove it and pull again"));
}

TEST(ImageDiff, IdenticalImagesReadNothing)
{
    TempDir tmp;
    Store store(tmp / "store");
    auto l = putLayer(store, {file("a", "1")});
    auto a = putImage(store, {l});
    auto b = putImage(store, {l});
    EXPECT_TRUE(layersToRead(a, b).empty());
    auto d = diffImages(store, a, b);
    EXPECT_TRUE(d.identical());
    EXPECT_TRUE(d.layers.empty());
    EXPECT_TRUE(d.config.empty());
}

TEST(ImageDiff, ConfigFieldByFieldAndLayersByPosition)
{
    TempDir tmp;
    Store store(tmp / "store");
    auto base = putLayer(store, {file("base", "b")});
    auto app1 = putLayer(store, {file("app", "1")});
    auto app2 = putLayer(store, {file("app", "2")});
    auto extra = putLayer(store, {folder("extra/"), file("extra/x", "x")});
    auto a = putImage(store, {base, app1},
                      {{"Env", {"PATH=/bin", "LANG=C", "GONE=1"}},
                       {"Cmd", {"run"}},
                       {"Labels", {{"org.example.v", "1"}}}});
    auto b = putImage(store, {base, app2, extra},
                      {{"Env", {"NEW=1", "PATH=/usr/bin:/bin", "LANG=C"}},
                       {"Cmd", {"run"}},
                       {"User", "app"},
                       {"Labels", {{"org.example.v", "2"}}}});

    // Only the pairs that differ, and the extra layer.
    std::vector<Digest> read;
    for (auto& l : layersToRead(a, b))
        read.push_back(l.digest);
    EXPECT_THAT(read, ElementsAre(app1.blob.digest, app2.blob.digest, extra.blob.digest));

    auto d = diffImages(store, a, b);
    EXPECT_FALSE(d.identical());
    EXPECT_EQ(d.layersBefore, 2u);
    EXPECT_EQ(d.layersAfter, 3u);
    std::map<std::string, std::pair<std::string, std::string>> config;
    for (auto& c : d.config)
        config[c.path] = {c.before ? c.before->dump() : "-", c.after ? c.after->dump() : "-"};
    using P = std::pair<std::string, std::string>;
    EXPECT_EQ(config.at("config.Env[\"PATH\"]"), P("\"/bin\"", "\"/usr/bin:/bin\""));
    EXPECT_EQ(config.at("config.Env[\"GONE\"]"), P("\"1\"", "-"));
    EXPECT_EQ(config.at("config.Env[\"NEW\"]"), P("-", "\"1\""));
    EXPECT_EQ(config.count("config.Env[\"LANG\"]"), 0u) << "moved, not changed";
    EXPECT_EQ(config.at("config.User"), P("-", "\"app\""));
    EXPECT_EQ(config.at("config.Labels[\"org.example.v\"]"), P("\"1\"", "\"2\""));
    EXPECT_EQ(config.at("rootfs.diff_ids[1]"),
              P(json(app1.diffId.str()).dump(), json(app2.diffId.str()).dump()));
    EXPECT_EQ(config.at("rootfs.diff_ids[2]").first, "-");
    EXPECT_EQ(config.at("history[2]").first, "-");
    EXPECT_EQ(config.count("config.Cmd"), 0u);

    ASSERT_EQ(d.layers.size(), 2u);
    EXPECT_EQ(d.layers[0].index, 1u);
    EXPECT_EQ(d.layers[0].verdict, LayerDiff::Verdict::FilesDiffer);
    EXPECT_EQ(d.layers[0].changed, 1u);
    EXPECT_EQ(d.layers[1].index, 2u);
    EXPECT_EQ(d.layers[1].verdict, LayerDiff::Verdict::Added);
    EXPECT_EQ(d.layers[1].added, 2u);
    EXPECT_EQ(d.filesAdded(), 2u);
    EXPECT_EQ(d.filesChanged(), 1u);
    EXPECT_EQ(d.filesRemoved(), 0u);
    EXPECT_TRUE(d.manifest.empty());
}

TEST(DiffJson, EnvOrderOnlyIsStillADifference)
{
    auto changes = diffJson({{"Env", {"A=1", "B=2"}}}, {{"Env", {"B=2", "A=1"}}}, "config");
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0].path, "config.Env");
}
