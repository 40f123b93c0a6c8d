#include "grocker/oci/store.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/transport.hh"
#include "oci-helpers.hh"

#include <algorithm>
#include <cstdlib>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <set>
#include <string>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace grocker;
using namespace grocker::oci;
using grocker::test::errorOf;
using grocker::test::inChildProcesses;
using grocker::test::TempDir;
using grocker::test::writeTestFile;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace fs = std::filesystem;

namespace {

std::vector<std::string> filesIn(const fs::path& dir)
{
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(dir))
        out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

unsigned modeOf(const fs::path& p)
{
    struct stat st;
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
}

// A pid that is certainly not running: a child that has exited and been reaped.
pid_t deadPid()
{
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    int status;
    waitpid(pid, &status, 0);
    return pid;
}

void flipByte(const fs::path& p, size_t offset)
{
    ASSERT_EQ(::chmod(p.c_str(), 0644), 0);
    auto bytes = readFile(p);
    ASSERT_LT(offset, bytes.size());
    bytes[offset] = char(bytes[offset] ^ 0x01);
    writeTestFile(p, bytes, 0444);
}

} // namespace

TEST(Store, CreatesTheLayout)
{
    TempDir tmp;
    Store store(tmp / "s");
    EXPECT_EQ(store.root(), tmp / "s");
    EXPECT_TRUE(fs::is_directory(tmp / "s" / "blobs" / "sha256"));
    EXPECT_TRUE(fs::is_directory(store.tmpDir()));
    EXPECT_EQ(store.tmpDir(), tmp / "s" / "tmp");
    EXPECT_EQ(readFile(tmp / "s" / "oci-layout"), R"({"imageLayoutVersion":"1.0.0"})");
    EXPECT_EQ(
        readFile(tmp / "s" / "index.json"),
        R"({"manifests":[],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2})");
    EXPECT_TRUE(store.readIndex().manifests.empty());
    // No temp files beside them.
    for (auto& name : filesIn(tmp / "s"))
        EXPECT_FALSE(name.starts_with(".tmp-")) << name;
}

TEST(Store, ReopenKeepsContent)
{
    TempDir tmp;
    Descriptor d;
    {
        Store store(tmp / "s");
        d = store.putBlob("{}", "application/json");
        store.setRef("x", d);
    }
    Store again(tmp / "s");
    EXPECT_TRUE(again.hasBlob(d.digest));
    ASSERT_TRUE(again.getRef("x"));
    EXPECT_EQ(again.getRef("x")->digest, d.digest);
}

TEST(Store, UnwritableRoot)
{
    TempDir tmp;
    writeTestFile(tmp / "file", "x");
    EXPECT_THAT(
        errorOf([&] { Store s(tmp / "file" / "store"); }),
        StartsWith("unable to create the store at '" + (tmp / "file" / "store").string() + "': "));
    EXPECT_THAT(errorOf([&] { Store s(tmp / "file" / "store"); }),
                HasSubstr("; pass --root or set GROCKER_ROOT to a writable folder"));
}

TEST(Store, DefaultRoot)
{
    auto save = [](const char* n) {
        const char* v = std::getenv(n);
        return v ? std::optional<std::string>(v) : std::nullopt;
    };
    auto root = save("GROCKER_ROOT"), xdg = save("XDG_CACHE_HOME"), home = save("HOME");
    ::setenv("GROCKER_ROOT", "/r", 1);
    ::setenv("XDG_CACHE_HOME", "/x", 1);
    ::setenv("HOME", "/h", 1);
    EXPECT_EQ(Store::defaultRoot(), "/r");
    ::unsetenv("GROCKER_ROOT");
    EXPECT_EQ(Store::defaultRoot(), "/x/grocker");
    ::setenv("XDG_CACHE_HOME", "", 1);
    EXPECT_EQ(Store::defaultRoot(), "/h/.cache/grocker");
    ::unsetenv("XDG_CACHE_HOME");
    ::unsetenv("HOME");
    EXPECT_EQ(errorOf([] { Store::defaultRoot(); }),
              "no store location: set GROCKER_ROOT, XDG_CACHE_HOME or HOME, or pass --root");
    auto restore = [](const char* n, const std::optional<std::string>& v) {
        if (v)
            ::setenv(n, v->c_str(), 1);
        else
            ::unsetenv(n);
    };
    restore("GROCKER_ROOT", root);
    restore("XDG_CACHE_HOME", xdg);
    restore("HOME", home);
}

TEST(Store, PutBlobIsIdempotent)
{
    TempDir tmp;
    Store store(tmp / "s");
    auto a = store.putBlob("hello", "text/plain");
    EXPECT_EQ(a.digest, sha256("hello"));
    EXPECT_EQ(a.size, 5);
    EXPECT_EQ(a.mediaType, "text/plain");
    auto path = tmp / "s" / "blobs" / "sha256" / a.digest.hex();
    EXPECT_EQ(store.blobPath(a.digest), path);
    EXPECT_TRUE(store.hasBlob(a.digest));
    EXPECT_EQ(readFile(path), "hello");
    EXPECT_EQ(modeOf(path), 0444u);
    struct stat before;
    ASSERT_EQ(::stat(path.c_str(), &before), 0);

    auto b = store.putBlob("hello", "application/octet-stream");
    EXPECT_EQ(b.digest, a.digest);
    EXPECT_EQ(b.size, 5);
    EXPECT_EQ(b.mediaType, "application/octet-stream");
    struct stat after;
    ASSERT_EQ(::stat(path.c_str(), &after), 0);
    EXPECT_EQ(before.st_ino, after.st_ino); // not rewritten
    EXPECT_EQ(filesIn(tmp / "s" / "blobs" / "sha256"), std::vector<std::string>{a.digest.hex()});
    EXPECT_TRUE(fs::is_empty(store.tmpDir()));
}

