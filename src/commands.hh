#pragma once
// Registration of grocker's subcommands. Each returns the exit status.

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace grocker {

struct GlobalOptions {
    std::string root;
    bool quiet = false;
};

using Runners = std::vector<std::pair<CLI::App*, std::function<int()>>>;

// append, copy, unpack, inspect.
Runners registerImageCommands(CLI::App& app, GlobalOptions& global);
// run.
Runners registerRunCommand(CLI::App& app, GlobalOptions& global);

} // namespace grocker
