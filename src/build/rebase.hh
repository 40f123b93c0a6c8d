#pragma once
// grocker rebase: a runner's own layers (the venv, the app, the entrypoint) put over another
// root image of the same runtime, without running anything: what a Debian security fix asks
// of every app, as a manifest and config rewrite.

#include "grocker/oci/store.hh"
#include "grocker/oci/transport.hh"

#include <string>

namespace grocker::build {

// Labels a runner carries for it: the root's manifest digest and how many of its first layers
// are the root's.
inline constexpr const char* rootDigestLabel = "grocker.root.digest";
inline constexpr const char* rootLayersLabel = "grocker.root.layers";

struct Rebased {
    oci::Image image;
    size_t rootLayers = 0;  // the new root's layers, first in the image
    size_t ownLayers = 0;   // the runner's own, after them, unchanged
    bool unchanged = false; // the runner was on this root already: `image` is the runner
};

// The runner `runner` over `root` (named `rootName`: "grocker-bookworm-3.11-root:0.1.0-…"),
// written into the store. Refused (an Error saying why and what to do) unless the runner was
// built by grocker on a root of the runtime and platform `root` is for, and `root` is a
// grocker root.
Rebased rebaseRunner(oci::Store& store, const oci::Image& runner, const oci::Image& root,
                     const std::string& rootName);

} // namespace grocker::build
