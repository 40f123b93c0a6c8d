// Tests of sandbox/id-map.cc: the ranges root maps the sandbox's users to.

#include "grocker/sandbox/id-map.hh"

#include <gtest/gtest.h>

#include "grocker/error.hh"
#include "helpers.hh"

using namespace grocker;
using namespace grocker::sandbox;
using grocker::test::TempDir;
using grocker::test::writeTestFile;

namespace {

struct RootFiles {
    TempDir dir;
    RootFiles(const std::string& subuid, const std::string& subgid, const std::string& passwd, const std::string& group)
    {
        writeTestFile(dir / "subuid", subuid);
        writeTestFile(dir / "subgid", subgid);
        writeTestFile(dir / "passwd", passwd);
        writeTestFile(dir / "group", group);
    }
    IdMap map() const { return IdMap::forRoot(dir / "subuid", dir / "subgid", dir / "passwd", dir / "group"); }
};

const std::string accounts = "root:x:0:0:root:/root:/bin/sh\nci:x:1000:1000::/home/ci:/bin/sh\n";
const std::string groups = "root:x:0:\nci:x:1000:\n";

} // namespace

TEST(IdMapForRoot, RootsOwnRangeWhenItHoldsEnoughIds)
{
    RootFiles f("ci:100000:65536\nroot:200000:100000\n", "0:300000:65536\n", accounts, groups);
    auto m = f.map();
    ASSERT_EQ(m.uids.size(), 1u);
    EXPECT_EQ(m.uids[0].inside, 0u);
    EXPECT_EQ(m.uids[0].outside, 200000u);
    EXPECT_EQ(m.uids[0].count, 65536u);
    EXPECT_EQ(m.gids[0].outside, 300000u);
    EXPECT_TRUE(m.privileged);
    EXPECT_FALSE(m.isIdentity());
    EXPECT_EQ(m.rootOutside(), (std::pair<uid_t, gid_t>(200000, 300000)));
    EXPECT_EQ(m.uidInside(201000), 1000u);
    EXPECT_EQ(m.uidInside(1000), 65534u) << "a host account is nobody inside";
}

TEST(IdMapForRoot, FixedRangeWithoutOneOrWithTooSmallOne)
{
    RootFiles f("root:200000:1000\n", "", accounts, groups);
    auto m = f.map();
    EXPECT_EQ(m.uids[0].outside, IdMap::rootFallbackStart);
    EXPECT_EQ(m.uids[0].count, 65536u);
    EXPECT_EQ(m.gids[0].outside, IdMap::rootFallbackStart);
    EXPECT_EQ(m.uidInside(IdMap::rootFallbackStart + 1000), 1000u);
}

TEST(IdMapForRoot, RefusesFixedRangeAnAccountUses)
{
    RootFiles f("", "", accounts + "odd:x:2147483700:1000::/:/bin/sh\n", groups);
    try {
        f.map();
        FAIL() << "no error";
    } catch (Error& e) {
        EXPECT_EQ(std::string(e.what()),
            "uid 2147483700 of 'odd' in " + (f.dir / "passwd").string() +
                " is in 2147483648-2147549183, the range grocker gives the sandbox's users as root when root has "
                "none: give root one of 65536 ids no account uses (usermod --add-subuids START-END "
                "--add-subgids START-END root)");
    }
}

TEST(IdMap, IdentityIsIdentity)
{
    auto m = IdMap::identity();
    EXPECT_TRUE(m.isIdentity());
    EXPECT_EQ(m.uidInside(1000), 1000u);
    EXPECT_EQ(m.rootOutside(), (std::pair<uid_t, gid_t>(0, 0)));
}
