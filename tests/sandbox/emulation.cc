// Tests of sandbox/emulation.cc: which architectures need qemu-user here, and the binfmt_misc
// rule grocker writes for them (from Debian's qemu-user-static, which the test set-up installs).
// Running the programs is build/platforms.sh's part.

#include "grocker/sandbox/emulation.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"

#include <gtest/gtest.h>
#include <sys/utsname.h>

using namespace grocker;
using namespace grocker::sandbox;

namespace {

std::string machine()
{
    struct utsname u;
    ::uname(&u);
    return u.machine;
}

} // namespace

TEST(Emulation, DebianNamesOfOciArchitectures)
{
    EXPECT_EQ(debianArch("amd64"), "amd64");
    EXPECT_EQ(debianArch("arm64"), "arm64");
    EXPECT_EQ(debianArch("arm", "v7"), "armhf");
    EXPECT_EQ(debianArch("arm", "v6"), "armel");
    EXPECT_EQ(debianArch("386"), "i386");
    EXPECT_EQ(debianArch("ppc64le"), "ppc64el");
    EXPECT_THROW(debianArch("sparc"), Error);
}

TEST(Emulation, TheMachinesOwnArchitectureRunsAsItIs)
{
    ASSERT_EQ(machine(), "x86_64") << "this test is written for an amd64 machine";
    EXPECT_FALSE(emulatorFor("amd64"));
    EXPECT_FALSE(emulatorFor("386")) << "an amd64 machine runs i386 programs";
    EXPECT_FALSE(emulatorFor("sparc")) << "unknown to qemu-user: run as it is, as before";
}

TEST(Emulation, Arm64RunsUnderQemuWithTheRuleDebianShips)
{
    auto e = emulatorFor("arm64", "");
    ASSERT_TRUE(e) << "arm64 needs an emulator on amd64";
    EXPECT_EQ(e->platform, "linux/arm64");
    EXPECT_EQ(e->name, "qemu-aarch64");
    EXPECT_EQ(e->interpreter, "/usr/bin/qemu-aarch64-static");
    // Debian's rule: ":qemu-aarch64:M::MAGIC:MASK:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF".
    auto conf = readFile("/usr/lib/binfmt.d/qemu-aarch64.conf");
    EXPECT_NE(conf.find(":" + e->magic + ":" + e->mask + ":"), std::string::npos) << conf;
    // The ELF header of an AArch64 executable: e_machine 0xb7 at offset 18.
    EXPECT_TRUE(e->magic.starts_with("\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01")) << e->magic;
    EXPECT_NE(e->magic.find("\\xb7\\x00"), std::string::npos) << e->magic;
    // The interpreter opened when the rule is written (F), argv[0] kept (P), the program handed
    // over open (O); never C (setuid programs gain nothing in a build step).
    EXPECT_EQ(e->flags, "POF");
    EXPECT_EQ(e->rule("/proc/self/fd/4"),
              ":qemu-aarch64:M::" + e->magic + ":" + e->mask + ":/proc/self/fd/4:POF");
    EXPECT_FALSE(e->hostRule) << "this kernel (6.7 or later) gives the build an instance";
    auto arm = emulatorFor("arm", "v7");
    ASSERT_TRUE(arm);
    EXPECT_EQ(arm->name, "qemu-arm");
}
