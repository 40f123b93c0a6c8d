#include "grocker/oci/reference.hh"

#include "grocker/error.hh"
#include "grocker/oci/transport.hh"
#include "helpers.hh"

#include <gtest/gtest.h>
#include <string>

using namespace grocker;
using namespace grocker::oci;

namespace {

const std::string hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const std::string componentRule =
    "' is not valid: lowercase letters and digits, separated by '.', '_', '__' or '-'";
const std::string tagRule =
    "' is not valid: up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'";

std::string parseError(std::string_view text)
{
    try {
        Reference::parse(text);
    } catch (Error& e) {
        return e.message();
    }
    return "";
}

} // namespace

TEST(Reference, OfficialImageIsNormalised)
{
    auto r = Reference::parse("ubuntu");
    EXPECT_EQ(r.domain, "docker.io");
    EXPECT_EQ(r.path, "library/ubuntu");
    EXPECT_EQ(r.tag, "latest");
    EXPECT_FALSE(r.digest);
    EXPECT_EQ(r.repository(), "docker.io/library/ubuntu");
    EXPECT_EQ(r.str(), "docker.io/library/ubuntu:latest");
    EXPECT_EQ(r.apiHost(), "registry-1.docker.io");
}

TEST(Reference, DockerHubForms)
{
    EXPECT_EQ(Reference::parse("ubuntu:22.04").str(), "docker.io/library/ubuntu:22.04");
    EXPECT_EQ(Reference::parse("library/ubuntu").str(), "docker.io/library/ubuntu:latest");
    EXPECT_EQ(Reference::parse("docker.io/ubuntu").str(), "docker.io/library/ubuntu:latest");
    EXPECT_EQ(Reference::parse("docker.io/library/ubuntu").str(),
              "docker.io/library/ubuntu:latest");
    EXPECT_EQ(Reference::parse("bitnami/redis:7").str(), "docker.io/bitnami/redis:7");
    EXPECT_EQ(Reference::parse("docker.io/bitnami/redis").path, "bitnami/redis");
}

TEST(Reference, IndexDockerIoIsDockerIo)
{
    auto r = Reference::parse("index.docker.io/ubuntu:20.04");
    EXPECT_EQ(r.domain, "docker.io");
    EXPECT_EQ(r.path, "library/ubuntu");
    EXPECT_EQ(r.str(), "docker.io/library/ubuntu:20.04");
    EXPECT_EQ(r.apiHost(), "registry-1.docker.io");
    EXPECT_EQ(Reference::parse("index.docker.io/library/ubuntu").str(),
              "docker.io/library/ubuntu:latest");
}

TEST(Reference, LocalhostWithPort)
{
    auto r = Reference::parse("localhost:5000/x");
    EXPECT_EQ(r.domain, "localhost:5000");
    EXPECT_EQ(r.path, "x"); // no "library/" outside Docker Hub
    EXPECT_EQ(r.tag, "latest");
    EXPECT_EQ(r.str(), "localhost:5000/x:latest");
    EXPECT_EQ(r.apiHost(), "localhost:5000");
}

TEST(Reference, LocalhostWithoutPortIsADomain)
{
    auto r = Reference::parse("localhost/x:1");
    EXPECT_EQ(r.domain, "localhost");
    EXPECT_EQ(r.path, "x");
    EXPECT_EQ(r.tag, "1");
}

TEST(Reference, FirstComponentWithoutDotOrPortIsAPath)
{
    auto r = Reference::parse("myorg/app");
    EXPECT_EQ(r.domain, "docker.io");
    EXPECT_EQ(r.path, "myorg/app");
}

