#pragma once
// HTTP over libcurl, and the URL and header arithmetic a registry client needs.
//
// Connections: each HttpClient keeps a pool of easy handles, one taken per request and given
// back after, so a worker thread's next request reuses its kept-alive connection (HTTP/1.1, or
// HTTP/2 when a TLS server offers it by ALPN). DNS answers and TLS sessions are shared between
// handles through a curl share; the connection cache is not, as libcurl does not support one
// connection used from several threads at once. Redirects are not followed here: the caller
// follows them (see Client), so it decides where the Authorization header goes.

#include "grocker/error.hh"

#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace grocker::registry {

struct TlsOptions {
    bool verify = true;
    // PEM certificates added to the system's CAs (a cert dir's *.crt), and a client certificate.
    std::string extraCAs;
    std::filesystem::path clientCert, clientKey;
};

// How long a peer may keep a transfer waiting, so that no registry, proxy or CDN can hang a
// command: production values by default (a slow registry and a slow link still work as long as
// bytes flow), shorter or longer through GROCKER_REGISTRY_TIMEOUT.
struct TransferLimits {
    // TCP connection and TLS handshake.
    std::chrono::seconds connect{30};
    // A transfer whose request and answer bodies moved fewer than minSpeed bytes a second over
    // `stall` seconds is given up. Headers do not count as moving: a peer that drips them (or
    // says nothing) is cut after `stall` seconds whatever its pace.
    std::chrono::seconds stall{60};
    uint64_t minSpeed = 1000;
    // The status line and headers of one answer; more is not a registry talking.
    size_t maxHeaderBytes = 1 << 20;
};
// The defaults, with GROCKER_REGISTRY_TIMEOUT=SECONDS (1 to 3600) as both the connect and the
// stall limits when set. Throws a UsageError for another value.
TransferLimits transferLimitsFromEnvironment();

struct HttpResponse {
    long status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers; // names lowercase, in order
    // The body, unless a 2xx body went to HttpRequest::onBody (kept up to maxBody bytes).
    std::string body;
    // HTTP version of the answer: 1 for 1.x, 2 for HTTP/2.
    int httpVersion = 1;

    // The first header of that name (lowercase), or empty.
    std::string header(std::string_view name) const;
    std::vector<std::string> headerValues(std::string_view name) const;
    bool ok() const { return status >= 200 && status < 300; }
};

struct HttpRequest {
    std::string method = "GET";
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    // A body given whole (manifests, small blobs) ...
    std::string body;
    // ... or read as it goes: fills buf with up to len bytes of the body from `offset` (curl may
    // go back to 0 to send it again on a fresh connection), 0 at the end.
    std::function<size_t(uint64_t offset, char* buf, size_t len)> bodySource;
    uint64_t bodySize = 0; // with bodySource
    // A 2xx response's body, as it arrives. `head` has the status and headers.
    std::function<void(const HttpResponse& head, const char* data, size_t len)> onBody;
    size_t maxBody = 4 << 20;
    // A 2xx body over maxBody is an error (BodyTooLargeError), found from its Content-Length
    // before any of it is read, else when the count passes maxBody, instead of being cut.
    bool refuseOverMax = false;
    // Bytes sent and received so far; returning false aborts the transfer.
    std::function<bool(uint64_t sent, uint64_t received)> onProgress;
    // What the server is, for the hints of transport errors ("is the registry running...").
    std::string_view peer = "registry";
};

// A request that got no HTTP answer: refused, reset, timed out, TLS failure.
class TransportError : public Error {
  public:
    enum class Kind {
        Transient, // reset, timeout, cut body: worth another try
        Refused,   // no connection (nothing listens): worth another try too
        Protocol,  // the answer is not HTTP (e.g. a TLS server spoken to in plain HTTP)
        Tls,       // the TLS handshake failed (e.g. the server speaks plain HTTP)
        Stalled,   // no connection, or too few bytes, within TransferLimits
                   // (RetryPolicy::stallAttempts)
        Fatal,     // bad certificate, unknown host, aborted, ...
    };
    TransportError(Kind kind, std::string message) : Error(std::move(message)), kind_(kind) {}
    Kind kind() const { return kind_; }
    // Worth another try: a garbled answer may be a proxy's fault too.
    bool transient() const
    {
        return kind_ == Kind::Transient || kind_ == Kind::Refused || kind_ == Kind::Protocol ||
               kind_ == Kind::Stalled;
    }

