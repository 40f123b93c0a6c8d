#pragma once
// Steps of another architecture (an arm64 root on an amd64 machine) run under qemu-user, which
// binfmt_misc starts for each of their programs. The rule is registered in the sandbox's own
// user namespace, in a binfmt_misc instance of its own (Linux 6.7 and later), as root and
// rootless alike: the host's registrations are neither needed nor changed. With the "F" flag the
// interpreter is opened when the rule is written, so it need not be inside the sandbox's root.

#include "grocker/sandbox/id-map.hh"

#include <filesystem>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace grocker::sandbox {

struct Emulator {
    std::string platform; // "linux/arm64", for messages
    std::string name;     // the rule's: "qemu-aarch64"
    // The rule's fields as binfmt_misc reads them: magic and mask (\xNN escapes), flags.
    std::string magic, mask, flags;
    std::filesystem::path interpreter; // /usr/bin/qemu-aarch64-static
    // On a kernel older than 6.7, the host's own rule of that name, already registered by root
    // (qemu-user-static with binfmt-support or systemd-binfmt), used as it is.
    bool hostRule = false;

    // The line written to binfmt_misc's register file, with `interpreterPath` for the interpreter.
    std::string rule(const std::string& interpreterPath) const;
};

// The emulator a program of `arch` (OCI terms: arm64, arm/v7, ppc64le, ...) needs on this
// machine: none for the machine's own architecture (and 386 on amd64), nor for one unknown to
// it (run as it is). Throws an Error saying what to install or what the machine lacks when it
// cannot run such steps.
std::optional<Emulator> emulatorFor(const std::string& arch, const std::string& variant = "");

// Mounts a binfmt_misc instance on `mountPoint` and registers `e` in it, with its interpreter
// opened through `interpreterPath` (a path or /proc/self/fd/N). The calling process must be root
// in a user namespace and mount namespace of its own; the instance lasts while it is mounted.
// Nothing is done for a host rule.
void registerEmulator(const Emulator& e, const std::filesystem::path& mountPoint,
                      const std::string& interpreterPath);

// The Debian architecture of an OCI one: arm64 → arm64, arm/v7 → armhf, 386 → i386, ...
std::string debianArch(const std::string& arch, const std::string& variant = "");

} // namespace grocker::sandbox

namespace grocker::sandbox {

// Starts the host program `argv` (environment plus `env`) as root in user, mount and pid
// namespaces of its own with `map`, programs of the emulated architecture registered there:
// mmdebstrap --mode=root --arch=arm64 making an arm64 tree on an amd64 machine, rootless too.
// Only the map's ids are mapped (not the host's, see IdMap::withHostIds): what it writes to must
// be its root's (IdMap::rootOutside). Its output goes to `outputFd`. Returns the pid of a child of
// the caller (to be waited for) whose exit status is the program's; 125 when the namespaces could
// not be set up (the reason written to `outputFd`).
pid_t startInNamespaces(const IdMap& map, const Emulator& e, const std::vector<std::string>& argv,
                        const std::vector<std::string>& env, int outputFd);

// What a forked child runs to start a host program: its output and errors to `outputFd`, every
// other descriptor closed, `env` added to the environment; exits 127 when it cannot be run.
[[noreturn]] void execHostProgram(const std::vector<std::string>& argv,
                                  const std::vector<std::string>& env, int outputFd);

} // namespace grocker::sandbox
