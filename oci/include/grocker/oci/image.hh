#pragma once
// OCI descriptors, manifests, indexes and image configs (image-spec v1.1), with Docker schema 2
// accepted on input. Parsing is strict: a wrong type, a malformed digest, a size or digest that
// does not match the bytes, or a mediaType that disagrees with the content is an error that
// names the blob. Serialisation is canonical (keys sorted, no spaces) so digests are stable.

#include "grocker/oci/digest.hh"

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grocker::oci {

namespace media {
inline constexpr std::string_view ociManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view ociIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view ociConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view ociLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view dockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view dockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view dockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view dockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view dockerLayerForeign =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

bool isManifest(std::string_view mediaType);
bool isIndex(std::string_view mediaType);
bool isLayer(std::string_view mediaType);
} // namespace media

struct Platform {
    std::string architecture;
    std::string os;
    std::string variant;
    std::string osVersion;
    std::vector<std::string> osFeatures;

    // This machine's platform, in GOARCH terms (amd64, arm64, ...), os "linux".
    static Platform host();
    // Normalises architecture names (x86_64 → amd64, aarch64 → arm64, armhf → arm/v7, ...).
    static Platform normalise(Platform p);
    // "linux/arm64", "linux/arm/v7" (normalised); a UsageError for anything else.
    static Platform parse(std::string_view text);
    bool matches(const Platform& wanted) const;
    std::string str() const;
    // str() with '-' for '/' ("linux-arm64", "linux-arm-v7"): a platform in a file or tag name.
    std::string slug() const;
};

struct Descriptor {
    std::string mediaType;
    Digest digest;
    int64_t size = 0;
    std::map<std::string, std::string> annotations;
    std::vector<std::string> urls;
    std::optional<Platform> platform;
    std::string artifactType;
};

struct Manifest {
    std::string mediaType{media::ociManifest};
    Descriptor config;
    std::vector<Descriptor> layers;
    std::map<std::string, std::string> annotations;
    std::optional<Descriptor> subject;
    std::string artifactType;
};

struct Index {
    std::string mediaType{media::ociIndex};
    std::vector<Descriptor> manifests;
    std::map<std::string, std::string> annotations;
};

// An image config: the parsed JSON is kept whole (so unknown fields survive an append), with
// the fields Grocker reads checked when parsed.
struct ImageConfig {
    nlohmann::json json;

    std::vector<Digest> diffIds() const;
    Platform platform() const;
    // Its runtime config's Labels (an empty object when it has none, or something else there);
    // one of them, "" when missing or not a string.
    nlohmann::json labels() const;
    std::string label(std::string_view key) const;
    // A fresh config for an image with no layers, for this machine's platform.
    static ImageConfig scratch();
};

// Raises an Error unless `bytes` have the size and digest `d` says. `what` names the blob.
void verifyBlob(std::string_view bytes, const Descriptor& d, const std::string& what);

Descriptor parseDescriptor(const nlohmann::json& j, const std::string& where);
// `expectedMediaType`, when not empty, is what the referrer (an index, a registry's
// Content-Type) said the blob is.
Manifest parseManifest(std::string_view bytes, const std::string& what,
                       std::string_view expectedMediaType = {});
Index parseIndex(std::string_view bytes, const std::string& what,
                 std::string_view expectedMediaType = {});
ImageConfig parseConfig(std::string_view bytes, const std::string& what);
// What a manifest-or-index blob says it is, from its mediaType or its shape.
std::string sniffMediaType(std::string_view bytes, const std::string& what);

nlohmann::json toJson(const Descriptor& d);
nlohmann::json toJson(const Manifest& m);
nlohmann::json toJson(const Index& i);
// Canonical bytes: keys sorted, compact, as every digest of Grocker's own blobs is taken.
std::string canonical(const nlohmann::json& j);

// RFC 3339 UTC, seconds precision ("1970-01-01T00:00:00Z").
std::string rfc3339(int64_t epochSeconds);

} // namespace grocker::oci
