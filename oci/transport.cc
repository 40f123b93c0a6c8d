#include "grocker/oci/transport.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/compress.hh"
#include "grocker/oci/reference.hh"
#include "grocker/oci/referrers.hh"
#include "grocker/oci/store.hh"
#include "grocker/oci/tar-writer.hh"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <functional>
#include <map>
#include <set>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace grocker::oci {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr const char* refNameKey = "org.opencontainers.image.ref.name";
constexpr const char* containerdNameKey = "io.containerd.image.name";
const char* const transportsHelp =
    "use scratch, oci:DIR[:TAG], oci-archive:FILE[:REF], docker-archive:FILE[:REF] or docker://REF";
// A bad name on the command line is misuse (exit 2), said with the location it came from.
void checkReference(const std::string& ref, std::string_view location)
{
    try {
        Reference::parse(ref);
    } catch (Error& e) {
        throw UsageError("image location '", location, "': ", e.message());
    }
}
// The image layout spec's org.opencontainers.image.ref.name: components of letters and digits
// joined by one separator, the components separated by '/'. skopeo refuses other names.
bool validRefName(std::string_view ref)
{
    auto alnum = [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) && static_cast<unsigned char>(c) < 0x80;
    };
    bool afterAlnum = false;
    for (size_t i = 0; i < ref.size(); i++) {
        char c = ref[i];
        if (alnum(c)) {
            afterAlnum = true;
            continue;
        }
        if (!afterAlnum) return false;
        if (c == '-' && i + 1 < ref.size() && ref[i + 1] == '-')
            i++;
        else if (std::string_view("._:@+-/").find(c) == std::string_view::npos)
            return false;
        afterAlnum = false;
    }
    return afterAlnum;
}
} // namespace

ImageRef ImageRef::parse(std::string_view text)
{
    ImageRef r;
    if (text == "scratch") return r;
    auto colon = text.find(':');
    if (colon == std::string_view::npos)
        throw UsageError("image location '", text, "' has no transport: ", transportsHelp);
    auto kind = text.substr(0, colon);
    auto rest = text.substr(colon + 1);
    if (kind == "docker") {
        if (!rest.starts_with("//"))
            throw UsageError("image location '", text, "': docker references start with docker://");
        r.kind = Kind::Docker;
        r.ref = std::string(rest.substr(2));
        checkReference(r.ref, text);
        return r;
    }
    if (kind == "oci")
        r.kind = Kind::Oci;
    else if (kind == "oci-archive")
        r.kind = Kind::OciArchive;
    else if (kind == "docker-archive")
        r.kind = Kind::DockerArchive;
    else
        throw UsageError("unknown transport '", kind, "' in '", text, "': ", transportsHelp);
    // As skopeo: the path ends at the first ':'.
    auto c2 = rest.find(':');
    r.path = std::string(rest.substr(0, c2));
    if (c2 != std::string_view::npos) r.ref = std::string(rest.substr(c2 + 1));
    if (r.path.empty()) throw UsageError("image location '", text, "' has an empty path");
    if (r.kind == Kind::DockerArchive && !r.ref.empty()) checkReference(r.ref, text);
    // A tag with ':' or '/' is taken as an image name too (io.containerd.image.name): it must be
    // one.
    if (r.kind != Kind::DockerArchive && r.ref.find_first_of(":/") != std::string::npos)
        checkReference(r.ref, text);
    if (r.kind != Kind::DockerArchive && !r.ref.empty() && !validRefName(r.ref))
        throw UsageError("image location '", text, "': '", r.ref,
                         "' is not a valid tag: letters and digits, separated by one of '.', '_', "
                         "'-', '+', ':', '@' or '--' "
                         "(and '/')");
    return r;
}

std::string ImageRef::str() const
{
    switch (kind) {
    case Kind::Scratch:
        return "scratch";
    case Kind::Docker:
        return "docker://" + ref;
    case Kind::Oci:
        return "oci:" + path.string() + (ref.empty() ? "" : ":" + ref);
    case Kind::OciArchive:
        return "oci-archive:" + path.string() + (ref.empty() ? "" : ":" + ref);
    case Kind::DockerArchive:
        return "docker-archive:" + path.string() + (ref.empty() ? "" : ":" + ref);
    }
    return {};
}

std::string familiarName(const std::string& reference)
{
    auto r = Reference::parse(reference);
    std::string name = r.repository();
    if (r.domain == "docker.io") name = r.path.starts_with("library/") ? r.path.substr(8) : r.path;
    if (!r.tag.empty()) name += ":" + r.tag;
    return name;
}

