#pragma once
// The SBOM of a runner image from what grocker knows, not what a scanner guesses: the Debian
// packages of its dpkg database (with their source packages and, where the copyright file is
// machine-readable, their licences), the Python distributions grocker installed in its venv
// (each wheel's hash, the sdist or project it was built from, their licence metadata), the app
// as the main component, and what depends on what. Written as CycloneDX 1.5 and SPDX 2.3 JSON:
// the same build gives the same bytes (times from SOURCE_DATE_EPOCH, ids from content hashes).

#include "compile.hh"
#include "dpkg-status.hh"
#include "grocker/oci/image.hh"
#include "grocker/oci/layer-files.hh"
#include "grocker/oci/store.hh"

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grocker::build {

struct SbomDeb : DebPackage {
    std::vector<std::string> licenses; // the copyright file's License short names
};

struct SbomPython {
    std::string name, version, wheelFile, wheelDigest; // "sha256:…"
    std::string sourceFile, sourceDigest;              // empty: the wheel as fetched
    bool fromProject = false, app = false;
    // A distribution a Debian package holds (not grocker's: python3-pip-whl's wheel, a
    // python3-* package's dist-info): where it is and which package put it there.
    std::string path, debianPackage;
    std::vector<std::string> dependsOn; // normalised names of the installed ones it requires
    std::string licenseExpression, license;
    std::vector<std::string> licenseClassifiers;
};

struct Sbom {
    std::string appName, appVersion, image; // image: "NAME:TAG" the build names
    std::string distro;                     // "debian-12", from os-release
    int64_t epoch = 0;
    std::vector<SbomDeb> debs;      // by name
    std::vector<SbomPython> python; // by normalised name
};

// The root's part: its Debian packages, from what `sbomFileWanted` selects of its layers
// (dpkg's status, the copyright files, os-release); kept per root (package-cache.cc).
struct PythonInDeb {
    std::string name, version, path, digest, debianPackage; // digest: a wheel file's; else ""
};
struct RootPackages {
    std::string distro;
    std::vector<SbomDeb> debs;
    // Python distributions in the root's Debian packages: the wheels of
    // /usr/share/python-wheels and the dist-info and egg-info of /usr/lib/python3/dist-packages.
    std::vector<PythonInDeb> python;
};
bool sbomFileWanted(const std::string& path);
RootPackages rootPackages(const std::map<std::string, oci::LayerFile>& rootFiles);
nlohmann::json toJson(const RootPackages& packages);
RootPackages rootPackagesFromJson(const nlohmann::json& j); // throws on a malformed one

// The root's packages, kept in the store once read (package-cache.cc).
RootPackages cachedRootPackages(oci::Store& store, const oci::Image& root);
// Those kept, without reading the root's layers; none when none are.
std::optional<RootPackages> keptRootPackages(const oci::Store& store, const oci::Image& root);
void keepRootPackages(oci::Store& store, const oci::Image& root, const RootPackages& packages);

// The package list as attached to a root image in the registry (artifactType below), for
// runners whose root's layers stay there: {"root": DIGEST, "packages": …}. Reading it throws
// when it is malformed or names another root.
inline constexpr const char* rootPackagesType = "application/vnd.grocker.root-packages.v1+json";
std::string rootPackagesEntry(const oci::Image& root, const RootPackages& packages);
RootPackages rootPackagesFromEntry(const oci::Image& root, std::string_view entry);

// The SBOM of the root's packages and the wheels installed over it.
Sbom makeSbom(const RootPackages& root, const std::vector<CompiledWheel>& wheels,
              const std::string& image, int64_t epoch);

std::string cycloneDxJson(const Sbom& sbom);
std::string spdxJson(const Sbom& sbom);

// The License short names of a machine-readable Debian copyright file (DEP-5), each once, in
// order; none for another format.
std::vector<std::string> debianLicenses(std::string_view copyright);

// Debian or free-text licence names as one SPDX expression ("GPL-2+" → "GPL-2.0-or-later",
// "GPL-2+ or Artistic" → "(GPL-2.0-or-later OR Artistic-1.0-Perl)"); "" when one is unknown.
std::string spdxExpression(const std::vector<std::string>& names);

// Package URLs: pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=DISTRO, pkg:pypi/NAME@VERSION.
std::string debPurl(const DebPackage& p, const std::string& distro);
std::string pypiPurl(const std::string& name, const std::string& version);

} // namespace grocker::build
