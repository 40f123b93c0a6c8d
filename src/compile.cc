#include "compile.hh"

#include <algorithm>
#include <deque>
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "compile-contract.hh"
#include "embedded-scripts.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/image.hh"
#include "grocker/registry/http.hh"
#include "grocker/sandbox/id-map.hh"
#include "grocker/sandbox/rootfs.hh"
#include "python-dists.hh"

namespace grocker::build {

namespace fs = std::filesystem;
using namespace grocker::oci;
using nlohmann::json;

// --- the release ------------------------------------------------------------------------------

namespace {

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
    if (extras.empty()) return true;
    for (size_t start = 0;;) {
        auto comma = extras.find(',', start);
        if (!validDistName(std::string_view(extras).substr(start, comma - start))) return false;
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return true;
}

} // namespace

Release parseRelease(const std::string& text)
{
    Release r;
    r.text = text;
    auto refuse = [&] {
        return UsageError("RELEASE '", text, "' is not NAME[EXTRAS]==VERSION, a .whl file or a project folder");
    };
    if (auto eq = text.find("=="); eq != std::string::npos) {
        std::string base, extras;
        std::string_view version = std::string_view(text).substr(eq + 2);
        if (splitExtras(std::string_view(text).substr(0, eq), base, extras) && validDistName(base) &&
            nameChars(version, "._+!-") && canonicalVersion(version)) {
            r.name = base;
            r.extras = extras;
            r.version = std::string(version);
            return r;
        }
        throw refuse();
    }
    std::string base, extras;
    bool bracketed = splitExtras(text, base, extras);
    if (bracketed && base.ends_with(".whl")) {
        r.kind = Release::Kind::Wheel;
        r.path = fs::absolute(base);
        r.extras = extras;
        if (!fs::is_regular_file(r.path)) throw UsageError("RELEASE '", text, "': no wheel file '", r.path.string(), "'");
        if (!parseWheelName(r.path.filename().string()))
            throw UsageError("RELEASE '", text, "': '", r.path.filename().string(),
                "' is not a wheel file name (NAME-VERSION-PYTHON-ABI-PLATFORM.whl)");
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
        r.treeDigest = treeDigest(r.path);
        return r;
    }
    throw refuse();
}

std::string treeDigest(const fs::path& dir)
{
    std::vector<std::string> lines;
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
        auto name = it->path().filename().string();
        if (it->is_directory() && !it->is_symlink() &&
            (name == ".git" || name == "build" || name == "dist" || name == "__pycache__" ||
                name.ends_with(".egg-info") || name == ".tox" || name == ".venv")) {
            it.disable_recursion_pending();
            continue;
        }
        auto rel = fs::relative(it->path(), dir).string();
        struct stat st;
        if (::lstat(it->path().c_str(), &st) < 0) throw SysError("unable to read '", it->path().string(), "'");
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
            throw UsageError("the project folder '", dir.string(), "' holds '", rel, "', which is ",
                S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISSOCK(st.st_mode) ? "a socket" : "a device",
                ", not a file, folder or symlink: remove it from the project");
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

std::string withoutPassword(const std::string& url)
{
    auto scheme = url.find("://");
    if (scheme == std::string::npos) return url;
    auto hostStart = scheme + 3;
    // The user information ends at the authority's last '@' (a password may hold an '@' that
    // was not percent-encoded: all of it is hidden).
    auto end = url.find_first_of("/?#", hostStart);
    auto at = url.rfind('@', end == std::string::npos ? std::string::npos : end);
    if (at == std::string::npos || at < hostStart || (end != std::string::npos && at > end)) return url;
    auto colon = url.find(':', hostStart);
    if (colon == std::string::npos || colon > at) return url.substr(0, hostStart) + "***" + url.substr(at);
    return url.substr(0, colon + 1) + "***" + url.substr(at);
}

IndexSettings IndexSettings::from(const std::string& pipConf, const std::string& indexUrl, const fs::path& findLinks)
{
    // pip reads [global], then the command's section ([wheel] or [install], [download] for the
    // resolution): later ones win per key.
    std::map<std::string, std::string> keys;
    std::string section, lastKey;
    std::istringstream in(pipConf);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        auto first = line.find_first_not_of(" \t");
        if (first == std::string::npos || line[first] == '#' || line[first] == ';') continue;
        if (line[first] == '[') {
            section = line.substr(first + 1, line.find(']') - first - 1);
            lastKey.clear();
            continue;
        }
        bool ours = section == "global" || section == "install" || section == "wheel" || section == "download";
        if (first > 0 && !lastKey.empty()) { // a continuation line of a multi-line value
            if (ours) keys[lastKey] += " " + line.substr(first);
            continue;
        }
        auto sep = line.find_first_of("=:");
        if (sep == std::string::npos) continue;
        std::string k = line.substr(first, sep - first), v = line.substr(sep + 1);
        while (!k.empty() && (k.back() == ' ' || k.back() == '\t')) k.pop_back();
        std::replace(k.begin(), k.end(), '_', '-');
        lastKey = ours ? k : "";
        if (ours) keys[k] = v;
    }
    auto words = [](const std::string& s) {
        std::vector<std::string> out;
        std::istringstream w(s);
        for (std::string x; w >> x;) out.push_back(x);
        return out;
    };
    auto truthy = [&](const std::string& k) {
        auto v = words(keys.count(k) ? keys[k] : "");
        return !v.empty() && (v[0] == "1" || v[0] == "true" || v[0] == "yes" || v[0] == "on");
    };
    IndexSettings s;
    s.findLinks = findLinks;
    for (auto& l : words(keys["find-links"]))
        if (l.starts_with("http://") || l.starts_with("https://")) s.linkPages.push_back(l);
    if (truthy("no-index")) return s;
    auto main = words(keys["index-url"]);
    if (!indexUrl.empty())
        s.indexUrls.push_back(indexUrl);
    else if (!main.empty())
        s.indexUrls.push_back(main[0]);
    else
        s.indexUrls.push_back("https://pypi.org/simple/");
    for (auto& u : words(keys["extra-index-url"])) s.indexUrls.push_back(u);
    return s;
}

// --- the host's caches ---------------------------------------------------------------------------

namespace {

constexpr uint64_t maxFileSize = uint64_t(4) << 30; // a wheel or sdist: 4 GiB at most
constexpr size_t maxReportSize = 16 << 20;
// Where the box that resolves a project from its folder (grocker-compile resolve-project) has its
// copy: the report names the project by this folder's URL.
constexpr std::string_view earlyProject = compileStep::projectCopy;

bool hex64(const std::string& s) { return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos; }

fs::path cacheDir(const Store& s) { return s.root() / "cache"; }
fs::path filesDir(const Store& s) { return cacheDir(s) / "files" / "sha256"; }
fs::path filePath(const Store& s, const Digest& d) { return filesDir(s) / d.hex(); }

Digest hashPath(const fs::path& p)
{
    AutoCloseFD fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) throw SysError("unable to read '", p.string(), "'");
    Sha256 h;
    std::vector<char> buf(1 << 20);
    for (size_t n; (n = readSome(fd.get(), buf.data(), buf.size(), p.string())) > 0;) h.update(buf.data(), n);
    return h.finish();
}

// Copies what `fd` reads (at most maxFileSize bytes) into cache/files under its digest; an
// existing file of that digest stays. `what` names the source in errors.
Digest putFile(const Store& store, int fd, const std::string& what)
{
    fs::create_directories(filesDir(store));
    auto tmp = filesDir(store) / (".tmp-" + tempName());
    AutoCloseFD out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
    if (!out) throw SysError("unable to create '", tmp.string(), "'");
    AutoDelete removeTmp(tmp);
    Sha256 h;
    uint64_t total = 0;
    std::vector<char> buf(1 << 20);
    for (size_t n; (n = readSome(fd, buf.data(), buf.size(), what)) > 0;) {
        total += n;
        if (total > maxFileSize) throw Error(what, " is over ", maxFileSize >> 30, " GiB: refused");
        h.update(buf.data(), n);
        writeFull(out.get(), buf.data(), n, tmp.string());
    }
    if (::fsync(out.get()) < 0) throw SysError("unable to sync '", tmp.string(), "'");
    auto d = h.finish();
    auto dest = filePath(store, d);
    if (::rename(tmp.c_str(), dest.c_str()) < 0) throw SysError("unable to store '", dest.string(), "'");
    removeTmp.release();
    return d;
}

// Opens `name` in the folder `dirFd` as a step left it: no symlink followed, no FIFO waited on,
// a regular file only.
AutoCloseFD openUntrusted(int dirFd, const std::string& name, const std::string& what)
{
    AutoCloseFD fd(::openat(dirFd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd) throw SysError("unable to read ", what);
    struct stat st;
    if (::fstat(fd.get(), &st) < 0 || !S_ISREG(st.st_mode)) throw Error(what, " is not a regular file: refused");
    return fd;
}

// The names in a box's /out, read without following links.
std::vector<std::string> outNames(const fs::path& out, AutoCloseFD& dirFd)
{
    dirFd.reset(::open(out.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!dirFd) throw SysError("unable to open the step's output folder '", out.string(), "'");
    return listFolder(dirFd.get(), out.string());
}

std::string keyOf(const json& inputs)
{
    std::vector<std::string> parts;
    for (auto& p : inputs) parts.push_back(p.get<std::string>());
    return cacheKey(parts);
}

// A resolution hint (Compiler::hintInputs): its compiler and the resolution it names, or none
// when it is not one.
struct Hint {
    std::string compiler, resolution;
};
std::optional<Hint> hintOf(const fs::path& path)
{
    try {
        auto j = json::parse(readFile(path));
        Hint h{j.at("inputs").at(2).get<std::string>(), j.at("resolution").get<std::string>()};
        if (keyOf(j.at("inputs")) != path.stem().string() || !hex64(h.resolution)) return std::nullopt;
        return h;
    } catch (std::exception&) {
        return std::nullopt;
    }
}

// Writes a cache entry the host made (never over an existing entry of its key, unless `replace`:
// the host found that one broken).
void writeEntry(const fs::path& path, const json& j)
{
    fs::create_directories(path.parent_path());
    writeFileAtomic(path, canonical(j));
}

// Folders the sandbox's grocker user (uid 1000 inside) must write, and grocker read afterwards.
void prepareForGrocker(Context& ctx, const fs::path& dir)
{
    if (::chmod(dir.c_str(), 0755) < 0) throw SysError("unable to make '", dir.string(), "' readable");
    sandbox::runInUserNamespace(ctx.map, [&] {
        if (::chown(dir.c_str(), 1000, 1000) < 0) throw SysError("unable to give '", dir.string(), "' to user grocker");
    });
}

// A box's output folder, removed (inside the user namespace: its files are the box's) after.
struct OutDir {
    const sandbox::IdMap& map;
    fs::path path;
    OutDir(Context& ctx) : map(ctx.map), path(makeTempDir(ctx.store.tmpDir(), ".tmp-" + std::to_string(::getpid()) + "-out-"))
    {
        prepareForGrocker(ctx, path);
    }
    OutDir(const OutDir&) = delete;
    ~OutDir()
    {
        try {
            sandbox::runInUserNamespace(map, [&] {
                std::error_code ec;
                fs::remove_all(path, ec);
            });
        } catch (...) {
        }
    }
};

// Unpacks a wheel for a build environment: the archive's top and its .data/purelib and
// .data/platlib, as `pip install --target` lays them out; scripts, headers and data left out.
void extractWheel(const fs::path& wheel, const fs::path& target)
{
    std::unique_ptr<struct archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
    archive_read_support_format_zip(a.get());
    if (archive_read_open_filename(a.get(), wheel.c_str(), 1 << 16) != ARCHIVE_OK)
        throw Error("unable to read the wheel '", wheel.string(), "': ", archive_error_string(a.get()));
    struct archive_entry* e;
    int r;
    while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
        std::string path = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
        std::vector<std::string> parts;
        for (size_t start = 0; start <= path.size();) {
            auto slash = path.find('/', start);
            parts.push_back(path.substr(start, slash - start));
            if (slash == std::string::npos) break;
            start = slash + 1;
        }
        bool dir = archive_entry_filetype(e) == AE_IFDIR || path.ends_with("/");
        if (dir && !parts.empty() && parts.back().empty()) parts.pop_back();
        for (auto& p : parts)
            if (p.empty() || p == "." || p == ".." || p.find('\\') != std::string::npos)
                throw Error("the wheel '", wheel.filename().string(), "' holds the path '", path, "', refused");
        if (parts.size() >= 2 && parts[0].ends_with(".data")) {
            if (parts[1] != "purelib" && parts[1] != "platlib") continue;
            parts.erase(parts.begin(), parts.begin() + 2);
            if (parts.empty()) continue;
        }
        fs::path dest = target;
        for (auto& p : parts) dest /= p;
        if (dir) {
            fs::create_directories(dest);
            continue;
        }
        if (archive_entry_filetype(e) != AE_IFREG)
            throw Error("the wheel '", wheel.filename().string(), "' holds '", path, "', which is not a regular file");
        fs::create_directories(dest.parent_path());
        mode_t mode = (archive_entry_perm(e) & 0111) ? 0755 : 0644;
        AutoCloseFD out(::open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
        if (!out) throw SysError("unable to write '", dest.string(), "'");
        const void* block;
        size_t size;
        la_int64_t offset;
        int rr;
        while ((rr = archive_read_data_block(a.get(), &block, &size, &offset)) == ARCHIVE_OK)
            writeFull(out.get(), block, size, dest.string());
        if (rr != ARCHIVE_EOF)
            throw Error("unable to read '", path, "' of the wheel '", wheel.string(), "': ", archive_error_string(a.get()));
    }
    if (r != ARCHIVE_EOF) throw Error("the wheel '", wheel.string(), "' is not a readable zip: ", archive_error_string(a.get()));
}

// One distribution of a resolution, as the host checked it.
struct Dist {
    std::string name, version, file;
    Digest digest;
    bool sdist = false;
    bool app = false;

    json toJson() const
    {
        return {{"name", name}, {"version", version}, {"file", file}, {"digest", digest.str()}, {"sdist", sdist}, {"app", app}};
    }
    static Dist fromJson(const json& j)
    {
        Dist d;
        d.name = j.at("name").get<std::string>();
        d.version = j.at("version").get<std::string>();
        d.file = j.at("file").get<std::string>();
        d.digest = Digest::parse(j.at("digest").get<std::string>());
        d.sdist = j.at("sdist").get<bool>();
        d.app = j.at("app").get<bool>();
        return d;
    }
};

// Whether `file` is a wheel or an sdist of `name` `version`; throws when it is neither.
bool isSdistOf(const std::string& file, const std::string& name, const std::string& version)
{
    if (auto w = parseWheelName(file)) {
        if (normalisePythonName(w->name) == normalisePythonName(name) && sameVersion(w->version, version)) return false;
    } else if (auto v = sdistVersion(file, name); v && sameVersion(*v, version)) {
        return true;
    }
    throw Error("the file '", file.substr(0, 200), "' is not a wheel or sdist of ", name, " ", version);
}

class Compiler {
public:
    Compiler(Context& ctx, const CompileRequest& req) : ctx_(ctx), req_(req), store_(ctx.store) {}

    std::vector<CompiledWheel> run();

private:
    Context& ctx_;
    const CompileRequest& req_;
    Store& store_;
    fs::path buildEnv_;
    std::optional<std::map<std::string, fs::path>> compilerWheels_;
    std::map<std::string, bool> verified_; // digest → file present and whole, this build
    std::map<std::string, std::vector<IndexLink>> pages_;
    std::unique_ptr<registry::HttpClient> http_;

    std::string compilerDigest() const { return req_.compiler->manifestDescriptor.digest.str(); }
    bool haveFile(const Digest& d);
    const std::map<std::string, fs::path>& compilerWheels();
    void makeBuildEnv();
    Step boxStep(const std::string& name, const std::vector<std::string>& args, std::vector<sandbox::Volume> volumes,
        const OutDir& out) const;
    Digest takeWheel(const OutDir& out, const std::string& what, std::string& file);
    std::optional<CompiledWheel> cachedWheel(const std::string& key);
    CompiledWheel takeBuilt(const std::string& key, const json& inputs, const std::string& what, const OutDir& out,
        const std::optional<std::pair<std::string, std::string>>& expect);
    CompiledWheel releaseWheel();
    CompiledWheel projectWheel(const json& resolutionInputs, std::optional<std::vector<Dist>>& resolved);
    json resolutionInputs(const std::optional<CompiledWheel>& app) const;
    json hintInputs(const json& resolutionInputs) const;
    bool resolutionHinted(const json& resolutionInputs);
    std::vector<std::string> resolveArgs(const std::string& mode, const std::string& target) const;
    std::vector<Dist> resolve(const std::optional<CompiledWheel>& app, const json& inputs);
    std::vector<Dist> readReport(const OutDir& out, const std::optional<CompiledWheel>& app, const std::string& appUrl,
        const DistMetadata* appMetadata);
    void keepResolution(const json& inputs, const std::vector<Dist>& dists);
    Dist fetched(const json& item, const std::optional<CompiledWheel>& app, const std::string& appUrl);
    Digest fetchFromIndex(const std::string& name, const std::string& file);
    Digest download(const std::string& url, const std::string& sha256, const std::string& what);
    const std::vector<IndexLink>& page(const std::string& url);
    registry::HttpClient& http()
    {
        if (!http_) http_ = std::make_unique<registry::HttpClient>();
        return *http_;
    }
};

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
    compilerWheels_.emplace();
    std::set<std::string> seen;
    for (auto& layer : sandbox::prepareLowerDirs(store_, *req_.compiler, ctx_.map)) {
        std::error_code ec;
        for (auto& e : fs::directory_iterator(layer / "usr/share/python-wheels", ec)) {
            auto name = e.path().filename().string();
            if (!seen.insert(name).second) continue;
            struct stat st;
            if (::lstat(e.path().c_str(), &st) == 0 && S_ISREG(st.st_mode) && name.ends_with(".whl"))
                (*compilerWheels_)[name] = e.path();
        }
    }
    return *compilerWheels_;
}

// The default build environment (setuptools and wheel from the compiler image), extracted by the
// host: boxes build sdists in it without an index (pip --no-build-isolation).
void Compiler::makeBuildEnv()
{
    std::map<std::string, std::pair<std::string, Digest>> picked; // setuptools, wheel → file, digest
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
        throw Error("the compiler image has no setuptools and wheel wheels in /usr/share/python-wheels: its "
                    "build dependencies lack python3-setuptools-whl or python3-wheel-whl");
    json inputs = {"build-env", GROCKER_VERSION, compilerDigest(), picked["setuptools"].second.str(), picked["wheel"].second.str()};
    auto dir = cacheDir(store_) / "build-envs";
    fs::create_directories(dir);
    buildEnv_ = dir / keyOf(inputs);
    if (fs::exists(buildEnv_ / ".grocker-inputs.json")) return;
    auto tmp = makeTempDir(dir, ".tmp-" + std::to_string(::getpid()) + "-env-");
    AutoDelete removeTmp(tmp);
    for (auto& [n, fileDigest] : picked) extractWheel(filePath(store_, fileDigest.second), tmp);
    // Whose it is: `grocker purge` removes it with its compiler image.
    writeFileAtomic(tmp / ".grocker-compiler", compilerDigest() + "\n");
    writeFileAtomic(tmp / ".grocker-inputs.json", canonical(inputs));
    ::chmod(tmp.c_str(), 0755);
    // Made whole and renamed into place: one under its name is complete (another build's, made
    // meanwhile, stays: it may be in use).
    if (::rename(tmp.c_str(), buildEnv_.c_str()) < 0 && errno != ENOTEMPTY && errno != EEXIST)
        throw SysError("unable to move the build environment into '", buildEnv_.string(), "'");
}

Step Compiler::boxStep(const std::string& name, const std::vector<std::string>& args, std::vector<sandbox::Volume> volumes,
    const OutDir& out) const
{
    Step s = req_.boxTemplate;
    s.name = name;
    s.user = compileStep::user;
    s.workdir = compileStep::home;
    s.cached = false;
    for (auto& v : volumes) s.volumes.push_back(v);
    s.volumes.push_back({out.path, compileStep::outDir, false});
    s.volumes.push_back({buildEnv_, compileStep::buildEnvDir, true});
    s.argv = {compileStep::scriptPath};
    for (auto& a : args) s.argv.push_back(a);
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
    if (!parseWheelName(file)) throw Error("the build of ", what, " made '", file.substr(0, 200), "', which is not a wheel file name: refused");
    auto fd = openUntrusted(dir.get(), file, "the wheel '" + file + "' made by the build of " + what);
    return putFile(store_, fd.get(), "the wheel '" + file + "'");
}

std::optional<CompiledWheel> Compiler::cachedWheel(const std::string& key)
{
    auto path = cacheDir(store_) / "wheels" / (key + ".json");
    if (!fs::exists(path)) return std::nullopt;
    try {
        auto j = json::parse(readFile(path));
        if (keyOf(j.at("inputs")) != key) return std::nullopt;
        CompiledWheel w{j.at("name").get<std::string>(), j.at("version").get<std::string>(), j.at("file").get<std::string>(),
            Digest::parse(j.at("digest").get<std::string>()), {}, false};
        if (!parseWheelName(w.file) || !haveFile(w.digest)) return std::nullopt;
        w.path = filePath(store_, w.digest);
        return w;
    } catch (std::exception&) {
        return std::nullopt; // a damaged entry is a miss, made again
    }
}

// The wheel a box left in `out`, checked and filed under the host's key; `expect` is the name
// and version it must have (an sdist's), none for a project (whose name its own build code
// decides).
CompiledWheel Compiler::takeBuilt(const std::string& key, const json& inputs, const std::string& what, const OutDir& out,
    const std::optional<std::pair<std::string, std::string>>& expect)
{
    std::string file;
    Digest d = takeWheel(out, what, file);
    auto path = filePath(store_, d);
    DistMetadata m;
    try {
        m = readWheelMetadata(path, file);
    } catch (Error& e) {
        e.addContext("the build of " + what + " made a wheel that is refused");
        throw;
    }
    if (expect && (normalisePythonName(m.name) != normalisePythonName(expect->first) || !sameVersion(m.version, expect->second)))
        throw Error("the build of ", what, " made a wheel of ", m.name, " ", m.version, " ('", file,
            "'), not of ", expect->first, " ", expect->second, ": refused");
    json entry = {{"inputs", inputs}, {"name", m.name}, {"version", m.version}, {"file", file}, {"digest", d.str()}};
    writeEntry(cacheDir(store_) / "wheels" / (key + ".json"), entry);
    verified_[d.str()] = true;
    return CompiledWheel{m.name, m.version, file, d, path, false};
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
    return CompiledWheel{m.name, m.version, r.path.filename().string(), d, filePath(store_, d), true};
}

// The project's wheel, from the cache or its box. A new build of the project with no earlier
// resolution at hand (a first build, --refresh) also resolves its dependencies in a second
// box at the same time, from the project's folder: `resolved` holds that resolution when it
// agrees with the wheel the project box made (same name, version and requirements), which
// the host checks as any other.
CompiledWheel Compiler::projectWheel(const json& hintBase, std::optional<std::vector<Dist>>& resolved)
{
    auto& r = req_.release;
    json inputs = {"wheel", GROCKER_VERSION, compilerDigest(), req_.indexKey, "project", r.treeDigest.empty() ? treeDigest(r.path) : r.treeDigest};
    auto key = keyOf(inputs);
    auto lock = keyLock(ctx_, key); // the same project in another build: wait, then reuse
    if (auto w = cachedWheel(key)) {
        say(ctx_, "compile: " + r.text + ": cached");
        w->requested = true;
        return *w;
    }
    OutDir out(ctx_);
    StartedStep box(ctx_, *req_.compiler, boxStep("compile: " + r.text, {compileStep::projectMode, compileStep::projectDir}, {{r.path, compileStep::projectDir, true}}, out));
    std::optional<OutDir> resolveOut;
    std::optional<StartedStep> resolveBox;
    if (!resolutionHinted(hintBase)) {
        resolveOut.emplace(ctx_);
        auto target = std::string(earlyProject) + (r.extras.empty() ? "" : "[" + r.extras + "]");
        resolveBox.emplace(ctx_, *req_.compiler,
            boxStep("resolve: " + r.text, resolveArgs(compileStep::resolveProjectMode, target), {{r.path, compileStep::projectDir, true}}, *resolveOut));
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
            say(ctx_, "resolve: " + r.text + ": resolving again from its wheel (" + e.message() + ")");
            resolved.reset();
        }
    }
    return w;
}

const std::vector<IndexLink>& Compiler::page(const std::string& url)
{
    if (auto it = pages_.find(url); it != pages_.end()) return it->second;
    registry::HttpRequest q;
    q.url = url;
    q.headers = {{"Accept", "text/html"}};
    q.maxBody = 64 << 20;
    registry::HttpResponse a;
    try {
        a = http().perform(q);
    } catch (Error& e) {
        throw Error("unable to read the package index page ", withoutPassword(registry::redactUrl(url)), ": ", e.message(),
            "; check the index URL and that the index is reachable");
    }
    std::vector<IndexLink> links;
    if (a.ok())
        links = parseIndexPage(a.body);
    else if (a.status != 404)
        throw Error("the package index answered ", a.status, " for ", withoutPassword(registry::redactUrl(url)),
            "; check the index URL and its credentials");
    return pages_[url] = std::move(links);
}

Digest Compiler::download(const std::string& url, const std::string& sha256hex, const std::string& what)
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
    q.onBody = [&](const registry::HttpResponse&, const char* data, size_t len) {
        total += len;
        if (total > maxFileSize) throw Error(what, " is over ", maxFileSize >> 30, " GiB: refused");
        h.update(data, len);
        writeFull(out.get(), data, len, tmp.string());
    };
    auto a = http().perform(q);
    if (!a.ok())
        throw Error("unable to download ", what, " from ", withoutPassword(registry::redactUrl(url)), ": the server answered ",
            a.status, "; check the index");
    if (::fsync(out.get()) < 0) throw SysError("unable to sync '", tmp.string(), "'");
    auto d = h.finish();
    if (!sha256hex.empty() && d.hex() != sha256hex)
        throw Error(what, " downloaded from ", withoutPassword(registry::redactUrl(url)), " has the digest ", d.str(),
            ", not sha256:", sha256hex, " as the index says: refused");
    if (::rename(tmp.c_str(), filePath(store_, d).c_str()) < 0) throw SysError("unable to store ", what);
    removeTmp.release();
    verified_[d.str()] = true;
    return d;
}

