// grocker index create DEST --from REF --from REF ...: one image index over per-platform
// images of one app and version (each built on a runner of its platform), pushed or written
// under one name.

#include "commands.hh"
#include "grocker/display.hh"
#include "grocker/error.hh"
#include "grocker/oci/store.hh"

#include <iostream>

namespace grocker {

using namespace grocker::oci;

namespace {

struct IndexOptions {
    std::string dest;
    std::vector<std::string> from;
};

int runIndexCreate(const GlobalOptions& g, const IndexOptions& o)
{
    auto dest = ImageRef::parse(o.dest);
    if (dest.kind == ImageRef::Kind::Scratch) throw UsageError("scratch cannot be a destination");
    if (o.from.size() < 2)
        throw UsageError("an index needs two images or more: --from REF --from REF (one for each "
                         "platform)");
    std::vector<ImageRef> sources;
    for (auto& f : o.from) {
        sources.push_back(ImageRef::parse(f));
        if (sources.back().kind == ImageRef::Kind::Scratch)
            throw UsageError("--from scratch: name a per-platform image");
    }
    Store store = openStore(g);
    std::vector<Image> images;
    std::vector<Descriptor> entries;
    for (auto& src : sources) {
        // Into a registry from that registry: the layers are there (or mounted), not read here.
        bool layers = dest.kind != ImageRef::Kind::Docker || registryOf(src) != registryOf(dest);
        Image image = loadAnyImage(store, src, g, layers);
        auto platform = image.config.platform();
        for (size_t i = 0; i < images.size(); i++)
            if (entries[i].platform->str() == platform.str())
                throw Error(sources[i].str(), " and ", src.str(), " are both for ", platform.str(),
                            ": an index holds one image a platform; give one of each");
        std::string app = image.config.label("grocker.app.name") + " " +
                          image.config.label("grocker.app.version");
        if (!images.empty()) {
            std::string first = images[0].config.label("grocker.app.name") + " " +
                                images[0].config.label("grocker.app.version");
            if (app != first)
                throw Error(sources[0].str(), " is ",
                            first == " " ? std::string("no grocker runner") : "'" + first + "'",
                            ", ", src.str(), " is ",
                            app == " " ? std::string("no grocker runner") : "'" + app + "'",
                            ": an index is one app and version on several platforms");
        }
        Descriptor d = image.manifestDescriptor;
        d.platform = platform;
        entries.push_back(d);
        images.push_back(std::move(image));
    }
    auto top = putIndex(store, images);
    // Each image's attachments with it (SBOMs, provenance, signatures of a runner built and
    // signed on its own machine), unless they are in DEST's repository already.
    saveWithAttachments(store, top, images, sources, std::nullopt, dest, g);
    if (!g.quiet) {
        std::string platforms;
        for (auto& e : entries)
            platforms += (platforms.empty() ? "" : ", ") + e.platform->str();
        auto app = images[0].config.label("grocker.app.name");
        display().message(
            "index: " + std::to_string(entries.size()) + " platforms (" + platforms + ")" +
            (app.empty() ? std::string()
                         : " of " + app + " " + images[0].config.label("grocker.app.version")) +
            " written to " + dest.str());
    }
    std::cout << top.digest.str() << "\n";
    return 0;
}

} // namespace

Runners registerIndexCommands(CLI::App& app, GlobalOptions& global)
{
    static IndexOptions o;
    auto* index = app.add_subcommand("index", "Image indexes: one name for several platforms");
    index->require_subcommand(1);
    auto* create = index->add_subcommand(
        "create", "Write one index over per-platform images of one app and version");
    create->add_option("DEST", o.dest, "Where to write the index (docker://, oci:, oci-archive:)")
        ->required();
    create->add_option("--from", o.from, "A per-platform image (repeat for each)")
        ->required()
        ->allow_extra_args(false);
    addProgressOption(create, global);
    return {{create, [&global] { return runIndexCreate(global, o); }}};
}

} // namespace grocker
