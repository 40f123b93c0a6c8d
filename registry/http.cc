#include "grocker/registry/http.hh"

#include "grocker/file.hh"
#include "grocker/registry/progress.hh"
#include "text.hh"

#include <cstdlib>
#include <cstring>
#include <curl/curl.h>
#include <exception>
#include <mutex>
#include <vector>

namespace grocker::registry {

namespace {

std::once_flag curlInit;

// The system's CA bundle, read once, for CURLOPT_CAINFO_BLOB when extra CAs are added to it.
std::string systemCAs()
{
    for (const char* p : {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                          "/etc/ssl/cert.pem"}) {
        std::error_code ec;
        if (std::filesystem::exists(p, ec)) return readFile(p);
    }
    return {};
}

using Clock = std::chrono::steady_clock;

// What one transfer needs in libcurl's callbacks.
struct Transfer {
    const HttpRequest& req;
    const TransferLimits& limits;
    HttpResponse resp;
    std::exception_ptr error;
    uint64_t uploaded = 0; // bytes of the body handed to curl
    uint64_t headerBytes = 0;

    // The stall watchdog: bytes moved (request body sent + answer body received) since the
    // window opened, checked once a window is `limits.stall` long. It opens once connected:
    // connecting has its own limit.
    bool connected = false;
    Clock::time_point windowStart;
    uint64_t windowMoved = 0, windowHeaders = 0;
    std::string stalled; // why the watchdog cut the transfer
};

std::optional<uint64_t> contentLength(const HttpResponse& r)
{
    auto header = r.header("content-length"); // kept: trim's view points into it
    return parseDecimal(trim(header));
}

BodyTooLargeError bodyTooLarge(const Transfer& t, std::optional<uint64_t> declared)
{
    return BodyTooLargeError(
        concat(t.req.method, " ", redactUrl(t.req.url), ": ", urlPeer(t.req.url), " answered ",
               declared ? concat("a body of ", *declared, " bytes (Content-Length)")
                        : std::string("a body still going"),
               ", over the ", t.req.maxBody, " bytes allowed"),
        declared);
}

size_t onHeader(char* data, size_t size, size_t n, void* p)
{
    auto& t = *static_cast<Transfer*>(p);
    std::string_view line(data, size * n);
    t.headerBytes += line.size();
    t.windowHeaders += line.size();
    if (t.headerBytes > t.limits.maxHeaderBytes) {
        t.error = std::make_exception_ptr(TransportError(
            TransportError::Kind::Fatal,
            concat(t.req.method, " ", redactUrl(t.req.url), ": ", urlPeer(t.req.url),
                   " sent more than ", t.limits.maxHeaderBytes,
                   " bytes of headers, which no registry does: check the registry's address")));
        return 0; // aborts the transfer
    }
    if (line == "\r\n" || line == "\n") {
        // The head is whole: a body announced too large is refused before any of it is read.
        auto length = contentLength(t.resp);
        if (t.req.refuseOverMax && t.resp.ok() && length && *length > t.req.maxBody) {
            t.error = std::make_exception_ptr(bodyTooLarge(t, length));
            return 0;
        }
        return size * n;
    }
    if (line.starts_with("HTTP/")) {
        // A new response (after a 100 Continue, say): forget the previous one's headers.
        t.resp.headers.clear();
        auto sp = line.find(' ');
        auto rest = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
        auto sp2 = rest.find(' ');
        // The status now: the body callback needs it before the transfer ends.
        auto code = trim(rest.substr(0, sp2));
        t.resp.status =
            code.size() == 3 && code.find_first_not_of("0123456789") == std::string_view::npos
                ? std::stol(std::string(code))
                : 0;
        t.resp.reason =
            sp2 == std::string_view::npos ? "" : std::string(trim(rest.substr(sp2 + 1)));
        return size * n;
    }
    auto colon = line.find(':');
    if (colon != std::string_view::npos)
        t.resp.headers.emplace_back(lower(trim(line.substr(0, colon))),
                                    std::string(trim(line.substr(colon + 1))));
    return size * n;
}

size_t onWrite(char* data, size_t size, size_t n, void* p)
{
    auto& t = *static_cast<Transfer*>(p);
    size_t len = size * n;
    try {
        if (t.req.onBody && t.resp.ok()) {
            t.req.onBody(t.resp, data, len);
        } else if (t.req.refuseOverMax && t.resp.ok() && t.resp.body.size() + len > t.req.maxBody) {
            throw bodyTooLarge(t, std::nullopt);
        } else if (t.resp.body.size() < t.req.maxBody) {
            t.resp.body.append(data, std::min(len, t.req.maxBody - t.resp.body.size()));
        }
    } catch (...) {
        t.error = std::current_exception();
        return 0; // any other count aborts the transfer
    }
    return len;
}

size_t onRead(char* buf, size_t size, size_t n, void* p)
{
    auto& t = *static_cast<Transfer*>(p);
    size_t len = size * n;
    try {
        if (t.req.bodySource) {
            size_t got = t.req.bodySource(t.uploaded, buf, len);
            t.uploaded += got;
            return got;
        }
        size_t k = size_t(std::min<uint64_t>(len, t.req.body.size() - t.uploaded));
        memcpy(buf, t.req.body.data() + t.uploaded, k);
        t.uploaded += k;
        return k;
    } catch (...) {
        t.error = std::current_exception();
        return CURL_READFUNC_ABORT;
    }
}

int onSeek(void* p, curl_off_t offset, int origin)
{
    auto& t = *static_cast<Transfer*>(p);
    // libcurl rewinds to send a body again on a fresh connection when a kept-alive one died.
    // Not for streamed bodies (blob uploads): the registry may have appended what it got, so
    // the caller asks it where the upload stands instead (CURLE_SEND_FAIL_REWIND, transient).
    if (t.req.bodySource || origin != SEEK_SET || offset < 0 ||
        uint64_t(offset) > t.req.body.size())
        return CURL_SEEKFUNC_CANTSEEK;
    t.uploaded = size_t(offset);
    return CURL_SEEKFUNC_OK;
}

// Called once connected, before the request is sent.
int onConnected(void* p, char*, char*, int, int)
{
    auto& t = *static_cast<Transfer*>(p);
    t.connected = true;
    t.windowStart = Clock::now();
    return CURL_PREREQFUNC_OK;
}

// Called at least once a second, even when nothing moves.
int onProgress(void* p, curl_off_t, curl_off_t received, curl_off_t ulTotal, curl_off_t sent)
{
    auto& t = *static_cast<Transfer*>(p);
    if (t.connected) {
        auto now = Clock::now();
        uint64_t moved = uint64_t(sent) + uint64_t(received);
        if (now - t.windowStart >= t.limits.stall) {
            uint64_t inWindow = moved - t.windowMoved;
            if (inWindow < t.limits.minSpeed * uint64_t(t.limits.stall.count())) {
                t.stalled = stallMessage(urlPeer(t.req.url), t.limits, true, sent < ulTotal,
                                         inWindow, t.windowHeaders);
                return 1;
            }
            t.windowStart = now;
            t.windowMoved = moved;
            t.windowHeaders = 0;
        }
    }
    if (!t.req.onProgress) return 0;
    try {
        return t.req.onProgress(uint64_t(sent), uint64_t(received)) ? 0 : 1;
    } catch (...) {
        t.error = std::current_exception();
        return 1;
    }
}

TransportError::Kind kindOf(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        return TransportError::Kind::Refused;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SEND_FAIL_REWIND:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return TransportError::Kind::Transient;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return TransportError::Kind::Protocol;
    case CURLE_SSL_CONNECT_ERROR:
        return TransportError::Kind::Tls;
    default:
        return TransportError::Kind::Fatal;
    }
}

std::string hintFor(CURLcode rc, std::string_view peer)
{
    if (peer != "registry") {
        if (rc == CURLE_COULDNT_RESOLVE_HOST) return concat("; check the ", peer, "'s name");
        if (rc == CURLE_COULDNT_CONNECT) return concat("; is the ", peer, " up and reachable?");
        return {};
    }
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
        return "; the registry's certificate is not trusted: pass --cert-dir with its CA, or "
               "--tls-verify=false "
               "for a registry you trust";
    case CURLE_COULDNT_RESOLVE_HOST:
        return "; check the registry's name";
    case CURLE_COULDNT_CONNECT:
        return "; is the registry running and reachable?";
    case CURLE_SSL_CONNECT_ERROR:
        return "; the server may not speak TLS: pass --tls-verify=false for a plain HTTP registry";
    default:
        return {};
    }
}

} // namespace

