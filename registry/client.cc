#include "grocker/registry/client.hh"

#include "grocker/file.hh"
#include "grocker/oci/reference.hh"
#include "grocker/registry/auth.hh"
#include "grocker/strings.hh"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>

namespace grocker::registry {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::chrono::milliseconds backoffDelay(const RetryPolicy& policy, int retry, std::mt19937_64& rng)
{
    double full = double(policy.base.count()) * double(1ull << std::clamp(retry - 1, 0, 20));
    full = std::min(full, double(policy.max.count()));
    std::uniform_real_distribution<double> half(full / 2, full);
    return std::chrono::milliseconds(int64_t(half(rng)));
}

bool retryableStatus(long status)
{
    return status == 429 || (status >= 500 && status != 501 && status != 505);
}

bool retryTransportError(const RetryPolicy& policy, const TransportError& e, int failures,
                         int& stalls)
{
    if (e.kind() == TransportError::Kind::Stalled && ++stalls >= policy.stallAttempts) return false;
    return failures < policy.attempts;
}

std::vector<ApiError> parseApiErrors(std::string_view body)
{
    std::vector<ApiError> out;
    json j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return out;
    auto it = j.find("errors");
    if (it == j.end() || !it->is_array()) return out;
    for (auto& e : *it) {
        if (!e.is_object()) continue;
        ApiError a;
        if (auto c = e.find("code"); c != e.end() && c->is_string()) a.code = c->get<std::string>();
        if (auto m = e.find("message"); m != e.end() && m->is_string())
            a.message = m->get<std::string>();
        if (!a.code.empty() || !a.message.empty()) out.push_back(std::move(a));
    }
    return out;
}

bool RegistryError::hasCode(std::string_view code) const
{
    return std::any_of(errors_.begin(), errors_.end(),
                       [&](const ApiError& e) { return e.code == code; });
}

RegistryError makeRegistryError(const FailureContext& c, const HttpResponse& r)
{
    std::string url = c.url.starts_with("/") ? c.url.substr(0, c.url.find('?')) : redactUrl(c.url);
    // HTTP/2 has no reason phrases: the usual ones, for people reading the message.
    static const std::map<long, const char*> reasons = {
        {400, "Bad Request"},        {401, "Unauthorized"},
        {403, "Forbidden"},          {404, "Not Found"},
        {405, "Method Not Allowed"}, {409, "Conflict"},
        {413, "Payload Too Large"},  {416, "Range Not Satisfiable"},
        {429, "Too Many Requests"},  {500, "Internal Server Error"},
        {502, "Bad Gateway"},        {503, "Service Unavailable"},
        {504, "Gateway Timeout"}};
    std::string reason = r.reason;
    if (auto it = reasons.find(r.status); reason.empty() && it != reasons.end())
        reason = it->second;
    std::string msg = concat(c.registry, " answered ", r.status, reason.empty() ? "" : " " + reason,
                             " to ", c.method, " ", url);
    auto errors = parseApiErrors(r.body);
    if (!errors.empty()) {
        for (size_t i = 0; i < errors.size() && i < 5; i++) {
            msg += i ? "; " : ": ";
            msg += errors[i].code;
            if (!errors[i].message.empty())
                msg += (errors[i].code.empty() ? "" : ": ") + errors[i].message.substr(0, 300);
        }
    } else {
        // A proxy's plain-text answer says something; an HTML page says nothing useful.
        auto line = r.body.substr(0, r.body.find('\n'));
        while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
            line.pop_back();
        if (!line.empty() && line.find('<') == std::string::npos && line.find('{') != 0)
            msg += ": " + line.substr(0, 200);
    }
    std::string on = c.repository.empty() ? c.registry : c.registry + "/" + c.repository;
    switch (r.status) {
    case 401:
        if (c.insufficientScope && !c.credentialsOrigin.empty())
            msg += concat(
                "; the credentials from ", c.credentialsOrigin, " do not allow this on ", on,
                ": check the account's permissions, or log in as another user with 'grocker login ",
                c.registry, "'");
        else if (!c.credentialsOrigin.empty())
            msg += concat("; the credentials from ", c.credentialsOrigin,
                          " were refused: log in again with 'grocker login ", c.registry, "'");
        else
            msg +=
                concat("; log in with 'grocker login ", c.registry, "', or pass --authfile FILE");
        break;
    case 403:
        msg += concat("; the credentials used have no right to do this on ", on,
                      ": check the account's permissions");
        break;
    case 404:
        if (std::any_of(errors.begin(), errors.end(), [](auto& e) {
                return e.code == "MANIFEST_UNKNOWN" || e.code == "NAME_UNKNOWN";
            }))
            msg += concat("; check the repository name and the tag or digest (", on, ")");
        break;
    case 413:
        msg += "; the registry, or a proxy in front of it, refuses a body this large: raise its "
               "limit (nginx: "
               "client_max_body_size)";
        break;
    case 429: {
        auto ra = parseRetryAfter(r.header("retry-after"), std::time(nullptr));
        msg += concat("; the registry limits how often it may be asked: wait",
                      ra ? concat(" ", int64_t(*ra), " s") : std::string(), " and try again");
        break;
    }
    default:
        if (r.status >= 500)
            msg += "; the registry failed: try again later, or ask its administrators";
    }
    return RegistryError(scrubSecrets(msg), r.status, std::move(errors));
}

namespace {

bool debugEnabled()
{
    static bool on = [] {
        const char* d = std::getenv("GROCKER_DEBUG");
        return d && *d && std::string(d) != "0";
    }();
    return on;
}

void debug(const std::string& line)
{
    if (debugEnabled()) std::cerr << "grocker: debug: " + scrubSecrets(line) + "\n";
}

TlsOptions tlsFor(const std::string& domain, const ClientOptions& o)
{
    TlsOptions tls;
    tls.verify = o.tlsVerify;
    std::vector<fs::path> dirs;
    if (!o.certDir.empty())
        dirs.push_back(o.certDir);
    else
        dirs = {fs::path("/etc/containers/certs.d") / domain,
                fs::path("/etc/docker/certs.d") / domain};
    for (auto& dir : dirs) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) {
            if (!o.certDir.empty())
                throw UsageError("--cert-dir '", dir.string(), "' is not a folder");
            continue;
        }
        std::vector<fs::path> files;
        for (auto& e : fs::directory_iterator(dir, ec))
            files.push_back(e.path());
        std::sort(files.begin(), files.end());
        for (auto& f : files) {
            if (f.extension() == ".crt") tls.extraCAs += readFile(f) + "\n";
            if (f.extension() == ".cert") {
                auto key = fs::path(f).replace_extension(".key");
                if (!fs::exists(key, ec))
                    throw Error("client certificate '", f.string(), "' has no key beside it ('",
                                key.string(), "')");
                tls.clientCert = f;
                tls.clientKey = key;
            }
        }
    }
    return tls;
}

