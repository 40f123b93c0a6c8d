// grocker build for several platforms (--platform linux/amd64,linux/arm64, or `platforms:`): the
// pipeline's passes once for each platform (the machine's own first), each runner named in the
// store with its platform and pushed by digest; then one image index over them, in the order
// given, written to every --output and pushed under the runner's tag. Another architecture's steps
// run under qemu-user (steps.cc), its base is made by mmdebstrap --arch, and its runner holds the
// entrypoint built for it: each runner is the one a machine of its platform builds.

#include "grocker/display.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"
#include "passes.hh"
#include "signing.hh"

#include <algorithm>
#include <numeric>

namespace grocker::build {

using namespace grocker::oci;

namespace {

// Whether a venv made by Python on `p` is laid out as on the machine's platform: both 64-bit
// (python3 -m venv adds lib64 there), so that the machine's Python can install another
// platform's wheels (Pipeline::overNative).
bool venvAsHere(const Platform& p)
{
    auto wide = [](const Platform& x) {
        for (auto a :
             {"linux/amd64", "linux/arm64", "linux/ppc64le", "linux/s390x", "linux/riscv64"})
            if (x.str() == a) return true;
        return false;
    };
    return wide(p) && wide(Platform::host());
}

} // namespace

BuildResult buildIndex(Pipeline& top)
{
    top.openStore();
    top.keepLog();
    BuildResult result;
    result.release = top.release.text;
    auto& texts = top.config.platforms;
    std::vector<Image> images(texts.size());
    std::vector<std::vector<Descriptor>> attachments(texts.size()); // each runner's
    std::vector<BuildResult> built(texts.size());
    // The machine's own platform first, whatever its place in the index: the others may take
    // its resolution (NativeTwin) and its pure-Python wheels rather than make them emulated.
    auto isHost = [&](size_t i) {
        return Platform::parse(texts[i]).str() == Platform::host().str();
    };
    std::vector<size_t> order(texts.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_partition(order.begin(), order.end(), isHost);
    std::string nativeCompiler;
    std::optional<Image> nativeRoot;
    for (size_t i : order) {
        auto& text = texts[i];
        Pipeline part(top.request);
        part.config = top.config;
        part.runtime = top.runtime;
        part.release = top.release;
        part.outputs = top.outputs;
        part.compression = top.compression;
        part.platform = Platform::parse(text);
        part.indexPart = true;
        part.nativeCompiler = nativeCompiler;
        if (venvAsHere(part.platform) && top.request.baseImage.empty())
            part.nativeRoot = nativeRoot;
        say(*top.ctx, "platform " + text);
        built[i] = part.run();
        if (isHost(i)) {
            nativeCompiler = part.compiler.manifestDescriptor.digest.str();
            // (Its layers in the store: not when they stayed in the registry.)
            if (!part.rootLayersIn) nativeRoot = part.root;
        }
        images[i] = part.image;
        attachments[i] = part.attachments;
    }
    for (size_t i = 0; i < texts.size(); i++) {
        auto& r = built[i];
        result.image = r.image;
        if (result.rootImage.empty()) {
            result.rootImage = r.rootImage;
            result.compilerImage = r.compilerImage;
        }
        result.platforms.push_back({texts[i], r.rootImage, r.compilerImage, r.digest});
    }
    for (size_t i : order)
        for (auto& step : built[i].ran)
            result.ran.push_back(texts[i] + " " + step);
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
        auto key = top.request.signKey->publicKey();
        attachMissing(session, store, ref, index.digest, {*bundle}, &key);
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
            // Each runner's attachments beside the index, each naming its runner (its subject);
            // no new bundle where the layout has this key's.
            std::vector<Descriptor> all;
            auto add = [&](const Digest& subject, const std::vector<Descriptor>& listed) {
                auto kept = top.request.signKey ? withoutNewBundle(store, dest, subject, listed,
                                                                   top.request.signKey->publicKey())
                                                : listed;
                all.insert(all.end(), kept.begin(), kept.end());
            };
            for (size_t i = 0; i < images.size(); i++)
                add(images[i].manifestDescriptor.digest, attachments[i]);
            if (bundle) add(index.digest, {*bundle});
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
