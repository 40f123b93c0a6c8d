#include "layer-reader.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"

#include <archive.h>
#include <archive_entry.h>
#include <cerrno>
#include <cstring>
#include <isa-l/igzip_lib.h>
#include <memory>
#include <unistd.h>
#include <vector>

namespace grocker::oci {

namespace {

// Feeds libarchive from the layer's fd and hashes the raw (still compressed) bytes on the way.
// A gzip layer (most are) is inflated here with ISA-L, about four times as fast as zlib, which
// libarchive's own gzip filter uses: unpacking a fresh runner's compiler image is mostly that.
// libarchive then sees the tar stream; other layers (zstd, plain tar) go to it as they are.
struct LayerSource {
    int fd;
    std::optional<Sha256> hash;
    std::vector<char> buffer = std::vector<char>(size_t(1) << 17);
    bool sniffed = false;
    std::unique_ptr<inflate_state> gzip; // set when the layer starts with gzip's magic
    bool inputEnded = false, gzipEnded = false;
    std::vector<char> out;
};

// The next bytes of the layer file into source.buffer (hashed); 0 at its end, -1 on an error.
ssize_t readRaw(struct archive* a, LayerSource& source)
{
    for (;;) {
        ssize_t n = ::read(source.fd, source.buffer.data(), source.buffer.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            archive_set_error(a, errno, "unable to read the layer file: %s", std::strerror(errno));
            return -1;
        }
        if (source.hash) source.hash->update(source.buffer.data(), size_t(n));
        return n;
    }
}

// Makes sure the inflater has input, reading more when it used all it had; false at the end of
// the file.
bool gzipInput(struct archive* a, LayerSource& source, bool& failed)
{
    auto& z = *source.gzip;
    if (z.avail_in > 0) return true;
    if (source.inputEnded) return false;
    ssize_t n = readRaw(a, source);
    if (n < 0) {
        failed = true;
        return false;
    }
    if (n == 0) {
        source.inputEnded = true;
        return false;
    }
    z.next_in = reinterpret_cast<uint8_t*>(source.buffer.data());
    z.avail_in = uint32_t(n);
    return true;
}

// The next block of the tar stream inflated from a gzip layer: one member after another (gzip
// allows several); what follows the last member is left alone (the digest still covers it).
la_ssize_t inflateBlock(struct archive* a, LayerSource& source, const void** block)
{
    auto& z = *source.gzip;
    for (;;) {
        if (source.gzipEnded) return 0;
        bool failed = false;
        bool haveInput = gzipInput(a, source, failed);
        if (failed) return -1;
        if (z.block_state == ISAL_BLOCK_FINISH) {
            // A member ended: another one follows when the next bytes are gzip's magic.
            if (!haveInput) {
                source.gzipEnded = true;
                return 0;
            }
            if (z.avail_in < 2 || z.next_in[0] != 0x1f || z.next_in[1] != 0x8b) {
                source.gzipEnded = true;
                return 0;
            }
            auto* next = z.next_in;
            auto avail = z.avail_in;
            isal_inflate_reset(&z);
            z.crc_flag = ISAL_GZIP;
            z.next_in = next;
            z.avail_in = avail;
        } else if (!haveInput) {
            archive_set_error(a, EILSEQ, "the gzip stream ends before its last block: cut short");
            return -1;
        }
        z.next_out = reinterpret_cast<uint8_t*>(source.out.data());
        z.avail_out = uint32_t(source.out.size());
        int r = isal_inflate(&z);
        if (r < 0) {
            archive_set_error(a, EILSEQ, "the gzip stream is broken (%s)",
                              r == ISAL_INCORRECT_CHECKSUM ? "its checksum does not match"
                              : r == ISAL_INVALID_WRAPPER  ? "not a gzip header"
                                                           : "an invalid deflate block");
            return -1;
        }
        size_t produced = source.out.size() - z.avail_out;
        if (produced > 0) {
            *block = source.out.data();
            return la_ssize_t(produced);
        }
    }
}

la_ssize_t readLayerBlock(struct archive* a, void* data, const void** block)
{
    auto* source = static_cast<LayerSource*>(data);
    if (source->gzip) return inflateBlock(a, *source, block);
    ssize_t n = readRaw(a, *source);
    if (n < 0) return -1;
    if (!source->sniffed) {
        source->sniffed = true;
        if (n >= 2 && uint8_t(source->buffer[0]) == 0x1f && uint8_t(source->buffer[1]) == 0x8b) {
            source->gzip = std::make_unique<inflate_state>();
            isal_inflate_init(source->gzip.get());
            source->gzip->crc_flag = ISAL_GZIP;
            source->gzip->next_in = reinterpret_cast<uint8_t*>(source->buffer.data());
            source->gzip->avail_in = uint32_t(n);
            source->out.resize(size_t(1) << 18);
            return inflateBlock(a, *source, block);
        }
    }
    *block = source->buffer.data();
    return n;
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
