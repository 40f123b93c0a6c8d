#pragma once
// Docker image references ("ubuntu", "ghcr.io/org/app:1.2", "localhost:5000/x@sha256:..."),
// with the usual normalisation: docker.io for names without a registry, "library/" for
// one-component Docker Hub names, index.docker.io → docker.io, "latest" when no tag or digest.

#include "grocker/oci/digest.hh"

#include <optional>
#include <string>
#include <string_view>

namespace grocker::oci {

struct Reference {
    std::string domain; // "docker.io", "localhost:5000", "[::1]:5000"
    std::string path;   // "library/ubuntu"
    std::string tag;    // empty when only a digest is given
    std::optional<Digest> digest;

    // Throws a clear Error naming the reference and the rule it breaks.
    static Reference parse(std::string_view text);

    std::string repository() const { return domain + "/" + path; } // "docker.io/library/ubuntu"
    // "docker.io/library/ubuntu:latest" or ".../ubuntu@sha256:..." (tag kept when both).
    std::string str() const;
    // The host to talk to: docker.io is served by registry-1.docker.io.
    std::string apiHost() const;
};

bool validTag(std::string_view tag);

} // namespace grocker::oci
