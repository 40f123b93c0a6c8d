// libFuzzer target for every parser of the registry library that reads what a registry (or a
// proxy, or a token server) sends: WWW-Authenticate, Retry-After, upload Range, Content-Range,
// Location resolution, errors[] bodies, scopes, base64 from credential files.
// The first byte picks the parser. Built with -Dfuzz=true and clang.

#include "grocker/error.hh"
#include "grocker/registry/auth.hh"
#include "grocker/registry/client.hh"
#include "grocker/registry/http.hh"

#include <cstddef>
#include <cstdint>
#include <string>

using namespace grocker::registry;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size == 0) return 0;
    std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        switch (data[0] % 8) {
        case 0:
            for (auto& c : parseWwwAuthenticate(text))
                (void)splitScopes(c.param("scope"));
            break;
        case 1:
            (void)parseRetryAfter(text, 1445412480);
            break;
        case 2:
            (void)parseUploadRange(text);
            (void)bytesToSkip(206, text, 100);
            break;
        case 3: {
            auto nl = text.find('\n');
            auto base = text.substr(0, nl);
            auto ref = nl == std::string::npos ? std::string() : text.substr(nl + 1);
            auto url = resolveUrl(base, ref);
            (void)urlOrigin(url);
            (void)redactUrl(url);
            (void)addQuery(url, "digest", "sha256:00");
            break;
        }
        case 4:
            (void)parseApiErrors(text);
            break;
        case 5:
            (void)unionScopes({text}, splitScopes(text));
            break;
        case 6:
            (void)base64Decode(text);
            break;
        case 7:
            (void)isLoopbackHost(text);
            break;
        }
    } catch (grocker::Error&) {
    }
    return 0;
}
