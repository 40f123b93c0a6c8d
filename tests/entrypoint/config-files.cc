// /config/env, /config/smtp, /proc/net/route, /etc/passwd and /etc/group, from their text.

#include "config-files.hh"

#include "services.hh"

#include <gtest/gtest.h>

namespace grocker::entrypoint {
namespace {

std::vector<std::string> envProblems(const std::string& text)
{
    try {
        parseEnvFile(text, "/config/env");
    } catch (ConfigError& e) {
        return e.problems;
    }
    ADD_FAILURE() << "no error for " << text;
    return {};
}

std::string relayError(const std::string& text)
{
    try {
        parseRelay(text, "SMTP_HOST");
    } catch (Error& e) {
        return e.what();
    }
    return "no error";
}

TEST(EnvFile, AsDockerEnvFileReadsIt)
{
    auto env = parseEnvFile("# a comment\n"
                            "\n"
                            "A=1\n"
                            "  B=two words  \n"
                            "C=\"quoted\"\n"
                            "D=\n"
                            "E=x=y\r\n"
                            "   # indented comment\n"
                            "_F9=last",
                            "/config/env");
    EnvList want = {{"A", "1"}, {"B", "two words  "}, {"C", "\"quoted\""},
                    {"D", ""},  {"E", "x=y"},         {"_F9", "last"}};
    EXPECT_EQ(env, want);
    EXPECT_TRUE(parseEnvFile("", "x").empty());
}

TEST(EnvFile, EveryBadLine)
{
    EXPECT_EQ(envProblems("OK=1\nNOEQUALS\n9A=x\nA B=c\n=v\n"),
              (std::vector<std::string>{
                  "/config/env:2: 'NOEQUALS' has no '=': write KEY=VALUE",
                  "/config/env:3: '9A' is not a variable name (letters, digits and _, not starting "
                  "with a digit)",
                  "/config/env:4: 'A B' is not a variable name (letters, digits and _, not "
                  "starting with a digit)",
                  "/config/env:5: '' is not a variable name (letters, digits and _, not starting "
                  "with a digit)",
              }));
}

TEST(Relay, Forms)
{
    auto r = parseRelay("smtp.example.com", "x");
    EXPECT_EQ(r.host, "smtp.example.com");
    EXPECT_EQ(r.port, 25);
    EXPECT_EQ(r.origin, "x");
    r = parseRelay(" 10.0.0.1:2525 ", "x");
    EXPECT_EQ(r.host, "10.0.0.1");
    EXPECT_EQ(r.port, 2525);
    EXPECT_EQ(r.str(), "10.0.0.1:2525");
    r = parseRelay("[fd00::1]:587", "x");
    EXPECT_EQ(r.host, "fd00::1");
    EXPECT_EQ(r.port, 587);
    EXPECT_EQ(r.str(), "[fd00::1]:587");
    EXPECT_EQ(parseRelay("[::1]", "x").port, 25);
    EXPECT_EQ(parseRelay("mail-relay_1", "x").host, "mail-relay_1");
}

TEST(Relay, Errors)
{
    auto tail = "; write HOST, HOST:PORT or [IPV6]:PORT, as smtp.example.com:25";
    EXPECT_EQ(relayError(""), concat("SMTP_HOST: '' is not a mail relay: the host is empty", tail));
    EXPECT_EQ(relayError("host:"),
              concat("SMTP_HOST: 'host:' is not a mail relay: the port after ':' is empty", tail));
    EXPECT_EQ(
        relayError("host:0"),
        concat("SMTP_HOST: 'host:0' is not a mail relay: the port must be a number from 1 to 65535",
               tail));
    EXPECT_EQ(relayError("host:65536"), concat("SMTP_HOST: 'host:65536' is not a mail relay: the "
                                               "port must be a number from 1 to 65535",
                                               tail));
    EXPECT_EQ(
        relayError("host:2x"),
        concat(
            "SMTP_HOST: 'host:2x' is not a mail relay: the port must be a number from 1 to 65535",
            tail));
    EXPECT_EQ(
        relayError("fd00::1"),
        concat("SMTP_HOST: 'fd00::1' is not a mail relay: an IPv6 address needs brackets", tail));
    EXPECT_EQ(relayError("[fd00::1"),
              concat("SMTP_HOST: '[fd00::1' is not a mail relay: the '[' has no ']'", tail));
    EXPECT_EQ(
        relayError("[nope]:25"),
        concat("SMTP_HOST: '[nope]:25' is not a mail relay: 'nope' is not an IPv6 address", tail));
    EXPECT_EQ(relayError("[::1]x"),
              concat("SMTP_HOST: '[::1]x' is not a mail relay: only ':PORT' may follow ']'", tail));
    EXPECT_EQ(relayError("a b"),
              concat("SMTP_HOST: 'a b' is not a mail relay: ' ' cannot be in a host name", tail));
    EXPECT_EQ(
        relayError("smtp://x"),
        concat(
            "SMTP_HOST: 'smtp://x' is not a mail relay: the port must be a number from 1 to 65535",
            tail));
}

TEST(SmtpFile, FirstMeaningfulLine)
{
    auto r = parseSmtpFile("# the host's relay\n\n  relay.lan:26  \nignored\n", "/config/smtp");
    EXPECT_EQ(r.str(), "relay.lan:26");
    EXPECT_EQ(r.origin, "/config/smtp:3");
    try {
        parseSmtpFile("# nothing\n", "/config/smtp");
        FAIL() << "no error";
    } catch (Error& e) {
        EXPECT_STREQ(e.what(), "/config/smtp: no relay in it: write the mail relay's HOST or "
                               "HOST:PORT on one line, or "
                               "remove the file");
    }
    try {
        parseSmtpFile("\nbad host\n", "/config/smtp");
        FAIL() << "no error";
    } catch (Error& e) {
        EXPECT_EQ(std::string(e.what()).substr(0, 50),
                  "/config/smtp:2: 'bad host' is not a mail relay: ' ");
    }
}

// As Linux prints it on a little-endian machine (the tests run on x86-64 and arm64).
const char* routes =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t0011A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "eth1\t00000000\t0100A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0\n"
    "eth0\t00000000\t010011AC\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
    "eth2\t00000000\t0102000A\t0001\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth3\t00000000\t0103000A\t0002\t0\t0\t0\t00000000\t0\t0\t0\n";

TEST(Route, DefaultGatewayWithTheLowestMetric)
{
    // eth2 has no gateway flag and eth3 is down: eth0's 172.17.0.1 (metric 100) beats eth1's (200).
    EXPECT_EQ(defaultGateway(routes), "172.17.0.1");
    EXPECT_EQ(
        defaultGateway(std::string(routes).substr(0, std::string(routes).find("eth0\t00000000"))),
        "192.168.0.1");
}

TEST(Route, NoDefaultRoute)
{
    EXPECT_EQ(defaultGateway(""), std::nullopt);
    EXPECT_EQ(defaultGateway("Iface\tDestination\tGateway\n"), std::nullopt);
    // Loopback only (`grocker run` without --network host).
    EXPECT_EQ(
        defaultGateway(
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
            "eth0\t0011A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
            "garbage line\n"),
        std::nullopt);
}

const char* passwd = "root:x:0:0:root:/root:/bin/bash\n"
                     "broken line\n"
                     "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
                     "grocker:x:1000:1000::/home/grocker:/bin/sh\n";
const char* group = "root:x:0:\n"
                    "adm:x:4:grocker\n"
                    "crontab:x:101:\n"
                    "grocker:x:1000:\n"
                    "mail:x:8:www-data,grocker\n"
                    "bad\n";

TEST(Accounts, ByNameAndUid)
{
    auto a = findAccount(passwd, "grocker");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->uid, 1000u);
    EXPECT_EQ(a->gid, 1000u);
    EXPECT_EQ(a->home, "/home/grocker");
    EXPECT_EQ(findAccount(passwd, uid_t(33))->name, "www-data");
    EXPECT_FALSE(findAccount(passwd, "nobody"));
    EXPECT_FALSE(findAccount(passwd, uid_t(5)));
    EXPECT_EQ(accountGroups(group, *a), (std::vector<gid_t>{1000, 4, 8}));
}

} // namespace
} // namespace grocker::entrypoint
