#pragma once
// The local store: an OCI image layout (oci-layout, index.json, blobs/sha256/...) plus a temp
// folder and a lock file. A blob appears under its digest only once it is whole and synced
// (temp file + fsync + rename), so a killed writer never leaves a half blob; reads verify.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "grocker/oci/file.hh"
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

class Store {
public:
    // $GROCKER_ROOT, else $XDG_CACHE_HOME/grocker, else ~/.cache/grocker.
    static std::filesystem::path defaultRoot();

    // Opens the store at `root`, creating the layout if needed, and removes temp files left by
    // writers that died.
    explicit Store(std::filesystem::path root);

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

    // Guards index.json updates and, later, garbage collection.
    FileLock lock(bool exclusive) const { return FileLock(root_ / "lock", exclusive); }

private:
    void cleanStaleTemps();
    std::filesystem::path root_;
};

// Copies `from` to `to` atomically (temp + fsync + rename), with copy_file_range so a
// filesystem that can share extents does.
void copyFileAtomic(const std::filesystem::path& from, const std::filesystem::path& to, mode_t mode = 0444);

} // namespace grocker::oci
