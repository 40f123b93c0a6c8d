#include "layer-reader.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"

#include <archive.h>
#include <archive_entry.h>
#include <cerrno>
#include <cstring>
#include <memory>
#include <unistd.h>
#include <vector>

namespace grocker::oci {

namespace {

// Feeds libarchive from the layer's fd and hashes the raw (still compressed) bytes on the way.
struct LayerSource {
    int fd;
    std::optional<Sha256> hash;
    std::vector<char> buffer = std::vector<char>(size_t(1) << 17);
};

la_ssize_t readLayerBlock(struct archive* a, void* data, const void** block)
{
    auto* source = static_cast<LayerSource*>(data);
    for (;;) {
        ssize_t n = ::read(source->fd, source->buffer.data(), source->buffer.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            archive_set_error(a, errno, "unable to read the layer file: %s", std::strerror(errno));
            return -1;
        }
        if (source->hash) source->hash->update(source->buffer.data(), size_t(n));
        *block = source->buffer.data();
        return n;
    }
}

// Reads what libarchive left unread (tar padding, bytes after the end-of-archive blocks) into the
// hash: the digest covers the whole file, not just what the tar reader needed.
Digest drainAndFinish(LayerSource& source, const std::string& what)
{
    for (;;) {
        size_t n = readSome(source.fd, source.buffer.data(), source.buffer.size(), what);
        if (n == 0) break;
        source.hash->update(source.buffer.data(), n);
    }
    return source.hash->finish();
}

} // namespace

void readLayerEntries(int fd, const std::string& what, const std::optional<Digest>& expectedDigest,
                      const std::function<void(archive*, archive_entry*)>& onEntry)
{
    if (expectedDigest && expectedDigest->algorithm() != "sha256")
        throw Error("layer ", what, ": cannot check digest ", expectedDigest->str(),
                    ": only sha256 is supported");

    LayerSource source{fd, {}};
    if (expectedDigest) source.hash.emplace();
    auto corrupt = [&](const Digest& actual) {
        return Error("layer ", what, " is corrupt: its content has digest ", actual.str(), " but ",
                     expectedDigest->str(), " was expected; remove it and pull again");
    };

    std::unique_ptr<struct archive, decltype(&archive_read_free)> a(archive_read_new(),
                                                                    archive_read_free);
    if (!a) throw Error("layer ", what, ": unable to start reading: out of memory");
    archive_read_support_filter_gzip(a.get());
    archive_read_support_filter_zstd(a.get());
    archive_read_support_filter_none(a.get());
    // ustar, pax and GNU tar alike.
    archive_read_support_format_tar(a.get());

    try {
        if (archive_read_open(a.get(), &source, nullptr, readLayerBlock, nullptr) != ARCHIVE_OK)
            throw Error("layer ", what,
                        ": unable to read the archive: ", archive_error_string(a.get()));
        std::string previous;
        for (;;) {
            struct archive_entry* entry;
            int r = archive_read_next_header(a.get(), &entry);
            if (r == ARCHIVE_EOF) break;
            if (r < ARCHIVE_WARN)
                throw Error("layer ", what, ": unable to read the archive",
                            previous.empty() ? "" : concat(" after entry '", previous, "'"), ": ",
                            archive_error_string(a.get()));
            onEntry(a.get(), entry);
            if (auto* name = archive_entry_pathname(entry)) previous = name;
        }
    } catch (Error&) {
        // A damaged download mostly shows as a broken gzip or tar stream: name the cause rather
        // than the symptom when the digest tells it.
        if (source.hash) {
            std::optional<Digest> actual;
            try {
                actual = drainAndFinish(source, what);
            } catch (Error&) {
            }
            if (actual && *actual != *expectedDigest) throw corrupt(*actual);
        }
        throw;
    }
    if (source.hash) {
        Digest actual = drainAndFinish(source, what);
        if (actual != *expectedDigest) throw corrupt(actual);
    }
}

} // namespace grocker::oci
