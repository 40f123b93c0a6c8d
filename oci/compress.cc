#include "grocker/oci/compress.hh"

#include "grocker/error.hh"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>
#include <zlib.h>
#include <zstd.h>

namespace grocker::oci {

std::string_view compressionName(Compression c)
{
    switch (c) {
    case Compression::None:
        return "none";
    case Compression::Gzip:
        return "gzip";
    case Compression::Zstd:
        return "zstd";
    }
    return "unknown";
}

Compression parseCompression(std::string_view name)
{
    if (name == "gzip") return Compression::Gzip;
    if (name == "zstd") return Compression::Zstd;
    if (name == "none") return Compression::None;
    throw UsageError("unknown compression '", name, "': use gzip or zstd");
}

Compression detectCompression(std::string_view head)
{
    if (head.starts_with("\x1f\x8b")) return Compression::Gzip;
    if (head.starts_with("\x28\xb5\x2f\xfd")) return Compression::Zstd;
    return Compression::None;
}

namespace {

// Blocks have a fixed size so that where the stream is cut, and so the output, never depends
// on the thread count. 128 KiB and a 32 KiB dictionary are pigz's choices: the dictionary is
// all deflate can refer back to, so priming each block with it costs almost no ratio.
constexpr size_t blockSize = 128 * 1024;
constexpr size_t dictSize = 32 * 1024;

constexpr int defaultGzipLevel = 6; // as gzip and pigz
constexpr int defaultZstdLevel = 3; // as zstd

unsigned resolveThreads(unsigned threads)
{
    if (threads) return threads;
    // hardware_concurrency() may return 0 when it cannot tell.
    return std::max(1u, std::thread::hardware_concurrency());
}

class PassThrough : public Sink {
  public:
    explicit PassThrough(Sink& out) : out_(out) {}
    void write(const void* data, size_t len) override { out_.write(data, len); }
    void finish() override { out_.finish(); }

  private:
    Sink& out_;
};

// One block of the gzip pipeline; the ring of blocks is allocated once and reused, so the
// steady state does no allocation (glibc would mmap and fault in fresh 128 KiB buffers).
struct Block {
    // [previous block's last 32 KiB | this block's data]: the dictionary is copied in rather
    // than read from the previous slot, which the caller may refill while a worker runs.
    std::unique_ptr<unsigned char[]> in =
        std::make_unique_for_overwrite<unsigned char[]>(dictSize + blockSize);
    bool hasDict = false;
    size_t len = 0;
    bool last = false;

    std::vector<unsigned char> out = std::vector<unsigned char>(blockSize + blockSize / 8);
    size_t outLen = 0;
    uLong crc = 0;
    bool done = false;
    std::exception_ptr error;

