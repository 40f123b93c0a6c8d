#include "grocker/oci/referrers.hh"

#include "grocker/error.hh"

namespace grocker::oci {

Descriptor putReferrer(Store& store, const Descriptor& subject, const std::string& artifactType,
                       std::string_view content,
                       const std::map<std::string, std::string>& annotations)
{
    Manifest m;
    m.artifactType = artifactType;
    // The empty descriptor, as the spec gives it ("{}").
    m.config = store.putBlob("{}", std::string(media::emptyJson));
    m.layers.push_back(store.putBlob(content, artifactType));
    Descriptor s = subject;
    s.annotations.clear();
    s.platform.reset();
    s.artifactType.clear();
    m.subject = s;
    m.annotations = annotations;
    auto d = store.putBlob(canonical(toJson(m)), std::string(media::ociManifest));
    d.artifactType = artifactType;
    d.annotations = annotations;
    return d;
}

std::vector<Descriptor> referrerBlobs(const Store& store, const Descriptor& referrer)
{
    auto m = parseManifest(store.readBlob(referrer, "referrer " + referrer.digest.str()),
                           "referrer " + referrer.digest.str(), referrer.mediaType);
    std::vector<Descriptor> blobs{referrer, m.config};
    blobs.insert(blobs.end(), m.layers.begin(), m.layers.end());
    return blobs;
}

std::vector<Descriptor> referrersOf(const Store& store, const Index& index, const Digest& subject,
                                    const std::string& artifactType)
{
    std::vector<Descriptor> found;
    for (auto& d : index.manifests) {
        if (!media::isManifest(d.mediaType) || d.artifactType.empty()) continue;
        if (!artifactType.empty() && d.artifactType != artifactType) continue;
        if (!store.hasBlob(d.digest)) continue;
        auto m = parseManifest(store.readBlob(d, "referrer " + d.digest.str()),
                               "referrer " + d.digest.str(), d.mediaType);
        if (m.subject && m.subject->digest == subject) found.push_back(d);
    }
    return found;
}

std::string referrerContent(const Store& store, const Descriptor& referrer)
{
    auto m = parseManifest(store.readBlob(referrer, "referrer " + referrer.digest.str()),
                           "referrer " + referrer.digest.str(), referrer.mediaType);
    if (m.layers.size() != 1)
        throw Error("the referrer ", referrer.digest.str(), " has ", m.layers.size(),
                    " layers, not one: it is not an attachment grocker reads");
    return store.readBlob(m.layers[0], "the content of referrer " + referrer.digest.str());
}

} // namespace grocker::oci
