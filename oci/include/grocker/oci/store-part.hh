#pragma once
// The store's upkeep (grocker fsck and grocker purge) and the interface through which the parts
// of the store with formats of their own (the build's caches, the sandbox's unpacked layers and
// run folders) take part in it, as Nix's GcStore asks its parts: the blobs they keep alive
// (roots), their check, their sweep, and what dead processes left in their folders. The store
// itself knows blobs, refs, blob sources and its own temp and lock files, nothing else.

#include "grocker/oci/image.hh"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

namespace grocker::oci {

class Store;

// Removes files and folders, the folders with everything in them. Unpacked layers, run folders
// and build environments hold files of the container's subordinate ids when rootless, which
// only a user namespace can remove: the program passes a remover that works in one. Throws on
// failure.
using Remover = std::function<void(const std::vector<std::filesystem::path>&)>;
// The default: in this process, making folders writable first.
void removeTrees(const std::vector<std::filesystem::path>& paths);

// One thing Store::check found wrong: where (a path in the store), what, and what --repair did.
struct StoreIssue {
    std::filesystem::path where;
    std::string what;
    std::string repair; // "removed", "dropped the ref"...; empty when nothing was done
    // Left by a dead process (a temp file, a run folder, a lock file no one holds): it takes
    // room but harms nothing, so it leaves the store consistent, repaired or not.
    bool leftover = false;
    std::string line() const;
};

// Something a dead process left in the store, and what it is (for a report line).
struct StoreLeftover {
    enum class Kind { Temp, Run, Lock };
    std::filesystem::path path;
    std::string what;
    Kind kind;
};

// The pid in a temp name ".tmp-<pid>-..." (tempName(), and folders made with that prefix), or 0.
// A part's check skips such entries: the leftover search judges them.
pid_t tempOwner(const std::string& name);

// A search for what dead processes left, which the store and each part add to.
struct LeftoverSearch {
    // No other grocker process has the store (its gc lock is held exclusive, or was when it was
    // opened): what carries no pid in its name (run folders) is known to be dead too.
    bool alone = false;
    std::vector<StoreLeftover> found;
    // Folders that could not be listed: "unable to list '...': ...".
    std::vector<std::string> errors;

    // Adds a leftover; `what` says what it is ("leftover run folder of ..."), and the line
    // goes on to say what removes it.
    void add(std::filesystem::path path, const std::string& what, StoreLeftover::Kind kind);
    // Adds the entries of `dir` named ".tmp-<pid>-..." (tempName(), and folders made with that
    // prefix) whose process is gone.
    void deadTemps(const std::filesystem::path& dir);
    // The entries of `dir`, sorted; none when it does not exist; an error when unlistable.
    std::vector<std::filesystem::directory_entry> entries(const std::filesystem::path& dir);
};

struct CheckReport {
    std::vector<StoreIssue> issues;
    size_t blobs = 0, refs = 0;
    // Entries the parts checked, by the kind they name ("step cache entries").
    std::map<std::string, size_t> entries;
    size_t entriesOf(const std::string& kind) const;
    // Every issue found but leftovers was repaired (or there was none).
    bool consistent() const;
};

// What collectGarbage removed (or, dry, would remove).
struct GcReport {
    struct Freed {
        size_t count = 0;
        uint64_t bytes = 0;
    };
    Freed blobs, leftovers;
    // What the parts freed, by the kind they name ("unpacked layers").
    std::map<std::string, Freed> parts;
    // What could not be read or listed (the purge did less than it could, or an image is
    // damaged: grocker fsck says more), and what could not be removed.
    std::vector<std::string> warnings, failures;
    Freed partOf(const std::string& kind) const;
    uint64_t bytes() const;
};

class BlobStates;

// A part's view of grocker fsck: the store, its blobs' states (each hashed once, for every
// part), the report to add to, and repairs carried out the same way for every part.
class PartCheck {
  public:
    PartCheck(Store& store, bool repair, const Remover& remove, BlobStates& blobs,
              CheckReport& report);
    Store& store() const { return store_; }
    // Counts `n` entries checked of `kind`, for the summary line.
    void counted(const std::string& kind, size_t n = 1) { report_.entries[kind] += n; }
    // The entries of `dir`, sorted; none when it does not exist. One that cannot be listed is an
    // issue (nothing in it could be checked).
    std::vector<std::filesystem::directory_entry> entries(const std::filesystem::path& dir);
    // Why the blob `d` names cannot be used ("layer sha256:... is missing"), or nothing.
    // `kind`: "layer", "config", "manifest".
    std::optional<std::string> blobProblem(const Descriptor& d, const std::string& kind);
    // Reports what is wrong at `where`; with --repair, carries out `fix` and says `done`, or
    // why it could not be done. Returns the issue (to mark a leftover).
    StoreIssue& issue(std::filesystem::path where, std::string what, const std::string& done = {},
                      const std::function<void()>& fix = {});
    bool repairing() const { return repair_; }
    // Repairs: a file unlinked; folders through the remover, one renamed into tmp/ first so that
    // a repair killed half-way leaves no half folder under its name.
    void removeFile(const std::filesystem::path& p);
    void removeTree(const std::filesystem::path& p);
    void removeTreeAside(const std::filesystem::path& p);

