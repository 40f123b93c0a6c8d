// registry::Progress tells the process's display (tests/common/display.cc tests the drawing).

#include "grocker/registry/progress.hh"

#include "display-capture.hh"
#include "grocker/display.hh"
#include "grocker/file.hh"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

using namespace grocker;
using namespace grocker::registry;
using ::testing::MatchesRegex;

namespace {

using Shown = test::CapturedDisplay;

} // namespace

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
    Shown shown(ProgressMode::Plain);
    Progress p(Progress::detect(false), "pulled");
    int a = p.start("layer sha256:0123456789ab", 2000000);
    p.update(a, 1000000); // nothing printed while moving, without a terminal
    EXPECT_EQ(shown.text(), "");
    p.done(a);
    p.skipped("config sha256:ba9876543210", 300, "already in the store"); // only with -v
    p.summary("reg.example/x:1");
    EXPECT_THAT(shown.text(),
                MatchesRegex("\\[  0.[0-9]s\\] pulled layer sha256:0123456789ab \\(2.00 MB\\) in "
                             "[0-9.]+ s\n"
                             "\\[  0.[0-9]s\\] pulled reg.example/x:1: 1 blob \\(2.00 MB\\) in "
                             "[0-9.]+ s( \\([0-9.]+ [kMGT]?B/s\\))?, 1 already there\n"));
}

TEST(Progress, VerboseSaysWhatWasSkipped)
{
    Shown shown(ProgressMode::Plain, true);
    Progress p(Progress::detect(false), "pulled");
    p.skipped("config sha256:ba9876543210", 300, "already in the store");
    EXPECT_THAT(shown.text(), MatchesRegex("\\[  0.[0-9]s\\] skipped config sha256:ba9876543210 "
                                           "\\(300 B\\): already in the store\n"));
}

TEST(Progress, QuietPrintsNothing)
{
    for (bool quietDisplay : {false, true}) {
        Shown shown(quietDisplay ? ProgressMode::Quiet : ProgressMode::Plain);
        Progress p(quietDisplay ? Progress::detect(false) : Progress::detect(true), "pushed");
        int a = p.start("layer x", 10);
        p.update(a, 5);
        p.done(a, "mounted");
        p.skipped("config y", 1, "exists");
        p.summary("r/x:1");
        EXPECT_EQ(shown.text(), "");
    }
}

TEST(Progress, LiveRedrawsInPlace)
{
    Shown shown(ProgressMode::Tty);
    Progress p(Progress::detect(false), "pushed");
    int a = p.start("layer a", 100);
    int b = p.start("layer b", 100);
    p.update(a, 50);
    p.done(b);
    p.done(a);
    display().finish();
    auto s = shown.text();
    EXPECT_NE(s.find("\033["), std::string::npos); // cursor movements
    EXPECT_NE(s.find("layer a  0 B / 100 B"), std::string::npos);
    EXPECT_NE(s.find("pushed layer b (100 B)"), std::string::npos);
    EXPECT_NE(s.find("pushed layer a (100 B)"), std::string::npos);
}
