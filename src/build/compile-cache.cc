// The compile caches' part in grocker fsck and grocker purge (cache/files, cache/wheels,
// cache/resolutions, cache/hints, cache/build-envs; caches.hh), and the helpers of their format.

#include "caches.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/strings.hh"
#include "python-dists.hh"
#include "steps.hh"

#include <cctype>
#include <fcntl.h>
#include <set>

namespace grocker::build {

namespace fs = std::filesystem;
using namespace grocker::oci;
using nlohmann::json;

fs::path cacheDir(const Store& s)
{
    return s.root() / "cache";
}
fs::path filesDir(const Store& s)
{
    return cacheDir(s) / "files" / "sha256";
}
fs::path filePath(const Store& s, const Digest& d)
{
    return filesDir(s) / d.hex();
}

std::string keyOf(const json& inputs)
{
    std::vector<std::string> parts;
    for (auto& p : inputs)
        parts.push_back(p.get<std::string>());
    return cacheKey(parts);
}

std::optional<Hint> hintOf(const fs::path& path)
{
    try {
        auto j = json::parse(readFile(path));
        Hint h{j.at("inputs").at(2).get<std::string>(), j.at("resolution").get<std::string>()};
        if (keyOf(j.at("inputs")) != path.stem().string() ||
            !Digest::valid("sha256:" + h.resolution))
            return std::nullopt;
        return h;
    } catch (std::exception&) {
        return std::nullopt;
    }
}

Digest hashPath(const fs::path& p)
{
    AutoCloseFD fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) throw SysError("unable to read '", p.string(), "'");
    Sha256 h;
    std::vector<char> buf(1 << 20);
    for (size_t n; (n = readSome(fd.get(), buf.data(), buf.size(), p.string())) > 0;)
        h.update(buf.data(), n);
    return h.finish();
}

namespace {

// The file a resolution's dist names, every field of the dist checked as the compile pass reads it.
Digest distFile(const json& j)
{
    j.at("name").get<std::string>();
    j.at("version").get<std::string>();
    j.at("file").get<std::string>();
    j.at("sdist").get<bool>();
    j.at("app").get<bool>();
    return Digest::parse(j.at("digest").get<std::string>());
}

// The files an entry needs (digests), or throws saying what is wrong with it.
std::vector<Digest> entryFiles(const Store& store, const fs::path& path, bool resolution,
                               std::string* compiler, std::set<Digest>* sdists = nullptr)
{
    json j;
    try {
        j = json::parse(readFile(path));
    } catch (json::exception&) {
        throw Error("it is not valid JSON (cut short?)");
    }
    try {
        auto key = path.stem().string();
        if (keyOf(j.at("inputs")) != key)
            throw Error("it is filed under a key that is not its inputs' (moved or forged)");
        if (compiler) *compiler = j.at("inputs").at(2).get<std::string>();
        std::vector<Digest> files;
        if (resolution) {
            for (auto& x : j.at("dists")) {
                files.push_back(distFile(x));
                if (sdists && x.at("sdist").get<bool>()) sdists->insert(files.back());
            }
            return files;
        }
        auto file = j.at("file").get<std::string>();
        auto d = Digest::parse(j.at("digest").get<std::string>());
        if (!fs::exists(filePath(store, d))) throw Error("its wheel ", d.str(), " is missing");
        auto m = readWheelMetadata(filePath(store, d), file);
        if (normalisePythonName(m.name) != normalisePythonName(j.at("name").get<std::string>()) ||
            !sameVersion(m.version, j.at("version").get<std::string>()))
            throw Error("its wheel holds ", m.name, " ", m.version, ", not what the entry says");
        return {d};
    } catch (json::exception& e) {
        throw Error("it lacks a field (", e.what(), ")");
    }
}

// Entries worth reading: not temp files (which the leftover search judges).
template <typename Part> std::vector<fs::path> entries(Part& part, const fs::path& dir)
{
    std::vector<fs::path> out;
    for (auto& e : part.entries(dir))
        if (!e.path().filename().string().starts_with(".tmp-")) out.push_back(e.path());
    return out;
}

const char* entryDir(bool resolution)
{
    return resolution ? "resolutions" : "wheels";
}

// An older grocker's caches: never trusted, never read.
std::vector<fs::path> oldCaches(const Store& store)
{
    return {store.root() / "wheels", cacheDir(store) / "compile"};
}

class CompileCachePart : public StorePart {
  public:
    void check(PartCheck& c) override
    {
        c.counted(compileCacheEntries, 0);
        auto& store = c.store();
        auto removeFile = [&](const fs::path& p) { return [&c, p] { c.removeFile(p); }; };
        auto bad = checkFiles(c);
        for (bool resolution : {false, true})
            for (auto& p : entries(c, cacheDir(store) / entryDir(resolution))) {
                if (p.extension() != ".json") continue;
                c.counted(compileCacheEntries);
                std::string problem;
                try {
                    // An sdist is fetched when its wheel must be built (a resolution from the
                    // registry's build cache comes without them): absent is fine, corrupt is not.
                    std::set<Digest> sdists;
                    for (auto& d : entryFiles(store, p, resolution, nullptr, &sdists))
                        if (bad.count(d.str()) ||
                            (!sdists.count(d) && !fs::exists(filePath(store, d))))
                            problem = "its file " + d.str() + " is missing or corrupt";
                } catch (Error& e) {
                    problem = e.message();
                }
                if (!problem.empty())
                    c.issue(p,
                            std::string("broken ") + (resolution ? "resolution" : "wheel") +
                                " cache entry: " + problem,
                            "removed", removeFile(p));
            }
        for (auto& p : entries(c, cacheDir(store) / "hints")) {
            if (p.extension() != ".json") continue;
            c.counted(compileCacheEntries);
            if (!hintOf(p))
                c.issue(p,
                        "broken resolution hint: not valid JSON, or filed under a key that is not "
                        "its inputs'",
                        "removed", removeFile(p));
        }
        checkBuildEnvs(c);
        for (auto& old : oldCaches(store))
            if (fs::exists(old))
                c.issue(old,
                        "a cache of an older grocker, which no build reads (its entries were named "
                        "by what build steps wrote)",
                        "removed", [&] { c.removeTree(old); });
    }

