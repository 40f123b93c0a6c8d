// nginx's, uwsgi's and msmtp's configurations, the crontab and the help text, against golden
// files in tests/entrypoint/data/ (GROCKER_REGENERATE_GOLDEN=1 rewrites them).

#include "service-files.hh"

#include "helpers.hh"

#include <cstdlib>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>

namespace grocker::entrypoint {
namespace {

void checkGolden(const std::string& name, const std::string& actual)
{
    auto path = test::testData() / "entrypoint" / "data" / name;
    const char* regen = std::getenv("GROCKER_REGENERATE_GOLDEN");
    if (regen && std::string(regen) == "1") {
        test::writeTestFile(path, actual);
        return;
    }
    std::ifstream in(path, std::ios::binary);
    ASSERT_TRUE(in) << "no golden file " << path
                    << " (run with GROCKER_REGENERATE_GOLDEN=1 to create it)";
    std::ostringstream expected;
    expected << in.rdbuf();
    EXPECT_EQ(actual, expected.str())
        << "the text changed; if on purpose, run with GROCKER_REGENERATE_GOLDEN=1 and "
           "commit "
        << path;
}

Services example()
{
    return parseServices(R"({
      "app": "myapp", "version": "1.2.0", "venv": "/home/grocker/venv",
      "services": {
        "www": {"kind": "wsgi", "wsgi": "myapp.wsgi:application",
                "static": {"/static/": "/app/static", "/robots.txt": "/app/static/robots.txt", "/assets/": "/app/assets/"},
                "media": "/media/", "processes": 4},
        "api": {"kind": "wsgi", "wsgi": "myapp.api:app"},
        "ws": {"kind": "command", "command": ["myapp-websocket", "--port", "8081", "--name", "it's"]}
      },
      "crontab": ["*/5 * * * * myapp-cleanup", "0 3 * * * myapp-report | sendmail -t"]
    })",
                         "services.json");
}

const WsgiService& wsgi(const Services& s, const std::string& name)
{
    return std::get<WsgiService>(s.find(name)->spec);
}

TEST(ServiceFiles, NginxGolden)
{
    auto s = example();
    checkGolden("nginx.conf", nginxConfig(wsgi(s, "www"), RunPaths{}));
    checkGolden("nginx-minimal.conf", nginxConfig(wsgi(s, "api"), RunPaths{"/run/x"}));
}

// The off-by-slash: a location and its alias both end with '/' or neither does.
TEST(ServiceFiles, AliasesMatchTheirLocation)
{
    WsgiService w;
    w.statics = {{"/a/", "/srv/a"}, {"/b", "/srv/b/"}, {"/c/", "/srv/c//"}, {"/d/", "/"}};
    auto conf = nginxConfig(w, RunPaths{});
    EXPECT_NE(conf.find("location /a/ {\n            alias /srv/a/;"), std::string::npos) << conf;
    EXPECT_NE(conf.find("location /b {\n            alias /srv/b;"), std::string::npos) << conf;
    EXPECT_NE(conf.find("location /c/ {\n            alias /srv/c/;"), std::string::npos) << conf;
    EXPECT_NE(conf.find("location /d/ {\n            alias /;"), std::string::npos) << conf;
    EXPECT_EQ(conf.find("media-internal"), std::string::npos);
}

TEST(ServiceFiles, UwsgiGolden)
{
    auto s = example();
    checkGolden("uwsgi.ini", uwsgiIni(wsgi(s, "www"), s.venv, RunPaths{}));
}

// A uwsgi with Python built in (the PyPI one) gets no plugins line: it would fail to load one.
TEST(ServiceFiles, UwsgiWithoutPlugin)
{
    auto s = example();
    auto withPlugin = uwsgiIni(wsgi(s, "www"), s.venv, RunPaths{});
    auto without = uwsgiIni(wsgi(s, "www"), s.venv, RunPaths{}, "");
    EXPECT_NE(withPlugin.find("\nplugins = python3\n"), std::string::npos);
    EXPECT_EQ(without.find("plugins"), std::string::npos);
    auto line = withPlugin.find("plugins = python3\n");
    EXPECT_EQ(without, withPlugin.substr(0, line) + withPlugin.substr(line + 18));
}

TEST(ServiceFiles, MsmtpGolden)
{
    checkGolden("msmtprc", msmtpConfig(Relay{"172.17.0.1", 25, "the default gateway"}, false));
    auto withSyslog = msmtpConfig(Relay{"fd00::1", 2525, "/config/smtp:1"}, true);
    EXPECT_NE(withSyslog.find("\nsyslog LOG_MAIL\n"), std::string::npos);
    EXPECT_NE(withSyslog.find("\nhost fd00::1\nport 2525\n"), std::string::npos);
}

TEST(ServiceFiles, CrontabGolden)
{
    std::vector<std::string> warnings;
    EnvList env = {{"PATH", "/home/grocker/venv/bin:/usr/bin:/bin"},
                   {"MAILTO", "ops@example.com"},
                   {"SPACED", " a b "},
                   {"QUOTED", "'x'"},
                   {"HAS_DQ", " say \"hi\""},
                   {"EMPTY", ""}};
    checkGolden("crontab", crontabText(example(), env, warnings));
    EXPECT_EQ(warnings, std::vector<std::string>{"the variable SPACED ends with spaces, which cron "
                                                 "drops: cron jobs get it without them"});
}

TEST(ServiceFiles, CrontabLeavesOutWhatCronCannotCarry)
{
    std::vector<std::string> warnings;
    EnvList env = {{"MULTI", "a\nb"},
                   {"BOTH", " '\" "},
                   {"LONG", std::string(1000, 'x')},
                   {"FITS", std::string(995, 'x')}};
    auto text = crontabText(Services{}, env, warnings);
    EXPECT_EQ(text, "# Written by grocker-entrypoint at start from /etc/grocker/services.json; "
                    "changes are lost at the next "
                    "start.\nFITS=" +
                        std::string(995, 'x') + "\n");
    EXPECT_EQ(
        warnings,
        (std::vector<std::string>{
            "the variable MULTI holds a line break, which a crontab cannot carry: cron jobs will "
            "not have it",
            "the variable BOTH has spaces around it and both kinds of quotes, which a crontab "
            "cannot "
            "carry: cron jobs will not have it",
            "the variable LONG is longer than cron's 1000 characters: cron jobs will not have it",
        }));
}

TEST(ServiceFiles, HelpGolden)
{
    checkGolden("help.txt", helpText(example(), {"migrate", "x"}));
    checkGolden("help-empty.txt", helpText(Services{}, {}));
}

} // namespace
} // namespace grocker::entrypoint