std::string apiHostOf(const std::string& domain)
{
    return domain == "docker.io" ? "registry-1.docker.io" : domain;
}

bool isRedirect(long s)
{
    return s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
}

} // namespace

struct Client::Impl {
    Impl(TlsOptions tls, TransferLimits limits)
        : http(std::move(tls), limits), rng(std::random_device{}())
    {
    }

    HttpClient http;
    std::mutex authMutex; // guards everything below but the atomics
    bool probed = false;
    std::string base;
    bool credsLoaded = false;
    Credentials creds;
    std::optional<Challenge> bearer, basic;
    std::string token;
    std::vector<std::string> allScopes;
    Clock::time_point expiry;

    std::mutex sleepMutex;
    std::condition_variable sleepCv;
    std::mutex rngMutex;
    std::mt19937_64 rng;
};

namespace {
ClientOptions withLimits(ClientOptions o)
{
    if (!o.limits) o.limits = transferLimitsFromEnvironment();
    return o;
}
} // namespace

Client::Client(std::string domain, ClientOptions options)
    : domain_(std::move(domain)), options_(withLimits(std::move(options))),
      impl_(std::make_unique<Impl>(tlsFor(domain_, options_), *options_.limits))
{
}

Client::~Client() = default;

std::chrono::milliseconds Client::backoff(int retry)
{
    std::lock_guard g(impl_->rngMutex);
    return backoffDelay(options_.retry, retry, impl_->rng);
}

