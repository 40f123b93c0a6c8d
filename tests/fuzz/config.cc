// libFuzzer target for .grocker.yml and -c files: YAML merged over the defaults, every mistake
// gathered into one ConfigError (never another exception), and for a configuration that is
// accepted, what the program derives from it (the canonical JSON that cache keys hash, the
// runner's services.json), which must read back as the same configuration.
// Built with -Dfuzz=true and clang; scripts/test-fuzz runs it.

#include "config.hh"

#include "grocker/file.hh"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

using namespace grocker;
namespace fs = std::filesystem;

namespace {

fs::path work; // the folder relative paths (pip_constraint) are taken from

[[noreturn]] void fatal(const std::string& why)
{
    std::fprintf(stderr, "config: %s\n", why.c_str());
    std::abort();
}

void cleanUp()
{
    std::error_code ec;
    fs::remove_all(work, ec);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***)
{
    const char* tmp = std::getenv("TMPDIR");
    work = makeTempDir(tmp && *tmp ? tmp : "/tmp", "grocker-fuzz-config-");
    writeFileAtomic(work / "constraints.txt", "six==1.16.0\n");
    fs::create_directory(work / "folder");
    std::atexit(cleanUp);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    std::string text(reinterpret_cast<const char*>(data), size);
    try {
        (void)splitCommand(text);
    } catch (UsageError&) {
    }
    Config config;
    try {
        config = mergeConfigText(Config{}, text, "fuzz.yml", work);
    } catch (ConfigError& e) {
        if (e.problems().empty()) fatal("a ConfigError without problems");
        return 0;
    }
    auto json = toJson(config).dump();
    (void)servicesJson(config, "app", "1.0", "/home/grocker/venv");
    Config again;
    try {
        again = mergeConfigText(Config{}, json, "fuzz.json", work);
    } catch (ConfigError& e) {
        fatal("the canonical form of an accepted configuration is refused: " +
              std::string(e.what()) + "\n" + json);
    }
    if (toJson(again).dump() != json)
        fatal("the canonical form reads back differently:\n" + json + "\n" + toJson(again).dump());
    return 0;
}
