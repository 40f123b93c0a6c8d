// The compile pass's resolution: pip's report from a box, read as data and checked, every file
// it names fetched by the host (the find-links folder, the compiler's wheels, the index with
// the hashes it publishes), and resolutions and hints kept for the next build.

#include "compiler.hh"
#include "embedded-scripts.hh"
#include "grocker/display.hh"
#include "grocker/error.hh"
#include "grocker/oci/image.hh"
#include "remote-cache.hh"

#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <cctype>
#include <deque>
#include <fcntl.h>
#include <functional>
#include <iostream>
#include <set>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace grocker::build::compiling {

namespace fs = std::filesystem;
using namespace grocker::oci;
using nlohmann::json;

const std::vector<IndexLink>& Compiler::page(const std::string& url)
{
    if (auto it = pages_.find(url); it != pages_.end()) return it->second;
    registry::HttpRequest q;
    q.url = url;
    q.headers = {{"Accept", "text/html"}};
    q.maxBody = 64 << 20;
    q.peer = "package index";
    registry::HttpResponse a;
    try {
        a = http().perform(q);
    } catch (Error& e) {
        throw Error("unable to read the package index page ",
                    withoutPassword(registry::redactUrl(url)), ": ", e.message(),
                    "; check the index URL and that the index is reachable");
    }
    std::vector<IndexLink> links;
    if (a.ok())
        links = parseIndexPage(a.body);
    else if (a.status != 404)
        throw Error("the package index answered ", a.status, " for ",
                    withoutPassword(registry::redactUrl(url)),
                    "; check the index URL and its credentials");
    return pages_[url] = std::move(links);
}

Digest Compiler::download(const std::string& url, const std::string& sha256hex,
                          const std::string& what)
{
    if (!sha256hex.empty()) {
        auto d = Digest::parse("sha256:" + sha256hex);
        if (haveFile(d)) return d;
    }
    fs::create_directories(filesDir(store_));
    auto tmp = filesDir(store_) / (".tmp-" + tempName());
    AutoCloseFD out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
    if (!out) throw SysError("unable to create '", tmp.string(), "'");
    AutoDelete removeTmp(tmp);
    Sha256 h;
    uint64_t total = 0;
    registry::HttpRequest q;
    q.url = url;
    q.peer = "package index";
    q.onBody = [&](const registry::HttpResponse&, const char* data, size_t len) {
        total += len;
        if (total > maxFileSize) throw Error(what, " is over ", maxFileSize >> 30, " GiB: refused");
        h.update(data, len);
        writeFull(out.get(), data, len, tmp.string());
    };
    auto a = http().perform(q);
    if (!a.ok())
        throw Error("unable to download ", what, " from ",
                    withoutPassword(registry::redactUrl(url)), ": the server answered ", a.status,
                    "; check the index");
    if (::fsync(out.get()) < 0) throw SysError("unable to sync '", tmp.string(), "'");
    auto d = h.finish();
    if (!sha256hex.empty() && d.hex() != sha256hex)
        throw Error(what, " downloaded from ", withoutPassword(registry::redactUrl(url)),
                    " has the digest ", d.str(), ", not sha256:", sha256hex,
                    " as the index says: refused");
    if (::rename(tmp.c_str(), filePath(store_, d).c_str()) < 0)
        throw SysError("unable to store ", what);
    removeTmp.release();
    verified_[d.str()] = true;
    return d;
}

void Compiler::checkIndexes()
{
    if (indexesChecked_) return;
    indexesChecked_ = true;
    for (size_t i = 0; i < req_.index.indexUrls.size(); i++) {
        auto& u = req_.index.indexUrls[i];
        if (!u.starts_with("http://") && !u.starts_with("https://")) continue;
        // HEAD: any answer will do, and an index's root page may list every project (PyPI's
        // is tens of megabytes).
        registry::HttpRequest q;
        q.method = "HEAD";
        q.url = u;
        q.headers = {{"Accept", "text/html"}};
        q.peer = "package index";
        try {
            http().perform(q);
        } catch (registry::TransportError& e) {
            // An extra index is pip's to skip (as its pip.conf's timeout and retries say).
            if (i > 0) {
                display().warning(concat("the extra package index ", registry::redactUrl(u),
                                         " cannot be reached (", e.message(),
                                         "); pip skips it after its retries"));
                continue;
            }
            // e's message names the URL, its password hidden (redactUrl).
            throw Error("the package index ", registry::redactUrl(u), " cannot be reached (",
                        e.message(), ")",
                        "; check the index URL (--index-url, or the pip.conf's index-url) and the "
                        "network, or build offline with --no-index and --find-links DIR");
        }
    }
}

