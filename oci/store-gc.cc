// grocker purge: Store::collectGarbage, and the view of it that the store's parts get
// (PartSweep).

#include "grocker/error.hh"
#include "grocker/oci/store.hh"
#include "store-upkeep.hh"

#include <algorithm>
#include <cerrno>
#include <functional>
#include <unistd.h>

namespace grocker::oci {

namespace fs = std::filesystem;
using namespace upkeep;

PartSweep::PartSweep(Store& store, const KeptImages& kept, bool dryRun, GcReport& report,
                     std::vector<fs::path>& trees)
    : store_(store), kept_(kept), dryRun_(dryRun), report_(report), trees_(trees)
{
}

std::vector<fs::directory_entry> PartSweep::entries(const fs::path& dir)
{
    std::string error;
    auto out = entriesOf(dir, error);
    if (!error.empty()) warn(error + ": nothing in it was removed");
    return out;
}

void PartSweep::dropFile(const std::string& kind, const fs::path& p)
{
    auto& f = report_.parts[kind];
    f.count++;
    f.bytes += treeBytes(p);
    if (dryRun_) return;
    try {
        unlinkFile(p);
    } catch (Error& e) {
        report_.failures.push_back(e.message());
    }
}

void PartSweep::dropTree(const std::string& kind, const fs::path& p)
{
    auto& f = report_.parts[kind];
    f.count++;
    f.bytes += treeBytes(p);
    if (dryRun_) return;
    auto gone = store_.tmpDir() / tempName();
    if (::rename(p.c_str(), gone.c_str()) < 0) {
        report_.failures.push_back(SysError("unable to move '", p.string(), "' away").message());
        return;
    }
    trees_.push_back(gone);
}

KeptImages Store::keptImages(const GcOptions& o, GcReport& r) const
{
    // A damaged image keeps what can be read of it (fsck's business), and says so.
    KeptImages kept;
    std::function<void(const Descriptor&, int)> walk = [&](const Descriptor& d, int depth) {
        if (!kept.blobs.insert(d.digest.str()).second || depth > 8) return;
        // A blob of another type (a part's root may be a layer) is kept, not read.
        if (!d.mediaType.empty() && !media::isIndex(d.mediaType) && !media::isManifest(d.mediaType))
            return;
        auto what = "manifest " + d.digest.str();
        try {
            auto bytes = readFile(blobPath(d.digest));
            auto type = d.mediaType.empty() ? sniffMediaType(bytes, what) : d.mediaType;
            if (media::isIndex(type)) {
                for (auto& m : parseIndex(bytes, what, type).manifests)
                    walk(m, depth + 1);
                return;
            }
            if (!media::isManifest(type)) return;
            auto m = parseManifest(bytes, what, type);
            kept.blobs.insert(m.config.digest.str());
            for (auto& l : m.layers)
                kept.blobs.insert(l.digest.str());
            auto config = parseConfig(readFile(blobPath(m.config.digest)), "config");
            for (auto& id : config.diffIds())
                kept.diffIds.insert(id.str());
        } catch (Error& e) {
            r.warnings.push_back(
                concat("a kept image is damaged (", e.message(),
                       "): what it names and could not be read may be removed; run grocker fsck"));
        }
    };
    for (auto& d : readIndex().manifests)
        if (std::find(o.dropRefs.begin(), o.dropRefs.end(), refName(d)) == o.dropRefs.end())
            walk(d, 0);
    for (auto& part : parts_)
        for (auto& d : part->roots(*this))
            walk(d, 0);
    return kept;
}

GcReport Store::collectGarbage(const GcOptions& o)
{
    if (!exclusive_)
        throw Error("internal error: collecting garbage in the store '", root_.string(),
                    "' needs the exclusive gc lock");
    Remover remove = o.remove ? o.remove : Remover(removeTrees);
    GcReport r;
    if (!o.dryRun) removeRefs(o.dropRefs);
    auto kept = keptImages(o, r);

    // The parts first: an entry naming a blob goes before the blob, so that a purge killed in
    // between leaves none naming a missing one. Folders that may hold files of subordinate ids
    // (unpacked layers, build environments, leftovers) go to `remove` in one batch, at the end.
    std::vector<fs::path> trees;
    PartSweep sweep(*this, kept, o.dryRun, r, trees);
    for (auto& part : parts_)
        part->sweep(sweep);

    std::string error;
    for (auto& e : entriesOf(root_ / "blobs" / "sha256", error)) {
        auto name = e.path().filename().string();
        if (!isHex64(name) || kept.blobs.count("sha256:" + name)) continue;
        r.blobs.count++;
        r.blobs.bytes += treeBytes(e.path());
        if (o.dryRun) continue;
        try {
            unlinkFile(e.path());
        } catch (Error& ex) {
            r.failures.push_back(ex.message());
        }
    }
    if (!error.empty()) r.warnings.push_back(error + ": no blob was removed");
    // Where-seen records of blobs no longer stored: not counted, tiny.
    error.clear();
    for (auto& e : entriesOf(root_ / "sources" / "sha256", error)) {
        auto name = e.path().filename().string();
        if (!isHex64(name) || o.dryRun || hasBlob(Digest::parse("sha256:" + name))) continue;
        try {
            unlinkFile(e.path());
        } catch (Error& ex) {
            r.failures.push_back(ex.message());
        }
    }
    if (!error.empty())
        r.warnings.push_back(error + ": no record of where blobs were seen was removed");

    auto leftovers = findLeftovers(true, true);
    for (auto& l : leftovers.found) {
        r.leftovers.count++;
        r.leftovers.bytes += treeBytes(l.path);
        if (!o.dryRun) trees.push_back(l.path);
    }
    for (auto& e : leftovers.errors)
        r.warnings.push_back(e + ": what dead processes left there was not removed");
    if (trees.empty()) return r;
    try {
        remove(trees); // one batch: the remover may have to start a user namespace
    } catch (Error&) {
        // One by one, so that each that cannot be removed is said and keeps none of the others.
        for (auto& t : trees) {
            try {
                remove({t});
            } catch (Error& e) {
                r.failures.push_back(e.message());
            }
        }
    }
    return r;
}

} // namespace grocker::oci
