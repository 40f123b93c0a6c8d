#pragma once
// RAII file descriptors, temporary folders and small whole-file helpers. Every write that must
// survive a crash goes through writeFileAtomic: temp file + fsync + rename + fsync of the folder.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace grocker {

class AutoCloseFD {
  public:
    AutoCloseFD() = default;
    explicit AutoCloseFD(int fd) : fd_(fd) {}
    AutoCloseFD(const AutoCloseFD&) = delete;
    AutoCloseFD& operator=(const AutoCloseFD&) = delete;
    AutoCloseFD(AutoCloseFD&& other) noexcept : fd_(other.release()) {}
    AutoCloseFD& operator=(AutoCloseFD&& other) noexcept;
    ~AutoCloseFD();

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    int release();
    void reset(int fd = -1);

  private:
    int fd_ = -1;
};

// A folder removed with everything in it when this object dies (unless release()d).
class AutoDelete {
  public:
    AutoDelete() = default;
    explicit AutoDelete(std::filesystem::path path) : path_(std::move(path)) {}
    AutoDelete(AutoDelete&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
    AutoDelete& operator=(AutoDelete&& other) noexcept;
    AutoDelete(const AutoDelete&) = delete;
    AutoDelete& operator=(const AutoDelete&) = delete;
    ~AutoDelete();

    const std::filesystem::path& path() const { return path_; }
    void release() { path_.clear(); }

  private:
    std::filesystem::path path_;
};

// Creates a fresh folder "<parent>/<prefix>XXXXXX".
std::filesystem::path makeTempDir(const std::filesystem::path& parent, const std::string& prefix);

std::string readFile(const std::filesystem::path& path);
std::string readFd(int fd);

// Writes all of `data`, retrying short writes and EINTR. `what` names the file in errors.
void writeFull(int fd, const void* data, size_t len, const std::string& what);
inline void writeFull(int fd, std::string_view data, const std::string& what)
{
    writeFull(fd, data.data(), data.size(), what);
}
// Reads up to len bytes, retrying EINTR; returns 0 at end of file.
size_t readSome(int fd, void* buf, size_t len, const std::string& what);

// The names in the folder `dirFd` but "." and "..", sorted bytewise so that walks and listings
// compared side by side do not depend on the locale or the filesystem's order. Read from a fresh
// fd, leaving `dirFd`'s offset alone. `where` names the folder in errors.
std::vector<std::string> listFolder(int dirFd, const std::string& where);

// temp file beside `path` + fsync + rename + fsync of the folder.
void writeFileAtomic(const std::filesystem::path& path, std::string_view data, mode_t mode = 0644);
void fsyncDir(const std::filesystem::path& dir);

// A unique name for a temp file: "<pid>-<counter>-<random>".
std::string tempName();

} // namespace grocker
