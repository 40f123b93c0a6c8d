#pragma once
// The child's side of the mount plan (mount-plan.hh) and the parent's cleanup after it: the
// mount points the sandbox made in the root are not the command's changes.

#include <filesystem>

namespace grocker::sandbox {

struct Child;

// Carries out c.plan in one loop: once done, the child is in the new root.
void carryOut(Child& c);

// After the sandbox: removes from runDir/upper the mount points listed in runDir/mount-points
// that the command left as they were made (empty), and the list.
void removeCreatedMountPoints(const std::filesystem::path& runDir);

} // namespace grocker::sandbox