std::vector<std::string> Compiler::pagesOf(const std::string& name) const
{
    std::vector<std::string> pages;
    for (auto u : req_.index.indexUrls) {
        if (!u.ends_with("/")) u += "/";
        pages.push_back(u + normalisePythonName(name) + "/");
    }
    for (auto& p : req_.index.linkPages)
        pages.push_back(p);
    return pages;
}

// The file named `file` of distribution `name`, as the configured indexes and find-links pages
// list it (a link with that file name), checked against the hash they publish.
Digest Compiler::fetchFromIndex(const std::string& name, const std::string& file)
{
    for (auto& p : pagesOf(name))
        for (auto& l : page(p))
            if (l.file == file)
                return download(registry::resolveUrl(p, l.href), l.sha256, "'" + file + "'");
    throw Error("the resolution names '", file, "', which no configured index lists under ", name,
                ": refused (a build step may have tampered with the resolution)");
}

// One item of pip's report, checked, its file fetched by the host.
Dist Compiler::fetched(const json& item, const std::optional<CompiledWheel>& app,
                       const std::string& appUrl)
{
    Dist d;
    d.name = item.at("metadata").at("name").get<std::string>();
    d.version = item.at("metadata").at("version").get<std::string>();
    if (!validDistName(d.name))
        throw Error("the name '", d.name.substr(0, 80),
                    "' is not a valid distribution name (PEP 508)");
    if (!canonicalVersion(d.version))
        throw Error("the version '", d.version.substr(0, 80), "' of ", d.name,
                    " is not a valid version (PEP 440)");
    std::string url = item.at("download_info").at("url").get<std::string>();
    auto query = url.find_first_of("?#");
    std::string path = url.substr(0, query);
    std::string base = percentDecode(path.substr(path.rfind('/') + 1));
    std::string dirName = path.substr(0, path.rfind('/'));
    if (app && url == appUrl) {
        d.app = true;
        d.file = app->file;
        d.digest = app->digest;
        return d;
    }
    if (!plainFileName(base))
        throw Error("the file name '", base.substr(0, 80), "' of ", d.name, " is refused");
    d.sdist = isSdistOf(base, d.name, d.version);
    d.file = base;
    if (url.starts_with("file://")) {
        fs::path host;
        if (dirName == "file:///run/grocker/find-links" && !req_.index.findLinks.empty())
            host = req_.index.findLinks / base;
        else if (dirName == "file:///usr/share/python-wheels" && compilerWheels().count(base))
            host = compilerWheels().at(base);
        else
            throw Error("the resolution names ", d.name, " ", d.version, " from '",
                        url.substr(0, 200),
                        "', which is not in the --find-links folder, the compiler's wheels or an "
                        "index: refused");
        d.digest = putHostFile(
            store_, host, concat("'", host.string(), "' (", d.name, " ", d.version, ")"), true);
        verified_[d.digest.str()] = true;
    } else if (url.starts_with("http://") || url.starts_with("https://")) {
        d.digest = fetchFromIndex(d.name, base);
    } else {
        throw Error("the resolution names ", d.name, " ", d.version, " from '", url.substr(0, 200),
                    "': refused");
    }
    return d;
}