namespace {
// The batch whose transfers the calling thread runs, if any.
thread_local const Client::Batch* currentBatch = nullptr;
} // namespace

Client::Batch::Batch(Client& client)
    : client_(client),
      parent_(currentBatch && &currentBatch->client_ == &client ? currentBatch : nullptr)
{
}

void Client::Batch::cancel()
{
    cancelled_ = true;
    std::lock_guard g(client_.impl_->sleepMutex);
    client_.impl_->sleepCv.notify_all();
}

Client::Batch::Member::Member(Batch& batch) : previous_(currentBatch)
{
    currentBatch = &batch;
}

Client::Batch::Member::~Member()
{
    currentBatch = previous_;
}

bool Client::cancelled() const
{
    for (auto* b = currentBatch; b && &b->client_ == this; b = b->parent_)
        if (b->cancelled_) return true;
    return false;
}

void Client::pause(std::chrono::milliseconds delay)
{
    std::unique_lock l(impl_->sleepMutex);
    impl_->sleepCv.wait_for(l, delay, [&] { return cancelled(); });
}

namespace {

// A request outside the registry API proper (the /v2/ probe, the token server), retried the
// same way.
HttpResponse performRetrying(Client& client, HttpClient& http, const HttpRequest& req,
                             bool retryRefused, bool probing = false)
{
    int stalls = 0;
    for (int retry = 0;; retry++) {
        try {
            auto r = http.perform(req);
            debug(concat(req.method, " ", redactUrl(req.url), " → ", r.status));
            if (!retryableStatus(r.status) || retry + 1 >= client.retryPolicy().attempts ||
                client.cancelled())
                return r;
            auto delay = client.backoff(retry + 1);
            if (auto ra = parseRetryAfter(r.header("retry-after"), std::time(nullptr))) {
                if (*ra > client.retryPolicy().maxRetryAfter) return r;
                delay = std::chrono::milliseconds(int64_t(*ra * 1000));
            }
            client.pause(delay);
        } catch (TransportError& e) {
            debug(concat(req.method, " ", redactUrl(req.url), " failed: ", e.message()));
            // Probing for the scheme, an answer that is not HTTP says "try the other one".
            bool again = e.kind() == TransportError::Kind::Transient ||
                         e.kind() == TransportError::Kind::Stalled ||
                         (retryRefused && e.kind() == TransportError::Kind::Refused) ||
                         (!probing && e.kind() == TransportError::Kind::Protocol);
            if (!again || !retryTransportError(client.retryPolicy(), e, retry + 1, stalls) ||
                client.cancelled())
                throw;
            client.pause(client.backoff(retry + 1));
        }
    }
}

} // namespace