namespace {

// Blobs found in a layout folder or archive, before they are resolved into an image.
struct Found {
    std::string ociLayout, indexJson, manifestJson;
    bool hasOciLayout = false, hasIndex = false, hasManifestJson = false;
    std::map<std::string, Descriptor> byPath; // archive path → stored blob
};

// The entry of a layout's index.json that `tag` names (an image or an index); with no tag, its
// only image, else (several, unnamed) the one for `platform` (none: refused).
const Descriptor& topEntry(const Index& idx, const std::string& tag, const Platform* platform,
                           const std::string& location)
{
    std::vector<const Descriptor*> candidates;
    std::set<std::string> tags;
    for (auto& d : idx.manifests) {
        auto it = d.annotations.find(refNameKey);
        // An unnamed attachment (a referrer: an SBOM, a signature) is not one of its images.
        if (it == d.annotations.end() && !d.artifactType.empty()) continue;
        if (it != d.annotations.end()) tags.insert(it->second);
        if (tag.empty() || (it != d.annotations.end() && it->second == tag))
            candidates.push_back(&d);
    }
    auto tagList = [&] {
        std::string s;
        for (auto& t : tags)
            s += (s.empty() ? "" : ", ") + t;
        return s.empty() ? std::string("none") : s;
    };
    if (candidates.empty())
        throw Error(location, ": no image ",
                    tag.empty() ? std::string("in it") : "tagged '" + tag + "'",
                    " (tags: ", tagList(), ")");
    const Descriptor* chosen = nullptr;
    if (candidates.size() == 1)
        chosen = candidates[0];
    else {
        for (auto* d : candidates)
            if (platform && d->platform && d->platform->matches(*platform) && !chosen) chosen = d;
        if (!chosen)
            throw Error(location, " holds ", candidates.size(),
                        " images; name one with its tag (tags: ", tagList(), ")");
    }
    return *chosen;
}

Descriptor selectFromIndex(const Store& store, const Index& idx, const std::string& what,
                           const std::string& tag, const Platform& platform,
                           const std::string& location)
{
    const Descriptor* chosen = &topEntry(idx, tag, &platform, location);
    if (media::isIndex(chosen->mediaType)) {
        auto bytes = store.readBlob(*chosen, "index " + chosen->digest.str());
        auto nested = parseIndex(bytes, what + " index " + chosen->digest.str(), chosen->mediaType);
        std::string have;
        for (auto& d : nested.manifests) {
            if (!media::isManifest(d.mediaType)) continue;
            if (d.platform && d.platform->matches(platform)) return d;
            have += (have.empty() ? "" : ", ") + (d.platform ? d.platform->str() : "unnamed");
        }
        throw Error(location, ": the index has no image for ", platform.str(),
                    " (it has: ", have.empty() ? std::string("none") : have,
                    "); pick one of them (--platform)");
    }
    return *chosen;
}

// Checks that a manifest's config and layers are in the store (blobs imported already).
Image resolveManifest(const Store& store, const Descriptor& desc, const std::string& location)
{
    try {
        Image img = imageFromStore(store, desc);
        for (auto& l : img.manifest.layers)
            if (!store.hasBlob(l.digest)) throw Error("layer ", l.digest.str(), " is missing");
        return img;
    } catch (Error& e) {
        e.addContext("while reading " + location);
        throw;
    }
}

void importBlobIfMissing(Store& store, const fs::path& file, const Descriptor& d,
                         const std::string& what)
{
    if (store.hasBlob(d.digest)) return;
    std::error_code ec;
    if (!fs::exists(file, ec))
        throw Error(what, " is not in the layout (no file '", file.string(),
                    "'): the layout is incomplete; copy the image into it again");
    auto stored = store.importFile(file, d.mediaType, d.digest, what);
    if (stored.size != d.size)
        throw Error(what, " has ", stored.size, " bytes but its descriptor says ", d.size);
}

// A layout folder's index.json, after checking that it is one.
Index layoutIndex(const ImageRef& src)
{
    auto location = src.str();
    auto dir = src.path;
    std::error_code ec;
    bool isDir = fs::is_directory(dir, ec);
    if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory)
        throw Error(location, ": unable to read the folder: ", ec.message());
    if (!isDir) throw Error(location, ": no such folder; check the path");
    if (!fs::exists(dir / "oci-layout", ec))
        throw Error(location, ": not an OCI image layout (no oci-layout file)");
    if (!fs::exists(dir / "index.json", ec))
        throw Error(
            location,
            ": the image layout has no index.json: it is incomplete; copy the image into it again");
    return parseIndex(readFile(dir / "index.json"), location + " index.json");
}

