#pragma once
// The sandbox's root filesystem where overlay mounts are not allowed in a user namespace: the
// lower dirs are copied into one tree, the tree is recorded before the command runs, and what
// the command changed is written afterwards as an overlay upper dir (0/0 character-device
// whiteouts, user.overlay.opaque folders), so that committing works as after an overlay run.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace grocker::sandbox {

// Copies the lower dirs (top layer first, each in overlay form) into the empty folder
// `mergedFd`, bottom layer first, applying their whiteouts and opaque marks: contents (cloned
// where the filesystem can), owners, modes, xattrs but overlay's own, times, symlinks,
// hardlinks, fifos.
void copyLowerDirs(const std::vector<std::filesystem::path>& lowerDirs, int mergedFd);

// What a tree held before a command: for each path its type, inode, birth and change times.
class RootSnapshot {
  public:
    RootSnapshot();
    ~RootSnapshot();
    RootSnapshot(RootSnapshot&&) noexcept;
    RootSnapshot& operator=(RootSnapshot&&) noexcept;

    // Records the tree at `rootFd`, leaving out other filesystems, mount points and the paths
    // in `skip` (relative to the root, such as "etc/resolv.conf").
    static RootSnapshot take(int rootFd, std::set<std::string> skip);

    // Waits until the filesystem holding `probeDirFd` stamps changes with a ctime later than
    // every recorded one, so that no change made from now on can go unseen.
    void settle(int probeDirFd) const;

    // Writes into the empty folder `upperFd` what changed in the tree at `rootFd` since the
    // snapshot, in overlay upper form.
    void writeDiff(int rootFd, int upperFd) const;

    struct Node;

  private:
    std::unique_ptr<Node> root_;
    std::set<std::string> skip_;
    uint32_t devMajor_ = 0, devMinor_ = 0;
    int64_t maxCtimeSec_ = 0;
    uint32_t maxCtimeNsec_ = 0;
};

} // namespace grocker::sandbox
