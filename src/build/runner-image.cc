// The passes that make the runner image and put it where it goes: the venv's layers (the
// dependencies, then the app, so a new version of the app changes only the last ones), the
// entrypoint layer and the image's config, then the outputs, the push and the result file.

#include "embedded-scripts.hh"
#include "grocker/display.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/layer-files.hh"
#include "grocker/oci/layer-writer.hh"
#include "grocker/oci/reference.hh"
#include "grocker/oci/referrers.hh"
#include "passes.hh"
#include "provenance.hh"
#include "rebase.hh"
#include "sbom.hh"
#include "signing.hh"

#include <functional>
#include <iostream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace grocker::build {

namespace fs = std::filesystem;
using namespace grocker::oci;
using nlohmann::json;

// Installed by install-wheels.py with the venv's own Python (no pip: importing it costs more
// than installing a small app), mounted for the step only, never in the layer: no index, no
// resolution (the compile's list is the list), no build dependency.
Step Pipeline::installStep(const std::string& name, const std::vector<const CompiledWheel*>& ws,
                           bool makeVenv) const
{
    Step s;
    s.name = name;
    s.volumes = {{wheelsDir, "/wheels", true}, {installer, "/run/grocker/install-wheels", true}};
    ShellScript script;
    if (makeVenv) script.run({"python3", "-m", "venv", "--without-pip", venvPath});
    std::vector<Word> install{std::string(venvPath) + "/bin/python3",
                              "/run/grocker/install-wheels"};
    std::string digests;
    for (auto* w : ws)
        if (w->requested) install.push_back(data("--requested=/wheels/" + w->file));
    for (auto* w : ws) {
        install.push_back(data("/wheels/" + w->file));
        digests += w->file + "=" + w->digest.str() + "\n";
    }
    if (!ws.empty())
        script.run(install);
    else
        script.run({"true"});
    s.argv = script.argv();
    s.keyExtra = digests + sha256(installWheelsScript).str();
    s.env = {"PYTHONDONTWRITEBYTECODE=1"};
    return s;
}

void Pipeline::runnerDependencies()
{
    // This build's wheels, and only them, by file name (links to the host's checked copies).
    wheelsDir = makeTempDir(store->tmpDir(), ".tmp-" + std::to_string(::getpid()) + "-wheels-");
    removeWheels.emplace(wheelsDir);
    for (auto& w : wheels)
        if (::link(w.path.c_str(), (wheelsDir / w.file).c_str()) < 0)
            copyFileAtomic(w.path, wheelsDir / w.file, 0444);
    installer = store->tmpDir() / tempName();
    writeFileAtomic(installer, installWheelsScript, 0644);
    removeInstaller.emplace(installer);
    ::chmod(wheelsDir.c_str(), 0755);
    std::vector<const CompiledWheel*> deps;
    for (auto& w : wheels)
        if (&w != app) deps.push_back(&w);
    auto step = installStep("runner: dependencies of " + app->name, deps, true);
    // What a fresh runner would otherwise install again: from the registry's build cache.
    step.shared = true;
    step.prepare = [this] { needRoot(); };
    overNative(step, root);
    runner = runStep(*ctx, root, step);
}

// Installing wheels runs nothing of theirs: it copies their files and compiles their modules,
// and the machine's Python of the same version writes the same bytes (.pyc files are the same on
// every architecture; the venv's layout too, between 64-bit ones). Another platform's runner
// gets its install steps run over the machine's root, without emulation, and the same layers.
void Pipeline::overNative(Step& step, const Image& on)
{
    if (!nativeRoot) return;
    ImageDraft d(*nativeRoot, false, ctx->epoch);
    auto diffIds = on.config.diffIds();
    for (size_t i = root.manifest.layers.size(); i < on.manifest.layers.size(); i++)
        d.addLayer(on.manifest.layers[i], diffIds.at(i), "venv");
    step.over = std::move(d).commit(*store);
    step.overName = "the machine's root (" + nativeRoot->config.platform().str() + "), natively";
}

