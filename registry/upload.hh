#pragma once
// Pushing one blob, in the steps of go-containerregistry's remote/write.go: check (HEAD), mount
// from another repository, else initiate an upload session, stream the bytes, commit with the
// digest; the whole upload retried as one under the client's RetryPolicy.

#include "grocker/registry/client.hh"
#include "grocker/registry/progress.hh"
#include "grocker/registry/registry.hh"

#include <string>
#include <string_view>

namespace grocker::registry {

// Puts the blob `d` of the store into `repo` of the client's registry, unless it is there
// already; records the repository as a source of the blob. `name` labels it ("layer sha256:…").
// Without `probe`, a blob that is most likely new (an attestation of an image just made) is
// sent without asking first whether the registry has it: one round trip fewer, the bytes sent
// again when it had.
void pushBlob(Client& c, oci::Store& store, const std::string& repo, const oci::Descriptor& d,
              const std::string& name, const Options& o, Progress& progress, bool probe = true);

// Throws when the answer's Docker-Content-Digest names another digest than `digest`, which the
// registry says it stored: "<registry> stored <what><digest> as <other>".
void checkStoredDigest(const Client& c, const oci::Digest& digest, const HttpResponse& r,
                       std::string_view what = "");

} // namespace grocker::registry
