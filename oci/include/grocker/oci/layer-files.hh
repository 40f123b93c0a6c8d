#pragma once
// A few files of an image read straight from its layer blobs, without unpacking it: what a
// pass needs to know of an image's content (its dpkg database, say) before deciding what to
// unpack or slice.

#include "grocker/oci/image.hh"
#include "grocker/oci/store.hh"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace grocker::oci {

// A regular file's content, or a symbolic link's target.
struct LayerFile {
    bool symlink = false;
    std::string data;
};

// The regular files and symbolic links that `want` selects (by path under the root, as the
// unpacker names them: "var/lib/dpkg/status", no leading slash), as the layers, applied in
// order, leave them: a later layer's entry replaces an earlier one's, its whiteouts and opaque
// folders hide what earlier layers put there (a hardlink reads as its target's content, when
// `want` selects the target too). Each
// blob's digest is checked as it is read. Throws when the wanted files hold more than
// `maxBytes` in all, naming `what`.
std::map<std::string, LayerFile> readImageFiles(const Store& store,
                                                const std::vector<Descriptor>& layers,
                                                const std::function<bool(const std::string&)>& want,
                                                uint64_t maxBytes, const std::string& what);

} // namespace grocker::oci
