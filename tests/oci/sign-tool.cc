// grocker-test-sign: the signature formats of oci/signature.hh on the command line, so that the
// integration tests can hand what grocker makes to outside verifiers (sigstore's own JavaScript
// verifier, Python's nacl) and what outsiders make to grocker. Passwords come from
// COSIGN_PASSWORD, as cosign takes them.
//
//   grocker-test-sign generate DIR               cosign.key + cosign.pub in DIR
//   grocker-test-sign public KEY                 the public PEM of a private key
//   grocker-test-sign bundle KEY DIGEST          a Sigstore bundle (cosign 3's) on stdout
//   grocker-test-sign verify-bundle PUB BUNDLE DIGEST
//   grocker-test-sign payload REF DIGEST         cosign's simple-signing payload on stdout
//   grocker-test-sign sign KEY FILE              base64 signature of FILE's bytes
//   grocker-test-sign verify-payload PUB PAYLOAD SIGNATURE DIGEST
//   grocker-test-sign message-bundle KEY FILE    a bundle with a messageSignature over FILE (what
//                                                cosign 3 does not write for an image; for the
//                                                outside verifier's other path)

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/signature.hh"
#include "grocker/strings.hh"

#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <vector>

using namespace grocker;
using namespace grocker::oci;

namespace {

std::string password()
{
    const char* p = std::getenv("COSIGN_PASSWORD");
    if (!p) throw Error("COSIGN_PASSWORD is not set: the key is encrypted");
    return p;
}

int usage()
{
    std::cerr << "usage: grocker-test-sign generate DIR | public KEY | bundle KEY DIGEST | "
                 "verify-bundle PUB BUNDLE DIGEST | payload REF DIGEST | sign KEY FILE | "
                 "verify-payload PUB PAYLOAD SIGNATURE DIGEST | message-bundle KEY FILE\n";
    return 2;
}

int run(const std::vector<std::string>& a)
{
    if (a.empty()) return usage();
    const auto& cmd = a[0];
    if (cmd == "generate" && a.size() == 2) {
        auto pair = SigningKey::generate().cosignKeyPair(password());
        writeFileAtomic(std::filesystem::path(a[1]) / "cosign.key", pair.privatePem, 0600);
        writeFileAtomic(std::filesystem::path(a[1]) / "cosign.pub", pair.publicPem);
    } else if (cmd == "public" && a.size() == 2) {
        std::cout << SigningKey::load(a[1], password).publicKey().pem();
    } else if (cmd == "bundle" && a.size() == 3) {
        std::cout << sigstoreBundle(SigningKey::load(a[1], password), Digest::parse(a[2]));
    } else if (cmd == "verify-bundle" && a.size() == 4) {
        verifySigstoreBundle(readFile(a[2]), VerifyKey::load(a[1]), Digest::parse(a[3]));
        std::cout << "verified\n";
    } else if (cmd == "payload" && a.size() == 3) {
        std::cout << simpleSigningPayload(a[1], Digest::parse(a[2]));
    } else if (cmd == "sign" && a.size() == 3) {
        std::cout << simpleSigningSignature(SigningKey::load(a[1], password), readFile(a[2]));
    } else if (cmd == "verify-payload" && a.size() == 5) {
        auto claim = verifySimpleSigning(readFile(a[2]), trimmed(readFile(a[3])),
                                         VerifyKey::load(a[1]), Digest::parse(a[4]));
        std::cout << "verified: " << claim.dockerReference << "@" << claim.manifestDigest.str()
                  << "\n";
    } else if (cmd == "message-bundle" && a.size() == 3) {
        auto key = SigningKey::load(a[1], password);
        auto data = readFile(a[2]);
        nlohmann::ordered_json b;
        b["mediaType"] = media::sigstoreBundle;
        b["verificationMaterial"]["publicKey"]["hint"] = key.publicKey().hint();
        b["verificationMaterial"]["tlogEntries"] = nlohmann::json::array();
        b["messageSignature"]["messageDigest"]["algorithm"] = "SHA2_256";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
        b["messageSignature"]["messageDigest"]["digest"] =
            base64Encode({reinterpret_cast<char*>(md), len});
        b["messageSignature"]["signature"] = base64Encode(key.sign(data));
        std::cout << b.dump();
    } else {
        return usage();
    }
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    try {
        return run(std::vector<std::string>(argv + 1, argv + argc));
    } catch (Error& e) {
        std::cerr << "grocker-test-sign: " << e.message() << "\n";
        return 1;
    }
}
