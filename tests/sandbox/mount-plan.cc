// Tests of sandbox/mount-plan.cc: the mounts a sandbox makes, as data, built without root.

#include "mount-plan.hh"

#include <algorithm>
#include <gtest/gtest.h>

using namespace grocker::sandbox;

namespace {

SandboxSpec spec()
{
    SandboxSpec s;
    s.lowerDirs = {"/store/layers/top", "/store/layers/base"};
    s.runDir = "/store/run/1";
    s.argv = {"true"};
    return s;
}

std::vector<std::string> described(const MountPlan& plan)
{
    std::vector<std::string> lines;
    for (auto& op : plan)
        lines.push_back(describe(op));
    return lines;
}

const std::vector<std::string> devLines = {
    "tmpfs on /dev mode=0755,size=65536k nosuid,noexec",
    "dev-node /dev/null on /dev/null (in the new tmpfs)",
    "dev-node /dev/zero on /dev/zero (in the new tmpfs)",
    "dev-node /dev/full on /dev/full (in the new tmpfs)",
    "dev-node /dev/random on /dev/random (in the new tmpfs)",
    "dev-node /dev/urandom on /dev/urandom (in the new tmpfs)",
    "dev-node /dev/tty on /dev/tty (in the new tmpfs)",
    "mkdir /dev/pts 0755 (in the new tmpfs)",
    "mkdir /dev/shm 01777 (in the new tmpfs)",
    "devpts on /dev/pts newinstance,ptmxmode=0666,mode=0620 nosuid,noexec (in the new tmpfs)",
    "tmpfs on /dev/shm mode=1777,size=65536k nosuid,nodev (in the new tmpfs)",
    "symlink /dev/ptmx -> pts/ptmx (in the new tmpfs)",
    "symlink /dev/fd -> /proc/self/fd (in the new tmpfs)",
    "symlink /dev/stdin -> /proc/self/fd/0 (in the new tmpfs)",
    "symlink /dev/stdout -> /proc/self/fd/1 (in the new tmpfs)",
    "symlink /dev/stderr -> /proc/self/fd/2 (in the new tmpfs)",
};

// The plan of `s` with /dev's operations in one line, checked apart.
std::vector<std::string> withoutDev(const SandboxSpec& s)
{
    auto lines = described(planMounts(s));
    auto first = std::find(lines.begin(), lines.end(), devLines.front());
    EXPECT_NE(first, lines.end());
    EXPECT_EQ(std::vector<std::string>(first, first + long(devLines.size())), devLines);
    auto at = first - lines.begin();
    lines.erase(first, first + long(devLines.size()));
    lines.insert(lines.begin() + at, "<dev>");
    return lines;
}

} // namespace

TEST(MountPlan, DefaultSandbox)
{
    EXPECT_EQ(
        withoutDev(spec()),
        (std::vector<std::string>{
            "make-private /",
            "root overlay lowerdir=/store/layers/top:/store/layers/base,upperdir=/store/run/1/"
            "upper,workdir=/store/run/1/work,userxattr or a copy",
            "proc on /proc nosuid,nodev,noexec",
            "<dev>",
            "tmpfs on /tmp mode=1777 nosuid,nodev",
            "pivot-root",
        }));
}

TEST(MountPlan, HostNetworkBindsTheResolverFilesReadOnlyWhenTheyExist)
{
    auto s = spec();
    s.hostNetwork = true;
    auto lines = withoutDev(s);
    ASSERT_EQ(lines.size(), 8u);
    EXPECT_EQ(lines[5], "bind-ro /etc/resolv.conf on /etc/resolv.conf (file) if it exists");
    EXPECT_EQ(lines[6], "bind-ro /etc/hosts on /etc/hosts (file) if it exists");
    EXPECT_EQ(lines[7], "pivot-root");
}

TEST(MountPlan, VolumesAfterEverythingElseInTheirOrder)
{
    auto s = spec();
    s.hostNetwork = true;
    s.volumes = {{"/srv/cache", "/root/.cache", false}, {"/srv/src", "/src", true}};
    auto plan = planMounts(s);
    auto lines = described(plan);
    ASSERT_GE(lines.size(), 3u);
    EXPECT_EQ(lines[lines.size() - 3], "bind recursive /srv/cache on /root/.cache (as the source)");
    EXPECT_EQ(lines[lines.size() - 2], "bind-ro recursive /srv/src on /src (as the source)");
    EXPECT_EQ(plan[plan.size() - 2].step, "mounting volume '/srv/src' on '/src'");
    EXPECT_FALSE(plan[plan.size() - 2].ifSourceExists)
        << "a volume's host path was checked by Volume::parse";
}

TEST(MountPlan, EachOperationNamesItsStep)
{
    auto s = spec();
    s.hostNetwork = true;
    std::vector<std::string> steps;
    for (auto& op : planMounts(s))
        if (steps.empty() || steps.back() != op.step) steps.push_back(op.step);
    EXPECT_EQ(steps, (std::vector<std::string>{
                         "making the mounts private",
                         "", // the root names its own: overlay, or the copy
                         "mounting /proc",
                         "making /dev",
                         "mounting /tmp",
                         "mounting /etc/resolv.conf",
                         "mounting /etc/hosts",
                         "entering the root (pivot_root)",
                     }));
}

TEST(MountPlan, OverlayOptions)
{
    auto s = spec();
    s.lowerDirs = {"/one"};
    EXPECT_EQ(overlayOptions(s),
              "lowerdir=/one,upperdir=/store/run/1/upper,workdir=/store/run/1/work,userxattr");
}

TEST(MountPlan, NoLowerDirIsTheChildsError)
{
    // The child says "no lower dir" in its first step, as it always has: the plan stays whole.
    auto s = spec();
    s.lowerDirs.clear();
    auto plan = planMounts(s);
    ASSERT_GE(plan.size(), 2u);
    EXPECT_EQ(plan[1].kind, MountOp::Kind::Root);
}
