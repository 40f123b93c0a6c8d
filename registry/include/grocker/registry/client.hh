#pragma once
// A client of one registry (Distribution HTTP API v2): the scheme chosen, the credentials found,
// bearer tokens asked for and renewed, requests retried, failures described. Thread-safe: the
// workers of a pull or push share one Client.
//
// Scheme: https, verified against the system's CAs plus the *.crt of --cert-dir (or, without
// it, of /etc/containers/certs.d/HOST and /etc/docker/certs.d/HOST). Plain http is allowed for
// loopback registries (localhost, 127.0.0.0/8, ::1, as docker allows) and, with
// --tls-verify=false (which also stops certificate checks), for any registry:
//   - loopback: GET /v2/ in plain http first; https when the answer shows a TLS server (a 400,
//     an answer that is not HTTP, a refused connection). Not https first: a TLS ClientHello sent
//     to some plain servers (Python's http.server, test proxies) waits for a timeout.
//   - others, with --tls-verify=false: https first, plain http when TLS or the connection fails.
// The first request decides, once per Client. No credentials go with that first request.
//
// Retries: transport failures (resets, timeouts, cut bodies, refused connections), 5xx but
// 501/505, and 429 (waiting its Retry-After when given) are tried again after a jittered
// exponential backoff, `RetryPolicy::attempts` times in all; a stall (see TransferLimits) costs
// a whole stall limit, so it is tried `stallAttempts` times only. A 401 is answered by asking for
// a token again (once per request); other 4xx are final. The worst case, for a registry that
// accepts connections and never answers: stallAttempts × the stall limit, plus the backoff.

#include "grocker/error.hh"
#include "grocker/registry/credentials.hh"
#include "grocker/registry/http.hh"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace grocker::registry {

struct RetryPolicy {
    int attempts = 5;
    // Tries in all of a request whose transfers stall: the second one, on a fresh connection,
    // gets past a kept-alive connection that a NAT or proxy dropped silently.
    int stallAttempts = 2;
    std::chrono::milliseconds base{400}, max{15000};
    // A Retry-After longer than this is not waited for: the error says how long to wait.
    double maxRetryAfter = 120;
};
// The pause before retry number `retry` (1 for the first retry): base·2^(retry-1), capped,
// then a random part of it taken away ("equal jitter": between half and all of it).
std::chrono::milliseconds backoffDelay(const RetryPolicy& policy, int retry, std::mt19937_64& rng);
// Whether an HTTP status is worth another try.
bool retryableStatus(long status);
// Counts a failed try (`failures` tries failed, this one included; `stalls` of them stalled):
// whether the policy allows another.
bool retryTransportError(const RetryPolicy& policy, const TransportError& e, int failures,
                         int& stalls);

struct ClientOptions {
    AuthFileOptions auth;
    bool tlsVerify = true;
    std::filesystem::path certDir;
    RetryPolicy retry;
    // Default: transferLimitsFromEnvironment().
    std::optional<TransferLimits> limits;
};

// One entry of a registry's {"errors": [{"code", "message", "detail"}]}.
struct ApiError {
    std::string code, message;
};
std::vector<ApiError> parseApiErrors(std::string_view body);

// A registry answered with an error. The message names the registry, the request and the
// registry's errors[], with a hint for 401, 403, 404, 413 and 429; never a secret.
class RegistryError : public Error {
  public:
    RegistryError(std::string message, long status, std::vector<ApiError> errors)
        : Error(std::move(message)), status_(status), errors_(std::move(errors))
    {
    }
    long status() const { return status_; }
    const std::vector<ApiError>& errors() const { return errors_; }
    bool hasCode(std::string_view code) const;

  private:
    long status_;
    std::vector<ApiError> errors_;
};

// What a failed request was, for its message.
struct FailureContext {
    std::string registry;   // "127.0.0.1:5000"
    std::string repository; // "team/app", may be empty
    std::string method, url;
    std::string credentialsOrigin;  // where the refused credentials came from, if any
    bool insufficientScope = false; // a 401 whose challenge says error="insufficient_scope"
};
RegistryError makeRegistryError(const FailureContext& context, const HttpResponse& response);

class Client {
  public:
    // `domain` as in a reference: "docker.io" (talked to as registry-1.docker.io), "host:port".
    Client(std::string domain, ClientOptions options);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    const std::string& domain() const { return domain_; }
    // "https://registry-1.docker.io", "http://127.0.0.1:5000": decided by the first request.
    std::string baseUrl();

    struct Call {
        std::string method = "GET";
        std::string url; // "/v2/..." or an absolute URL (an upload Location)
        std::string repository;
        std::vector<std::string> scopes;
        std::vector<std::pair<std::string, std::string>> headers;
        // Follow 3xx answers (blob GETs), without Authorization to another origin.
        bool followRedirects = false;
        // Called before each try with the request to complete (body, Range, onBody, ...).
        std::function<void(HttpRequest&)> prepare;
        // Whether a transport failure may be tried again as it is (false for bodies that
        // cannot be sent twice: the caller resumes them itself).
        bool retryTransport = true;
        // Statuses returned to the caller rather than retried (e.g. a 5xx the caller resumes).
        std::function<bool(long)> noRetry;
    };
    // Sends the call, with authorization, answering 401s and retrying as said above; returns
    // the last answer whatever its status (see fail()). Throws a TransportError when the
    // registry could not be reached in the attempts allowed.
    HttpResponse send(const Call& call);
    // Throws the RegistryError describing this answer to the call.
    [[noreturn]] void fail(const Call& call, const HttpResponse& response);

    // Checks credentials against the registry as `grocker login` does: a token asked with
    // them, or GET /v2/ with Basic. Throws a RegistryError (with a hint) when refused.
    void checkLogin(const Credentials& credentials);

    // Transfers run together on several threads (one push's blobs, say): the first failure
    // stops the batch's other transfers soon, not those of another batch on this client (the
    // attestations pushed beside the signature). A thread's transfers are the batch's while a
    // Member of it lives in that thread; a batch made inside another is cancelled with it.
    class Batch {
      public:
        explicit Batch(Client& client);
        Batch(const Batch&) = delete;
        Batch& operator=(const Batch&) = delete;
        void cancel();

        class Member {
          public:
            explicit Member(Batch& batch);
            ~Member();
            Member(const Member&) = delete;
            Member& operator=(const Member&) = delete;

          private:
            const Batch* previous_;
        };

      private:
        friend class Client;
        Client& client_;
        const Batch* parent_;
        std::atomic<bool> cancelled_{false};
    };
    // Whether the calling thread's batch (or one it is inside) was cancelled.
    bool cancelled() const;
    // Sleeps, as backoff; cut short when the calling thread's batch is cancelled.
    void pause(std::chrono::milliseconds delay);

    const RetryPolicy& retryPolicy() const { return options_.retry; }
    const TransferLimits& limits() const { return *options_.limits; }
    std::chrono::milliseconds backoff(int retry);

    struct Impl; // opaque: the auth state, the connection pool

  private:
    std::string domain_;
    ClientOptions options_;
    std::unique_ptr<Impl> impl_;
};

} // namespace grocker::registry
