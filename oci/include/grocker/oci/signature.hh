#pragma once
// Image signatures as cosign writes and reads them, in one place: ECDSA P-256 keys (cosign's
// encrypted key pair, plain PEM), the simple-signing payload of the `.sig` tag that older
// verifiers read, and the Sigstore bundle cosign 3 attaches as an OCI 1.1 referrer. Formats only:
// pushing and fetching them is the registry's and the CLI's.

#include "grocker/oci/digest.hh"
#include "grocker/oci/referrers.hh" // media::inToto, a DSSE envelope's payloadType too

#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

struct evp_pkey_st; // OpenSSL's EVP_PKEY, kept out of this header

namespace grocker::oci {

namespace media {
// The payload of a `.sig` tag's layer (cosign's simple signing).
inline constexpr std::string_view cosignSimpleSigning =
    "application/vnd.dev.cosign.simplesigning.v1+json";
// A Sigstore bundle: the referrer manifest's artifactType and its one layer's media type.
inline constexpr std::string_view sigstoreBundle = "application/vnd.dev.sigstore.bundle.v0.3+json";
} // namespace media

namespace annotation {
// On a `.sig` layer: the base64 DER signature of its simple-signing payload.
inline constexpr std::string_view cosignSignature = "dev.cosignproject.cosign/signature";
// On a bundle's referrer manifest (cosign's specs/BUNDLE_SPEC.md).
inline constexpr std::string_view bundleContent = "dev.sigstore.bundle.content";
inline constexpr std::string_view bundlePredicateType = "dev.sigstore.bundle.predicateType";
inline constexpr std::string_view created = "org.opencontainers.image.created";
} // namespace annotation

// The predicate type of the in-toto statement cosign 3 signs for an image.
inline constexpr std::string_view cosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1";
// critical.type of a simple-signing payload.
inline constexpr std::string_view cosignSignatureType = "cosign container image signature";

// Owns an OpenSSL key.
struct PKeyFree {
    void operator()(evp_pkey_st* key) const;
};
using PKey = std::unique_ptr<evp_pkey_st, PKeyFree>;

// Gives an encrypted key's password; asked at most once, and only when the key is encrypted.
using PasswordSource = std::function<std::string()>;

// An ECDSA P-256 public key: checks signatures.
class VerifyKey {
  public:
    // A PEM "PUBLIC KEY" (SubjectPublicKeyInfo), what cosign.pub holds.
    static VerifyKey load(const std::filesystem::path& path);
    // The same from text; `what` names it in errors.
    static VerifyKey fromPem(std::string_view pem, const std::string& what = "the public key");

    std::string pem() const;
    // The DER SubjectPublicKeyInfo.
    std::string der() const;
    // What a Sigstore bundle's verificationMaterial.publicKey.hint says of this key, as cosign
    // writes it: base64 of the SHA-256 of der().
    std::string hint() const;
    // Whether `derSignature` is this key's ECDSA signature over SHA-256(data).
    bool verify(std::string_view data, std::string_view derSignature) const;

  private:
    explicit VerifyKey(PKey key) : key_(std::move(key)) {}
    friend class SigningKey;
    PKey key_;
};

// The two files of a cosign key pair, as `cosign generate-key-pair` writes them.
struct CosignKeyPair {
    std::string privatePem; // "ENCRYPTED SIGSTORE PRIVATE KEY": scrypt + nacl/secretbox
    std::string publicPem;  // "PUBLIC KEY"
};

// An ECDSA P-256 private key: signs. Move-only; its secret bytes are wiped wherever they passed
// and never appear in an error.
class SigningKey {
  public:
    // Reads cosign's encrypted key ("ENCRYPTED SIGSTORE PRIVATE KEY", or the older "ENCRYPTED
    // COSIGN PRIVATE KEY"), or a plain PEM "PRIVATE KEY" (PKCS#8), "EC PRIVATE KEY" (SEC1, also
    // with OpenSSL's Proc-Type encryption) or "ENCRYPTED PRIVATE KEY" (PKCS#8 with a password).
    // Anything but ECDSA P-256 is refused, saying what the file holds.
    static SigningKey load(const std::filesystem::path& path, const PasswordSource& password);
    // The same from text; `what` names it in errors.
    static SigningKey fromPem(std::string_view pem, const PasswordSource& password,
                              const std::string& what = "the private key");
    // A fresh random key.
    static SigningKey generate();

    VerifyKey publicKey() const;
    // The DER ECDSA signature over SHA-256(data), as cosign makes it.
    std::string sign(std::string_view data) const;
    // This key as cosign's key pair, the private half sealed under `password` (scrypt N=32768,
    // r=8, p=1, as cosign does; an empty password is allowed, as cosign allows it).
    CosignKeyPair cosignKeyPair(std::string_view password) const;

  private:
    explicit SigningKey(PKey key) : key_(std::move(key)) {}
    PKey key_;
};

// --- cosign's simple signing: the `.sig` tag ---

// The payload cosign signs for an image, byte for byte: {"critical":{"identity":
// {"docker-reference":REPO},"image":{"docker-manifest-digest":DIGEST},"type":"cosign container
// image signature"},"optional":null}. REPO is the repository as cosign names it: registry and
// path, no tag nor digest ("index.docker.io/library/debian" for Docker Hub's).
std::string simpleSigningPayload(const std::string& dockerReference, const Digest& manifestDigest);

// The value of the cosignSignature annotation for `payload`: base64 of key.sign(payload).
std::string simpleSigningSignature(const SigningKey& key, std::string_view payload);

// What a checked simple-signing payload claims.
struct SimpleSigningClaim {
    std::string dockerReference;
    Digest manifestDigest;
};

// Checks a `.sig` layer: that `base64Signature` is `key`'s signature of `payload`, then that the
// payload is cosign's and names `manifestDigest`. Throws an Error saying which check failed.
SimpleSigningClaim verifySimpleSigning(std::string_view payload, std::string_view base64Signature,
                                       const VerifyKey& key, const Digest& manifestDigest);

// --- the Sigstore bundle: cosign 3's OCI 1.1 referrer ---

// The bundle cosign 3 writes for `cosign sign --key`, made offline: a DSSE envelope of an
// in-toto statement (predicate cosignSignPredicateType, subject `manifestDigest`, with
// `subjectAnnotations` as cosign's -a gives them), the key's hint, no transparency log entry and
// no timestamp. ECDSA draws a random nonce: two bundles of one image differ.
std::string sigstoreBundle(const SigningKey& key, const Digest& manifestDigest,
                           const std::map<std::string, std::string>& subjectAnnotations = {});

// The annotations cosign 3 puts on a bundle's referrer manifest (its artifactType being
// media::sigstoreBundle): the content kind, the predicate type and `created` (RFC 3339, UTC).
std::map<std::string, std::string> sigstoreBundleAnnotations(std::time_t created);

// Checks a bundle as cosign 3 writes it for an image, with `key` and no transparency log: its
// media type, that its key hint is `key`'s, that its signature verifies with `key`, and that its
// statement signs `manifestDigest`. Throws an Error naming the check that failed.
void verifySigstoreBundle(std::string_view bundleJson, const VerifyKey& key,
                          const Digest& manifestDigest);

} // namespace grocker::oci
