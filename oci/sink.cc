#include "grocker/oci/sink.hh"

#include "grocker/file.hh"

namespace grocker::oci {

void HashingSink::write(const void* data, size_t len)
{
    hash_.update(data, len);
    size_ += len;
    next_.write(data, len);
}

namespace {
constexpr size_t fdSinkBuffer = 1 << 20;
}

FdSink::FdSink(int fd, std::string what) : fd_(fd), what_(std::move(what))
{
    buf_.reserve(fdSinkBuffer);
}

FdSink::~FdSink() = default;

void FdSink::write(const void* data, size_t len)
{
    if (buf_.size() + len > fdSinkBuffer) flush();
    if (len >= fdSinkBuffer)
        writeFull(fd_, data, len, what_);
    else
        buf_.append(static_cast<const char*>(data), len);
}

void FdSink::flush()
{
    if (!buf_.empty()) writeFull(fd_, buf_, what_);
    buf_.clear();
}

void FdSink::finish()
{
    flush();
}

} // namespace grocker::oci
