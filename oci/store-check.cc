// grocker fsck: Store::check, and the view of it that the store's parts get (PartCheck).

#include "grocker/error.hh"
#include "grocker/oci/store.hh"
#include "store-upkeep.hh"

#include <algorithm>
#include <atomic>
#include <ctime>
#include <fcntl.h>
#include <map>
#include <sys/stat.h>
#include <thread>

namespace grocker::oci {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace upkeep;

// The state of every stored blob, hashed once (in parallel: a store holds gigabytes of layers).
class BlobStates {
  public:
    enum class State { Good, Corrupt, Missing };
    struct Info {
        State state = State::Missing;
        int64_t size = 0;
        std::string actual; // the digest of a corrupt blob's content, or why it is unreadable
    };

    // `files`: the blobs folder's files named by a digest.
    BlobStates(const Store& store, const std::vector<fs::path>& files, unsigned jobs)
        : store_(store)
    {
        std::vector<Info> infos(files.size());
        std::atomic<size_t> next{0};
        auto work = [&] {
            for (size_t i; (i = next++) < files.size();)
                infos[i] = hash(files[i]);
        };
        if (!jobs) jobs = std::max(1u, std::thread::hardware_concurrency());
        std::vector<std::thread> threads;
        for (unsigned t = 1; t < std::min<size_t>(jobs, files.size()); t++)
            threads.emplace_back(work);
        work();
        for (auto& t : threads)
            t.join();
        for (size_t i = 0; i < files.size(); i++)
            states_["sha256:" + files[i].filename().string()] = infos[i];
    }

    // Blobs written after the listing (by a concurrent build) are hashed when asked about.
    const Info& of(const Digest& d)
    {
        auto it = states_.find(d.str());
        if (it != states_.end()) return it->second;
        return states_[d.str()] = d.algorithm() == "sha256" ? hash(store_.blobPath(d)) : Info{};
    }

    // Why `d` cannot be used, or nothing. `kind`: "layer", "config", "manifest".
    std::optional<std::string> problem(const Descriptor& d, const std::string& kind)
    {
        auto& info = of(d.digest);
        auto name = kind + " " + d.digest.str();
        if (info.state == State::Missing) return name + " is missing";
        if (info.state == State::Corrupt) return name + " is corrupt";
        if (info.size != d.size)
            return concat(name, " has ", info.size, " bytes, not the ", d.size,
                          " its descriptor says");
        return std::nullopt;
    }

  private:
    static Digest hashFile(const fs::path& p)
    {
        AutoCloseFD fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) throw SysError("unable to open '", p.string(), "'");
        Sha256 h;
        std::vector<char> buf(1 << 20);
        for (size_t n; (n = readSome(fd.get(), buf.data(), buf.size(), p.string())) > 0;)
            h.update(buf.data(), n);
        return h.finish();
    }

    static Info hash(const fs::path& p)
    {
        Info info;
        struct stat st;
        if (::stat(p.c_str(), &st) < 0) return info;
        info.size = int64_t(st.st_size);
        try {
            auto actual = hashFile(p);
            info.state = actual.hex() == p.filename().string() ? State::Good : State::Corrupt;
            info.actual = "its content has digest " + actual.str();
        } catch (Error& e) {
            info.state = State::Corrupt;
            info.actual = e.message();
        }
        return info;
    }

    const Store& store_;
    std::map<std::string, Info> states_;
};

PartCheck::PartCheck(Store& store, bool repair, const Remover& remove, BlobStates& blobs,
                     CheckReport& report)
    : store_(store), repair_(repair), remove_(remove), blobs_(blobs), report_(report)
{
}

std::vector<fs::directory_entry> PartCheck::entries(const fs::path& dir)
{
    std::string error;
    auto out = entriesOf(dir, error);
    if (!error.empty()) issue(dir, error + ": nothing in it could be checked");
    return out;
}

std::optional<std::string> PartCheck::blobProblem(const Descriptor& d, const std::string& kind)
{
    return blobs_.problem(d, kind);
}

StoreIssue& PartCheck::issue(fs::path where, std::string what, const std::string& done,
                             const std::function<void()>& fix)
{
    report_.issues.push_back(StoreIssue{std::move(where), std::move(what), {}});
    // By index: a repair may report issues of its own.
    size_t n = report_.issues.size() - 1;
    if (repair_ && fix) {
        try {
            fix();
            report_.issues[n].repair = done;
        } catch (Error& e) {
            report_.issues[n].what += " (not repaired: " + e.message() + ")";
        }
    }
    return report_.issues[n];
}