TEST(Reference, Ipv6HostWithPortAndTag)
{
    auto r = Reference::parse("[::1]:5000/x:tag");
    EXPECT_EQ(r.domain, "[::1]:5000");
    EXPECT_EQ(r.path, "x");
    EXPECT_EQ(r.tag, "tag");
    EXPECT_EQ(r.str(), "[::1]:5000/x:tag");
    EXPECT_EQ(r.apiHost(), "[::1]:5000");
    EXPECT_EQ(Reference::parse("[fe80::1]/a/b").domain, "[fe80::1]");
}

TEST(Reference, DeepPathWithDigest)
{
    auto r = Reference::parse("host.com/a/b/c@sha256:" + hex);
    EXPECT_EQ(r.domain, "host.com");
    EXPECT_EQ(r.path, "a/b/c");
    EXPECT_EQ(r.tag, ""); // a digest alone: no "latest"
    ASSERT_TRUE(r.digest);
    EXPECT_EQ(r.digest->hex(), hex);
    EXPECT_EQ(r.str(), "host.com/a/b/c@sha256:" + hex);
    EXPECT_EQ(r.apiHost(), "host.com");
}

TEST(Reference, TagAndDigest)
{
    auto r = Reference::parse("ghcr.io/org/app:1.2@sha256:" + hex);
    EXPECT_EQ(r.domain, "ghcr.io");
    EXPECT_EQ(r.path, "org/app");
    EXPECT_EQ(r.tag, "1.2");
    ASSERT_TRUE(r.digest);
    EXPECT_EQ(r.str(), "ghcr.io/org/app:1.2@sha256:" + hex);
}

TEST(Reference, HostPortWithTag)
{
    auto r = Reference::parse("registry.example.com:443/team/app:v1");
    EXPECT_EQ(r.domain, "registry.example.com:443");
    EXPECT_EQ(r.path, "team/app");
    EXPECT_EQ(r.tag, "v1");
}

TEST(Reference, ComponentSeparators)
{
    EXPECT_EQ(Reference::parse("x/a.b_c__d---e").path, "x/a.b_c__d---e");
    EXPECT_EQ(Reference::parse("a_b__c-d").path, "library/a_b__c-d");
    EXPECT_EQ(Reference::parse("x/a0.b1").path, "x/a0.b1");
}

TEST(Reference, TagsAtTheLimits)
{
    std::string t128(128, 'a');
    EXPECT_EQ(Reference::parse("ubuntu:" + t128).tag, t128);
    EXPECT_EQ(Reference::parse("ubuntu:_under").tag, "_under");
    EXPECT_EQ(Reference::parse("ubuntu:V1.0-RC_2").tag, "V1.0-RC_2");
}

TEST(Reference, RejectsEmpty)
{
    EXPECT_EQ(parseError(""), "invalid image reference '': it is empty");
    EXPECT_EQ(parseError(":tag"), "invalid image reference ':tag': the repository name is empty");
}

TEST(Reference, RejectsUppercase)
{
    EXPECT_EQ(parseError("Ubuntu"),
              "invalid image reference 'Ubuntu': repository names must be lowercase");
    EXPECT_EQ(parseError("host.com/Org/app"),
              "invalid image reference 'host.com/Org/app': repository names must be lowercase");
}

TEST(Reference, RejectsLongTag)
{
    std::string t129(129, 'a');
    EXPECT_EQ(parseError("ubuntu:" + t129),
              "invalid image reference 'ubuntu:" + t129 + "': tag '" + t129 + tagRule);
}

TEST(Reference, RejectsBadTags)
{
    EXPECT_EQ(parseError("ubuntu:.x"), "invalid image reference 'ubuntu:.x': tag '.x" + tagRule);
    EXPECT_EQ(parseError("ubuntu:-x"), "invalid image reference 'ubuntu:-x': tag '-x" + tagRule);
    EXPECT_EQ(parseError("ubuntu:"), "invalid image reference 'ubuntu:': tag '" + tagRule);
    EXPECT_EQ(parseError("ubuntu:a+b"), "invalid image reference 'ubuntu:a+b': tag 'a+b" + tagRule);
}

