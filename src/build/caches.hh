#pragma once
// The build's caches in the store, each with one owner of its format here, and their parts in
// grocker fsck and grocker purge (oci::StorePart):
//   cache/steps/KEY.json          a step's result: {"layer": descriptor, "diffId", "step"}
//                                 (step-cache.cc)
//   cache/files/sha256/HEX        compile cache files by content: sources and built wheels
//   cache/wheels/KEY.json         {inputs, file, digest, name, version}: a built wheel
//   cache/resolutions/KEY.json    {inputs, dists}: a validated resolution
//   cache/hints/KEY.json          {inputs, resolution}: the resolution a project had last
//   cache/build-envs/KEY/         a build environment extracted by the host from wheels
//                                 (compile-cache.cc)
// KEY is cacheKey(inputs), so fsck can tell an entry filed under the wrong key.

#include "grocker/oci/store.hh"

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace grocker::build {

// What the parts count, under these names, in fsck's and purge's reports.
inline const std::string stepCacheEntries = "step cache entries";
inline const std::string compileCacheEntries = "compile cache entries";
inline const std::string buildEnvironments = "build environments";

std::filesystem::path cacheDir(const oci::Store& s);
std::filesystem::path filesDir(const oci::Store& s);
std::filesystem::path filePath(const oci::Store& s, const oci::Digest& d);
// The sha256 of the file at `p`, read without following a link.
oci::Digest hashPath(const std::filesystem::path& p);
// The key an entry with these inputs is filed under.
std::string keyOf(const nlohmann::json& inputs);

// A resolution hint: its compiler and the resolution it names, or none when the file at `path`
// is not one.
struct Hint {
    std::string compiler, resolution;
};
std::optional<Hint> hintOf(const std::filesystem::path& path);

// The step cache's part: entries go with the kept images that hold their layer.
std::shared_ptr<oci::StorePart> stepCachePart();
// The compile caches' part: entries and build environments go with their compiler image.
std::shared_ptr<oci::StorePart> compileCachePart();

// The root images' package lists (package-cache.cc), for SBOMs.
std::shared_ptr<oci::StorePart> packageCachePart();

} // namespace grocker::build
