// grocker build for several platforms (--platform linux/amd64,linux/arm64, or `platforms:`): the
// pipeline's passes once for each platform, in the order given, each runner named in the store
// with its platform and pushed by digest; then one image index over them, written to every
// --output and pushed under the runner's tag. Another architecture's steps run under qemu-user
// (steps.cc), its base is made by mmdebstrap --arch, and its runner holds the entrypoint built
// for it: each runner is the one a machine of its platform builds.

#include "grocker/display.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"
#include "passes.hh"
#include "signing.hh"

namespace grocker::build {

using namespace grocker::oci;

BuildResult buildIndex(Pipeline& top)
{
    top.openStore();
    top.keepLog();
    BuildResult result;
    result.release = top.release.text;
    std::vector<Image> images;
    std::vector<std::vector<Descriptor>> attachments; // each runner's
    for (auto& text : top.config.platforms) {
        Pipeline part(top.request);
        part.config = top.config;
        part.runtime = top.runtime;
        part.release = top.release;
        part.outputs = top.outputs;
        part.compression = top.compression;
        part.platform = Platform::parse(text);
        part.indexPart = true;
        say(*top.ctx, "platform " + text);
        BuildResult r = part.run();
        result.image = r.image;
        if (result.rootImage.empty()) {
            result.rootImage = r.rootImage;
            result.compilerImage = r.compilerImage;
        }
        result.platforms.push_back({text, r.rootImage, r.compilerImage, r.digest});
        for (auto& step : r.ran)
            result.ran.push_back(text + " " + step);
        images.push_back(part.image);
        attachments.push_back(part.attachments);
    }
    auto& store = *top.store;
    auto index = putIndex(store, images);
    result.digest = index.digest;
    say(*top.ctx, "index: " + std::to_string(images.size()) + " platforms, " + index.digest.str());
    // With a key, the index is signed too, as each runner is: what `cosign verify NAME:TAG`
    // checks is the signature of what the tag names, the index.
    std::optional<Descriptor> bundle;
    if (top.request.signKey) {
        bundle = signatureReferrer(store, *top.request.signKey, index);
        say(*top.ctx, "sign: the index, a Sigstore bundle with the key " +
                          top.request.signKey->publicKey().hint());
    }
    // The index pushed under `ref`, and its signatures beside it (a bundle only where none of
    // this key's is: a rebuild signs again).
    auto publish = [&](registry::Session& session, const Reference& ref) {
        session.pushIndex(store, index, images, ref);
        if (!bundle) return;
        if (!signedBefore(session, store, ref, index.digest,
                          session.referrers(ref, index.digest, std::string(media::sigstoreBundle)),
                          top.request.signKey->publicKey()))
            session.attach(store, {*bundle}, ref);
        pushCosignSignatures(session, store, *top.request.signKey, ref, index.digest);
    };
    for (auto& dest : top.outputs) {
        if (dest.kind == ImageRef::Kind::DockerArchive) {
            // One image only, as docker and podman load it: the machine's, else the first.
            size_t pick = 0;
            for (size_t i = 0; i < images.size(); i++)
                if (images[i].config.platform().str() == Platform::host().str()) pick = i;
            top.request.save(store, images[pick], dest, attachments[pick]);
            say(*top.ctx, dest.str() + ": a docker-archive holds one platform, " +
                              images[pick].config.platform().str() + "'s");
        } else if (dest.kind == ImageRef::Kind::Docker) {
            registry::Session session(top.request.registry);
            publish(session, Reference::parse(dest.ref));
        } else {
            // Each runner's attachments beside the index, each naming its runner (its subject).
            std::vector<Descriptor> all;
            for (auto& a : attachments)
                all.insert(all.end(), a.begin(), a.end());
            if (bundle) all.push_back(*bundle);
            saveIndex(store, index, images, dest, all);
        }
        result.outputs.push_back(dest.str());
    }
    if (top.registry && top.request.push) {
        auto named = Reference::parse(result.image);
        PassTime t("push: index");
        publish(top.registry->get(), named);
        result.pushed = named.str();
    }
    if (!top.request.resultFile.empty())
        writeFileAtomic(top.request.resultFile, result.json().dump(2) + "\n");
    return result;
}

} // namespace grocker::build
