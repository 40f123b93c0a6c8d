// The driver of `grocker build` and its first passes: the store, the base, the root and
// compiler images, the compile. Images and layers are named after everything that defines
// them, so each pass whose inputs did not change takes its result from the store (or from the
// registry under the prefix) and runs nothing.

#include "build-log.hh"
#include "caches.hh"
#include "embedded-scripts.hh"
#include "grocker/display.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/layer-writer.hh"
#include "grocker/oci/reference.hh"
#include "grocker/registry/http.hh"
#include "passes.hh"

#include <algorithm>
#include <iostream>
#include <map>
#include <sys/stat.h>

namespace grocker::build {

namespace fs = std::filesystem;
using namespace grocker::oci;

BuildResult build(BuildRequest request)
{
    Pipeline p(std::move(request));
    p.checkInputs(); // every mistake of the configuration and command line at once, before any work
    auto& platforms = p.config.platforms;
    if (platforms.size() > 1) return buildIndex(p); // a runner each, under one index
    if (platforms.size() == 1) p.platform = Platform::parse(platforms[0]);
    return p.run();
}

BuildResult Pipeline::run()
{
    auto& p = *this;
    p.openStore();                 // the store, the caller's id map, the registry under the prefix
    if (!p.indexPart) p.keepLog(); // the build's whole output, in the store (grocker log)
    p.base(); // what the root is made over: mmdebstrap's Debian, or the runtime's image
    if (p.request.rebaseOnly)
        p.findRunner(); // --rebase-only: the runner built before, found before any work
    p.makeRoot();       // base + repositories + run dependencies + user grocker
    if (p.request.rebaseOnly) {
        p.rebaseOnly();      // the runner built before, over this root: nothing compiled or run
        p.sign();            // --sign-key: a Sigstore bundle attached to it
        p.writeOutputs();    // named in the store, written to every --output
        p.push();            // the root first, then the runner
        p.writeResultFile(); // --result-file
        return std::move(p.result);
    }
    p.makeCompiler();       // root + build dependencies + the compile script
    p.compile();            // the wheels, each package built in a box of its own (compile.hh)
    p.exportWheels();       // --export-wheels: copies of them in a host folder
    p.runnerDependencies(); // root + a venv with the dependencies: a layer a new version keeps
    p.appLayer();           // the app's wheel: the layer a new version changes
    p.draftSbom();          // the SBOM's documents, on a thread beside the next passes (none forks)
    p.cacheSummary();       // what the registry's build cache gave and took
    p.entrypoint();         // grocker-entrypoint, services.json and the runner's config
    p.sbom();               // what the runner holds (CycloneDX, SPDX), attached to it
    p.provenance();         // how it was made (in-toto, SLSA v1), attached to it
    p.sign();               // --sign-key: a Sigstore bundle attached to it
    p.writeOutputs();       // named in the store, written to every --output
    p.push();               // root and compiler first, so that other builds find them
    p.writeResultFile();    // --result-file
    return std::move(p.result);
}

void Pipeline::cacheSummary()
{
    auto* c = remoteCache.get();
    if (!c || !(c->hits() || c->resolutionHits() || c->stepHits() || c->written())) return;
    say(*ctx, "build cache: " + std::to_string(c->hits()) + " wheels, " +
                  std::to_string(c->resolutionHits()) + " resolutions and " +
                  std::to_string(c->stepHits()) + " layers from " + c->repository() + ", " +
                  std::to_string(c->written()) + " entries written to it");
}

registry::Session& Remote::get()
{
    std::lock_guard g(made);
    if (!session) session = std::make_unique<registry::Session>(options);
    return *session;
}

Reference Remote::ref(const std::string& name) const
{
    return Reference::parse(prefix + "/" + name);
}

void Pipeline::openStore()
{
    store.emplace(request.storeRoot.empty() ? Store::defaultRoot() : request.storeRoot);
    int64_t epoch = request.epoch ? *request.epoch : sourceDateEpochFromEnv();
    ctx.emplace(Context{*store,
                        sandbox::IdMap::forCaller(),
                        request.quiet,
                        epoch,
                        compression,
                        {},
                        request.runner});
    if (!ctx->map.warning.empty()) display().warning(ctx->map.warning);
    ctx->platform = platform;
    ctx->showPlatform = indexPart;
    registryOptions = request.registry;
    registryOptions.platform = platform;
    remote.emplace(registryOptions, config.dockerImagePrefix, request.push);
    registry = config.dockerImagePrefix.empty() ? nullptr : &*remote;
    result.release = release.text;
    openRemoteCache();
}

// The build cache in a registry, when there is one to use (remote-cache.hh).
void Pipeline::keepLog()
{
    display().openLog(newBuildLog(store->root(), release.text), logLimit);
    display().detail(concat("grocker ", GROCKER_VERSION, ": build of ", release.text, " (store ",
                            store->root().string(), ")"));
}

void Pipeline::openRemoteCache()
{
    auto& r = request;
    std::string repo = r.cacheRepo;
    if (repo.empty() && !config.dockerImagePrefix.empty())
        repo = config.dockerImagePrefix + "/grocker-cache";
    // A build that publishes nothing (--no-push) reads the shared cache but does not write it.
    CacheMode mode = !r.cacheMode.empty() ? parseCacheMode(r.cacheMode)
                     : r.push             ? CacheMode::ReadWrite
                                          : CacheMode::Read;
    if (repo.empty() || mode == CacheMode::Off) return;
    remoteCache = std::make_unique<RemoteCache>(*store, r.registry, repo, mode);
    ctx->remote = remoteCache.get();
}

Image Pipeline::obtain(const std::string& name, const std::function<Image()>& make,
                       std::optional<Reference>* layersIn)
{
    if (auto d = store->getRef(name)) {
        try {
            return imageFromStore(*store, *d);
        } catch (Error&) {
            // missing pieces: made again below
        }
    }
    if (registry) {
        auto ref = registry->ref(name);
        try {
            Image img = registry->get().pull(*store, ref, !layersIn);
            if (layersIn) {
                *layersIn = ref;
                return img;
            }
            say(*ctx, name + ": pulled from " + ref.str());
            store->setRef(name, img.manifestDescriptor);
            return img;
        } catch (registry::RegistryError& e) {
            // Not there yet (404): built here, pushed below. Anything else stops a build that
            // must push; without a push it is only a lost shortcut.
            if (e.status() != 404) {
                if (registry->push) throw;
                display().warning(concat(e.what(), "; building ", name, " here"));
            }
        } catch (registry::TransportError& e) {
            if (registry->push) throw;
            display().warning(concat(e.what(), "; building ", name, " here"));
        }
    }
    Image img = make();
    store->setRef(name, img.manifestDescriptor);
    return img;
}

void Pipeline::base()
{
    if (runtime->base == Runtime::Base::Registry) {
        auto text = request.baseImage.empty() ? std::string(runtime->image) : request.baseImage;
        baseIdentity =
            Reference::parse(text.starts_with("docker://") ? text.substr(9) : text).str();
    } else {
        baseIdentity = "mmdebstrap " + std::string(runtime->suite) + " " + baseRecipe;
    }
}

namespace {

// The base of a registry runtime, pulled once and named in the store.
Image pulledBase(Context& ctx, Remote& remote, const std::string& ref)
{
    auto parsed = Reference::parse(ref);
    std::string name = "grocker-base/" + parsed.str();
    if (!platformKey(ctx.platform).empty())
        // One name a platform: "grocker-base/linux-arm64/docker.io/library/python:3.12-slim".
        name = "grocker-base/" + ctx.platform.slug() + "/" + parsed.str();
    if (auto d = ctx.store.getRef(name)) {
        try {
            return imageFromStore(ctx.store, *d);
        } catch (Error&) {
        }
    }
    say(ctx, "base: pulling " + parsed.str());
    ctx.ran.push_back("base");
    Image img = remote.get().pull(ctx.store, parsed);
    ctx.store.setRef(name, img.manifestDescriptor);
    return img;
}

// "grocker-RUNTIME-ROLE:VERSION-KEY": the name of a root or compiler image.
std::string imageName(const std::string& runtime, const std::string& role,
                      const std::vector<std::string>& key)
{
    std::string slug = runtime;
    std::replace(slug.begin(), slug.end(), '/', '-');
    return "grocker-" + slug + "-" + role + ":" + GROCKER_VERSION + "-" +
           cacheKey(key).substr(0, 12);
}

// The apt repositories of the configuration, each a list file (with its key, when it has one).
ShellScript repositorySetup(const Config& config)
{
    ShellScript s;
    for (auto& [name, repo] : config.repositories) {
        std::string line = repo.uri;
        if (!repo.key.empty()) {
            std::string keyFile = "/etc/apt/keyrings/grocker-" + name + ".asc";
            s.run({"mkdir", "-p", "/etc/apt/keyrings"})
                .runTo({"printf", "%s\\n", data(repo.key)}, keyFile);
            // "deb URI ..." → "deb [signed-by=KEY] URI ..."
            auto sp = line.find(' ');
            if (sp != std::string::npos)
                line = line.substr(0, sp) + " [signed-by=" + keyFile + "]" + line.substr(sp);
        }
        s.runTo({"printf", "%s\\n", data(line)},
                "/etc/apt/sources.list.d/grocker-" + name + ".list");
    }
    return s;
}

// apt-get update and install of `packages`, quietly.
ShellScript aptInstall(const std::vector<std::string>& packages)
{
    std::vector<Word> words{"apt-get", "install", "-y", "-qq", "--no-install-recommends"};
    for (auto& w : ShellScript::data(packages))
        words.push_back(w);
    return std::move(ShellScript().run({"apt-get", "update", "-qq"}).runTo(words, "/dev/null"));
}

template <typename T> std::vector<std::string> strings(std::span<const T> v)
{
    return {v.begin(), v.end()};
}

} // namespace

ShellScript aptCleanup()
{
    return std::move(ShellScript().run(
        {"rm", "-rf", glob("/var/lib/apt/lists/*"), glob("/var/cache/apt/*.bin"),
         glob("/var/cache/apt/archives/*.deb"), glob("/var/log/apt/*"), "/var/log/dpkg.log",
         "/var/log/alternatives.log", glob("/var/cache/debconf/*-old"), glob("/var/lib/dpkg/*-old"),
         glob("/etc/*-"), "/var/cache/ldconfig/aux-cache"}));
}

void Pipeline::makeRoot()
{
    std::vector<std::string> runDeps = strings(runtime->runDependencies);
    for (auto& d : config.dependencies.run)
        runDeps.push_back(d);
    Step step;
    step.name = "root: " + runtimeName() + " run dependencies and user grocker";
    step.hostNetwork = true;
    // The day of each password's last change, which useradd and adduser (the system users of
    // packages' scripts: msmtp's, say) write into /etc/shadow, is today's: emptied for every
    // account (an empty field turns password ageing off; 0 would mean "change it now"), so a
    // root made on another day is the same. SOURCE_DATE_EPOCH for whatever else writes a date.
    step.env = {"DEBIAN_FRONTEND=noninteractive",
                "SOURCE_DATE_EPOCH=" + std::to_string(ctx->epoch)};
    step.argv = repositorySetup(config)
                    .then(aptInstall(runDeps))
                    .run({"useradd", "--create-home", "--uid", "1000", "--user-group", "--shell",
                          "/bin/sh", "grocker"})
                    .run({"sed", "-i", "-E", "s/^([^:]*:[^:]*:)[0-9]*:/\\1:/", "/etc/shadow"})
                    .then(aptCleanup())
                    .argv();
    std::vector<std::string> key{"root",
                                 GROCKER_VERSION,
                                 oci::layerFormat,
                                 "base-labels",
                                 runtimeName(),
                                 baseIdentity,
                                 std::to_string(ctx->epoch),
                                 compressionName(compression).data(),
                                 joinQuoted(step.argv),
                                 joinQuoted(step.env)};
    if (auto p = platformKey(ctx->platform); !p.empty()) key.push_back(p);
    rootName = imageName(imageRuntime(), "root", key);
    // A build that pushes, with the build cache, and writes no --output may need no box over the
    // root: a fresh runner's new release takes its wheels and dependencies' layer from the cache
    // and installs the app over the root's Python slice.
    bool lazy = registry && request.push && remoteCache && outputs.empty();
    root = obtain(
        rootName,
        [&] {
            Image base = runtime->base == Runtime::Base::Registry
                             ? pulledBase(*ctx, *remote, baseIdentity)
                             : debianBase(*ctx, std::string(runtime->suite));
            ImageDraft d(runStep(*ctx, base, step), false, ctx->epoch);
            auto& c = d.runConfig();
            std::vector<std::string> env = c.value("Env", std::vector<std::string>{});
            for (auto kv : {"LANG=C.UTF-8", "LC_ALL=C.UTF-8"})
                env.push_back(kv);
            env.push_back(std::string("GROCKER_VERSION=") + GROCKER_VERSION);
            env.push_back("GROCKER_RUNTIME=" + runtimeName());
            c["Env"] = env;
            c["Labels"]["grocker.version"] = GROCKER_VERSION;
            c["Labels"]["grocker.image.role"] = "root";
            c["Labels"]["grocker.runtime"] = runtimeName();
            // What it was made over, for the runners' provenance (a fresh runner has the root's
            // config, not its base).
            c["Labels"]["grocker.base"] = baseIdentity;
            c["Labels"]["grocker.base.digest"] = base.manifestDescriptor.digest.str();
            return std::move(d).commit(*store);
        },
        lazy ? &rootLayersIn : nullptr);
}

void Pipeline::needRoot()
{
    if (!rootLayersIn) return;
    registry->get().fetchLayers(*store, *rootLayersIn, root.manifest.layers);
    store->setRef(rootName, root.manifestDescriptor);
    say(*ctx, rootName + ": pulled from " + rootLayersIn->str());
    rootLayersIn.reset();
}

void Pipeline::makeCompiler()
{
    std::vector<std::string> buildDeps = strings(runtime->buildDependencies);
    // Build backends' own wheels (setuptools, wheel, pip) for pip's isolated builds, with no index.
    for (auto w : {"python3-setuptools-whl", "python3-wheel-whl", "python3-pip-whl"})
        buildDeps.push_back(w);
    if (request.buildDependencies)
        for (auto& d : config.dependencies.build)
            buildDeps.push_back(d);
    auto scriptFile = store->tmpDir() / tempName();
    writeFileAtomic(scriptFile, compileScript, 0755);
    AutoDelete removeScript(scriptFile);
    Step step;
    step.name = "compiler: " + runtimeName() + " build dependencies";
    step.hostNetwork = true;
    step.env = {"DEBIAN_FRONTEND=noninteractive",
                "SOURCE_DATE_EPOCH=" + std::to_string(ctx->epoch)};
    step.files = {{scriptFile, "/usr/local/bin/grocker-compile"}};
    step.argv = aptInstall(buildDeps).then(aptCleanup()).argv();
    compilerName = imageName(imageRuntime(), "compiler",
                             {"compiler", rootName, joinQuoted(step.argv), joinQuoted(step.env),
                              sha256(std::string_view(compileScript)).str()});
    // From the registry, only its manifest and config until a box needs it: a fresh runner's
    // build whose every wheel and resolution is in the build cache runs no box.
    compiler = obtain(
        compilerName,
        [&] {
            compilerMade = true;
            needRoot();
            ImageDraft d(runStep(*ctx, root, step), false, ctx->epoch);
            d.runConfig()["Labels"]["grocker.image.role"] = "compiler";
            return std::move(d).commit(*store);
        },
        &compilerLayersIn);
}

void Pipeline::needCompiler()
{
    if (!compilerLayersIn) return;
    needRoot(); // the compiler's first layers
    registry->get().fetchLayers(*store, *compilerLayersIn, compiler.manifest.layers);
    store->setRef(compilerName, compiler.manifestDescriptor);
    say(*ctx, compilerName + ": pulled from " + compilerLayersIn->str());
    compilerLayersIn.reset();
}

namespace {

// What Python's platform.machine() says on a platform (wheel tags end with it), or empty.
std::string pythonMachine(const Platform& p)
{
    static const std::map<std::string, std::string> machines = {
        {"linux/amd64", "x86_64"},   {"linux/arm64", "aarch64"},   {"linux/arm/v7", "armv7l"},
        {"linux/386", "i686"},       {"linux/ppc64le", "ppc64le"}, {"linux/s390x", "s390x"},
        {"linux/riscv64", "riscv64"}};
    auto it = machines.find(p.str());
    return it == machines.end() ? "" : it->second;
}

// Whether a pip.conf's options make pip's choice of a release depend on which files it has.
bool pipChoosesByFiles(const std::string& pipConf)
{
    for (auto option :
         {"no-binary", "only-binary", "prefer-binary", "no_binary", "only_binary", "prefer_binary"})
        if (pipConf.find(option) != std::string::npos) return true;
    return false;
}

} // namespace

void Pipeline::compile()
{
    auto& r = request;
    CompileRequest creq;
    creq.release = release;
    creq.compiler = &compiler;
    creq.needCompiler = [this] { needCompiler(); };
    creq.refresh = r.refresh;
    creq.remote = remoteCache.get();
    // Index settings and their secrets reach the boxes' environment only.
    Step& box = creq.boxTemplate;
    box.hostNetwork = r.compileNetwork == "host";
    // SOURCE_DATE_EPOCH: wheels built from sdists and folders get fixed zip times, so the same
    // sources give the same wheel bytes (and layers) in every build, concurrent ones included.
    box.env = {"HOME=/home/grocker", "SOURCE_DATE_EPOCH=" + std::to_string(ctx->epoch)};
    if (!config.pipConstraint.empty()) {
        box.volumes.push_back({config.pipConstraint, "/run/grocker/constraints.txt", true});
        box.env.push_back("GROCKER_PIP_CONSTRAINT=/run/grocker/constraints.txt");
    }
    if (!r.pipConf.empty()) {
        box.volumes.push_back({fs::canonical(r.pipConf), "/run/grocker/pip.conf", true});
        box.env.push_back("PIP_CONFIG_FILE=/run/grocker/pip.conf");
    }
    if (!r.indexUrl.empty()) box.env.push_back("PIP_INDEX_URL=" + r.indexUrl);
    if (r.noIndex) box.env.push_back("PIP_NO_INDEX=1");
    if (!r.findLinks.empty()) {
        box.volumes.push_back({fs::canonical(r.findLinks), "/run/grocker/find-links", true});
        box.env.push_back("PIP_FIND_LINKS=/run/grocker/find-links");
    }
    auto pipConf = r.pipConf.empty() ? "" : readFile(r.pipConf);
    creq.index = IndexSettings::from(pipConf, r.indexUrl,
                                     r.findLinks.empty() ? fs::path() : fs::canonical(r.findLinks));
    if (r.noIndex) creq.index.indexUrls.clear();
    index = creq.index;
    // The index URL without its password: a rotated token must not make every runner's cache
    // miss, and no secret is part of what a cache entry records.
    // (The find-links folder's tree digest, read once: the keys of each compiler use it.)
    auto links = r.findLinks.empty() ? "" : treeDigest(r.findLinks);
    auto indexKey = [&](const std::string& of) {
        return cacheKey({"index", of, std::to_string(ctx->epoch),
                         r.pipConf.empty() ? "" : sha256(pipConf).str(),
                         r.noIndex ? "no-index" : withoutPassword(r.indexUrl), links});
    };
    creq.indexKey = indexKey(compiler.manifestDescriptor.digest.str());
    // Pure-Python wheels: one build for every platform of the runtime.
    creq.pureKey = indexKey(runtimeName());
    if (!config.pipConstraint.empty()) {
        auto text = readFile(config.pipConstraint);
        creq.constraintsDigest = sha256(text).str();
        creq.constraintsNameMachine = namesMachine(text);
    }
    // Another platform than the machine's, after the machine's own in this build: its
    // resolution may be the machine's, with this platform's files (NativeTwin).
    auto python = std::string(runtime->name.substr(runtime->name.find('/') + 1));
    if (!nativeCompiler.empty() && !runtime->glibc.empty() && request.baseImage.empty() &&
        !pythonMachine(platform).empty() && !pipChoosesByFiles(pipConf))
        creq.native =
            NativeTwin{nativeCompiler, indexKey(nativeCompiler),
                       WheelTags(python, runtime->glibc, pythonMachine(platform)), platform.str()};
    // A runtime with no uwsgi for its Python (a registry image's own Python: Debian's plugin is
    // built for Debian's) gets the PyPI uwsgi, Python built in, in the venv for wsgi services.
    if (runtime->uwsgiPlugin.empty() &&
        std::any_of(config.services.begin(), config.services.end(),
                    [](auto& s) { return s.second.kind == Service::Kind::Wsgi; }))
        creq.moreRequirements.push_back("uwsgi");
    wheels = r.compile(*ctx, creq);
    if (compilerLayersIn)
        say(*ctx, compilerName + ": in " + compilerLayersIn->str() +
                      ", its layers not pulled: no box to run");
    for (auto& w : wheels)
        if (w.requested) app = &w;
    if (!app)
        throw Error("the compile of '", release.text, "' made no wheel of the release itself");
}

} // namespace grocker::build

