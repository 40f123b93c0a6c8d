#pragma once
// `grocker build` as a library: a BuildRequest in, a BuildResult out, through named passes
// (pipeline.cc's build() lists them). The command line only fills the request and prints.

#include "compile.hh"
#include "config.hh"
#include "grocker/oci/digest.hh"
#include "grocker/oci/signature.hh"
#include "grocker/oci/transport.hh"
#include "grocker/registry/registry.hh"
#include "steps.hh"

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace grocker::build {

struct BuildRequest {
    std::string release; // RELEASE as given
    std::vector<std::filesystem::path> configFiles;
    ConfigOverrides overrides;
    std::string pipConf, indexUrl, indexUrlFile, findLinks;
    std::string compileNetwork = "host"; // the boxes': the host's, or none
    std::vector<std::string> outputs;    // --output locations, as given
    std::string resultFile;
    std::string exportWheels; // --export-wheels: a host folder for the wheels the build used
    // The build cache in a registry (remote-cache.hh): --cache-repo (default
    // PREFIX/grocker-cache), --cache-mode (default readwrite with a prefix, read with --no-push,
    // off with neither a prefix nor a cache repository).
    std::string cacheRepo, cacheMode;
    bool buildDependencies = true;
    bool push = true;
    bool refresh = false; // resolve the dependencies again: no cached compile or resolution
    // --rebase-only: the root made, then the runner built before put over it (rebase.hh).
    bool rebaseOnly = false;
    bool noIndex = false;   // --no-index: packages from the find-links folder only
    bool sbom = true;       // the runner's SBOMs attached to it (--no-sbom)
    bool provenance = true; // its provenance statement attached to it (--no-provenance)
    // --sign-key: the runner signed with it (a Sigstore bundle attached, cosign's .sig tag).
    std::shared_ptr<const oci::SigningKey> signKey;
    std::string compression = "gzip";
    std::string baseImage; // instead of the runtime's registry image (a mirror's copy)

    std::filesystem::path storeRoot;
    bool quiet = false;
    registry::Options registry; // for the prefix's registry and docker:// outputs
    // The grocker-entrypoint program every runner holds, of the runner's platform, looked for
    // when the runner needs it.
    std::function<std::filesystem::path(const oci::Platform&)> entrypoint;
    std::optional<int64_t> epoch; // SOURCE_DATE_EPOCH; read from the environment when unset
    // Writes the image to an --output location (the command's, which knows every transport).
    std::function<void(oci::Store&, const oci::Image&, const oci::ImageRef&,
                       const std::vector<oci::Descriptor>& referrers)>
        save;

    // What tests replace: where steps run (sandboxes when null), and the compile pass.
    StepRunner* runner = nullptr;
    std::function<std::vector<CompiledWheel>(Context&, const CompileRequest&)> compile =
        compileRelease;
};

struct BuildResult {
    std::string release, image, rootImage, compilerImage;
    oci::Digest digest; // the runner's manifest (the index's, for several platforms)
    // Several platforms: each one's runner, in the order of the index.
    struct Part {
        std::string platform, rootImage, compilerImage;
        oci::Digest digest;
    };
    std::vector<Part> platforms;
    std::vector<std::string> outputs;
    std::string pushed;           // the reference pushed, or empty
    std::vector<std::string> ran; // the steps that ran (not taken from a cache), in order
    // The result file's content (docs: "Result file").
    nlohmann::json json() const;
};

// Builds the runner image of the request's release; throws ConfigError (every mistake of the
// configuration and the command line at once) or UsageError before any work, Error after.
BuildResult build(BuildRequest request);

} // namespace grocker::build
