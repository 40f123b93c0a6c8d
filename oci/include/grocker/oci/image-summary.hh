#pragma once
// What each layer of an image holds, in short: its files, their bytes, and the folders that
// hold most of them. The data behind `grocker inspect --summary`; printing is the command's.

#include "grocker/oci/image.hh"

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace grocker::oci {

class Store;

struct LayerSummary {
    uint64_t entries = 0; // tar entries (files, folders, links, whiteouts)
    uint64_t bytes = 0;   // content of its regular files (a hardlink counts once)
    // The folders that hold most of the bytes, largest first, at most `folders` of them: each
    // top-level folder, descended while one of its children holds at least three quarters of
    // it ("home/grocker/venv/lib/python3.11/site-packages", not "home"). Bytes under each.
    std::vector<std::pair<std::string, uint64_t>> largest;
};

// Reads the layer blob from the store (its digest checked as it is read).
LayerSummary summarizeLayer(const Store& store, const Descriptor& layer, size_t folders = 3);

} // namespace grocker::oci
