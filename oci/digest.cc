#include "grocker/oci/digest.hh"

#include "grocker/error.hh"

#include <openssl/evp.h>

namespace grocker::oci {

namespace {

bool lowerHex(std::string_view s)
{
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

// Returns an empty string when valid, else why not.
std::string problem(std::string_view text)
{
    auto colon = text.find(':');
    if (colon == std::string_view::npos) return "expected 'sha256:' followed by 64 hex digits";
    auto algo = text.substr(0, colon), hex = text.substr(colon + 1);
    size_t want;
    if (algo == "sha256")
        want = 64;
    else if (algo == "sha512")
        want = 128;
    else
        return concat("unsupported algorithm '", algo, "' (sha256 and sha512 are)");
    if (hex.size() != want || !lowerHex(hex))
        return concat("expected ", want, " lowercase hex digits after '", algo, ":'");
    return {};
}

} // namespace

bool Digest::valid(std::string_view text)
{
    return problem(text).empty();
}

Digest Digest::parse(std::string_view text)
{
    auto why = problem(text);
    if (!why.empty()) throw Error("malformed digest '", text.substr(0, 200), "': ", why);
    auto colon = text.find(':');
    return Digest(std::string(text.substr(0, colon)), std::string(text.substr(colon + 1)));
}

struct Sha256::Impl {
    EVP_MD_CTX* ctx = nullptr;
    ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>())
{
    impl_->ctx = EVP_MD_CTX_new();
    if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1)
        throw Error("unable to initialise SHA-256 (OpenSSL)");
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, size_t len)
{
    if (len && EVP_DigestUpdate(impl_->ctx, data, len) != 1)
        throw Error("SHA-256 update failed (OpenSSL)");
}

Digest Sha256::finish()
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (EVP_DigestFinal_ex(impl_->ctx, md, &len) != 1)
        throw Error("SHA-256 final failed (OpenSSL)");
    EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
    return Digest("sha256", hexString({reinterpret_cast<const char*>(md), len}));
}

Digest sha256(std::string_view data)
{
    Sha256 h;
    h.update(data);
    return h.finish();
}

} // namespace grocker::oci
