#pragma once
// The state the passes of the pipeline share, and the passes, one function each (private to
// src/build/: pipeline.cc runs them in order).

#include "grocker/file.hh"
#include "pipeline.hh"
#include "remote-cache.hh"
#include "runtimes.hh"
#include "shell-script.hh"

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>

namespace grocker::build {

inline constexpr const char* venvPath = "/home/grocker/venv";

// The registry under docker_image_prefix: where root and compiler images are looked for before
// being built, and where the images are pushed.
struct Remote {
    Remote(const registry::Options& o, std::string p, bool pushes)
        : options(o), prefix(std::move(p)), push(pushes)
    {
    }
    const registry::Options& options;
    std::string prefix;
    bool push;
    std::unique_ptr<registry::Session> session;
    std::mutex made; // get() may be called from several threads

    registry::Session& get();
    oci::Reference ref(const std::string& name) const;
};

struct Pipeline {
    explicit Pipeline(BuildRequest r) : request(std::move(r)) {}

    BuildRequest request;
    // The runner's platform, and whether it is one of several under an index (buildIndex): then
    // named in the store with its platform, pushed by digest only, and no --output of its own.
    oci::Platform platform = oci::Platform::host();
    bool indexPart = false;
    // The compiler of the machine's own platform, built before this one in the same build
    // (buildIndex): its resolution may be this platform's (NativeTwin).
    std::string nativeCompiler;
    // The machine's own root, its layers in the store, for another platform whose venv it makes
    // byte for byte as that platform's Python would (a 64-bit one of the same runtime): the
    // runner's install steps run over it, natively (nativeInstall).
    std::optional<oci::Image> nativeRoot;
    registry::Options registryOptions; // the request's, pulling this platform's images
    // checkInputs
    Config config;
    const Runtime* runtime = nullptr;
    Release release{Release::Kind::Spec, {}, {}, {}, {}, {}, {}};
    std::vector<oci::ImageRef> outputs;
    oci::Compression compression = oci::Compression::Gzip;
    // openStore
    std::optional<oci::Store> store;
    std::optional<Context> ctx;
    std::optional<Remote> remote;
    Remote* registry = nullptr; // &*remote with a prefix, else null
    std::unique_ptr<RemoteCache> remoteCache;
    // base, root, compiler
    std::string baseIdentity, rootName, compilerName;
    oci::Image root, compiler;
    bool compilerMade = false;  // by this build (not found made)
    bool compilerSboms = false; // the root had none attached: the compiler has none either
    // The compiler found in the registry, its layers not pulled yet (needCompiler pulls them).
    std::optional<oci::Reference> compilerLayersIn;
    // Likewise the root, for a build that pushes with the build cache and writes no --output:
    // its layers are pulled only when a box must run over it (needRoot), and mounted, not
    // uploaded, when the runner is pushed.
    std::optional<oci::Reference> rootLayersIn;
    // compile
    IndexSettings index; // where the compile looked for packages
    std::vector<CompiledWheel> wheels;
    const CompiledWheel* app = nullptr;
    // runner
    std::filesystem::path
        wheelsDir; // this build's wheels, by file name, mounted in the install steps
    std::filesystem::path installer; // install-wheels.py, mounted beside them
    std::optional<AutoDelete> removeWheels, removeInstaller;
    oci::Image runner, image;
    // sbom: the runner's attachments in the store (referrers), written with it.
    std::vector<oci::Descriptor> attachments;
    BuildResult result;
    // draftSbom: the SBOM's documents, made on a thread of their own while the runner's layers
    // are (last: it is waited for before the rest goes).
    struct SbomDraft {
        std::string cycloneDx, spdx;
        size_t debs = 0, inDebs = 0, python = 0;
        std::string warning; // the root's package list could not be read
        std::string without; // why there is no SBOM (say so), when there is none
    };
    std::future<SbomDraft> sbomDraft;
    // findRunner (--rebase-only): the runner built before, where it was found, and its
    // registry reference when its layers stayed there.
    oci::Image before;
    std::string beforeWhere;
    std::optional<oci::Reference> beforeIn;

    void checkInputs();
    // The passes after checkInputs, for one platform.
    BuildResult run();
    void openStore();
    void keepLog();
    void openRemoteCache();
    void base();
    void makeRoot();
    void findRunner();
    void rebaseOnly();
    void makeCompiler();
    void compile();
    void exportWheels();
    void draftSbom();
    void runnerDependencies();
    void appLayer();
    void cacheSummary();
    void entrypoint();
    void sbom();
    void provenance();
    void sign();
    void writeOutputs();
    void push();
    void writeResultFile();

    std::string runtimeName() const { return std::string(runtime->name); }
    // The runtime in the names of roots and compilers: "bookworm/3.11", the platform added when
    // not linux/amd64 ("bookworm/3.11/linux/arm64"), so that each platform's are a repository of
    // their own, whose newest grocker purge keeps.
    std::string imageRuntime() const
    {
        auto p = platformKey(platform);
        return p.empty() ? runtimeName() : runtimeName() + "/" + p;
    }
    // The runner's name: -n, else [PREFIX/]BASE-NAME:VERSION.
    std::string runnerName() const;
    // Its name in the store (grocker-app/NAME): runnerName(), the platform's added for a part
    // of an index or another machine's platform.
    std::string storeName() const;
    // Whether the runner goes anywhere that keeps attachments (SBOMs, provenance).
    bool attaches() const;
    // The image named `name`: from the store, else pulled from the prefix's registry, else made.
    // With `layersIn`, an image of the registry is read without its layers, and `layersIn` says
    // where they are (the image is named in the store once they are pulled).
    oci::Image obtain(const std::string& name, const std::function<oci::Image()>& make,
                      std::optional<oci::Reference>* layersIn = nullptr);
    // The compiler's layers in the store, pulled when they are still in the registry only.
    void needCompiler();
    // The root's likewise.
    void needRoot();
    // The root's Python slice (root-slice.hh): its name, the image from the store or the
    // registry (none when neither has it), or made from the root's layers (none when the root's
    // Python is not Debian's).
    std::string sliceName() const;
    bool sliceable() const;
    std::optional<oci::Image> findSlice();
    // For a step over the runner so far (`on`: the root and the layers made over it), the
    // same layers over nativeRoot instead, when set: what the step then runs natively.
    void overNative(Step& step, const oci::Image& on);
    std::optional<oci::Image> makeSlice();
    // Pushes the slice next to the root when the registry lacks it, for fresh runners.
    void shareSlice();
    // Attaches the root's package list to it in the registry, for those runners' SBOMs.
    void shareRootPackages();
    void shareCompilerSboms();
    // Pushes the runner's attachments to `named`'s repository.
    void attachAll(const oci::Reference& named);
    Step installStep(const std::string& name, const std::vector<const CompiledWheel*>& ws,
                     bool makeVenv) const;
};

// The build of several platforms: a runner each, then an image index over them (platforms.cc).
BuildResult buildIndex(Pipeline& top);

// Writes into the build's log (a detail line) how long a part of a pass took, when it ends:
// what the supply-chain passes cost a version bump, readable after the fact.
class PassTime {
  public:
    explicit PassTime(std::string what);
    ~PassTime();
    PassTime(const PassTime&) = delete;
    PassTime& operator=(const PassTime&) = delete;

  private:
    std::string what_;
    std::chrono::steady_clock::time_point start_;
};

// Removes what apt, dpkg and useradd leave that depends on when and where they ran.
ShellScript aptCleanup();

} // namespace grocker::build
