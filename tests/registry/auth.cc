#include "grocker/registry/auth.hh"

#include "grocker/error.hh"

#include <gtest/gtest.h>
#include <string>

using namespace grocker;
using namespace grocker::registry;

namespace {

std::string parseError(std::string_view header)
{
    try {
        parseWwwAuthenticate(header);
    } catch (Error& e) {
        return e.message();
    }
    return "(no error)";
}

} // namespace

TEST(WwwAuthenticate, DockerHubBearer)
{
    auto cs = parseWwwAuthenticate(
        R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull")");
    ASSERT_EQ(cs.size(), 1u);
    EXPECT_EQ(cs[0].scheme, "bearer");
    EXPECT_EQ(cs[0].params.size(), 3u);
    EXPECT_EQ(cs[0].param("realm"), "https://auth.docker.io/token");
    EXPECT_EQ(cs[0].param("service"), "registry.docker.io");
    EXPECT_EQ(cs[0].param("scope"), "repository:library/ubuntu:pull");
    EXPECT_EQ(cs[0].param("error"), "");
    EXPECT_EQ(cs[0].token68, "");
}

TEST(WwwAuthenticate, Basic)
{
    auto cs = parseWwwAuthenticate(R"(Basic realm="Registry Realm")");
    ASSERT_EQ(cs.size(), 1u);
    EXPECT_EQ(cs[0].scheme, "basic");
    EXPECT_EQ(cs[0].param("realm"), "Registry Realm");
}

TEST(WwwAuthenticate, InsufficientScopeWithCommasInQuotes)
{
    auto cs = parseWwwAuthenticate(
        R"(Bearer realm="https://a.example/token",service="reg",)"
        R"(scope="repository:team/app:pull,push repository:team/base:pull",error="insufficient_scope")");
    ASSERT_EQ(cs.size(), 1u);
    EXPECT_EQ(cs[0].param("scope"), "repository:team/app:pull,push repository:team/base:pull");
    EXPECT_EQ(cs[0].param("error"), "insufficient_scope");
    EXPECT_EQ(cs[0].params.size(), 4u);
}