TEST(Store, EmptyBlob)
{
    TempDir tmp;
    Store store(tmp / "s");
    auto d = store.putBlob("", "x/y");
    EXPECT_EQ(d.digest, sha256(""));
    EXPECT_EQ(d.size, 0);
    EXPECT_EQ(store.readBlob(d, "empty"), "");
}

TEST(Store, BlobWriterStreams)
{
    TempDir tmp;
    Store store(tmp / "s");
    std::string content;
    auto w = store.newBlob();
    for (int i = 0; i < 1000; i++) {
        std::string chunk(1000 + i, char('a' + i % 26));
        w->write(chunk.data(), chunk.size());
        content += chunk;
    }
    EXPECT_EQ(w->size(), content.size());
    w->finish();
    auto d = w->commit("application/x", sha256(content), "big blob");
    EXPECT_EQ(d.digest, sha256(content));
    EXPECT_EQ(d.size, int64_t(content.size()));
    EXPECT_EQ(readFile(store.blobPath(d.digest)), content);
    w.reset();
    EXPECT_TRUE(fs::is_empty(store.tmpDir()));
}

TEST(Store, UncommittedWriterLeavesNothing)
{
    TempDir tmp;
    Store store(tmp / "s");
    {
        auto w = store.newBlob();
        w->write("partial data", 12);
        EXPECT_EQ(filesIn(store.tmpDir()).size(), 1u); // the temp file, while writing
    }
    EXPECT_TRUE(fs::is_empty(store.tmpDir()));
    EXPECT_TRUE(fs::is_empty(tmp / "s" / "blobs" / "sha256"));
    EXPECT_FALSE(store.hasBlob(sha256("partial data")));
}

TEST(Store, CommitWithWrongDigestStoresNothing)
{
    TempDir tmp;
    Store store(tmp / "s");
    auto expected = sha256("what the manifest says");
    {
        auto w = store.newBlob();
        w->write("what came over the wire", 23);
        EXPECT_EQ(errorOf([&] { w->commit("application/x", expected, "layer sha256:abc"); }),
                  "layer sha256:abc has digest " + sha256("what came over the wire").str() +
                      " but " + expected.str() +
                      " was expected; the source is corrupt or was changed: fetch it again");
    }
    EXPECT_TRUE(fs::is_empty(tmp / "s" / "blobs" / "sha256"));
    EXPECT_TRUE(fs::is_empty(store.tmpDir()));
    EXPECT_FALSE(store.hasBlob(expected));
}

TEST(Store, ImportFile)
{
    TempDir tmp;
    Store store(tmp / "s");
    writeTestFile(tmp / "in", "file content");
    auto d = store.importFile(tmp / "in", "application/x", sha256("file content"), "in");
    EXPECT_EQ(d.digest, sha256("file content"));
    EXPECT_EQ(d.size, 12);
    EXPECT_EQ(readFile(store.blobPath(d.digest)), "file content");
    EXPECT_THAT(
        errorOf([&] { store.importFile(tmp / "in", "application/x", sha256("other"), "blob b"); }),
        StartsWith("blob b has digest " + d.digest.str() + " but " + sha256("other").str() +
                   " was expected"));
    EXPECT_EQ(errorOf([&] { store.importFile(tmp / "missing", "application/x"); }),
              "unable to open '" + (tmp / "missing").string() + "': No such file or directory");
    EXPECT_TRUE(fs::is_empty(store.tmpDir()));
}

TEST(Store, ReadBlobVerifies)
{
    TempDir tmp;
    Store store(tmp / "s");
    auto d = store.putBlob(R"({"a":1})", "application/json");
    EXPECT_EQ(store.readBlob(d, "config"), R"({"a":1})");
    auto path = store.blobPath(d.digest);
    flipByte(path, 2);
    EXPECT_EQ(errorOf([&] { store.readBlob(d, "config x"); }),
              "config x in the store at '" + path.string() + "' has digest " +
                  sha256("{\"`\":1}").str() + " but " + d.digest.str() +
                  " was expected; the source is corrupt or was changed: fetch it again");
}

TEST(Store, ReadBlobChecksTheSize)
{
    TempDir tmp;
    Store store(tmp / "s");
    auto d = store.putBlob("12345", "x/y");
    auto wrong = d;
    wrong.size = 4;
    EXPECT_EQ(errorOf([&] { store.readBlob(wrong, "blob"); }),
              "blob in the store at '" + store.blobPath(d.digest).string() +
                  "' has 5 bytes but its descriptor says 4; the source is corrupt or was changed: "
                  "fetch it again");
    auto huge = d;
    huge.size = int64_t(1) << 40;
    EXPECT_EQ(
        errorOf([&] { store.readBlob(huge, "manifest m"); }),
        "manifest m is 1099511627776 bytes, more than the 67108864 a manifest or config may have");
}

