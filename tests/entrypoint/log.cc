// Syslog messages as glibc writes them, sent to a socket of the test's, and the relay the cron
// instance listens on when no /dev/log is mounted.

#include "log.hh"

#include "grocker/error.hh"
#include "helpers.hh"

#include <cstdlib>
#include <cstring>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace grocker::entrypoint {
namespace {

// A datagram socket bound at `path`, as a syslog daemon's /dev/log.
class SyslogSink {
  public:
    explicit SyslogSink(const std::string& path)
    {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
            throw std::runtime_error("bind");
    }
    ~SyslogSink() { ::close(fd_); }
    std::string next()
    {
        char buf[9000];
        timeval tv{2, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        auto n = ::recv(fd_, buf, sizeof buf, 0);
        return n < 0 ? "(nothing)" : std::string(buf, size_t(n));
    }

  private:
    int fd_;
};

TEST(Syslog, MessageAsGlibcWritesIt)
{
    ::setenv("TZ", "UTC", 1);
    ::tzset();
    std::time_t when = 1704164645; // 2024-01-02 03:04:05 UTC
    EXPECT_EQ(syslogMessage(Level::Info, when, "nginx", 42, "GET / 200"),
              "<30>Jan  2 03:04:05 nginx[42]: GET / 200");
    EXPECT_EQ(syslogMessage(Level::Error, when, "grocker-entrypoint", 1, "x"),
              "<27>Jan  2 03:04:05 grocker-entrypoint[1]: x");
    EXPECT_EQ(syslogMessage(Level::Notice, when, "t", 1, std::string(10000, 'a')).size(),
              std::string("<29>Jan  2 03:04:05 t[1]: ").size() + 8192);
}

TEST(Syslog, TextOfAReceivedMessage)
{
    EXPECT_EQ(syslogText("<78>Nov 26 02:29:29 CRON[123]: (grocker) CMD (echo hi)"),
              "CRON[123]: (grocker) CMD (echo hi)");
    EXPECT_EQ(syslogText("<22>Nov  6 02:29:29 msmtp: host=x\n"), "msmtp: host=x");
    EXPECT_EQ(syslogText("<13>no timestamp"), "no timestamp");
    EXPECT_EQ(syslogText(std::string_view("plain\0", 6)), "plain");
    EXPECT_EQ(syslogText(""), "");
}

TEST(Log, ToSyslogWhenASocketAnswers)
{
    test::TempDir tmp;
    auto path = (tmp / "log").string();
    {
        Log none(path);
        EXPECT_FALSE(none.toSyslog());
    }
    SyslogSink sink(path);
    Log log(path);
    ASSERT_TRUE(log.toSyslog());
    log.line("nginx", 7, Level::Info, "GET /");
    auto m = sink.next();
    EXPECT_EQ(m.substr(0, 4), "<30>");
    EXPECT_EQ(syslogText(m), "nginx[7]: GET /");
    log.error("it broke");
    m = sink.next();
    EXPECT_EQ(m.substr(0, 4), "<27>");
    EXPECT_EQ(syslogText(m), concat("grocker-entrypoint[", ::getpid(), "]: it broke"));
    log.setQuiet(true);
    log.info("dropped");
    log.warning("kept");
    EXPECT_EQ(syslogText(sink.next()), concat("grocker-entrypoint[", ::getpid(), "]: kept"));
}

TEST(Log, ToStderrWithoutSyslog)
{
    test::TempDir tmp;
    Log log((tmp / "none").string());
    testing::internal::CaptureStderr();
    log.error("unable to x");
    log.warning("careful");
    log.info("hello");
    log.line("uwsgi", 3, Level::Notice, "spawned");
    EXPECT_EQ(testing::internal::GetCapturedStderr(),
              "grocker-entrypoint: error: unable to x\ngrocker-entrypoint: warning: "
              "careful\ngrocker-entrypoint: hello\nspawned\n");
    testing::internal::CaptureStdout();
    log.line("nginx", 3, Level::Info, "GET / 200");
    EXPECT_EQ(testing::internal::GetCapturedStdout(), "GET / 200\n");
}

TEST(SyslogRelay, WritesWhatItGetsToStderr)
{
    test::TempDir tmp;
    auto path = (tmp / "dev-log").string();
    SyslogRelay relay(path);
    Log sender(path);
    ASSERT_TRUE(sender.toSyslog());
    sender.line("CRON", 12, Level::Info, "(grocker) CMD (echo hi)");
    sender.line("CRON", 13, Level::Info, "(grocker) END (echo hi)");
    testing::internal::CaptureStderr();
    relay.drain();
    EXPECT_EQ(testing::internal::GetCapturedStderr(),
              "CRON[12]: (grocker) CMD (echo hi)\nCRON[13]: (grocker) END (echo hi)\n");
    try {
        SyslogRelay again(path);
        FAIL() << "bound twice";
    } catch (Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "unable to listen on '" + path + "': Address already in use");
    }
}

} // namespace
} // namespace grocker::entrypoint
