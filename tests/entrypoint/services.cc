// services.json as `grocker build` writes it, and every mistake reported at once, exactly.

#include "services.hh"

#include "helpers.hh"

#include <gtest/gtest.h>

namespace grocker::entrypoint {
namespace {

const char* example = R"({
  "app": "myapp", "version": "1.2.0", "venv": "/home/grocker/venv",
  "services": {
    "www": {"kind": "wsgi", "wsgi": "myapp.wsgi:application",
            "static": {"/static/": "/app/static", "/favicon.ico": "/app/static/favicon.ico"},
            "media": "/media", "processes": 4},
    "ws": {"kind": "command", "command": ["myapp-websocket", "--port", "8081"]}
  },
  "crontab": ["*/5 * * * * myapp-cleanup"]
})";

std::vector<std::string> problems(const std::string& text)
{
    try {
        parseServices(text, "services.json");
    } catch (ConfigError& e) {
        return e.problems;
    }
    ADD_FAILURE() << "no error for " << text;
    return {};
}

TEST(Services, ParsesTheDocumentedExample)
{
    auto s = parseServices(example, "services.json");
    EXPECT_EQ(s.app, "myapp");
    EXPECT_EQ(s.version, "1.2.0");
    EXPECT_EQ(s.venv, "/home/grocker/venv");
    ASSERT_EQ(s.services.size(), 2u);
    EXPECT_EQ(s.services[0].name, "www"); // in the file's order
    auto& w = std::get<WsgiService>(s.services[0].spec);
    EXPECT_EQ(w.callable, "myapp.wsgi:application");
    ASSERT_EQ(w.statics.size(), 2u);
    EXPECT_EQ(w.statics[0], (std::pair<std::string, std::string>{"/static/", "/app/static"}));
    EXPECT_EQ(w.media, "/media");
    EXPECT_EQ(w.processes, 4);
    auto& ws = std::get<CommandService>(s.find("ws")->spec);
    EXPECT_EQ(ws.argv, (std::vector<std::string>{"myapp-websocket", "--port", "8081"}));
    EXPECT_EQ(s.crontab, std::vector<std::string>{"*/5 * * * * myapp-cleanup"});
    EXPECT_EQ(s.find("cron"), nullptr);
    EXPECT_EQ(s.find("nope"), nullptr);
}

TEST(Services, DefaultsAndEmptyDocument)
{
    auto s = parseServices(
        R"({"venv": "/v", "services": {"www": {"kind": "wsgi", "wsgi": "a:b"}}})", "x");
    auto& w = std::get<WsgiService>(s.services[0].spec);
    EXPECT_EQ(w.processes, 2);
    EXPECT_TRUE(w.statics.empty());
    EXPECT_TRUE(w.media.empty());
    auto empty = parseServices("{}", "x");
    EXPECT_TRUE(empty.services.empty());
    EXPECT_TRUE(empty.crontab.empty());
}

// As the build writes it (services-format.cc): null for an optional key with no value.
TEST(Services, NullIsAbsent)
{
    auto s = parseServices(R"({"app": "a", "version": "1", "venv": "/v",
      "services": {"www": {"kind": "wsgi", "wsgi": "a:b", "static": {}, "media": null, "processes": 2},
                   "w": {"kind": "command", "command": ["x"]}},
      "crontab": []})",
                           "x");
    EXPECT_TRUE(std::get<WsgiService>(s.services[0].spec).media.empty());
    auto n = parseServices(
        R"({"app": null, "version": null, "venv": null, "services": null, "crontab": null})", "x");
    EXPECT_TRUE(n.app.empty());
    EXPECT_TRUE(n.services.empty());
}

TEST(Services, NotJson)
{
    EXPECT_EQ(
        problems("{\"app\": "),
        std::vector<std::string>{
            "services.json: not valid JSON: parse error at line 1, column 9: syntax error while "
            "parsing value - unexpected end of input; expected '[', '{', or a literal"});
    EXPECT_EQ(
        problems(R"({"processes": 1e999})"),
        std::vector<std::string>{"services.json: not valid JSON: number overflow parsing '1e999'"});
    EXPECT_EQ(problems("[1]"),
              std::vector<std::string>{"services.json: must hold a JSON object, not array [1]"});
}

