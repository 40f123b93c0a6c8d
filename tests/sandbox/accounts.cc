// Tests of sandbox/accounts.cc: the image's passwd and group, the host's subuid, subgid and
// accounts, parsed as text, hostile and malformed lines included.

#include "accounts.hh"

#include "grocker/error.hh"
#include "helpers.hh"

#include <gtest/gtest.h>
#include <stdexcept>

using namespace grocker;
using namespace grocker::sandbox;

namespace {

const std::string passwd = "root:x:0:0:root:/root:/bin/bash\n"
                           "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                           "app:x:1000:1001:App,,,:/home/app:/bin/sh\n"
                           "app:x:2000:2000:second app line:/:/bin/sh\n"
                           "web:x:33:33:www-data:/var/www:/usr/sbin/nologin"; // no final newline
const std::string group = "root:x:0:\nstaff:x:50:app\nwww:x:33:\nstaff:x:51:\n";

std::string errorOf(const std::string& user, const std::string& p = passwd,
                    const std::string& g = group)
{
    try {
        resolveUser(user, p, g);
    } catch (Error& e) {
        return e.what();
    }
    return "no error";
}

} // namespace

TEST(ResolveUser, RootByDefault)
{
    auto ids = resolveUser("", "", "");
    EXPECT_EQ(ids.uid, 0u);
    EXPECT_EQ(ids.gid, 0u);
    EXPECT_TRUE(ids.groups.empty()) << "root: no supplementary group";
}

TEST(ResolveUser, NameTakesTheFirstLinesIds)
{
    auto ids = resolveUser("app", passwd, group);
    EXPECT_EQ(ids.uid, 1000u);
    EXPECT_EQ(ids.gid, 1001u);
    EXPECT_EQ(ids.groups, std::vector<gid_t>{1001});
    EXPECT_EQ(resolveUser("web", passwd, group).uid, 33u) << "a last line without newline counts";
}

TEST(ResolveUser, NumberIsLookedUpByUidThenStandsForItself)
{
    EXPECT_EQ(resolveUser("1000", passwd, group).gid, 1001u);
    auto ids = resolveUser("4242", passwd, group);
    EXPECT_EQ(ids.uid, 4242u);
    EXPECT_EQ(ids.gid, 4242u);
    EXPECT_EQ(resolveUser("01000", passwd, group).gid, 1000u) << "uids are compared as text";
}

TEST(ResolveUser, Groups)
{
    EXPECT_EQ(resolveUser("app:www", passwd, group).gid, 33u);
    EXPECT_EQ(resolveUser("app:staff", passwd, group).gid, 51u)
        << "the last group line of the name";
    auto ids = resolveUser("4242:77", passwd, group);
    EXPECT_EQ(ids.uid, 4242u);
    EXPECT_EQ(ids.gid, 77u);
    EXPECT_EQ(ids.groups, std::vector<gid_t>{77});
    EXPECT_EQ(resolveUser("app:", passwd, group).gid, 1001u) << "an empty group is the user's";
}

TEST(ResolveUser, UnknownNames)
{
    EXPECT_EQ(errorOf("nobody"), "user 'nobody' is not in the image's /etc/passwd");
    EXPECT_EQ(errorOf("app:wheel"), "group 'wheel' is not in the image's /etc/group");
    EXPECT_EQ(errorOf("app:staff:x"), "group 'staff:x' is not in the image's /etc/group");
    EXPECT_EQ(errorOf("app", "", group), "user 'app' is not in the image's /etc/passwd");
}

TEST(ResolveUser, MalformedLinesArePassedOver)
{
    const std::string hostile = "\n"
                                "app\n"
                                "app:x:1000\n"      // three fields
                                "# app:x:1:1::/:\n" // no comments in passwd: a name "# app"
                                ":::\n"
                                "app:x:7:8:\n"; // the first whole line
    auto ids = resolveUser("app", hostile, "");
    EXPECT_EQ(ids.uid, 7u);
    EXPECT_EQ(ids.gid, 8u);
    EXPECT_EQ(errorOf("x", "app:x:0:0\n"), "user 'x' is not in the image's /etc/passwd")
        << "the password field is no name";
}