namespace grocker::build {

// --export-wheels: every wheel the build used, as the compile pass left them (the app's, the
// dependencies' compiled or downloaded), copied into the folder under its own file name for a
// find-links folder or an internal index. Each copy is whole or absent: written beside its name
// and renamed; one there with the same bytes is left alone.
void Pipeline::exportWheels()
{
    if (request.exportWheels.empty()) return;
    fs::path dir = request.exportWheels;
    fs::create_directories(dir);
    for (auto& w : wheels) {
        if (w.file.empty() || w.file.find('/') != std::string::npos || w.file[0] == '.')
            throw Error("--export-wheels: '", w.file, "' is not a wheel file name");
        auto dest = dir / w.file;
        std::error_code ec;
        if (fs::is_regular_file(dest, ec) && hashPath(dest) == w.digest) continue;
        auto tmp = dir / (".tmp-" + tempName());
        try {
            fs::copy_file(w.path, tmp);
            ::chmod(tmp.c_str(), 0644);
            fs::rename(tmp, dest);
        } catch (fs::filesystem_error& e) {
            fs::remove(tmp, ec);
            throw Error("--export-wheels: unable to copy '", w.file, "' into '", dir.string(),
                        "': ", e.code().message());
        }
    }
    fsyncDir(dir);
    say(*ctx, "export: " + std::to_string(wheels.size()) + " wheels in " + dir.string());
}

} // namespace grocker::build