TEST(Store, ReadMissingBlob)
{
    TempDir tmp;
    Store store(tmp / "s");
    Descriptor d{"x/y", sha256("nothing"), 7};
    EXPECT_EQ(errorOf([&] { store.readBlob(d, "config c"); }),
              "while reading config c from the store: unable to open '" +
                  store.blobPath(d.digest).string() + "': No such file or directory");
    EXPECT_FALSE(store.hasBlob(d.digest));
    EXPECT_EQ(errorOf([&] { store.openBlob(d.digest, "layer l"); }),
              "unable to open layer l (" + d.digest.str() + ") in the store '" +
                  (tmp / "s").string() + "': No such file or directory");
}

TEST(Store, VerifyStoredBlob)
{
    TempDir tmp;
    Store store(tmp / "s");
    std::string big(3 << 20, 'z'); // more than one read buffer
    auto d = store.putBlob(big, "x/y");
    EXPECT_NO_THROW(store.verifyStoredBlob(d.digest, "layer l"));
    auto path = store.blobPath(d.digest);
    flipByte(path, big.size() - 1);
    big.back() = char('z' ^ 1);
    EXPECT_EQ(errorOf([&] { store.verifyStoredBlob(d.digest, "layer l"); }),
              "layer l in the store is corrupt (its content has digest " + sha256(big).str() +
                  "); remove '" + path.string() + "' and fetch it again");
}

TEST(Store, OpenBlobStreams)
{
    TempDir tmp;
    Store store(tmp / "s");
    auto d = store.putBlob("stream me", "x/y");
    auto fd = store.openBlob(d.digest, "blob");
    EXPECT_EQ(readFd(fd.get()), "stream me");
}

TEST(Store, SetRefAndGetRef)
{
    TempDir tmp;
    Store store(tmp / "s");
    auto a = store.putBlob("manifest a", std::string(media::ociManifest));
    auto b = store.putBlob("manifest b", std::string(media::ociManifest));
    EXPECT_FALSE(store.getRef("app"));
    store.setRef("app", a);
    ASSERT_TRUE(store.getRef("app"));
    EXPECT_EQ(store.getRef("app")->digest, a.digest);
    EXPECT_EQ(store.getRef("app")->annotations.at("org.opencontainers.image.ref.name"), "app");
    store.setRef("other", a);
    store.setRef("app", b); // replaces
    EXPECT_EQ(store.getRef("app")->digest, b.digest);
    EXPECT_EQ(store.getRef("other")->digest, a.digest);
    auto idx = store.readIndex();
    ASSERT_EQ(idx.manifests.size(), 2u);
    EXPECT_FALSE(store.getRef("nothing"));
    // index.json is canonical and no temp file is left beside it.
    EXPECT_EQ(readFile(tmp / "s" / "index.json"), canonical(toJson(idx)));
    for (auto& name : filesIn(tmp / "s"))
        EXPECT_FALSE(name.starts_with(".tmp-")) << name;
}

TEST(Store, StaleTempFilesOfDeadWritersRemovedAtOpen)
{
    TempDir tmp;
    {
        Store s(tmp / "s");
    }
    auto t = tmp / "s" / "tmp";
    pid_t dead = deadPid();
    auto deadFile = ".tmp-" + std::to_string(dead) + "-0-abc";
    auto deadDir = ".tmp-" + std::to_string(dead) + "-1-def";
    auto liveFile = ".tmp-" + std::to_string(::getpid()) + "-0-abc";
    auto parentFile = ".tmp-" + std::to_string(::getppid()) + "-0-abc";
    writeTestFile(t / deadFile, "half a blob");
    writeTestFile(t / deadDir / "x", "an unpacking left over");
    writeTestFile(t / liveFile, "being written");
    writeTestFile(t / parentFile, "being written");
    writeTestFile(t / "other", "not a temp file");
    Store s(tmp / "s");
    std::vector<std::string> kept{parentFile, liveFile, "other"};
    std::sort(kept.begin(), kept.end()); // as filesIn: the pids' digits decide
    EXPECT_EQ(filesIn(t), kept);
}

TEST(Store, ConcurrentPutsOfTheSameBlob)
{
    TempDir tmp;
    {
        Store s(tmp / "s");
    }
    std::string content;
    for (int i = 0; i < 200000; i++)
        content += char('a' + (i * 31) % 26);
    for (int round = 0; round < 5; round++) {
        SCOPED_TRACE("round " + std::to_string(round));
        auto blob = content + std::to_string(round);
        inChildProcesses(4, [&](int) {
            Store s(tmp / "s");
            if (!(s.putBlob(blob, "x/y").digest == sha256(blob)))
                throw Error("putBlob gave another digest than the blob's");
        });
        Store s(tmp / "s");
        EXPECT_EQ(s.readBlob(Descriptor{"x/y", sha256(blob), int64_t(blob.size())}, "blob"), blob);
    }
    Store s(tmp / "s");
    EXPECT_TRUE(fs::is_empty(s.tmpDir()));
    EXPECT_EQ(filesIn(tmp / "s" / "blobs" / "sha256").size(), 5u);
}

