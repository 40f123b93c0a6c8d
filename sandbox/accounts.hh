#pragma once
// The account files a sandbox reads, parsed as text: the image's /etc/passwd and /etc/group
// (which user a command runs as) and the host's /etc/subuid, /etc/subgid, passwd and group
// (which ids root's sandboxes get). Pure functions, so that hostile lines are tested without root.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace grocker::sandbox {

// The text of an account file, "" when it cannot be read: a missing /etc/subuid holds no range.
std::string readAccountFile(const std::filesystem::path& path);

struct UserIds {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
};

// What "" (root), NAME, UID, NAME:GROUP or UID:GID means in an image with these passwd and group
// files: the first passwd line whose name (or, for a number, uid) matches; a number no line has
// stands for itself, with the same gid; a group name is the last group line of that name.
// Throws an Error for a name neither file has; a matching line with a malformed id throws what
// std::stoul throws.
UserIds resolveUser(const std::string& user, std::string_view passwd, std::string_view group);

struct SubordinateRange {
    unsigned long start, count;
};

// The first "name-or-uid:start:count" line of an /etc/subuid or /etc/subgid text for the user
// (by name, or by `uid` in decimal) whose start and count are numbers, count not 0.
std::optional<SubordinateRange> findSubordinate(std::string_view text, const std::string& user,
                                                uid_t uid);

struct Account {
    std::string name;
    unsigned long id;
};

// The first account of a passwd or group text (third field: the id) whose id is in
// [start, start + count); lines with no numeric id are passed over.
std::optional<Account> findAccountInRange(std::string_view text, unsigned long start,
                                          unsigned long count);

} // namespace grocker::sandbox
