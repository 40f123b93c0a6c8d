#include "grocker/registry/progress.hh"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sstream>

using namespace grocker::registry;
using ::testing::MatchesRegex;

TEST(Progress, FormatBytes)
{
    EXPECT_EQ(Progress::formatBytes(0), "0 B");
    EXPECT_EQ(Progress::formatBytes(999), "999 B");
    EXPECT_EQ(Progress::formatBytes(1000), "1.00 kB");
    EXPECT_EQ(Progress::formatBytes(1500000), "1.50 MB");
    EXPECT_EQ(Progress::formatBytes(312400000), "312.4 MB");
    EXPECT_EQ(Progress::formatBytes(2000000000000), "2.00 TB");
}

TEST(Progress, PlainLinesWhenDone)
{
    std::ostringstream out;
    {
        Progress p(Progress::Mode::Plain, out, "pulled");
        int a = p.start("layer sha256:0123456789ab", 2000000);
        p.update(a, 1000000); // nothing printed while moving, without a terminal
        EXPECT_EQ(out.str(), "");
        p.done(a);
        p.skipped("config sha256:ba9876543210", 300, "already in the store");
        p.summary("reg.example/x:1");
    }
    EXPECT_THAT(
        out.str(),
        MatchesRegex("pulled layer sha256:0123456789ab \\(2.00 MB\\) in [0-9.]+ s\n"
                     "skipped config sha256:ba9876543210 \\(300 B\\): already in the store\n"
                     "pulled reg.example/x:1: 1 blob \\(2.00 MB\\) in [0-9.]+ s( \\([0-9.]+ "
                     "[kMGT]?B/s\\))?, 1 "
                     "already there\n"));
}

TEST(Progress, QuietPrintsNothing)
{
    std::ostringstream out;
    {
        Progress p(Progress::Mode::Quiet, out, "pushed");
        int a = p.start("layer x", 10);
        p.update(a, 5);
        p.done(a, "mounted");
        p.skipped("config y", 1, "exists");
        p.summary("r/x:1");
    }
    EXPECT_EQ(out.str(), "");
}

TEST(Progress, LiveRedrawsInPlace)
{
    std::ostringstream out;
    {
        Progress p(Progress::Mode::Live, out, "pushed");
        int a = p.start("layer a", 100);
        int b = p.start("layer b", 100);
        p.update(a, 50);
        p.done(b);
        p.done(a);
    }
    auto s = out.str();
    EXPECT_NE(s.find("\033["), std::string::npos); // cursor movements
    EXPECT_NE(s.find("pushed layer b (100 B)"), std::string::npos);
    EXPECT_NE(s.find("pushed layer a (100 B)"), std::string::npos);
}
