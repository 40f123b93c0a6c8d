// libFuzzer target for the parsers of image names a user or a file gives: references
// ("ghcr.io/org/app:1@sha256:..."), digests, tags, and image locations ("oci:DIR:TAG",
// "docker://REF", ...). Besides not crashing, what parses must print back to text that parses
// to the same thing. Built with -Dfuzz=true and clang; scripts/test-fuzz runs it.

#include "grocker/error.hh"
#include "grocker/oci/digest.hh"
#include "grocker/oci/reference.hh"
#include "grocker/oci/transport.hh"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace grocker::oci;

namespace {

[[noreturn]] void broken(const std::string& what, const std::string& a, const std::string& b)
{
    std::fprintf(stderr, "%s:\n  first:  '%s'\n  second: '%s'\n", what.c_str(), a.c_str(),
                 b.c_str());
    std::abort();
}

void reference(const std::string& text)
{
    Reference r;
    try {
        r = Reference::parse(text);
    } catch (grocker::Error&) {
        return;
    }
    (void)r.apiHost();
    (void)familiarName(text);
    auto again = Reference::parse(r.str());
    if (again.str() != r.str() || again.domain != r.domain || again.path != r.path ||
        again.tag != r.tag || again.digest != r.digest)
        broken("a reference does not read back as itself", r.str(), again.str());
}

void digest(const std::string& text)
{
    bool valid = Digest::valid(text);
    try {
        auto d = Digest::parse(text);
        if (!valid) broken("Digest::valid refuses what Digest::parse takes", text, d.str());
        if (d.str() != text) broken("a digest does not print as it was read", text, d.str());
    } catch (grocker::Error&) {
        if (valid) broken("Digest::parse refuses what Digest::valid takes", text, "");
    }
}

void location(const std::string& text)
{
    ImageRef r;
    try {
        r = ImageRef::parse(text);
    } catch (grocker::Error&) {
        return;
    }
    auto again = ImageRef::parse(r.str());
    if (again.kind != r.kind || again.path != r.path || again.ref != r.ref ||
        again.str() != r.str())
        broken("an image location does not read back as itself", r.str(), again.str());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    std::string text(reinterpret_cast<const char*>(data), size);
    reference(text);
    digest(text);
    (void)validTag(text);
    location(text);
    return 0;
}
