// grocker build: from a Python application's name and version to a runnable image. The
// pipeline, as a list of passes:
//   1. configuration   merge defaults, -c files, the command line; every mistake at once
//   2. base            the runtime's base image (mmdebstrap, or pulled)
//   3. root            base + repositories + run dependencies + user grocker (cached)
//   4. compiler        root + build dependencies + the compile script (cached)
//   5. compile         wheels of the release and its dependencies, each package in a box of
//                      its own, checked and cached by the host (src/compile.hh)
//   6. runner          root + venv with dependencies + the app + the entrypoint (each cached)
//   7. outputs         the store, --output locations, the push, the result file

#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sys/stat.h>
#include <unistd.h>

#include "build-steps.hh"
#include "embedded-scripts.hh"
#include "commands.hh"
#include "compile.hh"
#include "config.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/layer-writer.hh"
#include "grocker/oci/reference.hh"
#include "grocker/registry/client.hh"
#include "grocker/registry/http.hh"
#include "grocker/registry/registry.hh"
#include "grocker/sandbox/rootfs.hh"
#include "runtimes.hh"

namespace grocker {

namespace fs = std::filesystem;
using namespace grocker::oci;
using namespace grocker::build;
using nlohmann::json;

namespace {

constexpr const char* venv = "/home/grocker/venv";
constexpr const char* grockerUid = "1000";

struct BuildOptions {
    std::string release;
    std::vector<std::string> configFiles;
    ConfigOverrides overrides;
    std::string pipConf, indexUrl, indexUrlFile, findLinks;
    std::string compileNetwork = "host"; // the boxes': the host's, or none
    std::vector<std::string> outputs;
    std::string resultFile;
    bool buildDependencies = true;
    bool push = true;
    bool refresh = false; // resolve the dependencies again: no cached compile or resolution
    std::string compression = "gzip";
    std::string baseImage; // instead of the runtime's registry image (a mirror's copy)
};

template <typename T> std::vector<std::string> strings(std::span<const T> v)
{
    return std::vector<std::string>(v.begin(), v.end());
}

// Removes what apt, dpkg and useradd leave that depends on when and where they ran.
const char* const aptCleanup =
    "rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb /var/log/apt/* "
    "/var/log/dpkg.log /var/log/alternatives.log /var/cache/debconf/*-old /var/lib/dpkg/*-old /etc/*- "
    "/var/cache/ldconfig/aux-cache";

fs::path findEntrypoint()
{
    if (const char* e = std::getenv("GROCKER_ENTRYPOINT"); e && *e) return e;
    auto self = fs::read_symlink("/proc/self/exe").parent_path();
    for (auto& candidate : {self / "entrypoint" / "grocker-entrypoint", self / "grocker-entrypoint",
             self.parent_path().parent_path() / "libexec" / "grocker" / "grocker-entrypoint"})
        if (fs::exists(candidate)) return candidate;
    throw Error("grocker-entrypoint was not found beside '", self.string(),
        "': build it (ninja -C build) or set GROCKER_ENTRYPOINT");
}

std::string fileDigest(const std::string& path) { return path.empty() ? "" : sha256(readFile(path)).str(); }

// The registry under docker_image_prefix: where root and compiler images are looked for before
// being built, and where the images are pushed.
struct Remote {
    const GlobalOptions& g;
    std::string prefix;
    bool push;
    std::unique_ptr<registry::Session> session;

