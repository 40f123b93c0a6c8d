// grocker rebase IMAGE --onto ROOT [DEST]: a runner's own layers over a newer root of its
// runtime, nothing run (src/build/rebase.hh); in a registry, every layer mounted or already
// there, none sent.

#include "build/rebase.hh"
#include "commands.hh"
#include "grocker/display.hh"
#include "grocker/error.hh"

#include <iostream>

namespace grocker {

using namespace grocker::oci;

namespace {

struct RebaseOptions {
    std::string image, onto, dest;
};

// What the runner's label grocker.root.image says of the new root: its name and tag, as a build
// names it ("grocker-bookworm-3.11-root:0.1.0-…").
std::string rootNameOf(const ImageRef& onto)
{
    if (onto.kind != ImageRef::Kind::Docker) return onto.ref;
    auto ref = dockerReference(onto.ref);
    auto slash = ref.path.rfind('/');
    std::string name = slash == std::string::npos ? ref.path : ref.path.substr(slash + 1);
    return ref.tag.empty() ? name : name + ":" + ref.tag;
}

int runRebase(const GlobalOptions& g, const RebaseOptions& o)
{
    auto src = ImageRef::parse(o.image);
    auto onto = ImageRef::parse(o.onto);
    auto dest = o.dest.empty() ? src : ImageRef::parse(o.dest);
    for (auto* r : {&src, &onto, &dest})
        if (r->kind == ImageRef::Kind::Scratch)
            throw UsageError("scratch is neither a runner nor a root: rebase IMAGE --onto ROOT "
                             "[DEST]");
    Store store = openStore(g);
    // Into a registry, from that registry: only manifests and configs are read; the layers are
    // there, or mounted from the root's repository. Anywhere else, they are needed here.
    bool layers = dest.kind != ImageRef::Kind::Docker || registryOf(src) != registryOf(dest) ||
                  registryOf(onto) != registryOf(dest);
    Image runner = loadAnyImage(store, src, g, layers);
    Image root = loadAnyImage(store, onto, g, layers);
    build::Rebased rebased;
    try {
        rebased = build::rebaseRunner(store, runner, root, rootNameOf(onto));
    } catch (Error& e) {
        e.addContext("while rebasing " + src.str() + " onto " + onto.str());
        throw;
    }
    saveAnyImage(store, rebased.image, dest, g);
    if (!g.quiet) {
        std::string what =
            rebased.unchanged
                ? src.str() + " is on " + onto.str() + " already: written as it is to " + dest.str()
                : "rebased onto " + onto.str() + ": its " + std::to_string(rebased.ownLayers) +
                      " own layers over the root's " + std::to_string(rebased.rootLayers) +
                      ", nothing run; written to " + dest.str() +
                      " (without attestations: the runner's SBOMs and provenance described its "
                      "old root; grocker build makes new ones)";
        display().message(what);
    }
    std::cout << rebased.image.manifestDescriptor.digest.str() << "\n";
    return 0;
}

} // namespace

Runners registerRebaseCommand(CLI::App& app, GlobalOptions& global)
{
    static RebaseOptions o;
    auto* rebase = app.add_subcommand(
        "rebase", "Put a runner's own layers over a newer root of its runtime, running nothing");
    rebase->add_option("IMAGE", o.image, "The runner (any transport, docker:// included)")
        ->required();
    rebase->add_option("DEST", o.dest, "Where to write the rebased runner (default: IMAGE)");
    rebase
        ->add_option("--onto", o.onto,
                     "The new root: a root image grocker built for the runner's runtime")
        ->required();
    addProgressOption(rebase, global);
    return {{rebase, [&global] { return runRebase(global, o); }}};
}

} // namespace grocker
