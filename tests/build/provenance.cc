// The provenance statement: in-toto v1 with a SLSA v1 predicate, made from what a build knows
// (tests/integration/build/sbom.sh checks the one of a real build).

#include "build/provenance.hh"

#include "grocker/registry/http.hh"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace grocker;
using namespace grocker::build;
using nlohmann::json;

namespace {

ProvenanceInputs inputs()
{
    ProvenanceInputs in;
    in.subjectName = "registry.test/team/app:1.0";
    in.subject = oci::sha256("runner");
    in.release = "app==1.0";
    in.runtime = "bookworm/3.11";
    in.imagePrefix = "registry.test/team";
    in.compression = "gzip";
    in.epoch = 1700000000;
    in.configFiles = {{".grocker.yml", oci::sha256("config").str()}};
    in.overrides = {{"envs", "TOKEN"}};
    in.indexUrls = {"https://__token__:s3cret@pypi.test/simple/?sig=abc",
                    "https://TOKEN2@mirror.test/simple"};
    in.linkPages = {"https://u:p@links.test/wheels/"};
    in.images = {{"base", "mmdebstrap bookworm", oci::sha256("base").str()},
                 {"root", "registry.test/team/grocker-root:1", oci::sha256("root").str()},
                 {"compiler", "registry.test/team/grocker-compiler:1", ""}};
    CompiledWheel sdist{"Django", "4.2", "django-4.2-py3-none-any.whl", oci::sha256("dw")};
    sdist.sourceFile = "Django-4.2.tar.gz";
    sdist.sourceDigest = oci::sha256("sdist").str();
    CompiledWheel fetched{"idna", "3.4", "idna-3.4-py3-none-any.whl", oci::sha256("iw")};
    CompiledWheel project{"app", "1.0", "app-1.0-py3-none-any.whl", oci::sha256("aw")};
    project.sourceFile = "app";
    project.sourceDigest = oci::sha256("tree").str();
    project.fromProject = true;
    in.wheels = {sdist, fetched, project};
    return in;
}

json dependency(const json& statement, const std::string& name)
{
    for (auto& d : statement["predicate"]["buildDefinition"]["resolvedDependencies"])
        if (d["name"] == name) return d;
    ADD_FAILURE() << "no resolved dependency named " << name;
    return json::object();
}

} // namespace

TEST(Provenance, InTotoStatementWithSlsaPredicate)
{
    auto j = json::parse(provenanceJson(inputs()));
    EXPECT_EQ(j["_type"], "https://in-toto.io/Statement/v1");
    EXPECT_EQ(j["predicateType"], "https://slsa.dev/provenance/v1");
    EXPECT_EQ(j["subject"],
              json::parse(R"([{"name": "registry.test/team/app:1.0", "digest": {"sha256": ")" +
                          oci::sha256("runner").hex() + R"("}}])"));
    auto& def = j["predicate"]["buildDefinition"];
    EXPECT_EQ(def["buildType"], grockerBuildType);
    EXPECT_EQ(def["externalParameters"]["release"], "app==1.0");
    EXPECT_EQ(def["externalParameters"]["runtime"], "bookworm/3.11");
    EXPECT_EQ(def["externalParameters"]["configuration"][0]["digest"]["sha256"],
              oci::sha256("config").hex());
    EXPECT_EQ(def["internalParameters"]["sourceDateEpoch"], 1700000000);
    auto& builder = j["predicate"]["runDetails"]["builder"];
    EXPECT_EQ(builder["id"], "https://grocker.invalid/builder");
    EXPECT_EQ(builder["version"]["grocker"], GROCKER_VERSION);
}

TEST(Provenance, ResolvedDependenciesByDigest)
{
    auto j = json::parse(provenanceJson(inputs()));
    EXPECT_EQ(dependency(j, "root")["digest"]["sha256"], oci::sha256("root").hex());
    EXPECT_EQ(dependency(j, "root")["uri"], "registry.test/team/grocker-root:1");
    // An unknown digest is left out, not written empty.
    EXPECT_FALSE(dependency(j, "compiler").contains("digest"));
    auto sdist = dependency(j, "Django-4.2.tar.gz");
    EXPECT_EQ(sdist["digest"]["sha256"], oci::sha256("sdist").hex());
    EXPECT_EQ(sdist["uri"], "pkg:pypi/django@4.2");
    EXPECT_EQ(sdist["annotations"]["built"], "django-4.2-py3-none-any.whl");
    auto wheel = dependency(j, "idna-3.4-py3-none-any.whl");
    EXPECT_EQ(wheel["digest"]["sha256"], oci::sha256("iw").hex());
    EXPECT_EQ(wheel["annotations"]["kind"], "wheel");
    auto project = dependency(j, "app");
    EXPECT_EQ(project["digest"]["sha256"], oci::sha256("tree").hex());
    EXPECT_EQ(project["annotations"]["kind"], "project folder");
}

TEST(Provenance, NoCredentialsAndTheSameBytes)
{
    auto text = provenanceJson(inputs());
    for (auto secret : {"s3cret", "__token__", "TOKEN2", "sig=abc", "u:p"})
        EXPECT_EQ(text.find(secret), std::string::npos) << secret;
    auto j = json::parse(text);
    std::vector<std::string> indexes;
    for (auto& d : j["predicate"]["buildDefinition"]["resolvedDependencies"])
        if (d["name"] == "index" || d["name"] == "find-links") indexes.push_back(d["uri"]);
    EXPECT_EQ(indexes,
              (std::vector<std::string>{"https://pypi.test/simple/", "https://mirror.test/simple",
                                        "https://links.test/wheels/"}));
    EXPECT_EQ(provenanceJson(inputs()), text);
}

TEST(Provenance, UrlsWithoutCredentials)
{
    EXPECT_EQ(registry::withoutCredentials("https://user:p@ss@pypi.test/simple/"),
              "https://pypi.test/simple/");
    EXPECT_EQ(registry::withoutCredentials("https://pypi.test/simple/a@b"),
              "https://pypi.test/simple/a@b");
    EXPECT_EQ(registry::withoutCredentials("https://pypi.test/?q=a@b#x"), "https://pypi.test/");
    EXPECT_EQ(registry::withoutCredentials("https://tok@pypi.test"), "https://pypi.test");
    EXPECT_EQ(registry::withoutCredentials("not a url"), "not a url");
}