TEST(Services, EveryMistakeAtOnce)
{
    auto got = problems(R"({
      "app": 1, "venv": "relative", "extra": true,
      "services": {
        "cron": {"kind": "command", "command": ["x"]},
        "-bad": {"kind": "command", "command": ["x"]},
        "www": {"kind": "wsgi", "wsgi": "no-colon", "static": {"static": "/a", "/s/": "rel", "/t/": "/with space",
                "/": "/x"}, "media": 3, "processes": "4", "port": 80},
        "api": {"kind": "wsgi", "wsgi": "a.b:c", "processes": 0},
        "ws": {"kind": "command", "command": []},
        "w2": {"kind": "command"},
        "w3": {"kind": "command", "command": ["", 2]},
        "k": {"kind": "daemon"},
        "k2": {},
        "k3": "x"
      },
      "crontab": ["ok", "two\nlines", 5, "  "]
    })");
    std::vector<std::string> want = {
        "services.json: extra: unknown key (known: app, version, venv, uwsgi_plugin, services, "
        "crontab)",
        "services.json: app: must be a string, not number 1",
        "services.json: venv: must be an absolute path, not 'relative'",
        "services.json: services.cron: 'cron' is the cron instance's name: give the service "
        "another name",
        "services.json: services.-bad: a service name is letters, digits and _.- and starts with a "
        "letter or digit",
        "services.json: services.www.port: unknown key (known: kind, wsgi, static, media, "
        "processes)",
        "services.json: services.www.wsgi: 'no-colon' must be MODULE:CALLABLE, as "
        "myapp.wsgi:application",
        "services.json: services.www.static.static: the URL prefix must start with '/', as "
        "/static/",
        "services.json: services.www.static./s/: must be an absolute path, not 'rel'",
        "services.json: services.www.static./t/: '/with space' holds a character nginx would "
        "misread (space, quote, "
        ";{}$#\\): rename the folder",
        "services.json: services.www.static./: the URL prefix '/' would hide the application: use "
        "a prefix such as "
        "/static/",
        "services.json: services.www.media: must be a string, not number 3",
        "services.json: services.www.processes: must be a whole number from 1 to 512, not string "
        "\"4\"",
        "services.json: services.api.processes: must be a whole number from 1 to 512, not number 0",
        "services.json: services.ws.command: must be a non-empty array of strings, not array []",
        "services.json: services.w2: a command service needs 'command': the program and its "
        "arguments, as "
        "[\"myapp-worker\", \"-v\"]",
        "services.json: services.w3.command[1]: must be a string, not number 2",
        "services.json: services.w3.command[0]: the program name is empty",
        "services.json: services.k.kind: must be \"wsgi\" or \"command\", not string \"daemon\"",
        "services.json: services.k2.kind: missing: \"wsgi\" or \"command\"",
        "services.json: services.k3: must be an object with a 'kind', not string \"x\"",
        "services.json: crontab[1]: a crontab line must not hold a line break: give each job its "
        "own entry",
        "services.json: crontab[2]: must be a string, not number 5",
        "services.json: crontab[3]: is empty",
    };
    EXPECT_EQ(got, want);
}

TEST(Services, UwsgiPlugin)
{
    EXPECT_EQ(parseServices(R"({})", "s.json").uwsgiPlugin, "python3");
    EXPECT_EQ(parseServices(R"({"uwsgi_plugin": ""})", "s.json").uwsgiPlugin, "");
    EXPECT_EQ(parseServices(R"({"uwsgi_plugin": "python311"})", "s.json").uwsgiPlugin, "python311");
    EXPECT_EQ(problems(R"({"uwsgi_plugin": "../x"})"),
              std::vector<std::string>{"services.json: uwsgi_plugin: must be a uwsgi plugin name "
                                       "(a-z, 0-9, _) or empty, not '../x'"});
}

TEST(Services, WsgiNeedsAVenv)
{
    EXPECT_EQ(problems(R"({"services": {"www": {"kind": "wsgi", "wsgi": "a:b"}}})"),
              std::vector<std::string>{"services.json: services.www: a wsgi service needs 'venv' "
                                       "at the top level: the virtualenv holding the "
                                       "application"});
}

TEST(Services, CallableForms)
{
    for (auto ok : {"a:b", "my_app.wsgi:application", "pkg.sub.mod:app.wsgi_app", "_x:_y"})
        EXPECT_NO_THROW(parseServices(
            concat(R"({"venv": "/v", "services": {"w": {"kind": "wsgi", "wsgi": ")", ok, R"("}}})"),
            "x"))
            << ok;
    for (auto bad : {"a", ":b", "a:", "a:b:c", "1a:b", "a..b:c", "a b:c", "a-b:c"})
        EXPECT_EQ(problems(concat(R"({"venv": "/v", "services": {"w": {"kind": "wsgi", "wsgi": ")",
                                  bad, R"("}}})")),
                  std::vector<std::string>{
                      concat("services.json: services.w.wsgi: '", bad,
                             "' must be MODULE:CALLABLE, as myapp.wsgi:application")})
            << bad;
}

TEST(Services, NginxWords)
{
    EXPECT_TRUE(isPlainNginxWord("/app/static"));
    EXPECT_TRUE(isPlainNginxWord("/caf\xc3\xa9/"));
    for (auto bad : {"", "/a b", "/a;b", "/a{", "/a}", "/$x", "/a'b", "/a\"b", "/a#b", "/a\\b",
                     "/a\tb", "/a\nb"})
        EXPECT_FALSE(isPlainNginxWord(bad)) << bad;
}

TEST(Services, LoadFromFile)
{
    test::TempDir tmp;
    EXPECT_TRUE(loadServices(tmp / "missing.json").services.empty());
    test::writeTestFile(tmp / "services.json", example);
    EXPECT_EQ(loadServices(tmp / "services.json").services.size(), 2u);
    test::writeTestFile(tmp / "bad.json", R"({"app": 1})");
    try {
        loadServices(tmp / "bad.json");
        FAIL() << "no error";
    } catch (ConfigError& e) {
        EXPECT_EQ(std::string(e.what()),
                  (tmp / "bad.json").string() + ": app: must be a string, not number 1");
    }
}

} // namespace
} // namespace grocker::entrypoint
