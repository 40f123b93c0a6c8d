#pragma once
// User and group id mappings of the sandbox's user namespace. As root: container 0–65535 → a
// range no host account owns (root's /etc/subuid and /etc/subgid ranges, else 2^31 up), so
// that no host user owns what a step makes nor may signal its processes. As an unprivileged user:
// container 0 → the caller, 1–65535 → the caller's /etc/subuid and /etc/subgid ranges (written with
// newuidmap/newgidmap), so dpkg and chown work inside; with no subordinate range, only the caller
// as 0, and a warning saying what will not work.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace grocker::sandbox {

struct IdRange {
    uint32_t inside, outside, count;
};

struct IdMap {
    std::vector<IdRange> uids, gids;
    bool privileged = false; // the caller is root: maps are written directly
    std::string warning;     // set when only a single id could be mapped

    static IdMap forCaller();
    // Host ids as they are (0 → 0 for every id), for trees that hold host owners as the image's
    // (mmdebstrap --mode=root). Only for root.
    static IdMap identity();
    // Root's map from its subordinate ranges in `subuid` and `subgid` (each used when it holds
    // 65536 ids), else from the fixed range, which no entry of `passwd` or `group` may use.
    static IdMap forRoot(const std::string& subuid, const std::string& subgid,
                         const std::string& passwd, const std::string& group);
    // The first id of the fixed range root maps when it has no subordinate range.
    static constexpr uint32_t rootFallbackStart = 2147483648u;

    bool isIdentity() const;
    // The host owner of what the container's root makes.
    std::pair<uid_t, gid_t> rootOutside() const;
    // Reads "name-or-uid:start:count" lines; the first matching line wins.
    static std::optional<IdRange> subordinate(const std::string& file, const std::string& user,
                                              uid_t uid);

    // The container's view of a host id (65534, "nobody", when unmapped).
    uint32_t uidInside(uid_t host) const;
    uint32_t gidInside(gid_t host) const;

    // As root with a range of its own: this map and the host's own low ids, root's first, as
    // 65536 up, for the processes that work in the store's folders (root's, under /root, which
    // the range alone may not even search), and a store an older grocker used as root holds
    // files of host uid 1000 (its identity map). The map itself otherwise. Never the map of a
    // build's command: runSandbox gives it a namespace of its own without them.
    IdMap withHostIds() const;

    // Writes the maps of the process `pid`, which has just made a user namespace.
    void apply(pid_t pid) const;
};

// Runs `fn` in a child process that is root in a fresh user namespace with the caller's map
// (in-process for the identity). Exceptions in `fn` come back as Errors. For root, host ids
// 0–65535 are mapped there too (as 65536 up), so that `fn` can work in the store's folders,
// which stay root's (and in an older grocker's, which gave uid 1000 its host id), while it sees
// and sets owners as the container does.
void runInUserNamespace(const IdMap& map, const std::function<void()>& fn);

// Sets the parent-death signal (SIGKILL) again, as a child must once it has become another host
// user (a change of effective uid clears it: as root, the range's root is one); `toParent`, the
// write end of a pipe the parent reads, tells whether the parent died before.
void keepDeathSignal(int toParent);

} // namespace grocker::sandbox