void Pipeline::appLayer()
{
    auto step = installStep("runner: " + app->name + " " + app->version, {app}, false);
    step.prepare = [this] { needRoot(); };
    overNative(step, runner);
    // A root still in the registry: the app installed over its Python slice and the venv, not
    // pulled and unpacked whole.
    if (rootLayersIn && !step.over)
        if (auto slice = findSlice()) {
            ImageDraft d(*slice, false, ctx->epoch);
            auto diffIds = runner.config.diffIds();
            for (size_t i = root.manifest.layers.size(); i < runner.manifest.layers.size(); i++)
                d.addLayer(runner.manifest.layers[i], diffIds.at(i), "venv");
            step.over = std::move(d).commit(*store);
            step.overName = "the root's Python slice";
        }
    runner = runStep(*ctx, runner, step);
}

// --rebase-only: the runner of this release built before (in the registry under the prefix, else
// in the store), looked for before any work.
void Pipeline::findRunner()
{
    if (release.kind != Release::Kind::Spec || release.version.empty())
        throw UsageError("--rebase-only takes the release as NAME==VERSION ('", release.text,
                         "' is not): the runner to rebase is the one built under that name");
    auto name = runnerName();
    if (registry) {
        auto ref = Reference::parse(name);
        beforeWhere = "docker://" + ref.str();
        try {
            before = registry->get().pull(*store, ref, false);
        } catch (registry::RegistryError& e) {
            if (e.status() != 404) throw;
            throw Error("--rebase-only: no runner ", ref.str(),
                        " in the registry to rebase: build it once without --rebase-only");
        }
        // Its layers stay there (pull recorded them as seen there): the push finds them.
        beforeIn = ref;
    } else {
        auto d = store->getRef("grocker-app/" + storeName());
        if (!d)
            throw Error("--rebase-only: no runner ", name,
                        " in the store to rebase: build it once without --rebase-only");
        beforeWhere = "the store's " + name;
        before = imageFromStore(*store, *d);
    }
}

// Its own layers put over the root just made or found (rebase.hh).
void Pipeline::rebaseOnly()
{
    auto name = runnerName();
    Rebased r;
    try {
        r = rebaseRunner(*store, before, root, rootName);
    } catch (Error& e) {
        e.addContext("--rebase-only: while rebasing " + beforeWhere + " onto " + rootName);
        throw;
    }
    image = r.image;
    if (beforeIn && !outputs.empty()) {
        // An --output needs the runner's own layers here (the root's are: with an output, the
        // root is pulled whole).
        std::vector<Descriptor> missing;
        for (auto& l : image.manifest.layers)
            if (!store->hasBlob(l.digest)) missing.push_back(l);
        registry->get().fetchLayers(*store, *beforeIn, missing);
    }
    if (r.unchanged)
        say(*ctx, "rebase: " + name + " is on " + rootName + " already: nothing to do");
    else
        say(*ctx, "rebase: " + name + ": its " + std::to_string(r.ownLayers) + " own layers over " +
                      rootName +
                      ", nothing compiled or run (no SBOM or "
                      "provenance: a build without --rebase-only makes them)");
}

