#pragma once
// The local store: an OCI image layout (oci-layout, index.json, blobs/sha256/...) plus a temp
// folder and a lock file. A blob appears under its digest only once it is whole and synced
// (temp file + fsync + rename), so a killed writer never leaves a half blob; reads verify.
// Its upkeep: check() (grocker fsck) and collectGarbage() (grocker purge), under the gc lock.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "grocker/file.hh"
#include "grocker/oci/image.hh"
#include "grocker/oci/sink.hh"

namespace grocker::oci {

// An flock on a file, held until destruction.
class FileLock {
public:
    FileLock(const std::filesystem::path& path, bool exclusive);
    FileLock(FileLock&&) noexcept = default;
    ~FileLock() = default;

private:
    AutoCloseFD fd_;
};

// Removes files and folders, the folders with everything in them. Unpacked layers, run folders
// and wheels hold files of the container's subordinate ids when rootless, which only a user
// namespace can remove: the program passes a remover that works in one. Throws on failure.
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

class Store;
struct GcReport;

// A part of the store with a format of its own (the build's caches), which the store asks to
// check itself (fsck) and to drop what no kept image needs (purge), as Nix's GcStore asks.
class StorePart {
public:
    virtual ~StorePart() = default;
    // Checks every entry, adding what is wrong to `issues`; with `repair`, removes it (folders
    // through `remove`). Returns the number of entries checked.
    virtual size_t check(Store& store, bool repair, const Remover& remove, std::vector<StoreIssue>& issues) = 0;
    // Drops what the kept images (`reachable`: digests of their manifests, configs and layers)
    // no longer need, counting into `report`; folders that may hold files of subordinate ids go
    // to `trees` (moved out of the way first) for the remover. Nothing removed when `dryRun`.
    virtual void sweep(Store& store, const std::set<std::string>& reachable, bool dryRun, GcReport& report,
        std::vector<std::filesystem::path>& trees) = 0;
};

// Something a dead process left in the store, and what it is (for a report line).
struct StoreLeftover {
    enum class Kind { Temp, Run, Lock };
    std::filesystem::path path;
    std::string what;
    Kind kind;
};

struct CheckOptions {
    // Remove corrupt blobs, broken cache entries and leftovers, drop refs whose images are
    // incomplete. Needs the exclusive gc lock (lockExclusive()).
    bool repair = false;
    Remover remove;    // default removeTrees
    unsigned jobs = 0; // hashing threads; 0: one per core
    std::vector<StorePart*> parts;
};

struct CheckReport {
    std::vector<StoreIssue> issues;
    size_t blobs = 0, refs = 0, stepEntries = 0, cacheEntries = 0, layers = 0;
    // Every issue found but leftovers was repaired (or there was none).
    bool consistent() const;
};

struct GcOptions {
    // Refs to remove first (grocker purge's choice of old images); when dry, only left out.
    std::vector<std::string> dropRefs;
    bool dryRun = false; // count what would go, remove nothing
    Remover remove;      // default removeTrees
    std::vector<StorePart*> parts;
};

// What collectGarbage removed (or, dry, would remove).
struct GcReport {
    struct Freed {
        size_t count = 0;
        uint64_t bytes = 0;
    };
    Freed blobs, stepEntries, cacheEntries, buildEnvs, layers, leftovers;
    uint64_t bytes() const;
};

class Store {
public:
    // $GROCKER_ROOT, else $XDG_CACHE_HOME/grocker, else ~/.cache/grocker.
    static std::filesystem::path defaultRoot();

    // What opening a store does with what dead processes left: remove it (every command), or
    // keep it for check() to report (grocker fsck, whose --repair then removes it).
    enum class Leftovers { Remove, Keep };
    // Opens the store at `root`, creating the layout if needed, takes the gc lock shared, and
    // removes temp files left by writers that died (and run folders of killed steps and lock
    // files no one holds, when no other grocker process has the store open).
    explicit Store(std::filesystem::path root, Leftovers leftovers = Leftovers::Remove);
    Store(Store&&) noexcept = default;
    ~Store() = default;

    const std::filesystem::path& root() const { return root_; }
    std::filesystem::path blobPath(const Digest& d) const;
    bool hasBlob(const Digest& d) const;
    // A folder for this process's scratch files, on the store's filesystem.
    std::filesystem::path tmpDir() const { return root_ / "tmp"; }

