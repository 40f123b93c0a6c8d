#pragma once
// The provenance of a runner image: an in-toto statement (v1) with a SLSA v1 provenance
// predicate saying who built it (grocker, its version), from what it was asked (the release,
// the configuration's files by digest, the runtime) and what it resolved (base, root and
// compiler images by digest, every source archive and ready-made wheel by hash, the package
// indexes without credentials). Reproducible: no clock and no host name in it.

#include "compile.hh"
#include "grocker/oci/digest.hh"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace grocker::build {

inline constexpr const char* slsaProvenanceV1 = "https://slsa.dev/provenance/v1";
inline constexpr const char* grockerBuildType = "https://grocker.invalid/build/v1";

struct ProvenanceImage {
    std::string role, name; // "base", "root", "compiler"; the image's name or reference
    std::string digest;     // "sha256:…"; empty when not known (a root of an older grocker)
};

struct ProvenanceInputs {
    std::string subjectName; // the runner as pushed or named ("registry/team/app:1.0")
    oci::Digest subject;     // its manifest's digest
    std::string release;     // RELEASE as given
    std::string runtime;     // "python3.11"
    std::string imagePrefix; // docker_image_prefix, "" without
    std::string compression; // "gzip", "zstd"
    bool buildDependencies = true;
    int64_t epoch = 0; // SOURCE_DATE_EPOCH
    // The configuration files as given (names) and their content's digests.
    std::vector<std::pair<std::string, std::string>> configFiles;
    // What the command line set over the configuration (KEY → value), secrets excluded.
    std::map<std::string, std::string> overrides;
    std::vector<std::string> indexUrls, linkPages; // credentials are removed when written
    std::string findLinksDigest;                   // the --find-links folder's tree digest
    std::string pipConfDigest, constraintsDigest;
    std::vector<ProvenanceImage> images;
    std::vector<CompiledWheel> wheels;
};

// The statement, as canonical JSON bytes.
std::string provenanceJson(const ProvenanceInputs& in);

} // namespace grocker::build
