#include "grocker/oci/store.hh"

#include "grocker/oci/error.hh"
#include "grocker/oci/file.hh"
#include "helpers.hh"

#include <cstdlib>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace grocker;
using namespace grocker::oci;
using grocker::test::TempDir;
using grocker::test::writeTestFile;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace fs = std::filesystem;

namespace {

template <typename F> std::string errorOf(F&& f)
{
    try {
        f();
    } catch (Error& e) {
        return e.message();
    }
    return "(no error)";
}

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
    EXPECT_EQ(filesIn(t), (std::vector<std::string>{parentFile, liveFile, "other"}));
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
        std::vector<pid_t> kids;
        for (int k = 0; k < 4; k++) {
            pid_t pid = fork();
            ASSERT_GE(pid, 0);
            if (pid == 0) {
                int rc = 1;
                try {
                    Store s(tmp / "s");
                    auto d = s.putBlob(content + std::to_string(round), "x/y");
                    rc = d.digest == sha256(content + std::to_string(round)) ? 0 : 2;
                } catch (...) {
                    rc = 3;
                }
                _exit(rc);
            }
            kids.push_back(pid);
        }
        for (auto pid : kids) {
            int status = 0;
            ASSERT_EQ(waitpid(pid, &status, 0), pid);
            EXPECT_TRUE(WIFEXITED(status)) << "round " << round;
            EXPECT_EQ(WEXITSTATUS(status), 0) << "round " << round;
        }
        Store s(tmp / "s");
        EXPECT_EQ(s.readBlob(Descriptor{"x/y", sha256(content + std::to_string(round)),
                                        int64_t(content.size() + std::to_string(round).size())},
                             "blob"),
                  content + std::to_string(round));
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
    std::vector<pid_t> kids;
    for (int k = 0; k < 6; k++) {
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            int rc = 0;
            try {
                Store s(tmp / "s");
                for (int i = 0; i < 5; i++)
                    s.setRef("k" + std::to_string(k) + "-" + std::to_string(i), d);
            } catch (...) {
                rc = 1;
            }
            _exit(rc);
        }
        kids.push_back(pid);
    }
    for (auto pid : kids) {
        int status = 0;
        waitpid(pid, &status, 0);
        EXPECT_EQ(status, 0);
    }
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
