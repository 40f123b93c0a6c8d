#pragma once
// Why two images differ: their manifests and configs compared field by field, their layers paired
// by position, and inside each pair that differs the files (tar entries) added, removed and
// changed, with the attributes that changed. The data behind `grocker diff`; printing is the
// command's. Layers are streamed from the store, never held in memory: only a compact record of
// each entry is kept (about a hundred bytes and its names).

#include "grocker/oci/image.hh"
#include "grocker/oci/tar-writer.hh"
#include "grocker/oci/transport.hh"

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace grocker::oci {

class Store;

// One JSON value that differs, at `path` ("config.Env[\"PATH\"]", "history[2].created_by",
// "annotations[\"org.opencontainers.image.version\"]"); nullopt where one side has none.
struct ValueChange {
    std::string path;
    std::optional<nlohmann::json> before, after;
};

// A layer entry as the diff sees it.
struct FileInfo {
    std::string path; // cleaned as the unpacker cleans it ("etc/passwd"; "" is the root folder)
    TarEntry::Type type = TarEntry::Regular;
    uint32_t mode = 0; // permission bits, setuid/setgid/sticky included
    uint64_t uid = 0, gid = 0;
    std::string uname, gname; // as the archive names the owner, when it does
    int64_t mtime = 0;
    uint32_t mtimeNsec = 0;
    uint64_t size = 0;      // regular files
    std::string sha256;     // hex digest of the content, regular files
    std::string linkTarget; // a symlink's target, or the path a hard link links to (cleaned)
    uint32_t devMajor = 0, devMinor = 0;
    std::vector<std::pair<std::string, std::string>> xattrs; // by name, security.* included

    // The OCI whiteouts, from the entry's name: ".wh.NAME" removes NAME of the layers below,
    // ".wh..wh..opq" hides what they have in its folder.
    enum class Marker { None, Whiteout, Opaque };
    Marker marker() const;
    // What a whiteout removes or an opaque marker hides the content of ("etc/foo", "etc").
    std::string whiteoutTarget() const;
};

// The attributes a changed entry can differ in (bits of FileChange::attributes).
enum FileAttribute : unsigned {
    AttrType = 1u << 0,
    AttrMode = 1u << 1,
    AttrOwner = 1u << 2,      // uid:gid
    AttrOwnerNames = 1u << 3, // uname:gname
    AttrMtime = 1u << 4,
    AttrContent = 1u << 5, // size and sha256
    AttrLinkTarget = 1u << 6,
    AttrDevice = 1u << 7,
    AttrXattrs = 1u << 8,
};
// "type", "mode", "owner", "owner-names", "mtime", "content", "link-target", "device", "xattrs".
std::vector<std::string> attributeNames(unsigned attributes);

struct FileChange {
    enum class Kind { Added, Removed, Changed };
    Kind kind = Kind::Changed;
    std::optional<FileInfo> before, after; // before: removed or changed; after: added or changed
    unsigned attributes = 0;               // FileAttribute bits, for Changed
    const std::string& path() const { return before ? before->path : after->path; }
};

// An extended attribute that differs; nullopt where the entry has none of that name.
struct XattrChange {
    std::string name;
    std::optional<std::string> before, after;
};
std::vector<XattrChange> xattrChanges(const FileInfo& before, const FileInfo& after);

struct LayerDiff {
    enum class Verdict {
        Added,          // only in the second image
        Removed,        // only in the first image
        SameBlob,       // same digest; the descriptors differ (media type, annotations)
        SameTar,        // same diff_id (as the configs say): only the compression differs
        SameFiles,      // same entries in the same order: only the tar's bytes differ
        SameFilesOrder, // same entries in another order
        FilesDiffer,    // entries added, removed or changed
    };
    size_t index = 0; // position in the images, from 0
    Verdict verdict = Verdict::FilesDiffer;
    std::optional<Descriptor> before, after;
    std::optional<Digest> diffIdBefore, diffIdAfter;
    std::vector<ValueChange> descriptor; // mediaType, annotations, urls
    uint64_t entriesBefore = 0, entriesAfter = 0;
    // Every difference is counted; `files` holds the first DiffOptions::maxFiles, by path.
    uint64_t added = 0, removed = 0, changed = 0;
    std::vector<FileChange> files;

    // Whether the layers' entries were read (the verdicts from SameFiles on, Added, Removed).
    bool read() const;
};

struct ImageDiff {
    Descriptor before, after; // the manifests
    size_t layersBefore = 0, layersAfter = 0;
    // The manifest's fields but its layers (compared as layers) and its config's digest and size
    // (compared as the config): mediaType, annotations, artifactType, subject, config.mediaType.
    std::vector<ValueChange> manifest;
    std::vector<ValueChange> config;
    // The manifests (or configs) differ in their bytes but not in any field: JSON formatting.
    bool manifestBytesOnly = false, configBytesOnly = false;
    std::vector<LayerDiff> layers; // the pairs that differ, by position

    bool identical() const { return before.digest == after.digest; }
    uint64_t filesAdded() const;
    uint64_t filesRemoved() const;
    uint64_t filesChanged() const;
};

struct DiffOptions {
    // File changes kept per layer (the counts are always whole); 0 keeps them all.
    size_t maxFiles = 0;
};

// The layers diffImages reads, of both images: those of the pairs whose digests and diff_ids
// differ, and those only one image has. A caller that fetches layers lazily (a registry) fetches
// these, and needs no other.
std::vector<Descriptor> layersToRead(const Image& before, const Image& after);

// Compares two images whose manifests and configs are in the store, and the layersToRead().
ImageDiff diffImages(const Store& store, const Image& before, const Image& after,
                     const DiffOptions& options = {});

// Compares two layer blobs of the store entry by entry (either may be absent: a layer only one
// image has). Sets the counts, files and the verdicts from SameFiles on; digests are verified.
void diffLayerBlobs(const Store& store, LayerDiff& diff, const DiffOptions& options = {});

// Compares two JSON documents field by field (objects by key, arrays by index, an Env array
// of KEY=VALUE strings by key), paths prefixed with `prefix`.
std::vector<ValueChange> diffJson(const nlohmann::json& before, const nlohmann::json& after,
                                  const std::string& prefix = {});

} // namespace grocker::oci