namespace {

// The layer of grocker-entrypoint and the services it runs (/etc/grocker/services.json).
LayerResult entrypointLayer(Store& store, const fs::path& program, const std::string& services,
                            const LayerOptions& lo)
{
    auto dir = makeTempDir(store.tmpDir(), ".tmp-" + std::to_string(::getpid()) + "-files-");
    AutoDelete remove(dir);
    fs::create_directories(dir / "usr/local/bin");
    fs::create_directories(dir / "etc/grocker");
    copyFileAtomic(program, dir / "usr/local/bin/grocker-entrypoint", 0755);
    writeFileAtomic(dir / "etc/grocker/services.json", services, 0644);
    for (auto& d : {dir / "etc" / "grocker", dir / "usr", dir / "usr/local", dir / "usr/local/bin",
                    dir / "etc"})
        ::chmod(d.c_str(), 0755);
    return writeLayer(store, dir, "/", lo);
}

// The runner's environment: the base's, PATH through the venv, the app's name and version,
// the configuration's envs last (they win).
std::vector<std::string> runnerEnv(std::vector<std::string> env, const Config& config,
                                   const CompiledWheel& app, const std::string& extras)
{
    std::erase_if(env, [](const std::string& e) { return e.rfind("PATH=", 0) == 0; });
    env.push_back(std::string("PATH=") + venvPath +
                  "/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    env.push_back("GROCKER_APP=" + app.name);
    env.push_back("GROCKER_APP_VERSION=" + app.version);
    env.push_back("GROCKER_APP_EXTRAS=" + extras);
    env.push_back(std::string("VIRTUAL_ENV=") + venvPath);
    for (auto& [k, v] : config.envs) {
        std::erase_if(env, [&](const std::string& e) { return e.rfind(k + "=", 0) == 0; });
        env.push_back(k + "=" + v);
    }
    return env;
}

// Grocker's entrypoint starts as root and runs every process as grocker, except the cron
// daemon, which must be root to run jobs as grocker; an app's own console script runs as
// grocker from the start.
void setProcess(json& c, const Config& config)
{
    if (config.entrypointName.empty())
        c["Entrypoint"] = {"/usr/local/bin/grocker-entrypoint"};
    else
        c["Entrypoint"] = {std::string(venvPath) + "/bin/" + config.entrypointName};
    c.erase("Cmd");
    if (config.entrypointName.empty())
        c.erase("User");
    else
        c["User"] = "grocker";
    c["WorkingDir"] = "/home/grocker";
}

void setVolumesAndPorts(json& c, const Config& config)
{
    json volumes = json::object();
    for (auto v : {"/config", "/scripts", "/media"})
        volumes[v] = json::object();
    for (auto& v : config.volumes)
        volumes[v] = json::object();
    c["Volumes"] = volumes;
    json ports = json::object();
    for (int p : config.ports)
        ports[std::to_string(p) + "/tcp"] = json::object();
    if (!config.services.empty()) ports["8080/tcp"] = json::object();
    if (!ports.empty()) c["ExposedPorts"] = ports;
}

} // namespace

void Pipeline::entrypoint()
{
    LayerOptions lo;
    lo.compress.compression = compression;
    lo.sourceDateEpoch = ctx->epoch;
    auto layer = entrypointLayer(
        *store, request.entrypoint(ctx->platform),
        servicesJson(config, app->name, app->version, venvPath, std::string(runtime->uwsgiPlugin)),
        lo);
    ImageDraft draft(runner, false, ctx->epoch);
    draft.addLayer(layer.descriptor, layer.diffId, "grocker entrypoint and services");
    auto& c = draft.runConfig();
    c["Env"] = runnerEnv(c.value("Env", std::vector<std::string>{}), config, *app, release.extras);
    setProcess(c, config);
    setVolumesAndPorts(c, config);
    auto& labels = c["Labels"];
    labels["grocker.image.role"] = "runner";
    labels["grocker.app.name"] = app->name;
    labels["grocker.app.version"] = app->version;
    labels["grocker.app.extras"] = release.extras;
    labels["grocker.root.image"] = rootName;
    // For grocker rebase: which root, and how many of the first layers are its.
    labels[rootDigestLabel] = root.manifestDescriptor.digest.str();
    labels[rootLayersLabel] = std::to_string(root.manifest.layers.size());
    labels["org.opencontainers.image.title"] = app->name;
    labels["org.opencontainers.image.version"] = app->version;
    labels["org.opencontainers.image.created"] = rfc3339(ctx->epoch);
    image = std::move(draft).commit(*store);
    removeWheels.reset();
    removeInstaller.reset();
}

PassTime::PassTime(std::string what)
    : what_(std::move(what)), start_(std::chrono::steady_clock::now())
{
}

PassTime::~PassTime()
{
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_);
    char text[32];
    std::snprintf(text, sizeof text, "%.1f ms", ms.count());
    try {
        display().detail(what_ + ": " + text);
    } catch (...) {
        // a log that cannot be written is not worth a terminate while unwinding
    }
}

