#include "grocker/oci/layer-files.hh"

#include "grocker/error.hh"
#include "layer-reader.hh"
#include "unpack-paths.hh"

#include <archive.h>
#include <archive_entry.h>
#include <set>

namespace grocker::oci {

using namespace unpacking;

namespace {

// Removes `path` and what lies under it from `files`.
void removeTree(std::map<std::string, LayerFile>& files, const std::string& path)
{
    files.erase(path);
    auto prefix = path + "/";
    for (auto it = files.lower_bound(prefix); it != files.end() && it->first.starts_with(prefix);)
        it = files.erase(it);
}

} // namespace

std::map<std::string, LayerFile> readImageFiles(const Store& store,
                                                const std::vector<Descriptor>& layers,
                                                const std::function<bool(const std::string&)>& want,
                                                uint64_t maxBytes, const std::string& what)
{
    std::map<std::string, LayerFile> files;
    uint64_t total = 0;
    for (auto& layer : layers) {
        std::string name = layer.digest.str();
        // What this layer hides of the ones below, applied before its own entries (a whiteout
        // only hides lower layers, wherever it stands in the archive).
        std::set<std::string> whiteouts, opaque, replaced;
        std::map<std::string, LayerFile> added;
        std::map<std::string, std::string> hardlinks; // path → target, resolved at the end
        auto fd = store.openBlob(layer.digest, "layer " + name);
        readLayerEntries(fd.get(), name, layer.digest, [&](archive* a, archive_entry* entry) {
            const char* raw = archive_entry_pathname(entry);
            if (!raw) raw = archive_entry_pathname_utf8(entry);
            if (!raw) throw Error("layer ", name, ": an entry has a name that cannot be read");
            auto parts = splitPath(raw);
            if (!parts || parts->empty()) return;
            const std::string& base = parts->back();
            auto parent = joinPath(*parts, parts->size() - 1);
            if (base == opaqueMarker) {
                opaque.insert(parent);
                return;
            }
            if (base.starts_with(whiteoutMetaPrefix)) return;
            if (base.starts_with(whiteoutPrefix)) {
                whiteouts.insert(childPath(parent, base.substr(whiteoutPrefix.size())));
                return;
            }
            auto path = joinPath(*parts, parts->size());
            auto type = archive_entry_filetype(entry);
            // It replaces what lower layers had at its path; a folder merges with a lower one.
            (type == AE_IFDIR && !archive_entry_hardlink(entry) ? replaced : whiteouts)
                .insert(path);
            if (!want(path)) return;
            if (const char* target = archive_entry_hardlink(entry)) {
                auto t = splitPath(target);
                if (t) hardlinks[path] = joinPath(*t, t->size());
                return;
            }
            if (type == AE_IFLNK) {
                const char* target = archive_entry_symlink(entry);
                added[path] = LayerFile{true, target ? target : ""};
                return;
            }
            if (type != AE_IFREG) return;
            auto size = archive_entry_size(entry);
            if (size < 0 || uint64_t(size) > maxBytes - std::min(total, maxBytes))
                throw Error(what, ": the files read from layer ", name, " hold more than ",
                            maxBytes, " bytes: refused");
            total += uint64_t(size);
            std::string data(size_t(size), '\0');
            size_t got = 0;
            while (got < data.size()) {
                auto n = archive_read_data(a, data.data() + got, data.size() - got);
                if (n < 0)
                    throw Error("layer ", name, ": unable to read '", path,
                                "': ", archive_error_string(a));
                if (n == 0) break;
                got += size_t(n);
            }
            data.resize(got);
            added[path] = LayerFile{false, std::move(data)};
        });
        for (auto& p : opaque) {
            // The folder stays (its entry, if any, is this layer's); what lower layers put in it
            // goes.
            auto prefix = p.empty() ? std::string() : p + "/";
            for (auto it = files.lower_bound(prefix);
                 it != files.end() && it->first.starts_with(prefix);)
                it = files.erase(it);
        }
        for (auto& p : whiteouts)
            removeTree(files, p);
        for (auto& p : replaced)
            files.erase(p);
        for (auto& [path, target] : hardlinks) {
            auto it = added.find(target);
            if (it != added.end()) added[path] = it->second;
        }
        for (auto& [path, file] : added)
            files[path] = std::move(file);
    }
    return files;
}

} // namespace grocker::oci