// Under authMutex: GET /v2/ to learn the scheme and the authentication the registry wants.
static void probe(Client& client, Client::Impl& impl, const std::string& domain, bool tlsVerify)
{
    std::string host = apiHostOf(domain);
    bool loopback = isLoopbackHost(urlHost("//" + host));
    HttpRequest req;
    HttpResponse r;
    bool https = true;
    if (loopback) {
        req.url = "http://" + host + "/v2/";
        try {
            r = performRetrying(client, impl.http, req, false, true);
            // A TLS server spoken to in plain http answers 400 (Go's, nginx).
            https = r.status == 400;
        } catch (TransportError& e) {
            // No answer in plain http: https would fare no better.
            if (e.kind() == TransportError::Kind::Transient ||
                e.kind() == TransportError::Kind::Stalled) {
                e.addContext(concat("while contacting the registry ", domain));
                throw;
            }
        }
    }
    if (https) {
        req.url = "https://" + host + "/v2/";
        bool plainAllowed = !tlsVerify && !loopback;
        try {
            r = performRetrying(client, impl.http, req, !plainAllowed, plainAllowed);
        } catch (TransportError& e) {
            bool fallBack = plainAllowed && (e.kind() == TransportError::Kind::Tls ||
                                             e.kind() == TransportError::Kind::Refused ||
                                             e.kind() == TransportError::Kind::Protocol);
            if (!fallBack) {
                e.addContext(concat("while contacting the registry ", domain,
                                    loopback ? " (http, then https)" : ""));
                throw;
            }
            req.url = "http://" + host + "/v2/";
            try {
                r = performRetrying(client, impl.http, req, true, false);
                https = false;
            } catch (TransportError& e2) {
                e2.addContext(
                    concat("while contacting the registry ", domain, " (https, then http)"));
                throw;
            }
        }
    }
    impl.base = (https ? "https://" : "http://") + host;
    if (r.status == 401) {
        std::vector<Challenge> challenges;
        for (auto& h : r.headerValues("www-authenticate")) {
            auto cs = parseWwwAuthenticate(h);
            challenges.insert(challenges.end(), cs.begin(), cs.end());
        }
        for (auto& c : challenges) {
            if (c.scheme == "bearer" && !impl.bearer) impl.bearer = c;
            if (c.scheme == "basic" && !impl.basic) impl.basic = c;
        }
        if (!impl.bearer && !impl.basic)
            throw Error(
                "the registry ", domain, " asks for an authentication Grocker does not know (",
                r.header("www-authenticate").substr(0, 100), "); Bearer and Basic are supported");
    } else if (r.status == 404) {
        throw Error(domain, " is not a container registry (GET /v2/ answered 404): check the name");
    } else if (!r.ok()) {
        throw makeRegistryError(FailureContext{domain, "", "GET", "/v2/", ""}, r);
    }
    impl.probed = true;
}

// Under authMutex: a token for `scopes` from the bearer challenge's realm.
static void fetchToken(Client& client, Client::Impl& impl, const std::string& domain,
                       bool tlsVerify, const std::vector<std::string>& scopes)
{
    auto& b = *impl.bearer;
    std::string realm = b.param("realm"), service = b.param("service");
    if (realm.empty())
        throw Error("the registry ", domain,
                    " asks for a bearer token but names no realm to get it from");
    if (!realm.starts_with("https://") && !realm.starts_with("http://"))
        throw Error("the registry ", domain,
                    " names a token realm that is not an http(s) URL: ", redactUrl(realm));
    bool hasSecret = !impl.creds.empty();
    if (hasSecret && realm.starts_with("http://") && tlsVerify && !isLoopbackHost(urlHost(realm)))
        throw Error("the registry ", domain, " sends credentials to ", redactUrl(realm),
                    " over plain http; refused (pass --tls-verify=false if this is really wanted)");
    HttpRequest req;
    if (!impl.creds.identityToken.empty()) {
        // OAuth2 refresh-token grant (docker login against a token server that issued one).
        req.method = "POST";
        req.url = realm;
        std::string scopeText = join(scopes, " ");
        req.body = "grant_type=refresh_token&client_id=grocker&service=" + percentEncode(service) +
                   "&refresh_token=" + percentEncode(impl.creds.identityToken);
        if (!scopeText.empty()) req.body += "&scope=" + percentEncode(scopeText);
        req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    } else {
        req.url = realm;
        if (!service.empty()) req.url = addQuery(req.url, "service", service);
        for (auto& s : scopes)
            req.url = addQuery(req.url, "scope", s);
        if (!impl.creds.username.empty()) {
            req.url = addQuery(req.url, "account", impl.creds.username);
            auto basic = base64Encode(impl.creds.username + ":" + impl.creds.password);
            registerSecret(basic);
            req.headers.emplace_back("Authorization", "Basic " + basic);
        }
    }
    HttpResponse r;
    try {
        r = performRetrying(client, impl.http, req, true);
    } catch (TransportError& e) {
        e.addContext(concat("while asking ", redactUrl(realm), " for a token for ", domain));
        throw;
    }
    if (!r.ok()) {
        auto e =
            makeRegistryError(FailureContext{"the token server " + redactUrl(realm), "", req.method,
                                             realm, r.status == 401 ? impl.creds.origin : ""},
                              r);
        if (r.status == 401 && impl.creds.origin.empty())
            e = RegistryError(concat(e.message(), " (for ", domain, ")"), e.status(), e.errors());
        e.addContext(concat("while asking for a token for ", domain));
        throw e;
    }
    json j = json::parse(r.body, nullptr, false);
    std::string token;
    if (j.is_object()) {
        if (auto t = j.find("token"); t != j.end() && t->is_string()) token = t->get<std::string>();
        if (auto t = j.find("access_token"); token.empty() && t != j.end() && t->is_string())
            token = t->get<std::string>();
    }
    if (token.empty())
        throw Error("the token server ", redactUrl(realm), " for ", domain, " answered no token");
    registerSecret(token);
    // The token spec: 60 s when not said, and never less.
    int64_t expiresIn = 60;
    if (auto e = j.find("expires_in"); e != j.end() && e->is_number())
        expiresIn = std::max<int64_t>(60, e->get<int64_t>());
    impl.token = token;
    impl.expiry = Clock::now() + std::chrono::seconds(expiresIn);
    debug(concat("token for ", domain, " (", scopes.size(), " scopes, ", expiresIn, " s)"));
}