// What the SBOM says needs only the wheels and the root's packages, not the runner's digest:
// made on a thread of its own while the runner's last layer and config are, then attached to
// it by sbom(). Not sooner: the boxes of the passes before fork, and a child forked while
// another thread holds a lock (malloc's) may wait for it forever.
void Pipeline::draftSbom()
{
    if (!request.sbom || !attaches()) return;
    // Taken now: the passes beside it may pull the root (needRoot) meanwhile.
    registry::Session* session = rootLayersIn ? &registry->get() : nullptr;
    sbomDraft = std::async(std::launch::async, [this, session, where = rootLayersIn, root = root,
                                                wheels = wheels, name = runnerName(),
                                                epoch = ctx->epoch, &st = *store] {
        SbomDraft draft;
        std::optional<RootPackages> packages;
        if (!where)
            packages = cachedRootPackages(st, root);
        else if (!(packages = keptRootPackages(st, root))) {
            // Its dpkg database is in the root's layers, which this build does not pull: the
            // list the build that pushed the root attached to it, a few kilobytes.
            try {
                auto found =
                    session->referrers(*where, root.manifestDescriptor.digest, rootPackagesType);
                if (!found.empty()) {
                    session->fetchReferrer(st, *where, found.front());
                    packages = rootPackagesFromEntry(root, referrerContent(st, found.front()));
                    keepRootPackages(st, root, *packages);
                }
            } catch (Error& e) {
                if (e.message() == "cancelled") throw;
                draft.warning = concat("the package list attached to ", where->str(),
                                       " cannot be read: ", e.what());
            }
            if (!packages) {
                draft.without =
                    "sbom: not attached: the root's layers stayed in " + where->domain + "/" +
                    where->path +
                    ", without its package list (a build that pushes the root attaches it)";
                return draft;
            }
        }
        auto bom = makeSbom(*packages, wheels, name, epoch);
        draft.cycloneDx = cycloneDxJson(bom);
        draft.spdx = spdxJson(bom);
        draft.debs = bom.debs.size();
        draft.python = bom.python.size();
        draft.inDebs = size_t(std::count_if(bom.python.begin(), bom.python.end(),
                                            [](const SbomPython& p) { return !p.path.empty(); }));
        return draft;
    });
}

void Pipeline::sbom()
{
    if (!sbomDraft.valid()) return;
    PassTime t("sbom: took");
    auto draft = sbomDraft.get();
    if (!draft.warning.empty()) display().warning(draft.warning);
    if (!draft.without.empty()) {
        say(*ctx, draft.without);
        return;
    }
    std::map<std::string, std::string> annotations{
        {"org.opencontainers.image.created", rfc3339(ctx->epoch)}};
    attachments.push_back(putReferrer(*store, image.manifestDescriptor,
                                      std::string(media::cycloneDx), draft.cycloneDx, annotations));
    attachments.push_back(putReferrer(*store, image.manifestDescriptor, std::string(media::spdx),
                                      draft.spdx, annotations));
    say(*ctx,
        "sbom: " + plural(draft.debs, "Debian package", "Debian packages") + " (" +
            std::to_string(draft.inDebs) + " Python distributions in them), " +
            plural(draft.python - draft.inDebs, "Python distribution", "Python distributions") +
            " in the venv (CycloneDX 1.5, SPDX 2.3)");
}

// Attachments go where the runner is written with them: oci: layouts, oci-archive: files and
// the registry (a docker-archive has no place for them).
bool Pipeline::attaches() const
{
    return (registry && request.push) ||
           std::any_of(outputs.begin(), outputs.end(), [](const ImageRef& o) {
               return o.kind == ImageRef::Kind::Oci || o.kind == ImageRef::Kind::OciArchive;
           });
}

std::string Pipeline::storeName() const
{
    auto name = runnerName();
    if (!indexPart && platform.str() == Platform::host().str()) return name;
    // One of several platforms, or another machine's: "app:1.0-linux-arm64" (the tag's
    // characters allow it), so that the name of this machine's runner stays its.
    return name + "-" + platform.slug();
}

std::string Pipeline::runnerName() const
{
    // The app as compiled; with --rebase-only, nothing is: as the release says it.
    const std::string& name = app ? app->name : release.name;
    const std::string& version = app ? app->version : release.version;
    std::string baseName =
        config.imageBaseName.empty() ? normalisePythonName(name) : config.imageBaseName;
    if (!config.imageName.empty()) return config.imageName;
    if (!config.dockerImagePrefix.empty())
        return config.dockerImagePrefix + "/" + baseName + ":" + version;
    return baseName + ":" + version;
}

