#include "grocker/sandbox/id-map.hh"

#include "accounts.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace grocker::sandbox {

namespace {

constexpr uint32_t nobody = 65534;

std::string userName(uid_t uid)
{
    struct passwd* pw = ::getpwuid(uid);
    return pw ? pw->pw_name : std::to_string(uid);
}

uint32_t inside(const std::vector<IdRange>& ranges, uint32_t host)
{
    for (auto& r : ranges)
        if (host >= r.outside && host - r.outside < r.count) return r.inside + (host - r.outside);
    return nobody;
}

std::string mapText(const std::vector<IdRange>& ranges)
{
    std::string s;
    for (auto& r : ranges)
        s += concat(r.inside, " ", r.outside, " ", r.count, "\n");
    return s;
}

// Runs newuidmap/newgidmap PID inside outside count ...
void runMapHelper(const char* helper, pid_t pid, const std::vector<IdRange>& ranges)
{
    std::vector<std::string> args{helper, std::to_string(pid)};
    for (auto& r : ranges) {
        args.push_back(std::to_string(r.inside));
        args.push_back(std::to_string(r.outside));
        args.push_back(std::to_string(r.count));
    }
    pid_t child = ::fork();
    if (child < 0) throw SysError("unable to start ", helper);
    if (child == 0) {
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execvp(helper, argv.data());
        ::_exit(127);
    }
    int status;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw Error(helper, " failed (status ",
                    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                    WIFEXITED(status) && WEXITSTATUS(status) == 127
                        ? ", not found: install the uidmap package"
                        : "",
                    "); check /etc/subuid and /etc/subgid for user ", userName(::getuid()));
}

constexpr uint32_t rootRangeSize = 65536;

// Root's range in `file`, or the fixed one when it has none of 65536 ids; the fixed one must
// be no account's (`accounts`: passwd or group, whose third field is the id).
IdRange rootRange(const std::string& file, const std::string& accounts, const char* what)
{
    if (auto r = findSubordinate(readAccountFile(file), "root", 0);
        r && r->count >= rootRangeSize && r->start + rootRangeSize <= 4294967295ul)
        return {0, uint32_t(r->start), rootRangeSize};
    if (auto a =
            findAccountInRange(readAccountFile(accounts), IdMap::rootFallbackStart, rootRangeSize))
        throw Error(
            what, " ", a->id, " of '", a->name, "' in ", accounts, " is in ",
            IdMap::rootFallbackStart, "-", IdMap::rootFallbackStart + rootRangeSize - 1,
            ", the range grocker gives the sandbox's users as root when root has none: give root "
            "one of 65536 "
            "ids no account uses (usermod --add-subuids START-END --add-subgids START-END root)");
    return {0, IdMap::rootFallbackStart, rootRangeSize};
}

// The child must have unshared before its map is written; /proc/PID/uid_map of a process still
// in our namespace refuses the write, so wait for that (a second at most).
void waitForUnshare(pid_t pid)
{
    for (int i = 0; i < 2000; i++) {
        char a[64], b[64];
        ssize_t n1 = ::readlink(concat("/proc/", pid, "/ns/user").c_str(), a, sizeof a);
        ssize_t n2 = ::readlink("/proc/self/ns/user", b, sizeof b);
        if (n1 > 0 && n2 > 0 && std::string_view(a, size_t(n1)) != std::string_view(b, size_t(n2)))
            return;
        ::usleep(500);
    }
}

} // namespace

std::optional<IdRange> IdMap::subordinate(const std::string& file, const std::string& user,
                                          uid_t uid)
{
    auto r = findSubordinate(readAccountFile(file), user, uid);
    if (!r) return std::nullopt;
    return IdRange{1, uint32_t(r->start), uint32_t(std::min<unsigned long>(r->count, 65535))};
}

IdMap IdMap::forRoot(const std::string& subuid, const std::string& subgid,
                     const std::string& passwd, const std::string& group)
{
    IdMap m;
    m.privileged = true;
    m.uids = {rootRange(subuid, passwd, "uid")};
    m.gids = {rootRange(subgid, group, "gid")};
    return m;
}

IdMap IdMap::identity()
{
    IdMap m;
    m.privileged = true;
    m.uids = {{0, 0, 4294967295u}};
    m.gids = {{0, 0, 4294967295u}};
    return m;
}

bool IdMap::isIdentity() const
{
    auto whole = [](const std::vector<IdRange>& r) {
        return r.size() == 1 && r[0].inside == 0 && r[0].outside == 0 && r[0].count == 4294967295u;
    };
    return whole(uids) && whole(gids);
}

std::pair<uid_t, gid_t> IdMap::rootOutside() const
{
    auto outside = [](const std::vector<IdRange>& ranges) {
        for (auto& r : ranges)
            if (r.inside == 0) return r.outside;
        return nobody;
    };
    return {outside(uids), outside(gids)};
}

