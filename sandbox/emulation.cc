#include "grocker/sandbox/emulation.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/strings.hh"

#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

namespace grocker::sandbox {

namespace fs = std::filesystem;

namespace {

struct Arch {
    const char* oci;
    const char* variant; // "" for any
    const char* qemu;    // qemu-user's name for it
    const char* debian;
};

// OCI architectures, qemu-user's and Debian's names for them.
constexpr Arch arches[] = {
    {"amd64", "", "x86_64", "amd64"},
    {"arm64", "", "aarch64", "arm64"},
    {"arm", "v7", "arm", "armhf"},
    {"arm", "", "arm", "armel"},
    {"386", "", "i386", "i386"},
    {"ppc64le", "", "ppc64le", "ppc64el"},
    {"s390x", "", "s390x", "s390x"},
    {"riscv64", "", "riscv64", "riscv64"},
    {"mips64le", "", "mips64el", "mips64el"},
};

const Arch* findArch(const std::string& arch, const std::string& variant)
{
    for (auto& a : arches)
        if (arch == a.oci && (!*a.variant || variant == a.variant || variant.empty())) return &a;
    return nullptr;
}

std::string platformText(const std::string& arch, const std::string& variant)
{
    return "linux/" + arch + (variant.empty() ? "" : "/" + variant);
}

// The running kernel's (major, minor).
std::pair<int, int> kernelVersion()
{
    struct utsname u;
    ::uname(&u);
    int major = 0, minor = 0;
    std::sscanf(u.release, "%d.%d", &major, &minor);
    return {major, minor};
}

// A host rule registered by root and usable from any namespace: enabled, its interpreter opened
// at registration ("F").
bool hostRuleUsable(const std::string& name)
{
    std::error_code ec;
    auto path = fs::path("/proc/sys/fs/binfmt_misc") / name;
    if (!fs::exists(path, ec)) return false;
    auto text = readFile(path);
    if (!text.starts_with("enabled")) return false;
    auto flags = text.find("\nflags: ");
    return flags != std::string::npos &&
           text.substr(flags + 8, text.find('\n', flags + 8) - flags - 8).find('F') !=
               std::string::npos;
}

} // namespace

std::string debianArch(const std::string& arch, const std::string& variant)
{
    auto* a = findArch(arch, variant);
    if (!a)
        throw Error("no Debian architecture for ", platformText(arch, variant),
                    ": use linux/amd64, linux/arm64, linux/arm/v7, linux/386, linux/ppc64le, "
                    "linux/s390x or linux/riscv64");
    return a->debian;
}

std::string Emulator::rule(const std::string& interpreterPath) const
{
    return concat(":", name, ":M::", magic, ":", mask, ":", interpreterPath, ":", flags);
}

std::optional<Emulator> emulatorFor(const std::string& arch, const std::string& variant)
{
    struct utsname u;
    ::uname(&u);
    std::string machine = u.machine;
    auto* a = findArch(arch, variant);
    if (!a) return std::nullopt; // an architecture qemu-user has no name for: run as it is
    std::string q = a->qemu;
    if (q == machine || (machine == "x86_64" && q == "i386") ||
        (machine == "aarch64" && q == "arm" && std::string(a->debian) == "armhf"))
        return std::nullopt; // runs natively
    Emulator e;
    e.platform = platformText(arch, variant);
    e.name = "qemu-" + q;
    e.interpreter = "/usr/bin/qemu-" + q + "-static";
    // Debian's qemu-user-static ships the rule (systemd-binfmt's format): its magic and mask.
    auto conf = fs::path("/usr/lib/binfmt.d") / (e.name + ".conf");
    std::error_code ec;
    if (!fs::exists(e.interpreter, ec) || !fs::exists(conf, ec))
        throw Error("steps of ", e.platform, " run under qemu-user, which is not installed here (",
                    e.interpreter.string(),
                    " is missing): run scripts/install-deps or apt-get install qemu-user-static");
    // ":name:M:offset:magic:mask:interpreter:flags"
    auto line = readFile(conf);
    line = line.substr(0, line.find('\n'));
    std::vector<std::string> fields;
    for (size_t start = 1;;) {
        auto colon = line.find(':', start);
        fields.push_back(line.substr(start, colon == std::string::npos ? colon : colon - start));
        if (colon == std::string::npos) break;
        start = colon + 1;
    }
    if (fields.size() != 7 || fields[1] != "M" || !fields[2].empty())
        throw Error("unable to read the binfmt rule in '", conf.string(),
                    "': not \":NAME:M::MAGIC:MASK:INTERPRETER:FLAGS\"");
    e.magic = fields[3];
    e.mask = fields[4];
    // P: argv[0] kept (qemu reads AT_FLAGS); O: the program handed over open; F: the interpreter
    // opened now, from the host, so that it runs inside any root. No C: setuid programs do not
    // gain privileges in a build step.
    e.flags = "POF";
    auto [major, minor] = kernelVersion();
    if (major < 6 || (major == 6 && minor < 7)) {
        if (!hostRuleUsable(e.name))
            throw Error("steps of ", e.platform,
                        " need qemu-user registered with binfmt_misc: ", "this kernel (", u.release,
                        ") cannot give a build a binfmt_misc instance of its own (Linux 6.7 and "
                        "later can); register it on the host as root (apt-get install "
                        "qemu-user-static binfmt-support, or systemd-binfmt), with the F flag");
        e.hostRule = true;
    }
    return e;
}

void registerEmulator(const Emulator& e, const fs::path& mountPoint,
                      const std::string& interpreterPath)
{
    if (e.hostRule) return;
    if (::mount("binfmt_misc", mountPoint.c_str(), "binfmt_misc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                nullptr) < 0)
        throw SysError("unable to mount a binfmt_misc instance for ", e.platform, "'s steps on '",
                       mountPoint.string(), "'");
    auto registerFile = mountPoint / "register";
    AutoCloseFD fd(::open(registerFile.c_str(), O_WRONLY | O_CLOEXEC));
    auto text = e.rule(interpreterPath);
    if (!fd || ::write(fd.get(), text.data(), text.size()) != ssize_t(text.size()))
        throw SysError("unable to register ", e.interpreter.string(), " for ", e.platform,
                       " in the build's binfmt_misc instance");
}

} // namespace grocker::sandbox

namespace grocker::sandbox {

void execHostProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                     int outputFd)
{
    if (::dup2(outputFd, 1) < 0 || ::dup2(outputFd, 2) < 0) ::_exit(126);
    // Only 0, 1 and 2: a descriptor another part opened without O_CLOEXEC (a registry
    // connection kept alive by libcurl, say) disturbs mmdebstrap, which hands apt fixed fd
    // numbers ("apt download failed" after a pull's 404 had left a socket open).
    if (::close_range(3, ~0U, 0) < 0)
        for (int fd = 3; fd < 1024; fd++)
            ::close(fd);
    for (auto& kv : env)
        ::putenv(const_cast<char*>(kv.c_str()));
    std::vector<char*> args;
    for (auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
}

pid_t startInNamespaces(const IdMap& map, const Emulator& e, const std::vector<std::string>& argv,
                        const std::vector<std::string>& env, int outputFd)
{
    int unshared[2], go[2];
    if (::pipe2(unshared, O_CLOEXEC) < 0 || ::pipe2(go, O_CLOEXEC) < 0)
        throw SysError("unable to make a pipe");
    AutoCloseFD unsharedRead(unshared[0]), unsharedWrite(unshared[1]), goRead(go[0]),
        goWrite(go[1]);
    pid_t pid = ::fork();
    if (pid < 0) throw SysError("unable to fork");
    if (pid == 0) {
        auto fail = [&](const std::string& what) {
            auto text = "grocker: " + what + "\n";
            (void)!::write(outputFd, text.data(), text.size());
            ::_exit(125);
        };
        try {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            unsharedRead.reset();
            goWrite.reset();
            if (::unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID) < 0)
                throw SysError("unable to make the namespaces of ", argv[0]);
            unsharedWrite.reset();
            char c;
            if (::read(goRead.get(), &c, 1) != 1) ::_exit(125);
            if (::setresgid(0, 0, 0) < 0 || ::setresuid(0, 0, 0) < 0)
                throw SysError("unable to become root in the user namespace");
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            pid_t program = ::fork(); // PID 1 of the new pid namespace, whose /proc it mounts
            if (program < 0) throw SysError("unable to fork");
            if (program == 0) {
                if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0)
                    throw SysError("unable to make the mounts private");
                if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) < 0)
                    throw SysError("unable to mount /proc");
                registerEmulator(e, "/proc/sys/fs/binfmt_misc", e.interpreter.string());
                execHostProgram(argv, env, outputFd);
            }
            int status;
            while (::waitpid(program, &status, 0) < 0 && errno == EINTR) {
            }
            ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        } catch (std::exception& ex) {
            fail(ex.what());
        }
    }
    unsharedWrite.reset();
    goRead.reset();
    char c;
    try {
        if (::read(unsharedRead.get(), &c, 1) != 0)
            throw Error("the namespaces of ", argv[0], " were not made");
        // The map alone: with the host's ids in it too (as 65536 up), the kernel refuses the bind
        // mounts mmdebstrap makes of /dev's nodes. The caller gives it a folder of its own.
        map.apply(pid);
    } catch (...) {
        ::kill(pid, SIGKILL);
        int status;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        throw;
    }
    (void)!::write(goWrite.get(), "g", 1);
    return pid;
}

} // namespace grocker::sandbox