  private:
    Store& store_;
    bool repair_;
    const Remover& remove_;
    BlobStates& blobs_;
    CheckReport& report_;
};

// What the kept images hold: the digests ("sha256:...") of their manifests, configs and layers,
// with the blobs the parts keep alive, and the diff_ids of their layers.
struct KeptImages {
    std::set<std::string> blobs;
    std::set<std::string> diffIds;
};

// A part's view of grocker purge: what is kept, and drops counted and carried out the same way
// for every part. Failures go to the report; the sweep goes on.
class PartSweep {
  public:
    PartSweep(Store& store, const KeptImages& kept, bool dryRun, GcReport& report,
              std::vector<std::filesystem::path>& trees);
    Store& store() const { return store_; }
    const KeptImages& kept() const { return kept_; }
    // The entries of `dir`, sorted; none when it does not exist; a warning when unlistable.
    std::vector<std::filesystem::directory_entry> entries(const std::filesystem::path& dir);
    // Counts the file `p` under `kind` and, unless dry, unlinks it.
    void dropFile(const std::string& kind, const std::filesystem::path& p);
    // Counts the folder `p` under `kind` and, unless dry, renames it into tmp/ (a purge killed
    // half-way leaves no half folder under its name) for the remover, which may need a user
    // namespace (files of subordinate ids).
    void dropTree(const std::string& kind, const std::filesystem::path& p);
    // Something the sweep could not read: it keeps what it cannot judge.
    void warn(std::string message) { report_.warnings.push_back(std::move(message)); }

  private:
    Store& store_;
    const KeptImages& kept_;
    bool dryRun_;
    GcReport& report_;
    std::vector<std::filesystem::path>& trees_;
};

// A part of the store with a format of its own.
class StorePart {
  public:
    virtual ~StorePart() = default;
    // Blobs this part keeps alive beyond the refs' images (walked as refs are: a manifest keeps
    // its config and layers).
    virtual std::vector<Descriptor> roots(const Store&) { return {}; }
    // Checks every entry, reporting what is wrong (and, repairing, removing it).
    virtual void check(PartCheck& check) = 0;
    // Drops what the kept images no longer need. Run before the store drops blobs: an entry
    // naming a blob goes first, so a purge killed in between leaves none naming a missing one.
    virtual void sweep(PartSweep& sweep) = 0;
    // Adds what dead processes left in this part's folders.
    virtual void leftovers(const Store&, LeftoverSearch&) {}
};

} // namespace grocker::oci
