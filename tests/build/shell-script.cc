#include "build/shell-script.hh"

#include "helpers.hh"

#include <gtest/gtest.h>

using namespace grocker::build;

namespace {

// What sh does with the script, each command's words printed as [word].
std::string runWithPrintf(const ShellScript& s)
{
    auto r = grocker::test::run({"sh", "-ec", "p() { printf '[%s]' \"$@\"; echo; }\n" + s.text()});
    EXPECT_EQ(r.status, 0) << r.err;
    return r.out;
}

} // namespace

TEST(ShellScript, CodeWordsAreQuotedOnlyWhenNeeded)
{
    ShellScript s;
    s.run({"apt-get", "update", "-qq"}).runTo({"p", "%s\\n", data("x")}, "/dev/null");
    EXPECT_EQ(s.text(), "apt-get update -qq && p '%s\\n' 'x' >/dev/null");
    EXPECT_EQ(quoteIfNeeded(""), "''");
    EXPECT_EQ(quoteIfNeeded("s/^(a)/\\1/"), "'s/^(a)/\\1/'");
}

TEST(ShellScript, HostileDataStaysOneWord)
{
    std::vector<std::string> hostile = {"libfoo; rm -rf /",
                                        "$(id)",
                                        "`id`",
                                        "a'b",
                                        "deb [signed-by=/k] http://m/ x main",
                                        "-y",
                                        "a\nb",
                                        "*",
                                        "~root",
                                        "x > /etc/passwd",
                                        "&& true"};
    ShellScript s;
    std::vector<Word> words{"p"};
    for (auto& w : ShellScript::data(hostile))
        words.push_back(w);
    s.run(words);
    std::string expected;
    for (auto& h : hostile)
        expected += "[" + h + "]";
    EXPECT_EQ(runWithPrintf(s), expected + "\n");
}

TEST(ShellScript, HostileCodeWordsAreQuotedToo)
{
    ShellScript s;
    s.run({"p", "/home/it's here", "$HOME"});
    EXPECT_EQ(runWithPrintf(s), "[/home/it's here][$HOME]\n");
}

TEST(ShellScript, GlobsAreOnlyPathsAndStars)
{
    EXPECT_EQ(glob("/var/lib/apt/lists/*").text, "/var/lib/apt/lists/*");
    EXPECT_THROW(glob("/x/*; rm -rf /"), std::logic_error);
    EXPECT_THROW(glob("/x/$(id)"), std::logic_error);
    EXPECT_THROW(glob(""), std::logic_error);
}

TEST(ShellScript, CommandsRunWhileEachSucceeds)
{
    ShellScript s;
    s.run({"p", "one"}).run({"false"}).run({"p", "never"});
    auto r = grocker::test::run({"sh", "-c", "p() { printf '[%s]' \"$@\"; echo; }\n" + s.text()});
    EXPECT_NE(r.status, 0);
    EXPECT_EQ(r.out, "[one]\n");
    EXPECT_EQ(s.argv().size(), 3u);
    EXPECT_EQ(s.argv()[0], "/bin/sh");
    EXPECT_THROW(ShellScript().run({}), std::logic_error);
}
