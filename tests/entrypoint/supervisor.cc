// The supervisor with real processes: exit statuses, start errors, signals passed on, a group
// stopped when one of it ends, orphans reaped, output relayed to syslog.

#include "supervisor.hh"

#include "helpers.hh"

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <set>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace grocker::entrypoint {
namespace {

namespace fs = std::filesystem;

ProcessSpec shell(const std::string& name, const std::string& script, bool capture = false)
{
    ProcessSpec p;
    p.name = name;
    p.argv = {"sh", "-c", script};
    p.env = {"PATH=/usr/bin:/bin"};
    p.captureOutput = capture;
    return p;
}

struct Fixture : testing::Test {
    test::TempDir tmp;
    Log log{(tmp / "no-syslog").string()};
};

using SupervisorTest = Fixture;

TEST_F(SupervisorTest, OneProcessItsStatus)
{
    {
        Supervisor s(log);
        s.start(shell("three", "exit 3"));
        EXPECT_EQ(s.wait(), 3);
    }
    {
        Supervisor s(log);
        s.start(shell("killed", "kill -KILL $$"));
        EXPECT_EQ(s.wait(), 128 + SIGKILL);
    }
}

TEST_F(SupervisorTest, StartErrorsAsAShellGivesThem)
{
    Supervisor s(log);
    ProcessSpec p;
    p.name = "x";
    p.argv = {"no-such-command-x"};
    p.env = {"PATH=/nowhere:/also-not"};
    try {
        s.start(p);
        FAIL() << "started";
    } catch (StartError& e) {
        EXPECT_EQ(e.status, 127);
        EXPECT_STREQ(
            e.what(),
            "unable to run 'no-such-command-x': no such command in PATH (/nowhere:/also-not)");
    }
    p.argv = {(tmp / "missing").string()};
    try {
        s.start(p);
        FAIL() << "started";
    } catch (StartError& e) {
        EXPECT_EQ(e.status, 127);
        EXPECT_EQ(std::string(e.what()), "unable to run '" + p.argv[0] + "': no such file");
    }
    test::writeTestFile(tmp / "script", "#!/bin/sh\necho hi\n", 0644);
    p.argv = {(tmp / "script").string()};
    try {
        s.start(p);
        FAIL() << "started";
    } catch (StartError& e) {
        EXPECT_EQ(e.status, 126);
        EXPECT_EQ(std::string(e.what()),
                  "unable to run '" + p.argv[0] +
                      "': permission denied (is it executable? chmod +x it)");
    }
}

void waitForFile(const fs::path& p)
{
    for (int i = 0; i < 500 && !fs::exists(p); i++)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(fs::exists(p)) << p;
}

TEST_F(SupervisorTest, PassesSignalsOn)
{
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) {
        Supervisor s(log);
        auto ready = tmp / concat("ready-", sig);
        s.start(shell("trapper", concat("trap 'exit ", 10 + sig, "' ", sig, "; touch ",
                                        ready.string(), "; while :; do sleep 0.05; done")));
        waitForFile(ready);
        ::kill(::getpid(), sig); // blocked here, read from the signalfd by wait()
        EXPECT_EQ(s.wait(), 10 + sig) << "signal " << sig;
    }
}

// Started with signals ignored (as a shell's background job is, SIGINT and SIGQUIT), the
// supervisor still starts its processes with every signal at its default: none ignored.
TEST_F(SupervisorTest, ProcessesStartWithNoSignalIgnored)
{
    struct sigaction ign {
    }, oldQuit{}, oldUsr1{};
    ign.sa_handler = SIG_IGN;
    ::sigaction(SIGQUIT, &ign, &oldQuit);
    ::sigaction(SIGUSR1, &ign, &oldUsr1);
    auto out = tmp / "sigign";
    {
        Supervisor s(log);
        s.start(shell("ignored", "grep '^SigIgn:' /proc/self/status > " + out.string()));
        EXPECT_EQ(s.wait(), 0);
    }
    ::sigaction(SIGQUIT, &oldQuit, nullptr);
    ::sigaction(SIGUSR1, &oldUsr1, nullptr);
    // grep's own: sh ignores nothing it was not given ignored.
    std::ifstream in(out);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "SigIgn:\t0000000000000000");
}

