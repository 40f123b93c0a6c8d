#include "upload.hh"

#include "grocker/error.hh"
#include "grocker/registry/auth.hh"
#include "text.hh"

#include <cerrno>
#include <functional>
#include <optional>
#include <unistd.h>

namespace grocker::registry {

using oci::Descriptor;
using oci::Digest;

void checkStoredDigest(const Client& c, const Digest& digest, const HttpResponse& r,
                       std::string_view what)
{
    std::string dcd(trim(r.header("docker-content-digest")));
    if (!dcd.empty() && Digest::valid(dcd) && Digest::parse(dcd) != digest)
        throw Error(c.domain(), " stored ", what, digest.str(), " as ", dcd,
                    "; the registry or a proxy altered it");
}

namespace {

Client::Call pushCall(const char* method, std::string url, const std::string& repo)
{
    Client::Call call;
    call.method = method;
    call.url = std::move(url);
    call.repository = repo;
    call.scopes = {repositoryScope(repo, true)};
    return call;
}

// Check: whether the registry has the blob already (HEAD).
bool blobExists(Client& c, const std::string& repo, const Descriptor& d)
{
    auto call = pushCall("HEAD", "/v2/" + repo + "/blobs/" + d.digest.str(), repo);
    auto r = c.send(call);
    if (r.status == 200) return true;
    if (r.status == 404) return false;
    c.fail(call, r);
}

// What a cross-repository mount came to: mounted, or declined with a fresh upload session
// (`location`), or neither.
struct MountResult {
    bool mounted = false;
    std::string from, location;
};

// Mount: the blob taken from another repository of this registry that the store saw it in,
// without sending its bytes.
MountResult tryMount(Client& c, oci::Store& store, const std::string& repo, const Descriptor& d)
{
    for (auto& s : store.sourcesOf(d.digest)) {
        auto slash = s.find('/');
        if (slash == std::string::npos || s.substr(0, slash) != c.domain() ||
            s.substr(slash + 1) == repo)
            continue;
        std::string from = s.substr(slash + 1);
        auto mount =
            pushCall("POST",
                     "/v2/" + repo + "/blobs/uploads/?mount=" + percentEncode(d.digest.str()) +
                         "&from=" + percentEncode(from),
                     repo);
        mount.scopes.push_back(repositoryScope(from, false));
        HttpResponse r;
        try {
            r = c.send(mount);
        } catch (RegistryError&) {
            continue; // no token for the other repository: upload instead
        }
        if (r.status == 201) return {true, from, ""};
        if (r.status == 202 && !r.header("location").empty())
            // Not mounted (the other repository lost it, say): the answer is a fresh upload.
            return {false, from, resolveUrl(c.baseUrl() + mount.url, r.header("location"))};
        if (r.status == 401 || r.status == 403 || r.status == 404) continue;
        c.fail(mount, r);
    }
    return {};
}

// Initiate: a new upload session (POST); returns its Location.
std::string initiateUpload(Client& c, const std::string& repo)
{
    auto call = pushCall("POST", "/v2/" + repo + "/blobs/uploads/", repo);
    auto r = c.send(call);
    if (r.status != 202) c.fail(call, r);
    if (r.header("location").empty())
        throw Error(c.domain(), " started an upload to ", repo, " without a Location");
    return resolveUrl(c.baseUrl() + call.url, r.header("location"));
}

// Stream and commit: a blob's bytes through one upload session.
class Upload {
  public:
    Upload(Client& c, const std::string& repo, const Descriptor& d, int fd, const Options& o,
           Progress& progress, int id)
        : c_(c), repo_(repo), d_(d), size_(uint64_t(d.size)), fd_(fd), o_(o), progress_(progress),
          id_(id)
    {
    }

    // Sends the whole blob to the session at `location` and commits it; throws a RegistryError
    // or TransportError.
    void run(std::string location)
    {
        location_ = std::move(location);
        if (size_ <= o_.monolithicMax) {
            putWhole();
        } else {
            streamChunks();
            commit();
        }
    }

  private:
    // The body of a request: `len` bytes of the blob from `start`, read where curl asks.
    std::function<size_t(uint64_t, char*, size_t)> reader(uint64_t start, uint64_t len)
    {
        return [this, start, len](uint64_t offset, char* buf, size_t max) -> size_t {
            size_t want = size_t(std::min<uint64_t>(max, len - std::min(offset, len)));
            if (!want) return 0;
            ssize_t n;
            while ((n = ::pread(fd_, buf, want, off_t(start + offset))) < 0 && errno == EINTR) {
            }
            if (n < 0) throw SysError("unable to read blob ", d_.digest.str(), " from the store");
            if (n == 0)
                throw Error("blob ", d_.digest.str(), " in the store is shorter than its ", size_,
                            " bytes");
            return size_t(n);
        };
    }

    // A request whose body is `len` bytes of the blob from `start`, progress shown as it goes.
    Client::Call bodyCall(const char* method, std::string url, uint64_t start, uint64_t len)
    {
        auto call = pushCall(method, std::move(url), repo_);
        call.headers = {{"Content-Type", "application/octet-stream"}};
        // The body cannot be sent twice as it is: the caller resumes or restarts it.
        call.retryTransport = false;
        call.prepare = [this, start, len](HttpRequest& req) {
            req.bodySource = reader(start, len);
            req.bodySize = len;
            req.onProgress = [this, start](uint64_t sent, uint64_t) {
                progress_.update(id_, start + sent);
                return !c_.cancelled();
            };
        };
        return call;
    }

