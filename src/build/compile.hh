#pragma once
// The compile pass of `grocker build`: from a release to the wheels its runner installs, with
// the build code of every package treated as hostile (docs/security.md).
//
// - Each project or sdist is built in a sandbox of its own (a "box") over the compiler image,
//   whose only writable output is that package's wheel; the box sees its own source (fetched
//   or hashed by the host), a build environment the host made, and the index settings.
// - Resolution (pip, which runs build backends to prepare metadata) runs in a box too and
//   yields a report the host validates: names, versions, where each file came from. The host
//   then fetches every file itself, from the --find-links folder, the compiler image's wheels
//   or the index (checked against the hash the index publishes), never from the box.
// - Every cache entry is named by the host from its inputs, written by the host after checking
//   what a box made (a wheel's name, version and tags), and never replaced by a box's output:
//     cache/files/sha256/HEX        files by content (sources and built wheels)
//     cache/wheels/KEY.json         {inputs, file, digest, name, version}: a built wheel
//     cache/resolutions/KEY.json    {inputs, dists}: a validated resolution
//     cache/build-envs/KEY/         a build environment extracted by the host from wheels
//   KEY is cacheKey(inputs), so fsck can tell an entry filed under the wrong key.

#include "grocker/oci/digest.hh"
#include "grocker/oci/store.hh"
#include "python-dists.hh"
#include "steps.hh"

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace grocker::build {

class RemoteCache;

// RELEASE as given: name[extras]==version, a wheel file, or a project folder.
struct Release {
    enum class Kind { Spec, Wheel, Project } kind = Kind::Spec;
    std::string name, version, extras; // for Spec; for the others, known after compile
    std::filesystem::path path;        // Wheel or Project
    std::string text;
    std::string treeDigest; // Project: treeDigest(path), read once
};
// Throws a UsageError saying what RELEASE may be (or what its project folder holds that it
// should not), before anything is built.
Release parseRelease(const std::string& text);

// The content of a project folder: paths, modes and bytes, in order; build outputs left out.
// Throws a UsageError on what cannot be part of a project (a FIFO, a device, a socket).
std::string treeDigest(const std::filesystem::path& dir);

// "scheme://user:secret@host/..." → "scheme://user:***@host/...", for messages.
std::string withoutPassword(const std::string& url);

// Where packages come from, as the host must know to fetch them itself: the index URLs (the
// --index-url or pip.conf's index-url, then its extra-index-urls; pip's default when none, and
// none with no-index), find-links pages (http), and the --find-links folder.
struct IndexSettings {
    std::vector<std::string> indexUrls;
    std::vector<std::string> linkPages;
    std::filesystem::path findLinks; // host folder, mounted at /run/grocker/find-links
    // From a pip.conf's text ([global], [install], [wheel], [download]) and the options.
    static IndexSettings from(const std::string& pipConf, const std::string& indexUrl,
                              const std::filesystem::path& findLinks);
};

// The machine's own platform, built first in a several-platform build, for another platform's
// compile: where its resolution is filed, and how this platform's Python picks a wheel. A
// resolution none of whose requirements says platform_machine resolves to the same releases
// here; only the file of each may differ (an aarch64 wheel for an x86_64 one), and that the
// host picks from the index pages as pip here would, without running anything emulated. None
// when the pip.conf says no-binary, only-binary or prefer-binary: pip's choice of a release
// then depends on which files it has.
struct NativeTwin {
    std::string compilerDigest, indexKey; // the machine's platform's
    WheelTags tags;                       // this platform's Python's
    std::string platform;                 // "linux/arm64", for messages
};

struct CompileRequest {
    Release release;
    const oci::Image* compiler = nullptr;
    // Called before anything needs the compiler's layers (a box, its wheels): they may still
    // be in the registry only, as a build that runs no box does not need them.
    std::function<void()> needCompiler;
    // The index settings' env and volumes (pip.conf, find-links, constraints), network: added
    // to every box.
    Step boxTemplate;
    IndexSettings index;
    std::string indexKey; // digest of the compiler and the index settings
    // Likewise with the runtime instead of the compiler: the same for every platform, for
    // pure-Python wheels, which one platform's compiler builds for all.
    std::string pureKey;
    std::string constraintsDigest;             // of the pip constraints file, or empty
    std::vector<std::string> moreRequirements; // installed beside the release (uwsgi)
    bool refresh = false;                      // resolve again
    RemoteCache* remote = nullptr;             // the build cache in a registry, if any
    // Whether the constraints file says platform_machine (a resolution then differs by machine).
    bool constraintsNameMachine = false;
    std::optional<NativeTwin> native; // for another platform than the machine's, when built
};

struct CompiledWheel {
    std::string name, version, file;
    oci::Digest digest;
    std::filesystem::path path; // in the store, read-only
    bool requested = false;     // the release itself
    // What it was built from (for SBOMs): an sdist's file name and digest, or the project's
    // folder name and tree digest; empty for a wheel installed as it was fetched.
    std::string sourceFile, sourceDigest;
    bool fromProject = false;
};

// The wheels of the release and of its dependencies, sorted by name; the app is `requested`.
std::vector<CompiledWheel> compileRelease(Context& ctx, const CompileRequest& request);

} // namespace grocker::build
