#include "signing.hh"

#include "grocker/error.hh"
#include "grocker/oci/referrers.hh"
#include "grocker/oci/transport.hh"
#include "grocker/registry/client.hh"

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>

namespace grocker::build {

namespace fs = std::filesystem;
using namespace grocker::oci;
using nlohmann::json;

std::string cosignSignatureTag(const Digest& subject)
{
    return subject.algorithm() + "-" + subject.hex() + ".sig";
}

std::string cosignRepository(const Reference& ref)
{
    return (ref.domain == "docker.io" ? std::string("index.docker.io") : ref.domain) + "/" +
           ref.path;
}

Descriptor signatureReferrer(Store& store, const SigningKey& key, const Descriptor& subject)
{
    return putReferrer(store, subject, std::string(media::sigstoreBundle),
                       sigstoreBundle(key, subject.digest),
                       sigstoreBundleAnnotations(std::time(nullptr)));
}

namespace {

// Whether `d`, a referrer in the store, is a Sigstore bundle that `key` signed for `subject`.
bool signedWith(const Store& store, const Descriptor& d, const VerifyKey& key,
                const Digest& subject)
{
    if (d.artifactType != media::sigstoreBundle) return false;
    try {
        verifySigstoreBundle(referrerContent(store, d), key, subject);
        return true;
    } catch (Error&) {
        return false; // another key's, or no bundle: not ours
    }
}

} // namespace

bool signedBefore(registry::Session& session, Store& store, const Reference& ref,
                  const Digest& subject, const std::vector<Descriptor>& listed,
                  const VerifyKey& key)
{
    for (auto& d : listed) {
        if (d.artifactType != media::sigstoreBundle) continue;
        try {
            session.fetchReferrer(store, ref, d);
        } catch (Error& e) {
            if (e.message() == "cancelled") throw;
            continue; // not readable: not ours
        }
        if (signedWith(store, d, key, subject)) return true;
    }
    return false;
}

size_t attachMissing(registry::Session& session, Store& store, const Reference& ref,
                     const Digest& subject, const std::vector<Descriptor>& attachments,
                     const VerifyKey* key)
{
    if (attachments.empty()) return 0;
    auto there = session.referrers(ref, subject, "");
    bool signedThere = key && signedBefore(session, store, ref, subject, there, *key);
    std::vector<Descriptor> missing;
    for (auto& a : attachments)
        if (std::none_of(there.begin(), there.end(),
                         [&](const Descriptor& d) { return d.digest == a.digest; }) &&
            !(signedThere && a.artifactType == media::sigstoreBundle))
            missing.push_back(a);
    session.attach(store, missing, ref);
    return missing.size();
}

std::vector<Descriptor> withoutNewBundle(Store& store, const ImageRef& dest, const Digest& subject,
                                         std::vector<Descriptor> attachments, const VerifyKey& key)
{
    if (dest.kind != ImageRef::Kind::Oci || !fs::exists(dest.path / "index.json"))
        return attachments;
    bool signedThere = false;
    try {
        auto listed = loadLayoutReferrers(store, dest, subject, std::string(media::sigstoreBundle));
        signedThere = std::any_of(listed.begin(), listed.end(), [&](const Descriptor& d) {
            return signedWith(store, d, key, subject);
        });
    } catch (Error&) {
        return attachments; // a layout that cannot be read: saving it says what is wrong
    }
    if (signedThere)
        std::erase_if(attachments,
                      [](const Descriptor& d) { return d.artifactType == media::sigstoreBundle; });
    return attachments;
}

namespace {

Reference sigRef(const Reference& ref, const Digest& subject)
{
    Reference r = ref;
    r.digest.reset();
    r.tag = cosignSignatureTag(subject);
    return r;
}

// cosign's `.sig` image: one layer per signature (the payload, its signature in an
// annotation), a config whose diff_ids are the payloads' digests, as cosign writes it.
Image sigImage(Store& store, const std::vector<Descriptor>& layers)
{
    json diffIds = json::array(), history = json::array();
    for (auto& l : layers) {
        diffIds.push_back(l.digest.str());
        history.push_back({{"created", "0001-01-01T00:00:00Z"}});
    }
    json config = {{"architecture", ""},
                   {"created", "0001-01-01T00:00:00Z"},
                   {"history", history},
                   {"os", ""},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", diffIds}}},
                   {"config", json::object()}};
    Manifest m;
    m.config = store.putBlob(canonical(config), std::string(media::ociConfig));
    m.layers = layers;
    auto d = store.putBlob(canonical(toJson(m)), std::string(media::ociManifest));
    return imageFromStore(store, d);
}

} // namespace

std::optional<Image> pullCosignSignatures(registry::Session& session, Store& store,
                                          const Reference& ref, const Digest& subject,
                                          bool payloads)
{
    try {
        return session.pull(store, sigRef(ref, subject), payloads);
    } catch (registry::RegistryError& e) {
        if (e.status() == 404) return std::nullopt;
        throw;
    }
}

void pushCosignSignatures(registry::Session& session, Store& store, const SigningKey& key,
                          const Reference& ref, const Digest& subject)
{
    auto payload = simpleSigningPayload(cosignRepository(ref), subject);
    auto mine = store.putBlob(payload, std::string(media::cosignSimpleSigning));
    const std::string signatureKey(annotation::cosignSignature);
    mine.annotations[signatureKey] = simpleSigningSignature(key, payload);
    auto pub = key.publicKey();
    // Ours, or as good: this key's signature of the same payload (another signer with this key).
    auto byThisKey = [&](const Descriptor& l) {
        auto it = l.annotations.find(signatureKey);
        if (l.digest != mine.digest || it == l.annotations.end()) return false;
        try {
            verifySimpleSigning(payload, it->second, pub, subject);
            return true;
        } catch (Error&) {
            return false;
        }
    };
    // As last read: its manifest and config (the payloads are in the registry; ours is the
    // one byThisKey compares).
    std::optional<Image> sig;
    auto read = [&] {
        sig = pullCosignSignatures(session, store, ref, subject, false);
        // Signed by this key already (before, or by another signer with it): as good.
        return sig &&
               std::any_of(sig->manifest.layers.begin(), sig->manifest.layers.end(), byThisKey);
    };
    // Nothing sent when this key signed it already (a rebuild signs again).
    if (read()) return;
    // Ours and the `.sig` image of ours alone (what the first signer of an image writes)
    // before the read that the write merges with. Asked for first: every signer of an image
    // signs the same payload, and a `.sig` image of N layers has the same config whoever
    // wrote it (a blob sent again makes distribution rewrite its link, which a manifest put
    // at that instant finds missing).
    auto alone = sigImage(store, {mine});
    session.pushNewBlobs(store, {alone.manifest.config, mine}, sigRef(ref, subject), true);
    registry::keepMerged(
        read,
        [&] {
            // The merged image's config is sent first, then the tag is looked at once more: the
            // write that can drop another signer's layer is the manifest alone, right after that
            // look (a config's upload between the read and the write, slow on a loaded machine,
            // let a fourth signer's write drop one of three others').
            for (int looks = 1;; looks++) {
                std::vector<Descriptor> layers;
                if (sig) layers = sig->manifest.layers;
                layers.push_back(mine);
                auto merged = sigImage(store, layers);
                if (merged.manifest.config.digest != alone.manifest.config.digest)
                    session.pushNewBlobs(store, {merged.manifest.config}, sigRef(ref, subject),
                                         true);
                std::optional<Digest> merges;
                if (sig) merges = sig->manifestDescriptor.digest;
                if (looks == 8 || session.manifestDigest(sigRef(ref, subject)) == merges)
                    return session.putManifest(merged, sigRef(ref, subject));
                if (read()) return; // another signer's write merged ours in
            }
        },
        8, "cosign's " + cosignSignatureTag(subject) + " of " + ref.domain + "/" + ref.path,
        session.options().patientMerges);
}

void copyCosignSignatures(registry::Session& session, Store& store, const Image& sig,
                          const Reference& ref, const Digest& subject)
{
    session.push(store, sig, sigRef(ref, subject));
}

std::vector<SignatureCheck> checkSignatures(const Store& store, const VerifyKey& key,
                                            const Digest& subject,
                                            const std::vector<Descriptor>& attachments,
                                            const std::optional<Image>& cosignSig)
{
    std::vector<SignatureCheck> checks;
    for (auto& a : attachments) {
        if (a.artifactType != media::sigstoreBundle) continue;
        SignatureCheck c{"sigstore bundle " + a.digest.str()};
        try {
            verifySigstoreBundle(referrerContent(store, a), key, subject);
            c.verified = true;
        } catch (Error& e) {
            c.why = e.message();
        }
        checks.push_back(c);
    }
    if (cosignSig) {
        size_t n = 0;
        for (auto& l : cosignSig->manifest.layers) {
            n++;
            SignatureCheck c{"cosign " + cosignSig->manifestDescriptor.digest.str().substr(0, 19) +
                             "… (.sig), layer " + std::to_string(n)};
            try {
                auto it = l.annotations.find(std::string(annotation::cosignSignature));
                if (it == l.annotations.end())
                    throw Error("the layer has no ", annotation::cosignSignature, " annotation");
                verifySimpleSigning(store.readBlob(l, "the signature's payload"), it->second, key,
                                    subject);
                c.verified = true;
            } catch (Error& e) {
                c.why = e.message();
            }
            checks.push_back(c);
        }
    }
    return checks;
}

} // namespace grocker::build
