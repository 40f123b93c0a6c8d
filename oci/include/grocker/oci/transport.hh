#pragma once
// Image locations as skopeo names them, read into and written from the store:
//   scratch                    no image (for append)
//   oci:DIR[:TAG]              an OCI image layout folder
//   oci-archive:FILE[:REF]     a tar of an OCI image layout
//   docker-archive:FILE[:REF]  a `docker save` tar
// Archives Grocker writes are both at once: the OCI layout (index.json naming the image with
// org.opencontainers.image.ref.name and io.containerd.image.name) plus a docker-save
// manifest.json, so `docker load` and `podman load` take either.
// docker://REF is parsed here but carried out by the registry library.

#include "grocker/oci/image.hh"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grocker::oci {

class Store;

struct ImageRef {
    enum class Kind { Scratch, Oci, OciArchive, DockerArchive, Docker };
    Kind kind = Kind::Scratch;
    std::filesystem::path path; // DIR or FILE
    std::string ref;            // TAG, REF, or for docker:// the reference

    // Throws a UsageError listing the transports when `text` names none of them.
    static ImageRef parse(std::string_view text);
    std::string str() const;
};

// An image whose manifest, config and layers are all in the store.
struct Image {
    Descriptor manifestDescriptor;
    std::string manifestBytes;
    Manifest manifest;
    std::string configBytes;
    ImageConfig config;
};

// Reads SRC (any kind but docker://) into the store, verifying every blob, and returns it.
// From an index, the manifest for `platform` is chosen.
Image loadImage(Store& store, const ImageRef& src, const Platform& platform = Platform::host());

// What a location names, whole: one image, or an image index and every manifest it lists (in
// its order: images, attestation manifests and artifacts, see entryFromStore), to copy an index
// as it is, its digest kept.
struct ImageSet {
    std::optional<Descriptor> index; // its bytes in the store; none for one image
    std::vector<Image> images;
};

// Reads SRC (any kind but docker://) into the store as loadImage does, but an index whole (an
// index listing an index is refused: copy one platform of it).
ImageSet loadImageSet(Store& store, const ImageRef& src);

// Loads an image already in the store from its manifest descriptor.
Image imageFromStore(const Store& store, const Descriptor& manifest);
// The same for an entry of an index copied whole, which may be an artifact (a manifest whose
// config is not an image's, as an OCI 1.1 artifact's empty one): its config then left unparsed.
Image entryFromStore(const Store& store, const Descriptor& manifest);

// Serialises `manifest` and `config` canonically into the store and returns the image.
Image commitImage(Store& store, Manifest manifest, ImageConfig config);

// A new image being made on top of a base: an OCI manifest (Docker media types converted),
// every timestamp at the same fixed time, one history entry per layer.
struct ImageDraft {
    Manifest manifest;
    ImageConfig config;
    std::string created;

    ImageDraft(const Image& base, bool scratch, int64_t epoch);
    void addLayer(const Descriptor& blob, const Digest& diffId, const std::string& createdBy,
                  const std::string& comment = {});
    // The runtime settings ("config" of the image config), made if missing.
    nlohmann::json& runConfig();
    Image commit(Store& store) &&;
};

// Writes the image (blobs from the store) to DEST (any kind but docker:// and scratch), with
// `referrers` (attachments in the store, see referrers.hh) in an oci: layout's index.
void saveImage(const Store& store, const Image& image, const ImageRef& dest,
               const std::vector<Descriptor>& referrers = {});

// Writes the image index `index` (in the store) and `images`, every image it lists, to DEST:
// an oci: layout or an oci-archive: file (named as DEST says), with `referrers` (attachments of
// any of the images) in its index.json; a docker-archive: holds one image, and is refused.
void saveIndex(const Store& store, const Descriptor& index, const std::vector<Image>& images,
               const ImageRef& dest, const std::vector<Descriptor>& referrers = {});

// An image index over `images`, in their order, each with its config's platform, put in the
// store: the same bytes for the same images (grocker index create and a build of several
// platforms write the same index).
Descriptor putIndex(Store& store, const std::vector<Image>& images);

// The attachments (referrers.hh) of the image `subject` that an oci: layout or oci-archive:
// lists, of `artifactType` ("" for any), read into the store (digests checked); none for other
// kinds.
std::vector<Descriptor> loadLayoutReferrers(Store& store, const ImageRef& src,
                                            const Digest& subject, const std::string& artifactType);

// Docker's short name for a reference: "busybox:1" for docker.io/library/busybox:1.
std::string familiarName(const std::string& reference);

} // namespace grocker::oci
