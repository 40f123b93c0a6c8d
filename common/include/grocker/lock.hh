#pragma once
// Advisory file locks (flock): held by an open file, so a killed process never leaves one taken.

#include "grocker/file.hh"

#include <filesystem>

namespace grocker {

// An flock on a file (created if needed), held until destruction.
class FileLock {
  public:
    FileLock(const std::filesystem::path& path, bool exclusive);
    FileLock(FileLock&&) noexcept = default;
    ~FileLock() = default;

  private:
    AutoCloseFD fd_;
};

// flock(fd, op), retried on EINTR; false when a LOCK_NB request would have to wait. `path` names
// the file in errors.
bool flockOrBusy(int fd, int op, const std::filesystem::path& path);

// Whether some process holds an flock on the file at `path` (probed with a shared lock taken and
// dropped at once, so exclusive holders show). A file that cannot be opened counts as held: a
// caller deciding what to remove leaves it alone.
bool lockHeld(const std::filesystem::path& path);

} // namespace grocker
