// sandbox::Sandbox, several at once (the compile pass builds packages side by side): they run
// together, one destroyed unwaited is killed, and the caller's SIGTERM reaches every one. Needs
// root and namespaces: fails (never skips) without them. Root filesystem: the host's static
// busybox.

#include "grocker/sandbox/sandbox.hh"
#include "helpers.hh"

#include <chrono>
#include <csignal>
#include <filesystem>
#include <gtest/gtest.h>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

using namespace grocker;
using namespace grocker::sandbox;
using grocker::test::TempDir;
namespace fs = std::filesystem;

namespace {

class Sandboxes : public ::testing::Test {
  protected:
    void SetUp() override
    {
        ASSERT_EQ(::geteuid(), 0u) << "run as root: the test makes namespaces as root";
        fs::create_directories(tmp / "rootfs/bin");
        fs::copy_file("/bin/busybox", tmp / "rootfs/bin/busybox");
        for (auto a : {"sh", "sleep", "touch", "test", "["})
            fs::create_symlink("busybox", tmp / "rootfs/bin" / a);
        for (auto d : {"proc", "dev", "tmp", "v"})
            fs::create_directories(tmp / "rootfs" / d);
        fs::create_directories(tmp / "shared");
        ::chmod((tmp / "shared").c_str(), 0777); // the sandbox's root is not the host's
    }

    SandboxSpec spec(const std::string& name, const std::string& script)
    {
        SandboxSpec s;
        s.lowerDirs = {tmp / "rootfs"};
        s.runDir = tmp / ("run-" + name);
        s.argv = {"/bin/sh", "-c", script};
        s.env = {"PATH=/bin"};
        s.volumes = {{tmp / "shared", "/v", false}};
        return s;
    }

    TempDir tmp;
    IdMap map = IdMap::forCaller();
};

double secondsSince(std::chrono::steady_clock::time_point t)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Each waits for the other's file: run one after the other, both would time out.
TEST_F(Sandboxes, RunSideBySide)
{
    auto waitFor = [](const std::string& mine, const std::string& theirs) {
        return "touch /v/" + mine + "; i=0; while [ ! -e /v/" + theirs +
               " ]; do sleep 0.05; i=$((i+1)); [ $i -lt 200 ] || exit 3; done";
    };
    Sandbox a(spec("a", waitFor("a", "b")), map);
    Sandbox b(spec("b", waitFor("b", "a")), map);
    EXPECT_EQ(a.wait(), 0);
    EXPECT_EQ(b.wait(), 0);
}

TEST_F(Sandboxes, DestroyedUnwaitedIsKilled)
{
    auto start = std::chrono::steady_clock::now();
    {
        Sandbox a(spec("a", "touch /v/started; sleep 60"), map);
        for (int i = 0; i < 200 && !fs::exists(tmp / "shared/started"); i++)
            ::usleep(20000);
        ASSERT_TRUE(fs::exists(tmp / "shared/started"));
    }
    EXPECT_LT(secondsSince(start), 30);
    // The run folder is the caller's again: nothing of the sandbox holds it.
    Sandbox b(spec("b", "exit 7"), map);
    EXPECT_EQ(b.wait(), 7);
}

TEST_F(Sandboxes, SignalsReachEveryOne)
{
    auto start = std::chrono::steady_clock::now();
    Sandbox a(spec("a", "touch /v/a; sleep 60"), map);
    Sandbox b(spec("b", "touch /v/b; sleep 60"), map);
    for (int i = 0; i < 200 && !(fs::exists(tmp / "shared/a") && fs::exists(tmp / "shared/b")); i++)
        ::usleep(20000);
    ASSERT_TRUE(fs::exists(tmp / "shared/a") && fs::exists(tmp / "shared/b"));
    ::raise(SIGTERM); // passed on to both sandboxes, not taken by this process
    EXPECT_EQ(a.wait(), 128 + SIGTERM);
    EXPECT_EQ(b.wait(), 128 + SIGTERM);
    EXPECT_LT(secondsSince(start), 30);
    // Once none runs, the caller's own disposition is back.
    struct sigaction now = {};
    ::sigaction(SIGTERM, nullptr, &now);
    EXPECT_EQ(now.sa_handler, SIG_DFL);
}

} // namespace
