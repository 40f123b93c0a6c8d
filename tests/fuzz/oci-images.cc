// libFuzzer target for what a registry, a layout folder or an archive hands over as JSON:
// manifests (OCI and Docker schema 2), indexes and manifest lists, image configs, descriptors.
// Each input goes through every parser. Besides not crashing and refusing with an Error (never
// another exception), a manifest or index that parses must serialise canonically to bytes that
// parse to the same thing. Built with -Dfuzz=true and clang; scripts/test-fuzz runs it.

#include "grocker/error.hh"
#include "grocker/oci/image.hh"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace grocker::oci;
using nlohmann::json;

namespace {

[[noreturn]] void broken(const char* what, const std::string& a, const std::string& b)
{
    std::fprintf(stderr, "%s:\n  first:  %s\n  second: %s\n", what, a.c_str(), b.c_str());
    std::abort();
}

void platforms(const std::optional<Platform>& p)
{
    if (!p) return;
    (void)p->str();
    (void)p->matches(Platform::host());
    (void)Platform::host().matches(*p);
}

void manifest(const std::string& text, std::string_view expected)
{
    Manifest m;
    try {
        m = parseManifest(text, "manifest", expected);
    } catch (grocker::Error&) {
        return;
    }
    for (auto& l : m.layers)
        (void)media::isLayer(l.mediaType);
    auto bytes = canonical(toJson(m));
    auto again = parseManifest(bytes, "canonical manifest", m.mediaType);
    if (canonical(toJson(again)) != bytes)
        broken("a manifest does not read back as itself", bytes, canonical(toJson(again)));
    (void)verifyBlob(bytes, Descriptor{m.mediaType, sha256(bytes), int64_t(bytes.size())},
                     "manifest");
}

void index(const std::string& text, std::string_view expected)
{
    Index idx;
    try {
        idx = parseIndex(text, "index", expected);
    } catch (grocker::Error&) {
        return;
    }
    for (auto& d : idx.manifests)
        platforms(d.platform);
    auto bytes = canonical(toJson(idx));
    auto again = parseIndex(bytes, "canonical index", idx.mediaType);
    if (canonical(toJson(again)) != bytes)
        broken("an index does not read back as itself", bytes, canonical(toJson(again)));
}

void config(const std::string& text)
{
    ImageConfig c;
    try {
        c = parseConfig(text, "config");
    } catch (grocker::Error&) {
        return;
    }
    (void)c.diffIds();
    platforms(c.platform());
    (void)canonical(c.json);
}

void descriptor(const std::string& text)
{
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return;
    try {
        auto d = parseDescriptor(j, "descriptor");
        auto again = parseDescriptor(toJson(d), "canonical descriptor");
        if (toJson(again) != toJson(d))
            broken("a descriptor does not read back as itself", toJson(d).dump(),
                   toJson(again).dump());
    } catch (grocker::Error&) {
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    std::string text(reinterpret_cast<const char*>(data), size);
    std::string sniffed;
    try {
        sniffed = sniffMediaType(text, "blob");
    } catch (grocker::Error&) {
    }
    // As the store reads a blob (no expectation), then as a registry's Content-Type would say.
    manifest(text, {});
    index(text, {});
    if (!sniffed.empty()) {
        manifest(text, sniffed);
        index(text, sniffed);
    }
    config(text);
    descriptor(text);
    return 0;
}
