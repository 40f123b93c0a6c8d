#pragma once
// Byte sinks: the small interface every streaming stage (tar writer, hasher, compressor, file)
// writes into, so a layer is produced in one pass and never held in memory.

#include "grocker/oci/digest.hh"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace grocker::oci {

class Sink {
  public:
    virtual ~Sink() = default;
    virtual void write(const void* data, size_t len) = 0;
    void write(std::string_view data) { write(data.data(), data.size()); }
    // Flushes everything buffered downstream; called once at the end of the stream.
    virtual void finish() {}
};

// Passes bytes on unchanged, hashing and counting them.
class HashingSink : public Sink {
  public:
    explicit HashingSink(Sink& next) : next_(next) {}
    void write(const void* data, size_t len) override;
    void finish() override { next_.finish(); }
    Digest digest() { return hash_.finish(); }
    uint64_t size() const { return size_; }

  private:
    Sink& next_;
    Sha256 hash_;
    uint64_t size_ = 0;
};

// Writes to a file descriptor (not owned), buffering into large writes.
class FdSink : public Sink {
  public:
    FdSink(int fd, std::string what);
    ~FdSink() override;
    void write(const void* data, size_t len) override;
    void finish() override;

  private:
    void flush();
    int fd_;
    std::string what_;
    std::string buf_;
};

// Discards bytes (for hashing only).
class NullSink : public Sink {
  public:
    void write(const void*, size_t) override {}
};

} // namespace grocker::oci
