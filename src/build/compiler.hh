#pragma once
// The insides of the compile pass (compile.hh is its interface), private to src/build/: the
// files and output folders of the boxes, and the Compiler that runs one compile. compiler.cc
// holds the boxes and the wheels, compiler-resolve.cc the resolution and the fetching of every
// file it names, compiler-files.cc the host's handling of files a box or an index gives.

#include "caches.hh"
#include "compile-contract.hh"
#include "compile.hh"
#include "grocker/file.hh"
#include "grocker/registry/http.hh"
#include "grocker/sandbox/id-map.hh"
#include "grocker/sandbox/rootfs.hh"
#include "python-dists.hh"

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace grocker::build::compiling {

namespace fs = std::filesystem;
using namespace grocker::oci;
using nlohmann::json;

inline constexpr uint64_t maxFileSize = uint64_t(4) << 30; // a wheel or sdist: 4 GiB at most
inline constexpr size_t maxReportSize = 16 << 20;
// Where the box that resolves a project from its folder (grocker-compile resolve-project) has its
// copy: the report names the project by this folder's URL.
inline constexpr std::string_view earlyProject = compileStep::projectCopy;

// 64 lowercase hex digits: a sha256 as cache keys and entries spell it.
bool hex64(const std::string& s);

// Copies what `fd` reads (at most maxFileSize bytes) into cache/files under its digest; an
// existing file of that digest stays. `what` names the source in errors.
Digest putFile(const Store& store, int fd, const std::string& what);
// putFile of the host file `path`, which must be a regular file (a FIFO is not waited on; with
// `followLinks` false, a symlink is refused too): a find-links folder's, a compiler's wheel.
Digest putHostFile(const Store& store, const fs::path& path, const std::string& what,
                   bool followLinks);

// Opens `name` in the folder `dirFd` as a step left it: no symlink followed, no FIFO waited on,
// a regular file only.
AutoCloseFD openUntrusted(int dirFd, const std::string& name, const std::string& what);

// The names in a box's /out, read without following links.
std::vector<std::string> outNames(const fs::path& out, AutoCloseFD& dirFd);

// Writes a cache entry the host made.
void writeEntry(const fs::path& path, const json& j);

// Folders the sandbox's grocker user (uid 1000 inside) must write, and grocker read afterwards.
void prepareForGrocker(Context& ctx, const fs::path& dir);

// A box's output folder, removed (inside the user namespace: its files are the box's) after.
struct OutDir {
    const sandbox::IdMap& map;
    fs::path path;
    OutDir(Context& ctx)
        : map(ctx.map),
          path(makeTempDir(ctx.store.tmpDir(), ".tmp-" + std::to_string(::getpid()) + "-out-"))
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
void extractWheel(const fs::path& wheel, const fs::path& target);

// One distribution of a resolution, as the host checked it.
struct Dist {
    std::string name, version, file;
    Digest digest;
    bool sdist = false;
    bool app = false;

    json toJson() const
    {
        return {{"name", name},           {"version", version}, {"file", file},
                {"digest", digest.str()}, {"sdist", sdist},     {"app", app}};
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

// A release's distributions, as a box's report or a cache entry gave them.
struct Resolution {
    std::vector<Dist> dists;
    // Whether no requirement it went through says platform_machine (in its distributions'
    // metadata, the constraints, the requirements added to the release): what it resolved to
    // is then the same on every machine of its Python and OS, but for which file of each
    // release (NativeTwin). False when not known (an entry written before it was recorded).
    bool machineFree = false;
    // Taken from the machine's platform's resolution (nativeResolution): kept once the wheels
    // built from its sdists were found to require what the machine's did. `native`: that
    // resolution's distributions, one for each of `dists`.
    bool fromNative = false;
    std::vector<Dist> native;
};

// What the wheel built from the sdist of digest `sdist` by `compiler` is cached under.
inline json sdistWheelInputs(const std::string& compiler, const std::string& indexKey,
                             const Digest& sdist)
{
    return {"wheel", GROCKER_VERSION, compiler, indexKey, "sdist", sdist.str()};
}

// Whether `file` is a wheel or an sdist of `name` `version`; throws when it is neither.
bool isSdistOf(const std::string& file, const std::string& name, const std::string& version);

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
    bool indexesChecked_ = false;

    // The index answers at all (any HTTP status), asked once by the host before the first
    // resolution box: a build whose index cannot be reached stops at once, with an error naming
    // it, instead of pip retrying it in the box for every package. An extra index that cannot
    // be reached is a warning (pip skips it).
    void checkIndexes();
    std::string compilerDigest() const { return req_.compiler->manifestDescriptor.digest.str(); }
    bool haveFile(const Digest& d);
    const std::map<std::string, fs::path>& compilerWheels();
    void makeBuildEnv();
    // A box's step: the compiler and the build environment made ready first.
    Step boxStep(const std::string& name, const std::vector<std::string>& args,
                 std::vector<sandbox::Volume> volumes, const OutDir& out);
    Digest takeWheel(const OutDir& out, const std::string& what, std::string& file);
    using Expected = std::optional<std::pair<std::string, std::string>>; // name, version
    std::optional<CompiledWheel> cachedWheel(const std::string& key, const json& inputs,
                                             const Expected& expect);
    std::optional<CompiledWheel> remoteWheel(const std::string& key, const json& inputs,
                                             const Expected& expect);
    // A wheel of the store filed under `key` in the registry's build cache too, when it is
    // written and lacks it (a store warm before the cache was; another platform's pure wheel).
    void intoRemote(const std::string& key, const json& inputs, const CompiledWheel& w);
    // Pure-Python wheels (*-none-any.whl) are shared by the platforms of a runtime: also filed
    // under these inputs, which name the runtime and the index settings instead of the compiler.
    json pureInputs(const json& inputs) const;
    std::optional<CompiledWheel> sharedPureWheel(const std::string& key, const json& inputs,
                                                 const Expected& expect);
    CompiledWheel checkedWheel(const std::string& key, const json& inputs, const std::string& made,
                               const std::string& file, const Digest& d, const Expected& expect);
    CompiledWheel takeBuilt(const std::string& key, const json& inputs, const std::string& what,
                            const OutDir& out, const Expected& expect);
    CompiledWheel releaseWheel();
    std::optional<CompiledWheel> indexWheel();
    CompiledWheel projectWheel(const json& resolutionInputs, std::optional<Resolution>& resolved);
    // The wheels of a resolution: taken as they are, from the cache, or built from their sdists
    // in boxes side by side.
    std::vector<CompiledWheel> wheelsOf(const std::optional<CompiledWheel>& app,
                                        const std::vector<Dist>& dists);
    json resolutionInputs(const std::optional<CompiledWheel>& app) const;
    json hintInputs(const json& resolutionInputs) const;
    bool resolutionHinted(const json& resolutionInputs);
    std::vector<std::string> resolveArgs(const std::string& mode, const std::string& target) const;
    Resolution resolve(const std::optional<CompiledWheel>& app, const json& inputs);
    Resolution resolveInBox(const std::optional<CompiledWheel>& app);
    Resolution readReport(const OutDir& out, const std::optional<CompiledWheel>& app,
                          const std::string& appUrl, const DistMetadata* appMetadata);
    void keepResolution(const json& inputs, const Resolution& resolution, bool inRemote = false);
    std::optional<Resolution> remoteResolution(const std::optional<CompiledWheel>& app,
                                               const json& inputs);
    // This platform's resolution made from the machine's platform's (req_.native), or none
    // (what stood in the way said).
    std::optional<Resolution> nativeResolution(const std::optional<CompiledWheel>& app,
                                               const json& inputs);
    // Why the wheels of a resolution taken from the machine's platform's do not bear it out (a
    // wheel of this platform requiring other distributions than the machine's of the same
    // release), or empty.
    std::string unlikeNative(const Resolution& resolution,
                             const std::vector<CompiledWheel>& wheels);
    // The file of `native`'s release for this platform, as pip here would pick it among the
    // find-links folder's and the index pages': a wheel of the best tag, else the machine's own
    // file when its tags are this platform's too (a compiler's wheel), else an sdist; nullopt
    // when there is none.
    std::optional<Dist> fileForHere(const Dist& native);
    void ensureFile(const Dist& d);
    Dist fetched(const json& item, const std::optional<CompiledWheel>& app,
                 const std::string& appUrl);
    // The pages that list the files of distribution `name`: its page on each index, then the
    // find-links pages.
    std::vector<std::string> pagesOf(const std::string& name) const;
    Digest fetchFromIndex(const std::string& name, const std::string& file);
    Digest download(const std::string& url, const std::string& sha256, const std::string& what);
    const std::vector<IndexLink>& page(const std::string& url);
    registry::HttpClient& http()
    {
        if (!http_) http_ = std::make_unique<registry::HttpClient>();
        return *http_;
    }
};

} // namespace grocker::build::compiling
