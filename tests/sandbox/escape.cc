// A static helper run inside the sandbox by tests/integration/sandbox/sandbox.sh: each subcommand
// tries one way out, prints what it got, and exits 0 only if the attempt worked (an escape).

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char** argv)
{
    if (argc < 2) return 2;
    const char* what = argv[1];
    if (!std::strcmp(what, "euid")) {
        // For the setuid test: a setuid-root copy of this program must still print the caller.
        std::printf("%d\n", int(geteuid()));
        return 0;
    }
    if (!std::strcmp(what, "chroot") && argc == 3) {
        // The classic breakout: chroot into a subfolder while keeping the cwd outside it, then
        // climb. It works only where chroot is not confined by pivot_root + a mount namespace.
        mkdir("/tmp/breakout", 0755);
        if (chroot("/tmp/breakout") < 0) {
            std::printf("chroot: %s\n", std::strerror(errno));
            return 1;
        }
        for (int i = 0; i < 64; i++)
            (void)!chdir("..");
        if (chroot(".") < 0) {
            std::printf("chroot .: %s\n", std::strerror(errno));
            return 1;
        }
        bool found = access(argv[2], F_OK) == 0;
        std::printf("after breakout, %s %s\n", argv[2], found ? "is visible" : "is not visible");
        return found ? 0 : 1;
    }
    if (!std::strcmp(what, "mount")) {
        if (mount("none", "/tmp", "tmpfs", 0, nullptr) < 0) {
            std::printf("mount: %s\n", std::strerror(errno));
            return 1;
        }
        std::printf("mount worked\n");
        return 0;
    }
    if (!std::strcmp(what, "ptrace") && argc == 3) {
        pid_t pid = pid_t(std::atoi(argv[2]));
        if (ptrace(PTRACE_ATTACH, pid, nullptr, nullptr) < 0) {
            std::printf("ptrace %d: %s\n", int(pid), std::strerror(errno));
            return 1;
        }
        std::printf("ptrace %d worked\n", int(pid));
        return 0;
    }
    return 2;
}
