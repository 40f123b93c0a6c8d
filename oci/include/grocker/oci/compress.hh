#pragma once
// Layer compression that uses every core and stays reproducible: block-parallel deflate
// (pigz-style, one valid gzip member, output independent of the thread count) and
// multi-threaded zstd (frame independent of the thread count).

#include "grocker/oci/sink.hh"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace grocker::oci {

enum class Compression { None, Gzip, Zstd };

std::string_view compressionName(Compression c);
// "gzip" | "zstd" | "none"; throws UsageError otherwise.
Compression parseCompression(std::string_view name);

struct CompressOptions {
    Compression compression = Compression::Gzip;
    // 0 means the compression's default (gzip 6, as gzip and pigz; zstd 3).
    int level = 0;
    // 0 means one per online core.
    unsigned threads = 0;
};

// Returns a sink that compresses what it is given and writes the result to `out`; finish()
// writes the trailer and calls out.finish(). Compression::None passes bytes through.
std::unique_ptr<Sink> makeCompressor(Sink& out, const CompressOptions& options);

// Detects the compression of a blob from its first bytes (gzip 1f8b, zstd 28b52ffd).
Compression detectCompression(std::string_view head);

} // namespace grocker::oci
