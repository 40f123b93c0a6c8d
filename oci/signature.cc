#include "grocker/oci/signature.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/strings.hh"
#include "key-envelope.hh"

#include <algorithm>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <vector>

namespace grocker::oci {

void PKeyFree::operator()(evp_pkey_st* key) const
{
    EVP_PKEY_free(key);
}

namespace {

using json = nlohmann::ordered_json;

template <typename T, void (*Free)(T*)> struct Freer {
    void operator()(T* p) const { Free(p); }
};
using Bio = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, Freer<EVP_MD_CTX, EVP_MD_CTX_free>>;
using Pkcs8 =
    std::unique_ptr<PKCS8_PRIV_KEY_INFO, Freer<PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free>>;
using X509Sig = std::unique_ptr<X509_SIG, Freer<X509_SIG, X509_SIG_free>>;

// OpenSSL's reason for the last failure, and an empty queue for the next call. Its texts name
// routines and ASN.1 tags, never the bytes it was given.
std::string opensslReason()
{
    unsigned long code = ERR_peek_last_error();
    ERR_clear_error();
    if (!code) return "no reason given";
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    return buf;
}

// A key file: small, read into memory that is wiped afterwards.
constexpr size_t maxKeyFile = 1 << 20;

Secret readKeyFile(const std::filesystem::path& path)
{
    AutoCloseFD fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw SysError("unable to open the key '", path.string(), "'");
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) throw SysError("unable to stat the key '", path.string(), "'");
    if (!S_ISREG(st.st_mode))
        throw Error("the key '", path.string(), "' is not a file: give the path of a PEM file");
    if (size_t(st.st_size) > maxKeyFile)
        throw Error("the key '", path.string(), "' is ", st.st_size,
                    " bytes: too large to be a PEM key; check the path");
    // One byte more than the size, to see a file that grew meanwhile.
    Secret buf(size_t(st.st_size) + 1);
    size_t got = 0;
    while (got < buf.size()) {
        size_t n = readSome(fd.get(), buf.data() + got, buf.size() - got,
                            "the key '" + path.string() + "'");
        if (n == 0) break;
        got += n;
    }
    if (got > size_t(st.st_size))
        throw Error("the key '", path.string(), "' changed while it was read; try again");
    buf.shrink(got);
    return buf;
}

// One PEM block: its type ("PRIVATE KEY"), its headers (OpenSSL's Proc-Type encryption) and
// its decoded bytes.
struct PemBlock {
    std::string type;
    std::string headers;
    Secret der;
};

std::vector<PemBlock> readPem(std::string_view text, const std::string& what)
{
    Bio bio(BIO_new_mem_buf(text.data(), int(text.size())));
    if (!bio) throw Error("unable to read ", what, ": out of memory (OpenSSL)");
    std::vector<PemBlock> blocks;
    for (;;) {
        char* name = nullptr;
        char* header = nullptr;
        unsigned char* data = nullptr;
        long len = 0;
        // PEM_FLAG_SECURE: OpenSSL wipes its working buffers as it frees them, and the base64
        // text and the bytes of a plain key pass through them.
        if (PEM_read_bio_ex(bio.get(), &name, &header, &data, &len,
                            PEM_FLAG_SECURE | PEM_FLAG_EAY_COMPATIBLE) != 1)
            break;
        PemBlock block{name, header, Secret(size_t(len))};
        std::copy(data, data + len, block.der.bytes());
        OPENSSL_secure_free(name);
        OPENSSL_secure_free(header);
        OPENSSL_secure_clear_free(data, size_t(len));
        blocks.push_back(std::move(block));
    }
    ERR_clear_error(); // the end of the text reads as "no start line"
    if (blocks.empty())
        throw Error(what, " is not a PEM file: it has no '-----BEGIN ...-----' line");
    return blocks;
}

// Refuses what is not ECDSA P-256, saying what it is.
void requireP256(const EVP_PKEY* key, const std::string& what)
{
    const std::string advice = ": grocker signs and verifies with ECDSA P-256 keys only, the kind "
                               "'cosign generate-key-pair' makes";
    if (!EVP_PKEY_is_a(key, "EC")) {
        const char* type = EVP_PKEY_get0_type_name(key);
        throw Error(what, " holds a key of type ", type ? type : "unknown", " (",
                    EVP_PKEY_get_bits(key), " bits), not ECDSA P-256", advice);
    }
    char group[80] = "";
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &len) != 1) {
        ERR_clear_error();
        throw Error(what, " holds an ECDSA key on a curve given by its parameters, not P-256",
                    advice);
    }
    if (OBJ_sn2nid(group) != NID_X9_62_prime256v1)
        throw Error(what, " holds an ECDSA key on curve ", group, ", not P-256", advice);
}