void PartCheck::removeFile(const fs::path& p)
{
    unlinkFile(p);
}

void PartCheck::removeTree(const fs::path& p)
{
    remove_({p});
}

void PartCheck::removeTreeAside(const fs::path& p)
{
    auto gone = store_.tmpDir() / tempName();
    if (::rename(p.c_str(), gone.c_str()) < 0) throw SysError("unable to move '", p.string(), "'");
    remove_({gone});
}

// `indexError`: why index.json could not be read, or empty.
void Store::checkLayout(PartCheck& c, const std::string& indexError)
{
    auto indexPath = root_ / "index.json";
    if (!indexError.empty()) {
        auto aside = root_ / concat("index.json.corrupt-", ::time(nullptr));
        c.issue(indexPath, "unreadable index of the store's images: " + indexError,
                "kept as '" + aside.filename().string() +
                    "' and replaced by an empty index: every ref is gone",
                [&] {
                    auto l = lock(true);
                    if (::rename(indexPath.c_str(), aside.c_str()) < 0)
                        throw SysError("unable to rename '", indexPath.string(), "'");
                    writeFileAtomic(indexPath, canonical(toJson(Index{})));
                });
    }
    auto layoutPath = root_ / "oci-layout";
    try {
        auto j = json::parse(readFile(layoutPath));
        if (j.at("imageLayoutVersion").get<std::string>() != "1.0.0")
            throw Error("its version is not 1.0.0");
    } catch (std::exception& e) {
        c.issue(layoutPath, concat("unreadable OCI layout file: ", e.what()), "rewritten",
                [&] { writeFileAtomic(layoutPath, R"({"imageLayoutVersion":"1.0.0"})"); });
    }
}

// Each blob hashes to its name.
void Store::checkBlobs(PartCheck& c, BlobStates& blobs, CheckReport& r)
{
    for (auto& e : c.entries(root_ / "blobs" / "sha256")) {
        auto name = e.path().filename().string();
        std::error_code ec;
        bool file = e.is_regular_file(ec);
        if (ec) {
            c.issue(e.path(), "unreadable entry of the blobs folder: " + ec.message());
            continue;
        }
        if (!isHex64(name) || !file) {
            c.issue(e.path(),
                    "not a blob: the blobs folder holds only files named by their sha256 digest",
                    "removed", [&] { c.removeTree(e.path()); });
            continue;
        }
        r.blobs++;
        auto& info = blobs.of(Digest::parse("sha256:" + name));
        if (info.state != BlobStates::State::Corrupt) continue;
        c.issue(e.path(), "corrupt blob: " + info.actual, "removed", [&] { unlinkFile(e.path()); });
    }
}

namespace {

// Why the image `d` names is not whole (manifest, config, layers; indexes recursively), or
// nothing; each manifest judged once.
class ImageJudge {
  public:
    ImageJudge(const Store& store, BlobStates& blobs) : store_(store), blobs_(blobs) {}

    std::optional<std::string> problem(const Descriptor& d, int depth = 0)
    {
        if (auto it = judged_.find(d.digest.str()); it != judged_.end()) return it->second;
        std::optional<std::string> result;
        try {
            result = judge(d, depth);
        } catch (Error& e) {
            result = e.message();
        }
        return judged_[d.digest.str()] = result;
    }

  private:
    std::optional<std::string> judge(const Descriptor& d, int depth)
    {
        auto what = "manifest " + d.digest.str();
        if (auto p = blobs_.problem(d, "manifest")) return p;
        auto bytes = readFile(store_.blobPath(d.digest));
        auto type = d.mediaType.empty() ? sniffMediaType(bytes, what) : d.mediaType;
        if (media::isIndex(type)) {
            if (depth > 8) return what + ": indexes nested more than 8 deep";
            for (auto& m : parseIndex(bytes, what, type).manifests)
                if (auto p = problem(m, depth + 1)) return p;
            return std::nullopt;
        }
        if (!media::isManifest(type)) return std::nullopt; // an artifact: present is all we can say
        auto m = parseManifest(bytes, what, type);
        if (auto p = blobs_.problem(m.config, "config")) return p;
        auto config = parseConfig(readFile(store_.blobPath(m.config.digest)),
                                  "config " + m.config.digest.str());
        if (config.diffIds().size() != m.layers.size())
            return concat(what, " has ", m.layers.size(), " layers but its config has ",
                          config.diffIds().size(), " diff_ids");
        for (auto& l : m.layers) {
            // Non-distributable layers are fetched from their URLs, never stored.
            if (!l.urls.empty() && blobs_.of(l.digest).state == BlobStates::State::Missing)
                continue;
            if (auto p = blobs_.problem(l, "layer")) return p;
        }
        return std::nullopt;
    }

