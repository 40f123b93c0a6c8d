// libFuzzer target for the credentials files Grocker reads: docker's config.json and containers'
// auth.json (auths with base64 "auth", identity and registry tokens, credHelpers, credsStore).
// The lookup only reads files, so each input is written to a file given as --authfile; HOME,
// DOCKER_CONFIG and XDG_RUNTIME_DIR point at an empty folder so that no real file of this
// machine is read, and PATH at an empty folder so that no credential helper named by an input
// can run (asking for one must then fail with an Error). Login and logout rewrite the file: they
// must keep what they do not own and give back what they saved.
// Built with -Dfuzz=true and clang; scripts/test-fuzz runs it.

#include "grocker/registry/credentials.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <unistd.h>

using namespace grocker;
using namespace grocker::registry;
namespace fs = std::filesystem;

namespace {

fs::path work;

[[noreturn]] void fatal(const std::string& why)
{
    std::fprintf(stderr, "credentials: %s\n", why.c_str());
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
    work = makeTempDir(tmp && *tmp ? tmp : "/tmp", "grocker-fuzz-credentials-");
    fs::create_directory(work / "empty");
    auto empty = (work / "empty").string();
    ::setenv("HOME", empty.c_str(), 1);
    ::setenv("DOCKER_CONFIG", empty.c_str(), 1);
    ::setenv("PATH", empty.c_str(), 1);
    ::unsetenv("XDG_RUNTIME_DIR");
    ::unsetenv("REGISTRY_AUTH_FILE");
    std::atexit(cleanUp);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    std::string text(reinterpret_cast<const char*>(data), size);
    auto file = work / "auth.json";
    {
        std::error_code ec;
        fs::remove(file, ec);
        AutoCloseFD fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!fd) fatal("unable to create " + file.string());
        writeFull(fd.get(), text, file.string());
    }
    AuthFileOptions options{file};

    // The hosts the seeds name, plus Docker Hub's many spellings.
    for (auto [registry, repository] : {std::pair{"docker.io", "library/ubuntu"},
                                        {"reg.example:5000", "team/app"},
                                        {"localhost:5000", "x"},
                                        {"quay.io", "org/a/b"}}) {
        try {
            auto c = findCredentials(registry, repository, options);
            (void)scrubSecrets(c.username + c.password + c.identityToken + c.registryToken);
        } catch (Error&) {
        }
    }
    (void)normaliseAuthKey(text);

    // Logging in keeps the file a JSON object that gives back the saved login; logging out
    // removes it. A malformed file is refused, not replaced.
    bool saved = false;
    try {
        saveLogin(file, "fuzz.example", "fuzzer", "s3cret-fuzz");
        saved = true;
    } catch (Error&) {
    }
    if (saved) {
        try {
            auto c = findCredentials("fuzz.example", "", options);
            if (c.username != "fuzzer" || c.password != "s3cret-fuzz")
                fatal("login saved fuzzer:s3cret-fuzz, the file gives back '" + c.username + ":" +
                      c.password + "'");
        } catch (Error& e) {
            // A credential helper the input names for the host still comes first, as docker
            // does; with no helper installed, asking it fails.
            if (e.message().find("credential helper") == std::string::npos)
                fatal("the file written by login does not read back: " + e.message());
        }
        try {
            if (!removeLogin(file, "fuzz.example")) fatal("logout found no login after a login");
        } catch (Error& e) {
            fatal("logout failed after a login: " + e.message());
        }
    }
    return 0;
}
