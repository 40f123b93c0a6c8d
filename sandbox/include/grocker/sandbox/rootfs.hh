#pragma once
// Root filesystems for the sandbox: each layer of an image unpacked once into the store
// (<store>/layers/<diff_id hex>, keyed by diff_id, whiteouts kept in overlay form, read-only
// and shared by every step that uses it), a run folder per step, and its upper dir turned
// into a layer.

#include "grocker/oci/layer-writer.hh"
#include "grocker/oci/store.hh"
#include "grocker/oci/transport.hh"
#include "grocker/sandbox/id-map.hh"

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace grocker::sandbox {

// The lower dirs of `image`, top layer first, unpacking the layers not yet in the store.
std::vector<std::filesystem::path> prepareLowerDirs(oci::Store& store, const oci::Image& image,
                                                    const IdMap& map);

// A fresh run folder in the store, removed (inside the user namespace when rootless, as its
// files belong to subordinate ids) when this object dies.
class RunDir {
  public:
    RunDir(oci::Store& store, const IdMap& map);
    ~RunDir();
    RunDir(const RunDir&) = delete;
    RunDir& operator=(const RunDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
    const IdMap& map_;
};

// The sandbox's part in the store's upkeep (grocker fsck and purge): its unpacked layers and run
// folders, counted under `unpackedLayers`.
std::shared_ptr<oci::StorePart> storePart();
inline const std::string unpackedLayers = "unpacked layers";

// Writes `dir` as a layer from inside a user namespace with `map`, so owners are recorded as
// that namespace sees them (or as options.owner maps them, when set) and no folder is unreadable.
oci::LayerResult writeLayerInside(oci::Store& store, const std::filesystem::path& dir,
                                  const std::string& target, const IdMap& map,
                                  oci::LayerOptions options);

// One layer of the entries of `image` that `keep` selects (UnpackOptions::keep), as the image's
// layers applied in order leave them (whiteouts applied, not kept): unpacked into a temporary
// folder of the store and written from inside the user namespace of `map`, so owners are the
// image's. A slice of an image that holds enough of it for some command (the runner's app step
// over the root's Python).
oci::LayerResult sliceLayer(oci::Store& store, const oci::Image& image,
                            const std::function<bool(const std::string&, unsigned)>& keep,
                            const IdMap& map, oci::LayerOptions options);

// Writes the changes in runDir/upper as a layer, owners in the container's view.
oci::LayerResult commitUpper(oci::Store& store, const std::filesystem::path& runDir,
                             const IdMap& map, oci::LayerOptions options);

} // namespace grocker::sandbox
