#pragma once
// Runs a command in user, mount, pid, uts, ipc (and, by default, network) namespaces over an
// overlay of read-only lower dirs and a writable upper dir, as bubblewrap and Nix's builder do:
// prepare → start child → map ids → mount the root → pivot_root → drop privileges → exec.
// Where overlay mounts are refused in a user namespace, the lower dirs are copied instead and
// the command's changes written into the upper dir afterwards, in the same overlay form
// (GROCKER_SANDBOX_ROOTFS=overlay or =copy forces one way). Setup failures in the child come
// back over a pipe as one Error naming the step.

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "grocker/sandbox/id-map.hh"

namespace grocker::sandbox {

struct Volume {
    std::filesystem::path host;
    std::string container; // absolute path inside
    bool readOnly = false;

    // "HOST:CONTAINER[:ro|:rw]"; throws a UsageError otherwise.
    static Volume parse(const std::string& text);
};

struct SandboxSpec {
    std::vector<std::filesystem::path> lowerDirs; // top layer first; empty for scratch
    std::filesystem::path runDir;                 // holds upper/, work/, merged/
    std::vector<std::string> argv;
    std::vector<std::string> env;                 // KEY=VALUE, the whole environment
    std::string workdir = "/";
    std::string user;                             // "" (root), NAME, UID, NAME:GROUP, UID:GID
    bool hostNetwork = false;
    std::vector<Volume> volumes;
    std::string hostname = "grocker";
    // Told (once per process) when overlay is refused and the layers are copied instead;
    // unset, the warning goes to stderr.
    std::function<void(const std::string&)> warn;
    // The command's standard output goes to the caller's standard error (build steps: the
    // caller's standard output carries results only).
    bool stdoutToStderr = false;
};

// Runs the command and returns its exit status (128 + signal when killed). The upper dir
// (runDir/upper) then holds what it changed; mount points the sandbox had to create are
// removed from it.
int runSandbox(const SandboxSpec& spec, const IdMap& map);

// Checks that user namespaces can be made here; throws an Error saying why not.
void checkUserNamespaces();

} // namespace grocker::sandbox