TEST(WwwAuthenticate, SeveralChallenges)
{
    auto cs = parseWwwAuthenticate(
        R"(Bearer realm="https://a/token",service="s", Basic realm="r", Negotiate)");
    ASSERT_EQ(cs.size(), 3u);
    EXPECT_EQ(cs[0].scheme, "bearer");
    EXPECT_EQ(cs[0].param("realm"), "https://a/token");
    EXPECT_EQ(cs[0].param("service"), "s");
    EXPECT_EQ(cs[1].scheme, "basic");
    EXPECT_EQ(cs[1].param("realm"), "r");
    EXPECT_EQ(cs[2].scheme, "negotiate");
    EXPECT_TRUE(cs[2].params.empty());
}

TEST(WwwAuthenticate, SchemeWithoutParamsFirst)
{
    auto cs = parseWwwAuthenticate(R"(Negotiate, Basic realm="x")");
    ASSERT_EQ(cs.size(), 2u);
    EXPECT_EQ(cs[0].scheme, "negotiate");
    EXPECT_TRUE(cs[0].params.empty());
    EXPECT_EQ(cs[1].param("realm"), "x");
}

TEST(WwwAuthenticate, EscapesInQuotedStrings)
{
    auto cs = parseWwwAuthenticate(R"(Bearer realm="a\"b\\c",service="\s")");
    ASSERT_EQ(cs.size(), 1u);
    EXPECT_EQ(cs[0].param("realm"), "a\"b\\c");
    EXPECT_EQ(cs[0].param("service"), "s");
}

TEST(WwwAuthenticate, CaseAndWhitespace)
{
    auto cs = parseWwwAuthenticate("BEARER  Realm = \"x\" ,\tSERVICE=\"y\"  ");
    ASSERT_EQ(cs.size(), 1u);
    EXPECT_EQ(cs[0].scheme, "bearer");
    EXPECT_EQ(cs[0].param("realm"), "x");
    EXPECT_EQ(cs[0].param("service"), "y");
}

TEST(WwwAuthenticate, UnquotedValues)
{
    auto cs = parseWwwAuthenticate(
        "Bearer realm=https://a.example/token,service=reg,scope=repository:x:pull");
    ASSERT_EQ(cs.size(), 1u);
    EXPECT_EQ(cs[0].param("realm"), "https://a.example/token");
    EXPECT_EQ(cs[0].param("service"), "reg");
    EXPECT_EQ(cs[0].param("scope"), "repository:x:pull");
}

TEST(WwwAuthenticate, EmptyListElements)
{
    auto cs = parseWwwAuthenticate(R"(, Bearer realm="x",, service="y",)");
    ASSERT_EQ(cs.size(), 1u);
    EXPECT_EQ(cs[0].param("realm"), "x");
    EXPECT_EQ(cs[0].param("service"), "y");
}

TEST(WwwAuthenticate, Token68)
{
    auto cs = parseWwwAuthenticate("Negotiate abc123+/==, Basic realm=\"r\"");
    ASSERT_EQ(cs.size(), 2u);
    EXPECT_EQ(cs[0].token68, "abc123+/==");
    EXPECT_TRUE(cs[0].params.empty());
    EXPECT_EQ(cs[1].param("realm"), "r");
}

TEST(WwwAuthenticate, Empty)
{
    EXPECT_TRUE(parseWwwAuthenticate("").empty());
    EXPECT_TRUE(parseWwwAuthenticate("  ").empty());
}

TEST(WwwAuthenticate, Malformed)
{
    EXPECT_EQ(
        parseError(R"(Bearer realm="unterminated)"),
        R"(malformed WWW-Authenticate header 'Bearer realm="unterminated': unterminated quoted string at offset 26)");
    EXPECT_EQ(
        parseError(R"(Bearer realm="x", =oops)"),
        R"(malformed WWW-Authenticate header 'Bearer realm="x", =oops': expected a parameter name at offset 18)");
    EXPECT_EQ(
        parseError(R"(Bearer realm="x" service="y")"),
        R"(malformed WWW-Authenticate header 'Bearer realm="x" service="y"': expected ',' between parameters at offset 17)");
    EXPECT_EQ(
        parseError(R"("quoted")"),
        R"(malformed WWW-Authenticate header '"quoted"': expected an authentication scheme at offset 0)");
    EXPECT_EQ(parseError("Bearer a=b, realm=,"), "malformed WWW-Authenticate header 'Bearer a=b, "
                                                 "realm=,': empty value for 'realm' at offset 18");
    // Not an error: "realm=" alone is a token68 by the grammar.
    EXPECT_EQ(parseWwwAuthenticate("Bearer realm=").at(0).token68, "realm=");
}

TEST(Scope, Parse)
{
    auto s = Scope::parse("repository:team/app:pull,push");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->type, "repository");
    EXPECT_EQ(s->name, "team/app");
    EXPECT_EQ(s->actions, (std::vector<std::string>{"pull", "push"}));
    EXPECT_EQ(s->str(), "repository:team/app:pull,push");
    // A name holding ':' (a host with a port): actions start after the last one.
    auto p = Scope::parse("repository:localhost:5000/x:pull");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->name, "localhost:5000/x");
    EXPECT_EQ(p->actions, (std::vector<std::string>{"pull"}));
    EXPECT_FALSE(Scope::parse("repository:x"));
    EXPECT_FALSE(Scope::parse("nothing"));
    EXPECT_FALSE(Scope::parse(":x:pull"));
}

TEST(Scope, Union)
{
    EXPECT_EQ(unionScopes({"repository:a:pull"}, {"repository:a:push"}),
              (std::vector<std::string>{"repository:a:pull,push"}));
    EXPECT_EQ(unionScopes({"repository:b:pull"}, {"repository:a:push,pull"}),
              (std::vector<std::string>{"repository:a:pull,push", "repository:b:pull"}));
    EXPECT_EQ(unionScopes({"repository:a:pull,push", "registry:catalog:*"}, {"repository:a:pull"}),
              (std::vector<std::string>{"registry:catalog:*", "repository:a:pull,push"}));
    EXPECT_EQ(unionScopes({}, {}), std::vector<std::string>{});
    // What cannot be parsed is kept as it is.
    EXPECT_EQ(unionScopes({"odd"}, {"odd", "repository:a:pull"}),
              (std::vector<std::string>{"odd", "repository:a:pull"}));
}

TEST(Scope, Covers)
{
    EXPECT_TRUE(coversScopes({"repository:a:pull,push"}, {"repository:a:pull"}));
    EXPECT_TRUE(coversScopes({"repository:a:pull,push", "repository:b:pull"},
                             {"repository:b:pull", "repository:a:push"}));
    EXPECT_FALSE(coversScopes({"repository:a:pull"}, {"repository:a:pull,push"}));
    EXPECT_FALSE(coversScopes({"repository:a:pull"}, {"repository:b:pull"}));
    EXPECT_TRUE(coversScopes({}, {}));
    EXPECT_FALSE(coversScopes({}, {"repository:a:pull"}));
}

TEST(Scope, SplitAndRepository)
{
    EXPECT_EQ(splitScopes("repository:a:pull  repository:b:pull,push "),
              (std::vector<std::string>{"repository:a:pull", "repository:b:pull,push"}));
    EXPECT_TRUE(splitScopes("").empty());
    EXPECT_EQ(repositoryScope("team/app", false), "repository:team/app:pull");
    EXPECT_EQ(repositoryScope("team/app", true), "repository:team/app:pull,push");
}