Secret askPassword(const PasswordSource& password, const std::string& what)
{
    if (!password) throw Error(what, " is encrypted, and no password was given");
    return Secret(password());
}

PKey fromPkcs8(const PKCS8_PRIV_KEY_INFO* p8, const std::string& what)
{
    PKey key(EVP_PKCS82PKEY(p8));
    if (!key) throw Error(what, " holds a damaged PKCS#8 key (OpenSSL: ", opensslReason(), ")");
    return key;
}

PKey fromPkcs8Der(const Secret& der, const std::string& what)
{
    const unsigned char* p = der.bytes();
    Pkcs8 p8(d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, long(der.size())));
    if (!p8) throw Error(what, " holds a damaged PKCS#8 key (OpenSSL: ", opensslReason(), ")");
    return fromPkcs8(p8.get(), what);
}

// OpenSSL's Proc-Type encryption of a traditional key: decrypted in place with the password.
void decryptProcType(PemBlock& block, const PasswordSource& password, const std::string& what)
{
    std::string headers = block.headers;
    EVP_CIPHER_INFO cipher;
    if (PEM_get_EVP_CIPHER_INFO(headers.data(), &cipher) != 1)
        throw Error(what, " has PEM headers OpenSSL cannot read (OpenSSL: ", opensslReason(), ")");
    if (!cipher.cipher) return;
    auto pass = askPassword(password, what);
    auto give = [](char* buf, int size, int, void* u) -> int {
        auto* s = static_cast<Secret*>(u);
        int n = int(std::min(s->size(), size_t(size)));
        std::copy(s->data(), s->data() + n, buf);
        return n;
    };
    long len = long(block.der.size());
    if (PEM_do_header(&cipher, block.der.bytes(), &len, give, &pass) != 1) {
        ERR_clear_error();
        throw wrongPassword(what);
    }
    block.der.shrink(size_t(len));
}

PKey privateKeyOf(PemBlock& block, const PasswordSource& password, const std::string& what)
{
    const auto& type = block.type;
    if (type == "ENCRYPTED SIGSTORE PRIVATE KEY" || type == "ENCRYPTED COSIGN PRIVATE KEY") {
        auto pass = askPassword(password, what);
        return fromPkcs8Der(openKeyEnvelope(block.der.view(), pass.view(), what), what);
    }
    if (type == "PRIVATE KEY") return fromPkcs8Der(block.der, what);
    if (type == "EC PRIVATE KEY") {
        decryptProcType(block, password, what);
        const unsigned char* p = block.der.bytes();
        PKey key(d2i_PrivateKey(EVP_PKEY_EC, nullptr, &p, long(block.der.size())));
        if (!key)
            throw Error(what, " holds a damaged EC PRIVATE KEY (OpenSSL: ", opensslReason(), ")");
        return key;
    }
    if (type == "ENCRYPTED PRIVATE KEY") {
        const unsigned char* p = block.der.bytes();
        X509Sig sealed(d2i_X509_SIG(nullptr, &p, long(block.der.size())));
        if (!sealed)
            throw Error(what, " holds a damaged ENCRYPTED PRIVATE KEY (OpenSSL: ", opensslReason(),
                        ")");
        auto pass = askPassword(password, what);
        Pkcs8 p8(PKCS8_decrypt(sealed.get(), pass.data(), int(pass.size())));
        if (!p8) {
            ERR_clear_error();
            throw wrongPassword(what);
        }
        return fromPkcs8(p8.get(), what);
    }
    if (type == "PUBLIC KEY")
        throw Error(what,
                    " holds a public key: signing needs the private half of the pair (cosign.key)");
    throw Error(what, " holds a PEM '", type,
                "', not a key grocker reads: it takes ECDSA P-256 keys as cosign writes them "
                "(ENCRYPTED SIGSTORE PRIVATE KEY) or as PEM PRIVATE KEY, EC PRIVATE KEY or "
                "ENCRYPTED PRIVATE KEY");
}