std::string Client::baseUrl()
{
    std::lock_guard g(impl_->authMutex);
    if (!impl_->probed) probe(*this, *impl_, domain_, options_.tlsVerify);
    return impl_->base;
}

namespace {

std::string authorizationFor(Client& client, Client::Impl& impl, const std::string& domain,
                             const ClientOptions& o, const std::vector<std::string>& scopes,
                             const std::string& repository)
{
    std::lock_guard g(impl.authMutex);
    if (!impl.probed) probe(client, impl, domain, o.tlsVerify);
    if (!impl.credsLoaded) {
        impl.creds = findCredentials(domain, repository, o.auth);
        impl.credsLoaded = true;
    }
    if (impl.bearer) {
        if (!impl.creds.registryToken.empty()) return "Bearer " + impl.creds.registryToken;
        bool fresh = !impl.token.empty() && Clock::now() + std::chrono::seconds(5) < impl.expiry;
        if (fresh && coversScopes(impl.allScopes, scopes)) return "Bearer " + impl.token;
        // One token for all this client does: re-asked with the union of every scope needed.
        auto want = unionScopes(impl.allScopes, scopes);
        fetchToken(client, impl, domain, o.tlsVerify, want);
        impl.allScopes = want;
        return "Bearer " + impl.token;
    }
    if (impl.basic && !impl.creds.username.empty()) {
        auto basic = base64Encode(impl.creds.username + ":" + impl.creds.password);
        registerSecret(basic);
        return "Basic " + basic;
    }
    return {};
}

// A 401: learns from its challenge; true when asking again may help.
bool answerChallenge(Client::Impl& impl, const HttpResponse& r, std::vector<std::string>& scopes,
                     const std::string& usedAuth)
{
    std::vector<Challenge> challenges;
    try {
        for (auto& h : r.headerValues("www-authenticate")) {
            auto cs = parseWwwAuthenticate(h);
            challenges.insert(challenges.end(), cs.begin(), cs.end());
        }
    } catch (Error&) {
        return false;
    }
    std::lock_guard g(impl.authMutex);
    for (auto& c : challenges)
        if (c.scheme == "bearer") {
            impl.bearer = c;
            scopes = unionScopes(scopes, splitScopes(c.param("scope")));
            // Another worker may have renewed the token already.
            if ("Bearer " + impl.token == usedAuth) impl.token.clear();
            return impl.creds.registryToken.empty();
        }
    for (auto& c : challenges)
        if (c.scheme == "basic") {
            bool first = !impl.basic;
            impl.basic = c;
            return first && !impl.creds.username.empty();
        }
    return false;
}

} // namespace