IdMap IdMap::forCaller()
{
    IdMap m;
    uid_t uid = ::geteuid();
    gid_t gid = ::getegid();
    // Root gives the sandbox's users a range no host account owns (the sandbox's init reaches
    // the store's folders with the host's low ids mapped too, see withHostIds and runSandbox).
    if (uid == 0) return forRoot("/etc/subuid", "/etc/subgid", "/etc/passwd", "/etc/group");
    auto name = userName(uid);
    m.uids = {{0, uint32_t(uid), 1}};
    m.gids = {{0, uint32_t(gid), 1}};
    auto su = subordinate("/etc/subuid", name, uid);
    auto sg = subordinate("/etc/subgid", name, uid);
    if (su && sg) {
        m.uids.push_back(*su);
        m.gids.push_back(*sg);
    } else {
        m.warning = concat(
            "no subordinate ", su ? "gids" : "uids", " for user ", name, " in ",
            su ? "/etc/subgid" : "/etc/subuid",
            ": only root is mapped inside, so installing packages (dpkg, apt-get) and chown to "
            "other "
            "users will fail; add a range (usermod --add-subuids 100000-165535 --add-subgids "
            "100000-165535 ",
            name, ") or run as root");
    }
    return m;
}

IdMap IdMap::withHostIds() const
{
    IdMap map = *this;
    if (!privileged || isIdentity()) return map;
    auto [uid, gid] = rootOutside();
    if (uid > 0) map.uids.push_back({rootRangeSize, 0, std::min(uid, rootRangeSize)});
    if (gid > 0) map.gids.push_back({rootRangeSize, 0, std::min(gid, rootRangeSize)});
    return map;
}

uint32_t IdMap::uidInside(uid_t host) const
{
    return inside(uids, host);
}
uint32_t IdMap::gidInside(gid_t host) const
{
    return inside(gids, host);
}

void IdMap::apply(pid_t pid) const
{
    // An unprivileged process may write only a map of its own one id; anything else (several
    // ranges, or a single subordinate range, as for mmdebstrap's tree) needs the setuid helpers.
    auto ownIdOnly = [](const std::vector<IdRange>& m, uint32_t self) {
        return m.size() == 1 && m[0].outside == self && m[0].count == 1;
    };
    bool helpers = !privileged && !(ownIdOnly(uids, ::geteuid()) && ownIdOnly(gids, ::getegid()));
    if (helpers) {
        runMapHelper("newuidmap", pid, uids);
        runMapHelper("newgidmap", pid, gids);
        return;
    }
    auto proc = concat("/proc/", pid, "/");
    auto write = [&](const std::string& file, const std::string& text) {
        AutoCloseFD fd(::open((proc + file).c_str(), O_WRONLY | O_CLOEXEC));
        if (!fd) throw SysError("unable to open ", proc, file);
        if (::write(fd.get(), text.data(), text.size()) != ssize_t(text.size()))
            throw SysError("unable to write the id map ", proc, file);
    };
    // Without newgidmap, an unprivileged process may map its gid only once setgroups is denied.
    if (!privileged) write("setgroups", "deny");
    write("uid_map", mapText(uids));
    write("gid_map", mapText(gids));
}

void keepDeathSignal(int toParent)
{
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    struct pollfd p = {toParent, 0, 0};
    if (::poll(&p, 1, 0) > 0 && (p.revents & POLLERR)) ::_exit(1); // the parent died meanwhile
}

void runInUserNamespace(const IdMap& stepMap, const std::function<void()>& fn)
{
    if (stepMap.isIdentity()) {
        fn();
        return;
    }
    IdMap map = stepMap.withHostIds();
    int go[2], err[2];
    if (::pipe2(go, O_CLOEXEC) < 0 || ::pipe2(err, O_CLOEXEC) < 0)
        throw SysError("unable to make a pipe");
    AutoCloseFD goRead(go[0]), goWrite(go[1]), errRead(err[0]), errWrite(err[1]);
    pid_t pid = ::fork();
    if (pid < 0) throw SysError("unable to fork");
    if (pid == 0) {
        goWrite.reset();
        errRead.reset();
        std::string message;
        try {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::unshare(CLONE_NEWUSER) < 0) throw SysError("unable to make a user namespace");
            char c;
            if (::read(goRead.get(), &c, 1) != 1) ::_exit(1);
            if (::setresgid(0, 0, 0) < 0 || ::setresuid(0, 0, 0) < 0)
                throw SysError("unable to become root in the user namespace");
            keepDeathSignal(errWrite.get());
            fn();
            ::_exit(0);
        } catch (std::exception& e) {
            message = e.what();
        }
        (void)!::write(errWrite.get(), message.data(), message.size());
        ::_exit(1);
    }
    goRead.reset();
    errWrite.reset();
    auto reap = [&] {
        int status;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        return status;
    };
    try {
        waitForUnshare(pid);
        map.apply(pid);
    } catch (...) {
        ::kill(pid, SIGKILL);
        reap();
        throw;
    }
    (void)!::write(goWrite.get(), "g", 1);
    goWrite.reset();
    std::string message = readFd(errRead.get());
    int status = reap();
    if (!message.empty()) throw Error(message);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw Error("a helper process in the user namespace failed");
}

} // namespace grocker::sandbox
