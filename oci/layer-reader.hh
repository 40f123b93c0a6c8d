#pragma once
// Reading a layer blob entry by entry (private to oci/): the one libarchive reader of layers,
// for the unpacker and the image diff. Tar (ustar, pax, GNU), plain, gzip or zstd.

#include "grocker/oci/digest.hh"

#include <functional>
#include <optional>
#include <string>

struct archive;
struct archive_entry;

namespace grocker::oci {

// Calls `onEntry` for each entry of the layer read from `fd` (from its offset to its end);
// `onEntry` may read the entry's data from the archive. When `expectedDigest` is given, the raw
// (still compressed) bytes are hashed as they are read, so the digest is checked without reading
// the file twice; a mismatch is an error saying the layer is corrupt, preferred to the gzip or
// tar error a damaged download mostly shows as. `what` names the layer in messages.
void readLayerEntries(int fd, const std::string& what, const std::optional<Digest>& expectedDigest,
                      const std::function<void(archive*, archive_entry*)>& onEntry);

} // namespace grocker::oci
