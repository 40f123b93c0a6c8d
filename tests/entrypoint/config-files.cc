// /config/env, /config/smtp, /proc/net/route, /etc/passwd and /etc/group, from their text; and
// the reader of /config's files, on links, FIFOs, folders and devices.

#include "config-files.hh"

#include "helpers.hh"
#include "log.hh"
#include "services.hh"

#include <filesystem>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

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
    auto badName = "what comes before '=' is not a variable name (letters, digits and _, not "
                   "starting with a digit)";
    EXPECT_EQ(envProblems("OK=1\nNOEQUALS\n9A=x\nA B=c\n=v\n"),
              (std::vector<std::string>{
                  "/config/env:2: the line has no '=': write KEY=VALUE",
                  concat("/config/env:3: ", badName),
                  concat("/config/env:4: ", badName),
                  concat("/config/env:5: ", badName),
              }));
}

// What is mounted in /config may be anything: a line is never quoted in a message.
const std::string secret = "s3cr3t-Hash-0f-r00t";
const std::string shadow = "root:$y$j9T$" + secret +
                           ":19000:0:99999:7:::\n"
                           "daemon:*:19000:0:99999:7:::\n"
                           "deploy token=" +
                           secret + "\n";

TEST(EnvFile, BadLinesAreNeverQuoted)
{
    auto problems = envProblems(shadow);
    ASSERT_EQ(problems.size(), 3u);
    EXPECT_EQ(problems[0], "/config/env:1: the line has no '=': write KEY=VALUE");
    EXPECT_EQ(problems[2], "/config/env:3: what comes before '=' is not a variable name (letters, "
                           "digits and _, not starting with a digit)");
    for (auto& p : problems)
        EXPECT_EQ(p.find(secret), std::string::npos) << p;
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

TEST(SmtpFile, BadLineIsNeverQuoted)
{
    auto tail = "; write HOST, HOST:PORT or [IPV6]:PORT, as smtp.example.com:25";
    auto error = [](const std::string& text) {
        try {
            parseSmtpFile(text, "/config/smtp");
        } catch (Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_EQ(error(shadow), concat("/config/smtp:1: not a mail relay: an IPv6 address needs "
                                    "brackets",
                                    tail));
    EXPECT_EQ(
        error("# relay\n" + secret + " x\n"),
        concat("/config/smtp:2: not a mail relay: a host name holds letters, digits, '.', '-' "
               "and '_' only",
               tail));
    EXPECT_EQ(error("[" + secret + "]:25"),
              concat("/config/smtp:1: not a mail relay: what is in brackets is not an IPv6 address",
                     tail));
    EXPECT_EQ(error(secret + ":99999"),
              concat("/config/smtp:1: not a mail relay: the port must be a number from 1 to 65535",
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
        EXPECT_STREQ(e.what(),
                     "/config/smtp:2: not a mail relay: a host name holds letters, digits, "
                     "'.', '-' and '_' only; write HOST, HOST:PORT or [IPV6]:PORT, as "
                     "smtp.example.com:25");
    }
}

// --- Reading /config's files ------------------------------------------------------------------

namespace fs = std::filesystem;

struct ConfigFile : ::testing::Test {
    test::TempDir dir;
    std::vector<std::string> warnings;
    std::optional<std::string> read(const std::string& name)
    {
        // A FIFO waited on would hang the test: let it die instead.
        ::alarm(10);
        auto text = readConfigFile((dir / name).string(), warnings);
        ::alarm(0);
        return text;
    }
    std::string skipped(const std::string& name, const std::string& what)
    {
        return concat((dir / name).string(), " is ", what,
                      ", not a regular file: it is ignored; mount a regular file there");
    }
};

TEST_F(ConfigFile, RegularFileIsRead)
{
    test::writeTestFile(dir / "env", "A=1\n");
    EXPECT_EQ(read("env"), "A=1\n");
    EXPECT_TRUE(warnings.empty());
}

TEST_F(ConfigFile, MissingIsNothingAndNoWarning)
{
    EXPECT_EQ(read("env"), std::nullopt);
    EXPECT_TRUE(warnings.empty());
}

TEST_F(ConfigFile, LinkToASecretIsSkippedAndItsTextNeverLogged)
{
    // /config/env as a link to /etc/shadow: it once came out line by line, as bad lines.
    test::writeTestFile(dir / "shadow", shadow, 0600);
    fs::create_symlink(dir / "shadow", dir / "env");
    fs::create_symlink("shadow", dir / "smtp");
    testing::internal::CaptureStderr();
    {
        Log log((dir / "no-syslog").string()); // to stderr
        for (auto name : {"env", "smtp"})
            if (auto text = read(name)) {
                try {
                    parseEnvFile(*text, name);
                } catch (ConfigError& e) {
                    for (auto& p : e.problems)
                        log.error(p);
                }
            }
        for (auto& w : warnings)
            log.warning(w);
    }
    auto logged = testing::internal::GetCapturedStderr();
    EXPECT_EQ(warnings, (std::vector<std::string>{skipped("env", "a symbolic link"),
                                                  skipped("smtp", "a symbolic link")}));
    EXPECT_NE(logged.find(skipped("env", "a symbolic link")), std::string::npos) << logged;
    EXPECT_EQ(logged.find(secret), std::string::npos) << logged;
}

TEST_F(ConfigFile, LinkToAFileInConfigIsSkippedToo)
{
    test::writeTestFile(dir / "real-env", "A=1\n");
    fs::create_symlink("real-env", dir / "env");
    EXPECT_EQ(read("env"), std::nullopt);
    EXPECT_EQ(warnings, std::vector<std::string>{skipped("env", "a symbolic link")});
}

TEST_F(ConfigFile, FifoIsSkippedWithoutWaiting)
{
    ASSERT_EQ(::mkfifo((dir / "env").c_str(), 0644), 0);
    EXPECT_EQ(read("env"), std::nullopt);
    EXPECT_EQ(warnings, std::vector<std::string>{skipped("env", "a FIFO")});
}

TEST_F(ConfigFile, FolderIsSkipped)
{
    fs::create_directory(dir / "smtp");
    EXPECT_EQ(read("smtp"), std::nullopt);
    EXPECT_EQ(warnings, std::vector<std::string>{skipped("smtp", "a folder")});
}

TEST(ConfigFileDevice, DeviceIsSkipped)
{
    std::vector<std::string> warnings;
    EXPECT_EQ(readConfigFile("/dev/null", warnings), std::nullopt);
    EXPECT_EQ(warnings, std::vector<std::string>{"/dev/null is a device, not a regular file: it is "
                                                 "ignored; mount a regular file there"});
}

TEST_F(ConfigFile, LinkToAFifoIsSkippedWithoutWaiting)
{
    ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0644), 0);
    fs::create_symlink(dir / "fifo", dir / "env");
    EXPECT_EQ(read("env"), std::nullopt);
    EXPECT_EQ(warnings, std::vector<std::string>{skipped("env", "a symbolic link")});
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
