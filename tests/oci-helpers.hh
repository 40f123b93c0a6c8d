#pragma once
// Helpers of the tests of the oci library and the code above it: a sink that keeps what it is
// given, tars read back with libarchive, and the message of an Error. Apart from helpers.hh, as
// the entrypoint's tests link neither the oci library nor libarchive.

#include "grocker/error.hh"
#include "grocker/oci/sink.hh"
#include "helpers.hh"

#include <cstddef>
#include <cstdint>
#include <gtest/gtest.h>
#include <map>
#include <string>
#include <vector>

namespace grocker::test {

// Keeps the stream in memory; counts finish() calls and fails the test on a write after one.
class StringSink : public oci::Sink {
  public:
    void write(const void* data, size_t len) override
    {
        EXPECT_EQ(finished, 0) << "a write after finish()";
        bytes.append(static_cast<const char*>(data), len);
    }
    void finish() override { finished++; }
    std::string bytes;
    int finished = 0;
};

// What libarchive reads back from a tar entry.
struct ReadEntry {
    std::string path;
    char type = 0; // tar type flag, reconstructed from the file type
    unsigned mode = 0;
    int64_t uid = 0, gid = 0, mtime = 0, size = 0;
    std::string symlink, hardlink, uname, gname;
    unsigned devMajor = 0, devMinor = 0;
    std::map<std::string, std::string> xattrs;
    std::string data;
};

// Every entry of the uncompressed tar `bytes`, in order; libarchive's errors fail the test.
std::vector<ReadEntry> readArchive(const std::string& bytes);

// The message of the grocker::Error that `f` throws, or "(no error)". Other exceptions pass
// through: a test that expects a message must not be satisfied by an internal error.
template <typename F> std::string errorOf(F&& f)
{
    try {
        f();
    } catch (const Error& e) {
        return e.message();
    }
    return "(no error)";
}

} // namespace grocker::test
