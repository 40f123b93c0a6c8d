#pragma once
// Runs a command in user, mount, pid, uts, ipc (and, by default, network) namespaces over an
// overlay of read-only lower dirs and a writable upper dir, as bubblewrap and Nix's builder do:
// prepare → start child → map ids → mount the root → pivot_root → drop privileges → exec.
// Where overlay mounts are refused in a user namespace, the lower dirs are copied instead and
// the command's changes written into the upper dir afterwards, in the same overlay form
// (GROCKER_SANDBOX_ROOTFS=overlay or =copy forces one way). Setup failures in the child come
// back over a pipe as one Error naming the step.

#include "grocker/file.hh"
#include "grocker/sandbox/emulation.hh"
#include "grocker/sandbox/id-map.hh"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

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
    std::vector<std::string> env; // KEY=VALUE, the whole environment
    std::string workdir = "/";
    std::string user; // "" (root), NAME, UID, NAME:GROUP, UID:GID
    bool hostNetwork = false;
    std::vector<Volume> volumes;
    std::string hostname = "grocker";
    // Told (once per process) when overlay is refused and the layers are copied instead;
    // unset, the warning goes to stderr.
    std::function<void(const std::string&)> warn;
    // The command's standard output goes to the caller's standard error (build steps: the
    // caller's standard output carries results only).
    bool stdoutToStderr = false;
    // When set, the command's standard output and error go to this descriptor instead (a pipe
    // whose lines the caller shows and logs).
    int outputFd = -1;
    // Programs of another architecture run under this emulator (emulation.hh), registered in the
    // sandbox's own binfmt_misc instance, mounted on its /proc/sys/fs/binfmt_misc.
    std::optional<Emulator> emulator;
};

// A sandbox started and running beside the caller, which may start others meanwhile (from the
// same thread: the sandbox's child is cloned from it). Signals to the caller (SIGINT, SIGTERM)
// are passed on to every running sandbox. Destroyed before wait(), it is killed.
class Sandbox {
  public:
    Sandbox(const SandboxSpec& spec, const IdMap& map);
    ~Sandbox();
    Sandbox(const Sandbox&) = delete;
    Sandbox& operator=(const Sandbox&) = delete;

    // Waits for the command to end and returns its exit status (128 + signal when killed).
    // The upper dir (runDir/upper) then holds what it changed; mount points the sandbox had
    // to create are removed from it. Throws when the sandbox could not be set up.
    int wait();
    // The sandbox's init, a child of this process, until wait() returns.
    pid_t pid() const { return pid_; }

  private:
    SandboxSpec spec_;
    pid_t pid_ = 0;
    AutoCloseFD errRead_;
    int reap();
    void kill();
};

// Sandbox(spec, map).wait(): runs the command and returns its exit status.
int runSandbox(const SandboxSpec& spec, const IdMap& map);

// Checks that user namespaces can be made here; throws an Error saying why not.
void checkUserNamespaces();

} // namespace grocker::sandbox