Image loadOciDir(Store& store, const ImageRef& src, const Platform& platform)
{
    auto location = src.str();
    auto dir = src.path;
    auto idx = layoutIndex(src);
    auto blob = [&](const Digest& d) { return dir / "blobs" / d.algorithm() / d.hex(); };
    // Nested indexes are read from the layout too, so import every index/manifest on the way.
    std::function<void(const Descriptor&)> importTree = [&](const Descriptor& d) {
        importBlobIfMissing(store, blob(d.digest), d, location + " blob " + d.digest.str());
    };
    for (auto& d : idx.manifests)
        if (media::isIndex(d.mediaType)) importTree(d);
    Descriptor chosen = selectFromIndex(store, idx, location, src.ref, platform, location);
    importTree(chosen);
    auto m = parseManifest(store.readBlob(chosen, "manifest " + chosen.digest.str()),
                           location + " manifest", chosen.mediaType);
    importBlobIfMissing(store, blob(m.config.digest), m.config,
                        location + " config " + m.config.digest.str());
    for (auto& l : m.layers)
        importBlobIfMissing(store, blob(l.digest), l, location + " layer " + l.digest.str());
    return resolveManifest(store, chosen, location);
}

struct ArchiveReader {
    archive* a = archive_read_new();
    ~ArchiveReader() { archive_read_free(a); }
};

