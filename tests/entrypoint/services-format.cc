// in-image/services-format.cc: what the build writes, the entrypoint reads back as it was, and
// the build's golden services.json (tests/build/data/) reads and writes to the same bytes.

#include "services-format.hh"

#include "grocker/file.hh"
#include "helpers.hh"

#include <gtest/gtest.h>

namespace grocker::entrypoint {
namespace {

Services everyKind()
{
    Services s;
    s.app = "myapp";
    s.version = "1.2.0";
    s.venv = "/home/grocker/venv";
    s.uwsgiPlugin = ""; // a uwsgi with Python built in
    WsgiService www{
        "myapp.wsgi:application", {{"/static/", "/app/static"}, {"/a/", "/app/a"}}, "/media", 4};
    s.services.push_back({"www", www});
    s.services.push_back({"api", WsgiService{"myapp.api:app", {}, "", 2}});
    s.services.push_back(
        {"ws", CommandService{{"myapp-websocket", "--port", "8081", "a b", "'\""}}});
    s.crontab = {"*/5 * * * * myapp-cleanup", "@daily myapp-report"};
    return s;
}

TEST(ServicesFormat, RoundTrips)
{
    auto s = everyKind();
    auto text = writeServices(s);
    EXPECT_EQ(parseServices(text, "services.json"), s);
    EXPECT_EQ(writeServices(parseServices(text, "services.json")), text);
}

// No services. The build always names a venv: the reader refuses an empty one (it takes null).
TEST(ServicesFormat, NoServicesRoundTrips)
{
    Services s;
    s.venv = "/v";
    auto text = writeServices(s);
    EXPECT_EQ(text,
              "{\n  \"app\": \"\",\n  \"version\": \"\",\n  \"venv\": \"/v\",\n  \"uwsgi_plugin\": "
              "\"python3\",\n  \"services\": {},\n  \"crontab\": []\n}\n");
    EXPECT_EQ(parseServices(text, "services.json"), s);
}

// The file tests/src/config.cc checks the build's output against, read and written again.
TEST(ServicesFormat, GoldenFileReadsAndWritesBack)
{
    auto golden = readFile(test::testData() / "build" / "data" / "services.golden.json");
    auto s = parseServices(golden, "services.golden.json");
    ASSERT_EQ(s.services.size(), 3u);
    EXPECT_EQ(s.services[0].name, "api"); // the file's order, which the build sorts
    EXPECT_EQ(writeServices(s), golden);
}

} // namespace
} // namespace grocker::entrypoint
