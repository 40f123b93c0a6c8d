// grocker build: from a Python application's name and version to a runnable image. The
// pipeline, as a list of passes:
//   1. configuration   merge defaults, -c files, the command line; every mistake at once
//   2. base            the runtime's base image (mmdebstrap, or pulled)
//   3. root            base + repositories + run dependencies + user grocker (cached)
//   4. compiler        root + build dependencies + the compile script (cached)
//   5. compile         wheels of the release and its dependencies into the wheel cache
//                      (src/grocker-compile.py; cached on its inputs)
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
#include "config.hh"
#include "grocker/oci/error.hh"
#include "grocker/oci/file.hh"
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
    std::string pipConf, indexUrl, findLinks;
    std::vector<std::string> outputs;
    std::string resultFile;
    bool buildDependencies = true;
    bool push = true;
    bool refresh = false; // resolve the dependencies again: no cached compile or resolution
    std::string compression = "gzip";
    std::string baseImage; // instead of the runtime's registry image (a mirror's copy)
};

// RELEASE as given: name[extras]==version, a wheel file, or a project folder.
struct Release {
    enum class Kind { Spec, Wheel, Project } kind;
    std::string name, version, extras; // for Spec; for the others, known after compile
    fs::path path;                     // Wheel or Project
    std::string text;
};

bool nameChars(std::string_view s, std::string_view extra)
{
    if (s.empty() || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
    for (char c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && extra.find(c) == std::string_view::npos) return false;
    return true;
}

// Splits "X[extras]" into X and extras; false when the brackets are malformed.
bool splitExtras(std::string_view text, std::string& base, std::string& extras)
{
    base = std::string(text);
    extras.clear();
    if (!text.ends_with("]")) return text.find('[') == std::string_view::npos;
    auto open = text.find('[');
    if (open == std::string_view::npos) return false;
    base = std::string(text.substr(0, open));
    extras = std::string(text.substr(open + 1, text.size() - open - 2));
    return nameChars(extras, "._,-");
}

Release parseRelease(const std::string& text)
{
    Release r{Release::Kind::Spec, {}, {}, {}, {}, text};
    // NAME[EXTRAS]==VERSION (PEP 508 names, PEP 440 versions, loosely)
    if (auto eq = text.find("=="); eq != std::string::npos) {
        std::string base, extras;
        std::string_view version = std::string_view(text).substr(eq + 2);
        if (splitExtras(std::string_view(text).substr(0, eq), base, extras) && nameChars(base, "._-") &&
            nameChars(version, "._+!-")) {
            r.name = base;
            r.extras = extras;
            r.version = std::string(version);
            return r;
        }
        throw UsageError("RELEASE '", text, "' is not NAME[EXTRAS]==VERSION, a .whl file or a project folder");
    }
    std::string base, extras;
    bool bracketed = splitExtras(text, base, extras);
    if (bracketed && base.ends_with(".whl")) {
        r.kind = Release::Kind::Wheel;
        r.path = fs::absolute(base);
        r.extras = extras;
        if (!fs::is_regular_file(r.path)) throw UsageError("RELEASE '", text, "': no wheel file '", r.path.string(), "'");
        return r;
    }
    // A project folder, or path/to/project[EXTRAS].
    bool whole = fs::is_directory(text);
    if (whole || (bracketed && !extras.empty() && fs::is_directory(base))) {
        r.kind = Release::Kind::Project;
        r.path = fs::canonical(whole ? text : base);
        r.extras = whole ? "" : extras;
        if (!fs::exists(r.path / "pyproject.toml") && !fs::exists(r.path / "setup.py"))
            throw UsageError("RELEASE '", text, "': the folder has no pyproject.toml or setup.py");
        return r;
    }
    throw UsageError("RELEASE '", text, "' is not NAME[EXTRAS]==VERSION, a .whl file or a project folder");
}

std::string shellQuote(const std::string& s)
{
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

std::string joinQuoted(const std::vector<std::string>& words)
{
    std::string s;
    for (auto& w : words) s += (s.empty() ? "" : " ") + shellQuote(w);
    return s;
}

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

struct Wheel {
    std::string name, version, file;
    bool requested = false;
};

std::vector<Wheel> readReport(const fs::path& path)
{
    json j;
    try {
        j = json::parse(readFile(path));
    } catch (std::exception& e) {
        throw Error("the compile step wrote no readable pip report at '", path.string(), "': ", e.what());
    }
    std::vector<Wheel> out;
    for (auto& item : j.value("install", json::array())) {
        Wheel w;
        w.name = item.at("metadata").at("name").get<std::string>();
        w.version = item.at("metadata").at("version").get<std::string>();
        std::string url = item.at("download_info").at("url").get<std::string>();
        w.file = fs::path(url).filename().string();
        w.requested = item.value("requested", false);
        out.push_back(w);
    }
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
    return out;
}

std::string normalisedName(std::string n)
{
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return c == '_' || c == '.' ? '-' : std::tolower(c); });
    return n;
}