void Pipeline::provenance()
{
    if (!request.provenance || !attaches()) return;
    PassTime t("provenance: took");
    ProvenanceInputs in;
    in.subjectName = runnerName();
    in.subject = image.manifestDescriptor.digest;
    in.release = release.text;
    in.runtime = runtimeName();
    in.imagePrefix = config.dockerImagePrefix;
    in.compression = std::string(compressionName(compression));
    in.buildDependencies = request.buildDependencies;
    in.epoch = ctx->epoch;
    for (auto& f : request.configFiles)
        in.configFiles.push_back({f.filename().string(), sha256(readFile(f)).str()});
    auto& o = request.overrides;
    auto set = [&](const char* key, const std::optional<std::string>& v) {
        if (v) in.overrides[key] = *v;
    };
    set("runtime", o.runtime);
    set("pip_constraint", o.pipConstraint);
    set("entrypoint", o.entrypointName);
    set("image_prefix", o.imagePrefix);
    set("image_base_name", o.imageBaseName);
    set("image_name", o.imageName);
    auto joined = [](const std::vector<std::string>& v) {
        std::string all;
        for (auto& x : v)
            all += (all.empty() ? "" : " ") + x;
        return all;
    };
    if (!o.volumes.empty()) in.overrides["volumes"] = joined(o.volumes);
    if (!o.ports.empty()) in.overrides["ports"] = joined(o.ports);
    // The runner's environment is in its config; here only its names (a value may be a secret
    // meant for the runner, not for every reader of the attestations).
    std::vector<std::string> envNames;
    for (auto& e : o.envs)
        envNames.push_back(e.substr(0, e.find('=')));
    if (!envNames.empty()) in.overrides["envs"] = joined(envNames);
    in.indexUrls = index.indexUrls;
    in.linkPages = index.linkPages;
    if (!index.findLinks.empty()) in.findLinksDigest = treeDigest(index.findLinks);
    if (!request.pipConf.empty()) in.pipConfDigest = sha256(readFile(request.pipConf)).str();
    if (!config.pipConstraint.empty())
        in.constraintsDigest = sha256(readFile(config.pipConstraint)).str();
    // The base by what the root records of it (an older grocker's root does not).
    auto labels = root.config.labels();
    in.images.push_back({"base", labels.value("grocker.base", baseIdentity),
                         labels.value("grocker.base.digest", "")});
    std::string prefix = registry ? config.dockerImagePrefix + "/" : "";
    in.images.push_back({"root", prefix + rootName, root.manifestDescriptor.digest.str()});
    in.images.push_back(
        {"compiler", prefix + compilerName, compiler.manifestDescriptor.digest.str()});
    in.wheels = wheels;
    attachments.push_back(putReferrer(*store, image.manifestDescriptor, std::string(media::inToto),
                                      provenanceJson(in),
                                      {{"org.opencontainers.image.created", rfc3339(ctx->epoch)},
                                       {predicateTypeAnnotation, slsaProvenanceV1}}));
    size_t resolved = in.images.size() + wheels.size() + in.indexUrls.size() + in.linkPages.size() +
                      (in.findLinksDigest.empty() ? 0 : 1);
    say(*ctx,
        "provenance: SLSA v1, " + plural(resolved, "resolved dependency", "resolved dependencies"));
}

void Pipeline::sign()
{
    if (!request.signKey) return;
    if (!attaches()) {
        display().warning("--sign-key: the runner goes nowhere that keeps signatures (a registry, "
                          "an oci: or oci-archive: output): not signed");
        return;
    }
    PassTime t("sign: took");
    attachments.push_back(signatureReferrer(*store, *request.signKey, image.manifestDescriptor));
    say(*ctx, "sign: a Sigstore bundle with the key " + request.signKey->publicKey().hint());
}

void Pipeline::writeOutputs()
{
    std::string name = runnerName();
    // Named in the store when whole: a root whose layers stayed in the registry is not, nor a
    // runner rebased in the registry (--rebase-only).
    bool whole = std::all_of(image.manifest.layers.begin(), image.manifest.layers.end(),
                             [&](const Descriptor& l) { return store->hasBlob(l.digest); });
    if (!rootLayersIn && whole)
        store->setRef("grocker-app/" + storeName(), image.manifestDescriptor);
    else if (rootLayersIn)
        say(*ctx, "runner: not kept in the store, its root's layers stayed in " +
                      rootLayersIn->domain + "/" + rootLayersIn->path +
                      " (the registry has it once pushed)");
    else
        say(*ctx, "runner: not kept in the store, its own layers stayed in the registry");
    std::string prefix = registry ? config.dockerImagePrefix + "/" : "";
    result.image = name;
    result.rootImage = prefix + rootName;
    result.compilerImage = compilerName.empty() ? std::string() : prefix + compilerName;
    result.digest = image.manifestDescriptor.digest;
    if (indexPart) return; // the index is written (buildIndex)
    for (auto& dest : outputs) {
        auto listed = attachments;
        if (request.signKey)
            listed = withoutNewBundle(*store, dest, image.manifestDescriptor.digest, attachments,
                                      request.signKey->publicKey());
        request.save(*store, image, dest, listed);
        result.outputs.push_back(dest.str());
    }
}

