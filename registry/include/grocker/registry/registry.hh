#pragma once
// Pull and push images between the local store and registries, and log in.
//
// Pull: the manifest is asked for with the four Accept types (OCI manifest and index, Docker
// manifest and list); from an index the entry for the wanted platform is taken (attestation
// entries skipped). The raw bytes' digest is checked against the digest asked for and the
// Docker-Content-Digest header. Blobs missing from the store are fetched several at once,
// streamed into the store with size and digest checked, resumed with Range after a cut.
//
// Push: per blob, HEAD first (skipped when there), then a cross-repository mount when the
// store saw the blob in another repository of the same registry, else an upload: POST then PUT
// for small blobs, PATCH chunks for large ones with the offset kept by the client (registry 2.8
// ignores Content-Range), resumed from GET <location> after a failure, always at the newest
// Location. Several blobs at once; the manifest last, by tag or by digest.

#include "grocker/oci/reference.hh"
#include "grocker/oci/store.hh"
#include "grocker/oci/transport.hh"
#include "grocker/registry/client.hh"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace grocker::registry {

class Progress;

struct Options {
    ClientOptions client;
    oci::Platform platform = oci::Platform::host();
    unsigned parallel = 4;
    bool quiet = false;
    // Blobs up to this size are uploaded in one PUT; larger ones in PATCH chunks of chunkSize.
    uint64_t monolithicMax = 16 << 20;
    uint64_t chunkSize = 64 << 20;
    // Shared tags (the referrers tag schema's index, cosign's .sig) read back after a longer
    // pause (keepMerged): for grocker sign, whose signers of one image may well write at once,
    // and whose time is not a build's.
    bool patientMerges = false;
};

class Session {
  public:
    explicit Session(Options options);
    ~Session();

    // The client of a registry (made on first use, kept for the session).
    Client& client(const std::string& domain);

    // Reads `ref` into the store; with `layers` false, only its manifest and config (inspect),
    // its layers recorded as seen there (a push into this registry mounts them).
    oci::Image pull(oci::Store& store, const oci::Reference& ref, bool layers = true);
    // Reads `ref` into the store whole: an image, or an index and every image it lists (an
    // index of indexes is refused).
    oci::ImageSet pullSet(oci::Store& store, const oci::Reference& ref);
    // Fetches these layers of `ref`'s repository that the store lacks: those an image pulled
    // without its layers turns out to need (grocker diff, which reads only the layers that differ).
    void fetchLayers(oci::Store& store, const oci::Reference& ref,
                     const std::vector<oci::Descriptor>& layers);
    // Whether the registry has a manifest under `ref` (HEAD): false on a 404; throws otherwise.
    bool hasManifest(const oci::Reference& ref);
    // The digest of the manifest under `ref` (HEAD, its Docker-Content-Digest; without one, a
    // GET of it), nullopt on a 404. `exact` false: an empty digest when the HEAD does not say.
    std::optional<oci::Digest> manifestDigest(const oci::Reference& ref, bool exact = true);
    // Writes the image (all its blobs in the store) to `ref`; returns the manifest digest.
    oci::Digest push(oci::Store& store, const oci::Image& image, const oci::Reference& ref);
    // Writes the image index `index` (its bytes and media type in the store) to `ref`, after
    // `images`, each image it lists, by digest (those the repository lacks); returns the
    // index's digest.
    oci::Digest pushIndex(oci::Store& store, const oci::Descriptor& index,
                          const std::vector<oci::Image>& images, const oci::Reference& ref);
    // The parts of push: these blobs of the store into `ref`'s repository, quietly (without
    // asking first whether it has them, unless `probe`: blobs most likely new, as a
    // signature's); then an image's manifest under `ref`, once its repository has all its blobs.
    void pushNewBlobs(oci::Store& store, const std::vector<oci::Descriptor>& blobs,
                      const oci::Reference& ref, bool probe = false);
    void putManifest(const oci::Image& image, const oci::Reference& ref);

    // Pushes `referrers` (attachments in the store of one subject, oci/referrers.hh) into
    // `ref`'s repository, where their subject is, and lists them where clients look for the
    // subject's referrers: the registry's referrers API when it has one (it indexes the subject
    // itself), else the referrers tag schema (an index tagged sha256-<subject's hex>), merged
    // with what is there and read back, so that a concurrent writer's entry is not lost.
    void attach(oci::Store& store, const std::vector<oci::Descriptor>& referrers,
                const oci::Reference& ref);
    // The referrers of `subject` in `ref`'s repository of `artifactType` ("" for any), from the
    // referrers API or, without one, the tag schema.
    std::vector<oci::Descriptor> referrers(const oci::Reference& ref, const oci::Digest& subject,
                                           const std::string& artifactType);
    // Reads a referrer (its manifest and blobs) of `ref`'s repository into the store.
    void fetchReferrer(oci::Store& store, const oci::Reference& ref,
                       const oci::Descriptor& referrer);

    const Options& options() const { return options_; }

  private:
    // Fetches the blobs (label, descriptor) the store lacks, several at once, after checking
    // that their sizes fit.
    void fetchBlobs(oci::Store& store, const oci::Reference& ref,
                    const std::vector<std::pair<std::string, oci::Descriptor>>& blobs,
                    Progress& progress);
    Options options_;
    // A session's calls may come from several threads (a build pushes its runner and its
    // attachments at once): each Client is safe to share; the map is guarded.
    std::mutex clientsMutex_;
    std::map<std::string, std::unique_ptr<Client>> clients_;
};

// Checks the credentials against `registry` ("host[:port]", "docker.io") and saves them in
// loginAuthFile(); returns that file.
std::filesystem::path login(const std::string& registry, const std::string& username,
                            const std::string& password, const Options& options);
// Removes the registry's credentials from loginAuthFile(); returns that file. Throws an Error
// when there were none.
std::filesystem::path logout(const std::string& registry, const Options& options);

// Refuses, before anything is downloaded, blobs whose declared size cannot be real: one larger
// than `freeBytes` (the free space where the store is, `where`; 2^63 bytes, say), or all of
// them together. `blobs`: "layer sha256:…" labels and descriptors of the blobs to fetch;
// `image` names the image. freeBytes nullopt: unknown, nothing is refused.
void checkBlobSizes(const std::vector<std::pair<std::string, oci::Descriptor>>& blobs,
                    std::optional<uint64_t> freeBytes, const std::filesystem::path& where,
                    const std::string& image);
// The bytes an unprivileged process may still write on the filesystem of `path`; nullopt when
// statvfs cannot tell.
std::optional<uint64_t> freeSpace(const std::filesystem::path& path);

// The index entry for `platform`: image manifests only, attestations skipped (platform
// unknown/unknown, or vnd.docker.reference.type=attestation-manifest). `where` names the index.
oci::Descriptor choosePlatform(const oci::Index& index, const oci::Platform& platform,
                               const std::string& where);

// A read-merge-write of an object that writers share with no compare-and-swap (a tag that each
// rewrites: the referrers tag schema, cosign's .sig): `read` reads it and says whether it holds
// ours, `write` merges ours into what `read` read last and writes it; every write comes right
// after a read (the shorter the time between them, the fewer writers slip in). Done when ours is
// read, and read again after a pause as long as our last read-and-write took (a writer whose read
// came before our write, and whose write comes after our read, would have dropped ours by then).
// Throws after `tries` writes that did not keep ours, saying `what` was lost. `patient`: the
// pause a few times as long, and at least 150 ms (Options::patientMerges).
void keepMerged(const std::function<bool()>& read, const std::function<void()>& write, int tries,
                const std::string& what, bool patient = false);

} // namespace grocker::registry
