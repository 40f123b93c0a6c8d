// grocker sbom and grocker attestations: what is attached to an image (OCI 1.1 referrers:
// src/build/sbom.hh and provenance.hh make them, oci/referrers.hh attaches them), from an oci:
// layout, an oci-archive or a registry.

#include "commands.hh"
#include "grocker/error.hh"
#include "grocker/oci/reference.hh"
#include "grocker/oci/referrers.hh"
#include "grocker/oci/signature.hh"
#include "grocker/strings.hh"

#include <iostream>
#include <nlohmann/json.hpp>

namespace grocker {

using namespace grocker::oci;

namespace {

// The attachments of one image, wherever it is, read into the store.
struct Attached {
    Store store;
    ImageRef src;
    Image image;
    std::vector<Descriptor> referrers;

    Attached(const GlobalOptions& g, const std::string& text, const std::string& artifactType)
        : store(openStore(g)), src(imageWithAttachments(text, "attachments"))
    {
        image = loadAnyImage(store, src, g, false);
        referrers = loadAttachments(store, src, g, image.manifestDescriptor.digest);
        std::erase_if(referrers, [&](const Descriptor& d) {
            return !artifactType.empty() && d.artifactType != artifactType;
        });
        // The same order wherever they are read from.
        std::sort(referrers.begin(), referrers.end(), [](auto& a, auto& b) {
            return std::tie(a.artifactType, a.digest) < std::tie(b.artifactType, b.digest);
        });
    }

    std::string content(const Descriptor& d) { return referrerContent(store, d); }
};

// "cyclonedx", "spdx", "provenance" → an artifactType; "" for another word.
std::string artifactTypeOf(const std::string& kind)
{
    if (kind == "cyclonedx") return std::string(media::cycloneDx);
    if (kind == "spdx") return std::string(media::spdx);
    if (kind == "provenance") return std::string(media::inToto);
    if (kind == "sigstore") return std::string(media::sigstoreBundle);
    return "";
}

struct SbomOptions {
    std::string src;
    std::string format = "cyclonedx";
};

int runSbom(const GlobalOptions& g, const SbomOptions& o)
{
    if (o.format != "cyclonedx" && o.format != "spdx")
        throw UsageError("--format is '", o.format, "': use cyclonedx or spdx");
    Attached a(g, o.src, artifactTypeOf(o.format));
    if (a.referrers.empty())
        throw Error(a.src.str(), ": no ", o.format == "spdx" ? "SPDX" : "CycloneDX",
                    " SBOM is attached to its image ", a.image.manifestDescriptor.digest.str(),
                    "; grocker build attaches one to the runners it pushes or writes to oci: "
                    "and oci-archive: outputs (unless --no-sbom)");
    std::cout << a.content(a.referrers.front());
    return 0;
}

struct AttestationsOptions {
    std::string src;
    std::string print;
    bool json = false;
};

int runAttestations(const GlobalOptions& g, const AttestationsOptions& o)
{
    Attached a(g, o.src, "");
    if (!o.print.empty()) {
        // A kind (its first attachment), or a digest or a prefix of one.
        auto type = artifactTypeOf(o.print);
        std::vector<const Descriptor*> hits;
        for (auto& d : a.referrers) {
            bool hit = type.empty() ? d.digest.str().starts_with(o.print) ||
                                          d.digest.hex().starts_with(o.print)
                                    : d.artifactType == type;
            if (hit) hits.push_back(&d);
        }
        if (hits.empty())
            throw Error(a.src.str(), ": no attachment is '", o.print, "' (",
                        plural(a.referrers.size(), "attachment", "attachments"),
                        "; use cyclonedx, spdx, provenance, sigstore, or a digest that grocker "
                        "attestations lists)");
        if (type.empty() && hits.size() > 1)
            throw UsageError("'", o.print, "' begins ", hits.size(),
                             " attachments' digests: give more of it");
        std::cout << a.content(*hits.front());
        return 0;
    }
    if (o.json) {
        auto list = nlohmann::json::array();
        for (auto& d : a.referrers)
            list.push_back(toJson(d));
        std::cout << nlohmann::json{{"subject", a.image.manifestDescriptor.digest.str()},
                                    {"attachments", list}}
                         .dump(2)
                  << "\n";
        return 0;
    }
    std::cout << a.src.str() << " (" << a.image.manifestDescriptor.digest.str()
              << "): " << plural(a.referrers.size(), "attachment", "attachments") << "\n";
    for (auto& d : a.referrers) {
        std::cout << "  " << d.digest.str() << "  " << d.artifactType;
        if (auto it = d.annotations.find(predicateTypeAnnotation); it != d.annotations.end())
            std::cout << " (" << it->second << ")";
        std::cout << "  " << humanBytes(d.size) << "\n";
    }
    return 0;
}

} // namespace

Runners registerAttestationCommands(CLI::App& app, GlobalOptions& global)
{
    static SbomOptions so;
    auto* sbom =
        app.add_subcommand("sbom", "Print the SBOM attached to an image (CycloneDX or SPDX JSON)");
    sbom->add_option("SRC", so.src, "The image: oci:DIR[:TAG], oci-archive:FILE or docker://REF")
        ->required();
    sbom->add_option("--format", so.format,
                     "cyclonedx (default, CycloneDX 1.5) or spdx (SPDX 2.3)");

    static AttestationsOptions ao;
    auto* att = app.add_subcommand(
        "attestations",
        "List what is attached to an image (SBOMs, provenance, signatures), or print one");
    att->add_option("SRC", ao.src, "The image: oci:DIR[:TAG], oci-archive:FILE or docker://REF")
        ->required();
    att->add_option("--print", ao.print,
                    "Print one attachment's content: cyclonedx, spdx, provenance, sigstore (a "
                    "signature's bundle), or its digest (or the start of it)");
    att->add_flag("--json", ao.json, "List them as JSON (their descriptors)");
    return {{sbom, [&global] { return runSbom(global, so); }},
            {att, [&global] { return runAttestations(global, ao); }}};
}

} // namespace grocker