    // Small blobs: streamed and committed in one PUT with the bytes and the digest. A failure
    // starts a fresh session (uploadRetrying).
    void putWhole()
    {
        auto put = bodyCall("PUT", addQuery(location_, "digest", d_.digest.str()), 0, size_);
        auto r = c_.send(put);
        if (r.status != 201) c_.fail(put, r);
        checkStoredDigest(c_, d_.digest, r);
    }

    // Large blobs: PATCH chunk after chunk, the offset kept here (registry 2.8 ignores
    // Content-Range); after a failure, resumed where the registry says it stands.
    void streamChunks()
    {
        uint64_t offset = 0;
        int failures = 0, stalls = 0;
        while (offset < size_) {
            uint64_t len = std::min(o_.chunkSize, size_ - offset);
            auto patch = bodyCall("PATCH", location_, offset, len);
            patch.headers.emplace_back("Content-Range", concat(offset, "-", offset + len - 1));
            patch.noRetry = [](long) { return true; };
            std::optional<TransportError> cut;
            std::optional<HttpResponse> failed;
            try {
                auto r = c_.send(patch);
                if (r.status == 202) {
                    offset = accepted(r, offset + len);
                    failures = 0;
                    continue;
                }
                if (!retryableStatus(r.status)) c_.fail(patch, r);
                failed = r;
            } catch (TransportError& e) {
                if (!e.transient()) throw;
                cut = e;
            }
            ++failures;
            if (failed && failures >= c_.retryPolicy().attempts) c_.fail(patch, *failed);
            if (cut && !retryTransportError(c_.retryPolicy(), *cut, failures, stalls)) throw *cut;
            c_.pause(c_.backoff(failures));
            offset = resumeFromStatus();
        }
    }

    // A chunk taken: the newest Location, and the offset to go on from (`sent` unless the
    // registry counts otherwise).
    uint64_t accepted(const HttpResponse& r, uint64_t sent)
    {
        if (!r.header("location").empty()) location_ = resolveUrl(location_, r.header("location"));
        // The registry appends whatever it is sent: if it counts otherwise, it is right.
        if (auto held = parseUploadRange(r.header("range")); held && *held > 0 && *held <= size_)
            return *held;
        return sent;
    }

    // GET <location>: how much the registry holds (Range) and the newest Location.
    uint64_t resumeFromStatus()
    {
        auto get = pushCall("GET", location_, repo_);
        auto r = c_.send(get);
        if (r.status != 204 && r.status != 200) c_.fail(get, r);
        if (!r.header("location").empty()) location_ = resolveUrl(location_, r.header("location"));
        auto held = parseUploadRange(r.header("range"));
        return held && *held <= size_ ? *held : 0;
    }

    // Commit: closes the session with PUT, the digest and no body. Repeating it is harmless.
    void commit()
    {
        auto put = pushCall("PUT", addQuery(location_, "digest", d_.digest.str()), repo_);
        put.headers = {{"Content-Type", "application/octet-stream"}};
        auto r = c_.send(put);
        if (r.status == 404 && blobExists(c_, repo_, d_)) return; // an earlier try went through
        if (r.status != 201) c_.fail(put, r);
        checkStoredDigest(c_, d_.digest, r);
    }

    Client& c_;
    const std::string& repo_;
    const Descriptor& d_;
    uint64_t size_;
    int fd_;
    const Options& o_;
    Progress& progress_;
    int id_;
    std::string location_;
};

// A session the registry lost or found wrong: worth starting again from the beginning.
bool restartable(const RegistryError& e)
{
    return e.hasCode("DIGEST_INVALID") || e.hasCode("SIZE_INVALID") ||
           e.hasCode("BLOB_UPLOAD_UNKNOWN") || e.hasCode("BLOB_UPLOAD_INVALID") ||
           retryableStatus(e.status());
}

// Initiate, stream and commit, retried as one under the client's RetryPolicy: each restart is
// a fresh session after a backoff. `location`: a session open already (a declined mount's).
void uploadRetrying(Client& c, const std::string& repo, const Descriptor& d, Upload& upload,
                    std::string location)
{
    int stalls = 0;
    for (int restart = 1;; restart++) {
        if (location.empty()) location = initiateUpload(c, repo);
        try {
            upload.run(location);
            return;
        } catch (RegistryError& e) {
            if (!restartable(e) || restart >= c.retryPolicy().attempts || c.cancelled()) throw;
        } catch (TransportError& e) {
            if (!e.transient() || !retryTransportError(c.retryPolicy(), e, restart, stalls) ||
                c.cancelled())
                throw;
            // The bytes may all have arrived before the answer was lost.
            if (blobExists(c, repo, d)) return;
        }
        location.clear();
        c.pause(c.backoff(restart));
    }
}

} // namespace

void pushBlob(Client& c, oci::Store& store, const std::string& repo, const Descriptor& d,
              const std::string& name, const Options& o, Progress& progress, bool probe)
{
    std::string source = c.domain() + "/" + repo;
    try {
        if (probe && blobExists(c, repo, d)) {
            progress.skipped(name, uint64_t(d.size), "already in " + source);
            store.recordSource(d.digest, source);
            return;
        }
        auto mount = tryMount(c, store, repo, d);
        if (mount.mounted) {
            progress.skipped(name, uint64_t(d.size), "mounted from " + mount.from);
            store.recordSource(d.digest, source);
            return;
        }
        auto fd = store.openBlob(d.digest, name);
        int id = progress.start(name, uint64_t(d.size));
        Upload upload(c, repo, d, fd.get(), o, progress, id);
        uploadRetrying(c, repo, d, upload, std::move(mount.location));
        progress.done(id);
        store.recordSource(d.digest, source);
    } catch (UsageError&) {
        throw;
    } catch (Error& e) {
        if (e.message() != "cancelled") e.addContext("while pushing " + name + " to " + source);
        throw;
    }
}

} // namespace grocker::registry