TEST_F(SupervisorTest, WhenOneOfAGroupEndsTheOthersAreStopped)
{
    Supervisor s(log);
    auto ready = tmp / "ready";
    s.start(shell("long", "trap 'exit 0' TERM; touch " + ready.string() +
                              "; while :; do sleep 0.05; done"));
    waitForFile(ready);
    s.start(shell("short", "exit 4"));
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(s.wait(), 4);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST_F(SupervisorTest, AProcessIgnoringSigtermIsKilledAfterTheGrace)
{
    Supervisor s(log);
    s.stopGrace = std::chrono::milliseconds(300);
    auto ready = tmp / "ready";
    s.start(shell("stubborn",
                  "trap '' TERM; touch " + ready.string() + "; while :; do sleep 0.05; done"));
    waitForFile(ready);
    s.start(shell("short", "exit 0"));
    auto t0 = std::chrono::steady_clock::now();
    testing::internal::CaptureStderr();
    EXPECT_EQ(s.wait(), 128 + SIGKILL); // the first that did not end with 0
    auto err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("grocker-entrypoint: warning: short ended: stopping stubborn\n"),
              std::string::npos)
        << err;
    EXPECT_NE(err.find(" did not stop within 0 s of SIGTERM: killing it\n"), std::string::npos)
        << err;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST_F(SupervisorTest, AllEndedWithZeroIsZero)
{
    Supervisor s(log);
    auto ready = tmp / "ready";
    s.start(shell("b", "trap 'exit 0' TERM; touch " + ready.string() +
                           "; while :; do sleep 0.05; done"));
    waitForFile(ready);
    s.start(shell("a", "exit 0"));
    EXPECT_EQ(s.wait(), 0);
}

TEST_F(SupervisorTest, ReapsOrphans)
{
    Supervisor s(log);
    // The backgrounded sleep is orphaned at once and comes to us (a subreaper); it ends before its
    // parent.
    s.start(shell("parent", "(sleep 0.1 &) ; sleep 0.6"));
    EXPECT_EQ(s.wait(), 0);
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a child is left unreaped";
    EXPECT_EQ(errno, ECHILD);
}

TEST_F(SupervisorTest, RunToEndGivesStatusAndOutput)
{
    Supervisor s(log);
    std::string out;
    EXPECT_EQ(s.runToEnd(shell("step", "echo a; echo b >&2; exit 2"), out), 2);
    EXPECT_EQ(out, "a\nb");
}

TEST_F(SupervisorTest, OutputToSyslogLineByLine)
{
    auto path = (tmp / "log").string();
    int sink = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(sink, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    Log syslog(path);
    ASSERT_TRUE(syslog.toSyslog());
    syslog.setQuiet(true);
    {
        Supervisor s(syslog);
        pid_t pid =
            s.start(shell("svc", "echo out1; echo err1 >&2; echo out2; printf partial", true));
        EXPECT_EQ(s.wait(), 0);
        std::set<std::string> got;
        char buf[9000];
        ssize_t n;
        while ((n = ::recv(sink, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
            std::string m(buf, size_t(n));
            got.insert(m.substr(0, 4) + std::string(syslogText(m)));
        }
        auto tag = concat("svc[", pid, "]: ");
        EXPECT_EQ(got, (std::set<std::string>{"<30>" + tag + "out1", "<29>" + tag + "err1",
                                              "<30>" + tag + "out2", "<30>" + tag + "partial"}));
    }
    ::close(sink);
}

} // namespace
} // namespace grocker::entrypoint
