#include "grocker/registry/registry.hh"

#include "grocker/error.hh"
#include "grocker/registry/auth.hh"
#include "grocker/registry/progress.hh"
#include "grocker/strings.hh"
#include "text.hh"
#include "upload.hh"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <set>
#include <sys/statvfs.h>
#include <thread>
#include <unistd.h>

namespace grocker::registry {

namespace fs = std::filesystem;
using oci::Descriptor;
using oci::Digest;

namespace {

const std::string acceptManifests =
    std::string(oci::media::ociManifest) + ", " + std::string(oci::media::ociIndex) + ", " +
    std::string(oci::media::dockerManifest) + ", " + std::string(oci::media::dockerManifestList);
constexpr size_t maxManifest = 4 << 20;

// Runs job(0..count-1) on up to `workers` threads. The first failure cancels the other
// transfers of this batch (not those another thread runs on the client) and is the one thrown.
template <typename F> void runParallel(size_t count, unsigned workers, Client& client, F&& job)
{
    std::atomic<size_t> next{0};
    std::mutex m;
    std::exception_ptr first;
    Client::Batch batch(client);
    auto work = [&] {
        Client::Batch::Member member(batch);
        for (;;) {
            size_t i = next++;
            if (i >= count) return;
            {
                std::lock_guard g(m);
                if (first) return;
            }
            try {
                job(i);
            } catch (...) {
                std::lock_guard g(m);
                if (!first) {
                    first = std::current_exception();
                    batch.cancel();
                }
            }
        }
    };
    std::vector<std::thread> threads;
    size_t n = std::min<size_t>(std::max(workers, 1u), count);
    for (size_t t = 1; t < n; t++)
        threads.emplace_back(work);
    work();
    for (auto& t : threads)
        t.join();
    if (first) std::rethrow_exception(first);
}

// Adds "while ..." and scrubs secrets; a UsageError stays one (exit 2).
template <typename F> auto withContext(const std::string& context, F&& f) -> decltype(f())
{
    try {
        return f();
    } catch (UsageError&) {
        throw;
    } catch (RegistryError& e) {
        // Kept as what it is: callers tell a missing image (404) from a failure by its status.
        // Its message never holds a secret (makeRegistryError).
        e.addContext(scrubSecrets(context));
        throw;
    } catch (TransportError& e) {
        e.addContext(scrubSecrets(context));
        throw;
    } catch (Error& e) {
        throw Error(scrubSecrets(context + ": " + e.message()));
    }
}

std::string label(const char* kind, const Descriptor& d)
{
    return std::string(kind) + " " + d.digest.algorithm() + ":" + d.digest.shortHex();
}

struct FetchedManifest {
    std::string bytes, mediaType;
    Digest digest;
};

FetchedManifest getManifest(Client& c, const std::string& repo, const std::string& reference,
                            const std::optional<Digest>& expected, const std::string& what)
{
    if (expected && expected->algorithm() != "sha256")
        throw Error("cannot verify ", what, ": digest algorithm '", expected->algorithm(),
                    "' is not supported (sha256 is)");
    Client::Call call;
    call.url = "/v2/" + repo + "/manifests/" + reference;
    call.repository = repo;
    call.scopes = {repositoryScope(repo, false)};
    call.headers = {{"Accept", acceptManifests}};
    call.prepare = [](HttpRequest& req) {
        req.maxBody = maxManifest;
        req.refuseOverMax = true;
    };
    HttpResponse r;
    try {
        r = c.send(call);
    } catch (BodyTooLargeError& e) {
        // Refused before reading it (its Content-Length), or once past the limit: a registry
        // must not make a pull read gigabytes into memory.
        throw Error(c.domain(), " sent ", what, " of ", repo, ":", reference, " with ",
                    e.declared() ? concat(*e.declared(), " bytes (its Content-Length)")
                                 : std::string("a body that goes on"),
                    ", over the ", maxManifest, " bytes a manifest may have; refused: check the ",
                    "reference, and the registry or a proxy in front of it");
    }
    if (!r.ok()) c.fail(call, r);
    FetchedManifest m;
    m.bytes = std::move(r.body);
    m.digest = oci::sha256(m.bytes);
    if (expected && *expected != m.digest)
        throw Error(c.domain(), " sent ", what, " with digest ", m.digest.str(), " instead of ",
                    expected->str(), "; the registry or a proxy altered it");
    std::string dcd(trim(r.header("docker-content-digest")));
    if (!dcd.empty() && Digest::valid(dcd)) {
        auto d = Digest::parse(dcd);
        if (d.algorithm() == "sha256" && d != m.digest)
            throw Error(c.domain(), " sent ", what, " whose bytes have digest ", m.digest.str(),
                        " but its Docker-Content-Digest says ", d.str(),
                        "; the registry or a proxy altered it");
    }
    auto contentType = r.header("content-type");
    std::string ct(trim(contentType.substr(0, contentType.find(';'))));
    if (oci::media::isManifest(ct) || oci::media::isIndex(ct))
        m.mediaType = ct;
    else if (ct.find("prettyjws") != std::string::npos ||
             ct == "application/vnd.docker.distribution.manifest.v1+json")
        throw Error(what, " is a Docker schema 1 manifest, which Grocker does not read; push the "
                          "image again with a "
                          "recent client");
    else
        m.mediaType = oci::sniffMediaType(m.bytes, what);
    return m;
}

// GET a blob into the store, resuming after cuts; returns false when the bytes were whole but
// wrong (nothing is stored then).
bool fetchBlobOnce(Client& c, oci::Store& store, const std::string& repo, const Descriptor& d,
                   const std::string& name, Progress& progress, int id, bool lastTry)
{
    std::string what = name + " of " + c.domain() + "/" + repo;
    auto w = store.newBlob();
    const uint64_t size = uint64_t(d.size);
    Client::Call call;
    call.url = "/v2/" + repo + "/blobs/" + d.digest.str();
    call.repository = repo;
    call.scopes = {repositoryScope(repo, false)};
    call.followRedirects = true;
    uint64_t skip = 0;
    bool started = false;
    call.prepare = [&](HttpRequest& req) {
        started = false;
        if (w->size() > 0) req.headers.emplace_back("Range", concat("bytes=", w->size(), "-"));
        req.onBody = [&](const HttpResponse& head, const char* data, size_t len) {
            if (!started) {
                auto s = bytesToSkip(head.status, head.header("content-range"), w->size());
                if (!s)
                    throw Error(c.domain(), " answered a request for the rest of ", what,
                                " at another offset (", head.header("content-range").substr(0, 100),
                                ")");
                skip = *s;
                started = true;
            }
            size_t k = size_t(std::min<uint64_t>(skip, len));
            skip -= k;
            if (w->size() + (len - k) > size)
                throw Error(c.domain(), " sent more than the ", size, " bytes of ", what);
            w->write(data + k, len - k);
        };
        req.onProgress = [&](uint64_t, uint64_t) {
            progress.update(id, w->size());
            return !c.cancelled();
        };
    };
    for (int resumes = 0;; resumes++) {
        uint64_t before = w->size();
        HttpResponse r;
        try {
            r = c.send(call);
        } catch (TransportError& e) {
            // send() retried a few times; a blob that still moves forward deserves more. After a
            // stall, only if it moved at the minimum rate first: a drip never gets that far.
            const auto& l = c.limits();
            uint64_t enough = e.kind() == TransportError::Kind::Stalled
                                  ? l.minSpeed * uint64_t(l.stall.count())
                                  : 1;
            if (e.transient() && w->size() >= before + enough && resumes < 50) continue;
            throw;
        }
        if (!r.ok()) c.fail(call, r);
        if (w->size() == size) break;
        // A clean end short of the blob (a proxy cut it): ask for the rest.
        if (w->size() == before || resumes >= 50)
            throw Error(c.domain(), " sent ", w->size(), " of the ", size, " bytes of ", what,
                        ", and no more");
    }
    try {
        w->commit(d.mediaType, d.digest, what);
    } catch (Error&) {
        if (lastTry || store.hasBlob(d.digest)) throw;
        return false;
    }
    return true;
}

void fetchBlob(Client& c, oci::Store& store, const std::string& repo, const Descriptor& d,
               const std::string& name, Progress& progress)
{
    int id = progress.start(name, uint64_t(d.size));
    // Bytes altered on the way (a bad proxy, memory, a disk) get one more chance.
    if (!fetchBlobOnce(c, store, repo, d, name, progress, id, false))
        fetchBlobOnce(c, store, repo, d, name, progress, id, true);
    progress.done(id);
}

std::string normaliseRegistry(const std::string& text)
{
    std::string host = normaliseAuthKey(text);
    if (host.empty() || host.find('/') != std::string::npos)
        throw UsageError(
            "'", text,
            "' is not a registry host: give HOST[:PORT], e.g. docker.io or localhost:5000");
    try {
        auto r = oci::Reference::parse(host + "/x");
        if (r.domain != host && !(host == "docker.io" && r.domain == "docker.io"))
            throw Error("not a host");
    } catch (Error&) {
        throw UsageError(
            "'", text,
            "' is not a registry host: give HOST[:PORT], e.g. docker.io or localhost:5000");
    }
    return host;
}

} // namespace

void checkBlobSizes(const std::vector<std::pair<std::string, Descriptor>>& blobs,
                    std::optional<uint64_t> freeBytes, const fs::path& where,
                    const std::string& image)
{
    if (!freeBytes) return;
    auto hint = concat(" free where the store is ('", where.string(),
                       "'): refused before downloading anything; free some space (grocker purge, "
                       "or --root on a larger filesystem) or check the image");
    uint64_t total = 0;
    for (auto& [name, d] : blobs) {
        uint64_t size = uint64_t(d.size);
        if (size > *freeBytes)
            throw Error(name.substr(0, name.find(' ')), " ", d.digest.str(), " of ", image,
                        " says it has ", size, " bytes (", Progress::formatBytes(size),
                        "), more than the ", Progress::formatBytes(*freeBytes), hint);
        // total <= *freeBytes here, so the subtraction cannot wrap where a sum could.
        if (size > *freeBytes - total)
            throw Error("the ", blobs.size(), " blobs to download of ", image, " make more than ",
                        *freeBytes, " bytes, the ", Progress::formatBytes(*freeBytes), hint);
        total += size;
    }
}

std::optional<uint64_t> freeSpace(const fs::path& path)
{
    struct statvfs st {};
    if (::statvfs(path.c_str(), &st) < 0) return std::nullopt;
    return uint64_t(st.f_bavail) * uint64_t(st.f_frsize);
}

Descriptor choosePlatform(const oci::Index& index, const oci::Platform& platform,
                          const std::string& where)
{
    std::vector<const Descriptor*> images;
    for (auto& d : index.manifests) {
        if (!oci::media::isManifest(d.mediaType)) continue;
        auto t = d.annotations.find("vnd.docker.reference.type");
        if (t != d.annotations.end() && t->second == "attestation-manifest") continue;
        if (d.platform && d.platform->os == "unknown" && d.platform->architecture == "unknown")
            continue;
        images.push_back(&d);
    }
    for (auto* d : images)
        if (d->platform && d->platform->matches(platform)) return *d;
    if (images.size() == 1 && !images[0]->platform) return *images[0];
    std::vector<std::string> names;
    for (auto* d : images)
        names.push_back(d->platform ? d->platform->str() : std::string("unnamed"));
    std::string have = join(names, ", ");
    throw Error(where, " has no image for ", platform.str(),
                " (it has: ", have.empty() ? "none" : have, ")");
}

Session::Session(Options options) : options_(std::move(options)) {}
Session::~Session() = default;

Client& Session::client(const std::string& domain)
{
    std::lock_guard lock(clientsMutex_);
    auto& c = clients_[domain];
    if (!c) c = std::make_unique<Client>(domain, options_.client);
    return *c;
}

std::optional<Digest> Session::manifestDigest(const oci::Reference& ref, bool exact)
{
    auto& c = client(ref.domain);
    const std::string reference = ref.digest ? ref.digest->str() : ref.tag;
    Client::Call head;
    head.method = "HEAD";
    head.url = "/v2/" + ref.path + "/manifests/" + reference;
    head.repository = ref.path;
    head.scopes = {repositoryScope(ref.path, false)};
    head.headers = {{"Accept", acceptManifests}};
    auto answer = c.send(head);
    if (answer.status == 404) return std::nullopt;
    if (!answer.ok()) c.fail(head, answer);
    std::string dcd(trim(answer.header("docker-content-digest")));
    if (!dcd.empty() && Digest::valid(dcd) && Digest::parse(dcd).algorithm() == "sha256")
        return Digest::parse(dcd);
    if (ref.digest) return ref.digest;
    if (!exact) return Digest{};
    // A registry that does not say it in a HEAD: the bytes, hashed.
    return getManifest(c, ref.path, reference, std::nullopt, "the manifest").digest;
}

bool Session::hasManifest(const oci::Reference& ref)
{
    return manifestDigest(ref, false).has_value();
}

oci::Image Session::pull(oci::Store& store, const oci::Reference& ref, bool layers)
{
    return withContext("while pulling docker://" + ref.str(), [&] {
        auto& c = client(ref.domain);
        const auto& repo = ref.path;
        auto m = getManifest(c, repo, ref.digest ? ref.digest->str() : ref.tag, ref.digest,
                             "the manifest");
        std::optional<FetchedManifest> index;
        if (oci::media::isIndex(m.mediaType)) {
            auto idx = oci::parseIndex(m.bytes, "the index", m.mediaType);
            auto chosen = choosePlatform(idx, options_.platform, "the index " + m.digest.str());
            index = std::move(m);
            m = getManifest(c, repo, chosen.digest.str(), chosen.digest,
                            "the manifest for " + options_.platform.str());
            if (!oci::media::isManifest(m.mediaType))
                throw Error("the index entry for ", options_.platform.str(),
                            " is not an image manifest (", m.mediaType, ")");
        }
        auto manifest = oci::parseManifest(m.bytes, "the manifest " + m.digest.str(), m.mediaType);
        std::vector<std::pair<std::string, Descriptor>> blobs{
            {label("config", manifest.config), manifest.config}};
        if (layers)
            for (auto& l : manifest.layers)
                blobs.emplace_back(label("layer", l), l);
        Progress progress(layers ? Progress::detect(options_.quiet) : Progress::Mode::Quiet,
                          "pulled");
        // The manifest is stored after its blobs: a refused image leaves nothing in the store.
        fetchBlobs(store, ref, blobs, progress);
        if (index) store.putBlob(index->bytes, index->mediaType);
        auto desc = store.putBlob(m.bytes, m.mediaType);
        store.recordSource(desc.digest, ref.domain + "/" + repo);
        if (layers)
            progress.summary(ref.str());
        else
            // Its layers stay in the repository: a push into this registry mounts them from
            // there rather than sending them (fetchBlobs records the ones it fetches).
            for (auto& l : manifest.layers)
                store.recordSource(l.digest, ref.domain + "/" + repo);
        return oci::imageFromStore(store, desc);
    });
}

oci::ImageSet Session::pullSet(oci::Store& store, const oci::Reference& ref)
{
    auto top = withContext("while pulling docker://" + ref.str(), [&] {
        return getManifest(client(ref.domain), ref.path, ref.digest ? ref.digest->str() : ref.tag,
                           ref.digest, "the manifest");
    });
    auto byDigest = [&](const Digest& d) {
        auto r = ref;
        r.digest = d;
        return r;
    };
    if (!oci::media::isIndex(top.mediaType))
        return {std::nullopt, {pull(store, byDigest(top.digest))}};
    return withContext("while pulling docker://" + ref.str(), [&] {
        auto& c = client(ref.domain);
        const auto& repo = ref.path;
        auto index = oci::parseIndex(top.bytes, "the index " + top.digest.str(), top.mediaType);
        std::vector<FetchedManifest> listed;
        std::vector<std::pair<std::string, Descriptor>> blobs;
        for (auto& d : index.manifests) {
            auto what = "the manifest " + d.digest.str() +
                        (d.platform ? " (" + d.platform->str() + ")" : std::string());
            if (!oci::media::isManifest(d.mediaType))
                throw Error("the index ", top.digest.str(), " lists ", d.digest.str(), " (",
                            d.mediaType,
                            "), not an image: an index of indexes is not copied whole; copy one "
                            "platform of it with --platform");
            auto m = getManifest(c, repo, d.digest.str(), d.digest, what);
            auto manifest = oci::parseManifest(m.bytes, what, m.mediaType);
            blobs.emplace_back(label("config", manifest.config), manifest.config);
            for (auto& l : manifest.layers)
                blobs.emplace_back(label("layer", l), l);
            listed.push_back(std::move(m));
        }
        Progress progress(Progress::detect(options_.quiet), "pulled");
        // The manifests are stored after their blobs, the index last: a refused image leaves
        // nothing in the store.
        fetchBlobs(store, ref, blobs, progress);
        oci::ImageSet set;
        for (auto& m : listed) {
            auto desc = store.putBlob(m.bytes, m.mediaType);
            store.recordSource(desc.digest, ref.domain + "/" + repo);
            set.images.push_back(oci::entryFromStore(store, desc));
        }
        set.index = store.putBlob(top.bytes, top.mediaType);
        store.recordSource(set.index->digest, ref.domain + "/" + repo);
        progress.summary(ref.str());
        return set;
    });
}

void Session::fetchLayers(oci::Store& store, const oci::Reference& ref,
                          const std::vector<Descriptor>& layers)
{
    withContext("while pulling layers of docker://" + ref.str(), [&] {
        std::vector<std::pair<std::string, Descriptor>> blobs;
        for (auto& l : layers)
            blobs.emplace_back(label("layer", l), l);
        Progress progress(Progress::detect(options_.quiet), "pulled");
        fetchBlobs(store, ref, blobs, progress);
        progress.summary(ref.str());
    });
}

void Session::fetchBlobs(oci::Store& store, const oci::Reference& ref,
                         const std::vector<std::pair<std::string, Descriptor>>& blobs,
                         Progress& progress)
{
    auto& c = client(ref.domain);
    const auto& repo = ref.path;
    std::string source = ref.domain + "/" + repo;
    std::vector<std::pair<std::string, Descriptor>> missing, present;
    std::set<Digest> seen;
    for (auto& b : blobs) {
        if (!seen.insert(b.second.digest).second) continue;
        (store.hasBlob(b.second.digest) ? present : missing).push_back(b);
    }
    // Before anything is fetched: a refused image leaves nothing in the store.
    checkBlobSizes(missing, freeSpace(store.root()), store.root(), ref.str());
    for (auto& b : present) {
        progress.skipped(b.first, uint64_t(b.second.size), "already in the store");
        store.recordSource(b.second.digest, source);
    }
    runParallel(missing.size(), options_.parallel, c, [&](size_t i) {
        fetchBlob(c, store, repo, missing[i].second, missing[i].first, progress);
        store.recordSource(missing[i].second.digest, source);
    });
}

// PUT of an image's manifest under `tagOrDigest`, whose blobs the repository has; the answer.
static HttpResponse putManifestAs(Client& c, const std::string& repo, const oci::Image& image,
                                  const std::string& tagOrDigest)
{
    Client::Call put;
    put.method = "PUT";
    put.url = "/v2/" + repo + "/manifests/" + tagOrDigest;
    put.repository = repo;
    put.scopes = {repositoryScope(repo, true)};
    put.headers = {{"Content-Type", image.manifestDescriptor.mediaType}};
    put.prepare = [&](HttpRequest& req) { req.body = image.manifestBytes; };
    auto r = c.send(put);
    // Every blob it names was just found or put in the repository. Distribution's filesystem
    // storage rewrites a blob's link in place (truncated, then written) when another client
    // sends or mounts the same blob (the payload that every signer of an image signs): a
    // manifest checked in that instant names an "unknown" blob. Sent again after a moment.
    for (int again = 1;
         again <= 3 && r.status == 400 && r.body.find("MANIFEST_BLOB_UNKNOWN") != std::string::npos;
         again++) {
        std::this_thread::sleep_for(c.backoff(again));
        r = c.send(put);
    }
    if (r.status != 201 && r.status != 200) c.fail(put, r);
    checkStoredDigest(c, image.manifestDescriptor.digest, r, "the manifest ");
    return r;
}

oci::Digest Session::push(oci::Store& store, const oci::Image& image, const oci::Reference& ref)
{
    return withContext("while pushing to docker://" + ref.str(), [&] {
        auto& c = client(ref.domain);
        const auto& repo = ref.path;
        auto digest = image.manifestDescriptor.digest;
        if (ref.digest && *ref.digest != digest)
            throw Error("the image's digest is ", digest.str(), ", not the ", ref.digest->str(),
                        " named");
        std::vector<std::pair<std::string, Descriptor>> blobs{
            {label("config", image.manifest.config), image.manifest.config}};
        std::set<Digest> seen{image.manifest.config.digest};
        for (auto& l : image.manifest.layers)
            if (seen.insert(l.digest).second) blobs.emplace_back(label("layer", l), l);
        Progress progress(Progress::detect(options_.quiet), "pushed");
        runParallel(blobs.size(), options_.parallel, c, [&](size_t i) {
            pushBlob(c, store, repo, blobs[i].second, blobs[i].first, options_, progress);
        });
        putManifestAs(c, repo, image, ref.tag.empty() ? digest.str() : ref.tag);
        store.recordSource(digest, ref.domain + "/" + repo);
        progress.summary(ref.str());
        return digest;
    });
}

oci::Digest Session::pushIndex(oci::Store& store, const Descriptor& index,
                               const std::vector<oci::Image>& images, const oci::Reference& ref)
{
    for (auto& image : images) {
        auto byDigest = ref;
        byDigest.tag.clear();
        byDigest.digest = image.manifestDescriptor.digest;
        // One HEAD for an image already there (a build's runners, pushed as each was made; or
        // images built and pushed on other machines): a manifest is only there with its blobs.
        if (!hasManifest(byDigest)) push(store, image, byDigest);
    }
    return withContext("while pushing to docker://" + ref.str(), [&] {
        oci::Image top; // an index: only what putManifestAs sends
        top.manifestDescriptor = index;
        top.manifestBytes = store.readBlob(index, "the index");
        putManifestAs(client(ref.domain), ref.path, top,
                      ref.tag.empty() ? index.digest.str() : ref.tag);
        store.recordSource(index.digest, ref.domain + "/" + ref.path);
        return index.digest;
    });
}

void Session::pushNewBlobs(oci::Store& store, const std::vector<Descriptor>& blobs,
                           const oci::Reference& ref, bool probe)
{
    withContext("while pushing to docker://" + ref.str(), [&] {
        auto& c = client(ref.domain);
        Progress progress(Progress::Mode::Quiet, "pushed");
        runParallel(blobs.size(), options_.parallel, c, [&](size_t i) {
            pushBlob(c, store, ref.path, blobs[i], label("blob", blobs[i]), options_, progress,
                     probe);
        });
    });
}

void Session::putManifest(const oci::Image& image, const oci::Reference& ref)
{
    withContext("while pushing to docker://" + ref.str(), [&] {
        putManifestAs(client(ref.domain), ref.path, image,
                      ref.tag.empty() ? image.manifestDescriptor.digest.str() : ref.tag);
    });
}

namespace {

// The referrers tag schema's tag of a subject (OCI distribution spec 1.1).
std::string referrersTag(const Digest& subject)
{
    return subject.algorithm() + "-" + subject.hex();
}

// Of an index's entries, those of `artifactType` ("" for any).
std::vector<Descriptor> ofType(const oci::Index& index, const std::string& artifactType)
{
    std::vector<Descriptor> out;
    for (auto& d : index.manifests)
        if (artifactType.empty() || d.artifactType == artifactType) out.push_back(d);
    return out;
}

} // namespace

// The referrers API's answer, or nullopt when the registry has none (distribution 2.8: 404).
static std::optional<oci::Index> referrersApi(Client& c, const std::string& repo,
                                              const Digest& subject)
{
    Client::Call call;
    call.url = "/v2/" + repo + "/referrers/" + subject.str();
    call.repository = repo;
    call.scopes = {repositoryScope(repo, false)};
    call.headers = {{"Accept", std::string(oci::media::ociIndex)}};
    call.prepare = [](HttpRequest& req) {
        req.maxBody = maxManifest;
        req.refuseOverMax = true;
    };
    auto r = c.send(call);
    if (r.status == 404 || r.status == 405 || r.status == 400) return std::nullopt;
    if (!r.ok()) c.fail(call, r);
    auto ct = r.header("content-type");
    if (ct.find(oci::media::ociIndex) == std::string::npos) return std::nullopt;
    return oci::parseIndex(r.body, "the referrers of " + subject.str());
}

// The referrers tag schema's index of `subject`: empty when the tag does not exist.
static oci::Index referrersIndex(Client& c, const std::string& repo, const Digest& subject)
{
    FetchedManifest m;
    try {
        m = getManifest(c, repo, referrersTag(subject), std::nullopt,
                        "the referrers index of " + subject.str());
    } catch (RegistryError& e) {
        if (e.status() == 404) return {};
        throw;
    }
    return oci::parseIndex(m.bytes, "the referrers index of " + subject.str(), m.mediaType);
}

void Session::attach(oci::Store& store, const std::vector<Descriptor>& referrers,
                     const oci::Reference& ref)
{
    if (referrers.empty()) return;
    withContext(
        "while attaching " + std::to_string(referrers.size()) + " referrers in docker://" +
            ref.domain + "/" + ref.path,
        [&] {
            auto& c = client(ref.domain);
            const auto& repo = ref.path;
            std::optional<Digest> subject;
            std::vector<oci::Image> arts;
            std::vector<std::pair<std::string, Descriptor>> blobs;
            std::set<Digest> seen;
            for (auto& referrer : referrers) {
                oci::Image art;
                art.manifestDescriptor = referrer;
                art.manifestBytes = store.readBlob(referrer, "referrer");
                art.manifest =
                    oci::parseManifest(art.manifestBytes, "referrer", referrer.mediaType);
                if (!art.manifest.subject || (subject && *subject != art.manifest.subject->digest))
                    throw Error("the referrer ", referrer.digest.str(),
                                " has no subject, or another one");
                subject = art.manifest.subject->digest;
                if (seen.insert(art.manifest.config.digest).second)
                    blobs.emplace_back(label("config", art.manifest.config), art.manifest.config);
                for (auto& l : art.manifest.layers)
                    if (seen.insert(l.digest).second) blobs.emplace_back(label("layer", l), l);
                arts.push_back(std::move(art));
            }
            // All their blobs at once, then all their manifests at once: a handful of small
            // requests each, which one after the other cost a version bump its tenths. Their
            // contents are sent without asking first whether the registry has them: they are
            // about an image just made (their configs, the empty one they share, are asked).
            Progress progress(Progress::Mode::Quiet, "pushed");
            runParallel(blobs.size(), options_.parallel, c, [&](size_t i) {
                bool config = blobs[i].first.rfind("config", 0) == 0;
                pushBlob(c, store, repo, blobs[i].second, blobs[i].first, options_, progress,
                         config);
            });
            // A registry that indexes them itself says so in each answer (OCI-Subject);
            // without it, the client lists them in the referrers tag schema (distribution spec
            // 1.1, "Pushing Manifests with Subject").
            std::atomic<bool> indexed{true};
            runParallel(arts.size(), options_.parallel, c, [&](size_t i) {
                auto r = putManifestAs(c, repo, arts[i], arts[i].manifestDescriptor.digest.str());
                if (r.header("oci-subject") != subject->str()) indexed = false;
                store.recordSource(arts[i].manifestDescriptor.digest, ref.domain + "/" + repo);
            });
            if (indexed) return;
            auto missing = [&](const std::vector<Descriptor>& listed) {
                std::vector<Descriptor> out;
                for (auto& r : referrers)
                    if (std::none_of(listed.begin(), listed.end(),
                                     [&](auto& d) { return d.digest == r.digest; }))
                        out.push_back(r);
                return out;
            };
            // The tag schema, merged with what another writer put there.
            oci::Index index; // as last read
            keepMerged(
                [&] {
                    index = referrersIndex(c, repo, *subject);
                    return missing(index.manifests).empty();
                },
                [&] {
                    for (auto d : missing(index.manifests)) {
                        d.mediaType = std::string(oci::media::ociManifest);
                        index.manifests.push_back(d);
                    }
                    auto bytes = oci::canonical(oci::toJson(index));
                    Client::Call put;
                    put.method = "PUT";
                    put.url = "/v2/" + repo + "/manifests/" + referrersTag(*subject);
                    put.repository = repo;
                    put.scopes = {repositoryScope(repo, true)};
                    put.headers = {{"Content-Type", std::string(oci::media::ociIndex)}};
                    put.prepare = [&](HttpRequest& req) { req.body = bytes; };
                    auto r = c.send(put);
                    if (r.status != 201 && r.status != 200) c.fail(put, r);
                },
                8, "the referrers index " + referrersTag(*subject) + " of " + repo,
                options_.patientMerges);
        });
}

void keepMerged(const std::function<bool()>& read, const std::function<void()>& write, int tries,
                const std::string& what, bool patient)
{
    using Clock = std::chrono::steady_clock;
    Clock::duration window{};
    bool contended = false; // another writer seen: ours lost once, or written again
    auto start = Clock::now();
    if (read()) return; // ours was there before: nothing of ours to lose
    for (int written = 1, rounds = 0;; written++) {
        // Merged with what was just read and written at once: the shorter the time between
        // the read and the write, the fewer writers slip in between.
        write();
        window = std::max(window, Clock::now() - start);
        for (;;) {
            // Read back after as long as a read and a write take: a writer that read before
            // our write and writes after it has written by then. With other writers about
            // (whose reads and writes may be slower than ours), longer, and twice. Patient,
            // a few times as long from the start, and never less than a loaded machine's
            // scheduling delays: a writer up to 3 times slower than us is caught (4 concurrent
            // signers under ASan on 2 cores kept 3 signatures once with one window).
            struct Pause {
                int windows;
                int atLeastMs;
            };
            // [patient][contended]
            static constexpr Pause pauses[2][2] = {{{1, 0}, {4, 50}}, {{3, 150}, {6, 300}}};
            auto& p = pauses[patient][contended];
            auto pause = std::max<Clock::duration>(p.windows * window,
                                                   std::chrono::milliseconds(p.atLeastMs));
            std::this_thread::sleep_for(pause);
            bool kept = read();
            if (kept && contended) {
                std::this_thread::sleep_for(pause);
                kept = read();
            }
            if (kept) return;
            contended = true;
            if (written == tries || ++rounds > 2 * tries)
                throw Error(what, " lost our entries on every try: too many writers at once; "
                                  "push again");
            // Another writer between our read and our write: read again after a moment that
            // differs between writers, then merged and written again.
            ::usleep(useconds_t(20000 * written + (::getpid() % 97) * 200));
            start = Clock::now();
            if (!read()) break;
            // Ours again (another writer merged it in): read back again, as after a write.
        }
    }
}

std::vector<Descriptor> Session::referrers(const oci::Reference& ref, const Digest& subject,
                                           const std::string& artifactType)
{
    return withContext("while listing the referrers of " + subject.str() + " in docker://" +
                           ref.domain + "/" + ref.path,
                       [&] {
                           auto& c = client(ref.domain);
                           if (auto api = referrersApi(c, ref.path, subject))
                               return ofType(*api, artifactType);
                           return ofType(referrersIndex(c, ref.path, subject), artifactType);
                       });
}

void Session::fetchReferrer(oci::Store& store, const oci::Reference& ref,
                            const Descriptor& referrer)
{
    withContext("while pulling the referrer " + referrer.digest.str() + " of docker://" +
                    ref.domain + "/" + ref.path,
                [&] {
                    auto& c = client(ref.domain);
                    auto m = getManifest(c, ref.path, referrer.digest.str(), referrer.digest,
                                         "the referrer " + referrer.digest.str());
                    auto manifest = oci::parseManifest(m.bytes, "the referrer", m.mediaType);
                    std::vector<std::pair<std::string, Descriptor>> blobs{
                        {label("config", manifest.config), manifest.config}};
                    for (auto& l : manifest.layers)
                        blobs.emplace_back(label("layer", l), l);
                    Progress progress(Progress::Mode::Quiet, "pulled");
                    fetchBlobs(store, ref, blobs, progress);
                    store.putBlob(m.bytes, m.mediaType);
                });
}

fs::path login(const std::string& registry, const std::string& username,
               const std::string& password, const Options& options)
{
    auto host = normaliseRegistry(registry);
    if (username.empty()) throw UsageError("no username: pass -u USER");
    if (password.empty()) throw UsageError("no password: give it on standard input");
    registerSecret(password);
    return withContext("while logging in to " + host, [&] {
        Client client(host, options.client);
        Credentials creds;
        creds.username = username;
        creds.password = password;
        client.checkLogin(creds);
        auto file = loginAuthFile(options.client.auth);
        saveLogin(file, host, username, password);
        return file;
    });
}

fs::path logout(const std::string& registry, const Options& options)
{
    auto host = normaliseRegistry(registry);
    auto file = loginAuthFile(options.client.auth);
    if (!removeLogin(file, host))
        throw Error("not logged in to ", host, " (no entry in '", file.string(), "')");
    return file;
}

} // namespace grocker::registry