// Runs the jobs at once, each on a thread of its own, and waits for all; then throws the first
// one's failure, in their order.
static void together(const std::vector<std::function<void()>>& jobs)
{
    std::vector<std::exception_ptr> failed(jobs.size());
    std::vector<std::thread> threads;
    for (size_t i = 1; i < jobs.size(); i++)
        threads.emplace_back([&, i] {
            try {
                jobs[i]();
            } catch (...) {
                failed[i] = std::current_exception();
            }
        });
    try {
        if (!jobs.empty()) jobs[0]();
    } catch (...) {
        failed[0] = std::current_exception();
    }
    for (auto& t : threads)
        t.join();
    for (auto& f : failed)
        if (f) std::rethrow_exception(f);
}

void Pipeline::push()
{
    if (!registry || !request.push) return;
    auto& session = registry->get();
    auto named = Reference::parse(result.image);
    if (indexPart) {
        // By digest: the tag goes to the index (buildIndex).
        named.tag.clear();
        named.digest = image.manifestDescriptor.digest;
    }
    std::vector<std::function<void()>> jobs{[&] {
        // Blobs already in the registry are not sent again. A root or compiler whose layers were
        // never pulled is in the registry: where it was found.
        if (!rootLayersIn) {
            PassTime t("push: root");
            session.push(*store, root, registry->ref(rootName));
        }
        if (!compilerLayersIn && !request.rebaseOnly) {
            PassTime t("push: compiler");
            session.push(*store, compiler, registry->ref(compilerName));
        }
        Digest pushed;
        try {
            PassTime t("push: runner");
            pushed = session.push(*store, image, named);
        } catch (Error& e) {
            // The root's layers neither in the target repository nor mountable into it: pulled,
            // then pushed.
            if (!rootLayersIn || e.message() == "cancelled") throw;
            display().warning(concat(e.what(), "; pulling the root's layers to push them"));
            needRoot();
            store->setRef("grocker-app/" + storeName(), image.manifestDescriptor);
            pushed = session.push(*store, image, named);
        }
        if (pushed != image.manifestDescriptor.digest)
            throw Error("the registry stored '", result.image, "' as ", pushed.str(),
                        ", not as the built ", image.manifestDescriptor.digest.str());
        result.pushed = named.str();
    }};
    // After the runner (pushed at once with it, they took longer: the registry and grocker
    // share the machine's cores), but beside each other: each is a handful of small round
    // trips, and the shared tags' pauses overlap.
    jobs.push_back([&] { attachAll(named); });
    if (request.signKey)
        jobs.push_back([&] {
            PassTime t("push: cosign's .sig");
            // cosign's older tag too, for verifiers that read only that.
            pushCosignSignatures(session, *store, *request.signKey, named,
                                 image.manifestDescriptor.digest);
            say(*ctx, "sign: cosign's " + cosignSignatureTag(image.manifestDescriptor.digest) +
                          " pushed beside it");
        });
    // The compiler's SBOMs after the root's list: that says whether the root had its own
    // (when not, the compiler has none either).
    jobs.push_back([&] {
        if (!rootLayersIn) shareRootPackages();
        if ((compilerMade || compilerSboms) && !compilerLayersIn && !request.rebaseOnly)
            shareCompilerSboms();
    });
    together(jobs);
    shareSlice();
}

// A compiler made here: its SBOMs (its Debian packages: the root's and the build
// dependencies), attached to it, as the root's are.
void Pipeline::shareCompilerSboms()
{
    if (!request.sbom) return;
    PassTime t("push: the compiler's SBOMs");
    try {
        auto bom = makeSbom(cachedRootPackages(*store, compiler), {},
                            registry->ref(compilerName).str(), ctx->epoch);
        std::map<std::string, std::string> annotations{
            {"org.opencontainers.image.created", rfc3339(ctx->epoch)}};
        registry->get().attach(
            *store,
            {putReferrer(*store, compiler.manifestDescriptor, std::string(media::cycloneDx),
                         cycloneDxJson(bom), annotations),
             putReferrer(*store, compiler.manifestDescriptor, std::string(media::spdx),
                         spdxJson(bom), annotations)},
            registry->ref(compilerName));
    } catch (Error& e) {
        if (e.message() == "cancelled") throw;
        display().warning(
            concat("the SBOMs of ", compilerName, " could not be attached to it: ", e.what()));
    }
}

