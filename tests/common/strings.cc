#include "grocker/strings.hh"

#include "grocker/error.hh"

#include <cerrno>
#include <cstdlib>
#include <gtest/gtest.h>

using namespace grocker;

namespace {

// What sh makes of a command line: the words it would pass to a program.
std::string wordsOf(const std::string& line)
{
    std::string script = "for w in " + line + "; do printf '[%s]' \"$w\"; done";
    FILE* p = ::popen(("sh -c " + shellQuote(script)).c_str(), "r");
    std::string out;
    char buf[256];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
        out.append(buf, n);
    ::pclose(p);
    return out;
}

} // namespace

TEST(Strings, ShellQuoteKeepsEveryWordWhole)
{
    EXPECT_EQ(shellQuote(""), "''");
    EXPECT_EQ(shellQuote("it's"), "'it'\\''s'");
    std::vector<std::string> hostile = {
        "a b",  "$(touch /tmp/x)",
        "`id`", "'",
        "''",   "\\",
        "*",    "-n",
        "a\nb", "deb [signed-by=/k] http://m/ bookworm main; rm -rf /"};
    std::string expected;
    for (auto& w : hostile)
        expected += "[" + w + "]";
    EXPECT_EQ(wordsOf(joinQuoted(hostile)), expected);
}

TEST(Strings, Join)
{
    EXPECT_EQ(join({}), "");
    EXPECT_EQ(join({"a"}), "a");
    EXPECT_EQ(join({"a", "b c", ""}, ","), "a,b c,");
}

TEST(Strings, PythonNamesArePep503)
{
    EXPECT_EQ(normalisePythonName("Zope.Interface"), "zope-interface");
    EXPECT_EQ(normalisePythonName("a__b--c..d"), "a-b-c-d");
    EXPECT_EQ(normalisePythonName("a-_.b"), "a-b");
    EXPECT_EQ(normalisePythonName("Django"), "django");
    EXPECT_EQ(normalisePythonName("my_App.2"), "my-app-2");
}

TEST(Strings, Hex)
{
    EXPECT_EQ(hexString(""), "");
    EXPECT_EQ(hexString(std::string("\x00\x01\x7f\x80\xff", 5)), "00017f80ff");
}

TEST(Strings, Identifiers)
{
    for (auto good : {"a", "_", "A_1", "__init__", "PATH"})
        EXPECT_TRUE(isIdentifier(good)) << good;
    for (auto bad : {"", "1a", "a-b", "a.b", "a b", "é", "a$"})
        EXPECT_FALSE(isIdentifier(bad)) << bad;
}

TEST(Base64, RoundTrips)
{
    EXPECT_EQ(base64Encode("user:pass"), "dXNlcjpwYXNz");
    EXPECT_EQ(base64Encode("alice:s3cr3t-p4ss"), "YWxpY2U6czNjcjN0LXA0c3M=");
    EXPECT_EQ(base64Encode("a"), "YQ==");
    EXPECT_EQ(base64Encode("ab"), "YWI=");
    EXPECT_EQ(base64Encode(""), "");
    EXPECT_EQ(base64Decode("dXNlcjpwYXNz"), "user:pass");
    EXPECT_EQ(base64Decode("YQ=="), "a");
    EXPECT_EQ(base64Decode("YQ"), "a");
    std::string all;
    for (int i = 0; i < 256; i++)
        all += char(i);
    EXPECT_EQ(base64Decode(base64Encode(all)), all);
    EXPECT_THROW(base64Decode("a*b"), Error);
    EXPECT_THROW(base64Decode("YQ==YQ"), Error);
}

TEST(Errors, SysErrorKeepsTheErrnoItWasGiven)
{
    SysError e(ENOENT, "unable to read '", std::string("x"), "'");
    EXPECT_EQ(e.errNo(), ENOENT);
    EXPECT_EQ(e.message(), "unable to read 'x': No such file or directory");
    errno = EACCES;
    SysError f("unable to open ", 3);
    EXPECT_EQ(f.errNo(), EACCES);
    EXPECT_EQ(f.message(), "unable to open 3: Permission denied");
}
