#pragma once
// The local store: an OCI image layout (oci-layout, index.json, blobs/sha256/...) plus a temp
// folder and a lock file. A blob appears under its digest only once it is whole and synced
// (temp file + fsync + rename), so a killed writer never leaves a half blob; reads verify.
// Its upkeep: check() (grocker fsck) and collectGarbage() (grocker purge), under the gc lock,
// with the parts that have formats of their own (store-part.hh).

#include "grocker/file.hh"
#include "grocker/lock.hh"
#include "grocker/oci/image.hh"
#include "grocker/oci/sink.hh"
#include "grocker/oci/store-part.hh"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace grocker::oci {

// FileLock moved to the common library; build steps still name it oci::FileLock.
using grocker::FileLock;

// The parts every Store this program opens has, in the order they are checked and swept (the
// program knows its libraries; the store knows none of them). Set once, before any store is
// opened: opening a store removes what dead processes left in the parts' folders too.
void setStoreParts(std::vector<std::shared_ptr<StorePart>> parts);

struct CheckOptions {
    // Remove corrupt blobs, broken cache entries and leftovers, drop refs whose images are
    // incomplete. Needs the exclusive gc lock (lockExclusive()).
    bool repair = false;
    Remover remove;    // default removeTrees
    unsigned jobs = 0; // hashing threads; 0: one per core
};

struct GcOptions {
    // Refs to remove first (grocker purge's choice of old images); when dry, only left out.
    std::vector<std::string> dropRefs;
    bool dryRun = false; // count what would go, remove nothing
    Remover remove;      // default removeTrees
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
    // files no one holds, when no other grocker process has the store open). Its parts: those
    // of setStoreParts(), or `parts`.
    explicit Store(std::filesystem::path root, Leftovers leftovers = Leftovers::Remove);
    Store(std::filesystem::path root, Leftovers leftovers,
          std::vector<std::shared_ptr<StorePart>> parts);
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
                          const std::optional<Digest>& expected = {},
                          const std::string& what = "blob");
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

    // Verifies every blob's digest, every ref (manifests, configs, layers, nested indexes) and
    // the parts' entries, and finds what dead processes left (issues marked `leftover`); with
    // `repair`, removes or drops what is broken, and the leftovers.
    CheckReport check(const CheckOptions& options = {});

    // Removes what no ref of index.json needs: what the parts say they no longer need, then
    // blobs that neither a kept image nor a part's roots need, leftovers of killed processes.
    // Needs the exclusive gc lock.
    GcReport collectGarbage(const GcOptions& options = {});

  private:
    // What dead processes left, in the store's folders and the parts': temp files of gone
    // pids; with `alone`, also what carries no pid (run folders); with `locks`, lock files no
    // one holds.
    LeftoverSearch findLeftovers(bool alone, bool locks) const;
    // Removes what findLeftovers(everything, everything) finds, best effort.
    void cleanLeftovers(bool everything);
    // check()'s passes.
    void checkLayout(PartCheck& c, const std::string& indexError);
    void checkBlobs(PartCheck& c, BlobStates& blobs, CheckReport& r);
    void checkRefs(PartCheck& c, const Index& index, BlobStates& blobs, CheckReport& r);
    void checkLeftovers(PartCheck& c);
    // What the refs left (but `dropRefs`) and the parts' roots hold.
    KeptImages keptImages(const GcOptions& o, GcReport& r) const;
    std::filesystem::path root_;
    std::vector<std::shared_ptr<StorePart>> parts_;
    AutoCloseFD gcLock_;
    bool exclusive_ = false;
    bool aloneAtOpen_ = false; // no other grocker process had the store when this one opened it
    // Leftovers of dead processes known when this Store was opened, for check(): those it could
    // not remove, or (Leftovers::Keep) those found while it was alone with the store.
    std::vector<StoreLeftover> deadAtOpen_;
};

// Copies `from` to `to` atomically (temp + fsync + rename), with copy_file_range so a
// filesystem that can share extents does.
void copyFileAtomic(const std::filesystem::path& from, const std::filesystem::path& to,
                    mode_t mode = 0444);

} // namespace grocker::oci
