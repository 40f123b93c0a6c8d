// grocker build: the command line of the pipeline (src/build/pipeline.hh), which does the work.

#include "build/pipeline.hh"
#include "commands.hh"
#include "grocker/display.hh"
#include "grocker/error.hh"
#include "grocker/sandbox/emulation.hh"

#include <cctype>
#include <filesystem>
#include <iostream>

namespace grocker {

namespace fs = std::filesystem;
using namespace grocker::build;

namespace {

struct BuildOptions {
    std::string release;
    std::vector<std::string> configFiles;
    ConfigOverrides overrides;
    std::string pipConf, indexUrl, indexUrlFile, findLinks, exportWheels, cacheRepo, cacheMode;
    std::string compileNetwork = "host";
    std::vector<std::string> outputs;
    std::string resultFile;
    bool buildDependencies = true;
    bool push = true;
    bool refresh = false;
    bool rebaseOnly = false;
    bool noIndex = false;
    bool sbom = true;
    bool provenance = true;
    std::string signKey;
    std::string compression = "gzip";
    std::string baseImage;
};

// grocker-entrypoint: $GROCKER_ENTRYPOINT, else beside grocker (in the build tree or installed);
// for another platform, grocker-entrypoint-ARCH (Debian's name: arm64), cross-compiled.
fs::path findEntrypoint(const oci::Platform& platform)
{
    // This machine's: grocker-entrypoint and GROCKER_ENTRYPOINT; another platform's:
    // grocker-entrypoint-arm64 and GROCKER_ENTRYPOINT_ARM64 (its Debian architecture).
    std::string file = "grocker-entrypoint", variable = "GROCKER_ENTRYPOINT", found;
    bool native = platform.str() == oci::Platform::host().str();
    if (!native) {
        auto arch = sandbox::debianArch(platform.architecture, platform.variant);
        file += "-" + arch;
        variable += "_";
        for (char ch : arch)
            variable += char(std::toupper(static_cast<unsigned char>(ch)));
        found = " (the runner's PID 1 for " + platform.str() + ")";
    }
    if (const char* e = std::getenv(variable.c_str()); e && *e) return e;
    auto self = fs::read_symlink("/proc/self/exe").parent_path();
    for (auto& candidate : {self / "entrypoint" / file, self / file,
                            self.parent_path().parent_path() / "libexec" / "grocker" / file})
        if (fs::exists(candidate)) return candidate;
    throw Error(file, found, " was not found beside '", self.string(), "': ",
                native ? "build it (ninja -C build)"
                       : "grocker is built with it when the cross compiler is installed "
                         "(scripts/install-deps installs g++-aarch64-linux-gnu for arm64)",
                ", or set ", variable);
}

int runBuild(const GlobalOptions& g, const BuildOptions& o)
{
    BuildRequest r;
    r.release = o.release;
    r.configFiles.assign(o.configFiles.begin(), o.configFiles.end());
    r.overrides = o.overrides;
    r.pipConf = o.pipConf;
    r.indexUrl = o.indexUrl;
    r.indexUrlFile = o.indexUrlFile;
    r.findLinks = o.findLinks;
    r.exportWheels = o.exportWheels;
    r.cacheRepo = o.cacheRepo;
    r.cacheMode = o.cacheMode;
    r.compileNetwork = o.compileNetwork;
    r.outputs = o.outputs;
    r.resultFile = o.resultFile;
    r.buildDependencies = o.buildDependencies;
    r.push = o.push;
    r.refresh = o.refresh;
    r.rebaseOnly = o.rebaseOnly;
    r.noIndex = o.noIndex;
    r.sbom = o.sbom;
    r.provenance = o.provenance;
    // Read (and its password asked) before any work: a wrong one fails at once.
    if (!o.signKey.empty())
        r.signKey = std::make_shared<const oci::SigningKey>(loadSigningKey(o.signKey));
    r.compression = o.compression;
    r.baseImage = o.baseImage;
    r.storeRoot = g.root;
    r.quiet = g.quiet;
    r.registry = registryOptions(g);
    r.save = [&g](oci::Store& store, const oci::Image& image, const oci::ImageRef& dest,
                  const std::vector<oci::Descriptor>& referrers) {
        saveAnyImage(store, image, dest, g, false, referrers);
    };
    r.entrypoint = findEntrypoint;
    auto result = build::build(std::move(r));
    std::vector<std::string> lines{"image: " + result.image + " " + result.digest.str()};
    if (!result.pushed.empty()) lines.push_back("pushed: docker://" + result.pushed);
    for (auto& output : result.outputs)
        lines.push_back("written: " + output);
    lines.push_back("log: " + display().logPath().string() + " (grocker log)");
    display().summary(lines);
    display().closeLog();
    std::cout << result.digest.str() << "\n";
    return 0;
}

} // namespace

Runners registerBuildCommand(CLI::App& app, GlobalOptions& global)
{
    static BuildOptions bo;
    static std::optional<std::string> platforms;
    static std::optional<std::string> runtime, pipConstraint, entrypoint, prefix, baseName,
        imageName;
    auto* b = app.add_subcommand("build", "Build the runner image of a Python application");
    b->add_option("RELEASE", bo.release,
                  "NAME[EXTRAS]==VERSION, path/to/x.whl[EXTRAS] or path/to/project/[EXTRAS]")
        ->required();
    addProgressOption(b, global);
    b->add_option("-c,--config", bo.configFiles,
                  "Configuration file (repeatable; default ./.grocker.yml)")
        ->allow_extra_args(false);
    b->add_option("-r,--runtime", runtime, "Runtime (default bookworm/3.11)");
    b->add_option("--pip-conf", bo.pipConf, "pip configuration file for the compile step");
    b->add_option("--pip-constraint", pipConstraint, "pip constraints file");
    b->add_option("--index-url", bo.indexUrl,
                  "Python package index URL (default $GROCKER_INDEX_URL)");
    b->add_option("--index-url-file", bo.indexUrlFile,
                  "Read the index URL (credentials included) from this file's first line");
    b->add_option("--compile-network", bo.compileNetwork,
                  "host (default): the compile steps reach the index through the host's network; "
                  "none: no network (find-links only)");
    b->add_option("--find-links", bo.findLinks, "Folder of wheels and sdists");
    b->add_option("--cache-repo", bo.cacheRepo,
                  "Registry repository of the build cache (default PREFIX/grocker-cache)");
    b->add_option("--cache-mode", bo.cacheMode,
                  "readwrite: use and fill the build cache (default with a prefix); read: use "
                  "it only (untrusted jobs; the default with --no-push); off");
    b->add_option("--export-wheels", bo.exportWheels,
                  "Copy the wheels the build used (the app's and its dependencies', compiled or "
                  "downloaded) into this folder, e.g. to publish them to an internal index");
    b->add_option("-e,--entrypoint", entrypoint,
                  "Use this console script of the app as the entrypoint");
    b->add_option("--volume", bo.overrides.volumes, "Volume of the runner image (repeatable)")
        ->allow_extra_args(false);
    b->add_option("--port", bo.overrides.ports, "Exposed port (repeatable)")
        ->allow_extra_args(false);
    b->add_option("--env", bo.overrides.envs, "KEY=VALUE of the runner image (repeatable)")
        ->allow_extra_args(false);
    b->add_option("--image-prefix", prefix, "Registry prefix (e.g. registry.example.com/team)");
    b->add_option("--image-base-name", baseName, "Image name without prefix and tag");
    b->add_option("-n,--image-name", imageName, "Full image name");
    b->add_option("--result-file", bo.resultFile, "Write the result as JSON here");
    b->add_flag("--build-dependencies,!--no-build-dependencies", bo.buildDependencies,
                "Install the project's build dependencies in the compiler (default)");
    b->add_flag("--push,!--no-push", bo.push, "Push the image when a prefix is set (default)");
    b->add_option("--output", bo.outputs, "Also write the image here (repeatable)")
        ->allow_extra_args(false);
    b->add_option("--compression", bo.compression, "gzip (default) or zstd");
    b->add_flag("--sbom,!--no-sbom", bo.sbom,
                "Attach the runner's SBOMs (CycloneDX 1.5 and SPDX 2.3: its Debian packages and "
                "Python distributions, from what the build installed) to it in oci: outputs "
                "and the registry (default)");
    b->add_flag("--provenance,!--no-provenance", bo.provenance,
                "Attach the runner's provenance (an in-toto statement, SLSA v1: what was asked "
                "and what it was built from, by digest) to it where the SBOMs go (default)");
    b->add_option("--sign-key", bo.signKey,
                  "Sign the runner with this ECDSA P-256 key (cosign's key pair, password in "
                  "$COSIGN_PASSWORD, or a PEM key): a Sigstore bundle attached to it, and "
                  "cosign's .sig tag when pushed");
    b->add_flag("--no-index", bo.noIndex,
                "Take packages from --find-links only, never from an index (pip's --no-index)");
    b->add_flag("--rebase-only", bo.rebaseOnly,
                "The root changed, the app did not: make the root, then put the runner built "
                "before (NAME==VERSION, in the registry or the store) over it, nothing compiled "
                "or run (grocker rebase)");
    b->add_flag("--refresh", bo.refresh,
                "Resolve the dependencies again (new releases of unpinned ones), not reusing an "
                "earlier compile or resolution");
    b->add_option("--platform", platforms,
                  "Build for these platforms, comma-separated (linux/amd64,linux/arm64): a runner "
                  "each, under one image index; other architectures' steps run under qemu-user "
                  "(default: the configuration's platforms, else this machine's)");
    b->add_option(
        "--base-image", bo.baseImage,
        "Pull the base of a registry runtime from this reference instead (a mirror's copy)");
    return {{b, [&global] {
                 bo.overrides.runtime = runtime;
                 bo.overrides.pipConstraint = pipConstraint;
                 bo.overrides.entrypointName = entrypoint;
                 bo.overrides.imagePrefix = prefix;
                 bo.overrides.imageBaseName = baseName;
                 bo.overrides.imageName = imageName;
                 bo.overrides.platforms = platforms;
                 return runBuild(global, bo);
             }}};
}

} // namespace grocker