// What decides the release's resolution: the compiler, the index settings, the constraints, the
// extras and more requirements, and the app's name and requirements (not its version or code).
json Compiler::resolutionInputs(const std::optional<CompiledWheel>& app) const
{
    auto& r = req_.release;
    std::string appIdentity = r.text;
    if (app) {
        auto m = readWheelMetadata(app->path, app->file);
        auto needs = m.requiresDist;
        std::sort(needs.begin(), needs.end());
        appIdentity = normalisePythonName(m.name);
        for (auto& q : needs)
            appIdentity += "\n" + q;
    }
    std::vector<std::string> extraList, more = req_.moreRequirements;
    for (size_t start = 0; !r.extras.empty();) {
        auto comma = r.extras.find(',', start);
        extraList.push_back(normalisePythonName(r.extras.substr(start, comma - start)));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    std::sort(extraList.begin(), extraList.end());
    std::sort(more.begin(), more.end());
    std::string joinedExtras, joinedMore;
    for (auto& e : extraList)
        joinedExtras += e + ",";
    for (auto& m : more)
        joinedMore += m + "\n";
    return {"resolution",           GROCKER_VERSION, compilerDigest(), req_.indexKey,
            req_.constraintsDigest, joinedMore,      joinedExtras,     appIdentity};
}

// A project's hint: which resolution its last build used, filed under the project's folder
// and what else decides a resolution but the app's requirements (the resolution inputs without
// their last item). A guess that only decides whether resolving early is worth it.
json Compiler::hintInputs(const json& resolutionInputs) const
{
    json in = {"hint"};
    for (size_t i = 1; i + 1 < resolutionInputs.size(); i++)
        in.push_back(resolutionInputs[i]);
    in.push_back(fs::absolute(req_.release.path).lexically_normal().string());
    return in;
}

bool Compiler::resolutionHinted(const json& resolutionInputs)
{
    if (req_.refresh) return false;
    auto h = hintOf(cacheDir(store_) / "hints" / (keyOf(hintInputs(resolutionInputs)) + ".json"));
    return h && fs::exists(cacheDir(store_) / "resolutions" / (h->resolution + ".json"));
}

std::vector<std::string> Compiler::resolveArgs(const std::string& mode,
                                               const std::string& target) const
{
    std::vector<std::string> args{mode, target};
    for (auto& m : req_.moreRequirements)
        args.push_back(m);
    return args;
}

namespace {

// Whether two wheels of one release require the same distributions and the same Python.
bool sameNeeds(const fs::path& a, const std::string& aFile, const fs::path& b,
               const std::string& bFile)
{
    auto x = readWheelMetadata(a, aFile), y = readWheelMetadata(b, bFile);
    std::sort(x.requiresDist.begin(), x.requiresDist.end());
    std::sort(y.requiresDist.begin(), y.requiresDist.end());
    return x.requiresDist == y.requiresDist && x.requiresPython == y.requiresPython;
}

} // namespace

// The release's distributions: a validated resolution of the cache, or one made from the
// machine's platform's (kept by the caller once its wheels bear it out), or a new one from a box.
Resolution Compiler::resolve(const std::optional<CompiledWheel>& app, const json& inputs)
{
    auto key = keyOf(inputs);
    auto entryPath = cacheDir(store_) / "resolutions" / (key + ".json");
    auto lock = keyLock(ctx_, key);
    if (!req_.refresh && fs::exists(entryPath)) {
        try {
            auto j = json::parse(readFile(entryPath));
            Resolution r;
            bool whole = keyOf(j.at("inputs")) == key;
            for (auto& x : j.at("dists")) {
                r.dists.push_back(Dist::fromJson(x));
                whole = whole && (r.dists.back().app || haveFile(r.dists.back().digest));
            }
            r.machineFree = j.value("machineFree", false);
            if (whole) {
                say(ctx_, "dependencies of " + (app ? app->name : req_.release.text) +
                              ": unchanged requirements, the last resolution's");
                keepResolution(inputs, r);
                return r;
            }
        } catch (std::exception&) {
            // damaged: resolved again
        }
    }
    if (auto r = remoteResolution(app, inputs)) {
        keepResolution(inputs, *r, true);
        return *r;
    }
    if (auto r = nativeResolution(app, inputs)) return *r;
    auto r = resolveInBox(app);
    keepResolution(inputs, r);
    return r;
}

// A new resolution, from pip in a box over the compiler.
Resolution Compiler::resolveInBox(const std::optional<CompiledWheel>& app)
{
    OutDir out(ctx_);
    std::vector<sandbox::Volume> volumes;
    auto& r = req_.release;
    std::string target = r.text, appUrl;
    if (app) {
        volumes.push_back({app->path, compileStep::appWheelPath(app->file), true});
        target =
            compileStep::appWheelPath(app->file) + (r.extras.empty() ? "" : "[" + r.extras + "]");
        appUrl = "file://" + compileStep::appWheelPath(app->file);
    }
    checkIndexes();
    runOnly(
        ctx_, *req_.compiler,
        boxStep("resolve: " + r.text, resolveArgs(compileStep::resolveMode, target), volumes, out));
    return readReport(out, app, appUrl, nullptr);
}

// The resolution box's report: input to check, pure data, every file fetched again by the host.
// `appUrl` is where the box saw the app: its wheel, or its project folder, and then
// `appMetadata`, the wheel's, must say what the report says of the project.
Resolution Compiler::readReport(const OutDir& out, const std::optional<CompiledWheel>& app,
                                const std::string& appUrl, const DistMetadata* appMetadata)
{
    auto& r = req_.release;
    AutoCloseFD dir;
    (void)outNames(out.path, dir);
    auto fd = openUntrusted(dir.get(), compileStep::reportFile, "the resolution's report");
    std::string text;
    {
        std::vector<char> buf(1 << 16);
        for (size_t n;
             (n = readSome(fd.get(), buf.data(), buf.size(), "the resolution's report")) > 0;) {
            text.append(buf.data(), n);
            if (text.size() > maxReportSize)
                throw Error("the resolution's report is over 16 MiB: refused");
        }
    }
    std::vector<Dist> dists;
    bool machineFree = !req_.constraintsNameMachine &&
                       std::none_of(req_.moreRequirements.begin(), req_.moreRequirements.end(),
                                    [](auto& m) { return namesMachine(m); });
    try {
        auto report = json::parse(text);
        std::set<std::string> names;
        for (auto& item : report.at("install")) {
            auto d = fetched(item, app, appUrl);
            if (!names.insert(normalisePythonName(d.name)).second)
                throw Error("it names ", d.name, " twice");
            if (!app && normalisePythonName(d.name) == normalisePythonName(r.name)) {
                if (!sameVersion(d.version, r.version))
                    throw Error("it names ", d.name, " ", d.version, ", not ", r.version);
                d.app = true;
            }
            std::vector<std::string> said;
            if (auto& meta = item.at("metadata"); meta.contains("requires_dist"))
                said = meta.at("requires_dist").get<std::vector<std::string>>();
            machineFree = machineFree && std::none_of(said.begin(), said.end(),
                                                      [](auto& q) { return namesMachine(q); });
            if (d.app && appMetadata) {
                auto built = appMetadata->requiresDist;
                std::sort(said.begin(), said.end());
                std::sort(built.begin(), built.end());
                if (normalisePythonName(d.name) != normalisePythonName(appMetadata->name) ||
                    !sameVersion(d.version, appMetadata->version) || said != built)
                    throw Error("what it says of the project (", d.name, " ", d.version, ", ",
                                said.size(), " requirements) is not what its wheel says (",
                                appMetadata->name, " ", appMetadata->version, ", ", built.size(),
                                " requirements)");
            }
            dists.push_back(std::move(d));
        }
    } catch (json::exception& e) {
        throw Error("the resolution of ", r.text, " wrote a report that is refused: ", e.what());
    } catch (Error& e) {
        e.addContext("the resolution of " + r.text + " is refused");
        throw;
    }
    if (std::count_if(dists.begin(), dists.end(), [](auto& d) { return d.app; }) != 1)
        throw Error("the resolution of ", r.text, " does not name the release itself: refused");
    return {std::move(dists), machineFree};
}

// Files a validated resolution under its key (another build's, made meanwhile, stays), in the
// registry's build cache too when it is written and lacks it (`inRemote`: known to hold it), and
// for a project the hint that its next build may find it.
void Compiler::keepResolution(const json& inputs, const Resolution& kept, bool inRemote)
{
    auto& dists = kept.dists;
    auto key = keyOf(inputs);
    auto entryPath = cacheDir(store_) / "resolutions" / (key + ".json");
    json list = json::array();
    for (auto& d : dists)
        list.push_back(d.toJson());
    json resolution = {{"inputs", inputs}, {"dists", list}, {"machineFree", kept.machineFree}};
    if (!fs::exists(entryPath) || req_.refresh) writeEntry(entryPath, resolution);
    if (req_.remote && req_.remote->writes() && !inRemote && !req_.remote->has("resolution", key)) {
        auto app = std::find_if(dists.begin(), dists.end(), [](auto& d) { return d.app; });
        req_.remote->putResolution(key, inputs, resolution,
                                   "the requirements of " +
                                       (app == dists.end() ? req_.release.text : app->name) + " (" +
                                       std::to_string(dists.size()) + " distributions)");
    }
    if (req_.release.kind != Release::Kind::Project) return;
    auto hint = hintInputs(inputs);
    auto hintPath = cacheDir(store_) / "hints" / (keyOf(hint) + ".json");
    json entry = {{"inputs", hint}, {"resolution", key}};
    try {
        if (json::parse(readFile(hintPath)) == entry) return;
    } catch (std::exception&) {
    }
    writeEntry(hintPath, entry);
}

// The resolution the registry's build cache holds under the key of `inputs`, checked as a box's
// report is (names, versions, file names, the release named once) and every file it names but
// sdists fetched from the find-links folder, the index or the compiler's wheels and checked
// against the digest it records (an sdist is fetched only when its wheel must be built). Any
// failure is a miss, with a warning: the release is resolved in a box.
std::optional<Resolution> Compiler::remoteResolution(const std::optional<CompiledWheel>& app,
                                                     const json& inputs)
{
    if (!req_.remote || req_.refresh) return std::nullopt;
    auto key = keyOf(inputs);
    auto j = req_.remote->resolution(key);
    if (!j) return std::nullopt;
    auto& r = req_.release;
    try {
        if (!j->contains("inputs") || keyOf(j->at("inputs")) != key)
            throw Error("it is filed under another key");
        std::vector<Dist> dists;
        std::set<std::string> names;
        for (auto& x : j->at("dists")) {
            Dist d = Dist::fromJson(x);
            if (!validDistName(d.name) || !canonicalVersion(d.version) || !plainFileName(d.file))
                throw Error("it names '", d.name.substr(0, 80), "' '", d.version.substr(0, 80),
                            "' '", d.file.substr(0, 80), "', not a distribution and its file");
            if (!names.insert(normalisePythonName(d.name)).second)
                throw Error("it names ", d.name, " twice");
            if (d.app && !app &&
                (normalisePythonName(d.name) != normalisePythonName(r.name) ||
                 !sameVersion(d.version, r.version)))
                throw Error("it names ", d.name, " ", d.version, " as the release");
            if (!(d.app && app)) {
                if (isSdistOf(d.file, d.name, d.version) != d.sdist)
                    throw Error("it says '", d.file, "' is ", d.sdist ? "" : "not ", "an sdist");
                if (!d.sdist) ensureFile(d);
            }
            dists.push_back(std::move(d));
        }
        if (std::count_if(dists.begin(), dists.end(), [](auto& d) { return d.app; }) != 1)
            throw Error("it does not name the release once");
        bool machineFree = j->value("machineFree", false);
        say(ctx_, "dependencies of " + (app ? app->name : r.text) + ": the resolution of the " +
                      "build cache");
        return Resolution{std::move(dists), machineFree};
    } catch (std::exception& e) {
        display().warning(concat("the build cache entry resolution-", key, " of ",
                                 req_.remote->repository(), " cannot be used (", e.what(),
                                 "); resolving again"));
        return std::nullopt;
    }
}

// The file of `d` in cache/files: from the find-links folder, else an index, else the
// compiler's wheels, whichever has a file of that name; it must have the digest `d` records.
void Compiler::ensureFile(const Dist& d)
{
    if (haveFile(d.digest)) return;
    Digest got;
    auto local = req_.index.findLinks.empty() ? fs::path() : req_.index.findLinks / d.file;
    std::error_code ec;
    if (!local.empty() && fs::is_regular_file(local, ec)) {
        got = putHostFile(store_, local, concat("'", local.string(), "'"), true);
    } else {
        try {
            got = fetchFromIndex(d.name, d.file);
        } catch (Error&) {
            auto& mine = compilerWheels();
            auto it = mine.find(d.file);
            if (it == mine.end()) throw;
            got = putHostFile(store_, it->second, "'" + d.file + "' of the compiler image", false);
        }
    }
    if (got != d.digest)
        throw Error("'", d.file, "' of ", d.name, " ", d.version, " has the digest ", got.str(),
                    ", not ", d.digest.str(), " as the resolution records: refused");
    verified_[got.str()] = true;
}

// The machine's platform's resolution of the same inputs, made this platform's: the same
// releases, each a file of this platform (fileForHere). None when there is no such resolution,
// when it went through a requirement that says platform_machine (or when that is not known),
// or when a release has no file here, or a wheel here requires other distributions than the
// machine's: pip then resolves in a box, under emulation.
std::optional<Resolution> Compiler::nativeResolution(const std::optional<CompiledWheel>& app,
                                                     const json& inputs)
{
    if (!req_.native) return std::nullopt;
    auto& native = *req_.native;
    json theirs = inputs; // {"resolution", version, compiler, index key, ...}
    theirs[2] = native.compilerDigest;
    theirs[3] = native.indexKey;
    auto path = cacheDir(store_) / "resolutions" / (keyOf(theirs) + ".json");
    auto what = "dependencies of " + (app ? app->name : req_.release.text);
    auto notTaken = [&](const std::string& why) {
        say(ctx_, shownName(ctx_, what) + ": resolved under emulation: " + why);
        return std::nullopt;
    };
    Resolution r;
    std::vector<Dist> mine;
    try {
        auto j = json::parse(readFile(path));
        if (keyOf(j.at("inputs")) != keyOf(theirs)) return std::nullopt;
        if (!j.contains("machineFree"))
            return notTaken(
                "the machine's resolution does not say whether it went through "
                "requirements that say platform_machine (made by an older grocker: --refresh "
                "resolves again)");
        if (!j.at("machineFree").get<bool>())
            return notTaken("the machine's resolution went through requirements that say "
                            "platform_machine");
        for (auto& x : j.at("dists"))
            mine.push_back(Dist::fromJson(x));
    } catch (std::exception&) {
        return std::nullopt; // none, or damaged: resolved here
    }
    try {
        for (auto& d : mine) {
            if (d.app && app) {
                r.native.push_back(d);
                d.file = app->file;
                d.digest = app->digest;
                r.dists.push_back(d);
                continue;
            }
            auto here = fileForHere(d);
            if (!here)
                return notTaken(
                    concat(d.name, " ", d.version, " has no file for ", native.platform));
            // Another wheel of the same release: it must require what the machine's does.
            if (here->file != d.file && !d.sdist && !here->sdist &&
                !sameNeeds(filePath(store_, d.digest), d.file, filePath(store_, here->digest),
                           here->file))
                return notTaken(
                    concat("'", here->file, "' requires other distributions than '", d.file, "'"));
            r.dists.push_back(std::move(*here));
            r.native.push_back(d);
        }
    } catch (Error& e) {
        return notTaken(e.message());
    }
    r.machineFree = true;
    r.fromNative = true;
    say(ctx_,
        what + ": the resolution of the machine's platform, with the files of " + native.platform);
    return r;
}

std::optional<Dist> Compiler::fileForHere(const Dist& native)
{
    // The candidates in pip's order (find-links before the indexes); the first of the best wins.
    struct Candidate {
        std::string file;
        std::function<Digest()> fetch;
    };
    std::vector<Candidate> files;
    std::error_code ec;
    if (!req_.index.findLinks.empty()) {
        std::vector<fs::path> local;
        for (auto& e : fs::directory_iterator(req_.index.findLinks, ec))
            local.push_back(e.path());
        std::sort(local.begin(), local.end());
        for (auto& p : local)
            files.push_back({p.filename().string(), [this, p] {
                                 return putHostFile(store_, p, concat("'", p.string(), "'"), true);
                             }});
    }
    for (auto& p : pagesOf(native.name))
        for (auto& l : page(p))
            files.push_back({l.file, [this, p, l] {
                                 return download(registry::resolveUrl(p, l.href), l.sha256,
                                                 "'" + l.file + "'");
                             }});
    // pip's preference among the wheels of a release: the best tag, then the highest build
    // number, then the build tag's text.
    struct Rank {
        size_t tag;
        long number;
        std::string rest;
        bool operator<(const Rank& o) const
        {
            if (tag != o.tag) return tag < o.tag;
            if (number != o.number) return number > o.number;
            return rest > o.rest;
        }
    };
    const Candidate* best = nullptr;
    Rank bestRank{};
    const Candidate* sdist = nullptr; // the first of the release
    auto name = normalisePythonName(native.name);
    for (auto& c : files) {
        if (auto w = parseWheelName(c.file)) {
            if (normalisePythonName(w->name) != name || !sameVersion(w->version, native.version))
                continue;
            auto tag = req_.native->tags.rank(*w);
            if (!tag) continue;
            size_t digits = 0;
            while (digits < w->build.size() && digits < 9 &&
                   std::isdigit(static_cast<unsigned char>(w->build[digits])))
                digits++;
            Rank rank{*tag, digits ? std::stol(w->build.substr(0, digits)) : -1,
                      w->build.substr(digits)};
            if (!best || rank < bestRank) {
                best = &c;
                bestRank = rank;
            }
        } else if (auto v = sdistVersion(c.file, native.name);
                   !sdist && v && sameVersion(*v, native.version)) {
            sdist = &c;
        }
    }
    if (!best) {
        // None listed, and the machine's file is a wheel for here too: one of the compiler's
        // wheels (pip, setuptools, wheel: Debian's, the same file on every architecture), not
        // looked at here, which would pull and unpack this platform's compiler.
        auto w = native.sdist ? std::nullopt : parseWheelName(native.file);
        if (w && req_.native->tags.rank(*w)) return native;
        // No wheel here: pip takes the release's sdist (the machine's platform did too, or it
        // took a wheel of its own and the index lists an sdist).
        if (native.sdist) return native;
        if (!sdist) return std::nullopt;
    }
    auto& chosen = best ? *best : *sdist;
    if (chosen.file == native.file) return native;
    Dist d = native;
    d.file = chosen.file;
    d.sdist = !best;
    d.digest = chosen.fetch();
    verified_[d.digest.str()] = true;
    return d;
}

// The wheels built here from the sdists of the resolution (wheels[i] of dists[i]) against the
// machine's platform's: the wheel it built from the same sdist, or the wheel it took.
std::string Compiler::unlikeNative(const Resolution& resolution,
                                   const std::vector<CompiledWheel>& wheels)
{
    auto& native = *req_.native;
    for (size_t i = 0; i < resolution.dists.size(); i++) {
        auto& d = resolution.dists[i];
        auto& theirs = resolution.native.at(i);
        if (!d.sdist || d.app) continue;
        try {
            std::string file = theirs.file;
            Digest digest = theirs.digest;
            if (theirs.sdist) {
                auto key = sdistWheelInputs(native.compilerDigest, native.indexKey, theirs.digest);
                auto j =
                    json::parse(readFile(cacheDir(store_) / "wheels" / (keyOf(key) + ".json")));
                file = j.at("file").get<std::string>();
                digest = Digest::parse(j.at("digest").get<std::string>());
            }
            if (!sameNeeds(filePath(store_, digest), file, wheels[i].path, wheels[i].file))
                return concat("'", wheels[i].file, "' requires other distributions than '", file,
                              "'");
        } catch (std::exception& e) {
            return concat("the machine's wheel of ", d.name, " ", d.version,
                          " cannot be compared with this platform's (", e.what(), ")");
        }
    }
    return {};
}

} // namespace grocker::build::compiling
