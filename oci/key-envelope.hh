#pragma once
// cosign's encrypted private key: go-securesystemslib's `encrypted` envelope, the key's PKCS#8 DER
// sealed with nacl/secretbox (XSalsa20-Poly1305) under scrypt(password), written as JSON. Private
// to oci/signature.cc; its tests reach it to open a vector made by the Go implementation.

#include <cstdint>
#include <string>
#include <string_view>

namespace grocker {
class Error;
}

namespace grocker::oci {

// Bytes wiped when dropped: passwords, keys and what opens them. Move-only; it never grows, as a
// reallocation would leave a copy behind.
class Secret {
  public:
    Secret() = default;
    explicit Secret(size_t size) : bytes_(size, '\0') {}
    // Takes a copy and wipes `text`.
    explicit Secret(std::string&& text);
    Secret(Secret&& other) noexcept;
    Secret& operator=(Secret&& other) noexcept;
    Secret(const Secret&) = delete;
    Secret& operator=(const Secret&) = delete;
    ~Secret() { wipe(); }

    char* data() { return bytes_.data(); }
    const char* data() const { return bytes_.data(); }
    unsigned char* bytes() { return reinterpret_cast<unsigned char*>(bytes_.data()); }
    const unsigned char* bytes() const
    {
        return reinterpret_cast<const unsigned char*>(bytes_.data());
    }
    size_t size() const { return bytes_.size(); }
    std::string_view view() const { return bytes_; }
    // Keeps the first `size` bytes, wiping the rest.
    void shrink(size_t size);

  private:
    void wipe();
    std::string bytes_;
};

// The scrypt parameters cosign generate-key-pair writes (go-securesystemslib's "legacy" set).
inline constexpr uint64_t cosignScryptN = 32768;
inline constexpr uint32_t cosignScryptR = 8, cosignScryptP = 1;

// The one message for a password that does not open an encrypted key, of any format.
Error wrongPassword(const std::string& what);

// Seals `plaintext` as cosign does: a random 32-byte salt and 24-byte nonce, scrypt with the
// parameters above. Returns the envelope's JSON.
std::string sealKeyEnvelope(std::string_view plaintext, std::string_view password);

// Opens an envelope; `what` names the key in errors ("'cosign.key'"). Throws wrongPassword(what)
// when the secretbox does not authenticate.
Secret openKeyEnvelope(std::string_view envelopeJson, std::string_view password,
                       const std::string& what);

} // namespace grocker::oci
