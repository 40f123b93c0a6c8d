#pragma once
// User and group id mappings of the sandbox's user namespace. As root: the identity. As an
// unprivileged user: container 0 → the caller, 1–65535 → the caller's /etc/subuid and
// /etc/subgid ranges (written with newuidmap/newgidmap), so dpkg and chown work inside; with no
// subordinate range, only the caller as 0, and a warning saying what will not work.

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
    // Reads "name-or-uid:start:count" lines; the first matching line wins.
    static std::optional<IdRange> subordinate(const std::string& file, const std::string& user, uid_t uid);

    // The container's view of a host id (65534, "nobody", when unmapped).
    uint32_t uidInside(uid_t host) const;
    uint32_t gidInside(gid_t host) const;

    // Writes the maps of the process `pid`, which has just made a user namespace.
    void apply(pid_t pid) const;
};

// Runs `fn` in a child process that is root in a fresh user namespace with the caller's map
// (in-process for root, whose map is the identity). Exceptions in `fn` come back as Errors.
void runInUserNamespace(const IdMap& map, const std::function<void()>& fn);

} // namespace grocker::sandbox
