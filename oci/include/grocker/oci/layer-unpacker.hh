#pragma once
// Applies a layer (tar, gzip or zstd) onto a root folder, OCI semantics: whiteouts, opaque
// directories (applied first wherever the marker stands in the archive), hardlinks, symlinks,
// xattrs, modes, ownership. Nothing is ever written outside the root, whatever the archive
// says: every path is resolved under the root with openat2(RESOLVE_IN_ROOT) and every final
// component is created fd-relative with O_NOFOLLOW.

#include "grocker/oci/digest.hh"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace grocker::oci {

struct UnpackOptions {
    // Apply the archive's uid/gid with fchownat. Off for rootless unpacking (files are then
    // owned by the caller), as umoci --rootless.
    bool preserveOwnership = true;
    // Keep whiteouts as overlayfs does (a 0/0 character device for `.wh.NAME`, the xattr
    // user.overlay.opaque=y for `.wh..wh..opq`) instead of applying them: for unpacking each
    // layer into its own folder, used as an overlay lower dir.
    bool overlayWhiteouts = false;
    // Called for things skipped (device nodes that cannot be created, ownership that cannot be
    // applied, ...), once per kind of problem.
    std::function<void(const std::string&)> warn;
    // When set, only the entries it returns true for are applied (whiteouts always are): its
    // arguments are the entry's path under the root ("usr/bin/python3", no leading slash) and
    // its type (AE_IFREG, AE_IFDIR, AE_IFLNK...; a hardlink's is AE_IFREG). For a slice of an
    // image (sandbox::sliceLayer), flattened: overlayWhiteouts off.
    std::function<bool(const std::string& path, unsigned type)> keep;
};

// Applies the layer read from `layerFile` onto `root` (an existing folder). When
// `expectedDigest` is given, the bytes of the file are hashed as they are read and a mismatch
// is an error naming the layer.
void unpackLayer(const std::filesystem::path& layerFile, const std::filesystem::path& root,
                 const UnpackOptions& options = {},
                 const std::optional<Digest>& expectedDigest = {});

// Same, from an open file descriptor (read from its current offset to the end).
void unpackLayerFd(int fd, const std::string& what, const std::filesystem::path& root,
                   const UnpackOptions& options = {},
                   const std::optional<Digest>& expectedDigest = {});

} // namespace grocker::oci