std::string memoryOf(BIO* bio)
{
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    return std::string(data, size_t(len));
}

std::string sha256Bytes(std::string_view data)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1)
        throw Error("SHA-256 failed (OpenSSL)");
    return std::string(reinterpret_cast<char*>(md), len);
}

// The string at `path` in a JSON document, or "" when there is none.
std::string stringAt(const json& doc, std::initializer_list<const char*> path)
{
    const json* node = &doc;
    for (auto* key : path) {
        if (!node->is_object()) return {};
        auto it = node->find(key);
        if (it == node->end()) return {};
        node = &*it;
    }
    return node->is_string() ? node->get<std::string>() : std::string();
}

} // namespace

// --- VerifyKey ---

namespace {
// "'PATH'", for messages (append, not "'" + x: GCC 12 at -O3 reports a false -Wrestrict there).
std::string quoted(const std::filesystem::path& path)
{
    return std::string("'").append(path.string()).append("'");
}
} // namespace

VerifyKey VerifyKey::load(const std::filesystem::path& path)
{
    auto text = readKeyFile(path);
    return fromPem(text.view(), quoted(path));
}

VerifyKey VerifyKey::fromPem(std::string_view pem, const std::string& what)
{
    auto blocks = readPem(pem, what);
    auto& block = blocks.front();
    if (block.type != "PUBLIC KEY") {
        if (block.type.find("PRIVATE KEY") != std::string::npos)
            throw Error(what, " holds a private key: verifying takes the public half of the pair "
                              "(cosign.pub)");
        throw Error(what, " holds a PEM '", block.type,
                    "', not a PUBLIC KEY: verifying takes a public key as cosign.pub holds it");
    }
    const unsigned char* p = block.der.bytes();
    PKey key(d2i_PUBKEY(nullptr, &p, long(block.der.size())));
    if (!key) throw Error(what, " holds a damaged PUBLIC KEY (OpenSSL: ", opensslReason(), ")");
    requireP256(key.get(), what);
    return VerifyKey(std::move(key));
}

std::string VerifyKey::pem() const
{
    Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1)
        throw Error("unable to write a public key as PEM (OpenSSL: ", opensslReason(), ")");
    return memoryOf(bio.get());
}

std::string VerifyKey::der() const
{
    int len = i2d_PUBKEY(key_.get(), nullptr);
    if (len <= 0)
        throw Error("unable to write a public key as DER (OpenSSL: ", opensslReason(), ")");
    std::string out(size_t(len), '\0');
    auto* p = reinterpret_cast<unsigned char*>(out.data());
    i2d_PUBKEY(key_.get(), &p);
    return out;
}

std::string VerifyKey::hint() const
{
    return base64Encode(sha256Bytes(der()));
}

bool VerifyKey::verify(std::string_view data, std::string_view derSignature) const
{
    MdCtx ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1)
        throw Error("unable to start verifying a signature (OpenSSL: ", opensslReason(), ")");
    // 0 is a signature that does not match, below 0 one that is not even DER: both say no.
    int ok = EVP_DigestVerify(
        ctx.get(), reinterpret_cast<const unsigned char*>(derSignature.data()), derSignature.size(),
        reinterpret_cast<const unsigned char*>(data.data()), data.size());
    ERR_clear_error();
    return ok == 1;
}

// --- SigningKey ---

SigningKey SigningKey::load(const std::filesystem::path& path, const PasswordSource& password)
{
    auto text = readKeyFile(path);
    return fromPem(text.view(), password, quoted(path));
}

SigningKey SigningKey::fromPem(std::string_view pem, const PasswordSource& password,
                               const std::string& what)
{
    auto blocks = readPem(pem, what);
    // `openssl ecparam -genkey` writes the curve's parameters before the key.
    auto it = blocks.begin();
    while (it != blocks.end() && it->type == "EC PARAMETERS")
        ++it;
    if (it == blocks.end()) throw Error(what, " holds EC parameters and no key");
    auto key = privateKeyOf(*it, password, what);
    requireP256(key.get(), what);
    return SigningKey(std::move(key));
}