TransferLimits transferLimitsFromEnvironment()
{
    TransferLimits limits;
    const char* v = std::getenv("GROCKER_REGISTRY_TIMEOUT");
    if (!v || !*v) return limits;
    std::string_view text(v);
    if (text.size() > 4 || text.find_first_not_of("0123456789") != std::string_view::npos ||
        std::stoi(std::string(text)) < 1 || std::stoi(std::string(text)) > 3600)
        throw UsageError("GROCKER_REGISTRY_TIMEOUT='", text,
                         "' is not a number of seconds from 1 to 3600");
    limits.connect = limits.stall = std::chrono::seconds(std::stoi(std::string(text)));
    return limits;
}

std::string stallMessage(std::string_view peer, const TransferLimits& limits, bool connected,
                         bool sending, uint64_t moved, uint64_t headerBytes)
{
    std::string what;
    if (!connected)
        what = concat("no connection to ", peer, " within ", limits.connect.count(), " s");
    else if (moved == 0 && headerBytes > 0)
        what = concat(peer, " sent only ", headerBytes, " bytes of headers in ",
                      limits.stall.count(), " s");
    else if (moved == 0)
        what = concat(peer, sending ? " took nothing for " : " sent nothing for ",
                      limits.stall.count(), " s");
    else
        what = concat(peer, sending ? " took only " : " sent only ", moved, " bytes in ",
                      limits.stall.count(), " s (under ", Progress::formatBytes(limits.minSpeed),
                      "/s)");
    return concat(what, "; check that it is up and reachable, or raise GROCKER_REGISTRY_TIMEOUT (",
                  connected ? limits.stall.count() : limits.connect.count(), " s now)");
}

