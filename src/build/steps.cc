#include "steps.hh"

#include "grocker/display.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/layer-writer.hh"
#include "grocker/sandbox/rootfs.hh"
#include "remote-cache.hh"

#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <sys/wait.h>
#include <unistd.h>

namespace grocker::build {

namespace fs = std::filesystem;
using namespace grocker::oci;
using namespace grocker::sandbox;
using nlohmann::json;

std::string cacheKey(const std::vector<std::string>& parts)
{
    Sha256 h;
    for (auto& p : parts) {
        auto len = std::to_string(p.size()) + ":";
        h.update(len);
        h.update(p);
    }
    return h.finish().hex();
}

void say(const Context& ctx, const std::string& text)
{
    if (!ctx.quiet) display().message(text);
}

std::string shownName(const Context& ctx, const std::string& name)
{
    return ctx.showPlatform ? name + " (" + ctx.platform.str() + ")" : name;
}

void skipped(const Context& ctx, const std::string& name, const std::string& how)
{
    if (!ctx.quiet) display().skippedStep(shownName(ctx, name), how);
}

namespace {

// The host's apt sources: what mmdebstrap uses, so part of what defines the base.
std::string aptSources()
{
    std::string all;
    std::error_code ec;
    if (fs::exists("/etc/apt/sources.list")) all += readFile("/etc/apt/sources.list");
    std::vector<fs::path> parts;
    for (auto& e : fs::directory_iterator("/etc/apt/sources.list.d", ec))
        parts.push_back(e.path());
    std::sort(parts.begin(), parts.end());
    for (auto& p : parts)
        all += readFile(p);
    return all;
}

// Runs a program of the host as the step `shown` of the display, which shows its output; with an
// emulator, in namespaces of its own with `map` (sandbox::startInNamespaces): another
// architecture's mmdebstrap.
int runProgram(const std::vector<std::string>& argv, const std::vector<std::string>& extraEnv,
               int shown, const Emulator* emulator = nullptr, const IdMap* map = nullptr)
{
    auto output = display().outputPipe(shown);
    pid_t pid;
    if (emulator) {
        pid = startInNamespaces(*map, *emulator, argv, extraEnv, output.get());
    } else {
        pid = ::fork();
        if (pid < 0) throw SysError("unable to start ", argv[0]);
        if (pid == 0) execHostProgram(argv, extraEnv, output.get());
    }
    output.reset();
    display().waitForExit(pid);
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

fs::path stepCachePath(const Context& ctx, const std::string& key)
{
    return ctx.store.root() / "cache" / "steps" / (key + ".json");
}

} // namespace

FileLock keyLock(const Context& ctx, const std::string& key)
{
    auto dir = ctx.store.root() / "locks";
    fs::create_directories(dir);
    return FileLock(dir / (key + ".lock"), true);
}

static StepRunner& runnerOf(Context& ctx)
{
    return ctx.runner ? *ctx.runner : sandboxRunner();
}

std::string platformKey(const Platform& p)
{
    auto s = p.str();
    return s == "linux/amd64" ? "" : s;
}

Image debianBase(Context& ctx, const std::string& suite)
{
    std::vector<std::string> parts{"mmdebstrap", baseRecipe, suite, std::to_string(ctx.epoch),
                                   aptSources()};
    auto platform = platformKey(ctx.platform);
    if (!platform.empty()) parts.push_back(platform);
    std::string key = cacheKey(parts);
    std::string ref =
        "grocker-base/debian-" + suite +
        (platform.empty() ? ""
                          : "-" + debianArch(ctx.platform.architecture, ctx.platform.variant)) +
        ":" + key.substr(0, 16);
    if (auto d = ctx.store.getRef(ref)) return imageFromStore(ctx.store, *d);
    auto making = keyLock(ctx, key);
    if (auto d = ctx.store.getRef(ref)) return imageFromStore(ctx.store, *d); // made meanwhile
    ctx.ran.push_back("base");
    Image img = runnerOf(ctx).makeDebianBase(ctx, suite);
    ctx.store.setRef(ref, img.manifestDescriptor);
    return img;
}

namespace {

Image mmdebstrapBase(Context& ctx, const std::string& suite)
{
    bool root = ctx.map.privileged;
    // Another architecture's base: mmdebstrap --mode=root --arch, root in namespaces of our own
    // with the build's map (as root and rootless), where qemu-user runs the packages' scripts.
    // The tree's owners are then the image's, as the sandbox's steps see them.
    auto emulator = emulatorFor(ctx.platform.architecture, ctx.platform.variant);
    // mmdebstrap --mode=unshare maps its root to the first subordinate id, which our own map
    // shows as uid 1 (0 is the caller): the tree is read in our namespace, where the store is
    // writable, and each owner recorded one lower.
    if (!root && (ctx.map.uids.size() < 2 || ctx.map.gids.size() < 2))
        throw Error("unable to make the Debian base as an unprivileged user without a subordinate "
                    "id range: ",
                    ctx.map.warning);
    // mmdebstrap --mode=root makes the tree with the image's owners as host ids: read as they are.
    static const IdMap hostIds = IdMap::identity();
    const IdMap& mmMap = root && !emulator ? hostIds : ctx.map;
    auto dir = ctx.store.tmpDir() / tempName();
    auto tmp = ctx.store.tmpDir() / tempName(); // mmdebstrap's TMPDIR, under emulation
    struct Cleanup {
        const IdMap& map;
        fs::path dir, tmp;
        ~Cleanup()
        {
            try {
                runInUserNamespace(map, [&] {
                    std::error_code ec;
                    fs::remove_all(dir, ec);
                    fs::remove_all(tmp, ec);
                });
            } catch (...) {
            }
        }
    } cleanup{mmMap, dir, tmp};
    std::vector<std::string> argv{
        "mmdebstrap", "--quiet", "--variant=minbase",
        root || emulator ? "--mode=root" : "--mode=unshare",
        // Documentation is not needed to run an application; it is most of minbase's files.
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-exclude=/usr/share/info/*", suite, dir.string()};
    std::string arch;
    if (emulator) {
        arch = debianArch(ctx.platform.architecture, ctx.platform.variant);
        argv.insert(argv.begin() + 1, "--arch=" + arch);
    }
    ShownStep shown(display().beginStep(
        shownName(ctx, "base: Debian " + suite + (emulator && !ctx.showPlatform ? " " + arch : "")),
        emulator ? "with mmdebstrap from the host's apt sources, under " + emulator->name
                 : "with mmdebstrap from the host's apt sources"));
    std::vector<std::string> env{"SOURCE_DATE_EPOCH=" + std::to_string(ctx.epoch)};
    if (emulator) {
        // Made here and given to the namespace's root, which has no say over the store's folders
        // nor, as root, over the caller's TMPDIR (where mmdebstrap makes its gpg home).
        auto [uid, gid] = ctx.map.rootOutside();
        for (auto& d : {dir, tmp}) {
            fs::create_directory(d);
            if (::chown(d.c_str(), uid, gid) < 0)
                throw SysError("unable to give '", d.string(), "' to the build's root");
        }
        env.push_back("TMPDIR=" + tmp.string());
    }
    int status = runProgram(argv, env, shown.id(), emulator ? &*emulator : nullptr, &ctx.map);
    if (status) shown.end(Display::Outcome::Failed, "exited with status " + std::to_string(status));
    if (status == 127)
        throw Error("mmdebstrap is not installed: run scripts/install-deps (or apt-get install "
                    "mmdebstrap)");
    if (status != 0)
        throw Error("mmdebstrap failed (status ", status, ") making the Debian ", suite,
                    " base from the host's apt sources: see its last lines above");
    // /dev holds device nodes when mmdebstrap runs as root and none in unshare mode: an empty
    // /dev, as official images have (runtimes mount their own), makes both give the same bytes.
    runInUserNamespace(mmMap, [&] {
        std::error_code ec;
        for (auto& e : fs::directory_iterator(dir / "dev", ec))
            fs::remove_all(e.path(), ec);
        if (ec) throw Error("unable to empty '", (dir / "dev").string(), "': ", ec.message());
    });
    LayerOptions lo;
    lo.compress.compression = ctx.compression;
    lo.sourceDateEpoch = ctx.epoch;
    if (!root && !emulator)
        lo.owner = [](uid_t u, gid_t g) {
            return std::pair<uint64_t, uint64_t>(u > 0 ? u - 1 : 0, g > 0 ? g - 1 : 0);
        };
    auto layer = writeLayerInside(ctx.store, dir, "/", mmMap, lo);
    Image scratch = loadImage(ctx.store, ImageRef{});
    ImageDraft draft(scratch, true, ctx.epoch);
    draft.config.json["architecture"] = ctx.platform.architecture;
    if (ctx.platform.variant.empty())
        draft.config.json.erase("variant");
    else
        draft.config.json["variant"] = ctx.platform.variant;
    draft.addLayer(layer.descriptor, layer.diffId, "mmdebstrap --variant=minbase " + suite);
    auto& c = draft.runConfig();
    c["Env"] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
    c["Cmd"] = {"/bin/bash"};
    auto image = std::move(draft).commit(ctx.store);
    shown.end(Display::Outcome::Done);
    return image;
}

SandboxSpec specFor(const Image& base, const Step& step)
{
    SandboxSpec spec;
    auto& cfg = base.config.json;
    if (cfg.contains("config") && cfg["config"].is_object() && cfg["config"].contains("Env"))
        for (auto& e : cfg["config"]["Env"])
            if (e.is_string()) spec.env.push_back(e.get<std::string>());
    for (auto& kv : step.env) {
        auto k = kv.substr(0, kv.find('=') + 1);
        std::erase_if(spec.env, [&](const std::string& e) { return e.rfind(k, 0) == 0; });
        spec.env.push_back(kv);
    }
    bool hasPath = false;
    for (auto& e : spec.env)
        hasPath |= e.rfind("PATH=", 0) == 0;
    if (!hasPath)
        spec.env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    spec.argv = step.argv;
    spec.user = step.user;
    spec.workdir = step.workdir;
    spec.hostNetwork = step.hostNetwork;
    spec.volumes = step.volumes;
    spec.stdoutToStderr = true;
    // A root of another architecture (an arm64 runner built on amd64): its programs under qemu.
    // (The image the step runs over decides: the machine's own root runs natively.)
    auto platform = (step.over ? *step.over : base).config.platform();
    if (!platform.architecture.empty())
        spec.emulator = emulatorFor(platform.architecture, platform.variant);
    return spec;
}

void placeFiles(const Step& step, const fs::path& upper)
{
    for (auto& [host, inside] : step.files) {
        auto target = upper / inside.substr(1);
        fs::create_directories(target.parent_path());
        copyFileAtomic(host, target, 0755);
    }
}

// A step in a sandbox: its run folder outlives the sandbox that runs in it.
class SandboxStep : public RunningStep {
  public:
    SandboxStep(Context& ctx, const Image& base, const Step& step, AutoCloseFD output)
        : ctx_(ctx), run_(ctx.store, ctx.map)
    {
        auto spec = specFor(base, step);
        spec.outputFd = output.get();
        spec.lowerDirs = prepareLowerDirs(ctx.store, step.over ? *step.over : base, ctx.map);
        spec.runDir = run_.path();
        // Made in the namespace: the files are the container root's, whatever the host's ids.
        if (!step.files.empty())
            runInUserNamespace(ctx.map, [&] {
                fs::create_directories(run_.path() / "upper");
                placeFiles(step, run_.path() / "upper");
            });
        box_ = std::make_unique<Sandbox>(spec, ctx.map);
    }
    int wait() override
    {
        display().waitForExit(box_->pid());
        int status = box_->wait();
        box_.reset();
        return status;
    }
    LayerResult commit(const LayerOptions& options) override
    {
        return commitUpper(ctx_.store, run_.path(), ctx_.map, options);
    }

  private:
    Context& ctx_;
    RunDir run_;
    std::unique_ptr<Sandbox> box_;
};

class SandboxRunner : public StepRunner {
  public:
    std::unique_ptr<RunningStep> start(Context& ctx, const Image& base, const Step& step,
                                       AutoCloseFD output) override
    {
        return std::make_unique<SandboxStep>(ctx, base, step, std::move(output));
    }
    Image makeDebianBase(Context& ctx, const std::string& suite) override
    {
        return mmdebstrapBase(ctx, suite);
    }
};

// Starts a step through the context's runner, shown by the display (as `shown`).
std::unique_ptr<RunningStep> startStep(Context& ctx, const Image& base, const Step& step,
                                       std::optional<ShownStep>& shown)
{
    shown.emplace(
        display().beginStep(shownName(ctx, step.name), step.over ? "over " + step.overName : ""));
    auto running = runnerOf(ctx).start(ctx, base, step, display().outputPipe(shown->id()));
    ctx.ran.push_back(step.name);
    return running;
}

[[noreturn]] void stepFailed(ShownStep& shown, const std::string& name,
                             const std::vector<std::string>& argv, int status)
{
    shown.end(Display::Outcome::Failed, "exited with status " + std::to_string(status));
    throw Error("step '", name, "' failed: '", join(argv), "' exited with status ", status,
                "; see its last lines above, and the build's whole log (grocker log)");
}

} // namespace

StepRunner& sandboxRunner()
{
    static SandboxRunner runner;
    return runner;
}

Image runStep(Context& ctx, const Image& base, const Step& step)
{
    std::vector<std::string> parts{"step",
                                   GROCKER_VERSION,
                                   layerFormat,
                                   base.manifestDescriptor.digest.str(),
                                   step.user,
                                   step.workdir,
                                   step.hostNetwork ? "host" : "none",
                                   step.keyExtra,
                                   compressionName(ctx.compression).data()};
    for (auto& a : step.argv)
        parts.push_back(a);
    for (auto& e : step.env)
        parts.push_back(e);
    for (auto& [host, inside] : step.files) {
        parts.push_back(inside);
        parts.push_back(sha256(readFile(host)).str());
    }
    auto key = cacheKey(parts);
    auto cachePath = stepCachePath(ctx, key);
    // Another build running this same step: wait for it and take its layer.
    std::optional<FileLock> running;
    if (step.cached) running.emplace(keyLock(ctx, key));
    LayerResult layer;
    bool hit = false;
    auto keep = [&] {
        fs::create_directories(cachePath.parent_path());
        writeFileAtomic(cachePath, canonical(json{{"layer", toJson(layer.descriptor)},
                                                  {"diffId", layer.diffId.str()},
                                                  {"step", step.name}}));
    };
    if (step.cached && fs::exists(cachePath)) {
        try {
            auto j = json::parse(readFile(cachePath));
            layer.descriptor =
                parseDescriptor(j.at("layer"), "cached layer of step '" + step.name + "'");
            layer.diffId = Digest::parse(j.at("diffId").get<std::string>());
            hit = ctx.store.hasBlob(layer.descriptor.digest);
        } catch (std::exception&) {
            hit = false; // a damaged cache entry is a miss
        }
    }
    if (hit) {
        skipped(ctx, step.name, "cached");
        // A store that was warm before the registry's cache was: filled from it.
        if (step.shared && ctx.remote && ctx.remote->writes() && !ctx.remote->has("step", key))
            ctx.remote->putStep(key, layer, step.name);
    } else if (auto shared = step.cached && step.shared && ctx.remote
                                 ? ctx.remote->stepLayer(key, ctx.compression)
                                 : std::nullopt) {
        layer = *shared;
        skipped(ctx, step.name, "from the build cache");
        keep();
    } else {
        LayerOptions lo;
        lo.compress.compression = ctx.compression;
        lo.sourceDateEpoch = ctx.epoch;
        std::unique_ptr<RunningStep> started;
        std::optional<ShownStep> shown;
        if (step.over) {
            std::string failure;
            try {
                started = startStep(ctx, base, step, shown);
                if (int status = started->wait(); status != 0)
                    failure = "exited with status " + std::to_string(status);
            } catch (Error& e) {
                failure = e.what();
            }
            if (!failure.empty()) {
                if (shown) shown->end(Display::Outcome::Retried, failure);
                say(ctx, step.name + ": over " + step.overName + ", " + failure +
                             "; again over the whole image");
                started.reset();
                shown.reset();
            }
        }
        if (!started) {
            if (step.prepare) step.prepare();
            Step whole = step;
            whole.over.reset();
            started = startStep(ctx, base, whole, shown);
            if (int status = started->wait(); status != 0)
                stepFailed(*shown, step.name, step.argv, status);
        }
        // The step's time includes its layer's writing.
        layer = started->commit(lo);
        shown->end(Display::Outcome::Done);
        if (step.cached) keep();
        if (step.cached && step.shared && ctx.remote) ctx.remote->putStep(key, layer, step.name);
    }
    ImageDraft draft(base, false, ctx.epoch);
    draft.manifest.annotations.clear();
    draft.addLayer(layer.descriptor, layer.diffId, step.name);
    return std::move(draft).commit(ctx.store);
}

StartedStep::StartedStep(Context& ctx, const Image& base, const Step& step)
    : name_(step.name), argv_(step.argv), running_(startStep(ctx, base, step, shown_))
{
}

StartedStep::~StartedStep() = default;

ShownStep::~ShownStep()
{
    if (id_ >= 0) display().endStep(id_, Display::Outcome::Aborted);
}

void ShownStep::end(Display::Outcome outcome, const std::string& why)
{
    if (id_ >= 0) display().endStep(std::exchange(id_, -1), outcome, why);
}

void StartedStep::finish()
{
    int status = running_->wait();
    running_.reset();
    if (status != 0) stepFailed(*shown_, name_, argv_, status);
    shown_->end(Display::Outcome::Done);
}

void runOnly(Context& ctx, const Image& base, const Step& step)
{
    StartedStep(ctx, base, step).finish();
}

} // namespace grocker::build
