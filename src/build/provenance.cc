#include "provenance.hh"

#include "grocker/registry/http.hh"
#include "sbom.hh"

#include <nlohmann/json.hpp>

namespace grocker::build {

using nlohmann::json;

namespace {

// {"sha256": HEX} of "sha256:HEX" (in-toto's DigestSet); empty for an empty digest.
json digestSet(const std::string& digest)
{
    auto colon = digest.find(':');
    if (digest.empty() || colon == std::string::npos) return json::object();
    return {{digest.substr(0, colon), digest.substr(colon + 1)}};
}

json resource(const std::string& name, const std::string& uri, const std::string& digest)
{
    json r = {{"name", name}};
    if (!uri.empty()) r["uri"] = uri;
    if (auto d = digestSet(digest); !d.empty()) r["digest"] = d;
    return r;
}

// What each installed distribution came from: the sdist it was compiled from, the project
// folder (by its tree digest), or the wheel as fetched.
json sourceOf(const CompiledWheel& w)
{
    auto purl = pypiPurl(w.name, w.version);
    if (w.fromProject) {
        auto r = resource(w.sourceFile, "", w.sourceDigest);
        r["annotations"] = {{"kind", "project folder"},
                            {"digestOf", "grocker's tree digest of the folder's files"},
                            {"built", w.file},
                            {"purl", purl}};
        return r;
    }
    if (!w.sourceFile.empty()) {
        auto r = resource(w.sourceFile, purl, w.sourceDigest);
        r["annotations"] = {{"kind", "sdist"}, {"built", w.file}, {"builtDigest", w.digest.str()}};
        return r;
    }
    auto r = resource(w.file, purl, w.digest.str());
    r["annotations"] = {{"kind", "wheel"}};
    return r;
}

} // namespace

std::string provenanceJson(const ProvenanceInputs& in)
{
    json config = json::array();
    for (auto& [name, digest] : in.configFiles)
        config.push_back({{"name", name}, {"digest", digestSet(digest)}});
    json external = {{"release", in.release},
                     {"runtime", in.runtime},
                     {"configuration", config},
                     {"buildDependencies", in.buildDependencies}};
    if (!in.imagePrefix.empty()) external["imagePrefix"] = in.imagePrefix;
    if (!in.overrides.empty()) external["overrides"] = in.overrides;
    if (!in.pipConfDigest.empty()) external["pipConf"] = {{"digest", digestSet(in.pipConfDigest)}};
    if (!in.constraintsDigest.empty())
        external["pipConstraint"] = {{"digest", digestSet(in.constraintsDigest)}};

    json internal = {{"sourceDateEpoch", in.epoch}, {"compression", in.compression}};

    json deps = json::array();
    for (auto& i : in.images)
        deps.push_back(resource(i.role, i.name, i.digest));
    for (auto& w : in.wheels)
        deps.push_back(sourceOf(w));
    // Where the build looked for packages: never a password, a token or a signed query.
    for (auto& u : in.indexUrls)
        deps.push_back(resource("index", registry::withoutCredentials(u), ""));
    for (auto& u : in.linkPages)
        deps.push_back(resource("find-links", registry::withoutCredentials(u), ""));
    if (!in.findLinksDigest.empty()) {
        auto r = resource("find-links folder", "", in.findLinksDigest);
        r["annotations"] = {{"digestOf", "grocker's tree digest of the folder's files"}};
        deps.push_back(r);
    }

    json statement = {
        {"_type", "https://in-toto.io/Statement/v1"},
        {"subject", {{{"name", in.subjectName}, {"digest", digestSet(in.subject.str())}}}},
        {"predicateType", slsaProvenanceV1},
        {"predicate",
         {{"buildDefinition",
           {{"buildType", grockerBuildType},
            {"externalParameters", external},
            {"internalParameters", internal},
            {"resolvedDependencies", deps}}},
          {"runDetails",
           {{"builder",
             {{"id", "https://grocker.invalid/builder"},
              {"version", {{"grocker", GROCKER_VERSION}}}}}}}}}};
    return statement.dump();
}

} // namespace grocker::build