// The file named `file` of distribution `name`, as the configured indexes and find-links pages
// list it (a link with that file name), checked against the hash they publish.
Digest Compiler::fetchFromIndex(const std::string& name, const std::string& file)
{
    std::vector<std::string> pagesToRead;
    for (auto u : req_.index.indexUrls) {
        if (!u.ends_with("/")) u += "/";
        pagesToRead.push_back(u + normalisePythonName(name) + "/");
    }
    for (auto& p : req_.index.linkPages) pagesToRead.push_back(p);
    for (auto& p : pagesToRead)
        for (auto& l : page(p))
            if (l.file == file) return download(registry::resolveUrl(p, l.href), l.sha256, "'" + file + "'");
    throw Error("the resolution names '", file, "', which no configured index lists under ", name,
        ": refused (a build step may have tampered with the resolution)");
}

// One item of pip's report, checked, its file fetched by the host.
Dist Compiler::fetched(const json& item, const std::optional<CompiledWheel>& app, const std::string& appUrl)
{
    Dist d;
    d.name = item.at("metadata").at("name").get<std::string>();
    d.version = item.at("metadata").at("version").get<std::string>();
    if (!validDistName(d.name)) throw Error("the name '", d.name.substr(0, 80), "' is not a valid distribution name (PEP 508)");
    if (!canonicalVersion(d.version))
        throw Error("the version '", d.version.substr(0, 80), "' of ", d.name, " is not a valid version (PEP 440)");
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
    if (!plainFileName(base)) throw Error("the file name '", base.substr(0, 80), "' of ", d.name, " is refused");
    d.sdist = isSdistOf(base, d.name, d.version);
    d.file = base;
    if (url.starts_with("file://")) {
        fs::path host;
        if (dirName == "file:///run/grocker/find-links" && !req_.index.findLinks.empty())
            host = req_.index.findLinks / base;
        else if (dirName == "file:///usr/share/python-wheels" && compilerWheels().count(base))
            host = compilerWheels().at(base);
        else
            throw Error("the resolution names ", d.name, " ", d.version, " from '", url.substr(0, 200),
                "', which is not in the --find-links folder, the compiler's wheels or an index: refused");
        AutoCloseFD fd(::open(host.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
        struct stat st;
        if (!fd || ::fstat(fd.get(), &st) < 0 || !S_ISREG(st.st_mode))
            throw Error("unable to read '", host.string(), "' (", d.name, " ", d.version, "): not a readable regular file");
        d.digest = putFile(store_, fd.get(), "'" + host.string() + "'");
        verified_[d.digest.str()] = true;
    } else if (url.starts_with("http://") || url.starts_with("https://")) {
        d.digest = fetchFromIndex(d.name, base);
    } else {
        throw Error("the resolution names ", d.name, " ", d.version, " from '", url.substr(0, 200), "': refused");
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
        for (auto& q : needs) appIdentity += "\n" + q;
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
    for (auto& e : extraList) joinedExtras += e + ",";
    for (auto& m : more) joinedMore += m + "\n";
    return {"resolution", GROCKER_VERSION, compilerDigest(), req_.indexKey, req_.constraintsDigest, joinedMore, joinedExtras,
        appIdentity};
}

// A project's hint: which resolution its last build used, filed under the project's folder
// and what else decides a resolution but the app's requirements (the resolution inputs without
// their last item). A guess that only decides whether resolving early is worth it.
json Compiler::hintInputs(const json& resolutionInputs) const
{
    json in = {"hint"};
    for (size_t i = 1; i + 1 < resolutionInputs.size(); i++) in.push_back(resolutionInputs[i]);
    in.push_back(fs::absolute(req_.release.path).lexically_normal().string());
    return in;
}

bool Compiler::resolutionHinted(const json& resolutionInputs)
{
    if (req_.refresh) return false;
    auto h = hintOf(cacheDir(store_) / "hints" / (keyOf(hintInputs(resolutionInputs)) + ".json"));
    return h && fs::exists(cacheDir(store_) / "resolutions" / (h->resolution + ".json"));
}

std::vector<std::string> Compiler::resolveArgs(const std::string& mode, const std::string& target) const
{
    std::vector<std::string> args{mode, target};
    for (auto& m : req_.moreRequirements) args.push_back(m);
    return args;
}

// The release's distributions: a validated resolution of the cache, or a new one from a box.
std::vector<Dist> Compiler::resolve(const std::optional<CompiledWheel>& app, const json& inputs)
{
    auto key = keyOf(inputs);
    auto entryPath = cacheDir(store_) / "resolutions" / (key + ".json");
    auto lock = keyLock(ctx_, key);
    if (!req_.refresh && fs::exists(entryPath)) {
        try {
            auto j = json::parse(readFile(entryPath));
            std::vector<Dist> dists;
            bool whole = keyOf(j.at("inputs")) == key;
            for (auto& x : j.at("dists")) {
                dists.push_back(Dist::fromJson(x));
                whole = whole && (dists.back().app || haveFile(dists.back().digest));
            }
            if (whole) {
                say(ctx_, "dependencies of " + (app ? app->name : req_.release.text) +
                              ": unchanged requirements, the last resolution's");
                keepResolution(inputs, dists);
                return dists;
            }
        } catch (std::exception&) {
            // damaged: resolved again
        }
    }
    OutDir out(ctx_);
    std::vector<sandbox::Volume> volumes;
    auto& r = req_.release;
    std::string target = r.text, appUrl;
    if (app) {
        volumes.push_back({app->path, compileStep::appWheelPath(app->file), true});
        target = compileStep::appWheelPath(app->file) + (r.extras.empty() ? "" : "[" + r.extras + "]");
        appUrl = "file://" + compileStep::appWheelPath(app->file);
    }
    runOnly(ctx_, *req_.compiler, boxStep("resolve: " + r.text, resolveArgs(compileStep::resolveMode, target), volumes, out));
    auto dists = readReport(out, app, appUrl, nullptr);
    keepResolution(inputs, dists);
    return dists;
}

// The resolution box's report: input to check, pure data, every file fetched again by the host.
// `appUrl` is where the box saw the app: its wheel, or its project folder, and then
// `appMetadata`, the wheel's, must say what the report says of the project.
std::vector<Dist> Compiler::readReport(const OutDir& out, const std::optional<CompiledWheel>& app, const std::string& appUrl,
    const DistMetadata* appMetadata)
{
    auto& r = req_.release;
    AutoCloseFD dir;
    (void)outNames(out.path, dir);
    auto fd = openUntrusted(dir.get(), compileStep::reportFile, "the resolution's report");
    std::string text;
    {
        std::vector<char> buf(1 << 16);
        for (size_t n; (n = readSome(fd.get(), buf.data(), buf.size(), "the resolution's report")) > 0;) {
            text.append(buf.data(), n);
            if (text.size() > maxReportSize) throw Error("the resolution's report is over 16 MiB: refused");
        }
    }
    std::vector<Dist> dists;
    try {
        auto report = json::parse(text);
        std::set<std::string> names;
        for (auto& item : report.at("install")) {
            auto d = fetched(item, app, appUrl);
            if (!names.insert(normalisePythonName(d.name)).second) throw Error("it names ", d.name, " twice");
            if (!app && normalisePythonName(d.name) == normalisePythonName(r.name)) {
                if (!sameVersion(d.version, r.version)) throw Error("it names ", d.name, " ", d.version, ", not ", r.version);
                d.app = true;
            }
            if (d.app && appMetadata) {
                std::vector<std::string> said, built = appMetadata->requiresDist;
                auto& meta = item.at("metadata");
                if (meta.contains("requires_dist")) said = meta.at("requires_dist").get<std::vector<std::string>>();
                std::sort(said.begin(), said.end());
                std::sort(built.begin(), built.end());
                if (normalisePythonName(d.name) != normalisePythonName(appMetadata->name) ||
                    !sameVersion(d.version, appMetadata->version) || said != built)
                    throw Error("what it says of the project (", d.name, " ", d.version, ", ", said.size(),
                        " requirements) is not what its wheel says (", appMetadata->name, " ", appMetadata->version, ", ",
                        built.size(), " requirements)");
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
    return dists;
}

// Files a validated resolution under its key (another build's, made meanwhile, stays), and for
// a project the hint that its next build may find it.
void Compiler::keepResolution(const json& inputs, const std::vector<Dist>& dists)
{
    auto key = keyOf(inputs);
    auto entryPath = cacheDir(store_) / "resolutions" / (key + ".json");
    if (!fs::exists(entryPath) || req_.refresh) {
        json list = json::array();
        for (auto& d : dists) list.push_back(d.toJson());
        writeEntry(entryPath, {{"inputs", inputs}, {"dists", list}});
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

std::vector<CompiledWheel> Compiler::run()
{
    makeBuildEnv();
    auto& r = req_.release;
    std::optional<CompiledWheel> app;
    std::optional<std::vector<Dist>> early;
    if (r.kind == Release::Kind::Wheel) app = releaseWheel();
    if (r.kind == Release::Kind::Project) app = projectWheel(resolutionInputs(std::nullopt), early);
    auto inputs = resolutionInputs(app);
    std::vector<Dist> dists;
    if (early) {
        auto lock = keyLock(ctx_, keyOf(inputs));
        keepResolution(inputs, *early);
        dists = std::move(*early);
    } else {
        dists = resolve(app, inputs);
    }

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
            wheels[i] = CompiledWheel{d.name, d.version, d.file, d.digest, filePath(store_, d.digest), d.app};
        else {
            json in = {"wheel", GROCKER_VERSION, compilerDigest(), req_.indexKey, "sdist", d.digest.str()};
            sdists.push_back({keyOf(in), i, in});
        }
    }
    std::sort(sdists.begin(), sdists.end(), [](auto& a, auto& b) { return a.key < b.key; });
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
        if (auto w = cachedWheel(key)) {
            say(ctx_, "compile: " + what + ": cached");
            wheels[i] = *w;
            wheels[i].requested = d.app;
            continue;
        }
        if (building.size() >= slots) finishOne();
        auto out = std::make_unique<OutDir>(ctx_);
        auto box = std::make_unique<StartedStep>(ctx_, *req_.compiler,
            boxStep("compile: " + what, {compileStep::sdistMode, compileStep::sdistPath(d.file)}, {{filePath(store_, d.digest), compileStep::sdistPath(d.file), true}}, *out));
        building.push_back({i, key, what, in, {d.name, d.version}, std::move(lock), std::move(out), std::move(box)});
    }
    while (!building.empty()) finishOne();
    std::sort(wheels.begin(), wheels.end(), [](auto& a, auto& b) { return normalisePythonName(a.name) < normalisePythonName(b.name); });
    return wheels;
}

} // namespace

std::vector<CompiledWheel> compileRelease(Context& ctx, const CompileRequest& request)
{
    Compiler c(ctx, request);
    return c.run();
}

} // namespace grocker::build