SigningKey SigningKey::generate()
{
    PKey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    if (!key) throw Error("unable to generate an ECDSA P-256 key (OpenSSL: ", opensslReason(), ")");
    return SigningKey(std::move(key));
}

VerifyKey SigningKey::publicKey() const
{
    // Through the DER SubjectPublicKeyInfo: a public key object that holds no private part.
    int len = i2d_PUBKEY(key_.get(), nullptr);
    std::string der(size_t(std::max(len, 0)), '\0');
    auto* w = reinterpret_cast<unsigned char*>(der.data());
    if (len <= 0 || i2d_PUBKEY(key_.get(), &w) != len)
        throw Error("unable to take the public half of a key (OpenSSL: ", opensslReason(), ")");
    const unsigned char* r = reinterpret_cast<const unsigned char*>(der.data());
    PKey pub(d2i_PUBKEY(nullptr, &r, len));
    if (!pub)
        throw Error("unable to take the public half of a key (OpenSSL: ", opensslReason(), ")");
    return VerifyKey(std::move(pub));
}

std::string SigningKey::sign(std::string_view data) const
{
    MdCtx ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1)
        throw Error("unable to start signing (OpenSSL: ", opensslReason(), ")");
    size_t len = 0;
    auto* in = reinterpret_cast<const unsigned char*>(data.data());
    if (EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()) != 1)
        throw Error("unable to sign (OpenSSL: ", opensslReason(), ")");
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                       data.size()) != 1)
        throw Error("unable to sign (OpenSSL: ", opensslReason(), ")");
    sig.resize(len); // DER: its length varies with the values
    return sig;
}

CosignKeyPair SigningKey::cosignKeyPair(std::string_view password) const
{
    Pkcs8 p8(EVP_PKEY2PKCS8(key_.get()));
    if (!p8) throw Error("unable to write a key as PKCS#8 (OpenSSL: ", opensslReason(), ")");
    int len = i2d_PKCS8_PRIV_KEY_INFO(p8.get(), nullptr);
    if (len <= 0) throw Error("unable to write a key as PKCS#8 (OpenSSL: ", opensslReason(), ")");
    Secret der{size_t(len)};
    auto* w = der.bytes();
    i2d_PKCS8_PRIV_KEY_INFO(p8.get(), &w);

    auto envelope = sealKeyEnvelope(der.view(), password);
    Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio(bio.get(), "ENCRYPTED SIGSTORE PRIVATE KEY", "",
                              reinterpret_cast<const unsigned char*>(envelope.data()),
                              long(envelope.size())) <= 0)
        throw Error("unable to write a key as PEM (OpenSSL: ", opensslReason(), ")");
    return {memoryOf(bio.get()), publicKey().pem()};
}

// --- simple signing ---

std::string simpleSigningPayload(const std::string& dockerReference, const Digest& manifestDigest)
{
    // Key order and "optional":null are those of sigstore's payload.Cosign, marshalled by Go's
    // encoding/json with no annotations.
    json payload;
    payload["critical"]["identity"]["docker-reference"] = dockerReference;
    payload["critical"]["image"]["docker-manifest-digest"] = manifestDigest.str();
    payload["critical"]["type"] = cosignSignatureType;
    payload["optional"] = nullptr;
    return payload.dump();
}

std::string simpleSigningSignature(const SigningKey& key, std::string_view payload)
{
    return base64Encode(key.sign(payload));
}