    unsigned char* data() { return in.get() + dictSize; }
};

// A raw deflate stream reused block after block: deflateReset is much cheaper than a fresh
// deflateInit2, which allocates and clears about 256 KiB.
class Deflater {
  public:
    explicit Deflater(int level)
    {
        // Raw deflate (windowBits -15): the gzip header and trailer are written once for the
        // whole member, around the concatenated blocks.
        if (deflateInit2(&strm_, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            throw Error("unable to initialise a deflate stream at level ", level);
    }
    ~Deflater() { deflateEnd(&strm_); }
    Deflater(const Deflater&) = delete;
    Deflater& operator=(const Deflater&) = delete;

    void compress(Block& b)
    {
        b.crc = crc32(0, b.data(), uInt(b.len));
        deflateReset(&strm_);
        if (b.hasDict && deflateSetDictionary(&strm_, b.in.get(), dictSize) != Z_OK)
            throw Error("unable to set the deflate dictionary");
        strm_.next_in = b.data();
        strm_.avail_in = uInt(b.len);
        // A sync flush ends every block but the last on a byte boundary without ending the
        // deflate stream, so the blocks concatenate into one stream.
        int flush = b.last ? Z_FINISH : Z_SYNC_FLUSH;
        b.outLen = 0;
        for (;;) {
            if (b.outLen == b.out.size()) b.out.resize(b.out.size() * 2);
            strm_.next_out = b.out.data() + b.outLen;
            strm_.avail_out = uInt(b.out.size() - b.outLen);
            int rc = deflate(&strm_, flush);
            b.outLen = b.out.size() - strm_.avail_out;
            if (rc == Z_STREAM_ERROR)
                throw Error("deflate failed: ", strm_.msg ? strm_.msg : "stream error");
            if (b.last ? rc == Z_STREAM_END : strm_.avail_out != 0) break;
        }
    }

  private:
    z_stream strm_{};
};

// Block-parallel deflate, as pigz: blocks are compressed independently by the workers and
// written in order by the caller's thread, so `out` is only ever used from one thread.
class GzipCompressor : public Sink {
  public:
    GzipCompressor(Sink& out, int level, unsigned threads) : out_(out)
    {
        if (threads == 1) {
            // Inline: two slots, so the previous block is still there to take the dictionary from.
            ring_.resize(2);
            inline_ = std::make_unique<Deflater>(level);
        } else {
            // About two blocks per worker bound the memory (300 KiB a block) while keeping the
            // workers fed. The 4 extra let the caller fall behind for a while (a slow read, a
            // busy machine): with exactly 2 per worker on a loaded 2-core machine, a worker
            // found nothing to do for 10% of the blocks; with 4 more, for 1 to 2%.
            ring_.resize(2 * size_t(threads) + 4);
            std::vector<std::unique_ptr<Deflater>> deflaters;
            for (unsigned i = 0; i < threads; i++)
                deflaters.push_back(std::make_unique<Deflater>(level));
            try {
                for (auto& d : deflaters)
                    workers_.emplace_back([this, d = std::move(d)] { work(*d); });
            } catch (...) {
                stopWorkers(); // the destructor does not run when the constructor throws
                throw;
            }
        }
        current_ = &ring_[0];
    }

    ~GzipCompressor() override { stopWorkers(); }

    void write(const void* data, size_t len) override
    {
        if (failed_) std::rethrow_exception(failed_);
        auto p = static_cast<const unsigned char*>(data);
        while (len > 0) {
            size_t n = std::min(len, blockSize - current_->len);
            std::memcpy(current_->data() + current_->len, p, n);
            current_->len += n;
            p += n;
            len -= n;
            if (current_->len == blockSize)
                guard([&] {
                    submit(false);
                    startBlock();
                });
        }
    }

    void finish() override
    {
        if (failed_) std::rethrow_exception(failed_);
        guard([&] {
            // The last block may be empty: it still carries the final deflate block.
            submit(true);
            writeDone(filled_);
            out_.finish();
        });
    }

  private:
    // Keeps the first failure so every later call reports it instead of writing a broken stream.
    template <typename F> void guard(F&& f)
    {
        try {
            f();
        } catch (...) {
            failed_ = std::current_exception();
            throw;
        }
    }

    void submit(bool last)
    {
        current_->last = last;
        size_ += current_->len;
        if (inline_) {
            inline_->compress(*current_);
            current_->done = true;
            filled_++;
        } else {
            {
                std::lock_guard lock(mutex_);
                filled_++;
            }
            workCv_.notify_one();
        }
        writeDone(0);
    }

    // Takes the next slot, waiting for its previous block to be written if the ring is full.
    void startBlock()
    {
        if (filled_ + 1 > ring_.size()) writeDone(filled_ + 1 - ring_.size());
        Block& prev = *current_;
        current_ = &ring_[filled_ % ring_.size()];
        std::memcpy(current_->in.get(), prev.data() + blockSize - dictSize, dictSize);
        current_->hasDict = true;
        current_->len = 0;
        current_->done = false;
        current_->error = nullptr;
    }

    // Writes the compressed blocks that are ready, in order, waiting until at least `until`
    // blocks have been written.
    void writeDone(uint64_t until)
    {
        while (written_ < filled_) {
            Block& b = ring_[written_ % ring_.size()];
            if (!inline_) {
                std::unique_lock lock(mutex_);
                if (!b.done) {
                    if (written_ >= until) return;
                    doneCv_.wait(lock, [&] { return b.done; });
                }
            }
            if (b.error) std::rethrow_exception(b.error);
            if (written_ == 0) {
                // mtime 0 and no name keep the output reproducible; OS 255 is "unknown".
                static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
                out_.write(header, sizeof header);
            }
            out_.write(b.out.data(), b.outLen);
            crc_ = crc32_combine(crc_, b.crc, z_off_t(b.len));
            written_++;
            if (b.last) {
                unsigned char trailer[8];
                putLE32(trailer, uint32_t(crc_));
                putLE32(trailer + 4, uint32_t(size_)); // ISIZE is the size modulo 2^32
                out_.write(trailer, sizeof trailer);
            }
        }
    }

    void stopWorkers()
    {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        workCv_.notify_all();
        for (auto& w : workers_)
            w.join();
    }

    static void putLE32(unsigned char* p, uint32_t v)
    {
        for (int i = 0; i < 4; i++)
            p[i] = (unsigned char)(v >> (8 * i));
    }

    void work(Deflater& deflater)
    {
        std::unique_lock lock(mutex_);
        for (;;) {
            workCv_.wait(lock, [&] { return stop_ || claimed_ < filled_; });
            if (stop_) return;
            Block& b = ring_[claimed_++ % ring_.size()];
            lock.unlock();
            try {
                deflater.compress(b);
            } catch (...) {
                b.error = std::current_exception();
            }
            lock.lock();
            b.done = true;
            doneCv_.notify_one();
        }
    }

    Sink& out_;
    std::vector<Block> ring_;
    Block* current_;
    std::unique_ptr<Deflater> inline_;
    uLong crc_ = crc32(0, nullptr, 0);
    uint64_t size_ = 0;
    uint64_t written_ = 0; // only touched by the caller's thread
    std::exception_ptr failed_;

    std::mutex mutex_;
    std::condition_variable workCv_, doneCv_;
    uint64_t filled_ = 0;  // blocks handed over; the one being filled has this number
    uint64_t claimed_ = 0; // blocks taken by a worker
    bool stop_ = false;
    std::vector<std::thread> workers_;
};

class ZstdCompressor : public Sink {
  public:
    ZstdCompressor(Sink& out, int level, unsigned threads) : out_(out), cctx_(ZSTD_createCCtx())
    {
        if (!cctx_) throw Error("unable to create a zstd compression context");
        check(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, level),
              "setting the level");
        check(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_checksumFlag, 1), "enabling the checksum");
        // With nbWorkers >= 1 the frame is cut into jobs whose size depends only on the
        // parameters, so the output is the same for 1, 2, 4 or 8 workers (checked with
        // libzstd 1.5.4, and by the tests); nbWorkers = 0 compresses differently. So at least
        // one worker is always used, even on one core, and digests never depend on the machine.
        if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_nbWorkers, int(threads))))
            throw Error("libzstd was built without multithreading, which reproducible zstd "
                        "layers need: install a libzstd built with it or use gzip");
        // Jobs of 4 MiB bound memory (about 40 MB at 2 workers instead of 70 with libzstd's
        // default job size) for 0.5% larger output; the output still does not depend on the
        // number of workers.
        check(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_jobSize, 4 << 20), "setting the job size");
        check(ZSTD_CCtx_setPledgedSrcSize(cctx_.get(), ZSTD_CONTENTSIZE_UNKNOWN),
              "pledging the size");
        in_.reserve(inputSize);
        outBuf_.resize(ZSTD_CStreamOutSize());
    }

    void write(const void* data, size_t len) override
    {
        if (failed_) std::rethrow_exception(failed_);
        guard([&] {
            if (in_.size() + len > inputSize) flush();
            if (len >= inputSize)
                compress(data, len, ZSTD_e_continue);
            else
                in_.append(static_cast<const char*>(data), len);
        });
    }

    void finish() override
    {
        if (failed_) std::rethrow_exception(failed_);
        guard([&] {
            // The first call must not be ZSTD_e_end: libzstd would then take the input size
            // as known, write it in the frame header and compress single-threaded, so the
            // frame would change with how much was buffered.
            if (!started_ || !in_.empty()) flush();
            compress(nullptr, 0, ZSTD_e_end);
            out_.finish();
        });
    }

  private:
    // Large enough that libzstd is called rarely; the output does not depend on it.
    static constexpr size_t inputSize = 1 << 20;

    struct FreeCCtx {
        void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
    };

    template <typename F> void guard(F&& f)
    {
        try {
            f();
        } catch (...) {
            failed_ = std::current_exception();
            throw;
        }
    }

    static size_t check(size_t rc, const char* what)
    {
        if (ZSTD_isError(rc))
            throw Error("zstd compression failed while ", what, ": ", ZSTD_getErrorName(rc));
        return rc;
    }

    void flush()
    {
        compress(in_.data(), in_.size(), ZSTD_e_continue);
        in_.clear();
    }

    void compress(const void* data, size_t len, ZSTD_EndDirective mode)
    {
        started_ = true;
        ZSTD_inBuffer in{data, len, 0};
        for (;;) {
            ZSTD_outBuffer out{outBuf_.data(), outBuf_.size(), 0};
            size_t remaining =
                check(ZSTD_compressStream2(cctx_.get(), &out, &in, mode), "compressing");
            if (out.pos) out_.write(outBuf_.data(), out.pos);
            bool done = mode == ZSTD_e_end ? remaining == 0 : in.pos == in.size;
            if (done) break;
        }
    }

    Sink& out_;
    std::unique_ptr<ZSTD_CCtx, FreeCCtx> cctx_;
    std::string in_;
    std::vector<char> outBuf_;
    bool started_ = false;
    std::exception_ptr failed_;
};

} // namespace

std::unique_ptr<Sink> makeCompressor(Sink& out, const CompressOptions& options)
{
    unsigned threads = resolveThreads(options.threads);
    switch (options.compression) {
    case Compression::None:
        return std::make_unique<PassThrough>(out);
    case Compression::Gzip: {
        int level = options.level ? options.level : defaultGzipLevel;
        if (level < 1 || level > 9)
            throw UsageError("compression level ", level, " is out of range for gzip: use 1 to 9");
        return std::make_unique<GzipCompressor>(out, level, threads);
    }
    case Compression::Zstd: {
        int level = options.level ? options.level : defaultZstdLevel;
        if (level < 1 || level > ZSTD_maxCLevel())
            throw UsageError("compression level ", level, " is out of range for zstd: use 1 to ",
                             ZSTD_maxCLevel());
        return std::make_unique<ZstdCompressor>(out, level, threads);
    }
    }
    throw Error("unknown compression");
}

} // namespace grocker::oci
