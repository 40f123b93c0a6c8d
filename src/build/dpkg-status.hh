#pragma once
// dpkg's database of an image, /var/lib/dpkg/status: the one reader of its format in grocker
// (the root's Python slice follows its dependencies, the SBOM lists its packages).

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace grocker::build {

inline constexpr std::string_view dpkgStatusPath = "var/lib/dpkg/status";

struct DebPackage {
    std::string name, version, architecture;
    std::string source, sourceVersion; // the source package (its name, else the package's)
    // Depends and Pre-Depends: each relation's first alternative, without version or
    // architecture qualifier; Provides: the virtual names it provides.
    std::vector<std::string> depends, provides;
};

// The installed packages ("install ok installed") of a status file, by name.
std::map<std::string, DebPackage> parseDpkgStatus(std::string_view text);

// The installed packages that answer a dependency on `name`: the package of that name, else
// those that provide it.
std::vector<std::string> providersOf(const std::map<std::string, DebPackage>& packages,
                                     const std::string& name);

} // namespace grocker::build
