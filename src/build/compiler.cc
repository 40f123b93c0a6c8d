// The compile pass: the build environment, a box for each project and sdist, the wheels the
// host takes from them (checked, then filed under keys it made), and the order it all runs in.

#include "compiler.hh"

#include "embedded-scripts.hh"
#include "grocker/display.hh"
#include "grocker/error.hh"
#include "grocker/oci/image.hh"
#include "remote-cache.hh"

#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <deque>
#include <fcntl.h>
#include <iostream>
#include <set>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace grocker::build::compiling {

namespace fs = std::filesystem;
using namespace grocker::oci;
using nlohmann::json;

bool Compiler::haveFile(const Digest& d)
{
    auto it = verified_.find(d.str());
    if (it != verified_.end()) return it->second;
    bool ok = false;
    try {
        ok = hashPath(filePath(store_, d)) == d;
    } catch (Error&) {
    }
    return verified_[d.str()] = ok;
}

// The wheels of the compiler image's /usr/share/python-wheels (Debian's *-whl packages), by
// file name: read from its unpacked layers, the top one first, whiteouts honoured.
const std::map<std::string, fs::path>& Compiler::compilerWheels()
{
    if (compilerWheels_) return *compilerWheels_;
    // Its layers in the store first: only a build that runs a box or reads these needs them.
    if (req_.needCompiler) req_.needCompiler();
    compilerWheels_.emplace();
    std::set<std::string> seen;
    for (auto& layer : sandbox::prepareLowerDirs(store_, *req_.compiler, ctx_.map)) {
        std::error_code ec;
        for (auto& e : fs::directory_iterator(layer / "usr/share/python-wheels", ec)) {
            auto name = e.path().filename().string();
            if (!seen.insert(name).second) continue;
            struct stat st;
            if (::lstat(e.path().c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
                name.ends_with(".whl"))
                (*compilerWheels_)[name] = e.path();
        }
    }
    return *compilerWheels_;
}

// The default build environment (setuptools and wheel from the compiler image), extracted by the
// host: boxes build sdists in it without an index (pip --no-build-isolation).
void Compiler::makeBuildEnv()
{
    if (!buildEnv_.empty()) return;
    std::map<std::string, std::pair<std::string, Digest>>
        picked; // setuptools, wheel → file, digest
    for (auto& [file, path] : compilerWheels()) {
        auto w = parseWheelName(file);
        if (!w) continue;
        auto n = normalisePythonName(w->name);
        if (n != "setuptools" && n != "wheel") continue;
        AutoCloseFD fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        if (!fd) throw SysError("unable to read '", path.string(), "' of the compiler image");
        picked[n] = {file, putFile(store_, fd.get(), "'" + file + "' of the compiler image")};
    }
    if (picked.size() != 2)
        throw Error("the compiler image has no setuptools and wheel wheels in "
                    "/usr/share/python-wheels: its "
                    "build dependencies lack python3-setuptools-whl or python3-wheel-whl");
    json inputs = {"build-env", GROCKER_VERSION, compilerDigest(),
                   picked["setuptools"].second.str(), picked["wheel"].second.str()};
    auto dir = cacheDir(store_) / "build-envs";
    fs::create_directories(dir);
    buildEnv_ = dir / keyOf(inputs);
    if (fs::exists(buildEnv_ / ".grocker-inputs.json")) return;
    auto tmp = makeTempDir(dir, ".tmp-" + std::to_string(::getpid()) + "-env-");
    AutoDelete removeTmp(tmp);
    for (auto& [n, fileDigest] : picked)
        extractWheel(filePath(store_, fileDigest.second), tmp);
    // Whose it is: `grocker purge` removes it with its compiler image.
    writeFileAtomic(tmp / ".grocker-compiler", compilerDigest() + "\n");
    writeFileAtomic(tmp / ".grocker-inputs.json", canonical(inputs));
    ::chmod(tmp.c_str(), 0755);
    // Made whole and renamed into place: one under its name is complete (another build's, made
    // meanwhile, stays: it may be in use).
    if (::rename(tmp.c_str(), buildEnv_.c_str()) < 0 && errno != ENOTEMPTY && errno != EEXIST)
        throw SysError("unable to move the build environment into '", buildEnv_.string(), "'");
}

Step Compiler::boxStep(const std::string& name, const std::vector<std::string>& args,
                       std::vector<sandbox::Volume> volumes, const OutDir& out)
{
    makeBuildEnv();
    Step s = req_.boxTemplate;
    s.name = name;
    s.user = compileStep::user;
    s.workdir = compileStep::home;
    s.cached = false;
    for (auto& v : volumes)
        s.volumes.push_back(v);
    s.volumes.push_back({out.path, compileStep::outDir, false});
    s.volumes.push_back({buildEnv_, compileStep::buildEnvDir, true});
    s.argv = {compileStep::scriptPath};
    for (auto& a : args)
        s.argv.push_back(a);
    return s;
}

// The one wheel a box left in its /out, copied into cache/files: its file name checked.
Digest Compiler::takeWheel(const OutDir& out, const std::string& what, std::string& file)
{
    AutoCloseFD dir;
    std::vector<std::string> wheels;
    for (auto& n : outNames(out.path, dir))
        if (n.ends_with(".whl")) wheels.push_back(n);
    if (wheels.size() != 1)
        throw Error("the build of ", what, " left ", wheels.size(), " wheels, not one: refused");
    file = wheels[0];
    if (!parseWheelName(file))
        throw Error("the build of ", what, " made '", file.substr(0, 200),
                    "', which is not a wheel file name: refused");
    auto fd =
        openUntrusted(dir.get(), file, "the wheel '" + file + "' made by the build of " + what);
    return putFile(store_, fd.get(), "the wheel '" + file + "'");
}

// The wheel filed under `key`: in the store, else in the registry's build cache (then filed in
// the store as one built here).
std::optional<CompiledWheel> Compiler::cachedWheel(const std::string& key, const json& inputs,
                                                   const Expected& expect)
{
    auto path = cacheDir(store_) / "wheels" / (key + ".json");
    if (fs::exists(path)) try {
            auto j = json::parse(readFile(path));
            if (keyOf(j.at("inputs")) == key) {
                CompiledWheel w{j.at("name").get<std::string>(),
                                j.at("version").get<std::string>(),
                                j.at("file").get<std::string>(),
                                Digest::parse(j.at("digest").get<std::string>()),
                                {},
                                false};
                if (parseWheelName(w.file) && haveFile(w.digest)) {
                    w.path = filePath(store_, w.digest);
                    intoRemote(key, inputs, w);
                    return w;
                }
            }
        } catch (std::exception&) {
            // a damaged entry is a miss, made again
        }
    if (auto w = sharedPureWheel(key, inputs, expect)) return w;
    return remoteWheel(key, inputs, expect);
}

void Compiler::intoRemote(const std::string& key, const json& inputs, const CompiledWheel& w)
{
    if (req_.remote && req_.remote->writes() && !req_.remote->has("wheel", key))
        req_.remote->putWheel(key, inputs, w.name, w.version, w.file, w.path);
}

json Compiler::pureInputs(const json& inputs) const
{
    // {"wheel", version, compiler, index key, kind, source}
    return {"pure-wheel", GROCKER_VERSION, req_.pureKey, inputs.at(4), inputs.at(5)};
}

// A pure-Python wheel built from the same source by another platform's compiler of this runtime
// (an amd64 build's, for an arm64 runner): taken as it is, with nothing run under emulation, and
// filed under this compiler's key. It is trusted as the wheel that build made: the same build
// code made it.
std::optional<CompiledWheel> Compiler::sharedPureWheel(const std::string& key, const json& inputs,
                                                       const Expected& expect)
{
    if (req_.pureKey.empty()) return std::nullopt;
    auto pure = pureInputs(inputs);
    auto path = cacheDir(store_) / "wheels" / (keyOf(pure) + ".json");
    if (!fs::exists(path)) return std::nullopt;
    try {
        auto j = json::parse(readFile(path));
        auto file = j.at("file").get<std::string>();
        auto d = Digest::parse(j.at("digest").get<std::string>());
        if (keyOf(j.at("inputs")) != keyOf(pure) || !file.ends_with("-none-any.whl") ||
            !parseWheelName(file) || !haveFile(d))
            return std::nullopt;
        auto w = checkedWheel(key, inputs, "another platform's build made", file, d, expect);
        say(ctx_, shownName(ctx_, "compile: " + w.name + " " + w.version) +
                      ": the pure-Python wheel another platform's build made");
        // In the registry's build cache under this platform's key: a runner building this
        // platform alone finds it there.
        intoRemote(key, inputs, w);
        return w;
    } catch (std::exception&) {
        return std::nullopt; // a damaged entry is a miss, made again
    }
}

// The wheel the registry's build cache holds under `key`, checked as one a box made (its name,
// version and metadata), then filed in the store. Any failure is a miss, with a warning.
std::optional<CompiledWheel> Compiler::remoteWheel(const std::string& key, const json& inputs,
                                                   const Expected& expect)
{
    if (!req_.remote) return std::nullopt;
    auto found = req_.remote->wheel(key);
    if (!found) return std::nullopt;
    auto what = "the wheel " + found->file + " of the build cache";
    try {
        AutoCloseFD fd(::open(found->blob.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        if (!fd) throw SysError("unable to read ", what, " in the store");
        auto d = putFile(store_, fd.get(), what);
        if (d != found->digest)
            throw Error(what, " has digest ", d.str(), ", not ", found->digest.str());
        return checkedWheel(key, inputs,
                            "the build cache of " + req_.remote->repository() + " holds",
                            found->file, d, expect);
    } catch (Error& e) {
        display().warning(concat(e.message(), "; building it"));
        return std::nullopt;
    }
}

// A wheel made by a box or found in the registry's build cache, in cache/files (`made` says
// which, as "the build of NAME VERSION made"): its metadata checked (the name and version it must
// have: an sdist's; none for a project, whose name its own build code decides), then filed under
// the host's key.
CompiledWheel Compiler::checkedWheel(const std::string& key, const json& inputs,
                                     const std::string& made, const std::string& file,
                                     const Digest& d, const Expected& expect)
{
    auto path = filePath(store_, d);
    DistMetadata m;
    try {
        m = readWheelMetadata(path, file);
    } catch (Error& e) {
        e.addContext(made + " a wheel that is refused");
        throw;
    }
    if (expect && (normalisePythonName(m.name) != normalisePythonName(expect->first) ||
                   !sameVersion(m.version, expect->second)))
        throw Error(made, " a wheel of ", m.name, " ", m.version, " ('", file, "'), not of ",
                    expect->first, " ", expect->second, ": refused");
    json entry = {{"inputs", inputs},
                  {"name", m.name},
                  {"version", m.version},
                  {"file", file},
                  {"digest", d.str()}};
    writeEntry(cacheDir(store_) / "wheels" / (key + ".json"), entry);
    if (!req_.pureKey.empty() && file.ends_with("-none-any.whl") && inputs.at(0) == "wheel") {
        auto pure = pureInputs(inputs);
        entry["inputs"] = pure;
        // (Not written again when it says this already: taken from it, by sharedPureWheel.)
        auto purePath = cacheDir(store_) / "wheels" / (keyOf(pure) + ".json");
        bool same = false;
        try {
            same = json::parse(readFile(purePath)) == entry;
        } catch (std::exception&) {
        }
        if (!same) writeEntry(purePath, entry);
    }
    verified_[d.str()] = true;
    return CompiledWheel{m.name, m.version, file, d, path, false};
}

// The wheel a box left in `out`, checked and filed under the host's key, and in the registry's
// build cache when it is written.
CompiledWheel Compiler::takeBuilt(const std::string& key, const json& inputs,
                                  const std::string& what, const OutDir& out,
                                  const Expected& expect)
{
    std::string file;
    Digest d = takeWheel(out, what, file);
    auto w = checkedWheel(key, inputs, "the build of " + what + " made", file, d, expect);
    if (req_.remote) req_.remote->putWheel(key, inputs, w.name, w.version, w.file, w.path);
    return w;
}

// The release given as a wheel file: copied into the cache as it is.
CompiledWheel Compiler::releaseWheel()
{
    auto& r = req_.release;
    AutoCloseFD fd(::open(r.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw SysError("unable to read the wheel '", r.path.string(), "'");
    auto d = putFile(store_, fd.get(), "the wheel '" + r.path.string() + "'");
    auto m = readWheelMetadata(r.path);
    verified_[d.str()] = true;
    return CompiledWheel{m.name, m.version,           r.path.filename().string(),
                         d,      filePath(store_, d), true};
}

// A release named NAME==VERSION whose find-links folder or index has a pure-Python wheel of
// that version (the common case for an app published by its own CI): that wheel, fetched and
// checked as any file of a resolution (the index's hash, then its metadata), so that the
// release is resolved by the app's requirements, not by its version: a new release whose
// requirements did not change takes the last resolution (and a fresh runner the build cache's)
// instead of resolving in a box over the compiler. None otherwise: resolved by its name.
std::optional<CompiledWheel> Compiler::indexWheel()
{
    auto& r = req_.release;
    auto pure = [&](const std::string& file) {
        auto w = parseWheelName(file);
        return w && normalisePythonName(w->name) == normalisePythonName(r.name) &&
               sameVersion(w->version, r.version) && w->build.empty() && w->abi == "none" &&
               w->platform == "any" && (w->python == "py3" || w->python == "py2.py3");
    };
    std::optional<std::pair<std::string, Digest>> found; // file, digest
    std::error_code ec;
    if (!req_.index.findLinks.empty())
        for (auto& e : fs::directory_iterator(req_.index.findLinks, ec)) {
            auto file = e.path().filename().string();
            if (!pure(file) || !e.is_regular_file(ec)) continue;
            found.emplace(file,
                          putHostFile(store_, e.path(), concat("'", e.path().string(), "'"), true));
            break;
        }
    auto pages = pagesOf(r.name);
    for (size_t i = 0; !found && i < pages.size(); i++)
        for (auto& l : page(pages[i]))
            if (pure(l.file)) {
                found.emplace(l.file, download(registry::resolveUrl(pages[i], l.href), l.sha256,
                                               "'" + l.file + "'"));
                break;
            }
    if (!found) return std::nullopt;
    auto& [file, d] = *found;
    auto path = filePath(store_, d);
    auto m = readWheelMetadata(path, file);
    if (normalisePythonName(m.name) != normalisePythonName(r.name) ||
        !sameVersion(m.version, r.version))
        throw Error("'", file, "' is a wheel of ", m.name, " ", m.version, ", not of ", r.text,
                    ": refused");
    verified_[d.str()] = true;
    say(ctx_, "release: " + r.text + ": the wheel " + file);
    return CompiledWheel{m.name, m.version, file, d, path, true};
}

// The project's wheel, from the cache or its box. A new build of the project with no earlier
// resolution at hand (a first build, --refresh) also resolves its dependencies in a second
// box at the same time, from the project's folder: `resolved` holds that resolution when it
// agrees with the wheel the project box made (same name, version and requirements), which
// the host checks as any other.
CompiledWheel Compiler::projectWheel(const json& hintBase, std::optional<Resolution>& resolved)
{
    auto& r = req_.release;
    json inputs = {"wheel",          GROCKER_VERSION,
                   compilerDigest(), req_.indexKey,
                   "project",        r.treeDigest.empty() ? treeDigest(r.path) : r.treeDigest};
    auto key = keyOf(inputs);
    // What the SBOM says the wheel was built from: the project's folder, its tree digest.
    auto sourced = [&](CompiledWheel w) {
        auto folder = fs::absolute(r.path).lexically_normal();
        if (folder.filename().empty()) folder = folder.parent_path();
        w.sourceFile = folder.filename().string();
        w.sourceDigest = inputs.back().get<std::string>();
        w.fromProject = true;
        return w;
    };
    auto lock = keyLock(ctx_, key); // the same project in another build: wait, then reuse
    if (auto w = cachedWheel(key, inputs, std::nullopt)) {
        skipped(ctx_, "compile: " + r.text, "cached");
        w->requested = true;
        return sourced(*w);
    }
    OutDir out(ctx_);
    StartedStep box(ctx_, *req_.compiler,
                    boxStep("compile: " + r.text,
                            {compileStep::projectMode, compileStep::projectDir},
                            {{r.path, compileStep::projectDir, true}}, out));
    std::optional<OutDir> resolveOut;
    std::optional<StartedStep> resolveBox;
    // Without a hint, the resolution is started beside the project's box; with a build cache in
    // a registry, it is looked up there once the wheel says what the project requires (a fresh
    // runner's new release of a project resolved before).
    // (Not for another platform than the machine's, whose resolution may be made from the
    // machine's platform's, with nothing emulated.)
    if (!resolutionHinted(hintBase) && !req_.remote && !req_.native) {
        checkIndexes();
        resolveOut.emplace(ctx_);
        auto target = std::string(earlyProject) + (r.extras.empty() ? "" : "[" + r.extras + "]");
        resolveBox.emplace(ctx_, *req_.compiler,
                           boxStep("resolve: " + r.text,
                                   resolveArgs(compileStep::resolveProjectMode, target),
                                   {{r.path, compileStep::projectDir, true}}, *resolveOut));
    }
    box.finish();
    auto w = takeBuilt(key, inputs, r.text, out, std::nullopt);
    w.requested = true;
    if (resolveBox) {
        // Any failure of the early resolution only loses the time it saved: resolved again, from
        // the wheel, as without it (and a real failure then says what failed).
        try {
            resolveBox->finish();
            auto m = readWheelMetadata(w.path, w.file);
            resolved = readReport(*resolveOut, w, "file://" + std::string(earlyProject), &m);
        } catch (Error& e) {
            say(ctx_,
                "resolve: " + r.text + ": resolving again from its wheel (" + e.message() + ")");
            resolved.reset();
        }
    }
    return sourced(w);
}

std::vector<CompiledWheel> Compiler::run()
{
    auto& r = req_.release;
    std::optional<CompiledWheel> app;
    std::optional<Resolution> early;
    if (r.kind == Release::Kind::Wheel) app = releaseWheel();
    if (r.kind == Release::Kind::Spec && !r.version.empty()) app = indexWheel();
    if (r.kind == Release::Kind::Project) app = projectWheel(resolutionInputs(std::nullopt), early);
    auto inputs = resolutionInputs(app);
    Resolution resolution;
    if (early) {
        auto lock = keyLock(ctx_, keyOf(inputs));
        keepResolution(inputs, *early);
        resolution = std::move(*early);
    } else {
        resolution = resolve(app, inputs);
    }
    auto wheels = wheelsOf(app, resolution.dists);
    if (resolution.fromNative) {
        // Kept once its sdists' wheels here require what the machine's platform's do; else
        // resolved here after all.
        if (auto why = unlikeNative(resolution, wheels); !why.empty()) {
            say(ctx_, shownName(ctx_, "dependencies of " + (app ? app->name : r.text)) +
                          ": resolved under emulation: " + why);
            resolution = resolveInBox(app);
            wheels = wheelsOf(app, resolution.dists);
        }
        auto lock = keyLock(ctx_, keyOf(inputs));
        keepResolution(inputs, resolution);
    }
    std::sort(wheels.begin(), wheels.end(), [](auto& a, auto& b) {
        return normalisePythonName(a.name) < normalisePythonName(b.name);
    });
    return wheels;
}

std::vector<CompiledWheel> Compiler::wheelsOf(const std::optional<CompiledWheel>& app,
                                              const std::vector<Dist>& dists)
{
    // The sdists' boxes run side by side, as many as there are processors. Each holds its key's
    // lock until its wheel is filed, and the locks are taken in the order of their keys, so that
    // two builds waiting for each other's packages cannot wait for ever.
    struct Building {
        size_t index;
        std::string key, what;
        json inputs;
        std::pair<std::string, std::string> expect;
        FileLock lock;
        std::unique_ptr<OutDir> out;
        std::unique_ptr<StartedStep> box;
    };
    std::deque<Building> building;
    std::vector<CompiledWheel> wheels(dists.size());
    struct Sdist {
        std::string key;
        size_t index;
        json inputs;
    };
    std::vector<Sdist> sdists;
    for (size_t i = 0; i < dists.size(); i++) {
        auto& d = dists[i];
        if (d.app && app)
            wheels[i] = *app;
        else if (!d.sdist)
            wheels[i] = CompiledWheel{
                d.name, d.version, d.file, d.digest, filePath(store_, d.digest), d.app};
        else {
            auto in = sdistWheelInputs(compilerDigest(), req_.indexKey, d.digest);
            sdists.push_back({keyOf(in), i, in});
        }
    }
    std::sort(sdists.begin(), sdists.end(), [](auto& a, auto& b) { return a.key < b.key; });
    if (req_.remote) {
        std::vector<std::string> keys;
        for (auto& s : sdists)
            if (!fs::exists(cacheDir(store_) / "wheels" / (s.key + ".json"))) keys.push_back(s.key);
        req_.remote->prefetch(keys);
    }
    auto finishOne = [&] {
        auto& b = building.front();
        b.box->finish();
        wheels[b.index] = takeBuilt(b.key, b.inputs, b.what, *b.out, b.expect);
        wheels[b.index].requested = dists[b.index].app;
        building.pop_front();
    };
    size_t slots = std::max(1u, std::thread::hardware_concurrency());
    for (auto& [key, i, in] : sdists) {
        auto& d = dists[i];
        auto what = d.name + " " + d.version;
        auto lock = keyLock(ctx_, key); // the same package in another build: wait, then reuse
        if (auto w = cachedWheel(key, in, std::pair{d.name, d.version})) {
            skipped(ctx_, "compile: " + what, "cached");
            wheels[i] = *w;
            wheels[i].requested = d.app;
            continue;
        }
        ensureFile(d); // not fetched yet when the resolution came from the registry's cache
        if (building.size() >= slots) finishOne();
        auto out = std::make_unique<OutDir>(ctx_);
        auto box = std::make_unique<StartedStep>(
            ctx_, *req_.compiler,
            boxStep("compile: " + what, {compileStep::sdistMode, compileStep::sdistPath(d.file)},
                    {{filePath(store_, d.digest), compileStep::sdistPath(d.file), true}}, *out));
        building.push_back({i,
                            key,
                            what,
                            in,
                            {d.name, d.version},
                            std::move(lock),
                            std::move(out),
                            std::move(box)});
    }
    while (!building.empty())
        finishOne();
    for (size_t i = 0; i < dists.size(); i++)
        if (dists[i].sdist && wheels[i].sourceFile.empty()) {
            wheels[i].sourceFile = dists[i].file;
            wheels[i].sourceDigest = dists[i].digest.str();
        }
    return wheels;
}

} // namespace grocker::build::compiling

namespace grocker::build {

std::vector<CompiledWheel> compileRelease(Context& ctx, const CompileRequest& request)
{
    compiling::Compiler c(ctx, request);
    return c.run();
}

} // namespace grocker::build