    // A blob being written. Bytes go to a temp file and are hashed on the way; commit() makes
    // it visible under its digest. Destroyed uncommitted, the temp file is removed.
    class BlobWriter : public Sink {
    public:
        explicit BlobWriter(Store& store);
        ~BlobWriter() override;
        using Sink::write;
        void write(const void* data, size_t len) override;
        void finish() override;
        // Syncs and renames. When `expected` is given, a different digest is an error naming
        // `what`, and nothing is stored.
        Descriptor commit(std::string mediaType, const std::optional<Digest>& expected = {},
            const std::string& what = "blob");
        uint64_t size() const { return size_; }

    private:
        Store& store_;
        std::filesystem::path tmp_;
        AutoCloseFD fd_;
        std::unique_ptr<FdSink> sink_;
        Sha256 hash_;
        uint64_t size_ = 0;
        bool committed_ = false;
    };

    std::unique_ptr<BlobWriter> newBlob() { return std::make_unique<BlobWriter>(*this); }
    Descriptor putBlob(std::string_view bytes, std::string mediaType);
    // Copies the file at `path` into the store (hashing it), checking it against `expected`.
    Descriptor importFile(const std::filesystem::path& path, std::string mediaType,
        const std::optional<Digest>& expected = {}, const std::string& what = "blob");
    // Copies from an fd until its end.
    Descriptor importFd(int fd, std::string mediaType, const std::optional<Digest>& expected,
        const std::string& what);

    // Reads a small blob (manifest, config) whole, verifying its size and digest.
    std::string readBlob(const Descriptor& d, const std::string& what) const;
    // Opens a blob for streaming; the caller verifies (layers are hashed as they are unpacked).
    AutoCloseFD openBlob(const Digest& d, const std::string& what) const;
    // Hashes a stored blob and raises an error if it does not match.
    void verifyStoredBlob(const Digest& d, const std::string& what) const;

    // Named images kept in index.json (org.opencontainers.image.ref.name).
    Index readIndex() const;
    void setRef(const std::string& name, Descriptor manifest);
    std::optional<Descriptor> getRef(const std::string& name) const;

    // Where blobs were seen in registries ("host:port/team/app"), so a push to another
    // repository of the same registry can mount them instead of uploading. Kept as one small
    // file per blob under sources/, a repository per line, the most recent last.
    void recordSource(const Digest& d, const std::string& repository);
    std::vector<std::string> sourcesOf(const Digest& d) const;

    // Guards index.json updates.
    FileLock lock(bool exclusive) const { return FileLock(root_ / "lock", exclusive); }
    // Removes these refs from index.json (their blobs stay until collectGarbage).
    void removeRefs(const std::vector<std::string>& names);

    // Every Store holds <root>/gc.lock shared while it lives, so garbage collection, which takes
    // it exclusive, never removes what another grocker process is writing or using: a blob no
    // ref names yet, an unpacked layer mounted as a lower dir. Converts this Store's lock to
    // exclusive, calling `waiting` first when that has to wait for other processes. (Another
    // Store of this same process on this root would make it wait forever.)
    void lockExclusive(const std::function<void()>& waiting = {});
    bool lockedExclusive() const { return exclusive_; }

    // Verifies every blob's digest, every ref (manifests, configs, layers, nested indexes), the
    // step cache entries, the parts' entries (options.parts) and the unpacked layers' folder,
    // and finds what dead processes left (issues marked `leftover`); with `repair`, removes or
    // drops what is broken, and the leftovers.
    CheckReport check(const CheckOptions& options = {});

    // Removes what no ref of index.json needs: blobs, step cache entries whose layer is in no
    // image a ref names, what the parts (options.parts) say they no longer need, unpacked
    // layers whose diff_id is in no such image, leftovers of killed processes. Needs the
    // exclusive gc lock.
    GcReport collectGarbage(const GcOptions& options = {});

private:
    // Temp files of dead writers; with `everything`, also run folders and lock files (this
    // process is alone).
    void cleanLeftovers(bool everything);
    std::filesystem::path root_;
    AutoCloseFD gcLock_;
    bool exclusive_ = false;
    bool aloneAtOpen_ = false; // no other grocker process had the store when this one opened it
    // Leftovers of dead processes known when this Store was opened, for check(): those it could
    // not remove, or (Leftovers::Keep) those found while it was alone with the store.
    std::vector<StoreLeftover> deadAtOpen_;
};

// Copies `from` to `to` atomically (temp + fsync + rename), with copy_file_range so a
// filesystem that can share extents does.
void copyFileAtomic(const std::filesystem::path& from, const std::filesystem::path& to, mode_t mode = 0444);

} // namespace grocker::oci
