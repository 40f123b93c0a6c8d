// The build cache in a registry (remote-cache.hh): entries as OCI image manifests, one tag each.

#include "remote-cache.hh"

#include "grocker/error.hh"
#include "grocker/oci/image.hh"
#include "grocker/oci/transport.hh"
#include "grocker/registry/auth.hh"
#include "grocker/registry/client.hh"
#include "python-dists.hh"

#include <algorithm>
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
    std::cerr << "grocker: warning: the build cache entry " << entry << " of " << repository_ << " "
              << what << "\n";
}

bool RemoteCache::present(const std::string& tag)
{
    auto r = ref(tag);
    auto& client = session_.client(r.domain);
    registry::Client::Call head;
    head.method = "HEAD";
    head.url = "/v2/" + r.path + "/manifests/" + tag;
    head.repository = r.path;
    head.scopes = {registry::repositoryScope(r.path, false)};
    head.headers = {{"Accept", std::string(media::ociManifest)}};
    auto answer = client.send(head);
    if (answer.status == 404) return false;
    if (!answer.ok()) client.fail(head, answer);
    return true;
}

bool RemoteCache::has(const std::string& key)
{
    if (mode_ == CacheMode::Off) return false;
    try {
        return present("wheel-" + key);
    } catch (std::exception& e) {
        warn("wheel-" + key, std::string("cannot be looked up (") + e.what() + ")");
        return false;
    }
}

void RemoteCache::prefetch(const std::vector<std::string>& keys)
{
    if (mode_ == CacheMode::Off || keys.empty()) return;
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

std::optional<RemoteCache::Wheel> RemoteCache::wheel(const std::string& key)
{
    if (mode_ == CacheMode::Off) return std::nullopt;
    auto tag = "wheel-" + key;
    try {
        // Is it there? A miss is the common case, and no reason for a warning.
        auto known = known_.find(tag);
        if (known != known_.end() ? !known->second : !present(tag)) return std::nullopt;
        auto r = ref(tag);
        auto image = session_.pull(store_, r, true);
        auto labels =
            image.config.json.value("config", json::object()).value("Labels", json::object());
        auto text = [&](const char* name) {
            auto it = labels.find(name);
            if (it == labels.end() || !it->is_string())
                throw Error("has no label ", name, ": not an entry of this grocker's");
            return it->get<std::string>();
        };
        if (text(labelKind) != "wheel" || text(labelKey) != key)
            throw Error("is filed under another key or kind: refused");
        if (image.manifest.layers.size() != 1 ||
            image.manifest.layers[0].mediaType != wheelMediaType)
            throw Error("does not hold one wheel: refused");
        Wheel w{text(labelFile),
                text(labelName),
                text(labelVersion),
                image.manifest.layers[0].digest,
                {}};
        if (!parseWheelName(w.file) || w.file.find('/') != std::string::npos)
            throw Error("names the file '", w.file.substr(0, 200), "', not a wheel: refused");
        w.blob = store_.blobPath(w.digest);
        hits_++;
        return w;
    } catch (std::exception& e) {
        warn(tag, std::string("cannot be used (") + e.what() + "); building it");
        return std::nullopt;
    }
}

void RemoteCache::putWheel(const std::string& key, const json& inputs, const std::string& name,
                           const std::string& version, const std::string& file,
                           const fs::path& path)
{
    if (mode_ != CacheMode::ReadWrite) return;
    auto tag = "wheel-" + key;
    try {
        auto layer = store_.importFile(path, wheelMediaType, std::nullopt, "the wheel " + file);
        layer.annotations["org.opencontainers.image.title"] = file;
        auto config = ImageConfig::scratch();
        config.json["rootfs"]["diff_ids"].push_back(layer.digest.str());
        config.json["history"].push_back(
            {{"created_by", "grocker " GROCKER_VERSION ": the wheel " + file}});
        config.json["config"]["Labels"] = {
            {labelKind, "wheel"}, {labelKey, key},   {labelInputs, canonical(inputs)},
            {labelFile, file},    {labelName, name}, {labelVersion, version}};
        Manifest m;
        m.config.mediaType = std::string(media::ociConfig);
        m.layers.push_back(layer);
        // When it was written: `grocker cache` tells old entries by it.
        m.annotations["org.opencontainers.image.created"] = now();
        auto image = commitImage(store_, std::move(m), std::move(config));
        session_.push(store_, image, ref(tag));
        written_++;
    } catch (std::exception& e) {
        warn(tag, std::string("could not be written (") + e.what() + "); the build goes on");
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
        if (!tag.starts_with("wheel-")) continue; // not grocker's
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
        e.kind = "wheel";
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
