#include "key-envelope.hh"

#include "grocker/error.hh"
#include "grocker/strings.hh"

#include <memory>
#include <nlohmann/json.hpp>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <sodium.h>

namespace grocker::oci {

Secret::Secret(std::string&& text) : bytes_(text)
{
    OPENSSL_cleanse(text.data(), text.size());
    text.clear();
}

Secret::Secret(Secret&& other) noexcept : Secret()
{
    *this = std::move(other);
}

Secret& Secret::operator=(Secret&& other) noexcept
{
    if (this != &other) {
        wipe();
        // Swapping, not moving: a short string lives inside the object, and a move would copy
        // it without wiping the source.
        bytes_.swap(other.bytes_);
    }
    return *this;
}

void Secret::wipe()
{
    bytes_.resize(bytes_.capacity());
    OPENSSL_cleanse(bytes_.data(), bytes_.size());
    bytes_.clear();
}

void Secret::shrink(size_t size)
{
    if (size >= bytes_.size()) return;
    OPENSSL_cleanse(bytes_.data() + size, bytes_.size() - size);
    bytes_.resize(size);
}

namespace {

using json = nlohmann::ordered_json;

constexpr size_t saltSize = 32;

// go-securesystemslib opens the three parameter sets it can write and nothing else: an
// envelope naming N = 2^30 would take the machine's memory before the MAC could say no.
struct ScryptParams {
    uint64_t n;
    uint32_t r, p;
};
constexpr ScryptParams knownParams[] = {{32768, 8, 1}, {65536, 8, 1}, {131072, 8, 1}};

// libsodium must be initialised once before use (it picks its implementations then).
void initSodium()
{
    static const int status = sodium_init();
    if (status < 0) throw Error("unable to initialise libsodium");
}

Secret scrypt(std::string_view password, std::string_view salt, const ScryptParams& params)
{
    std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(EVP_KDF_fetch(nullptr, "SCRYPT", nullptr),
                                                          EVP_KDF_free);
    if (!kdf) throw Error("OpenSSL has no scrypt (EVP_KDF \"SCRYPT\")");
    std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(EVP_KDF_CTX_new(kdf.get()),
                                                                  EVP_KDF_CTX_free);
    if (!ctx) throw Error("unable to start scrypt (OpenSSL)");
    uint64_t n = params.n;
    uint32_t r = params.r, p = params.p;
    // 128 * r * N bytes for N = 2^17 is 128 MiB; OpenSSL's default limit would refuse it.
    uint64_t maxMem = uint64_t(256) << 20;
    // OpenSSL takes a non-null pointer for an empty password.
    static char empty = 0;
    OSSL_PARAM kdfParams[] = {
        OSSL_PARAM_construct_octet_string(
            OSSL_KDF_PARAM_PASSWORD, password.empty() ? &empty : const_cast<char*>(password.data()),
            password.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()),
                                          salt.size()),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxMem),
        OSSL_PARAM_construct_end(),
    };
    Secret key(crypto_secretbox_KEYBYTES);
    if (EVP_KDF_derive(ctx.get(), key.bytes(), key.size(), kdfParams) != 1)
        throw Error("scrypt failed (OpenSSL) with N=", n, ", r=", r, ", p=", p);
    return key;
}

std::string randomBytes(size_t n)
{
    std::string out(n, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), int(n)) != 1)
        throw Error("unable to draw ", n, " random bytes (OpenSSL)");
    return out;
}

// A string member of an object in the envelope, named by its path in errors.
std::string member(const json& object, const char* key, const std::string& path,
                   const std::string& what)
{
    auto it = object.find(key);
    if (it == object.end() || !it->is_string())
        throw Error(what, " is not a cosign encrypted key: it has no string '", path, "'");
    return it->get<std::string>();
}

std::string decoded(const json& object, const char* key, const std::string& path,
                    const std::string& what)
{
    auto text = member(object, key, path, what);
    try {
        return base64Decode(text);
    } catch (Error&) {
        throw Error(what, " is not a cosign encrypted key: its '", path, "' is not base64");
    }
}

const json& object(const json& parent, const char* key, const std::string& what)
{
    auto it = parent.find(key);
    if (it == parent.end() || !it->is_object())
        throw Error(what, " is not a cosign encrypted key: it has no object '", key, "'");
    return *it;
}

} // namespace

