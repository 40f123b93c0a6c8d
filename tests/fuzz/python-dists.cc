// libFuzzer target for what the compile pass reads from a package index and from a build step,
// all of it hostile: wheel and sdist file names, versions (PEP 440), METADATA headers, the links
// of a PEP 503 page, a wheel's archive (its .dist-info/METADATA, read with libarchive), and the
// wheel tags another platform's build ranks a file by. The first byte picks the parser.
// Properties: only grocker::Error escapes; a canonical version is its own canonical form and
// the same version as the text it came from; a parsed wheel name's parts are non-empty; a
// wheel's rank under one platform's tags is that of the same file name parsed again.
// Built with -Dfuzz=true and clang; scripts/test-fuzz runs it.

#include "build/python-dists.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <unistd.h>

using namespace grocker;
using namespace grocker::build;
namespace fs = std::filesystem;

namespace {

fs::path work;

[[noreturn]] void fatal(const std::string& why)
{
    std::fprintf(stderr, "python-dists: %s\n", why.c_str());
    std::abort();
}

void cleanUp()
{
    std::error_code ec;
    fs::remove_all(work, ec);
}

void names(std::string_view text)
{
    static const WheelTags arm("3.11", "2.36", "aarch64"), amd("3.12", "2.31", "x86_64");
    if (auto w = parseWheelName(text)) {
        if (w->name.empty() || w->version.empty() || w->python.empty() || w->abi.empty() ||
            w->platform.empty())
            fatal("a wheel name parsed with an empty part: " + std::string(text));
        if (!plainFileName(text)) fatal("a wheel name that is not a plain file name parsed");
        auto again = parseWheelName(std::string(text));
        if (!again || arm.rank(*w) != arm.rank(*again) || amd.rank(*w) != amd.rank(*again))
            fatal("a wheel name ranks differently parsed twice");
    }
    auto slash = text.find('/');
    if (slash != std::string_view::npos)
        (void)sdistVersion(text.substr(slash + 1), text.substr(0, slash));
    (void)validDistName(text);
    (void)percentDecode(text);
}

void versions(std::string_view text)
{
    auto c = canonicalVersion(text);
    if (!c) return;
    auto again = canonicalVersion(*c);
    if (!again || *again != *c) fatal("a canonical version is not its own canonical form: " + *c);
    if (!sameVersion(text, *c)) fatal("a version is not the same as its canonical form: " + *c);
}

void wheelFile(std::string_view bytes)
{
    auto path = work / "a-1.0-py3-none-any.whl";
    writeFileAtomic(path, std::string(bytes));
    try {
        (void)readWheelMetadata(path);
    } catch (Error&) {
    }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***)
{
    const char* tmp = std::getenv("TMPDIR");
    work = makeTempDir(tmp && *tmp ? tmp : "/tmp", "grocker-fuzz-python-dists-");
    std::atexit(cleanUp);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size == 0) return 0;
    std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        switch (data[0] % 5) {
        case 0:
            names(text);
            break;
        case 1:
            versions(text);
            break;
        case 2:
            (void)parseMetadata(text);
            break;
        case 3:
            for (auto& l : parseIndexPage(text))
                if (!l.sha256.empty() && l.sha256.size() != 64)
                    fatal("an index link's sha256 is not 64 hex digits: " + l.sha256);
            break;
        case 4:
            wheelFile(text);
            break;
        }
    } catch (Error&) {
        // refused, with a message
    }
    return 0;
}
