#include "grocker/oci/image-summary.hh"

#include "grocker/error.hh"
#include "grocker/oci/store.hh"
#include "layer-reader.hh"
#include "unpack-paths.hh"

#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <map>

namespace grocker::oci {

using namespace unpacking;

namespace {

// Folders this deep and deeper are counted in their ancestor at this depth.
constexpr size_t maxDepth = 8;

} // namespace

LayerSummary summarizeLayer(const Store& store, const Descriptor& layer, size_t folders)
{
    LayerSummary s;
    std::string what = layer.digest.str();
    // Bytes under each folder ("" is the root), up to maxDepth components.
    std::map<std::string, uint64_t> under;
    auto fd = store.openBlob(layer.digest, "layer " + what);
    readLayerEntries(fd.get(), what, layer.digest, [&](archive*, archive_entry* entry) {
        s.entries++;
        if (archive_entry_filetype(entry) != AE_IFREG || archive_entry_hardlink(entry)) return;
        auto size = archive_entry_size(entry);
        if (size <= 0) return;
        const char* raw = archive_entry_pathname(entry);
        if (!raw) raw = archive_entry_pathname_utf8(entry);
        auto parts = raw ? splitPath(raw) : std::nullopt;
        if (!parts || parts->empty()) return;
        s.bytes += uint64_t(size);
        size_t depth = std::min(parts->size() - 1, maxDepth);
        for (size_t d = 0; d <= depth; d++)
            under[joinPath(*parts, d)] += uint64_t(size);
    });
    // The children of `folder` in `under`, by bytes.
    auto children = [&](const std::string& folder) {
        std::vector<std::pair<std::string, uint64_t>> out;
        auto prefix = folder.empty() ? std::string() : folder + "/";
        for (auto it = under.lower_bound(prefix); it != under.end(); ++it) {
            if (!it->first.starts_with(prefix)) break;
            if (it->first.size() > prefix.size() &&
                it->first.find('/', prefix.size()) == std::string::npos)
                out.push_back(*it);
        }
        std::stable_sort(out.begin(), out.end(),
                         [](auto& a, auto& b) { return a.second > b.second; });
        return out;
    };
    for (auto& top : children("")) {
        if (s.largest.size() == folders) break;
        auto pick = top;
        for (;;) {
            auto c = children(pick.first);
            if (c.empty() || c[0].second * 4 < pick.second * 3) break;
            pick = c[0];
        }
        s.largest.push_back(pick);
    }
    return s;
}

} // namespace grocker::oci
