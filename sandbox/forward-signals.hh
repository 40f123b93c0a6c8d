#pragma once
// The caller's SIGINT and SIGTERM passed on to the PID 1 of each running sandbox (several run at
// once: the compile pass builds packages side by side), and the init's passing on to its command.

#include <cstddef>
#include <sys/types.h>

namespace grocker::sandbox {

constexpr size_t maxRunning = 64;

// How many sandboxes of this process are running.
size_t runningSandboxes();

// The parent: signals go to `pid` too until stopForwarding(pid).
void forwardSignalsTo(pid_t pid);
void stopForwarding(pid_t pid);

// The init: the parent's list came with the copy of its memory, where its pids mean nothing (or
// another process) in this namespace; it is cleared at the init's start.
void forgetForwarding();
// The init passes SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 on to its command only.
void forwardInitSignalsTo(pid_t cmd);

} // namespace grocker::sandbox
