#pragma once
// Registration of grocker's subcommands. Each returns the exit status.

#include "grocker/oci/signature.hh"
#include "grocker/oci/store.hh"
#include "grocker/oci/transport.hh"
#include "grocker/registry/registry.hh"

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace grocker {

struct GlobalOptions {
    std::string root;
    bool quiet = false;
    bool verbose = false;
    std::string progress; // --progress: auto, tty, plain, quiet ("": $GROCKER_PROGRESS, auto)
    // Registries: credentials file, TLS verification (false also allows plain http), CA folder.
    std::string authfile;
    bool tlsVerify = true;
    std::string certDir;
    // --platform of copy, pull, run: of an index, the image for this platform ("": this
    // machine's).
    std::string platform;
    // --all of copy, pull, push: an index whole, not one of its images.
    bool allPlatforms = false;
};

// The platform an index's image is picked for: --platform, else this machine's.
oci::Platform wantedPlatform(const GlobalOptions& global);
// --platform on a command that reads images.
void addPlatformOption(CLI::App* app, GlobalOptions& global);
// --all on copy, pull and push (after --platform, which it excludes).
void addAllOption(CLI::App* app, GlobalOptions& global);

using Runners = std::vector<std::pair<CLI::App*, std::function<int()>>>;

// append, copy, unpack, inspect.
Runners registerImageCommands(CLI::App& app, GlobalOptions& global);
// run.
Runners registerRunCommand(CLI::App& app, GlobalOptions& global);
// build.
Runners registerBuildCommand(CLI::App& app, GlobalOptions& global);

// diff.
Runners registerDiffCommand(CLI::App& app, GlobalOptions& global);

// fsck, purge.
Runners registerStoreCommands(CLI::App& app, GlobalOptions& global);

// sbom, attestations.
Runners registerAttestationCommands(CLI::App& app, GlobalOptions& global);
// sign, verify, generate-key-pair.
Runners registerSignCommands(CLI::App& app, GlobalOptions& global);

// index create.
Runners registerIndexCommands(CLI::App& app, GlobalOptions& global);

// rebase.
Runners registerRebaseCommand(CLI::App& app, GlobalOptions& global);

// cache ls, cache prune.
Runners registerCacheCommands(CLI::App& app, GlobalOptions& global);

// pull, push, login, logout.
Runners registerRegistryCommands(CLI::App& app, GlobalOptions& global);

// --progress, on grocker itself and on each command that moves data.
void addProgressOption(CLI::App* app, GlobalOptions& global);

// A signing key file (--key, --sign-key), its password from $COSIGN_PASSWORD, else asked on the
// terminal; a UsageError with neither.
oci::SigningKey loadSigningKey(const std::string& path);

// The store of --root (or $GROCKER_ROOT, or the default).
oci::Store openStore(const GlobalOptions& global);

// The registry library's options from the global flags (credentials, TLS, quiet).
registry::Options registryOptions(const GlobalOptions& global);

// Reads SRC into the store, docker:// included (with `layers` false, only what inspect needs
// from a registry); writes an image to DEST, docker:// included. `pulled`: the image came from
// a registry, so an oci: DEST gets its blobs linked from the store rather than copied.
oci::Image loadAnyImage(oci::Store& store, const oci::ImageRef& src, const GlobalOptions& global,
                        bool layers = true);
// "docker://host/repo:tag" or "host/repo:tag" as a reference; a bad one is a UsageError.
oci::Reference dockerReference(const std::string& text);
// The registry a docker:// location is in ("" for the other kinds): an image read from the one
// it is written to needs no layers here.
std::string registryOf(const oci::ImageRef& location);
// `referrers`: its attachments in the store (SBOMs), written with it where DEST holds them.
void saveAnyImage(oci::Store& store, const oci::Image& image, const oci::ImageRef& dest,
                  const GlobalOptions& global, bool pulled = false,
                  const std::vector<oci::Descriptor>& referrers = {});
// The attachments (OCI 1.1 referrers: SBOMs, provenance, signatures) of the image `subject` at
// SRC, read into the store: from an oci: layout, an oci-archive or a registry; none elsewhere.
std::vector<oci::Descriptor> loadAttachments(oci::Store& store, const oci::ImageRef& src,
                                             const GlobalOptions& global,
                                             const oci::Digest& subject);
// SRC parsed, when it is where attachments (`what`: "signatures", "attachments") are kept: a
// registry, an oci: layout or an oci-archive; a UsageError saying so otherwise.
oci::ImageRef imageWithAttachments(const std::string& text, const std::string& what);
// Writes `images` to DEST (docker://, oci:, oci-archive:; one image to any), under `index` when
// there is one, each with its attachments from where it was read (`from[i]`; the index's from
// `indexFrom`): their referrers where DEST keeps them, cosign's .sig tags into a registry; none
// of a subject read from DEST's own repository (they are there). Returns how many it carried.
size_t saveWithAttachments(oci::Store& store, const std::optional<oci::Descriptor>& index,
                           const std::vector<oci::Image>& images,
                           const std::vector<oci::ImageRef>& from,
                           const std::optional<oci::ImageRef>& indexFrom, const oci::ImageRef& dest,
                           const GlobalOptions& global);
// Copies the image at SRC to DEST with its attachments (with --all, an index whole, and the
// attachments of each image and of the index); the digest of what it copied.
oci::Digest copyWithAttachments(oci::Store& store, const oci::ImageRef& src,
                                const oci::ImageRef& dest, const GlobalOptions& global);
// For an image that loadAnyImage read with `layers` false: fetches these of its layers that the
// store lacks. Only docker:// reads layers lazily; the other transports have read them all.
void fetchAnyLayers(oci::Store& store, const oci::ImageRef& src,
                    const std::vector<oci::Descriptor>& layers, const GlobalOptions& global);

} // namespace grocker