std::string HttpResponse::header(std::string_view name) const
{
    for (auto& [k, v] : headers)
        if (k == name) return v;
    return {};
}

std::vector<std::string> HttpResponse::headerValues(std::string_view name) const
{
    std::vector<std::string> out;
    for (auto& [k, v] : headers)
        if (k == name) out.push_back(v);
    return out;
}

struct HttpClient::Impl {
    TlsOptions tls;
    TransferLimits limits;
    std::string caBlob;
    CURLSH* share = nullptr;
    std::mutex locks[CURL_LOCK_DATA_LAST];
    std::mutex poolMutex;
    std::vector<CURL*> pool;

    static void lock(CURL*, curl_lock_data data, curl_lock_access, void* p)
    {
        static_cast<Impl*>(p)->locks[data].lock();
    }
    static void unlock(CURL*, curl_lock_data data, void* p)
    {
        static_cast<Impl*>(p)->locks[data].unlock();
    }

    CURL* take()
    {
        {
            std::lock_guard g(poolMutex);
            if (!pool.empty()) {
                CURL* h = pool.back();
                pool.pop_back();
                return h;
            }
        }
        CURL* h = curl_easy_init();
        if (!h) throw Error("unable to start a libcurl transfer (out of memory?)");
        return h;
    }
    void give(CURL* h)
    {
        // curl_easy_reset keeps the live connections, which is why handles are pooled.
        curl_easy_reset(h);
        std::lock_guard g(poolMutex);
        pool.push_back(h);
    }

    // A pooled handle for one request, given back when the request is over.
    struct Lease {
        Impl& impl;
        CURL* h;
        explicit Lease(Impl& i) : impl(i), h(i.take()) {}
        ~Lease() { impl.give(h); }
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
    };

    void setTransport(CURL* h, const HttpRequest& req, Transfer& t, char* errbuf);
};

HttpClient::HttpClient(TlsOptions tls, TransferLimits limits) : impl_(std::make_unique<Impl>())
{
    impl_->limits = limits;
    std::call_once(curlInit, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    impl_->tls = std::move(tls);
    if (!impl_->tls.extraCAs.empty()) impl_->caBlob = systemCAs() + "\n" + impl_->tls.extraCAs;
    impl_->share = curl_share_init();
    curl_share_setopt(impl_->share, CURLSHOPT_LOCKFUNC, &Impl::lock);
    curl_share_setopt(impl_->share, CURLSHOPT_UNLOCKFUNC, &Impl::unlock);
    curl_share_setopt(impl_->share, CURLSHOPT_USERDATA, impl_.get());
    curl_share_setopt(impl_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(impl_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
}

HttpClient::~HttpClient()
{
    for (CURL* h : impl_->pool)
        curl_easy_cleanup(h);
    curl_share_cleanup(impl_->share);
}

// Where the request goes, over which protocols, within which limits, trusting which
// certificates.
void HttpClient::Impl::setTransport(CURL* h, const HttpRequest& req, Transfer& t, char* errbuf)
{
    curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(h, CURLOPT_SHARE, share);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, long(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, long(CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, long(limits.connect.count()));
    // Stalls are the watchdog's, in onProgress, not libcurl's LOW_SPEED options: their error
    // says "too slow" alike for a peer that said nothing, dripped its headers or sent too few
    // bytes, and the message must tell which.
    curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, &onConnected);
    curl_easy_setopt(h, CURLOPT_PREREQDATA, &t);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    // Large buffers: fewer callbacks and syscalls on fast links.
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, tls.verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, tls.verify ? 2L : 0L);
    if (!caBlob.empty()) {
        // NOCOPY: the bytes live as long as this client; libcurl copies the struct itself.
        curl_blob blob{caBlob.data(), caBlob.size(), CURL_BLOB_NOCOPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (!tls.clientCert.empty()) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, tls.clientCert.c_str());
        curl_easy_setopt(h, CURLOPT_SSLKEY, tls.clientKey.c_str());
    }
}

namespace {

// The callbacks that fill the answer, feed the body and watch for stalls.
void setCallbacks(CURL* h, Transfer& t)
{
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &onHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &onWrite);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, &onRead);
    curl_easy_setopt(h, CURLOPT_READDATA, &t);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, &onSeek);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, &t);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &onProgress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
}

