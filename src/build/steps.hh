#pragma once
// The building blocks of `grocker build`: a Debian base made by mmdebstrap, and sandbox steps
// whose layers are cached in the store under a key of everything that defines them, so a
// step whose inputs did not change never runs again.

#include "grocker/display.hh"
#include "grocker/oci/compress.hh"
#include "grocker/oci/layer-writer.hh"
#include "grocker/oci/store.hh"
#include "grocker/oci/transport.hh"
#include "grocker/sandbox/id-map.hh"
#include "grocker/sandbox/rootfs.hh"
#include "grocker/sandbox/sandbox.hh"

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace grocker::build {

class StepRunner;

class RemoteCache;

struct Context {
    oci::Store& store;
    sandbox::IdMap map;
    bool quiet = false;
    int64_t epoch = 0;
    oci::Compression compression = oci::Compression::Gzip;
    // Steps that ran in this build (not taken from the cache), for reports and tests.
    std::vector<std::string> ran;
    // Where steps run: sandboxes (sandboxRunner()) unless a test gives its own.
    StepRunner* runner = nullptr;
    // The build cache in a registry, for the steps whose results are shared (Step::shared).
    RemoteCache* remote = nullptr;
    // The platform of the images built (the machine's unless --platform says otherwise): the
    // Debian base's architecture; steps over another architecture's images run under qemu-user.
    oci::Platform platform = oci::Platform::host();
    // One of several platforms' builds: the steps shown and summed up with it
    // ("compile: MarkupSafe 2.1.2 (linux/arm64)").
    bool showPlatform = false;
};

// A step's name as the display shows it: with the platform when the build has several.
std::string shownName(const Context& ctx, const std::string& name);

// The target platform's part of cache keys and image names: "" for linux/amd64 (the names it had
// before other platforms were built), else "linux/arm64": the same on every machine, so that an
// arm64 image built under emulation is named (and labelled) as one built on arm64.
std::string platformKey(const oci::Platform& p);

struct Step;

// A step started by a StepRunner.
class RunningStep {
  public:
    virtual ~RunningStep() = default;
    // Waits for the step's command; its exit status.
    virtual int wait() = 0;
    // The layer of what the step changed, once wait() returned 0.
    virtual oci::LayerResult commit(const oci::LayerOptions& options) = 0;
};

// The one place where steps' commands run (ninja's CommandRunner): the pipeline decides what
// runs and caches what ran; unit tests give a runner of their own that needs no namespace.
class StepRunner {
  public:
    virtual ~StepRunner() = default;
    // Starts `step` over the image `base`; its command's output goes to `output` (a pipe's
    // write end, which the runner may close once the command has it).
    virtual std::unique_ptr<RunningStep> start(Context& ctx, const oci::Image& base,
                                               const Step& step, AutoCloseFD output) = 0;
    // A Debian root filesystem of `suite` (mmdebstrap), as a new image in the store.
    virtual oci::Image makeDebianBase(Context& ctx, const std::string& suite) = 0;
};

// Steps in sandboxes over the store's unpacked layers; bases made by mmdebstrap.
StepRunner& sandboxRunner();

// What debianBase makes, by name: a new name whenever its recipe changes (part of the names of
// the root images made over it).
inline constexpr const char* baseRecipe = "minbase, no docs, empty /dev";

// A Debian root filesystem of `suite` made by mmdebstrap (minbase, the host's apt sources,
// rootless with --mode=unshare when not root), as an image in the store, made once.
oci::Image debianBase(Context& ctx, const std::string& suite);

struct Step {
    std::string name; // for messages: "root: run dependencies"
    std::vector<std::string> argv;
    std::vector<std::string> env; // added to the image's
    std::string user;             // "" for root
    std::string workdir = "/";
    bool hostNetwork = false;
    std::vector<sandbox::Volume> volumes;
    // Extra inputs of the cache key that argv does not show (contents of mounted files, ...).
    std::string keyExtra;
    // Files copied into the new layer's tree before the command runs: (host file, path inside).
    std::vector<std::pair<std::filesystem::path, std::string>> files;
    // Whether the result is cached (a compile step writes to a volume and is not).
    bool cached = true;
    // Whether the result is also kept in the registry's build cache (Context::remote), for fresh
    // runners: the dependencies' layer, which every new release of an app reuses.
    bool shared = false;
    // Called before the command runs (not when the result is cached): what makes the base's
    // files available (a root whose layers are still in the registry).
    std::function<void()> prepare;
    // When set, the command runs over this image's files instead of the base's, which must be
    // the same to it (the root's Python slice under the venv, for the runner's app step; the
    // machine's own root, for another platform's wheels): the key and the result are the
    // base's, its programs are this image's. When it fails there, it runs again over the base.
    std::optional<oci::Image> over;
    std::string overName; // for messages: "the root's Python slice"
};

// Runs `step` over `base` and returns base plus the step's layer; when the cache has a layer
// for this base and step, nothing runs.
oci::Image runStep(Context& ctx, const oci::Image& base, const Step& step);

// Runs `step` over `base` for its side effects on volumes only; throws when it fails.
void runOnly(Context& ctx, const oci::Image& base, const Step& step);

// A step the display shows as running until end() says how it ended; left without one (an
// exception), it ends as aborted.
class ShownStep {
  public:
    explicit ShownStep(int id) : id_(id) {}
    ~ShownStep();
    ShownStep(const ShownStep&) = delete;
    ShownStep& operator=(const ShownStep&) = delete;
    int id() const { return id_; }
    void end(Display::Outcome outcome, const std::string& why = "");

  private:
    int id_;
};

// runOnly in two halves, so that several steps run side by side: the constructor starts the
// step, finish() waits for it and throws when it failed. One destroyed unfinished is killed.
// Started and finished from one thread (sandbox::Sandbox).
class StartedStep {
  public:
    StartedStep(Context& ctx, const oci::Image& base, const Step& step);
    ~StartedStep();
    StartedStep(const StartedStep&) = delete;
    StartedStep& operator=(const StartedStep&) = delete;
    void finish();

  private:
    std::string name_;
    std::vector<std::string> argv_;
    std::optional<ShownStep> shown_; // before running_: ended once running_ is gone
    std::unique_ptr<RunningStep> running_;
};

// Tells the user what a step is doing (the display, unless quiet).
void say(const Context& ctx, const std::string& text);
// Tells the user that the step `name` did not run: `how` is "cached", "from the build cache".
void skipped(const Context& ctx, const std::string& name, const std::string& how);

// sha256 hex of the parts, each length-prefixed: the cache keys.
std::string cacheKey(const std::vector<std::string>& parts);

// An exclusive lock on work of this cache key (<store>/locks/KEY.lock): concurrent builds
// needing the same step wait for the first one and then take its result.
oci::FileLock keyLock(const Context& ctx, const std::string& key);

} // namespace grocker::build
