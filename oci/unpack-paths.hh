#pragma once
// Paths of layer entries as the unpacker (and the image diff) reads them (private to oci/): the
// whiteout names, lexical splitting that refuses to climb above the root, and what /proc says
// of an fd.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grocker::oci::unpacking {

// The OCI image-spec names for whiteouts.
constexpr std::string_view whiteoutPrefix = ".wh.";
constexpr std::string_view whiteoutMetaPrefix = ".wh..wh.";
constexpr std::string_view opaqueMarker = ".wh..wh..opq";

// Splits an archive path into components, resolving "." and ".." lexically, as `filepath.Clean`
// does for Docker and containerd. Returns nothing when ".." climbs above the root.
std::optional<std::vector<std::string>> splitPath(std::string_view name);

// The first `count` parts joined by '/'.
std::string joinPath(const std::vector<std::string>& parts, size_t count);

// `name` in the folder `parent` ("" for the root).
std::string childPath(const std::string& parent, const std::string& name);

// The last component of a raw archive name, ignoring trailing slashes.
std::string_view lastRawComponent(std::string_view name);

// /proc/self/fd/FD, and where it leads.
std::string procFdPath(int fd);

std::optional<std::string> readProcFdLink(int fd);

// Names in a folder, read from a fresh fd so the caller's fd offset is left alone. They are read
// in full before anything is removed, since removing while reading may skip entries.
std::vector<std::string> listFolder(int dirFd, const std::string& path, const std::string& what);

} // namespace grocker::oci::unpacking
