// Names, versions, file names, METADATA and index pages as the host checks them (what a build
// step or an index says is untrusted input).
#include "python-dists.hh"

#include "grocker/error.hh"
#include "helpers.hh"
#include "oci-helpers.hh"

#include <gmock/gmock.h>
#include <gnu/libc-version.h>
#include <gtest/gtest.h>
#include <set>
#include <sstream>

using namespace grocker;
using namespace grocker::build;
using ::testing::HasSubstr;

using grocker::test::errorOf;
using grocker::test::run;

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
    // At most 256 characters, the canonical form too (fuzz-python-dists found "1rc" + 253 more,
    // whose canonical form "1rc0..." was not a version by this bound).
    EXPECT_EQ(canonicalVersion("1rc+" + std::string(251, 'a')), "1rc0+" + std::string(251, 'a'));
    EXPECT_FALSE(canonicalVersion("1rc+" + std::string(252, 'a')));
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

TEST(WheelTags, RankAsPip)
{
    WheelTags arm("3.11", "2.36", "aarch64");
    auto rank = [&](const char* file) {
        auto w = parseWheelName(file);
        EXPECT_TRUE(w) << file;
        return arm.rank(*w);
    };
    EXPECT_EQ(rank("a-1-cp311-cp311-manylinux_2_36_aarch64.whl"), 0u);
    EXPECT_LT(*rank("a-1-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"),
              *rank("a-1-cp37-abi3-manylinux_2_28_aarch64.whl"));
    EXPECT_LT(*rank("a-1-cp37-abi3-manylinux_2_28_aarch64.whl"),
              *rank("a-1-py3-none-manylinux_2_28_aarch64.whl"));
    EXPECT_LT(*rank("a-1-py3-none-linux_aarch64.whl"), *rank("a-1-py2.py3-none-any.whl"));
    for (auto f :
         {"a-1-cp311-cp311-manylinux_2_17_x86_64.whl", "a-1-cp312-cp312-linux_aarch64.whl",
          "a-1-cp311-cp311-manylinux_2_38_aarch64.whl", "a-1-cp311-cp311-manylinux1_aarch64.whl",
          "a-1-cp311-cp311-win_amd64.whl", "a-1-pp39-pypy39_pp73-manylinux_2_17_aarch64.whl"})
        EXPECT_FALSE(rank(f)) << f;
    EXPECT_TRUE(WheelTags("3.11", "2.36", "x86_64")
                    .rank(*parseWheelName("a-1-cp311-cp311-manylinux1_x86_64.whl")));
    EXPECT_THROW(WheelTags("3", "2.36", "aarch64"), Error);
    EXPECT_THROW(WheelTags("3.11", "2.36", "aarch64; rm"), Error);
}

// The whole list, against pip's own (the packaging library it vendors, from Debian's pip wheel)
// on this machine's glibc, for two architectures: the order of every tag.
TEST(WheelTags, EveryTagInPipsOrder)
{
    std::string wheel;
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator("/usr/share/python-wheels", ec))
        if (e.path().filename().string().starts_with("pip-")) wheel = e.path().string();
    ASSERT_FALSE(wheel.empty()) << "no pip wheel in /usr/share/python-wheels (python3-pip-whl)";
    std::string glibc = gnu_get_libc_version();
    for (std::string arch : {"aarch64", "x86_64"}) {
        auto r = run({"env", "PYTHONPATH=" + wheel, "python3", "-c", R"(
import sys
from pip._vendor.packaging import tags, _manylinux
arch = sys.argv[1]
try:
    ps = list(_manylinux.platform_tags("linux_" + arch, arch))
except TypeError:
    ps = list(_manylinux.platform_tags([arch]))
ps.append("linux_" + arch)
for t in list(tags.cpython_tags((3, 11), ["cp311"], ps)) + list(tags.compatible_tags((3, 11), "cp311", ps)):
    print(t)
)",
                      arch});
        ASSERT_EQ(r.status, 0) << r.err;
        WheelTags mine("3.11", glibc, arch);
        std::istringstream lines(r.out);
        std::string tag;
        size_t n = 0;
        std::set<std::string> seen;
        for (; std::getline(lines, tag); n++) {
            if (!seen.insert(tag).second) continue; // pip lists some twice; the first counts
            auto w = parseWheelName("a-1-" + tag + ".whl");
            ASSERT_TRUE(w) << tag;
            EXPECT_EQ(mine.rank(*w), seen.size() - 1) << arch << " " << tag;
        }
        EXPECT_GT(n, 100u) << arch;
    }
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