// The method, and the size of the body it sends.
void setMethod(CURL* h, const HttpRequest& req)
{
    curl_off_t bodySize = curl_off_t(req.bodySource ? req.bodySize : req.body.size());
    bool hasBody = req.bodySource || !req.body.empty();
    if (req.method == "GET") {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (req.method == "HEAD") {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (req.method == "POST") {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, bodySize);
    } else if (req.method == "PUT" || req.method == "PATCH") {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, bodySize);
        if (req.method == "PATCH") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PATCH");
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
        if (hasBody) {
            curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, bodySize);
        }
    }
}

using HeaderList = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

// The request's headers as libcurl takes them, with the ones libcurl would add unasked removed.
HeaderList headerList(const HttpRequest& req)
{
    HeaderList list(nullptr, &curl_slist_free_all);
    auto append = [&](const std::string& line) {
        curl_slist* grown = curl_slist_append(list.get(), line.c_str());
        if (!grown) throw Error("unable to build the headers of a request (out of memory?)");
        list.release();
        list.reset(grown);
    };
    // Bodies are sent at once: every request is authorised beforehand, so waiting for a
    // 100 Continue only costs a round trip.
    append("Expect:");
    bool hasContentType = false;
    for (auto& [k, v] : req.headers) {
        hasContentType |= lower(k) == "content-type";
        append(k + ": " + v);
    }
    bool hasBody = req.bodySource || !req.body.empty();
    if (req.method == "POST" && !hasContentType && !hasBody) append("Content-Type:");
    return list;
}

// Throws what ended the transfer early: a callback's exception, the stall watchdog, or
// libcurl's error with a hint.
void throwIfFailed(CURLcode rc, const Transfer& t, const char* errbuf, const TransferLimits& limits)
{
    const HttpRequest& req = t.req;
    if (t.error) std::rethrow_exception(t.error);
    if (!t.stalled.empty())
        throw TransportError(TransportError::Kind::Stalled,
                             concat(req.method, " ", redactUrl(req.url), ": ", t.stalled));
    if (rc == CURLE_OPERATION_TIMEDOUT && !t.connected)
        throw TransportError(TransportError::Kind::Stalled,
                             concat(req.method, " ", redactUrl(req.url), ": ",
                                    stallMessage(urlPeer(req.url), limits, false, false, 0, 0)));
    if (rc != CURLE_OK) {
        std::string detail = errbuf[0] ? std::string(errbuf) : curl_easy_strerror(rc);
        while (!detail.empty() && detail.back() == '\n')
            detail.pop_back();
        throw TransportError(kindOf(rc), concat(req.method, " ", redactUrl(req.url), ": ", detail,
                                                hintFor(rc, req.peer)));
    }
}

} // namespace

HttpResponse HttpClient::perform(const HttpRequest& req)
{
    Impl::Lease lease(*impl_);
    Transfer t{req, impl_->limits};
    char errbuf[CURL_ERROR_SIZE] = "";
    impl_->setTransport(lease.h, req, t, errbuf);
    setCallbacks(lease.h, t);
    setMethod(lease.h, req);
    auto headers = headerList(req);
    curl_easy_setopt(lease.h, CURLOPT_HTTPHEADER, headers.get());

    throwIfFailed(curl_easy_perform(lease.h), t, errbuf, impl_->limits);
    curl_easy_getinfo(lease.h, CURLINFO_RESPONSE_CODE, &t.resp.status);
    long version = 0;
    curl_easy_getinfo(lease.h, CURLINFO_HTTP_VERSION, &version);
    t.resp.httpVersion = version == CURL_HTTP_VERSION_2_0 ? 2 : 1;
    return std::move(t.resp);
}

} // namespace grocker::registry
