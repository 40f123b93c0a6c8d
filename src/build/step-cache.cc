// The step cache's part in grocker fsck and grocker purge (cache/steps/KEY.json).

#include "caches.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"

namespace grocker::build {

namespace fs = std::filesystem;
using namespace grocker::oci;
using nlohmann::json;

namespace {

// A step cache entry (written by grocker build): {"layer": descriptor, "diffId": ..., "step": ...}.
struct StepEntry {
    Descriptor layer;
    Digest diffId;
};

StepEntry parseStepEntry(const fs::path& p)
{
    try {
        auto j = json::parse(readFile(p));
        return StepEntry{parseDescriptor(j.at("layer"), "its layer"),
                         Digest::parse(j.at("diffId").get<std::string>())};
    } catch (json::parse_error&) {
        throw Error("it is not valid JSON (cut short?)");
    } catch (json::exception& e) {
        throw Error("it lacks a layer descriptor or a diffId (", e.what(), ")");
    }
}

// Entries worth reading: "<key>.json", not temp files (which the leftover search judges).
bool entryName(const std::string& name)
{
    return name.ends_with(".json") && !name.starts_with(".tmp-");
}

fs::path stepsDir(const Store& store)
{
    return cacheDir(store) / "steps";
}

class StepCachePart : public StorePart {
  public:
    // Each entry names a stored layer.
    void check(PartCheck& c) override
    {
        c.counted(stepCacheEntries, 0);
        for (auto& e : c.entries(stepsDir(c.store()))) {
            if (!entryName(e.path().filename().string())) continue;
            c.counted(stepCacheEntries);
            std::optional<std::string> problem;
            try {
                auto entry = parseStepEntry(e.path());
                if (auto p = c.blobProblem(entry.layer, "layer")) problem = "its " + *p;
            } catch (Error& ex) {
                problem = ex.message();
            }
            if (problem)
                c.issue(e.path(), "broken step cache entry: " + *problem, "removed",
                        [&] { c.removeFile(e.path()); });
        }
    }

    // Entries stay while their layer is in a kept image: an entry for a purged root or compiler
    // would keep its layer, the bulk of what purging frees. A broken one goes (fsck's repair
    // would remove it too).
    void sweep(PartSweep& s) override
    {
        for (auto& e : s.entries(stepsDir(s.store()))) {
            if (!entryName(e.path().filename().string())) continue;
            bool keep = false;
            try {
                keep = s.kept().blobs.count(parseStepEntry(e.path()).layer.digest.str()) > 0;
            } catch (Error&) {
            }
            if (!keep) s.dropFile(stepCacheEntries, e.path());
        }
    }

    // Entries are written beside their name (writeFileAtomic).
    void leftovers(const Store& store, LeftoverSearch& search) override
    {
        search.deadTemps(stepsDir(store));
    }
};

} // namespace

std::shared_ptr<StorePart> stepCachePart()
{
    return std::make_shared<StepCachePart>();
}

} // namespace grocker::build