SimpleSigningClaim verifySimpleSigning(std::string_view payload, std::string_view base64Signature,
                                       const VerifyKey& key, const Digest& manifestDigest)
{
    std::string signature;
    try {
        signature = base64Decode(base64Signature);
    } catch (Error&) {
        throw Error("the cosign signature is not base64");
    }
    // The signature first: nothing of the payload is read before it is known to be the key's.
    if (!key.verify(payload, signature))
        throw Error("the cosign signature does not verify with this key");
    auto doc = json::parse(payload, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
        throw Error("the cosign signature's payload is not a JSON object");
    auto type = stringAt(doc, {"critical", "type"});
    if (type != cosignSignatureType)
        throw Error("the cosign signature's payload is of type '", type, "', not '",
                    cosignSignatureType, "'");
    auto digestText = stringAt(doc, {"critical", "image", "docker-manifest-digest"});
    if (!Digest::valid(digestText))
        throw Error("the cosign signature's payload has no valid critical.image."
                    "docker-manifest-digest");
    auto signedDigest = Digest::parse(digestText);
    if (signedDigest != manifestDigest)
        throw Error("the cosign signature signs ", signedDigest.str(), ", not ",
                    manifestDigest.str());
    return {stringAt(doc, {"critical", "identity", "docker-reference"}), signedDigest};
}

// --- the Sigstore bundle ---

namespace {

const std::string_view inTotoStatementV1 = "https://in-toto.io/Statement/v1";

// DSSE's pre-authentication encoding: what the envelope's signature is over.
std::string preAuthEncoding(std::string_view payloadType, std::string_view payload)
{
    return concat("DSSEv1 ", payloadType.size(), " ", payloadType, " ", payload.size(), " ",
                  payload);
}

// The statement cosign 3 signs, in the field order of in-toto's protobuf as Go's protojson writes
// it: a subject with no name, the digest and the annotations (an empty object when none).
std::string signStatement(const Digest& manifestDigest,
                          const std::map<std::string, std::string>& subjectAnnotations)
{
    json subject;
    subject["digest"][manifestDigest.algorithm()] = manifestDigest.hex();
    subject["annotations"] = json::object();
    for (auto& [k, v] : subjectAnnotations)
        subject["annotations"][k] = v;
    json statement;
    statement["_type"] = inTotoStatementV1;
    statement["subject"] = json::array({subject});
    statement["predicateType"] = cosignSignPredicateType;
    statement["predicate"] = json::object();
    return statement.dump();
}

// Bundle fields by path; a missing or mistyped one says the text is no bundle.
const json& bundleField(const json& parent, const char* key, const std::string& path,
                        json::value_t type)
{
    auto it = parent.find(key);
    if (it == parent.end() || it->type() != type)
        throw Error("not a sigstore bundle: it has no ",
                    type == json::value_t::string  ? "string"
                    : type == json::value_t::array ? "array"
                                                   : "object",
                    " '", path, "'");
    return *it;
}

std::string bundleBase64(const json& parent, const char* key, const std::string& path)
{
    try {
        return base64Decode(
            bundleField(parent, key, path, json::value_t::string).get<std::string>());
    } catch (Error& e) {
        if (e.message().starts_with("not a sigstore bundle")) throw;
        throw Error("not a sigstore bundle: its '", path, "' is not base64");
    }
}

} // namespace

std::string sigstoreBundle(const SigningKey& key, const Digest& manifestDigest,
                           const std::map<std::string, std::string>& subjectAnnotations)
{
    auto statement = signStatement(manifestDigest, subjectAnnotations);
    auto signature = key.sign(preAuthEncoding(media::inToto, statement));

    json bundle;
    bundle["mediaType"] = media::sigstoreBundle;
    bundle["verificationMaterial"]["publicKey"]["hint"] = key.publicKey().hint();
    // Offline: no transparency log entry, and no timestamp authority.
    bundle["verificationMaterial"]["tlogEntries"] = json::array();
    auto& envelope = bundle["dsseEnvelope"];
    envelope["payload"] = base64Encode(statement);
    envelope["payloadType"] = media::inToto;
    json sig;
    sig["sig"] = base64Encode(signature);
    envelope["signatures"] = json::array({sig});
    return bundle.dump();
}

std::map<std::string, std::string> sigstoreBundleAnnotations(std::time_t created)
{
    std::tm utc{};
    gmtime_r(&created, &utc);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return {
        {std::string(annotation::bundleContent), "dsse-envelope"},
        {std::string(annotation::bundlePredicateType), std::string(cosignSignPredicateType)},
        {std::string(annotation::created), when},
    };
}

void verifySigstoreBundle(std::string_view bundleJson, const VerifyKey& key,
                          const Digest& manifestDigest)
{
    auto bundle = json::parse(bundleJson, nullptr, false);
    if (bundle.is_discarded()) throw Error("not a sigstore bundle: it is not JSON");
    if (!bundle.is_object()) throw Error("not a sigstore bundle: it is not a JSON object");

    auto mediaType =
        bundleField(bundle, "mediaType", "mediaType", json::value_t::string).get<std::string>();
    // v0.3 has two spellings; the second is the protobuf-specs' older one.
    if (mediaType != media::sigstoreBundle &&
        mediaType != "application/vnd.dev.sigstore.bundle+json;version=0.3")
        throw Error("the sigstore bundle's media type is '", mediaType, "', not '",
                    media::sigstoreBundle, "': grocker reads the bundles cosign 3 writes");

    auto& material =
        bundleField(bundle, "verificationMaterial", "verificationMaterial", json::value_t::object);
    if (material.contains("certificate") || material.contains("x509CertificateChain"))
        throw Error("the sigstore bundle was signed keyless (it carries a certificate), not with "
                    "a key: grocker checks key signatures only");
    auto& publicKey =
        bundleField(material, "publicKey", "verificationMaterial.publicKey", json::value_t::object);
    // The hint is optional in the protobuf; cosign always writes it, and one that names another
    // key says which key to try rather than a bare "does not verify".
    if (publicKey.contains("hint")) {
        auto hint = bundleField(publicKey, "hint", "verificationMaterial.publicKey.hint",
                                json::value_t::string)
                        .get<std::string>();
        if (!hint.empty() && hint != key.hint())
            throw Error("the sigstore bundle was signed with another key: its hint is '", hint,
                        "', this key's is '", key.hint(), "'");
    }

    if (bundle.contains("messageSignature"))
        throw Error("the sigstore bundle holds a message signature, not the DSSE envelope cosign 3 "
                    "signs an image with");
    auto& envelope = bundleField(bundle, "dsseEnvelope", "dsseEnvelope", json::value_t::object);
    auto payloadType =
        bundleField(envelope, "payloadType", "dsseEnvelope.payloadType", json::value_t::string)
            .get<std::string>();
    if (payloadType != media::inToto)
        throw Error("the sigstore bundle's envelope holds '", payloadType, "', not '",
                    media::inToto, "' (an in-toto statement)");
    auto payload = bundleBase64(envelope, "payload", "dsseEnvelope.payload");
    auto& signatures =
        bundleField(envelope, "signatures", "dsseEnvelope.signatures", json::value_t::array);
    // Sigstore's bundles carry exactly one signature (protobuf-specs, and @sigstore/bundle checks).
    if (signatures.size() != 1 || !signatures[0].is_object())
        throw Error("not a sigstore bundle: its envelope has ", signatures.size(),
                    " signatures, not one");
    auto signature = bundleBase64(signatures[0], "sig", "dsseEnvelope.signatures[0].sig");
    if (!key.verify(preAuthEncoding(payloadType, payload), signature))
        throw Error("the sigstore bundle's signature does not verify with this key");

    auto statement = json::parse(payload, nullptr, false);
    if (statement.is_discarded() || !statement.is_object())
        throw Error("the sigstore bundle's statement is not a JSON object");
    if (auto type = stringAt(statement, {"_type"});
        type != inTotoStatementV1 && type != "https://in-toto.io/Statement/v0.1")
        throw Error("the sigstore bundle's payload is not an in-toto statement (its _type is '",
                    type, "')");
    if (auto predicate = stringAt(statement, {"predicateType"});
        predicate != cosignSignPredicateType)
        throw Error("the sigstore bundle's statement is of predicate type '", predicate,
                    "', not cosign's image signature ('", cosignSignPredicateType, "')");
    std::vector<std::string> signedDigests;
    if (auto it = statement.find("subject"); it != statement.end() && it->is_array())
        for (auto& subject : *it) {
            if (!subject.is_object() || !subject.contains("digest") ||
                !subject["digest"].is_object())
                continue;
            for (auto& [algorithm, hex] : subject["digest"].items()) {
                if (!hex.is_string()) continue;
                auto d = algorithm + ":" + hex.get<std::string>();
                if (Digest::valid(d) && Digest::parse(d) == manifestDigest) return;
                signedDigests.push_back(d);
            }
        }
    if (signedDigests.empty())
        throw Error("the sigstore bundle's statement names no subject digest");
    throw Error("the sigstore bundle signs ", join(signedDigests, ", "), ", not ",
                manifestDigest.str());
}

} // namespace grocker::oci