// The runner's attachments (SBOMs, provenance, signature) in the registry: one that refuses
// them (one that takes no OCI 1.1 artifact, say) costs the SBOMs, with a warning, not the build;
// but an image meant to be signed that is not is an error (policies would refuse it).
void Pipeline::attachAll(const Reference& named)
{
    try {
        PassTime t("push: attachments");
        if (attachments.empty()) return;
        // Those the registry lists already (a rebuild with nothing changed: the same
        // attachments, byte for byte) are not sent again: one listing instead of their blobs;
        // nor a new signature where this key's is.
        std::optional<VerifyKey> key;
        if (request.signKey) key = request.signKey->publicKey();
        auto sent = attachMissing(registry->get(), *store, named, image.manifestDescriptor.digest,
                                  attachments, key ? &*key : nullptr);
        say(*ctx,
            "attestations: " +
                (sent == 0 ? "already attached to " + named.str() : "attached to " + named.str()) +
                " (" + plural(attachments.size(), "referrer", "referrers") + ")");
    } catch (Error& e) {
        if (e.message() == "cancelled" || request.signKey) throw;
        display().warning(concat("the attestations could not be attached to ", named.str(), ": ",
                                 e.what(),
                                 "; the image is pushed without them (--no-sbom and "
                                 "--no-provenance skip them)"));
    }
}

// The root's package list, attached to it for the SBOMs of runners that never pull its layers.
void Pipeline::shareRootPackages()
{
    if (!request.sbom) return;
    PassTime t("push: the root's package list");
    try {
        auto ref = registry->ref(rootName);
        auto packages = cachedRootPackages(*store, root);
        auto listed = putReferrer(*store, root.manifestDescriptor, rootPackagesType,
                                  rootPackagesEntry(root, packages));
        // Attached by the build that pushed the root first, usually: looked for before anything
        // is made or sent (the same list has the same digest).
        auto there = registry->get().referrers(ref, root.manifestDescriptor.digest, "");
        auto has = [&](auto pred) { return std::any_of(there.begin(), there.end(), pred); };
        std::vector<Descriptor> mine;
        if (!has([&](const Descriptor& d) { return d.digest == listed.digest; }))
            mine.push_back(listed);
        // Its SBOMs too (what it holds; no app), and then the compiler's, made with it.
        if (!has([](const Descriptor& d) { return d.artifactType == media::cycloneDx; })) {
            auto bom = makeSbom(packages, {}, registry->ref(rootName).str(), ctx->epoch);
            std::map<std::string, std::string> annotations{
                {"org.opencontainers.image.created", rfc3339(ctx->epoch)}};
            mine.push_back(putReferrer(*store, root.manifestDescriptor,
                                       std::string(media::cycloneDx), cycloneDxJson(bom),
                                       annotations));
            mine.push_back(putReferrer(*store, root.manifestDescriptor, std::string(media::spdx),
                                       spdxJson(bom), annotations));
            compilerSboms = true;
        }
        registry->get().attach(*store, mine, ref);
    } catch (Error& e) {
        if (e.message() == "cancelled") throw;
        display().warning(concat("the package list of ", rootName,
                                 " could not be attached to it: ", e.what(),
                                 "; runners built over it without its layers will "
                                 "have no SBOM"));
    }
}

void Pipeline::writeResultFile()
{
    result.ran = ctx->ran;
    if (!request.resultFile.empty() && !indexPart)
        writeFileAtomic(request.resultFile, result.json().dump(2) + "\n");
}

json BuildResult::json() const
{
    nlohmann::json j = {{"release", release},      {"image", image},
                        {"root_image", rootImage}, {"compiler_image", compilerImage},
                        {"hash", digest.str()},    {"outputs", outputs}};
    if (!pushed.empty()) j["pushed"] = pushed;
    if (!platforms.empty()) {
        // Several platforms: "hash" is the index's, and each runner is listed.
        auto& list = j["platforms"] = nlohmann::json::array();
        for (auto& p : platforms)
            list.push_back({{"platform", p.platform},
                            {"hash", p.digest.str()},
                            {"root_image", p.rootImage},
                            {"compiler_image", p.compilerImage}});
    }
    return j;
}

} // namespace grocker::build