// Folders the sandbox's grocker user (uid 1000 inside) must write, and grocker read afterwards
// (rootless, uid 1000 inside is a subordinate id outside: the folders stay readable by all).
void prepareForGrocker(Context& ctx, const std::vector<fs::path>& dirs)
{
    for (auto& d : dirs) {
        fs::create_directories(d);
        if (::chmod(d.c_str(), 0755) < 0) throw SysError("unable to make '", d.string(), "' readable");
    }
    sandbox::runInUserNamespace(ctx.map, [&] {
        for (auto& d : dirs)
            if (::chown(d.c_str(), 1000, 1000) < 0) throw SysError("unable to give '", d.string(), "' to user grocker");
    });
}

std::string fileDigest(const std::string& path) { return path.empty() ? "" : sha256(readFile(path)).str(); }

// The content of a folder: paths, modes and bytes, in order; build outputs left out.
std::string treeDigest(const fs::path& dir)
{
    std::vector<std::string> lines;
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
        auto name = it->path().filename().string();
        if (it->is_directory() && (name == ".git" || name == "build" || name == "dist" || name == "__pycache__" ||
                                      name.ends_with(".egg-info") || name == ".tox" || name == ".venv")) {
            it.disable_recursion_pending();
            continue;
        }
        auto rel = fs::relative(it->path(), dir).string();
        struct stat st;
        if (::lstat(it->path().c_str(), &st) < 0) continue;
        std::string line = rel + " " + std::to_string(st.st_mode);
        if (S_ISREG(st.st_mode)) line += " " + sha256(readFile(it->path())).str();
        if (S_ISLNK(st.st_mode)) line += " " + fs::read_symlink(it->path()).string();
        lines.push_back(line);
    }
    std::sort(lines.begin(), lines.end());
    std::string all;
    for (auto& l : lines) all += l + "\n";
    return sha256(all).str();
}

std::string sourceDigest(const Release& r)
{
    switch (r.kind) {
    case Release::Kind::Project: return treeDigest(r.path);
    case Release::Kind::Wheel: return fileDigest(r.path.string());
    case Release::Kind::Spec: break;
    }
    return "";
}


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

