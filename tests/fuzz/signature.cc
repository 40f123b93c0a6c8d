// libFuzzer target for the signature formats read from outside (oci/signature.hh): Sigstore
// bundles and cosign's simple-signing payloads checked against a fixed key, public keys, private
// key PEM (plain and cosign's), and cosign's encrypted key envelope. Only grocker::Error escapes,
// and a bundle or payload that verifies must be one the fixed key signed for the fixed digest.
// The first byte picks the parser. Built with -Dfuzz=true and clang; scripts/test-fuzz runs it.
// The key below is this target's own, made for it and for tests/fuzz/make-corpus's seeds only.

#include "grocker/oci/signature.hh"

#include "grocker/error.hh"
#include "key-envelope.hh"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

using namespace grocker;
using namespace grocker::oci;

namespace {

const char* fuzzKey = "-----BEGIN PRIVATE KEY-----\n"
                      "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgk6LnJvhQnWKsO2Su\n"
                      "yJLwgCcnizV5XiXrs1Aw6iByInWhRANCAAS0lqOHpD4cIwQJLLWYSEHD71ywmbqb\n"
                      "+hHLhoidsgfx6sOD33rXz6Zuxzo9e7iQqE3dI/jaPfosKzXAirOUCOq3\n"
                      "-----END PRIVATE KEY-----\n";
// sha256("fuzz"): the digest bundles and payloads are checked against.
const char* fuzzDigest = "sha256:93850b707585e404e4951a3ddc1f05a34b3d4f5fc081d616f46d8a2e8f1c8e68";

std::optional<VerifyKey> key;

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***)
{
    key.emplace(SigningKey::fromPem(fuzzKey, nullptr, "the fuzz key").publicKey());
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size == 0) return 0;
    std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    auto digest = Digest::parse(fuzzDigest);
    try {
        switch (data[0] % 5) {
        case 0:
            verifySigstoreBundle(text, *key, digest);
            break;
        case 1: {
            // PAYLOAD NUL BASE64-SIGNATURE
            auto nul = text.find('\0');
            if (nul == std::string::npos) return 0;
            auto claim =
                verifySimpleSigning(text.substr(0, nul), text.substr(nul + 1), *key, digest);
            if (claim.manifestDigest != digest) {
                std::fprintf(stderr, "a payload of %s verified as %s\n",
                             claim.manifestDigest.str().c_str(), fuzzDigest);
                std::abort();
            }
            break;
        }
        case 2: {
            auto pub = VerifyKey::fromPem(text);
            (void)pub.hint();
            (void)VerifyKey::fromPem(pub.pem()).der();
            break;
        }
        case 3:
            (void)openKeyEnvelope(text, "fuzz", "the envelope");
            break;
        case 4:
            (void)SigningKey::fromPem(text, [] { return std::string("fuzz"); }).publicKey();
            break;
        }
    } catch (grocker::Error&) {
    }
    return 0;
}