  private:
    Kind kind_;
};

// A 2xx answer's body is larger than HttpRequest::maxBody allows (refuseOverMax).
class BodyTooLargeError : public Error {
  public:
    // `declared`: the Content-Length that said so, or nullopt when the count passed the limit.
    BodyTooLargeError(std::string message, std::optional<uint64_t> declared)
        : Error(std::move(message)), declared_(declared)
    {
    }
    std::optional<uint64_t> declared() const { return declared_; }

  private:
    std::optional<uint64_t> declared_;
};

// What a transfer cut by TransferLimits says: the peer ("host:port"), what it did, and what to
// try. `moved` bytes of body in the last `seconds` (headerBytes of headers); `sending` while the
// request body was not all taken; `connected` false for a connection never made.
std::string stallMessage(std::string_view peer, const TransferLimits& limits, bool connected,
                         bool sending, uint64_t moved, uint64_t headerBytes);

class HttpClient {
  public:
    explicit HttpClient(TlsOptions tls = {}, TransferLimits limits = {});
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // Sends the request and waits for the whole answer. Thread-safe. Throws TransportError
    // when there is no answer (or the body is cut: the caller resumes), and rethrows what an
    // onBody or bodySource callback threw.
    HttpResponse perform(const HttpRequest& request);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Resolves a URI reference (a Location header) against the URL it came from (RFC 3986 §5.2),
// keeping its query.
std::string resolveUrl(std::string_view base, std::string_view reference);
// "scheme://host:port" of an absolute URL, lowercase, the default port made explicit.
std::string urlOrigin(std::string_view url);
// The host of an absolute URL, without port or brackets.
std::string urlHost(std::string_view url);
// Appends "key=value" to the query, percent-encoding both.
std::string addQuery(std::string url, std::string_view key, std::string_view value);
std::string percentEncode(std::string_view text);
// The URL without its query (which may hold signatures or upload state) nor the password of
// its user information (withoutPassword), for messages.
std::string redactUrl(std::string_view url);
// "scheme://user:secret@host/..." → "scheme://user:***@host/..."; a user alone (a token) →
// "scheme://***@host/...".
std::string withoutPassword(std::string_view url);
// The URL with neither user information nor query nor fragment, for what is kept and shown
// (provenance): "https://tok@host/simple?k=v" → "https://host/simple".
std::string withoutCredentials(std::string_view url);
// "host:port" of an absolute URL, for messages naming the peer.
std::string urlPeer(std::string_view url);

// Retry-After: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); seconds to wait from `now`,
// never negative. nullopt when absent or unparseable.
std::optional<double> parseRetryAfter(std::string_view value, std::time_t now);
// "Range: 0-1234" of an upload status (distribution spec: inclusive end, no unit), also
// accepting "bytes=0-1234". Returns the number of bytes held (end + 1), nullopt when malformed.
// "0-0" is 0: registry 2.8 says so for an empty upload (and for a 1-byte one, which a client
// resuming from 0 then finds out by the digest check).
std::optional<uint64_t> parseUploadRange(std::string_view value);
// For a ranged GET resumed at `have` bytes: how many leading bytes of the answer's body to
// drop. 206 with "Content-Range: bytes have-..." keeps all; 200 (range ignored) drops `have`.
// nullopt when the answer cannot continue the blob (a 206 at another offset).
std::optional<uint64_t> bytesToSkip(long status, std::string_view contentRange, uint64_t have);

// Whether `host` (no port) is this machine: localhost, 127.0.0.0/8 or ::1.
bool isLoopbackHost(std::string_view host);

} // namespace grocker::registry