TEST(Reference, RejectsEmptyComponent)
{
    EXPECT_EQ(parseError("a//b"),
              "invalid image reference 'a//b': path component '" + componentRule);
    EXPECT_EQ(parseError("a/"), "invalid image reference 'a/': path component '" + componentRule);
}

TEST(Reference, RejectsBadSeparators)
{
    EXPECT_EQ(parseError("abc-"),
              "invalid image reference 'abc-': path component 'abc-" + componentRule);
    EXPECT_EQ(parseError("-abc"),
              "invalid image reference '-abc': path component '-abc" + componentRule);
    EXPECT_EQ(parseError("a..b"),
              "invalid image reference 'a..b': path component 'a..b" + componentRule);
    EXPECT_EQ(parseError("a___b"),
              "invalid image reference 'a___b': path component 'a___b" + componentRule);
    EXPECT_EQ(parseError("org/a-/b"),
              "invalid image reference 'org/a-/b': path component 'a-" + componentRule);
}

TEST(Reference, RejectsBadDigest)
{
    EXPECT_EQ(parseError("ubuntu@sha256:abc"),
              "invalid image reference 'ubuntu@sha256:abc': malformed digest 'sha256:abc': "
              "expected 64 lowercase hex digits after 'sha256:'");
}

TEST(Reference, RejectsBadHosts)
{
    EXPECT_EQ(parseError("bad_host.com/x"), "invalid image reference 'bad_host.com/x': registry "
                                            "host 'bad_host.com' is not a valid host[:port]");
    EXPECT_EQ(parseError("localhost:abc/x"), "invalid image reference 'localhost:abc/x': registry "
                                             "host 'localhost:abc' is not a valid host[:port]");
    EXPECT_EQ(parseError("host.com:/x"), "invalid image reference 'host.com:/x': registry host "
                                         "'host.com:' is not a valid host[:port]");
    EXPECT_EQ(parseError("-host.com/x"), "invalid image reference '-host.com/x': registry host "
                                         "'-host.com' is not a valid host[:port]");
    EXPECT_EQ(parseError("[::1/x"),
              "invalid image reference '[::1/x': registry host '[::1' is not a valid host[:port]");
}

TEST(Reference, RejectsLongNames)
{
    std::string name = "host.com/" + std::string(250, 'a');
    EXPECT_EQ(parseError(name),
              "invalid image reference '" + name + "': the name is longer than 255 characters");
    // 255 exactly is fine.
    EXPECT_NO_THROW(Reference::parse("host.com/" + std::string(246, 'a')));
}

TEST(Reference, ValidTag)
{
    EXPECT_TRUE(validTag("latest"));
    EXPECT_TRUE(validTag("_x"));
    EXPECT_TRUE(validTag(std::string(128, '9')));
    EXPECT_FALSE(validTag(std::string(129, '9')));
    EXPECT_FALSE(validTag(""));
    EXPECT_FALSE(validTag(".x"));
    EXPECT_FALSE(validTag("-x"));
    EXPECT_FALSE(validTag("a/b"));
}

TEST(FamiliarName, ShortensDockerHub)
{
    EXPECT_EQ(familiarName("docker.io/library/busybox:1"), "busybox:1");
    EXPECT_EQ(familiarName("busybox"), "busybox:latest");
    EXPECT_EQ(familiarName("index.docker.io/library/busybox:1"), "busybox:1");
    EXPECT_EQ(familiarName("docker.io/bitnami/redis:7"), "bitnami/redis:7");
}

TEST(FamiliarName, KeepsOtherRegistries)
{
    EXPECT_EQ(familiarName("ghcr.io/org/app:1.2"), "ghcr.io/org/app:1.2");
    EXPECT_EQ(familiarName("localhost:5000/x"), "localhost:5000/x:latest");
}

TEST(FamiliarName, RejectsInvalid)
{
    EXPECT_THROW(familiarName("Bad"), Error);
}
