// What the pipeline reads before it builds: RELEASE, a project folder's digest, the cache keys,
// and URLs with their secrets hidden for messages.

#include "compile.hh"
#include "grocker/error.hh"
#include "helpers.hh"

#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace grocker;
using namespace grocker::build;
using grocker::test::TempDir;
using grocker::test::writeTestFile;
namespace fs = std::filesystem;

TEST(Release, Specs)
{
    auto r = parseRelease("Django[bcrypt,argon2]==3.2.25");
    EXPECT_EQ(r.kind, Release::Kind::Spec);
    EXPECT_EQ(r.name, "Django");
    EXPECT_EQ(r.extras, "bcrypt,argon2");
    EXPECT_EQ(r.version, "3.2.25");
    EXPECT_EQ(parseRelease("my_app==1!2.0rc1.post3+local.7").version, "1!2.0rc1.post3+local.7");
    for (auto bad :
         {"django", "==1.0", "django==", "django==1.0; rm -rf /", "django[==1.0",
          "django[a b]==1.0", "-r==1.0", "django==1.0 ", "django===1.0", "django==$(id)"})
        EXPECT_THROW(parseRelease(bad), UsageError) << bad;
}

TEST(Release, WheelsAndProjects)
{
    TempDir tmp;
    writeTestFile(tmp / "shop-1.0-py3-none-any.whl", "zip");
    auto w = parseRelease((tmp / "shop-1.0-py3-none-any.whl").string() + "[pg]");
    EXPECT_EQ(w.kind, Release::Kind::Wheel);
    EXPECT_EQ(w.extras, "pg");
    writeTestFile(tmp / "not-a-wheel.whl", "zip");
    EXPECT_THROW(parseRelease((tmp / "not-a-wheel.whl").string()), UsageError);
    EXPECT_THROW(parseRelease((tmp / "missing-1.0-py3-none-any.whl").string()), UsageError);

    fs::create_directories(tmp / "proj");
    EXPECT_THROW(parseRelease((tmp / "proj").string()),
                 UsageError); // no pyproject.toml nor setup.py
    writeTestFile(tmp / "proj" / "pyproject.toml", "[project]\nname='shop'\n");
    auto p = parseRelease((tmp / "proj").string() + "[pg]");
    EXPECT_EQ(p.kind, Release::Kind::Project);
    EXPECT_EQ(p.extras, "pg");
    EXPECT_EQ(p.treeDigest, treeDigest(tmp / "proj"));
}

TEST(Release, TreeDigestSeesContentModesAndLinksButNotBuildOutputs)
{
    TempDir tmp;
    auto dir = tmp / "proj";
    writeTestFile(dir / "pyproject.toml", "a");
    writeTestFile(dir / "shop" / "__init__.py", "b");
    auto d0 = treeDigest(dir);
    EXPECT_EQ(treeDigest(dir), d0);
    for (auto out : {"build/x", "dist/shop.whl", "shop/__pycache__/x.pyc", "shop.egg-info/PKG-INFO",
                     ".git/HEAD", ".tox/x", ".venv/x"})
        writeTestFile(dir / out, "ignored");
    EXPECT_EQ(treeDigest(dir), d0);
    writeTestFile(dir / "shop" / "__init__.py", "c");
    auto d1 = treeDigest(dir);
    EXPECT_NE(d1, d0);
    ::chmod((dir / "shop" / "__init__.py").c_str(), 0755);
    auto d2 = treeDigest(dir);
    EXPECT_NE(d2, d1);
    fs::create_symlink("pyproject.toml", dir / "link");
    auto d3 = treeDigest(dir);
    EXPECT_NE(d3, d2);
    ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
    EXPECT_THROW(treeDigest(dir), UsageError);
}

TEST(CacheKey, PartsAreLengthPrefixed)
{
    EXPECT_EQ(cacheKey({"ab", "c"}), cacheKey({"ab", "c"}));
    EXPECT_NE(cacheKey({"ab", "c"}), cacheKey({"a", "bc"}));
    EXPECT_NE(cacheKey({"a", ""}), cacheKey({"a"}));
    EXPECT_EQ(cacheKey({}).size(), 64u);
}

TEST(Credentials, PasswordsAreHiddenInUrls)
{
    EXPECT_EQ(withoutPassword("https://user:s3cret@pypi.example/simple/"),
              "https://user:***@pypi.example/simple/");
    EXPECT_EQ(withoutPassword("https://TOKEN@pypi.example/simple/"),
              "https://***@pypi.example/simple/");
    EXPECT_EQ(withoutPassword("https://user:p@ss@pypi.example/simple/"),
              "https://user:***@pypi.example/simple/");
    EXPECT_EQ(withoutPassword("https://user:s3cret@pypi.example"), "https://user:***@pypi.example");
    EXPECT_EQ(withoutPassword("https://pypi.example/simple/a@b"),
              "https://pypi.example/simple/a@b");
    EXPECT_EQ(withoutPassword("https://pypi.example/?q=a@b"), "https://pypi.example/?q=a@b");
    EXPECT_EQ(withoutPassword("https://pypi.example/simple/"), "https://pypi.example/simple/");
    EXPECT_EQ(withoutPassword("not a url"), "not a url");
}
