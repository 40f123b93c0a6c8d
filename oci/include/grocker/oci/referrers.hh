#pragma once
// Artifacts attached to an image, as OCI 1.1 has them (referrers): a manifest whose `subject`
// is the image's, whose `artifactType` says what it holds (an SBOM, a provenance statement, a
// signature), whose config is the empty descriptor and whose one layer is the content.

#include "grocker/oci/image.hh"
#include "grocker/oci/store.hh"

#include <map>
#include <string>
#include <vector>

namespace grocker::oci {

namespace media {
inline constexpr std::string_view emptyJson = "application/vnd.oci.empty.v1+json";
inline constexpr std::string_view cycloneDx = "application/vnd.cyclonedx+json";
inline constexpr std::string_view spdx = "application/spdx+json";
// An in-toto statement (provenance): the layer's media type and the referrer's artifactType,
// with its predicate type in the annotation below.
inline constexpr std::string_view inToto = "application/vnd.in-toto+json";
} // namespace media

inline constexpr const char* predicateTypeAnnotation = "in-toto.io/predicate-type";

// Writes `content` (of `artifactType`, also its layer's media type) and its manifest into the
// store; returns the manifest's descriptor, artifactType and annotations set as an index lists
// a referrer.
Descriptor putReferrer(Store& store, const Descriptor& subject, const std::string& artifactType,
                       std::string_view content,
                       const std::map<std::string, std::string>& annotations = {});

// The blobs of a referrer manifest in the store: itself, its config and its layers.
std::vector<Descriptor> referrerBlobs(const Store& store, const Descriptor& referrer);

// Of an index's entries (a layout's index.json), the referrers of `subject` of `artifactType`
// ("" for any), reading their manifests from the store when the entry does not say.
std::vector<Descriptor> referrersOf(const Store& store, const Index& index, const Digest& subject,
                                    const std::string& artifactType);

// A referrer's content: its one layer, read from the store.
std::string referrerContent(const Store& store, const Descriptor& referrer);

} // namespace grocker::oci
