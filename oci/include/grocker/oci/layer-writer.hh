#pragma once
// Turns a folder (a host folder, or an overlay upper dir with its whiteouts) into a
// reproducible layer blob in the store: entries sorted by path, mtimes clamped to
// SOURCE_DATE_EPOCH (and the source mtime a timestamp-checked .pyc records clamped the same way,
// so that it stays valid), owners chosen by the caller (never the host's), no atime/ctime, PAX
// for what ustar cannot hold, hardlinks as type 1 after their target. The tar is produced, hashed
// (diff_id), compressed, hashed again (digest) and written in one streaming pass.

#include "grocker/oci/compress.hh"
#include "grocker/oci/image.hh"
#include "grocker/oci/sink.hh"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <sys/types.h>
#include <utility>

namespace grocker::oci {

class Store;

// Changes whenever this writer would write the same tree as other bytes: part of the key of
// every cached layer made by a step, so that no build reuses a layer of the older form.
// 2: timestamp-checked .pyc files clamped as their sources are.
inline constexpr const char* layerFormat = "2";

struct LayerOptions {
    CompressOptions compress;
    // Every mtime is clamped to this (seconds since the epoch).
    int64_t sourceDateEpoch = 0;
    // The folder is an overlayfs upper dir: 0/0 character devices and files carrying an
    // overlay.whiteout xattr become ".wh." entries, overlay.opaque dirs get ".wh..wh..opq".
    bool overlayUpper = false;
    // Maps a host owner to the owner recorded in the layer; unset means root (0:0) for all.
    std::function<std::pair<uint64_t, uint64_t>(uid_t, gid_t)> owner;
};

struct LayerResult {
    Descriptor descriptor; // the compressed blob, with its media type
    Digest diffId;         // sha256 of the uncompressed tar
    uint64_t entries = 0;
};

// SOURCE_DATE_EPOCH from the environment, or 0 when unset; a malformed value is an error.
int64_t sourceDateEpochFromEnv();

// Writes the tar of `dir`, placed at `target` ("/" or an absolute folder) in the image, to `out`.
// Returns the number of entries.
uint64_t writeLayerTar(Sink& out, const std::filesystem::path& dir, const std::string& target,
                       const LayerOptions& options);

// Writes the layer into the store.
LayerResult writeLayer(Store& store, const std::filesystem::path& dir, const std::string& target,
                       const LayerOptions& options);

std::string layerMediaType(Compression c);

} // namespace grocker::oci
