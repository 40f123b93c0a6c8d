#pragma once
// The sandbox's mounts as data, as bubblewrap's SetupOp list: built in the parent from the spec
// (and unit-tested there), carried out in the child by carryOut (mounts.cc) in one loop.

#include "grocker/sandbox/sandbox.hh"

#include <string>
#include <sys/types.h>
#include <vector>

namespace grocker::sandbox {

struct MountOp {
    enum class Kind {
        MakePrivate, // the whole tree MS_PRIVATE, so that no mount leaks to the host
        Root,        // overlay of the lower dirs on runDir/merged, or the copy fallback
        Proc,        // a fresh proc on `target`
        Tmpfs,       // a tmpfs on `target` with `flags` and options `data`
        DevNode, // the host's device `source` bound on the empty file `target` (under the new /dev)
        Mkdir,   // a folder `target` of `mode` (under the new /dev), left as it is when it exists
        Devpts,  // a new devpts instance on `target`
        Symlink, // `target` -> `source` (under the new /dev), left as it is when it exists
        Bind,    // `source` bound on `target`, then remounted read-only when `readOnly`
        PivotRoot, // runDir/merged becomes / and the old root is detached
    };
    // Where the mount lands: a mount point made in the root if missing (listed in
    // runDir/mount-points, never a change of the command's) and reached through the root
    // without leaving it; or a path in a tmpfs the sandbox just mounted.
    enum class Point { Dir, File, LikeSource, InNewTmpfs };

    Kind kind;
    // What the child is doing, named in its errors; Root names its own (overlay or copy).
    std::string step;
    std::string source; // Bind: host path; DevNode: host device; Symlink: the link's text
    std::string target; // the path inside the sandbox
    Point point = Point::Dir;
    unsigned long flags = 0;
    std::string data;            // Tmpfs, Devpts: mount options; Root: overlay's
    mode_t mode = 0;             // Mkdir
    bool recursive = false;      // Bind: MS_REC
    bool readOnly = false;       // Bind
    bool ifSourceExists = false; // Bind: skipped when `source` is missing on the host
};

using MountPlan = std::vector<MountOp>;

// The mounts of a sandbox for `spec`, in the order they are made.
MountPlan planMounts(const SandboxSpec& spec);

// overlay's mount options for the spec's lower, upper and work dirs.
std::string overlayOptions(const SandboxSpec& spec);

// One line per operation ("bind-ro /etc/hosts on /etc/hosts (file, if it exists)"), for tests and
// debugging.
std::string describe(const MountOp& op);

} // namespace grocker::sandbox
