// grocker sbom: the SBOM attached to an image (src/build/sbom.hh makes them, oci/referrers.hh
// attaches them).

#include "commands.hh"
#include "grocker/error.hh"
#include "grocker/oci/reference.hh"
#include "grocker/oci/referrers.hh"

#include <iostream>

namespace grocker {

using namespace grocker::oci;

namespace {

struct SbomOptions {
    std::string src;
    std::string format = "cyclonedx";
};

int runSbom(const GlobalOptions& g, const SbomOptions& o)
{
    std::string type = o.format == "cyclonedx" ? std::string(media::cycloneDx)
                       : o.format == "spdx"    ? std::string(media::spdx)
                                               : "";
    if (type.empty()) throw UsageError("--format is '", o.format, "': use cyclonedx or spdx");
    auto src = ImageRef::parse(o.src);
    if (src.kind != ImageRef::Kind::Oci && src.kind != ImageRef::Kind::Docker)
        throw UsageError(src.str(), ": SBOMs are attached to images in oci: layouts and "
                                    "registries (docker://), where grocker build writes them");
    auto store = openStore(g);
    auto image = loadAnyImage(store, src, g, false);
    auto subject = image.manifestDescriptor.digest;
    std::vector<Descriptor> found;
    if (src.kind == ImageRef::Kind::Oci) {
        found = loadLayoutReferrers(store, src, subject, type);
    } else {
        registry::Session session(registryOptions(g));
        auto ref = Reference::parse(src.ref);
        found = session.referrers(ref, subject, type);
        if (!found.empty()) session.fetchReferrer(store, ref, found.front());
    }
    if (found.empty())
        throw Error(src.str(), ": no ", o.format == "spdx" ? "SPDX" : "CycloneDX",
                    " SBOM is attached to its image ", image.manifestDescriptor.digest.str(),
                    "; grocker build attaches one to the runners it pushes or writes to oci: "
                    "outputs (unless --no-sbom)");
    std::cout << referrerContent(store, found.front());
    return 0;
}

} // namespace

Runners registerSbomCommand(CLI::App& app, GlobalOptions& global)
{
    static SbomOptions o;
    auto* sbom =
        app.add_subcommand("sbom", "Print the SBOM attached to an image (CycloneDX or SPDX JSON)");
    sbom->add_option("SRC", o.src, "The image: oci:DIR[:TAG] or docker://REF")->required();
    sbom->add_option("--format", o.format, "cyclonedx (default, CycloneDX 1.5) or spdx (SPDX 2.3)");
    return {{sbom, [&global] { return runSbom(global, o); }}};
}

} // namespace grocker
