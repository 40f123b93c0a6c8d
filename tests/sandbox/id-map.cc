// Tests of sandbox/id-map.cc: the ranges root maps the sandbox's users to.

#include "grocker/sandbox/id-map.hh"

#include "grocker/error.hh"
#include "helpers.hh"

#include <gtest/gtest.h>

using namespace grocker;
using namespace grocker::sandbox;
using grocker::test::TempDir;
using grocker::test::writeTestFile;

namespace {

struct RootFiles {
    TempDir dir;
    RootFiles(const std::string& subuid, const std::string& subgid, const std::string& passwd,
              const std::string& group)
    {
        writeTestFile(dir / "subuid", subuid);
        writeTestFile(dir / "subgid", subgid);
        writeTestFile(dir / "passwd", passwd);
        writeTestFile(dir / "group", group);
    }
    IdMap map() const
    {
        return IdMap::forRoot(dir / "subuid", dir / "subgid", dir / "passwd", dir / "group");
    }
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
        EXPECT_EQ(
            std::string(e.what()),
            "uid 2147483700 of 'odd' in " + (f.dir / "passwd").string() +
                " is in 2147483648-2147549183, the range grocker gives the sandbox's users as root "
                "when root has "
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

TEST(IdMapForRoot, GroupsCheckedAgainstGroupFile)
{
    RootFiles f("root:200000:65536\n", "", accounts, groups + "odd:x:2147483648:\n");
    try {
        f.map();
        FAIL() << "no error";
    } catch (Error& e) {
        auto start = "gid 2147483648 of 'odd' in " + (f.dir / "group").string() + " is in ";
        EXPECT_TRUE(std::string(e.what()).starts_with(start)) << e.what();
    }
}

TEST(IdMapForRoot, AccountsJustOutsideTheFixedRangeAreFine)
{
    RootFiles f("", "",
                accounts + "below:x:2147483647:0::/:/bin/sh\nabove:x:2147549184:0::/:/bin/sh\n",
                groups);
    EXPECT_EQ(f.map().uids[0].outside, IdMap::rootFallbackStart);
}

TEST(IdMapForRoot, RangeEndingPastTheLastIdIsNotUsed)
{
    RootFiles f("root:4294901760:65536\n", "root:4294901759:65536\n", accounts, groups);
    auto m = f.map();
    EXPECT_EQ(m.uids[0].outside, IdMap::rootFallbackStart);
    EXPECT_EQ(m.gids[0].outside, 4294901759u)
        << "its last id is 4294967294, the last one a map may hold";
}

TEST(IdMapForRoot, MissingFilesGiveTheFixedRange)
{
    auto m = IdMap::forRoot("/nonexistent/subuid", "/nonexistent/subgid", "/nonexistent/passwd",
                            "/nonexistent/group");
    EXPECT_EQ(m.uids[0].outside, IdMap::rootFallbackStart);
    EXPECT_EQ(m.gids[0].outside, IdMap::rootFallbackStart);
}

TEST(IdMapSubordinate, TheCallersRangeAsIdsOneUp)
{
    TempDir dir;
    writeTestFile(dir / "subuid", "other:1:100\nci:100000:200000\n1000:5:5\n");
    auto r = IdMap::subordinate(dir / "subuid", "ci", 1001);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->inside, 1u);
    EXPECT_EQ(r->outside, 100000u);
    EXPECT_EQ(r->count, 65535u) << "at most 1-65535: 0 is the caller";
    r = IdMap::subordinate(dir / "subuid", "nobody-here", 1000);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->outside, 5u);
    EXPECT_EQ(r->count, 5u);
    EXPECT_FALSE(IdMap::subordinate(dir / "subuid", "nobody-here", 1002));
    EXPECT_FALSE(IdMap::subordinate(dir / "missing", "ci", 1001));
}

TEST(IdMap, WithHostIdsAddsRootsLowIdsAbove65535)
{
    RootFiles f("root:200000:65536\n", "root:30000:65536\n", accounts, groups);
    auto m = f.map().withHostIds();
    ASSERT_EQ(m.uids.size(), 2u);
    EXPECT_EQ(m.uids[1].inside, 65536u);
    EXPECT_EQ(m.uids[1].outside, 0u);
    EXPECT_EQ(m.uids[1].count, 65536u);
    ASSERT_EQ(m.gids.size(), 2u);
    EXPECT_EQ(m.gids[1].count, 30000u) << "never over the range itself";
    EXPECT_EQ(m.uidInside(0), 65536u);
    EXPECT_EQ(m.uidInside(1000), 66536u);
    EXPECT_EQ(m.uidInside(201000), 1000u);
    EXPECT_EQ(m.gidInside(29999), 65536u + 29999u);
    EXPECT_EQ(m.gidInside(30000), 0u);
}

TEST(IdMap, WithHostIdsLeavesOtherMapsAlone)
{
    auto identity = IdMap::identity().withHostIds();
    EXPECT_TRUE(identity.isIdentity());
    IdMap rootless;
    rootless.uids = {{0, 1000, 1}, {1, 100000, 65535}};
    rootless.gids = {{0, 1000, 1}};
    auto m = rootless.withHostIds();
    EXPECT_EQ(m.uids.size(), 2u);
    EXPECT_EQ(m.gids.size(), 1u);
}

TEST(IdMap, InsideAndOutsideAtTheRangesEdges)
{
    IdMap m;
    m.uids = {{0, 1000, 1}, {1, 100000, 65535}};
    m.gids = {{0, 1000, 1}};
    EXPECT_EQ(m.uidInside(1000), 0u);
    EXPECT_EQ(m.uidInside(100000), 1u);
    EXPECT_EQ(m.uidInside(165534), 65535u);
    EXPECT_EQ(m.uidInside(165535), 65534u) << "past the range: nobody";
    EXPECT_EQ(m.uidInside(99999), 65534u);
    EXPECT_EQ(m.gidInside(1001), 65534u);
    EXPECT_EQ(m.rootOutside(), (std::pair<uid_t, gid_t>(1000, 1000)));
    EXPECT_FALSE(m.isIdentity());
    IdMap none;
    none.uids = {{1, 5, 1}};
    EXPECT_EQ(none.rootOutside(), (std::pair<uid_t, gid_t>(65534, 65534)))
        << "no root inside: nobody";
}
