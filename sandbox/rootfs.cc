#include "grocker/sandbox/rootfs.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/lock.hh"
#include "grocker/oci/layer-unpacker.hh"

#include <algorithm>
#include <atomic>
#include <deque>
#include <exception>
#include <fcntl.h>
#include <mutex>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace grocker::sandbox {

namespace fs = std::filesystem;
using namespace grocker::oci;

namespace {

void removeTree(const fs::path& p)
{
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(p, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
    fs::remove_all(p, ec);
}

// A layer unpacked under another map (as root by an older grocker, whose map was the identity;
// rootless before the subordinate range changed) shows wrong owners inside. Its top folder
// tells: made by the container's root, or given the owner of the layer's "./", it is owned by
// an id of the map it was unpacked with (root's old ones are host root's, which the range
// leaves out).
bool unpackedForMap(const fs::path& dir, const IdMap& map)
{
    struct stat st;
    if (::lstat(dir.c_str(), &st) < 0) return false;
    auto mapped = [](const std::vector<IdRange>& ranges, uint32_t id) {
        return std::any_of(ranges.begin(), ranges.end(),
                           [&](auto& r) { return id >= r.outside && id - r.outside < r.count; });
    };
    return mapped(map.uids, st.st_uid) && mapped(map.gids, st.st_gid);
}

struct Unpack {
    Descriptor blob;
    fs::path dir, tmp;
};

// Unpacks the layers side by side (each is a folder of its own), in one user namespace made
// once (threads are started inside it, never forked from), each beside its name; flushed to disk
// with one syncfs, then renamed: a killed unpack leaves no half layer under its name, and after a
// power loss a layer under its name is whole (ext4 may otherwise keep the names, not the data).
void unpackSideBySide(Store& store, std::vector<Unpack>& jobs, const IdMap& map)
{
    runInUserNamespace(map, [&] {
        std::atomic<size_t> next{0};
        std::mutex mutex;
        std::exception_ptr failure;
        auto work = [&] {
            for (size_t i; (i = next++) < jobs.size();) {
                try {
                    fs::create_directory(jobs[i].tmp);
                    UnpackOptions o;
                    o.overlayWhiteouts = true;
                    o.preserveOwnership = true;
                    unpackLayer(store.blobPath(jobs[i].blob.digest), jobs[i].tmp, o,
                                jobs[i].blob.digest);
                } catch (Error& e) {
                    e.addContext(concat("while unpacking layer ", jobs[i].blob.digest.str(),
                                        " for the sandbox"));
                    std::lock_guard lock(mutex);
                    if (!failure) failure = std::current_exception();
                    next = jobs.size(); // the others stop at their next layer
                } catch (...) {
                    std::lock_guard lock(mutex);
                    if (!failure) failure = std::current_exception();
                    next = jobs.size();
                }
            }
        };
        std::vector<std::thread> threads;
        size_t n = std::min<size_t>(jobs.size(), std::max(1u, std::thread::hardware_concurrency()));
        for (size_t t = 1; t < n; t++)
            threads.emplace_back(work);
        work();
        for (auto& t : threads)
            t.join();
        if (failure) std::rethrow_exception(failure);
        AutoCloseFD fd(::open(store.tmpDir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!fd || ::syncfs(fd.get()) < 0)
            throw SysError("unable to flush the unpacked layers in '", store.tmpDir().string(),
                           "' to disk");
        for (auto& j : jobs)
            if (::rename(j.tmp.c_str(), j.dir.c_str()) < 0 && errno != EEXIST && errno != ENOTEMPTY)
                throw SysError("unable to move the unpacked layer to '", j.dir.string(), "'");
    });
}

// The layers not unpacked yet for this map, unpacked. One process at a time per layer (locks
// taken in the order of their names, so two processes cannot wait for each other): one that finds
// a layer of another map moves it away while no other is putting the new one in place.
void unpackForSandbox(Store& store, std::vector<std::pair<Descriptor, fs::path>> layers,
                      const IdMap& map)
{
    fs::create_directories(store.root() / "locks");
    std::sort(layers.begin(), layers.end(),
              [](auto& a, auto& b) { return a.second.filename() < b.second.filename(); });
    std::deque<FileLock> locks;
    std::vector<Unpack> jobs;
    for (auto& [blob, dir] : layers) {
        locks.emplace_back(store.root() / "locks" / ("layer-" + dir.filename().string() + ".lock"),
                           true);
        if (unpackedForMap(dir, map)) continue; // made meanwhile
        if (fs::exists(dir)) {
            auto stale = store.tmpDir() / tempName();
            if (::rename(dir.c_str(), stale.c_str()) < 0)
                throw SysError("unable to move away '", dir.string(), "', unpacked for other ids");
            runInUserNamespace(map, [&] { removeTree(stale); });
        }
        jobs.push_back({blob, dir, store.tmpDir() / tempName()});
    }
    if (jobs.empty()) return;
    // What is left beside the names: a failed unpack's, or one that lost a race (same content).
    auto removeTemps = [&] {
        if (std::none_of(jobs.begin(), jobs.end(), [](auto& j) { return fs::exists(j.tmp); }))
            return;
        runInUserNamespace(map, [&] {
            for (auto& j : jobs)
                if (fs::exists(j.tmp)) removeTree(j.tmp);
        });
    };
    try {
        unpackSideBySide(store, jobs, map);
    } catch (...) {
        removeTemps();
        throw;
    }
    removeTemps();
}

} // namespace

std::vector<fs::path> prepareLowerDirs(Store& store, const Image& image, const IdMap& map)
{
    auto layersDir = store.root() / "layers";
    fs::create_directories(layersDir);
    std::vector<fs::path> lowers;
    std::vector<std::pair<Descriptor, fs::path>> missing;
    auto diffIds = image.config.diffIds();
    for (size_t i = 0; i < image.manifest.layers.size(); i++) {
        auto dir = layersDir / diffIds[i].hex();
        if (!unpackedForMap(dir, map) &&
            std::none_of(missing.begin(), missing.end(), [&](auto& m) { return m.second == dir; }))
            missing.emplace_back(image.manifest.layers[i], dir);
        lowers.push_back(dir);
    }
    if (!missing.empty()) unpackForSandbox(store, std::move(missing), map);
    std::reverse(lowers.begin(), lowers.end());
    if (lowers.empty()) {
        // overlay needs a lower dir: scratch gets an empty one.
        auto empty = layersDir / "empty";
        fs::create_directories(empty);
        lowers.push_back(empty);
    }
    return lowers;
}

RunDir::RunDir(Store& store, const IdMap& map) : map_(map)
{
    fs::create_directories(store.root() / "run");
    path_ = makeTempDir(store.root() / "run", "step-");
    ::chmod(path_.c_str(), 0755);
}

RunDir::~RunDir()
{
    try {
        runInUserNamespace(map_, [&] { removeTree(path_); });
    } catch (...) {
        // Leftovers are found by the next store clean-up; never throw from a destructor.
    }
}

LayerResult commitUpper(Store& store, const fs::path& runDir, const IdMap& map,
                        LayerOptions options)
{
    options.overlayUpper = true;
    // Read from inside the user namespace: there the upper dir shows the container's owners,
    // and folders a step made private to another user (apt's partial/) can still be read.
    return writeLayerInside(store, runDir / "upper", "/", map, std::move(options));
}

LayerResult sliceLayer(Store& store, const Image& image,
                       const std::function<bool(const std::string&, unsigned)>& keep,
                       const IdMap& map, LayerOptions options)
{
    auto dir = store.tmpDir() / (".tmp-" + std::to_string(::getpid()) + "-slice-" + tempName());
    struct Remove {
        const fs::path& dir;
        const IdMap& map;
        ~Remove()
        {
            try {
                runInUserNamespace(map, [&] { removeTree(dir); });
            } catch (...) {
                // a leftover temporary folder: the store's upkeep removes it
            }
        }
    } remove{dir, map};
    runInUserNamespace(map, [&] {
        fs::create_directory(dir);
        UnpackOptions o;
        o.preserveOwnership = true;
        o.keep = keep;
        for (auto& l : image.manifest.layers)
            unpackLayer(store.blobPath(l.digest), dir, o, l.digest);
    });
    return writeLayerInside(store, dir, "/", map, std::move(options));
}

LayerResult writeLayerInside(Store& store, const fs::path& dir, const std::string& target,
                             const IdMap& map, LayerOptions options)
{
    if (map.privileged) {
        // Root reads every tree as it is, and the store's files it writes stay root's: owners are
        // turned into the container's view here, not by a namespace.
        if (!options.owner)
            options.owner = [&map](uid_t u, gid_t g) {
                return std::pair<uint64_t, uint64_t>(map.uidInside(u), map.gidInside(g));
            };
        return writeLayer(store, dir, target, options);
    }
    if (!options.owner)
        options.owner = [](uid_t u, gid_t g) { return std::pair<uint64_t, uint64_t>(u, g); };
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) < 0) throw SysError("unable to make a pipe");
    AutoCloseFD readEnd(fds[0]), writeEnd(fds[1]);
    runInUserNamespace(map, [&] {
        auto r = writeLayer(store, dir, target, options);
        auto text = concat(r.descriptor.mediaType, "\n", r.descriptor.digest.str(), "\n",
                           r.descriptor.size, "\n", r.diffId.str(), "\n", r.entries, "\n");
        writeFull(writeEnd.get(), text, "the result pipe");
    });
    writeEnd.reset();
    std::istringstream in(readFd(readEnd.get()));
    std::string mediaType, digest, size, diffId, entries;
    if (!std::getline(in, mediaType) || !std::getline(in, digest) || !std::getline(in, size) ||
        !std::getline(in, diffId) || !std::getline(in, entries))
        throw Error("the layer writer in the user namespace returned no result");
    LayerResult r;
    r.descriptor = Descriptor{mediaType, Digest::parse(digest), std::stoll(size)};
    r.diffId = Digest::parse(diffId);
    r.entries = std::stoull(entries);
    return r;
}

} // namespace grocker::sandbox
