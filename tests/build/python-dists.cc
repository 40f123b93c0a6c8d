// Names, versions, file names, METADATA and index pages as the host checks them (what a build
// step or an index says is untrusted input).
#include "python-dists.hh"

#include "grocker/error.hh"
#include "helpers.hh"
#include "oci-helpers.hh"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

using namespace grocker;
using namespace grocker::build;
using ::testing::HasSubstr;

using grocker::test::errorOf;

TEST(DistNames, Pep508AndPep503)
{
    for (auto n : {"a", "Django", "zope.interface", "typing_extensions", "A-1", "x9"})
        EXPECT_TRUE(validDistName(n)) << n;
    for (auto n :
         {"", "-a", "a-", ".a", "../../Trick Evil", "a b", "a/b", "a\nb", "Trick Evil", "é"})
        EXPECT_FALSE(validDistName(n)) << n;
    EXPECT_EQ(normalisePythonName("Zope.Interface"), "zope-interface");
    EXPECT_EQ(normalisePythonName("a__b--c..d"), "a-b-c-d");
    EXPECT_EQ(normalisePythonName("Typing_Extensions"), "typing-extensions");
}

TEST(DistVersions, Pep440)
{
    EXPECT_EQ(canonicalVersion("1.0"), "1.0");
    EXPECT_EQ(canonicalVersion("v1.0RC1"), "1.0rc1");
    EXPECT_EQ(canonicalVersion("1.0-alpha.2"), "1.0a2");
    EXPECT_EQ(canonicalVersion("1!2.0.post1.dev3+Local_1"), "1!2.0.post1.dev3+local.1");
    EXPECT_EQ(canonicalVersion("0!01.002-3"), "1.2.post3");
    EXPECT_EQ(canonicalVersion("1.0a"), "1.0a0");
    EXPECT_EQ(canonicalVersion("1.0.preview_3"), "1.0rc3");
    EXPECT_EQ(canonicalVersion("1.0c1.r"), "1.0rc1.post0");
    EXPECT_EQ(canonicalVersion("1.0-rev-2_DEV"), "1.0.post2.dev0");
    EXPECT_EQ(canonicalVersion("1.0.dev-7"), "1.0.dev7");
    EXPECT_EQ(canonicalVersion("2.0b2-4+ubuntu-007"), "2.0b2.post4+ubuntu.7");
    for (auto v :
         {"", "1.0 ../", "latest", "1..0", "1.0+", "1.0\n", "../../x", "1.0-", "1.0-1.post2",
          "1.0a1b2", "!1", "1!", "1.0+a..b", "1.0+a-", "v", "1.0dev1a1", "1.0."})
        EXPECT_FALSE(canonicalVersion(v)) << v;
    EXPECT_FALSE(canonicalVersion(std::string(300, '1'))); // over 256 characters
    EXPECT_TRUE(sameVersion("1.0", "1.0.0"));
    EXPECT_TRUE(sameVersion("1.0.post0", "1.0-0"));
    EXPECT_FALSE(sameVersion("1.0", "1.0.1"));
    EXPECT_FALSE(sameVersion("1.0", "bad"));
}

TEST(DistFiles, WheelAndSdistNames)
{
    auto w = parseWheelName("Django-3.2.25-py3-none-any.whl");
    ASSERT_TRUE(w);
    EXPECT_EQ(w->name, "Django");
    EXPECT_EQ(w->version, "3.2.25");
    EXPECT_EQ(w->platform, "any");
    auto b = parseWheelName("lxml-4.9.2-1-cp311-cp311-manylinux_2_17_x86_64.whl");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->build, "1");
    for (auto f :
         {"x.whl", "a-1.0-py3-none.whl", "../a-1.0-py3-none-any.whl", "a-1.0-py3-none-any.tar.gz",
          "a-1.0-x-py3-none-any.whl", "a-bad version-py3-none-any.whl", "a-1.0-py3-none-any/x.whl"})
        EXPECT_FALSE(parseWheelName(f)) << f;
    EXPECT_EQ(sdistVersion("grocker-greeting-1.0.0.tar.gz", "grocker_greeting"), "1.0.0");
    EXPECT_EQ(sdistVersion("Django-3.2.25.tar.gz", "django"), "3.2.25");
    EXPECT_EQ(sdistVersion("a.b-2.zip", "a-b"), "2");
    EXPECT_FALSE(sdistVersion("django-3.2.25.tar.gz", "flask"));
    EXPECT_FALSE(sdistVersion("django-3.2.25.exe", "django"));
    EXPECT_FALSE(sdistVersion("../django-3.2.25.tar.gz", "django"));
    EXPECT_FALSE(plainFileName(".."));
    EXPECT_FALSE(plainFileName("a/b"));
    EXPECT_FALSE(plainFileName("a b"));
    EXPECT_TRUE(plainFileName("a-1.0+local.tar.gz"));
}

TEST(DistMetadata, Headers)
{
    auto m = parseMetadata(
        "Metadata-Version: 2.1\nName: grocker-hello\nVersion: 1.0.0\nRequires-Dist: a>=1\n"
        "Requires-Dist: b; extra == \"x\"\nRequires-Python: >=3.9\n\nName: body, not a header\n");
    EXPECT_EQ(m.name, "grocker-hello");
    EXPECT_EQ(m.version, "1.0.0");
    EXPECT_EQ(m.requiresDist, (std::vector<std::string>{"a>=1", "b; extra == \"x\""}));
    EXPECT_EQ(m.requiresPython, ">=3.9");
    EXPECT_THAT(errorOf([] { parseMetadata("Name: ../../Trick Evil\nVersion: 1.0\n"); }),
                HasSubstr("Name '../../Trick Evil' is not a valid distribution name (PEP 508)"));
    EXPECT_THAT(errorOf([] { parseMetadata("Name: a\nVersion: 1.0 evil\n"); }),
                HasSubstr("Version '1.0 evil' is not a valid version (PEP 440)"));
    EXPECT_THAT(errorOf([] { parseMetadata(std::string("Name: a\x1b[2J\nVersion: 1\n")); }),
                HasSubstr("control character"));
}

TEST(DistIndex, Pep503Links)
{
    auto links = parseIndexPage(
        "<html><body>\n<a "
        "href=\"../../files/"
        "Django-3.2.25.tar.gz#sha256="
        "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789\" "
        "data-requires-python=\"&gt;=3.6\">Django-3.2.25.tar.gz</a><br/>\n"
        "<A HREF='https://files.example/p/a%2Bb-1.0-py3-none-any.whl?x=1&amp;y=2'>a+b</A>\n"
        "<a name=\"x\">no link</a><abbr href=\"no\">x</abbr></body></html>");
    ASSERT_EQ(links.size(), 2u);
    EXPECT_EQ(links[0].file, "Django-3.2.25.tar.gz");
    EXPECT_EQ(links[0].href, "../../files/Django-3.2.25.tar.gz");
    EXPECT_EQ(links[0].sha256, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
    EXPECT_EQ(links[1].file, "a+b-1.0-py3-none-any.whl");
    EXPECT_EQ(links[1].href, "https://files.example/p/a%2Bb-1.0-py3-none-any.whl?x=1&y=2");
    EXPECT_EQ(links[1].sha256, "");
}