Error wrongPassword(const std::string& what)
{
    return Error("the password does not open ", what, " (a wrong password, or a damaged file)");
}

std::string sealKeyEnvelope(std::string_view plaintext, std::string_view password)
{
    initSodium();
    auto salt = randomBytes(saltSize);
    auto nonce = randomBytes(crypto_secretbox_NONCEBYTES);
    auto key = scrypt(password, salt, {cosignScryptN, cosignScryptR, cosignScryptP});
    std::string box(plaintext.size() + crypto_secretbox_MACBYTES, '\0');
    crypto_secretbox_easy(reinterpret_cast<unsigned char*>(box.data()),
                          reinterpret_cast<const unsigned char*>(plaintext.data()),
                          plaintext.size(), reinterpret_cast<const unsigned char*>(nonce.data()),
                          key.bytes());
    // The field names and their order are go-securesystemslib's structs.
    json envelope;
    envelope["kdf"]["name"] = "scrypt";
    envelope["kdf"]["params"] = {{"N", cosignScryptN}, {"r", cosignScryptR}, {"p", cosignScryptP}};
    envelope["kdf"]["salt"] = base64Encode(salt);
    envelope["cipher"]["name"] = "nacl/secretbox";
    envelope["cipher"]["nonce"] = base64Encode(nonce);
    envelope["ciphertext"] = base64Encode(box);
    return envelope.dump();
}

Secret openKeyEnvelope(std::string_view envelopeJson, std::string_view password,
                       const std::string& what)
{
    initSodium();
    json envelope = json::parse(envelopeJson, nullptr, false);
    if (envelope.is_discarded() || !envelope.is_object())
        throw Error(what, " is not a cosign encrypted key: its content is not a JSON object");

    auto& kdf = object(envelope, "kdf", what);
    auto kdfName = member(kdf, "name", "kdf.name", what);
    if (kdfName != "scrypt")
        throw Error(what, " derives its key with '", kdfName,
                    "', not scrypt: it is not a key cosign writes");
    auto& params = object(kdf, "params", what);
    ScryptParams cost{};
    try {
        cost = {params.at("N").get<uint64_t>(), params.at("r").get<uint32_t>(),
                params.at("p").get<uint32_t>()};
    } catch (json::exception&) {
        throw Error(what, " is not a cosign encrypted key: 'kdf.params' needs numbers N, r and p");
    }
    bool known = false;
    for (auto& k : knownParams)
        known |= k.n == cost.n && k.r == cost.r && k.p == cost.p;
    if (!known)
        throw Error(what, " asks for scrypt N=", cost.n, ", r=", cost.r, ", p=", cost.p,
                    ", parameters cosign never writes: refused, as they could take all the memory"
                    " (N=32768, 65536 or 131072 with r=8, p=1 are read)");
    auto salt = decoded(kdf, "salt", "kdf.salt", what);

    auto& cipher = object(envelope, "cipher", what);
    auto cipherName = member(cipher, "name", "cipher.name", what);
    if (cipherName != "nacl/secretbox")
        throw Error(what, " is encrypted with '", cipherName,
                    "', not nacl/secretbox: it is not a key cosign writes");
    auto nonce = decoded(cipher, "nonce", "cipher.nonce", what);
    if (nonce.size() != crypto_secretbox_NONCEBYTES)
        throw Error(what, " is not a cosign encrypted key: its nonce is ", nonce.size(),
                    " bytes, not ", crypto_secretbox_NONCEBYTES);
    auto box = decoded(envelope, "ciphertext", "ciphertext", what);
    if (box.size() < crypto_secretbox_MACBYTES)
        throw Error(what, " is not a cosign encrypted key: its ciphertext is ", box.size(),
                    " bytes, shorter than the MAC");

    auto key = scrypt(password, salt, cost);
    Secret plain(box.size() - crypto_secretbox_MACBYTES);
    if (crypto_secretbox_open_easy(
            plain.bytes(), reinterpret_cast<const unsigned char*>(box.data()), box.size(),
            reinterpret_cast<const unsigned char*>(nonce.data()), key.bytes()) != 0)
        throw wrongPassword(what);
    return plain;
}

} // namespace grocker::oci