    // Entries go with the compiler image they were made with; files with the last entry.
    void sweep(PartSweep& s) override
    {
        auto& store = s.store();
        auto& kept = s.kept().blobs;
        std::set<std::string> keptFiles;
        for (bool resolution : {false, true})
            for (auto& p : entries(s, cacheDir(store) / entryDir(resolution))) {
                std::string compiler;
                std::vector<Digest> files;
                try {
                    files = entryFiles(store, p, resolution, &compiler);
                } catch (Error&) {
                    compiler.clear(); // broken: it goes, as fsck's repair would remove it
                }
                if (!kept.count(compiler)) {
                    s.dropFile(compileCacheEntries, p);
                    continue;
                }
                for (auto& d : files)
                    keptFiles.insert(d.hex());
            }
        for (auto& p : entries(s, filesDir(store)))
            if (!keptFiles.count(p.filename().string())) s.dropFile(compileCacheEntries, p);
        // A hint goes with its compiler image, or when the resolution it names is gone.
        for (auto& p : entries(s, cacheDir(store) / "hints")) {
            auto h = hintOf(p);
            if (!h || !kept.count(h->compiler) ||
                !fs::exists(cacheDir(store) / "resolutions" / (h->resolution + ".json")))
                s.dropFile(compileCacheEntries, p);
        }
        for (auto& p : entries(s, cacheDir(store) / "build-envs")) {
            std::string compiler;
            try {
                compiler = readFile(p / ".grocker-compiler");
            } catch (Error&) {
                // None (cut short, or made by an older grocker): it goes with no compiler kept.
            }
            while (!compiler.empty() && std::isspace(static_cast<unsigned char>(compiler.back())))
                compiler.pop_back();
            if (!kept.count(compiler)) s.dropTree(buildEnvironments, p);
        }
        for (auto& old : oldCaches(store))
            if (fs::exists(old)) s.dropTree(compileCacheEntries, old);
    }

    // Entries and files are written beside their names, build environments made beside theirs;
    // every folder of cache/ but the step cache's is this part's.
    void leftovers(const Store& store, LeftoverSearch& search) override
    {
        search.deadTemps(store.root() / "wheels");
        for (auto& e : search.entries(cacheDir(store))) {
            std::error_code ec;
            if (e.is_directory(ec) && !e.is_symlink(ec) && e.path().filename() != "steps")
                search.deadTemps(e.path());
        }
    }

  private:
    // Each file hashes to its name; returns the digests of those that do not.
    static std::set<std::string> checkFiles(PartCheck& c)
    {
        std::set<std::string> bad;
        for (auto& p : entries(c, filesDir(c.store()))) {
            c.counted(compileCacheEntries);
            auto name = p.filename().string();
            std::string problem;
            if (!Digest::valid("sha256:" + name))
                problem = "a file of the compile cache not named by its digest";
            else {
                try {
                    if (hashPath(p).hex() != name)
                        problem =
                            "a file of the compile cache whose content does not match its digest";
                } catch (Error& e) {
                    problem = "an unreadable file of the compile cache: " + e.message();
                }
            }
            if (problem.empty()) continue;
            bad.insert("sha256:" + name);
            c.issue(p, problem, "removed", [&] { c.removeFile(p); });
        }
        return bad;
    }

    // Each build environment is filed under its inputs' key.
    static void checkBuildEnvs(PartCheck& c)
    {
        for (auto& p : entries(c, cacheDir(c.store()) / "build-envs")) {
            c.counted(compileCacheEntries);
            std::string problem;
            try {
                if (keyOf(json::parse(readFile(p / ".grocker-inputs.json"))) !=
                    p.filename().string())
                    problem = "it is filed under a key that is not its inputs'";
            } catch (std::exception&) {
                problem = "it has no readable .grocker-inputs.json (made by an older grocker or "
                          "cut short)";
            }
            if (!problem.empty())
                c.issue(p, "broken build environment: " + problem, "removed",
                        [&] { c.removeTree(p); });
        }
    }
};

} // namespace

std::shared_ptr<StorePart> compileCachePart()
{
    return std::make_shared<CompileCachePart>();
}

} // namespace grocker::build