// Streams every file of the archive: small JSON files into memory, the rest into the store.
Found scanArchive(Store& store, const ImageRef& src)
{
    auto location = src.str();
    Found f;
    ArchiveReader r;
    archive_read_support_format_tar(r.a);
    archive_read_support_format_gnutar(r.a);
    archive_read_support_filter_all(r.a);
    AutoCloseFD fd(::open(src.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw SysError("unable to open ", location);
    // libarchive says only "Error reading fd 3" for a folder.
    struct stat st;
    if (::fstat(fd.get(), &st) == 0 && S_ISDIR(st.st_mode))
        throw Error(location, ": '", src.path.string(), "' is a folder, not an archive file",
                    src.kind == ImageRef::Kind::OciArchive
                        ? "; for an image layout folder, use oci:" + src.path.string()
                        : "");
    if (archive_read_open_fd(r.a, fd.get(), 1 << 20) != ARCHIVE_OK)
        throw Error(location, " is not a readable tar archive: ", archive_error_string(r.a));
    archive_entry* e;
    std::vector<char> buf(1 << 20);
    for (;;) {
        int rc = archive_read_next_header(r.a, &e);
        if (rc == ARCHIVE_EOF) break;
        if (rc < ARCHIVE_WARN)
            throw Error(location, " is a damaged tar archive: ", archive_error_string(r.a));
        if (archive_entry_filetype(e) != AE_IFREG) continue;
        std::string path = archive_entry_pathname(e);
        while (path.starts_with("./"))
            path = path.substr(2);
        std::string* small = path == "oci-layout"      ? &f.ociLayout
                             : path == "index.json"    ? &f.indexJson
                             : path == "manifest.json" ? &f.manifestJson
                                                       : nullptr;
        auto readInto = [&](auto&& consume) {
            for (;;) {
                la_ssize_t n = archive_read_data(r.a, buf.data(), buf.size());
                if (n < 0)
                    throw Error(location, ": unable to read '", path,
                                "': ", archive_error_string(r.a));
                if (n == 0) break;
                consume(buf.data(), size_t(n));
            }
        };
        if (small) {
            if (archive_entry_size(e) > (16 << 20))
                throw Error(location, ": '", path, "' is too large");
            readInto([&](const char* p, size_t n) { small->append(p, n); });
            (path == "oci-layout"   ? f.hasOciLayout
             : path == "index.json" ? f.hasIndex
                                    : f.hasManifestJson) = true;
            continue;
        }
        if (path == "repositories") continue;
        std::optional<Digest> expected;
        if (path.starts_with("blobs/")) {
            auto rel = path.substr(6);
            auto slash = rel.find('/');
            if (slash != std::string::npos &&
                Digest::valid(rel.substr(0, slash) + ":" + rel.substr(slash + 1)))
                expected = Digest::parse(rel.substr(0, slash) + ":" + rel.substr(slash + 1));
        }
        if (expected && store.hasBlob(*expected)) {
            readInto([](const char*, size_t) {});
            f.byPath[path] = Descriptor{"", *expected, archive_entry_size(e)};
            continue;
        }
        auto w = store.newBlob();
        readInto([&](const char* p, size_t n) { w->write(p, n); });
        f.byPath[path] = w->commit("", expected, location + " '" + path + "'");
    }
    return f;
}

// An oci-archive's index.json, every blob of the archive read into the store.
Index archiveIndex(Store& store, const ImageRef& src)
{
    auto location = src.str();
    Found f = scanArchive(store, src);
    if (!f.hasIndex || !f.hasOciLayout)
        throw Error(location, ": not an OCI archive (no ", f.hasIndex ? "oci-layout" : "index.json",
                    "); it is truncated, or a docker save tar (then use docker-archive:)");
    return parseIndex(f.indexJson, location + " index.json");
}

Image loadOciArchive(Store& store, const ImageRef& src, const Platform& platform)
{
    auto location = src.str();
    auto idx = archiveIndex(store, src);
    Descriptor chosen = selectFromIndex(store, idx, location, src.ref, platform, location);
    return resolveManifest(store, chosen, location);
}

Image loadDockerArchive(Store& store, const ImageRef& src)
{
    auto location = src.str();
    Found f = scanArchive(store, src);
    if (!f.hasManifestJson) throw Error(location, ": not a docker-save archive (no manifest.json)");
    json mj;
    try {
        mj = json::parse(f.manifestJson);
    } catch (json::exception& e) {
        // parse_error, and out_of_range for a number no double holds ("1e999").
        throw Error(location, ": manifest.json is not valid JSON: ", e.what());
    }
    if (!mj.is_array() || mj.empty())
        throw Error(location, ": manifest.json must be a non-empty array");
    const json* chosen = nullptr;
    std::string wanted = src.ref.empty() ? "" : Reference::parse(src.ref).str();
    for (auto& entry : mj) {
        if (!entry.is_object()) throw Error(location, ": manifest.json entries must be objects");
        if (wanted.empty()) {
            if (mj.size() > 1)
                throw Error(location, " holds ", mj.size(),
                            " images; name one with docker-archive:FILE:NAME:TAG");
            chosen = &entry;
            break;
        }
        if (auto tags = entry.find("RepoTags"); tags != entry.end() && tags->is_array())
            for (auto& t : *tags)
                if (t.is_string() && Reference::parse(t.get<std::string>()).str() == wanted)
                    chosen = &entry;
    }
    if (!chosen) throw Error(location, ": no image named '", src.ref, "'");
    auto blobAt = [&](const json& p, const std::string& what) -> Descriptor {
        if (!p.is_string())
            throw Error(location, ": manifest.json ", what, " must be a path string");
        auto path = p.get<std::string>();
        auto it = f.byPath.find(path);
        if (it == f.byPath.end())
            throw Error(location, ": manifest.json names '", path, "' which is not in the archive");
        return it->second;
    };
    Manifest m;
    m.config = blobAt(chosen->value("Config", json()), "Config");
    m.config.mediaType = std::string(media::ociConfig);
    auto configBytes = store.readBlob(m.config, location + " config");
    auto config = parseConfig(configBytes, location + " config");
    auto layers = chosen->value("Layers", json::array());
    if (!layers.is_array()) throw Error(location, ": manifest.json Layers must be an array");
    for (auto& l : layers) {
        Descriptor d = blobAt(l, "Layers");
        char head[8] = {};
        auto fd = store.openBlob(d.digest, "layer");
        ssize_t n = ::pread(fd.get(), head, sizeof head, 0);
        switch (detectCompression(std::string_view(head, n > 0 ? size_t(n) : 0))) {
        case Compression::Gzip:
            d.mediaType = std::string(media::ociLayerGzip);
            break;
        case Compression::Zstd:
            d.mediaType = std::string(media::ociLayerZstd);
            break;
        case Compression::None:
            d.mediaType = std::string(media::ociLayer);
            break;
        }
        m.layers.push_back(d);
    }
    if (m.layers.size() != config.diffIds().size())
        throw Error(location, ": manifest.json lists ", m.layers.size(),
                    " layers but the config has ", config.diffIds().size(), " diff_ids");
    // Same canonical form as images Grocker writes, so an export and re-import keeps digests.
    return commitImage(store, std::move(m), std::move(config));
}

} // namespace

Image imageFromStore(const Store& store, const Descriptor& desc)
{
    Image img;
    img.manifestDescriptor = desc;
    img.manifestBytes = store.readBlob(desc, "manifest " + desc.digest.str());
    img.manifest =
        parseManifest(img.manifestBytes, "manifest " + desc.digest.str(), desc.mediaType);
    img.manifestDescriptor.mediaType = img.manifest.mediaType;
    img.configBytes =
        store.readBlob(img.manifest.config, "config " + img.manifest.config.digest.str());
    img.config = parseConfig(img.configBytes, "config " + img.manifest.config.digest.str());
    if (img.config.diffIds().size() != img.manifest.layers.size())
        throw Error("manifest ", desc.digest.str(), " has ", img.manifest.layers.size(),
                    " layers but its config has ", img.config.diffIds().size(), " diff_ids");
    return img;
}

Image entryFromStore(const Store& store, const Descriptor& desc)
{
    auto manifest = parseManifest(store.readBlob(desc, "manifest " + desc.digest.str()),
                                  "manifest " + desc.digest.str(), desc.mediaType);
    if (manifest.config.mediaType == media::ociConfig ||
        manifest.config.mediaType == media::dockerConfig)
        return imageFromStore(store, desc);
    Image img;
    img.manifestDescriptor = desc;
    img.manifestBytes = store.readBlob(desc, "manifest " + desc.digest.str());
    img.manifest = std::move(manifest);
    img.manifestDescriptor.mediaType = img.manifest.mediaType;
    img.configBytes =
        store.readBlob(img.manifest.config, "config " + img.manifest.config.digest.str());
    return img;
}

Image loadImage(Store& store, const ImageRef& src, const Platform& platform)
{
    try {
        switch (src.kind) {
        case ImageRef::Kind::Scratch: {
            Manifest m;
            return commitImage(store, m, ImageConfig::scratch());
        }
        case ImageRef::Kind::Oci:
            return loadOciDir(store, src, platform);
        case ImageRef::Kind::OciArchive:
            return loadOciArchive(store, src, platform);
        case ImageRef::Kind::DockerArchive:
            return loadDockerArchive(store, src);
        case ImageRef::Kind::Docker:
            break;
        }
    } catch (Error& e) {
        if (e.message().find(src.str()) == std::string::npos)
            e.addContext("while reading " + src.str());
        throw;
    }
    throw Error("docker:// images are read by the registry library");
}

ImageSet loadImageSet(Store& store, const ImageRef& src)
{
    if (src.kind != ImageRef::Kind::Oci && src.kind != ImageRef::Kind::OciArchive)
        return {std::nullopt, {loadImage(store, src)}};
    auto location = src.str();
    try {
        Index idx;
        // A blob of the layout into the store (an archive's are all there once it is scanned).
        std::function<void(const Descriptor&, const std::string&)> have;
        if (src.kind == ImageRef::Kind::Oci) {
            idx = layoutIndex(src);
            have = [&](const Descriptor& d, const std::string& what) {
                importBlobIfMissing(store,
                                    src.path / "blobs" / d.digest.algorithm() / d.digest.hex(), d,
                                    location + " " + what + " " + d.digest.str());
            };
        } else {
            idx = archiveIndex(store, src);
            have = [&](const Descriptor& d, const std::string& what) {
                if (!store.hasBlob(d.digest))
                    throw Error(location, ": its ", what, " ", d.digest.str(),
                                " is not in the archive: it is incomplete; write it again");
            };
        }
        auto image = [&](const Descriptor& d) {
            have(d, "manifest");
            auto m = parseManifest(store.readBlob(d, "manifest " + d.digest.str()),
                                   location + " manifest " + d.digest.str(), d.mediaType);
            have(m.config, "config");
            for (auto& l : m.layers)
                have(l, "layer");
            return entryFromStore(store, d);
        };
        ImageSet set;
        const Descriptor& top = topEntry(idx, src.ref, nullptr, location);
        if (!media::isIndex(top.mediaType)) {
            set.images.push_back(image(top));
            return set;
        }
        have(top, "index");
        auto listed = parseIndex(store.readBlob(top, "index " + top.digest.str()),
                                 location + " index " + top.digest.str(), top.mediaType);
        for (auto& d : listed.manifests) {
            if (!media::isManifest(d.mediaType))
                throw Error(location, ": its index ", top.digest.str(), " lists ", d.digest.str(),
                            " (", d.mediaType,
                            "), not an image: an index of indexes is not copied whole; copy one "
                            "platform of it with --platform");
            set.images.push_back(image(d));
        }
        set.index = Descriptor{top.mediaType, top.digest, top.size};
        return set;
    } catch (Error& e) {
        if (e.message().find(location) == std::string::npos)
            e.addContext("while reading " + location);
        throw;
    }
}

namespace {
std::string ociMediaType(const std::string& t)
{
    if (t == media::dockerLayerGzip) return std::string(media::ociLayerGzip);
    if (t == media::dockerLayerForeign)
        return "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    if (t == media::dockerConfig) return std::string(media::ociConfig);
    return t;
}
} // namespace

ImageDraft::ImageDraft(const Image& base, bool scratch, int64_t epoch)
    : manifest(base.manifest), config(base.config), created(rfc3339(epoch))
{
    manifest.mediaType = std::string(media::ociManifest);
    manifest.annotations.clear();
    manifest.config.mediaType = std::string(media::ociConfig);
    for (auto& l : manifest.layers)
        l.mediaType = ociMediaType(l.mediaType);
    if (!scratch)
        manifest.annotations["org.opencontainers.image.base.digest"] =
            base.manifestDescriptor.digest.str();
    auto& j = config.json;
    j["created"] = created;
    if (!j.contains("history") || !j["history"].is_array()) j["history"] = json::array();
}

void ImageDraft::addLayer(const Descriptor& blob, const Digest& diffId,
                          const std::string& createdBy, const std::string& comment)
{
    manifest.layers.push_back(blob);
    config.json["rootfs"]["diff_ids"].push_back(diffId.str());
    json h = {{"created", created}, {"created_by", createdBy}};
    if (!comment.empty()) h["comment"] = comment;
    config.json["history"].push_back(h);
}

json& ImageDraft::runConfig()
{
    auto& j = config.json;
    if (!j.contains("config") || !j["config"].is_object()) j["config"] = json::object();
    return j["config"];
}

Image ImageDraft::commit(Store& store) &&
{
    return commitImage(store, std::move(manifest), std::move(config));
}

Image commitImage(Store& store, Manifest manifest, ImageConfig config)
{
    Image img;
    img.configBytes = canonical(config.json);
    img.config = std::move(config);
    manifest.config = store.putBlob(img.configBytes, manifest.config.mediaType.empty()
                                                         ? std::string(media::ociConfig)
                                                         : manifest.config.mediaType);
    manifest.mediaType = std::string(media::ociManifest);
    img.manifestBytes = canonical(toJson(manifest));
    img.manifest = std::move(manifest);
    img.manifestDescriptor = store.putBlob(img.manifestBytes, std::string(media::ociManifest));
    return img;
}

namespace {

struct Names {
    std::string refName;       // org.opencontainers.image.ref.name
    std::string containerName; // io.containerd.image.name, full
    std::string repoTag;       // docker-save RepoTags entry, familiar
};

Names namesFor(const ImageRef& dest)
{
    Names n;
    if (dest.ref.empty()) return n;
    bool isName = dest.kind == ImageRef::Kind::DockerArchive ||
                  dest.ref.find_first_of(":/") != std::string::npos;
    if (dest.kind == ImageRef::Kind::DockerArchive) {
        auto r = Reference::parse(dest.ref);
        n.refName = r.tag.empty() ? "latest" : r.tag; // docker save's convention
    } else {
        n.refName = dest.ref; // what skopeo looks up in oci and oci-archive
    }
    if (isName) {
        auto r = Reference::parse(dest.ref);
        r.digest.reset();
        n.containerName = r.str();
        n.repoTag = familiarName(r.str());
    }
    return n;
}

Descriptor namedDescriptor(const Descriptor& top, const Names& names)
{
    Descriptor d = top;
    d.annotations.clear();
    if (!names.refName.empty()) d.annotations[refNameKey] = names.refName;
    if (!names.containerName.empty()) d.annotations[containerdNameKey] = names.containerName;
    return d;
}

// The blobs of the images, their manifests included, each once.
std::vector<Descriptor> blobsOf(const std::vector<const Image*>& images)
{
    std::vector<Descriptor> blobs;
    for (auto* image : images) {
        blobs.push_back(image->manifestDescriptor);
        blobs.push_back(image->manifest.config);
        for (auto& l : image->manifest.layers)
            blobs.push_back(l);
    }
    std::sort(blobs.begin(), blobs.end(), [](auto& a, auto& b) { return a.digest < b.digest; });
    blobs.erase(std::unique(blobs.begin(), blobs.end(),
                            [](auto& a, auto& b) { return a.digest == b.digest; }),
                blobs.end());
    return blobs;
}

// Writes `top` (an image's manifest, or an index) and `blobs` (all it names, itself included)
// into the layout, named as DEST says.
void saveOciDir(const Store& store, const Descriptor& top, std::vector<Descriptor> blobs,
                const ImageRef& dest, const std::vector<Descriptor>& referrers)
{
    auto dir = dest.path;
    std::error_code ec;
    fs::create_directories(dir / "blobs" / "sha256", ec);
    if (ec) throw Error("unable to create '", dir.string(), "': ", ec.message());
    auto layout = dir / "oci-layout";
    if (!fs::exists(layout)) writeFileAtomic(layout, R"({"imageLayoutVersion":"1.0.0"})");
    for (auto& r : referrers)
        for (auto& b : referrerBlobs(store, r))
            blobs.push_back(b);
    for (auto& b : blobs) {
        auto to = dir / "blobs" / b.digest.algorithm() / b.digest.hex();
        if (!fs::exists(to)) copyFileAtomic(store.blobPath(b.digest), to, 0644);
    }
    // The layout folder itself is the lock: a lock file would have to stay in the user's folder
    // (removing it lets two writers hold two different files).
    AutoCloseFD dirLock(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dirLock) throw SysError("unable to open '", dir.string(), "'");
    while (::flock(dirLock.get(), LOCK_EX) < 0)
        if (errno != EINTR) throw SysError("unable to lock '", dir.string(), "'");
    Index idx;
    if (fs::exists(dir / "index.json"))
        idx = parseIndex(readFile(dir / "index.json"), dest.str() + " index.json");
    auto names = namesFor(dest);
    if (!names.refName.empty())
        std::erase_if(idx.manifests, [&](const Descriptor& d) {
            auto it = d.annotations.find(refNameKey);
            return it != d.annotations.end() && it->second == names.refName;
        });
    else
        std::erase_if(idx.manifests, [&](const Descriptor& d) {
            return d.annotations.empty() && d.digest == top.digest;
        });
    idx.manifests.push_back(namedDescriptor(top, names));
    // Its attachments, listed as the image-layout spec lists referrers: unnamed, with their
    // artifactType (after the blobs they name).
    for (auto& r : referrers) {
        std::erase_if(idx.manifests, [&](const Descriptor& d) { return d.digest == r.digest; });
        idx.manifests.push_back(r);
    }
    writeFileAtomic(dir / "index.json", canonical(toJson(idx)));
}

// Writes `top` and `blobs` as saveOciDir does, in a tar; with `image` (top is its manifest),
// also docker save's manifest.json (an index has none: docker-archive: holds one image).
void saveArchive(const Store& store, const Descriptor& top, std::vector<Descriptor> blobs,
                 const Image* image, const ImageRef& dest, const std::vector<Descriptor>& referrers)
{
    auto names = namesFor(dest);
    Index idx;
    idx.manifests.push_back(namedDescriptor(top, names));
    // An OCI archive is a layout in a tar: its attachments listed as in a folder's (a docker
    // save tar has no place for them).
    if (dest.kind == ImageRef::Kind::OciArchive && !referrers.empty() && names.repoTag.empty() &&
        !names.refName.empty())
        // containers/image (podman load, skopeo) reads an archive of more than one manifest as
        // a docker save tar: named there as it names a one-image archive's ref.name.
        try {
            names.repoTag = Reference::parse("localhost/" + names.refName + ":latest").str();
        } catch (Error&) {
            // a tag that is no repository name: unnamed for them
        }
    if (dest.kind == ImageRef::Kind::OciArchive)
        for (auto& r : referrers) {
            idx.manifests.push_back(r);
            for (auto& b : referrerBlobs(store, r))
                if (std::none_of(blobs.begin(), blobs.end(),
                                 [&](const Descriptor& x) { return x.digest == b.digest; }))
                    blobs.push_back(b);
        }
    json save;
    if (image) {
        save = json::array({json{
            {"Config", "blobs/sha256/" + image->manifest.config.digest.hex()},
            {"RepoTags", names.repoTag.empty() ? json::array() : json::array({names.repoTag})},
            {"Layers", json::array()}}});
        for (auto& l : image->manifest.layers)
            save[0]["Layers"].push_back("blobs/sha256/" + l.digest.hex());
    }

    auto target = dest.path;
    auto parent = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    std::error_code ec;
    if (fs::is_directory(target, ec))
        throw Error("'", target.string(), "' is a folder: name a file for the archive",
                    dest.kind == ImageRef::Kind::OciArchive
                        ? ", or write the folder with oci:" + target.string()
                        : "");
    if (!fs::exists(parent, ec) && !ec)
        throw Error("the folder '", parent.string(), "' does not exist: create it first");
    auto tmp = parent / tempName();
    AutoCloseFD fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) throw SysError("unable to create '", tmp.string(), "' to write ", dest.str());
    try {
        FdSink sink(fd.get(), tmp.string());
        TarWriter tar(sink);
        auto dirEntry = [&](const std::string& p) {
            TarEntry e;
            e.path = p;
            e.type = TarEntry::Directory;
            e.mode = 0755;
            tar.writeHeader(e);
            tar.endEntry();
        };
        dirEntry("blobs/");
        dirEntry("blobs/sha256/");
        std::vector<char> buf(1 << 20);
        for (auto& b : blobs) {
            TarEntry e;
            e.path = "blobs/sha256/" + b.digest.hex();
            auto in = store.openBlob(b.digest, "blob");
            struct stat st;
            if (::fstat(in.get(), &st) < 0) throw SysError("unable to stat blob ", b.digest.str());
            e.size = uint64_t(st.st_size);
            tar.writeHeader(e);
            for (;;) {
                size_t n =
                    readSome(in.get(), buf.data(), buf.size(), store.blobPath(b.digest).string());
                if (!n) break;
                tar.writeData(buf.data(), n);
            }
            tar.endEntry();
        }
        tar.addFile(TarEntry{.path = "index.json"}, canonical(toJson(idx)));
        if (image) tar.addFile(TarEntry{.path = "manifest.json"}, canonical(save));
        tar.addFile(TarEntry{.path = "oci-layout"}, R"({"imageLayoutVersion":"1.0.0"})");
        tar.finish();
        if (::fsync(fd.get()) < 0) throw SysError("unable to sync '", tmp.string(), "'");
        fd.reset();
        if (::rename(tmp.c_str(), target.c_str()) < 0)
            throw SysError("unable to move '", tmp.string(), "' to '", target.string(), "'");
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
}

} // namespace

namespace {

// Writes `top` (the manifest of `image`, or an index of `platforms` images when `image` is
// null) and `blobs`, all it names, to DEST.
void saveTop(const Store& store, const Descriptor& top, std::vector<Descriptor> blobs,
             const Image* image, size_t platforms, const ImageRef& dest,
             const std::vector<Descriptor>& referrers)
{
    try {
        switch (dest.kind) {
        case ImageRef::Kind::Oci:
            return saveOciDir(store, top, std::move(blobs), dest, referrers);
        case ImageRef::Kind::DockerArchive:
            if (!image)
                throw UsageError(dest.str(), ": a docker-archive holds one image, not an index of ",
                                 platforms,
                                 " platforms: write it to oci:, oci-archive: or docker://, or "
                                 "copy one platform with --platform");
            [[fallthrough]];
        case ImageRef::Kind::OciArchive:
            return saveArchive(store, top, std::move(blobs), image, dest, referrers);
        case ImageRef::Kind::Scratch:
            throw UsageError("scratch cannot be a destination");
        case ImageRef::Kind::Docker:
            throw Error("docker:// images are written by the registry library");
        }
    } catch (Error& e) {
        e.addContext("while writing " + dest.str());
        throw;
    }
}

} // namespace

void saveImage(const Store& store, const Image& image, const ImageRef& dest,
               const std::vector<Descriptor>& referrers)
{
    saveTop(store, image.manifestDescriptor, blobsOf({&image}), &image, 1, dest, referrers);
}

Descriptor putIndex(Store& store, const std::vector<Image>& images)
{
    Index index;
    for (auto& image : images) {
        Descriptor d = image.manifestDescriptor;
        d.annotations.clear();
        d.platform = image.config.platform();
        index.manifests.push_back(d);
    }
    return store.putBlob(canonical(toJson(index)), std::string(media::ociIndex));
}

void saveIndex(const Store& store, const Descriptor& index, const std::vector<Image>& images,
               const ImageRef& dest, const std::vector<Descriptor>& referrers)
{
    std::vector<const Image*> all;
    for (auto& i : images)
        all.push_back(&i);
    auto blobs = blobsOf(all);
    blobs.push_back(index);
    saveTop(store, index, std::move(blobs), nullptr, images.size(), dest, referrers);
}

std::vector<Descriptor> loadLayoutReferrers(Store& store, const ImageRef& src,
                                            const Digest& subject, const std::string& artifactType)
{
    auto location = src.str();
    if (src.kind == ImageRef::Kind::OciArchive) {
        // Every blob of the archive is read into the store (digests checked) as it is scanned.
        Found f = scanArchive(store, src);
        if (!f.hasIndex) return {};
        return referrersOf(store, parseIndex(f.indexJson, location + " index.json"), subject,
                           artifactType);
    }
    if (src.kind != ImageRef::Kind::Oci) return {};
    auto idx = parseIndex(readFile(src.path / "index.json"), location + " index.json");
    auto blob = [&](const Digest& d) { return src.path / "blobs" / d.algorithm() / d.hex(); };
    Index candidates;
    for (auto& d : idx.manifests) {
        if (d.artifactType.empty() || !media::isManifest(d.mediaType)) continue;
        if (!artifactType.empty() && d.artifactType != artifactType) continue;
        importBlobIfMissing(store, blob(d.digest), d, location + " referrer " + d.digest.str());
        auto m = parseManifest(store.readBlob(d, "referrer " + d.digest.str()),
                               location + " referrer " + d.digest.str(), d.mediaType);
        if (!m.subject || m.subject->digest != subject) continue;
        importBlobIfMissing(store, blob(m.config.digest), m.config,
                            location + " blob " + m.config.digest.str());
        for (auto& l : m.layers)
            importBlobIfMissing(store, blob(l.digest), l, location + " blob " + l.digest.str());
        candidates.manifests.push_back(d);
    }
    return referrersOf(store, candidates, subject, artifactType);
}

} // namespace grocker::oci