HttpResponse Client::send(const Call& call)
{
    auto scopes = call.scopes;
    bool reauthed = false;
    int stalls = 0;
    for (int retry = 0;;) {
        if (cancelled()) throw Error("cancelled");
        std::string auth =
            authorizationFor(*this, *impl_, domain_, options_, scopes, call.repository);
        std::string origin = urlOrigin(impl_->base);
        HttpRequest req;
        req.method = call.method;
        req.url = call.url.starts_with("/") ? impl_->base + call.url : call.url;
        req.headers = call.headers;
        if (call.prepare) call.prepare(req);
        HttpResponse r;
        try {
            for (int hop = 0;; hop++) {
                HttpRequest sent = req;
                // The token goes to the registry only, never to where it redirects (a CDN, S3).
                if (!auth.empty() && urlOrigin(sent.url) == origin)
                    sent.headers.emplace_back("Authorization", auth);
                r = impl_->http.perform(sent);
                debug(concat(sent.method, " ", redactUrl(sent.url), " → ", r.status,
                             r.httpVersion == 2 ? " (h2)" : ""));
                if (!call.followRedirects || !isRedirect(r.status) || r.header("location").empty())
                    break;
                if (hop >= 10) throw Error("too many redirects from ", redactUrl(call.url));
                auto next = resolveUrl(sent.url, r.header("location"));
                if (!next.starts_with("https://") && !next.starts_with("http://"))
                    throw Error(domain_, " redirected ", req.method, " ", redactUrl(call.url),
                                " to a URL that is not http(s)");
                if (next.starts_with("http://") && sent.url.starts_with("https://") &&
                    options_.tlsVerify)
                    throw Error(domain_, " redirected ", req.method, " ", redactUrl(call.url),
                                " from https to plain http; refused");
                if (r.status == 303) req.method = "GET";
                req.url = next;
            }
        } catch (TransportError& e) {
            debug(concat(req.method, " ", redactUrl(req.url), " failed: ", e.message()));
            if (e.transient() && call.retryTransport &&
                retryTransportError(options_.retry, e, ++retry, stalls) && !cancelled()) {
                pause(backoff(retry));
                continue;
            }
            throw;
        }
        if (r.status == 401 && !reauthed && answerChallenge(*impl_, r, scopes, auth)) {
            reauthed = true;
            continue;
        }
        if (retryableStatus(r.status) && !(call.noRetry && call.noRetry(r.status)) &&
            retry + 1 < options_.retry.attempts && !cancelled()) {
            auto delay = backoff(retry + 1);
            if (auto ra = parseRetryAfter(r.header("retry-after"), std::time(nullptr))) {
                if (*ra > options_.retry.maxRetryAfter) return r;
                delay = std::chrono::milliseconds(int64_t(*ra * 1000));
            }
            retry++;
            pause(delay);
            continue;
        }
        return r;
    }
}

void Client::fail(const Call& call, const HttpResponse& response)
{
    std::string url = call.url;
    std::string base;
    std::string origin;
    {
        std::lock_guard g(impl_->authMutex);
        base = impl_->base;
        if (response.status == 401) origin = impl_->creds.origin;
    }
    if (!base.empty() && url.starts_with(base + "/")) url = url.substr(base.size());
    bool insufficient = false;
    for (auto& h : response.headerValues("www-authenticate")) {
        try {
            for (auto& c : parseWwwAuthenticate(h))
                insufficient |= c.param("error") == "insufficient_scope";
        } catch (Error&) {
        }
    }
    throw makeRegistryError(
        FailureContext{domain_, call.repository, call.method, url, origin, insufficient}, response);
}

void Client::checkLogin(const Credentials& credentials)
{
    std::lock_guard g(impl_->authMutex);
    if (!impl_->probed) probe(*this, *impl_, domain_, options_.tlsVerify);
    impl_->creds = credentials;
    impl_->creds.origin = "the command line";
    impl_->credsLoaded = true;
    if (impl_->bearer) {
        fetchToken(*this, *impl_, domain_, options_.tlsVerify, {});
        return;
    }
    if (!impl_->basic) return; // the registry asks for nothing: any credentials do
    HttpRequest req;
    req.url = impl_->base + "/v2/";
    auto basic = base64Encode(credentials.username + ":" + credentials.password);
    registerSecret(basic);
    req.headers.emplace_back("Authorization", "Basic " + basic);
    auto r = performRetrying(*this, impl_->http, req, true);
    if (!r.ok())
        throw makeRegistryError(FailureContext{domain_, "", "GET", "/v2/", impl_->creds.origin}, r);
}

} // namespace grocker::registry
