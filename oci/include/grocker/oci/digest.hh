#pragma once
// Content digests ("sha256:<64 hex>") and a streaming SHA-256 over OpenSSL EVP.

#include <compare>
#include <memory>
#include <string>
#include <string_view>

namespace grocker::oci {

class Digest {
  public:
    Digest() = default;
    // Parses "sha256:<64 lowercase hex>" or "sha512:<128 lowercase hex>"; throws a clear
    // Error otherwise ("malformed digest 'x': ...").
    static Digest parse(std::string_view text);
    static bool valid(std::string_view text);

    const std::string& algorithm() const { return algorithm_; }
    const std::string& hex() const { return hex_; }
    std::string str() const { return algorithm_ + ":" + hex_; }
    // The first 12 hex digits, for messages and progress lines.
    std::string shortHex() const { return hex_.substr(0, 12); }
    bool empty() const { return hex_.empty(); }

    auto operator<=>(const Digest&) const = default;

  private:
    Digest(std::string algorithm, std::string hex)
        : algorithm_(std::move(algorithm)), hex_(std::move(hex))
    {
    }
    friend class Sha256;
    std::string algorithm_;
    std::string hex_;
};

// Streaming SHA-256. Not thread-safe; one per stream.
class Sha256 {
  public:
    Sha256();
    ~Sha256();
    Sha256(Sha256&&) noexcept;
    Sha256& operator=(Sha256&&) noexcept;
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    void update(const void* data, size_t len);
    void update(std::string_view data) { update(data.data(), data.size()); }
    // Returns the digest; the hasher is reset for reuse.
    Digest finish();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

Digest sha256(std::string_view data);

} // namespace grocker::oci
