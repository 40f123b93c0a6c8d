#pragma once
// What the store's check, garbage collection and leftover search share (private to oci/).

#include "grocker/oci/image.hh"

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace grocker::oci::upkeep {

// How every leftover's line ends.
constexpr std::string_view removedBy = ": grocker fsck --repair or grocker purge removes it";

bool isHex64(std::string_view s);
std::string refName(const Descriptor& d);
// The entries of `dir`, sorted (reports in a stable order); none when it does not exist. When it
// cannot be listed, `error` says why ("unable to list '...': ...") and none are returned.
std::vector<std::filesystem::directory_entry> entriesOf(const std::filesystem::path& dir,
                                                        std::string& error);
// Unlinks a file; one already gone is fine.
void unlinkFile(const std::filesystem::path& p);
// Apparent size of a file or folder, each hard-linked file once. What cannot be read is left
// out on purpose (folders of subordinate ids, rootless, are unreadable here): a size is only
// said, never acted on.
uint64_t treeBytes(const std::filesystem::path& p);

} // namespace grocker::oci::upkeep