TEST(Store, ConcurrentSetRef)
{
    // index.json updates are locked: refs set by concurrent processes all survive.
    TempDir tmp;
    Descriptor d;
    {
        Store s(tmp / "s");
        d = s.putBlob("m", std::string(media::ociManifest));
    }
    inChildProcesses(6, [&](int k) {
        Store s(tmp / "s");
        for (int i = 0; i < 5; i++)
            s.setRef(concat("k", k, "-", i), d);
    });
    Store s(tmp / "s");
    EXPECT_EQ(s.readIndex().manifests.size(), 30u);
}

TEST(CopyFileAtomic, CopiesWithMode)
{
    TempDir tmp;
    writeTestFile(tmp / "a", std::string(100000, 'q'));
    copyFileAtomic(tmp / "a", tmp / "b");
    EXPECT_EQ(readFile(tmp / "b"), std::string(100000, 'q'));
    EXPECT_EQ(modeOf(tmp / "b"), 0444u);
    copyFileAtomic(tmp / "a", tmp / "c", 0640);
    EXPECT_EQ(modeOf(tmp / "c"), 0640u);
    EXPECT_EQ(filesIn(tmp.path()), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(errorOf([&] { copyFileAtomic(tmp / "missing", tmp / "d"); }),
              "unable to open '" + (tmp / "missing").string() + "': No such file or directory");
}

// --- the gc lock -------------------------------------------------------------------------------

namespace {

// Whether another process could take the store's gc lock exclusive right now.
bool gcLockFree(const fs::path& root)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = ::open((root / "gc.lock").c_str(), O_RDWR | O_CLOEXEC);
        _exit(fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// True when `fd` becomes readable within `ms`.
bool readableWithin(int fd, int ms)
{
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
}

struct Pipe {
    int fds[2];
    Pipe() { EXPECT_EQ(::pipe(fds), 0); }
    ~Pipe()
    {
        ::close(fds[0]);
        ::close(fds[1]);
    }
    void send() { EXPECT_EQ(::write(fds[1], "x", 1), 1); }
    void receive()
    {
        char c;
        EXPECT_EQ(::read(fds[0], &c, 1), 1);
    }
};

} // namespace

TEST(GcLock, HeldSharedWhileTheStoreLives)
{
    TempDir tmp;
    {
        Store a(tmp / "s");
        EXPECT_FALSE(gcLockFree(tmp / "s"));
        // Shared: another process opens the same store at the same time.
        inChildProcesses(1, [&](int) {
            Store b(tmp / "s");
            if (b.lockedExclusive()) throw Error("the second Store holds the gc lock exclusive");
        });
    }
    EXPECT_TRUE(gcLockFree(tmp / "s"));
}

TEST(GcLock, ExclusiveWaitsForOtherProcessesAndSaysSo)
{
    TempDir tmp;
    Pipe opened, release;
    pid_t user = fork();
    if (user == 0) {
        Store s(tmp / "s");
        opened.send();
        release.receive();
        _exit(0);
    }
    opened.receive();
    Store s(tmp / "s");
    bool waited = false;
    s.lockExclusive([&] {
        waited = true;
        release.send(); // the other process finishes; the lock follows
    });
    EXPECT_TRUE(waited);
    EXPECT_TRUE(s.lockedExclusive());
    int status = 0;
    waitpid(user, &status, 0);

    // While it is held, a grocker process opening the store waits.
    Pipe done;
    pid_t later = fork();
    if (later == 0) {
        // Not this test's descriptor of the lock: a fork shares it, and with it the lock.
        for (int fd = 3; fd < 1024; fd++)
            if (fd != done.fds[1]) ::close(fd);
        Store t(tmp / "s");
        done.send();
        _exit(0);
    }
    EXPECT_FALSE(readableWithin(done.fds[0], 300)) << "a Store opened while purge held the gc lock";
    {
        Store gone = std::move(s);
    }
    EXPECT_TRUE(readableWithin(done.fds[0], 5000))
        << "a Store did not open once the gc lock was released";
    waitpid(later, &status, 0);
}

TEST(GcLock, ExclusiveAloneDoesNotWait)
{
    TempDir tmp;
    Store s(tmp / "s");
    bool waited = false;
    s.lockExclusive([&] { waited = true; });
    EXPECT_FALSE(waited);
    EXPECT_FALSE(gcLockFree(tmp / "s"));
}

TEST(GcLock, LockFilesNoOneHoldsRemovedOnlyByAProcessAloneWithTheStore)
{
    TempDir tmp;
    auto locks = tmp / "s" / "locks";
    {
        Store a(tmp / "s");
        writeTestFile(locks / "free.lock", "");
        Store b(tmp / "s"); // not alone: a may have opened free.lock to take it
        EXPECT_TRUE(fs::exists(locks / "free.lock"));
    }
    writeTestFile(locks / "held.lock", "");
    FileLock held(locks / "held.lock", true); // another open file, as a build's would be
    Store c(tmp / "s");
    EXPECT_EQ(filesIn(locks), std::vector<std::string>{"held.lock"});
}

// --- fsck and purge ------------------------------------------------------------------------------

namespace {

// A small image in the store: one layer per content (not a real tarball: neither check nor
// purge reads layers), its diff_id the content's digest.
Image smallImage(Store& store, const std::vector<std::string>& layers)
{
    Image scratch = loadImage(store, ImageRef{});
    ImageDraft draft(scratch, true, 0);
    for (auto& l : layers)
        draft.addLayer(store.putBlob(l, std::string(media::ociLayerGzip)), sha256("diff of " + l),
                       "layer");
    return std::move(draft).commit(store);
}

const std::string emptyZip = std::string("PK\x05\x06", 4) + std::string(18, '\0');

std::vector<std::string> lines(const CheckReport& r)
{
    std::vector<std::string> out;
    for (auto& i : r.issues)
        out.push_back(i.line());
    return out;
}

fs::path blobFile(const Store& s, const Descriptor& d)
{
    return s.blobPath(d.digest);
}

} // namespace

TEST(StoreCheck, ConsistentStore)
{
    TempDir tmp;
    Store s(tmp / "s");
    auto img = smallImage(s, {"layer one", "layer two"});
    s.setRef("grocker-app/x:1", img.manifestDescriptor);
    auto r = s.check();
    EXPECT_EQ(lines(r), std::vector<std::string>{});
    EXPECT_TRUE(r.consistent());
    // scratch's config + the image's manifest, config and two layers
    EXPECT_EQ(r.blobs, 6u);
    EXPECT_EQ(r.refs, 1u);
    EXPECT_TRUE(r.entries.empty()) << "no part, no entry of a part";
}

TEST(StoreCheck, FindsAndRepairsBrokenPieces)
{
    TempDir tmp;
    Store s(tmp / "s");
    auto good = smallImage(s, {"good layer"});
    auto cut = smallImage(s, {"shared layer", "a layer to cut short"});
    auto gone = smallImage(s, {"a layer to delete"});
    s.setRef("grocker-app/good:1", good.manifestDescriptor);
    s.setRef("grocker-app/cut:1", cut.manifestDescriptor);
    s.setRef("grocker-app/gone:1", gone.manifestDescriptor);
    auto cutLayer = cut.manifest.layers[1];
    auto goneLayer = gone.manifest.layers[0];
    auto strayBlob = s.root() / "blobs" / "sha256" / "notes.txt";
    writeTestFile(strayBlob, "not a blob");
    // A blob cut short (as a disk full or a hand might), a layer deleted, and a temp file of a
    // writer killed after this store was opened.
    {
        auto p = blobFile(s, cutLayer);
        ASSERT_EQ(::chmod(p.c_str(), 0644), 0);
        ASSERT_EQ(::truncate(p.c_str(), 5), 0);
    }
    fs::remove(blobFile(s, goneLayer));
    pid_t dead = deadPid();
    auto leftover = s.tmpDir() / (".tmp-" + std::to_string(dead) + "-7-abc");
    writeTestFile(leftover, "half");

    auto root = s.root().string();
    auto index = root + "/index.json";
    auto cutPath = blobFile(s, cutLayer).string();
    std::vector<std::string> expected{
        cutPath + ": corrupt blob: its content has digest " + sha256("a lay").str(),
        strayBlob.string() +
            ": not a blob: the blobs folder holds only files named by their sha256 digest",
        index + ": ref 'grocker-app/cut:1' (" + cut.manifestDescriptor.digest.str() +
            ") is incomplete: layer " + cutLayer.digest.str() + " is corrupt",
        index + ": ref 'grocker-app/gone:1' (" + gone.manifestDescriptor.digest.str() +
            ") is incomplete: layer " + goneLayer.digest.str() + " is missing",
        leftover.string() + ": leftover of process " + std::to_string(dead) +
            ", which is gone: grocker fsck --repair or grocker purge removes it",
    };
    auto r = s.check();
    EXPECT_EQ(lines(r), expected);
    EXPECT_FALSE(r.consistent());
    EXPECT_TRUE(fs::exists(cutPath)) << "a check without repair removed something";

    EXPECT_THAT(errorOf([&] {
                    s.check(CheckOptions{true, {}, 0});
                }),
                HasSubstr("needs the exclusive gc lock"));
    s.lockExclusive();
    std::vector<fs::path> removedByRemover;
    CheckOptions o;
    o.repair = true;
    o.remove = [&](const std::vector<fs::path>& paths) {
        removedByRemover.insert(removedByRemover.end(), paths.begin(), paths.end());
        removeTrees(paths);
    };
    r = s.check(o);
    EXPECT_TRUE(r.consistent()) << ::testing::PrintToString(lines(r));
    ASSERT_EQ(r.issues.size(), expected.size());
    EXPECT_EQ(r.issues[2].line(), expected[2] + "; dropped the ref: build or pull the image again");
    EXPECT_EQ(r.issues[0].line(), expected[0] + "; removed");
    // The leftover and the stray blob went through the remover (they may hold files of
    // subordinate ids).
    EXPECT_EQ(removedByRemover.size(), 2u);

    auto again = s.check();
    EXPECT_EQ(lines(again), std::vector<std::string>{});
    EXPECT_EQ(again.refs, 1u);
    EXPECT_TRUE(s.getRef("grocker-app/good:1"));
    EXPECT_FALSE(s.getRef("grocker-app/cut:1"));
    EXPECT_FALSE(s.getRef("grocker-app/gone:1"));
    EXPECT_EQ(imageFromStore(s, *s.getRef("grocker-app/good:1")).manifest.layers.size(), 1u);
}

TEST(StoreCheck, UnreadableIndex)
{
    TempDir tmp;
    Store s(tmp / "s");
    auto img = smallImage(s, {"x"});
    s.setRef("a:1", img.manifestDescriptor);
    auto index = s.root() / "index.json";
    auto text = readFile(index);
    writeTestFile(index, text.substr(0, text.size() / 2));
    auto r = s.check();
    ASSERT_EQ(r.issues.size(), 1u);
    EXPECT_THAT(r.issues[0].line(),
                StartsWith(index.string() + ": unreadable index of the store's images: "));
    s.lockExclusive();
    r = s.check(CheckOptions{true, {}, 0});
    ASSERT_EQ(r.issues.size(), 1u);
    EXPECT_THAT(r.issues[0].repair, HasSubstr("replaced by an empty index"));
    EXPECT_TRUE(s.readIndex().manifests.empty());
    EXPECT_TRUE(s.check().issues.empty());
}

TEST(StoreGc, RemovesWhatNoKeptImageNeeds)
{
    TempDir tmp;
    Store s(tmp / "s");
    auto kept = smallImage(s, {"base layer", "kept layer"});
    auto old = smallImage(s, {"base layer", "old layer"});
    s.setRef("grocker-x-root:1", old.manifestDescriptor);
    s.setRef("grocker-x-root:2", kept.manifestDescriptor);
    auto dangling = s.putBlob(std::string(1000, 'd'), "application/octet-stream");
    auto leftover = s.tmpDir() / (".tmp-" + std::to_string(deadPid()) + "-out-Xy12Zq");
    writeTestFile(leftover / "upper" / "f", std::string(50, 'u'));

    EXPECT_THAT(errorOf([&] { s.collectGarbage(); }), HasSubstr("needs the exclusive gc lock"));
    s.lockExclusive();
    GcOptions dry;
    dry.dropRefs = {"grocker-x-root:1"};
    dry.dryRun = true;
    auto r = s.collectGarbage(dry);
    // old's manifest, config and layer, the dangling blob, scratch's manifest and config
    auto scratch = loadImage(s, ImageRef{});
    auto oldBytes = uint64_t(old.manifestDescriptor.size + old.manifest.config.size +
                             old.manifest.layers[1].size + 1000 + scratch.manifestDescriptor.size +
                             scratch.manifest.config.size);
    EXPECT_EQ(r.blobs.count, 6u);
    EXPECT_EQ(r.blobs.bytes, oldBytes);
    EXPECT_TRUE(r.parts.empty());
    EXPECT_EQ(r.leftovers.count, 1u);
    EXPECT_EQ(r.leftovers.bytes, 50u);
    EXPECT_TRUE(s.getRef("grocker-x-root:1"));
    EXPECT_TRUE(s.hasBlob(dangling.digest));
    EXPECT_TRUE(fs::exists(leftover));

    GcOptions real = dry;
    real.dryRun = false;
    std::vector<fs::path> removed;
    real.remove = [&](const std::vector<fs::path>& paths) {
        removed = paths;
        removeTrees(paths);
    };
    auto r2 = s.collectGarbage(real);
    EXPECT_EQ(r2.bytes(), r.bytes());
    EXPECT_FALSE(s.getRef("grocker-x-root:1"));
    EXPECT_TRUE(s.getRef("grocker-x-root:2"));
    EXPECT_FALSE(s.hasBlob(dangling.digest));
    EXPECT_FALSE(s.hasBlob(old.manifest.layers[1].digest));
    EXPECT_TRUE(s.hasBlob(old.manifest.layers[0].digest)); // shared with the kept image
    EXPECT_TRUE(fs::is_empty(s.tmpDir()));
    EXPECT_EQ(removed, std::vector<fs::path>{leftover});
    EXPECT_TRUE(r2.warnings.empty());
    EXPECT_TRUE(r2.failures.empty());
    EXPECT_TRUE(s.check().issues.empty());
}

// A part of the store with a format of its own: fake/NAME files, each naming a blob by digest.
// The store asks it for its roots, to check itself, to sweep, and for its leftovers.
struct FakePart : StorePart {
    std::vector<Descriptor> rootBlobs;
    bool repaired = false;
    std::vector<Descriptor> roots(const Store&) override { return rootBlobs; }
    void check(PartCheck& c) override
    {
        for (auto& e : c.entries(c.store().root() / "fake")) {
            if (tempOwner(e.path().filename().string())) continue; // the leftover search's
            c.counted("fake entries");
            auto d = descriptorOf(c.store(), readFile(e.path()));
            if (auto p = c.blobProblem(d, "blob"))
                c.issue(e.path(), "broken fake entry: its " + *p, "removed", [&] {
                    repaired = true;
                    c.removeFile(e.path());
                });
        }
    }
    void sweep(PartSweep& s) override
    {
        for (auto& e : s.entries(s.store().root() / "fake"))
            if (!s.kept().blobs.count(readFile(e.path()))) s.dropFile("fake entries", e.path());
    }
    // Temp files of dead processes; with no other process, any run folder (its name has no pid).
    void leftovers(const Store& store, LeftoverSearch& search) override
    {
        search.deadTemps(store.root() / "fake");
        if (search.alone)
            for (auto& e : search.entries(store.root() / "run"))
                search.add(e.path(), "a run folder", StoreLeftover::Kind::Run);
    }
    static Descriptor descriptorOf(const Store& store, const std::string& digest)
    {
        auto d = Digest::parse(digest);
        std::error_code ec;
        auto size = fs::file_size(store.blobPath(d), ec);
        return Descriptor{"application/octet-stream", d, ec ? 1 : int64_t(size)};
    }
};

TEST(GcLock, RunFoldersRemovedOnlyByAProcessAloneWithTheStore)
{
    TempDir tmp;
    auto run = tmp / "s" / "run" / "step-abc123";
    auto part = std::make_shared<FakePart>(); // whose run folders carry no pid
    {
        Store a(tmp / "s", Store::Leftovers::Remove, {part});
        writeTestFile(run / "upper" / "etc" / "x", "a killed step's file");
        Store b(tmp / "s", Store::Leftovers::Remove,
                {part}); // not alone: a may be running that step
        EXPECT_TRUE(fs::exists(run));
    }
    Store c(tmp / "s", Store::Leftovers::Remove, {part});
    EXPECT_FALSE(fs::exists(run));
    EXPECT_TRUE(fs::is_directory(tmp / "s" / "run"));
}

TEST(StoreParts, CheckedAndSweptWithTheStore)
{
    TempDir tmp;
    auto part = std::make_shared<FakePart>();
    Store s(tmp / "s", Store::Leftovers::Remove, {part});
    auto kept = smallImage(s, {"kept layer"});
    s.setRef("k:1", kept.manifestDescriptor);
    auto fake = s.root() / "fake";
    writeTestFile(fake / "good", kept.manifest.layers[0].digest.str());
    writeTestFile(fake / "broken", sha256("never stored").str());
    auto r = s.check();
    EXPECT_EQ(r.entriesOf("fake entries"), 2u);
    EXPECT_EQ(lines(r), std::vector<std::string>{(fake / "broken").string() +
                                                 ": broken fake entry: its blob " +
                                                 sha256("never stored").str() + " is missing"});
    EXPECT_FALSE(r.consistent());
    s.lockExclusive();
    r = s.check(CheckOptions{true, {}, 0});
    EXPECT_TRUE(part->repaired);
    EXPECT_TRUE(r.consistent());
    EXPECT_EQ(filesIn(fake), std::vector<std::string>{"good"});

    // The part's sweep runs with what the kept images hold, and is counted.
    writeTestFile(fake / "old", sha256("gone").str());
    auto gr = s.collectGarbage();
    EXPECT_EQ(gr.partOf("fake entries").count, 1u);
    EXPECT_EQ(gr.partOf("fake entries").bytes, uint64_t(sha256("gone").str().size()));
    EXPECT_EQ(gr.bytes(), gr.blobs.bytes + gr.partOf("fake entries").bytes);
    EXPECT_EQ(filesIn(fake), std::vector<std::string>{"good"});
}

TEST(StoreParts, RootsKeepBlobsAlive)
{
    TempDir tmp;
    auto part = std::make_shared<FakePart>();
    Store s(tmp / "s", Store::Leftovers::Remove, {part});
    auto image = smallImage(s, {"a layer a part keeps"});
    auto loose = s.putBlob("a blob a part keeps", "application/octet-stream");
    auto dropped = s.putBlob("a blob no one keeps", "application/octet-stream");
    part->rootBlobs = {image.manifestDescriptor, loose};
    s.lockExclusive();
    auto r = s.collectGarbage();
    EXPECT_TRUE(s.hasBlob(loose.digest));
    EXPECT_TRUE(s.hasBlob(image.manifestDescriptor.digest));
    EXPECT_TRUE(s.hasBlob(image.manifest.config.digest));
    EXPECT_TRUE(s.hasBlob(image.manifest.layers[0].digest)) << "a root manifest keeps its layers";
    EXPECT_FALSE(s.hasBlob(dropped.digest));
    EXPECT_TRUE(r.warnings.empty()) << ::testing::PrintToString(r.warnings);
}

TEST(StoreParts, LeftoversInAPartsFolderAreFound)
{
    TempDir tmp;
    auto part = std::make_shared<FakePart>();
    auto root = tmp / "s";
    auto pid = std::to_string(deadPid());
    auto dead = root / "fake" / (".tmp-" + pid + "-0-abc");
    writeTestFile(dead, "half");
    {
        Store keep(root, Store::Leftovers::Keep, {part});
        EXPECT_EQ(lines(keep.check()),
                  std::vector<std::string>{
                      dead.string() + ": leftover of process " + pid +
                      ", which is gone: grocker fsck --repair or grocker purge removes it"});
    }
    Store opened(root, Store::Leftovers::Remove, {part});
    EXPECT_FALSE(fs::exists(dead)) << "opening the store removes leftovers in its parts' folders";
}

TEST(StoreParts, WhatCannotBeRemovedOrListedIsReported)
{
    if (::geteuid() == 0) GTEST_SKIP() << "root removes and lists what permissions forbid";
    TempDir tmp;
    auto part = std::make_shared<FakePart>();
    Store s(tmp / "s", Store::Leftovers::Remove, {part});
    auto fake = s.root() / "fake";
    writeTestFile(fake / "old", sha256("gone").str());
    ASSERT_EQ(::chmod(fake.c_str(), 0555), 0); // its entries cannot be unlinked
    s.lockExclusive();
    auto r = s.collectGarbage();
    EXPECT_EQ(r.partOf("fake entries").count, 1u);
    EXPECT_EQ(r.failures, std::vector<std::string>{"unable to remove '" + (fake / "old").string() +
                                                   "': Permission denied"});
    ASSERT_EQ(::chmod(fake.c_str(), 0000), 0); // cannot be listed
    auto c = s.check();
    EXPECT_THAT(lines(c), ::testing::Contains(
                              HasSubstr(fake.string() + ": unable to list '" + fake.string() +
                                        "': Permission denied: nothing in it could be checked")));
    EXPECT_FALSE(c.consistent());
    r = s.collectGarbage();
    EXPECT_THAT(r.warnings,
                ::testing::Contains(HasSubstr("unable to list '" + fake.string() + "'")));
    ::chmod(fake.c_str(), 0755);
}

TEST(StoreCheck, ReportsWhatDeadProcessesLeftAndRepairRemovesIt)
{
    TempDir tmp;
    auto root = tmp / "s";
    {
        Store made(root);
    }
    auto dead = std::to_string(deadPid());
    auto live = std::to_string(::getpid());
    auto parent = std::to_string(::getppid());
    // Named as tempName() and grocker build's work folders name them.
    auto deadFile = root / "tmp" / (".tmp-" + dead + "-0-abc");
    auto deadDir = root / "tmp" / (".tmp-" + dead + "-out-Xy12Zq");
    auto deadIndex = root / (".tmp-" + dead + "-1-def");
    auto deadSource = root / "sources" / "sha256" / (".tmp-" + dead + "-2-0a1b");
    auto freeLock = root / "locks" / "0123abcd.lock";
    auto heldLock = root / "locks" / "4567cdef.lock";
    writeTestFile(deadFile, "half a blob");
    writeTestFile(deadDir / "wheels" / "x.whl", "a compile's output");
    writeTestFile(deadIndex, "{");
    writeTestFile(deadSource, "registry.example/team/app\n");
    writeTestFile(freeLock, "");
    writeTestFile(heldLock, "");
    // What live processes are writing: never reported, never removed.
    std::vector<fs::path> kept{
        root / "tmp" / (".tmp-" + live + "-0-abc"), root / "tmp" / (".tmp-" + parent + "-out-Q"),
        root / "sources" / "sha256" / (".tmp-" + live + "-5-6a7b"), heldLock};
    for (auto& p : kept)
        if (!fs::exists(p)) writeTestFile(p, "being written");
    FileLock held(heldLock, true);

    Store s(root, Store::Leftovers::Keep);
    auto removes = ": grocker fsck --repair or grocker purge removes it";
    auto gone = ": leftover of process " + dead + ", which is gone" + removes;
    std::vector<std::string> expected{
        // by path
        deadIndex.string() + gone,
        freeLock.string() + ": lock file of a build step that no process holds" + removes,
        deadSource.string() + gone,
        deadFile.string() + gone,
        deadDir.string() + gone,
    };
    auto r = s.check();
    EXPECT_EQ(lines(r), expected);
    EXPECT_TRUE(r.consistent()) << "leftovers harm nothing";
    for (auto& i : r.issues)
        EXPECT_TRUE(i.leftover) << i.line();
    for (auto& p : {deadFile, deadDir, deadIndex, deadSource, freeLock})
        EXPECT_TRUE(fs::exists(p))
            << p << ": opened with Leftovers::Keep, or checked without repair, removed it";

    s.lockExclusive();
    CheckOptions o;
    o.repair = true;
    r = s.check(o);
    ASSERT_EQ(r.issues.size(), expected.size()) << ::testing::PrintToString(lines(r));
    for (size_t n = 0; n < expected.size(); n++)
        EXPECT_EQ(r.issues[n].line(), expected[n] + "; removed");
    for (auto& p : {deadFile, deadDir, deadIndex, deadSource, freeLock})
        EXPECT_FALSE(fs::exists(p)) << p;
    for (auto& p : kept)
        EXPECT_TRUE(fs::exists(p)) << p << ": a live process's file was removed";
    EXPECT_EQ(lines(s.check()), std::vector<std::string>{});
}

TEST(StoreCheck, RunFoldersAndLocksOfAnotherGrockerProcessAreNotLeftovers)
{
    TempDir tmp;
    auto root = tmp / "s";
    Store other(root); // a build, running this step
    auto run = root / "run" / "step-Ab3dEf";
    writeTestFile(run / "upper" / "x", "");
    writeTestFile(root / "locks" / "0123abcd.lock", "");
    FileLock held(root / "locks" / "0123abcd.lock", true);
    writeTestFile(root / "locks" / "4567cdef.lock", ""); // one that the build is about to take
    Store s(root, Store::Leftovers::Keep);               // not alone
    EXPECT_EQ(lines(s.check()), std::vector<std::string>{});
    EXPECT_TRUE(fs::exists(run));
}
