// grocker: the command line. Each subcommand is a short list of calls into the libraries;
// errors become one line on stderr (exit 1), misuse exit 2.

#include "commands.hh"
#include "grocker/display.hh"
#include "grocker/error.hh"

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <sys/stat.h>
#include <unistd.h>

using namespace grocker;

namespace {

// Whether the command line names a known command, with grocker's own options before it; prints
// why, and returns false, when not. CLI11 says only "A subcommand is required" for a misspelt
// command, and "not expected" for a global option after the command, though valid before it.
bool commandLineMakesSense(CLI::App& app, const Runners& runners, int argc, char** argv)
{
    auto isGlobalWithValue = [](const std::string& a) {
        return a == "--root" || a == "--authfile" || a == "--cert-dir" || a == "--tls-verify" ||
               a == "--progress";
    };
    auto isGlobal = [&](const std::string& a) {
        auto name = a.substr(0, a.find('='));
        return a == "-q" || a == "--quiet" || a == "-v" || a == "--verbose" ||
               isGlobalWithValue(name);
    };
    // Unless the command has an option of that name too (diff's -q).
    auto commandHas = [&](const std::string& command, const std::string& a) {
        for (auto& [sub, fn] : runners)
            if (sub->get_name() == command)
                return sub->get_option_no_throw(a.substr(0, a.find('='))) != nullptr;
        return false;
    };
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (isGlobalWithValue(a)) {
            i++;
            continue;
        }
        if (a.starts_with("-")) continue;
        bool known = false;
        auto commands = app.get_subcommands([](CLI::App*) { return true; });
        for (auto* sub : commands)
            known |= sub->get_name() == a;
        if (!known) {
            std::string names;
            for (auto* sub : commands)
                names += (names.empty() ? "" : ", ") + sub->get_name();
            std::cerr << "grocker: unknown command '" << a << "': use one of " << names
                      << " (see grocker --help)\n";
            return false;
        }
        for (int j = i + 1; j < argc && std::string(argv[j]) != "--"; j++)
            if (isGlobal(argv[j]) && !commandHas(a, argv[j])) {
                std::string option = argv[j];
                if (isGlobalWithValue(option) && j + 1 < argc)
                    option += std::string(" ") + argv[j + 1];
                std::cerr << "grocker: '" << argv[j] << "' is an option of grocker itself, not of '"
                          << a << "': put it before the command (grocker " << option << " " << a
                          << " ...)\n";
                return false;
            }
        break;
    }
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    // The store is shared with the subordinate ids of a rootless build (mmdebstrap's, the
    // sandbox's users) and what it holds goes into images: its modes are the ones grocker gives,
    // not the caller's umask (077 made the store unreadable to them, and layers differ by user).
    ::umask(022);
    CLI::App app{"grocker: build OCI images of Python applications, without a daemon"};
    app.set_version_flag("--version", std::string("grocker ") + GROCKER_VERSION);
    app.require_subcommand(1);
    GlobalOptions global;
    app.add_option("--root", global.root,
                   "Store folder (default $GROCKER_ROOT or $XDG_CACHE_HOME/grocker)");
    app.add_flag("-q,--quiet", global.quiet, "Print only results, warnings and errors");
    app.add_flag("-v,--verbose", global.verbose,
                 "Show everything, build steps' notices included (the build's log has it all)");
    addProgressOption(&app, global);
    app.add_option("--authfile", global.authfile,
                   "Registry credentials file (default $REGISTRY_AUTH_FILE, "
                   "$XDG_RUNTIME_DIR/containers/auth.json, then docker's)");
    app.add_option(
           "--tls-verify", global.tlsVerify,
           "Verify registries' TLS certificates (default true); false also allows plain http")
        // CLI11's own message for a bad value is "Could not convert", which says not what to give.
        ->check(CLI::Validator(
            [](std::string& v) {
                std::string l;
                for (char c : v)
                    l += char(std::tolower(static_cast<unsigned char>(c)));
                for (auto ok :
                     {"true", "false", "1", "0", "yes", "no", "on", "off", "t", "f", "y", "n"})
                    if (l == ok) return std::string();
                return "'" + v + "' is not a boolean: use --tls-verify=true or --tls-verify=false";
            },
            ""));
    app.add_option("--cert-dir", global.certDir,
                   "Folder of *.crt CAs (and *.cert/*.key) for registries' TLS");

    Runners runners;
    for (auto registerCommands :
         {registerImageCommands, registerRunCommand, registerRegistryCommands, registerBuildCommand,
          registerStoreCommands, registerCacheCommands, registerDiffCommand,
          registerAttestationCommands, registerSignCommands, registerRebaseCommand,
          registerIndexCommands})
        for (auto& r : registerCommands(app, global))
            runners.push_back(r);
    app.failure_message([](const CLI::App* failed, const CLI::Error& e) {
        std::string name =
            failed->get_parent() ? "grocker " + failed->get_name() : std::string("grocker");
        return "grocker: " + std::string(e.what()) + "\nRun '" + name + " --help' for usage.\n";
    });

    if (!commandLineMakesSense(app, runners, argc, argv)) return 2;

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    int status = 0;
    try {
        display().configure(progressMode(global.progress, global.quiet), global.verbose);
        for (auto& [sub, fn] : runners)
            if (sub->parsed()) {
                status = fn();
                break;
            }
    } catch (const UsageError& e) {
        display().finish();
        std::cerr << "grocker: " << e.what() << "\n";
        return 2;
    } catch (const Error& e) {
        display().error(e.what());
        display().finish();
        return 1;
    } catch (const std::filesystem::filesystem_error& e) {
        // A std::filesystem call on the user's paths that no caller wrapped (a folder it may not
        // read, a file where a folder was expected): their fault or their system's, not a bug.
        std::cerr << "grocker: error: unable to use '" << e.path1().string() << "'"
                  << (e.path2().empty() ? "" : " and '" + e.path2().string() + "'") << ": "
                  << e.code().message() << "; check the path and its permissions\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "grocker: internal error: " << e.what() << " (please report this)\n";
        return 1;
    }
    display().finish();
    return status;
}
