#pragma once
// A reproducible tar writer: ustar headers, with a PAX extended header only when an entry needs
// one (long names or link targets, big sizes or ids, xattrs as SCHILY.xattr.*). No user or group
// names, no atime/ctime, numbers in fixed-width octal: the same entries give the same bytes.

#include "grocker/oci/sink.hh"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace grocker::oci {

struct TarEntry {
    enum Type : char {
        Regular = '0',
        HardLink = '1',
        Symlink = '2',
        CharDevice = '3',
        BlockDevice = '4',
        Directory = '5',
        Fifo = '6',
    };
    std::string path; // relative, no leading "/" or "./"; directories end with "/"
    Type type = Regular;
    uint32_t mode = 0644; // permission bits incl. setuid/setgid/sticky
    uint64_t uid = 0, gid = 0;
    int64_t mtime = 0;
    uint64_t size = 0; // regular files only
    std::string linkTarget;
    uint32_t devMajor = 0, devMinor = 0;
    std::vector<std::pair<std::string, std::string>> xattrs; // sorted by name
};

class TarWriter {
  public:
    explicit TarWriter(Sink& out) : out_(out) {}

    // Writes the entry's header(s). For a regular file, exactly entry.size bytes must follow
    // through writeData, then endEntry().
    void writeHeader(const TarEntry& entry);
    void writeData(const void* data, size_t len);
    void endEntry();
    // A whole regular file from memory.
    void addFile(TarEntry entry, std::string_view content);
    // The two zero blocks that end an archive.
    void finish();

    uint64_t bytesWritten() const { return written_; }

  private:
    void put(const void* data, size_t len);
    Sink& out_;
    uint64_t written_ = 0;
    uint64_t remaining_ = 0;
    uint64_t entrySize_ = 0;
};

} // namespace grocker::oci