    const Store& store_;
    BlobStates& blobs_;
    std::map<std::string, std::optional<std::string>> judged_;
};

} // namespace

// Each ref's image is whole; repairing drops the refs of those that are not.
void Store::checkRefs(PartCheck& c, const Index& index, BlobStates& blobs, CheckReport& r)
{
    auto indexPath = root_ / "index.json";
    ImageJudge judge(*this, blobs);
    std::vector<size_t> incomplete;
    for (auto& d : index.manifests) {
        r.refs++;
        auto problem = judge.problem(d);
        if (!problem) continue;
        auto name = refName(d);
        c.issue(indexPath, (name.empty() ? "image " + d.digest.str() + " (no ref name)"
                                         : "ref '" + name + "' (" + d.digest.str() + ")") +
                               " is incomplete: " + *problem);
        incomplete.push_back(r.issues.size() - 1);
    }
    if (!c.repairing() || incomplete.empty()) return;
    // Dropped by name and digest under the index lock: a ref set again since is kept.
    std::vector<Descriptor> drop;
    for (auto& d : index.manifests)
        if (judge.problem(d)) drop.push_back(d);
    try {
        auto l = lock(true);
        Index now = readIndex();
        std::erase_if(now.manifests, [&](const Descriptor& d) {
            return std::any_of(drop.begin(), drop.end(), [&](const Descriptor& x) {
                return x.digest == d.digest && refName(x) == refName(d);
            });
        });
        writeFileAtomic(indexPath, canonical(toJson(now)));
        for (auto n : incomplete)
            r.issues[n].repair = "dropped the ref: build or pull the image again";
    } catch (Error& e) {
        for (auto n : incomplete)
            r.issues[n].what += " (not repaired: " + e.message() + ")";
    }
}

// What dead processes left: temp files of gone pids; run folders and unheld key locks only when
// known to be no other grocker process's (run folders found when this Store was opened alone,
// locks when it was; all when it is exclusive). Reported, never a failure of the check: they
// take room but harm nothing, and the next command opening the store alone removes them.
void Store::checkLeftovers(PartCheck& c)
{
    auto search = findLeftovers(exclusive_, exclusive_ || aloneAtOpen_);
    auto& leftovers = search.found;
    for (auto& l : deadAtOpen_) {
        // Lock files were probed again, above: one may be held by now.
        std::error_code ec;
        if (l.kind == StoreLeftover::Kind::Lock || !fs::exists(l.path, ec)) continue;
        if (std::none_of(leftovers.begin(), leftovers.end(),
                         [&](auto& x) { return x.path == l.path; }))
            leftovers.push_back(l);
    }
    std::sort(leftovers.begin(), leftovers.end(), [](auto& a, auto& b) { return a.path < b.path; });
    for (auto& l : leftovers)
        c.issue(l.path, l.what, "removed", [&] { c.removeTree(l.path); }).leftover = true;
    for (auto& e : search.errors)
        c.issue(root_, e + ": what dead processes left there could not be looked for");
}

CheckReport Store::check(const CheckOptions& o)
{
    if (o.repair && !exclusive_)
        throw Error("internal error: repairing the store '", root_.string(),
                    "' needs the exclusive gc lock");
    Remover remove = o.remove ? o.remove : Remover(removeTrees);
    CheckReport r;
    // The refs first, then the blobs: every blob a ref read here names was stored before it.
    std::optional<Index> index;
    std::string indexError;
    try {
        index = readIndex();
    } catch (Error& e) {
        indexError = e.message();
    }
    // Every blob hashed once, for every pass and part to ask. (A blobs folder that cannot be
    // listed, checkBlobs reports.)
    std::string listError;
    std::vector<fs::path> files;
    for (auto& e : entriesOf(root_ / "blobs" / "sha256", listError)) {
        std::error_code ec;
        if (isHex64(e.path().filename().string()) && e.is_regular_file(ec))
            files.push_back(e.path());
    }
    BlobStates blobs(*this, files, o.jobs);
    PartCheck c(*this, o.repair, remove, blobs, r);
    checkLayout(c, indexError);
    checkBlobs(c, blobs, r);
    if (index) checkRefs(c, *index, blobs, r);
    // Then each part's entries, which may name blobs, in the order the program gave them.
    for (auto& part : parts_)
        part->check(c);
    checkLeftovers(c);
    return r;
}

} // namespace grocker::oci