    registry::Session& get()
    {
        if (!session) session = std::make_unique<registry::Session>(registryOptions(g));
        return *session;
    }
    Reference ref(const std::string& name) const { return Reference::parse(prefix + "/" + name); }
};

// The image named `name`: from the store when there, else pulled from the prefix's registry,
// else made by `make`; named in the store either way.
Image obtain(Context& ctx, Remote* remote, const std::string& name, const std::function<Image()>& make)
{
    if (auto d = ctx.store.getRef(name)) {
        try {
            return imageFromStore(ctx.store, *d);
        } catch (Error&) {
            // missing pieces: made again below
        }
    }
    if (remote) {
        auto ref = remote->ref(name);
        try {
            Image img = remote->get().pull(ctx.store, ref);
            if (!ctx.quiet) std::cerr << name << ": pulled from " << ref.str() << "\n";
            ctx.store.setRef(name, img.manifestDescriptor);
            return img;
        } catch (registry::RegistryError& e) {
            // Not there yet (404): built here, pushed below. Anything else stops a build that
            // must push; without a push it is only a lost shortcut.
            if (e.status() != 404) {
                if (remote->push) throw;
                std::cerr << "grocker: warning: " << e.what() << "; building " << name << " here\n";
            }
        } catch (registry::TransportError& e) {
            if (remote->push) throw;
            std::cerr << "grocker: warning: " << e.what() << "; building " << name << " here\n";
        }
    }
    Image img = make();
    ctx.store.setRef(name, img.manifestDescriptor);
    return img;
}

// The base image of a registry runtime, as a reference: the runtime's, or --base-image.
std::string baseImage(const Runtime& runtime, const std::string& override)
{
    auto text = override.empty() ? std::string(runtime.image) : override;
    return Reference::parse(text.starts_with("docker://") ? text.substr(9) : text).str();
}

Image pulledBase(Context& ctx, Remote& remote, const std::string& ref)
{
    auto parsed = Reference::parse(ref);
    std::string name = "grocker-base/" + parsed.str();
    if (auto d = ctx.store.getRef(name)) {
        try {
            return imageFromStore(ctx.store, *d);
        } catch (Error&) {
        }
    }
    if (!ctx.quiet) std::cerr << "base: pulling " << parsed.str() << "\n";
    ctx.ran.push_back("base");
    Image img = remote.get().pull(ctx.store, parsed);
    ctx.store.setRef(name, img.manifestDescriptor);
    return img;
}

int runBuild(const GlobalOptions& g, BuildOptions o)
{
    // 1. configuration: every mistake at once, the files' and the command line's, before any work.
    std::vector<fs::path> files(o.configFiles.begin(), o.configFiles.end());
    std::vector<std::string> problems, cliProblems;
    auto check = [&](const std::function<void()>& fn) {
        try {
            fn();
        } catch (ConfigError& e) {
            problems.insert(problems.end(), e.problems().begin(), e.problems().end());
        } catch (Error& e) {
            cliProblems.push_back(e.message());
        }
    };
    Config config;
    const Runtime* runtimeFound = nullptr;
    Release release{Release::Kind::Spec, {}, {}, {}, {}, o.release};
    std::vector<ImageRef> outputs;
    Compression compression = Compression::Gzip;
    check([&] { config = loadConfig(files, o.overrides); });
    check([&] { runtimeFound = &findRuntime(config.runtime); });
    check([&] { release = parseRelease(o.release); });
    for (auto& text : o.outputs)
        check([&] {
            auto out = ImageRef::parse(text);
            if (out.kind == ImageRef::Kind::Scratch)
                throw UsageError("--output scratch: scratch is not a place to write an image; name an image location");
            outputs.push_back(out);
        });
    check([&] { compression = parseCompression(o.compression); });
    auto readable = [&](const std::string& option, const std::string& path, bool folder) {
        if (path.empty()) return;
        check([&] {
            std::error_code ec;
            auto st = fs::status(path, ec);
            if (ec || !fs::exists(st))
                throw UsageError(option, " '", path, "': ", ec ? ec.message() : "No such file or directory");
            if (folder != fs::is_directory(st))
                throw UsageError(option, " '", path, "': ", folder ? "not a folder" : "a folder, not a file");
            if (::access(path.c_str(), R_OK | (folder ? X_OK : 0)) < 0)
                throw SysError(option, " '", path, "': unable to read it");
        });
    };
    readable("--pip-conf", o.pipConf, false);
    readable("--find-links", o.findLinks, true);
    if (!o.resultFile.empty())
        check([&] {
            auto parent = fs::absolute(o.resultFile).parent_path();
            if (fs::is_directory(o.resultFile))
                throw UsageError("--result-file '", o.resultFile, "' is a folder: name a file");
            if (!fs::is_directory(parent))
                throw UsageError("--result-file '", o.resultFile, "': the folder '", parent.string(), "' does not exist");
        });
    // The index URL may hold a secret: from a file or the environment, not only from the
    // command line (which every user of the host sees in ps).
    if (!o.indexUrlFile.empty())
        check([&] {
            if (!o.indexUrl.empty()) throw UsageError("--index-url and --index-url-file: give one of them");
            std::string text = readFile(o.indexUrlFile);
            o.indexUrl = text.substr(0, text.find_first_of("\r\n"));
            if (o.indexUrl.empty()) throw UsageError("--index-url-file '", o.indexUrlFile, "': its first line is empty; write the index URL there");
        });
    else if (const char* e = std::getenv("GROCKER_INDEX_URL"); o.indexUrl.empty() && e && *e)
        o.indexUrl = e;
    if (o.compileNetwork != "host" && o.compileNetwork != "none")
        cliProblems.push_back("--compile-network '" + o.compileNetwork + "' is neither host nor none");
    if (!o.indexUrl.empty() && !o.indexUrl.starts_with("http://") && !o.indexUrl.starts_with("https://") &&
        !o.indexUrl.starts_with("file://"))
        cliProblems.push_back("--index-url '" + withoutPassword(o.indexUrl) + "' is not an http://, https:// or file:// URL");
    if (!o.baseImage.empty()) check([&] { (void)Reference::parse(o.baseImage.starts_with("docker://") ? o.baseImage.substr(9) : o.baseImage); });
    if (problems.empty() && cliProblems.size() == 1) throw UsageError(cliProblems[0]);
    problems.insert(problems.end(), cliProblems.begin(), cliProblems.end());
    if (!problems.empty()) throw ConfigError(problems);
    const Runtime& runtime = *runtimeFound;

    Store store(g.root.empty() ? Store::defaultRoot() : fs::path(g.root));
    Context ctx{store, sandbox::IdMap::forCaller(), g.quiet, sourceDateEpochFromEnv(), compression, {}};
    if (!ctx.map.warning.empty()) std::cerr << "grocker: warning: " << ctx.map.warning << "\n";
    std::string rtName = std::string(runtime.name);
    std::string rtSlug = rtName;
    std::replace(rtSlug.begin(), rtSlug.end(), '/', '-');

    // Root and compiler images are named after everything that defines them, so that a build
    // elsewhere finds them by name: in the store, else (with a prefix) in the registry.
    Remote remote{g, config.dockerImagePrefix, o.push, {}};
    Remote* registry = config.dockerImagePrefix.empty() ? nullptr : &remote;

    // 2-3. base and root
    std::vector<std::string> runDeps = strings(runtime.runDependencies);
    for (auto& d : config.dependencies.run) runDeps.push_back(d);
    std::string repoSetup;
    for (auto& [name, repo] : config.repositories) {
        std::string list = "/etc/apt/sources.list.d/grocker-" + name + ".list";
        std::string line = repo.uri;
        if (!repo.key.empty()) {
            std::string keyFile = "/etc/apt/keyrings/grocker-" + name + ".asc";
            repoSetup += "mkdir -p /etc/apt/keyrings && printf '%s\\n' " + shellQuote(repo.key) + " > " + keyFile + " && ";
            // "deb URI ..." → "deb [signed-by=KEY] URI ..."
            auto sp = line.find(' ');
            if (sp != std::string::npos) line = line.substr(0, sp) + " [signed-by=" + keyFile + "]" + line.substr(sp);
        }
        repoSetup += "printf '%s\\n' " + shellQuote(line) + " > " + list + " && ";
    }
    Step rootStep;
    rootStep.name = "root: " + rtName + " run dependencies and user grocker";
    rootStep.hostNetwork = true;
    rootStep.env = {"DEBIAN_FRONTEND=noninteractive"};
    rootStep.argv = {"/bin/sh", "-ec",
        repoSetup + "apt-get update -qq && apt-get install -y -qq --no-install-recommends " + joinQuoted(runDeps) +
            " >/dev/null && useradd --create-home --uid " + grockerUid +
            " --user-group --shell /bin/sh grocker && sed -i -E 's/^(grocker:[^:]*:)[0-9]*:/\\1:/' /etc/shadow && " +
            aptCleanup};
    std::string baseIdentity = runtime.base == Runtime::Base::Registry ? baseImage(runtime, o.baseImage)
                                                                       : "mmdebstrap " + std::string(runtime.suite) + " " + baseRecipe;
    std::string rootName = "grocker-" + rtSlug + "-root:" + GROCKER_VERSION + "-" +
        cacheKey({"root", GROCKER_VERSION, oci::layerFormat, rtName, baseIdentity, std::to_string(ctx.epoch), compressionName(compression).data(),
            joinQuoted(rootStep.argv), joinQuoted(rootStep.env)}).substr(0, 12);
    Image root = obtain(ctx, registry, rootName, [&] {
        Image base = runtime.base == Runtime::Base::Registry ? pulledBase(ctx, remote, baseIdentity)
                                                             : debianBase(ctx, std::string(runtime.suite));
        Image img = runStep(ctx, base, rootStep);
        ImageDraft d(img, false, ctx.epoch);
        auto& c = d.runConfig();
        std::vector<std::string> env = c.value("Env", std::vector<std::string>{});
        for (auto kv : {"LANG=C.UTF-8", "LC_ALL=C.UTF-8"}) env.push_back(kv);
        env.push_back(std::string("GROCKER_VERSION=") + GROCKER_VERSION);
        env.push_back("GROCKER_RUNTIME=" + rtName);
        c["Env"] = env;
        c["Labels"]["grocker.version"] = GROCKER_VERSION;
        c["Labels"]["grocker.image.role"] = "root";
        c["Labels"]["grocker.runtime"] = rtName;
        return std::move(d).commit(store);
    });

    // 4. compiler
    std::vector<std::string> buildDeps = strings(runtime.buildDependencies);
    // Build backends' own wheels (setuptools, wheel, pip) for pip's isolated builds, with no index.
    buildDeps.push_back("python3-setuptools-whl");
    buildDeps.push_back("python3-wheel-whl");
    buildDeps.push_back("python3-pip-whl");
    if (o.buildDependencies)
        for (auto& d : config.dependencies.build) buildDeps.push_back(d);
    auto scriptFile = store.tmpDir() / tempName();
    writeFileAtomic(scriptFile, compileScript, 0755);
    struct RemoveFile {
        fs::path p;
        ~RemoveFile() { ::unlink(p.c_str()); }
    } removeScript{scriptFile};
    Step compilerStep;
    compilerStep.name = "compiler: " + rtName + " build dependencies";
    compilerStep.hostNetwork = true;
    compilerStep.env = {"DEBIAN_FRONTEND=noninteractive"};
    compilerStep.files = {{scriptFile, "/usr/local/bin/grocker-compile"}};
    compilerStep.argv = {"/bin/sh", "-ec",
        "apt-get update -qq && apt-get install -y -qq --no-install-recommends " + joinQuoted(buildDeps) +
            " >/dev/null && " + aptCleanup};
    std::string compilerName = "grocker-" + rtSlug + "-compiler:" + GROCKER_VERSION + "-" +
        cacheKey({"compiler", rootName, joinQuoted(compilerStep.argv), joinQuoted(compilerStep.env),
            sha256(std::string_view(compileScript)).str()}).substr(0, 12);
    Image compiler = obtain(ctx, registry, compilerName, [&] {
        Image img = runStep(ctx, root, compilerStep);
        ImageDraft d(img, false, ctx.epoch);
        d.runConfig()["Labels"]["grocker.image.role"] = "compiler";
        return std::move(d).commit(store);
    });

    // 5. compile: each package in a box of its own, every output checked by the host
    // (src/compile.hh); index settings and their secrets reach the boxes' environment only.
    CompileRequest creq;
    creq.release = release;
    creq.compiler = &compiler;
    creq.refresh = o.refresh;
    Step& box = creq.boxTemplate;
    box.hostNetwork = o.compileNetwork == "host";
    // SOURCE_DATE_EPOCH: wheels built from sdists and folders get fixed zip times, so the same
    // sources give the same wheel bytes (and layers) in every build, concurrent ones included.
    box.env = {"HOME=/home/grocker", "SOURCE_DATE_EPOCH=" + std::to_string(ctx.epoch)};
    if (!config.pipConstraint.empty()) {
        box.volumes.push_back({config.pipConstraint, "/run/grocker/constraints.txt", true});
        box.env.push_back("GROCKER_PIP_CONSTRAINT=/run/grocker/constraints.txt");
    }
    if (!o.pipConf.empty()) {
        box.volumes.push_back({fs::canonical(o.pipConf), "/run/grocker/pip.conf", true});
        box.env.push_back("PIP_CONFIG_FILE=/run/grocker/pip.conf");
    }
    if (!o.indexUrl.empty()) box.env.push_back("PIP_INDEX_URL=" + o.indexUrl);
    if (!o.findLinks.empty()) {
        box.volumes.push_back({fs::canonical(o.findLinks), "/run/grocker/find-links", true});
        box.env.push_back("PIP_FIND_LINKS=/run/grocker/find-links");
    }
    creq.index = IndexSettings::from(o.pipConf.empty() ? "" : readFile(o.pipConf), o.indexUrl,
        o.findLinks.empty() ? fs::path() : fs::canonical(o.findLinks));
    creq.indexKey = cacheKey({"index", compiler.manifestDescriptor.digest.str(), std::to_string(ctx.epoch),
        fileDigest(o.pipConf), o.indexUrl, o.findLinks.empty() ? "" : treeDigest(o.findLinks)});
    creq.constraintsDigest = fileDigest(config.pipConstraint);
    // A runtime with no uwsgi for its Python (a registry image's own Python: Debian's plugin is
    // built for Debian's) gets the PyPI uwsgi, Python built in, in the venv for wsgi services.
    if (runtime.uwsgiPlugin.empty() &&
        std::any_of(config.services.begin(), config.services.end(), [](auto& s) { return s.second.kind == Service::Kind::Wsgi; }))
        creq.moreRequirements.push_back("uwsgi");
    auto installed = compileRelease(ctx, creq);
    const CompiledWheel* app = nullptr;
    for (auto& w : installed)
        if (w.requested) app = &w;
    if (!app) throw Error("the compile of '", release.text, "' made no wheel of the release itself");
    std::string appName = app->name, appVersion = app->version;

    // 6. runner: dependencies, then the app, then the entrypoint, so a new version of the app
    // changes only the last layers.
    auto wheelDigests = [&](const std::vector<const CompiledWheel*>& ws) {
        std::string s;
        for (auto* w : ws) s += w->file + "=" + w->digest.str() + "\n";
        return s;
    };
    // This build's wheels, and only them, by file name (links to the host's checked copies).
    auto wheels = makeTempDir(store.tmpDir(), ".tmp-" + std::to_string(::getpid()) + "-wheels-");
    AutoDelete removeWheels(wheels);
    for (auto& w : installed)
        if (::link(w.path.c_str(), (wheels / w.file).c_str()) < 0) copyFileAtomic(w.path, wheels / w.file, 0444);
    ::chmod(wheels.c_str(), 0755);
    // Installed by src/install-wheels.py with the venv's own Python (no pip: importing it costs
    // more than installing a small app), mounted for the step only, never in the layer: no
    // index, no resolution (the compile step's report is the list), no build dependency.
    auto installer = store.tmpDir() / tempName();
    writeFileAtomic(installer, installWheelsScript, 0644);
    AutoDelete removeInstaller(installer);
    auto installStep = [&](const std::string& name, const std::vector<const CompiledWheel*>& ws, bool makeVenv) {
        Step s;
        s.name = name;
        s.volumes = {{wheels, "/wheels", true}, {installer, "/run/grocker/install-wheels", true}};
        std::string cmd = makeVenv ? std::string("python3 -m venv --without-pip ") + venv + " && " : "";
        std::vector<std::string> paths, requested;
        for (auto* w : ws) {
            paths.push_back("/wheels/" + w->file);
            if (w->requested) requested.push_back("--requested=/wheels/" + w->file);
        }
        if (!paths.empty())
            cmd += std::string(venv) + "/bin/python3 /run/grocker/install-wheels " + joinQuoted(requested) + " " + joinQuoted(paths);
        else
            cmd += "true";
        s.argv = {"/bin/sh", "-ec", cmd};
        s.keyExtra = wheelDigests(ws) + sha256(installWheelsScript).str();
        s.env = {"PYTHONDONTWRITEBYTECODE=1"};
        return s;
    };
    std::vector<const CompiledWheel*> deps, appOnly{app};
    for (auto& w : installed)
        if (&w != app) deps.push_back(&w);
    Image runner = runStep(ctx, root, installStep("runner: dependencies of " + appName, deps, true));
    runner = runStep(ctx, runner, installStep("runner: " + appName + " " + appVersion, appOnly, false));

    auto filesDir = makeTempDir(store.tmpDir(), ".tmp-" + std::to_string(::getpid()) + "-files-");
    AutoDelete removeFiles(filesDir);
    fs::create_directories(filesDir / "usr/local/bin");
    fs::create_directories(filesDir / "etc/grocker");
    copyFileAtomic(findEntrypoint(), filesDir / "usr/local/bin/grocker-entrypoint", 0755);
    writeFileAtomic(filesDir / "etc/grocker/services.json", servicesJson(config, appName, appVersion, venv, std::string(runtime.uwsgiPlugin)), 0644);
    for (auto& d : {filesDir / "etc" / "grocker", filesDir / "usr", filesDir / "usr/local", filesDir / "usr/local/bin", filesDir / "etc"})
        ::chmod(d.c_str(), 0755);
    LayerOptions lo;
    lo.compress.compression = compression;
    lo.sourceDateEpoch = ctx.epoch;
    auto filesLayer = writeLayer(store, filesDir, "/", lo);

    ImageDraft draft(runner, false, ctx.epoch);
    draft.addLayer(filesLayer.descriptor, filesLayer.diffId, "grocker entrypoint and services");
    auto& c = draft.runConfig();
    std::vector<std::string> env = c.value("Env", std::vector<std::string>{});
    std::erase_if(env, [](const std::string& e) { return e.rfind("PATH=", 0) == 0; });
    env.push_back(std::string("PATH=") + venv + "/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    env.push_back("GROCKER_APP=" + appName);
    env.push_back("GROCKER_APP_VERSION=" + appVersion);
    env.push_back("GROCKER_APP_EXTRAS=" + release.extras);
    env.push_back(std::string("VIRTUAL_ENV=") + venv);
    for (auto& [k, v] : config.envs) {
        std::erase_if(env, [&](const std::string& e) { return e.rfind(k + "=", 0) == 0; });
        env.push_back(k + "=" + v);
    }
    c["Env"] = env;
    if (config.entrypointName.empty())
        c["Entrypoint"] = {"/usr/local/bin/grocker-entrypoint"};
    else
        c["Entrypoint"] = {std::string(venv) + "/bin/" + config.entrypointName};
    c.erase("Cmd");
    // Grocker's entrypoint starts as root and runs every process as grocker, except the cron
    // daemon, which must be root to run jobs as grocker; an app's own console script runs as
    // grocker from the start.
    if (config.entrypointName.empty())
        c.erase("User");
    else
        c["User"] = "grocker";
    c["WorkingDir"] = "/home/grocker";
    json volumes = json::object();
    for (auto v : {"/config", "/scripts", "/media"}) volumes[v] = json::object();
    for (auto& v : config.volumes) volumes[v] = json::object();
    c["Volumes"] = volumes;
    json ports = json::object();
    for (int p : config.ports) ports[std::to_string(p) + "/tcp"] = json::object();
    if (!config.services.empty()) ports["8080/tcp"] = json::object();
    if (!ports.empty()) c["ExposedPorts"] = ports;
    auto& labels = c["Labels"];
    labels["grocker.image.role"] = "runner";
    labels["grocker.app.name"] = appName;
    labels["grocker.app.version"] = appVersion;
    labels["grocker.app.extras"] = release.extras;
    labels["grocker.root.image"] = rootName;
    labels["org.opencontainers.image.title"] = appName;
    labels["org.opencontainers.image.version"] = appVersion;
    labels["org.opencontainers.image.created"] = rfc3339(ctx.epoch);
    Image image = std::move(draft).commit(store);

    // 7. outputs
    std::string baseName = config.imageBaseName.empty() ? normalisePythonName(appName) : config.imageBaseName;
    std::string imageName = config.imageName.empty() ? baseName + ":" + appVersion : config.imageName;
    if (!config.dockerImagePrefix.empty() && config.imageName.empty())
        imageName = config.dockerImagePrefix + "/" + imageName;
    store.setRef("grocker-app/" + imageName, image.manifestDescriptor);
    std::string prefix = registry ? config.dockerImagePrefix + "/" : "";
    json result = {{"release", release.text}, {"image", imageName}, {"root_image", prefix + rootName},
        {"compiler_image", prefix + compilerName}, {"hash", image.manifestDescriptor.digest.str()}, {"outputs", json::array()}};
    for (auto& dest : outputs) {
        saveAnyImage(store, image, dest, g);
        result["outputs"].push_back(dest.str());
    }
    if (registry && o.push) {
        // Root and compiler first, so that a build elsewhere finds them; then the image. Blobs
        // already in the registry are not sent again.
        remote.get().push(store, root, remote.ref(rootName));
        remote.get().push(store, compiler, remote.ref(compilerName));
        auto pushed = remote.get().push(store, image, Reference::parse(imageName));
        if (pushed != image.manifestDescriptor.digest)
            throw Error("the registry stored '", imageName, "' as ", pushed.str(), ", not as the built ",
                image.manifestDescriptor.digest.str());
        result["pushed"] = Reference::parse(imageName).str();
    }
    if (!o.resultFile.empty()) writeFileAtomic(o.resultFile, result.dump(2) + "\n");
    if (!g.quiet) {
        std::cerr << "steps run: " << ctx.ran.size();
        for (auto& s : ctx.ran) std::cerr << "\n  " << s;
        std::cerr << "\n";
    }
    std::cout << image.manifestDescriptor.digest.str() << "\n";
    return 0;
}

} // namespace

Runners registerBuildCommand(CLI::App& app, GlobalOptions& global)
{
    static BuildOptions bo;
    static std::optional<std::string> runtime, pipConstraint, entrypoint, prefix, baseName, imageName;
    auto* b = app.add_subcommand("build", "Build the runner image of a Python application");
    b->add_option("RELEASE", bo.release, "NAME[EXTRAS]==VERSION, path/to/x.whl[EXTRAS] or path/to/project/[EXTRAS]")->required();
    b->add_option("-c,--config", bo.configFiles, "Configuration file (repeatable; default ./.grocker.yml)")->allow_extra_args(false);
    b->add_option("-r,--runtime", runtime, "Runtime (default bookworm/3.11)");
    b->add_option("--pip-conf", bo.pipConf, "pip configuration file for the compile step");
    b->add_option("--pip-constraint", pipConstraint, "pip constraints file");
    b->add_option("--index-url", bo.indexUrl, "Python package index URL (default $GROCKER_INDEX_URL)");
    b->add_option("--index-url-file", bo.indexUrlFile, "Read the index URL (credentials included) from this file's first line");
    b->add_option("--compile-network", bo.compileNetwork,
        "host (default): the compile steps reach the index through the host's network; none: no network (find-links only)");
    b->add_option("--find-links", bo.findLinks, "Folder of wheels and sdists");
    b->add_option("-e,--entrypoint", entrypoint, "Use this console script of the app as the entrypoint");
    b->add_option("--volume", bo.overrides.volumes, "Volume of the runner image (repeatable)")->allow_extra_args(false);
    b->add_option("--port", bo.overrides.ports, "Exposed port (repeatable)")->allow_extra_args(false);
    b->add_option("--env", bo.overrides.envs, "KEY=VALUE of the runner image (repeatable)")->allow_extra_args(false);
    b->add_option("--image-prefix", prefix, "Registry prefix (e.g. registry.example.com/team)");
    b->add_option("--image-base-name", baseName, "Image name without prefix and tag");
    b->add_option("-n,--image-name", imageName, "Full image name");
    b->add_option("--result-file", bo.resultFile, "Write the result as JSON here");
    b->add_flag("--build-dependencies,!--no-build-dependencies", bo.buildDependencies,
        "Install the project's build dependencies in the compiler (default)");
    b->add_flag("--push,!--no-push", bo.push, "Push the image when a prefix is set (default)");
    b->add_option("--output", bo.outputs, "Also write the image here (repeatable)")->allow_extra_args(false);
    b->add_option("--compression", bo.compression, "gzip (default) or zstd");
    b->add_flag("--refresh", bo.refresh,
        "Resolve the dependencies again (new releases of unpinned ones), not reusing an earlier compile or resolution");
    b->add_option("--base-image", bo.baseImage,
        "Pull the base of a registry runtime from this reference instead (a mirror's copy)");
    return {{b, [&global] {
                 bo.overrides.runtime = runtime;
                 bo.overrides.pipConstraint = pipConstraint;
                 bo.overrides.entrypointName = entrypoint;
                 bo.overrides.imagePrefix = prefix;
                 bo.overrides.imageBaseName = baseName;
                 bo.overrides.imageName = imageName;
                 return runBuild(global, bo);
             }}};
}

} // namespace grocker
