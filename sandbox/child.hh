#pragma once
// The sandbox's child, from clone to exec: what it is given by the parent, how it reports a
// failure, and its steps (child.cc: become root, mount, secure the init, run the command).

#include "copy-root.hh"
#include "grocker/file.hh"
#include "grocker/sandbox/sandbox.hh"
#include "mount-plan.hh"

#include <set>
#include <string>

namespace grocker::sandbox {

// How the root filesystem is made: GROCKER_SANDBOX_ROOTFS=overlay or copy forces one; unset,
// overlay is tried first and copying is the fallback.
enum class RootfsMode { Auto, Overlay, Copy };

// What the child needs, in the parent's memory, which the child has a copy of.
struct Child {
    const SandboxSpec* spec;
    int goFd;  // read: the parent wrote the id maps
    int errFd; // write: messages for the parent (see sendMessage)
    RootfsMode mode;
    MountPlan plan;
    std::string step;
    // Copy mode: the root is a copy, whose changes the init writes into the upper dir once the
    // command is done.
    bool copied = false;
    AutoCloseFD upperFd;             // opened before pivot_root, after which it is out of reach
    AutoCloseFD emulatorFd;          // the emulator's interpreter, likewise (registered after it)
    std::set<std::string> mountedOn; // paths relative to the root
    RootSnapshot snapshot;
    // As root with a range of its own: the init's namespace also maps the host's low ids (for
    // the store's folders, see IdMap::withHostIds), so the command gets a user namespace of its
    // own, with the range only, and its uts, ipc and network namespaces (see
    // enterCommandNamespaces).
    bool nested = false;
};

// Messages from the sandbox to the parent, on one pipe: a kind ('E' an error, after which the
// sandbox ends; 'R' overlay was refused, a warning shown at once), the text, a NUL.
void sendMessage(int fd, char kind, const std::string& text);

// Sends the error, prefixed with the step, and ends the child.
[[noreturn]] void childFail(Child& c, const std::string& message);

// The child's life: the init of the sandbox (PID 1), which starts the command and exits with its
// status.
[[noreturn]] void childMain(Child& c);

// A wait status as an exit code: 128 + signal when killed.
int statusCode(int status);

} // namespace grocker::sandbox
