#include "grocker/sandbox/rootfs.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/layer-unpacker.hh"

#include <algorithm>
#include <fcntl.h>
#include <sstream>
#include <sys/stat.h>
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

void unpackForSandbox(Store& store, const Descriptor& blob, const fs::path& dir, const IdMap& map)
{
    // One process at a time per layer: one that finds a layer of another map moves it away
    // while no other is putting the new one in place.
    fs::create_directories(store.root() / "locks");
    FileLock lock(store.root() / "locks" / ("layer-" + dir.filename().string() + ".lock"), true);
    if (unpackedForMap(dir, map)) return; // made meanwhile
    if (fs::exists(dir)) {
        auto stale = store.tmpDir() / tempName();
        if (::rename(dir.c_str(), stale.c_str()) < 0)
            throw SysError("unable to move away '", dir.string(), "', unpacked for other ids");
        runInUserNamespace(map, [&] { removeTree(stale); });
    }
    // Unpacked beside and renamed: a killed unpack leaves no half layer under its name.
    auto tmp = store.tmpDir() / tempName();
    auto blobPath = store.blobPath(blob.digest);
    try {
        runInUserNamespace(map, [&] {
            fs::create_directory(tmp);
            UnpackOptions o;
            o.overlayWhiteouts = true;
            o.preserveOwnership = true;
            unpackLayer(blobPath, tmp, o, blob.digest);
            // On disk before it gets its name, as blobs are: after a power loss a layer
            // under its name is whole (ext4 may otherwise keep the names, not the data).
            AutoCloseFD fd(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!fd || ::syncfs(fd.get()) < 0)
                throw SysError("unable to flush the unpacked layer '", tmp.string(), "' to disk");
            if (::rename(tmp.c_str(), dir.c_str()) < 0 && errno != EEXIST && errno != ENOTEMPTY)
                throw SysError("unable to move the unpacked layer to '", dir.string(), "'");
        });
    } catch (Error& e) {
        runInUserNamespace(map, [&] { removeTree(tmp); });
        e.addContext(concat("while unpacking layer ", blob.digest.str(), " for the sandbox"));
        throw;
    }
    if (fs::exists(tmp))
        runInUserNamespace(map, [&] { removeTree(tmp); }); // lost a race: same content
}

} // namespace

std::vector<fs::path> prepareLowerDirs(Store& store, const Image& image, const IdMap& map)
{
    auto layersDir = store.root() / "layers";
    fs::create_directories(layersDir);
    std::vector<fs::path> lowers;
    auto diffIds = image.config.diffIds();
    for (size_t i = 0; i < image.manifest.layers.size(); i++) {
        auto dir = layersDir / diffIds[i].hex();
        if (!unpackedForMap(dir, map)) unpackForSandbox(store, image.manifest.layers[i], dir, map);
        lowers.push_back(dir);
    }
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
