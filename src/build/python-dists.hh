#pragma once
// Python distributions as the host sees them: names (PEP 508, PEP 503), versions (PEP 440),
// wheel and sdist file names, a wheel's METADATA, and the links of a PEP 503 index page. Pure
// functions over untrusted text: what a build step or an index says is checked here before
// the host names a file, a cache entry or an image after it.

#include "grocker/strings.hh"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grocker::build {

// PEP 508: ASCII letters and digits, with '.', '_' and '-' inside.
bool validDistName(std::string_view name);

// The canonical form of a PEP 440 version (lowercase, "1.0rc1", "1!2.0.post1.dev3+local.1",
// trailing zeros of the release kept), or nullopt when it is not a valid version.
std::optional<std::string> canonicalVersion(std::string_view version);
// Whether two versions are equal as PEP 440 compares them (1.0 == 1.0.0; both valid).
bool sameVersion(std::string_view a, std::string_view b);

struct WheelName {
    std::string name, version, build, python, abi, platform;
};
// "{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl", each part checked; nullopt else.
std::optional<WheelName> parseWheelName(std::string_view file);

// Whether a requirement (or a constraints file) says platform_machine, as a marker (PEP 508, or
// the legacy platform.machine): what it resolves to may then differ from machine to machine.
bool namesMachine(std::string_view text);

// The wheel tags a CPython interpreter on glibc Linux accepts, most preferred first, as pip's
// packaging.tags lists them (cpython_tags, then compatible_tags): cpXY-cpXY-P, cpXY-abi3-P,
// cpXY-none-P, the older cpXW-abi3-P; pyXY-none-P, py3-none-P, ...; cpXY-none-any, pyXY-none-any,
// py3-none-any, .... The platforms P: manylinux_2_N_ARCH from the C library's version down to
// the architecture's oldest (2.5 on x86_64 and i686, 2.17 elsewhere), each legacy name
// (manylinux2014, manylinux2010, manylinux1) after its level, then linux_ARCH. What a build of
// another architecture needs to pick a wheel as pip there would, without running it.
class WheelTags {
  public:
    // `python` "3.11", `glibc` "2.36", `arch` as Python's platform.machine() says it (x86_64,
    // aarch64, armv7l, ...). Throws an Error when a version is not MAJOR.MINOR.
    WheelTags(std::string_view python, std::string_view glibc, std::string_view arch);
    // Where the best of the tags of a wheel (compressed ones expanded: py2.py3) comes in the
    // list, lower being better; nullopt when none is accepted.
    std::optional<size_t> rank(const WheelName& wheel) const;

  private:
    std::map<std::string, size_t, std::less<>> order_;
    void add(const std::string& tag);
};

// The version of an sdist file of distribution `name` ("name-version.tar.gz", also .zip,
// .tar.bz2, .tar.xz, .tgz; the name compared normalised), or nullopt.
std::optional<std::string> sdistVersion(std::string_view file, std::string_view name);

struct DistMetadata {
    std::string name, version, requiresPython;
    std::vector<std::string> requiresDist;
    // What it says of its licence: License-Expression (PEP 639, SPDX), License (free text),
    // the "License :: ..." classifiers.
    std::string licenseExpression, license;
    std::vector<std::string> licenseClassifiers;
};
// The headers of METADATA (RFC 822 form); values checked: name and version valid, no control
// characters. Throws an Error saying what is wrong.
DistMetadata parseMetadata(std::string_view text);

// A wheel file's .dist-info/METADATA (the one at the top of the archive), read with libarchive,
// checked against the file name (`fileName`, else the path's): the wheel's name and version
// must match its metadata's. Throws an Error naming the wheel and what is wrong.
DistMetadata readWheelMetadata(const std::filesystem::path& wheel, std::string_view fileName = {});

struct IndexLink {
    std::string file;   // the last path segment of the link, percent-decoded
    std::string href;   // as written, without its fragment
    std::string sha256; // from "#sha256=HEX", lowercase; empty when the index gives none
};
// The <a href="..."> links of a PEP 503 project page (or a find-links HTML page).
std::vector<IndexLink> parseIndexPage(std::string_view html);

// "%2B" → "+": the percent-decoding of a URL's path segment (RFC 3986 §2.1).
std::string percentDecode(std::string_view text);

// A file name as a step may give it: one path segment, printable ASCII, not "." or "..".
bool plainFileName(std::string_view name);

} // namespace grocker::build
