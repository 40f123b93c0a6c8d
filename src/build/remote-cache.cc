// The build cache in a registry (remote-cache.hh): entries as OCI image manifests, one tag each.

#include "remote-cache.hh"

#include "grocker/display.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/image.hh"
#include "grocker/oci/transport.hh"
#include "grocker/registry/auth.hh"
#include "grocker/registry/client.hh"
#include "grocker/registry/http.hh"
#include "python-dists.hh"

#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <atomic>
#include <ctime>
#include <iostream>
#include <thread>

namespace grocker::build {

namespace fs = std::filesystem;
using namespace grocker::oci;
using nlohmann::json;

namespace {

constexpr char labelKind[] = "org.grocker.cache.kind";
constexpr char labelKey[] = "org.grocker.cache.key";
constexpr char labelInputs[] = "org.grocker.cache.inputs";
constexpr char labelFile[] = "org.grocker.wheel.file";
constexpr char labelName[] = "org.grocker.wheel.name";
constexpr char labelVersion[] = "org.grocker.wheel.version";

std::string now()
{
    return rfc3339(std::time(nullptr));
}

} // namespace

CacheMode parseCacheMode(const std::string& text)
{
    if (text == "readwrite") return CacheMode::ReadWrite;
    if (text == "read") return CacheMode::Read;
    if (text == "off") return CacheMode::Off;
    throw UsageError("--cache-mode '", text, "' is none of readwrite, read and off");
}

namespace {
registry::Options quietly(registry::Options o)
{
    o.quiet = true;
    return o;
}
} // namespace

RepositoryExtra repositoryExtra(const std::string& text)
{
    auto ref = Reference::parse(text);
    if (ref.digest) return RepositoryExtra::Digest;
    // Reference::parse gives every reference a tag ("latest" when none): look at what was written.
    auto last = text.substr(text.rfind('/') + 1);
    return last.find(':') != std::string::npos ? RepositoryExtra::Tag : RepositoryExtra::None;
}

RemoteCache::RemoteCache(Store& store, registry::Options options, std::string repository,
                         CacheMode mode)
    : store_(store), session_(quietly(std::move(options))), repository_(std::move(repository)),
      mode_(mode)
{
}

Reference RemoteCache::ref(const std::string& tag) const
{
    return Reference::parse(repository_ + ":" + tag);
}

void RemoteCache::warn(const std::string& entry, const std::string& what) const
{
    display().warning(concat("the build cache entry ", entry, " of ", repository_, " ", what));
}

bool RemoteCache::present(const std::string& tag)
{
    return session_.hasManifest(ref(tag));
}

void RemoteCache::failed(const std::string& tag, const std::exception& e,
                         const std::string& consequence)
{
    if (dynamic_cast<const registry::TransportError*>(&e)) {
        // Unreachable: every other entry would wait for the same retries.
        display().warning(concat("the build cache ", repository_, " cannot be reached (", e.what(),
                                 "): the build goes on without it"));
        off_ = true;
        return;
    }
    warn(tag, consequence + " (" + e.what() + ")");
}

bool RemoteCache::has(const std::string& kind, const std::string& key)
{
    if (mode_ == CacheMode::Off || off_) return false;
    auto tag = kind + "-" + key;
    try {
        return present(tag);
    } catch (std::exception& e) {
        failed(tag, e, "cannot be looked up");
        return false;
    }
}

void RemoteCache::prefetch(const std::vector<std::string>& keys)
{
    if (mode_ == CacheMode::Off || off_ || keys.empty()) return;
    (void)session_.client(ref("x").domain); // made once, before the threads share it
    std::atomic<size_t> next{0};
    auto work = [&] {
        for (size_t i; (i = next++) < keys.size();) {
            auto tag = "wheel-" + keys[i];
            try {
                bool there = present(tag);
                std::lock_guard lock(mutex_);
                known_[tag] = there;
            } catch (std::exception&) {
                // wheel() asks again, and warns
            }
        }
    };
    std::vector<std::thread> threads;
    for (size_t t = 1; t < std::min<size_t>(keys.size(), 8); t++)
        threads.emplace_back(work);
    work();
    for (auto& t : threads)
        t.join();
}

std::optional<Image> RemoteCache::fetch(const std::string& kind, const std::string& key,
                                        const char* mediaType, int64_t maxSize)
{
    auto tag = kind + "-" + key;
    // Is it there? A miss is the common case, and no reason for a warning.
    auto known = known_.find(tag);
    if (known != known_.end() ? !known->second : !present(tag)) return std::nullopt;
    auto r = ref(tag);
    // The manifest and config first: the layer only once they say it is what was asked for.
    auto image = session_.pull(store_, r, false);
    auto labels = image.config.labels();
    auto kindLabel = labels.find(labelKind), keyLabel = labels.find(labelKey);
    if (kindLabel == labels.end() || keyLabel == labels.end())
        throw Error("has no label ", labelKind, " or ", labelKey, ": not an entry of grocker's");
    if (*kindLabel != kind || *keyLabel != key)
        throw Error("is filed under another key or kind: refused");
    if (image.manifest.layers.size() != 1 || image.manifest.layers[0].mediaType != mediaType)
        throw Error("does not hold one ", mediaType, " layer: refused");
    if (image.manifest.layers[0].size > maxSize)
        throw Error("says its layer has ", image.manifest.layers[0].size, " bytes, over ", maxSize,
                    ": refused");
    session_.fetchLayers(store_, r, image.manifest.layers);
    return image;
}

std::optional<RemoteCache::Wheel> RemoteCache::wheel(const std::string& key)
{
    if (mode_ == CacheMode::Off || off_) return std::nullopt;
    auto tag = "wheel-" + key;
    try {
        auto image = fetch("wheel", key, wheelMediaType, int64_t(4) << 30);
        if (!image) return std::nullopt;
        auto labels = image->config.labels();
        auto text = [&](const char* name) {
            auto it = labels.find(name);
            if (it == labels.end() || !it->is_string())
                throw Error("has no label ", name, ": not an entry of this grocker's");
            return it->get<std::string>();
        };
        Wheel w{text(labelFile),
                text(labelName),
                text(labelVersion),
                image->manifest.layers[0].digest,
                {}};
        if (!parseWheelName(w.file) || w.file.find('/') != std::string::npos)
            throw Error("names the file '", w.file.substr(0, 200), "', not a wheel: refused");
        w.blob = store_.blobPath(w.digest);
        hits_++;
        return w;
    } catch (std::exception& e) {
        failed(tag, e, "cannot be used");
        return std::nullopt;
    }
}

std::optional<json> RemoteCache::resolution(const std::string& key)
{
    if (mode_ == CacheMode::Off || off_) return std::nullopt;
    auto tag = "resolution-" + key;
    try {
        auto image = fetch("resolution", key, resolutionMediaType, 16 << 20);
        if (!image) return std::nullopt;
        auto j = json::parse(readFile(store_.blobPath(image->manifest.layers[0].digest)), nullptr,
                             false);
        if (j.is_discarded() || !j.is_object()) throw Error("does not hold a JSON object: refused");
        resolutionHits_++;
        return j;
    } catch (std::exception& e) {
        failed(tag, e, "cannot be used");
        return std::nullopt;
    }
}

namespace {

// The sha256 of a layer blob's uncompressed content (its diff id), read through libarchive's
// filters (gzip, zstd, none) with its raw format.
Digest uncompressedDigest(const fs::path& blob, const std::string& what)
{
    std::unique_ptr<struct archive, decltype(&archive_read_free)> a(archive_read_new(),
                                                                    archive_read_free);
    if (!a) throw Error(what, ": out of memory");
    archive_read_support_filter_gzip(a.get());
    archive_read_support_filter_zstd(a.get());
    archive_read_support_filter_none(a.get());
    archive_read_support_format_raw(a.get());
    struct archive_entry* entry;
    if (archive_read_open_filename(a.get(), blob.c_str(), 1 << 17) != ARCHIVE_OK ||
        archive_read_next_header(a.get(), &entry) != ARCHIVE_OK)
        throw Error(what, ": unable to read it: ", archive_error_string(a.get()));
    Sha256 h;
    std::vector<char> buf(1 << 17);
    for (;;) {
        auto n = archive_read_data(a.get(), buf.data(), buf.size());
        if (n < 0) throw Error(what, ": unable to read it: ", archive_error_string(a.get()));
        if (n == 0) break;
        h.update(buf.data(), size_t(n));
    }
    return h.finish();
}

} // namespace

std::optional<LayerResult> RemoteCache::stepLayer(const std::string& key, Compression compression)
{
    if (mode_ == CacheMode::Off || off_) return std::nullopt;
    auto tag = "step-" + key;
    try {
        auto type = layerMediaType(compression);
        auto image = fetch("step", key, type.c_str(), int64_t(16) << 30);
        if (!image) return std::nullopt;
        auto diffIds = image->config.diffIds();
        if (diffIds.size() != 1) throw Error("names ", diffIds.size(), " diff ids, not one");
        auto& l = image->manifest.layers[0];
        LayerResult r;
        // As the runner has it: no annotation.
        r.descriptor.mediaType = l.mediaType;
        r.descriptor.digest = l.digest;
        r.descriptor.size = l.size;
        r.diffId = uncompressedDigest(store_.blobPath(l.digest), "its layer");
        if (r.diffId != diffIds[0])
            throw Error("holds a layer whose content has digest ", r.diffId.str(), ", not ",
                        diffIds[0].str(), " as its config says: refused");
        stepHits_++;
        return r;
    } catch (std::exception& e) {
        failed(tag, e, "cannot be used");
        return std::nullopt;
    }
}

void RemoteCache::putStep(const std::string& key, const LayerResult& layer, const std::string& what)
{
    if (!writes()) return;
    Descriptor d = layer.descriptor;
    d.annotations.clear();
    put("step", key, {"step", key}, json::object(), d, "the layer of " + what, layer.diffId);
}

void RemoteCache::put(const std::string& kind, const std::string& key, const json& inputs,
                      json labels, Descriptor layer, const std::string& what,
                      const std::optional<Digest>& diffId)
{
    auto tag = kind + "-" + key;
    if (!writes()) return;
    try {
        layer.annotations["org.opencontainers.image.title"] = what;
        auto config = ImageConfig::scratch();
        config.json["rootfs"]["diff_ids"].push_back(diffId ? diffId->str() : layer.digest.str());
        config.json["history"].push_back({{"created_by", "grocker " GROCKER_VERSION ": " + what}});
        labels[labelKind] = kind;
        labels[labelKey] = key;
        labels[labelInputs] = canonical(inputs);
        config.json["config"]["Labels"] = labels;
        Manifest m;
        m.config.mediaType = std::string(media::ociConfig);
        m.layers.push_back(layer);
        // When it was written: `grocker cache` tells old entries by it.
        m.annotations["org.opencontainers.image.created"] = now();
        auto image = commitImage(store_, std::move(m), std::move(config));
        // Two runners writing one key at once push the same blobs and each a manifest under
        // the tag: whichever lands last stays, and both are whole entries.
        session_.push(store_, image, ref(tag));
        written_++;
    } catch (std::exception& e) {
        failed(tag, e, "could not be written; the build goes on");
    }
}

void RemoteCache::putWheel(const std::string& key, const json& inputs, const std::string& name,
                           const std::string& version, const std::string& file,
                           const fs::path& path)
{
    if (!writes()) return;
    try {
        auto layer = store_.importFile(path, wheelMediaType, std::nullopt, "the wheel " + file);
        put("wheel", key, inputs, {{labelFile, file}, {labelName, name}, {labelVersion, version}},
            layer, file);
    } catch (std::exception& e) {
        failed("wheel-" + key, e, "could not be written; the build goes on");
    }
}

void RemoteCache::putResolution(const std::string& key, const json& inputs, const json& entry,
                                const std::string& what)
{
    if (!writes()) return;
    try {
        auto layer = store_.putBlob(canonical(entry), resolutionMediaType);
        put("resolution", key, inputs, json::object(), layer, what);
    } catch (std::exception& e) {
        failed("resolution-" + key, e, "could not be written; the build goes on");
    }
}

namespace {

// Seconds since the epoch of an RFC 3339 UTC time as written here ("2026-12-04T02:41:26Z").
std::optional<int64_t> parseTime(const std::string& t)
{
    struct tm tm {};
    const char* end = ::strptime(t.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end) return std::nullopt;
    return int64_t(::timegm(&tm));
}

} // namespace

std::vector<RemoteCache::Entry> RemoteCache::list()
{
    auto base = ref("x");
    auto& client = session_.client(base.domain);
    std::vector<std::string> tags;
    std::string url = "/v2/" + base.path + "/tags/list?n=1000";
    while (!url.empty()) {
        registry::Client::Call get;
        get.url = url;
        get.repository = base.path;
        get.scopes = {registry::repositoryScope(base.path, false)};
        auto r = client.send(get);
        if (r.status == 404) return {}; // no such repository: no entries
        if (!r.ok()) client.fail(get, r);
        auto j = json::parse(r.body, nullptr, false);
        if (j.is_discarded() || !j.is_object())
            throw Error(base.domain, " answered the tag list of ", base.path,
                        " with no JSON object");
        for (auto& t : j.value("tags", json::array()))
            if (t.is_string()) tags.push_back(t.get<std::string>());
        // Pagination (RFC 5988 Link: <URL>; rel="next"), a path on the same registry only.
        url.clear();
        auto link = r.header("link");
        auto lt = link.find('<'), gt = link.find('>');
        if (lt != std::string::npos && gt != std::string::npos && gt > lt &&
            link.find("rel=\"next\"") != std::string::npos) {
            auto next = link.substr(lt + 1, gt - lt - 1);
            if (next.starts_with("/v2/")) url = next;
        }
    }
    std::sort(tags.begin(), tags.end());
    std::vector<Entry> out;
    auto nowSeconds = int64_t(std::time(nullptr));
    for (auto& tag : tags) {
        auto dash = tag.find('-');
        std::string kind = dash == std::string::npos ? "" : tag.substr(0, dash);
        if (kind != "wheel" && kind != "resolution" && kind != "step") continue; // not grocker's
        registry::Client::Call get;
        get.url = "/v2/" + base.path + "/manifests/" + tag;
        get.repository = base.path;
        get.scopes = {registry::repositoryScope(base.path, false)};
        get.headers = {{"Accept", std::string(media::ociManifest)}};
        auto r = client.send(get);
        if (r.status == 404) continue; // removed meanwhile
        if (!r.ok()) client.fail(get, r);
        auto m = parseManifest(r.body, "the manifest of " + tag, media::ociManifest);
        Entry e;
        e.tag = tag;
        e.kind = kind;
        e.manifest = sha256(r.body);
        for (auto& l : m.layers) {
            e.size += l.size;
            auto title = l.annotations.find("org.opencontainers.image.title");
            if (title != l.annotations.end()) e.what = title->second;
        }
        auto created = m.annotations.find("org.opencontainers.image.created");
        if (created != m.annotations.end()) {
            e.created = created->second;
            if (auto t = parseTime(e.created)) e.age = std::max<int64_t>(0, nowSeconds - *t);
        }
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<RemoteCache::Entry> RemoteCache::prune(int64_t seconds)
{
    auto base = ref("x");
    auto& client = session_.client(base.domain);
    std::vector<Entry> removed;
    for (auto& e : list()) {
        if (e.age < 0 || e.age < seconds) continue;
        registry::Client::Call del;
        del.method = "DELETE";
        del.url = "/v2/" + base.path + "/manifests/" + e.manifest.str();
        del.repository = base.path;
        del.scopes = {registry::repositoryScope(base.path, true)};
        auto r = client.send(del);
        if (r.status == 404) continue; // removed meanwhile (another prune)
        if (r.status == 405 || r.status == 501)
            throw Error(base.domain, " does not allow deleting manifests (it answered ", r.status,
                        "): the entries stay; on a distribution registry, set storage.delete."
                        "enabled, or remove old tags with the registry's own tools");
        if (!r.ok()) client.fail(del, r);
        removed.push_back(e);
    }
    return removed;
}

} // namespace grocker::build