TEST(ResolveUser, MalformedIdsOfTheMatchingLineThrow)
{
    // What std::stoul throws, as the child has always reported it (a message to improve apart).
    EXPECT_THROW(resolveUser("app", "app:x:abc:1000\n", ""), std::invalid_argument);
    EXPECT_EQ(errorOf("app", "app:x:1000:\n", ""), "user 'app' is not in the image's /etc/passwd")
        << "an empty last field is no field";
    EXPECT_THROW(resolveUser("app", "app:x:99999999999999999999999:0\n", ""), std::out_of_range);
    EXPECT_THROW(resolveUser("0:staff", "", "staff\n"), std::invalid_argument);
    EXPECT_THROW(resolveUser("0:staff", "", "staff:x:\n"), std::invalid_argument);
}

TEST(FindSubordinate, FirstUsableLineOfTheUserByNameOrUid)
{
    const std::string subuid = "ci:100000:65536\n"
                               "1000:300000:65536\n"
                               "dev:200000:65536\n"
                               "dev:400000:65536\n";
    auto r = findSubordinate(subuid, "dev", 1000);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->start, 300000u) << "the uid's line comes first";
    r = findSubordinate(subuid, "dev", 1001);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->start, 200000u);
    EXPECT_EQ(r->count, 65536u);
    EXPECT_FALSE(findSubordinate(subuid, "other", 4));
    EXPECT_FALSE(findSubordinate("", "root", 0));
}

TEST(FindSubordinate, MalformedLinesArePassedOver)
{
    const std::string hostile = "root\n"
                                "root:100000\n"
                                "root:abc:65536\n"
                                "root:100000:\n"
                                "root:100000:0\n" // no ids
                                "root:-:65536\n"
                                "root:99999999999999999999999:1\n"
                                ":100000:65536\n"
                                "root:500000:65536\n";
    auto r = findSubordinate(hostile, "root", 0);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->start, 500000u);
    EXPECT_EQ(r->count, 65536u);
}

TEST(FindSubordinate, NumbersAsStdStoulReadsThem)
{
    // Leading blanks and a trailing rest are accepted (shadow's tools never write them).
    auto r = findSubordinate("root: 7:12 # comment\n", "root", 0);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->start, 7u);
    EXPECT_EQ(r->count, 12u);
    r = findSubordinate("root:1:2:3\n", "root", 0);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->count, 2u) << "the count is the rest of the line";
}

TEST(FindAccountInRange, FirstAccountWhoseIdIsIn)
{
    const std::string accounts = "root:x:0:0::/:/bin/sh\n"
                                 "low:x:99:99::/:/bin/sh\n"
                                 "bad:x:1a0:0::/:/bin/sh\n" // read as 1: std::stoul stops at 'a'
                                 "worse:x:abc:0::/:/bin/sh\n"
                                 "short:x\n"
                                 "in:x:150:0::/:/bin/sh\n"
                                 "also:x:100:0::/:/bin/sh\n";
    auto a = findAccountInRange(accounts, 100, 100);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->name, "in");
    EXPECT_EQ(a->id, 150u);
    EXPECT_FALSE(findAccountInRange(accounts, 200, 100));
    EXPECT_FALSE(findAccountInRange(accounts, 151, 100)) << "150 is below it";
    EXPECT_EQ(findAccountInRange(accounts, 1, 1)->name, "bad");
    EXPECT_EQ(findAccountInRange(accounts, 99, 1)->name, "low");
    EXPECT_FALSE(findAccountInRange(accounts, 98, 1));
    EXPECT_FALSE(findAccountInRange("", 0, 100));
    EXPECT_EQ(findAccountInRange("g:x:0:\n", 0, 1)->name, "g") << "a group line";
}

TEST(ReadAccountFile, MissingIsEmpty)
{
    grocker::test::TempDir dir;
    EXPECT_EQ(readAccountFile(dir / "subuid"), "");
    grocker::test::writeTestFile(dir / "subuid", "root:1:2\n");
    EXPECT_EQ(readAccountFile(dir / "subuid"), "root:1:2\n");
}