// "scheme://user:secret@host/..." → "scheme://user:***@host/...", for messages.
std::string withoutPassword(const std::string& url)
{
    auto scheme = url.find("://");
    if (scheme == std::string::npos) return url;
    auto hostStart = scheme + 3;
    auto at = url.find('@', hostStart);
    auto slash = url.find('/', hostStart);
    if (at == std::string::npos || (slash != std::string::npos && at > slash)) return url;
    auto colon = url.find(':', hostStart);
    if (colon == std::string::npos || colon > at) return url.substr(0, hostStart) + "***" + url.substr(at);
    return url.substr(0, colon + 1) + "***" + url.substr(at);
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
        cacheKey({"root", GROCKER_VERSION, rtName, baseIdentity, std::to_string(ctx.epoch), compressionName(compression).data(),
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

    // 5. compile: index settings and their secrets reach this step's environment only.
    auto wheels = store.root() / "wheels";
    auto out = makeTempDir(store.tmpDir(), ".tmp-" + std::to_string(::getpid()) + "-out-");
    struct RemoveDir {
        const sandbox::IdMap& map;
        fs::path p;
        ~RemoveDir()
        {
            try {
                sandbox::runInUserNamespace(map, [&] {
                    std::error_code ec;
                    fs::remove_all(p, ec);
                });
            } catch (...) {
            }
        }
    } removeOut{ctx.map, out};
    // The compile script's caches, read-only inside: earlier resolutions (kept with the compile
    // cache's entries, in the same form) and prepared build environments.
    auto compileCacheDir = store.root() / "cache" / "compile";
    auto buildEnvs = store.root() / "cache" / "build-envs";
    for (auto& d : {compileCacheDir, buildEnvs}) {
        fs::create_directories(d);
        ::chmod(d.c_str(), 0755);
    }
    prepareForGrocker(ctx, {wheels, out});
    Step compile;
    compile.name = "compile: " + release.text;
    compile.hostNetwork = true;
    compile.user = "grocker";
    compile.workdir = "/home/grocker";
    compile.cached = false;
    compile.volumes = {{wheels, "/wheels", true}, {out, "/out", false}, {compileCacheDir, "/cache/compile", true},
        {buildEnvs, "/cache/build-envs", true}};
    std::string target = release.text;
    if (release.kind == Release::Kind::Project) {
        compile.volumes.push_back({release.path, "/src/project", true});
        target = "/src/project";
    } else if (release.kind == Release::Kind::Wheel) {
        compile.volumes.push_back({release.path, "/src/" + release.path.filename().string(), true});
        target = "/src/" + release.path.filename().string();
    }
    std::string indexKey = cacheKey({"index", compiler.manifestDescriptor.digest.str(), std::to_string(ctx.epoch),
        fileDigest(o.pipConf), o.indexUrl, o.findLinks.empty() ? "" : treeDigest(o.findLinks)});
    // A NAME[EXTRAS]==VERSION release carries its extras itself.
    // SOURCE_DATE_EPOCH: wheels built from sdists and folders get fixed zip times, so the same
    // sources give the same wheel bytes (and layers) in every build, concurrent ones included.
    compile.env = {"HOME=/home/grocker", "SOURCE_DATE_EPOCH=" + std::to_string(ctx.epoch),
        "GROCKER_EXTRAS=" + (release.kind == Release::Kind::Spec ? std::string() : release.extras),
        "GROCKER_REFRESH=" + std::string(o.refresh ? "1" : ""), "GROCKER_INDEX_KEY=" + indexKey, "GROCKER_COMPILER=" + compiler.manifestDescriptor.digest.str()};
    if (!config.pipConstraint.empty()) {
        compile.volumes.push_back({config.pipConstraint, "/run/grocker/constraints.txt", true});
        compile.env.push_back("GROCKER_PIP_CONSTRAINT=/run/grocker/constraints.txt");
    }
    if (!o.pipConf.empty()) {
        compile.volumes.push_back({fs::canonical(o.pipConf), "/run/grocker/pip.conf", true});
        compile.env.push_back("PIP_CONFIG_FILE=/run/grocker/pip.conf");
    }
    if (!o.indexUrl.empty()) compile.env.push_back("PIP_INDEX_URL=" + o.indexUrl);
    if (!o.findLinks.empty()) {
        compile.volumes.push_back({fs::canonical(o.findLinks), "/run/grocker/find-links", true});
        compile.env.push_back("PIP_FIND_LINKS=/run/grocker/find-links");
    }
    // A runtime with no uwsgi for its Python (a registry image's own Python: Debian's plugin is
    // built for Debian's) gets the PyPI uwsgi, Python built in, in the venv for wsgi services.
    std::string moreRequirements;
    if (runtime.uwsgiPlugin.empty() &&
        std::any_of(config.services.begin(), config.services.end(), [](auto& s) { return s.second.kind == Service::Kind::Wsgi; }))
        moreRequirements = "uwsgi";
    compile.env.push_back("GROCKER_REQUIREMENTS=" + moreRequirements);
    compile.argv = {"/usr/local/bin/grocker-compile", target};
    // Cached on everything that decides what pip resolves; the wheel cache must still hold
    // every wheel of the report, unchanged.
    std::string compileKey = cacheKey({"compile", GROCKER_VERSION, indexKey, release.text, release.extras, sourceDigest(release),
        fileDigest(config.pipConstraint), moreRequirements});
    auto compileCache = compileCacheDir / (compileKey + ".json");
    auto compiling = keyLock(ctx, compileKey); // the same compile in another build: wait, then reuse
    std::vector<Wheel> installed;
    // Each wheel of the cache hashed once: for the compile cache entry and the runner's step keys.
    std::map<std::string, std::string> wheelDigestMemo;
    auto wheelDigest = [&](const std::string& file) -> const std::string& {
        auto it = wheelDigestMemo.find(file);
        if (it == wheelDigestMemo.end()) it = wheelDigestMemo.emplace(file, fileDigest((wheels / file).string())).first;
        return it->second;
    };
    if (fs::exists(compileCache) && !o.refresh) {
        try {
            auto cached = json::parse(readFile(compileCache));
            writeFileAtomic(out / "cached-report.json", cached.at("report").dump());
            installed = readReport(out / "cached-report.json");
            for (auto& w : installed)
                if (!fs::exists(wheels / w.file) ||
                    wheelDigest(w.file) != cached.at("wheels").at(w.file).get<std::string>())
                    installed.clear();
        } catch (std::exception&) {
            installed.clear();
        }
    }
    if (installed.empty()) {
        runOnly(ctx, compiler, compile);
        installed = readReport(out / "report.json");
        // Into the shared caches, each thing whole (rename): the wheels the step made (a rebuilt
        // one replacing the old; those of a reused resolution are there already), its new
        // resolutions, its new build environments (one made meanwhile by another build stays).
        sandbox::runInUserNamespace(ctx.map, [&] {
            for (auto& w : installed) {
                auto made = out / "wheels" / w.file;
                if (::access(made.c_str(), F_OK) == 0 && ::rename(made.c_str(), (wheels / w.file).c_str()) < 0)
                    throw SysError("unable to move the wheel '", w.file, "' into the wheel cache '", wheels.string(), "'");
            }
            std::error_code ec;
            for (auto& e : fs::directory_iterator(out / "resolutions", ec))
                if (e.path().extension() == ".json" &&
                    ::rename(e.path().c_str(), (compileCacheDir / e.path().filename()).c_str()) < 0)
                    throw SysError("unable to move the resolution '", e.path().string(), "' into '", compileCacheDir.string(), "'");
            for (auto& e : fs::directory_iterator(out / "build-envs", ec)) {
                if (e.path().extension() == ".tmp") continue;
                auto dest = buildEnvs / e.path().filename();
                if (::rename(e.path().c_str(), dest.c_str()) < 0 && errno != ENOTEMPTY && errno != EEXIST)
                    throw SysError("unable to move the build environment '", e.path().string(), "' into '", buildEnvs.string(), "'");
            }
        });
        wheelDigestMemo.clear(); // the step may have replaced wheels hashed above
        json digests = json::object();
        for (auto& w : installed) digests[w.file] = wheelDigest(w.file);
        writeFileAtomic(compileCache,
            canonical(json{{"report", json::parse(readFile(out / "report.json"))}, {"wheels", digests}}));
    } else if (!ctx.quiet) {
        std::cerr << compile.name << ": cached\n";
    }
    const Wheel* app = nullptr;
    for (auto& w : installed)
        if (w.requested) app = &w;
    if (!app) throw Error("pip's report names no requested package for '", release.text, "'");
    std::string appName = app->name, appVersion = app->version;

    // 6. runner: dependencies, then the app, then the entrypoint, so a new version of the app
    // changes only the last layers.
    auto wheelDigests = [&](const std::vector<const Wheel*>& ws) {
        std::string s;
        for (auto* w : ws) s += w->file + "=" + wheelDigest(w->file) + "\n";
        return s;
    };
    // Installed by src/install-wheels.py with the venv's own Python (no pip: importing it costs
    // more than installing a small app), mounted for the step only, never in the layer: no
    // index, no resolution (the compile step's report is the list), no build dependency.
    auto installer = store.tmpDir() / tempName();
    writeFileAtomic(installer, installWheelsScript, 0644);
    AutoDelete removeInstaller(installer);
    auto installStep = [&](const std::string& name, const std::vector<const Wheel*>& ws, bool makeVenv) {
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
    std::vector<const Wheel*> deps, appOnly{app};
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
    std::string baseName = config.imageBaseName.empty() ? normalisedName(appName) : config.imageBaseName;
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
    b->add_option("--index-url", bo.indexUrl, "Python package index URL");
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
