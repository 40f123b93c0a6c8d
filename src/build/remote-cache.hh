#pragma once
// The build cache in a registry: what one runner compiled, another finds, so that a fresh CI
// runner (an empty store) compiles nothing a runner before it compiled. Kept in one repository
// (--cache-repo, default PREFIX/grocker-cache) as plain OCI image manifests, which every
// registry accepts, one tag per entry:
//   wheel-KEY       a wheel built from an sdist or a project: KEY is the local cache's key (the
//                   compiler image's digest, the index settings without credentials, the
//                   source's digest); its one layer is the wheel file
//                   (application/vnd.grocker.wheel.v1+zip), its config's labels say the
//                   wheel's file name, name and version.
//   resolution-KEY  the distributions a release's requirements resolved to (name, version,
//                   file, digest): KEY is the local resolution cache's key (the compiler, the
//                   index settings without credentials, the constraints, the app's name and
//                   requirements); its one layer is that JSON
//                   (application/vnd.grocker.resolution.v1+json).
//   step-KEY        the layer a runner step made (the dependencies' layer, which every new
//                   release of an app keeps): KEY is the local step cache's key (the base
//                   image's digest, the step's command, environment and inputs, the wheels'
//                   digests among them); its one layer is that layer as the runner has it, the
//                   config's diff_ids its uncompressed digest (checked on read).
// Modes: readwrite (the default with a prefix), read (jobs that must not write the shared
// cache, such as pull requests), off. A cache failure never fails a build: a warning names the
// entry and the build goes on as if it were missing; once the registry cannot be reached at
// all, the cache is off for the rest of the build (one warning, not one per entry). Every
// entry is checked as a box's output is: digests on download, then by the compile pass (a
// wheel's name, version and metadata; every file a resolution names fetched from the index
// and checked against the digest it records).

#include "grocker/oci/digest.hh"
#include "grocker/oci/layer-writer.hh"
#include "grocker/oci/reference.hh"
#include "grocker/oci/store.hh"
#include "grocker/registry/registry.hh"

#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace grocker::build {

enum class CacheMode { Off, Read, ReadWrite };
// "readwrite", "read" or "off"; a UsageError otherwise.
CacheMode parseCacheMode(const std::string& text);

// What a cache repository as given names beyond a repository (it must name none: grocker tags
// its entries); a bad reference throws.
enum class RepositoryExtra { None, Tag, Digest };
RepositoryExtra repositoryExtra(const std::string& text);

inline constexpr char wheelMediaType[] = "application/vnd.grocker.wheel.v1+zip";
inline constexpr char resolutionMediaType[] = "application/vnd.grocker.resolution.v1+json";

class RemoteCache {
  public:
    // `repository`: "host/path", no tag. Transfers are not shown one by one (the build's
    // summary counts them).
    RemoteCache(oci::Store& store, registry::Options options, std::string repository,
                CacheMode mode);

    struct Wheel {
        std::string file, name, version;
        oci::Digest digest;
        std::filesystem::path blob; // in the store, its digest checked on download
    };
    // The wheel filed under `key`; none when the registry has none, or when it cannot be used
    // (a warning says why).
    std::optional<Wheel> wheel(const std::string& key);
    // The resolution filed under `key` (as the compile pass wrote it); none when the registry
    // has none, or when it cannot be used (a warning says why).
    std::optional<nlohmann::json> resolution(const std::string& key);
    // Files a resolution under `key` (readwrite only); `what` names it for `grocker cache ls`.
    // A failure is a warning.
    void putResolution(const std::string& key, const nlohmann::json& inputs,
                       const nlohmann::json& entry, const std::string& what);
    // The layer filed under the step key `key`, in the store, its digest and uncompressed digest
    // checked; none when missing or unusable (a warning says why).
    std::optional<oci::LayerResult> stepLayer(const std::string& key, oci::Compression compression);
    // Files a step's layer (in the store) under `key` (readwrite only); `what` names the step.
    void putStep(const std::string& key, const oci::LayerResult& layer, const std::string& what);
    // Asks whether these wheel keys are there, side by side (a fresh runner's first lookups: most
    // are misses, a round trip each), for wheel() to answer misses from. The downloads stay one at
    // a time: a failing one cancels its client's other transfers.
    void prefetch(const std::vector<std::string>& keys);
    // Whether an entry of `kind` ("wheel", "resolution") is filed under `key` (false when the
    // registry cannot say).
    bool has(const std::string& kind, const std::string& key);
    // Files the wheel at `path` under `key` (readwrite only); a failure is a warning.
    void putWheel(const std::string& key, const nlohmann::json& inputs, const std::string& name,
                  const std::string& version, const std::string& file,
                  const std::filesystem::path& path);

    // One entry, as `grocker cache ls` shows it (from its manifest only).
    struct Entry {
        std::string tag, kind, what; // "wheel-KEY", "wheel", the wheel's file name
        oci::Digest manifest;
        int64_t size = 0;    // of its layers
        std::string created; // RFC 3339, as written; empty when unknown
        int64_t age = -1;    // seconds since then; -1 when unknown
    };
    // Every entry of the repository (none when it does not exist), sorted by tag.
    std::vector<Entry> list();
    // Removes the entries older than `seconds` (by manifest digest; the registry removes their
    // blobs in its own garbage collection). Throws a clear Error when the registry does not
    // allow deletion. Returns what it removed.
    std::vector<Entry> prune(int64_t seconds);

    bool writes() const { return mode_ == CacheMode::ReadWrite && !off_; }
    const std::string& repository() const { return repository_; }
    // Counts for the build's summary.
    size_t hits() const { return hits_; }
    size_t resolutionHits() const { return resolutionHits_; }
    size_t stepHits() const { return stepHits_; }
    size_t written() const { return written_; }

  private:
    oci::Store& store_;
    registry::Session session_;
    std::string repository_;
    CacheMode mode_;
    size_t hits_ = 0, resolutionHits_ = 0, stepHits_ = 0, written_ = 0;
    bool off_ = false; // the registry could not be reached: no more lookups or writes
    std::mutex mutex_; // known_, from prefetch's threads
    std::map<std::string, bool> known_; // tag → there or not, as prefetch found

    oci::Reference ref(const std::string& tag) const;
    // HEAD of the tag's manifest: true when there, false on a 404; throws otherwise.
    bool present(const std::string& tag);
    // The entry `kind`-`key`, pulled and checked (labels, one layer of `mediaType` at most
    // `maxSize` bytes, its digest); none when missing; throws when it cannot be used.
    std::optional<oci::Image> fetch(const std::string& kind, const std::string& key,
                                    const char* mediaType, int64_t maxSize);
    // Files `layer` (in the store) under `kind`-`key` with these labels, as an OCI manifest;
    // its diff id is its digest (an uncompressed file) unless given.
    void put(const std::string& kind, const std::string& key, const nlohmann::json& inputs,
             nlohmann::json labels, oci::Descriptor layer, const std::string& what,
             const std::optional<oci::Digest>& diffId = std::nullopt);
    // A failed lookup or write: a warning naming the entry, and the cache off for the rest of
    // the build when the registry could not be reached at all.
    void failed(const std::string& tag, const std::exception& e, const std::string& consequence);
    void warn(const std::string& entry, const std::string& what) const;
};

} // namespace grocker::build
