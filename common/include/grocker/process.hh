#pragma once
// Running a program and taking its output: argv as given (looked up in PATH, never through a
// shell), input fed on its standard input, standard output (and error) collected up to a limit.

#include "grocker/error.hh"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grocker {

struct ProcessOptions {
    // The program's standard error goes into the output too (else it is the caller's).
    bool mergeStderr = true;
    // More output than this is refused: the program is killed and an Error thrown.
    size_t maxOutput = 1 << 20;
};

struct ProcessResult {
    int waitStatus = 0; // as waitpid() gives it
    std::string output; // standard output (and error, merged), in the order written

    // Exited by itself with status 0.
    bool succeeded() const;
    // The exit status, or 128 + the signal's number for a program killed by one (as sh says).
    int exitCode() const;
    // The signal that killed the program, if one did.
    std::optional<int> signal() const;
};

// The program could not be started (not found, not executable): its errno is errNo().
class SpawnError : public SysError {
  public:
    using SysError::SysError;
};

// Runs argv[0] (a name looked up in PATH, or a path) with argv, the environment of this
// process and no other file descriptor than 0, 1 and 2; writes `input` to its standard input,
// then closes it, and waits for it to end. A program that exits without reading all its input
// is no error (this process ignores the SIGPIPE meanwhile). Throws a SpawnError when the
// program cannot be started, an Error when its output passes options.maxOutput.
ProcessResult runProgram(const std::vector<std::string>& argv, std::string_view input,
                         const ProcessOptions& options = {});

} // namespace grocker
