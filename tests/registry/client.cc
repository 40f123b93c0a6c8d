#include "grocker/registry/client.hh"

#include "grocker/registry/credentials.hh"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

using namespace grocker;
using namespace grocker::registry;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

HttpResponse answer(long status, std::string body, std::string reason = {})
{
    HttpResponse r;
    r.status = status;
    r.reason = std::move(reason);
    r.body = std::move(body);
    return r;
}

const std::string unknownManifest =
    R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v9"}}]})";

} // namespace

TEST(ApiErrors, Parse)
{
    auto e = parseApiErrors(
        R"({"errors":[{"code":"DENIED","message":"no"},{"code":"UNAUTHORIZED"},{"x":1},"junk"]})");
    ASSERT_EQ(e.size(), 2u);
    EXPECT_EQ(e[0].code, "DENIED");
    EXPECT_EQ(e[0].message, "no");
    EXPECT_EQ(e[1].code, "UNAUTHORIZED");
    EXPECT_EQ(e[1].message, "");
    EXPECT_TRUE(parseApiErrors("<html>502</html>").empty());
    EXPECT_TRUE(parseApiErrors(R"({"errors": "x"})").empty());
    EXPECT_TRUE(parseApiErrors("").empty());
}

TEST(RegistryError, NotFound)
{
    auto e =
        makeRegistryError({"127.0.0.1:5000", "test/app", "GET", "/v2/test/app/manifests/v9", ""},
                          answer(404, unknownManifest, "Not Found"));
    EXPECT_EQ(
        e.message(),
        "127.0.0.1:5000 answered 404 Not Found to GET /v2/test/app/manifests/v9: MANIFEST_UNKNOWN: "
        "manifest unknown; check the repository name and the tag or digest "
        "(127.0.0.1:5000/test/app)");
    EXPECT_EQ(e.status(), 404);
    EXPECT_TRUE(e.hasCode("MANIFEST_UNKNOWN"));
    EXPECT_FALSE(e.hasCode("DENIED"));
}

TEST(RegistryError, UnauthorizedHints)
{
    const std::string body =
        R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})";
    // HTTP/2 has no reason phrase: the usual one is supplied.
    EXPECT_EQ(
        makeRegistryError({"reg.example", "team/app", "HEAD", "/v2/team/app/blobs/sha256:ab", ""},
                          answer(401, body))
            .message(),
        "reg.example answered 401 Unauthorized to HEAD /v2/team/app/blobs/sha256:ab: UNAUTHORIZED: "
        "authentication "
        "required; log in with 'grocker login reg.example', or pass --authfile FILE");
    EXPECT_EQ(makeRegistryError({"reg.example", "team/app", "POST", "/v2/team/app/blobs/uploads/",
                                 "/home/u/auth.json"},
                                answer(401, body, "Unauthorized"))
                  .message(),
              "reg.example answered 401 Unauthorized to POST /v2/team/app/blobs/uploads/: "
              "UNAUTHORIZED: authentication "
              "required; the credentials from /home/u/auth.json were refused: log in again with "
              "'grocker login reg.example'");
    EXPECT_EQ(makeRegistryError({"reg.example", "team/app", "POST", "/v2/team/app/blobs/uploads/",
                                 "/home/u/auth.json", true},
                                answer(401, body, "Unauthorized"))
                  .message(),
              "reg.example answered 401 Unauthorized to POST /v2/team/app/blobs/uploads/: "
              "UNAUTHORIZED: authentication "
              "required; the credentials from /home/u/auth.json do not allow this on "
              "reg.example/team/app: check the "
              "account's permissions, or log in as another user with 'grocker login reg.example'");
}

TEST(RegistryError, OtherHints)
{
    EXPECT_EQ(
        makeRegistryError(
            {"reg.example", "team/app", "PUT", "/v2/team/app/manifests/v1", ""},
            answer(
                403,
                R"({"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]})"))
            .message(),
        "reg.example answered 403 Forbidden to PUT /v2/team/app/manifests/v1: DENIED: requested "
        "access to the "
        "resource is denied; the credentials used have no right to do this on "
        "reg.example/team/app: check the "
        "account's permissions");
    EXPECT_EQ(
        makeRegistryError({"reg.example", "x", "PATCH", "/v2/x/blobs/uploads/u", ""},
                          answer(413, "<html><body>413 Request Entity Too Large</body></html>"))
            .message(),
        "reg.example answered 413 Payload Too Large to PATCH /v2/x/blobs/uploads/u; the registry, "
        "or a proxy in front "
        "of it, refuses a body this large: raise its limit (nginx: client_max_body_size)");
    auto limited = answer(429, R"({"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]})");
    limited.headers.emplace_back("retry-after", "3600");
    EXPECT_EQ(
        makeRegistryError({"reg.example", "x", "GET", "/v2/x/manifests/1", ""}, limited).message(),
        "reg.example answered 429 Too Many Requests to GET /v2/x/manifests/1: TOOMANYREQUESTS: "
        "slow down; the "
        "registry limits how often it may be asked: wait 3600 s and try again");
    EXPECT_EQ(makeRegistryError({"reg.example", "x", "GET", "/v2/", ""},
                                answer(503, "upstream down\nmore", "Service Unavailable"))
                  .message(),
              "reg.example answered 503 Service Unavailable to GET /v2/: upstream down; the "
              "registry failed: try again later, "
              "or ask its administrators");
}

TEST(RegistryError, NeverShowsSecrets)
{
    registerSecret("Pl4nted-T0ken-9f8e7d");
    // A token server that echoes what it got, and an upload URL whose query holds state.
    auto r = answer(
        401, R"({"errors":[{"code":"UNAUTHORIZED","message":"bad token Pl4nted-T0ken-9f8e7d"}]})");
    auto e =
        makeRegistryError({"the token server https://auth.example/token", "", "GET",
                           "https://auth.example/token?scope=x&password=Pl4nted-T0ken-9f8e7d", ""},
                          r);
    EXPECT_THAT(e.message(), Not(HasSubstr("Pl4nted")));
    EXPECT_EQ(
        e.message(),
        "the token server https://auth.example/token answered 401 Unauthorized to GET "
        "https://auth.example/token?…: UNAUTHORIZED: bad token ***; log in with 'grocker login the "
        "token server https://auth.example/token', or pass --authfile FILE");
    auto u = makeRegistryError(
        {"reg.example", "x", "PUT", "/v2/x/blobs/uploads/u?_state=SECRETSTATE&digest=sha256:ab",
         ""},
        answer(
            400,
            R"({"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]})"));
    EXPECT_THAT(u.message(), Not(HasSubstr("SECRETSTATE")));
    EXPECT_EQ(u.message(), "reg.example answered 400 Bad Request to PUT /v2/x/blobs/uploads/u: "
                           "DIGEST_INVALID: provided "
                           "digest did not match uploaded content");
}

TEST(Retry, Statuses)
{
    for (long s : {429, 500, 502, 503, 504, 599})
        EXPECT_TRUE(retryableStatus(s)) << s;
    for (long s : {200, 201, 202, 204, 301, 400, 401, 403, 404, 405, 413, 416, 501, 505})
        EXPECT_FALSE(retryableStatus(s)) << s;
}

TEST(Retry, BackoffIsBoundedAndJittered)
{
    RetryPolicy p;
    p.base = std::chrono::milliseconds(400);
    p.max = std::chrono::milliseconds(15000);
    std::mt19937_64 rng(42);
    std::set<int64_t> seen;
    for (int i = 0; i < 200; i++) {
        auto d1 = backoffDelay(p, 1, rng).count();
        EXPECT_GE(d1, 200);
        EXPECT_LE(d1, 400);
        seen.insert(d1);
        auto d3 = backoffDelay(p, 3, rng).count();
        EXPECT_GE(d3, 800);
        EXPECT_LE(d3, 1600);
        auto d30 = backoffDelay(p, 30, rng).count();
        EXPECT_GE(d30, 7500);
        EXPECT_LE(d30, 15000);
    }
    EXPECT_GT(seen.size(), 50u); // jittered, not a fixed pause
}

TEST(Retry, StallsAreTriedTwiceOthersFiveTimes)
{
    RetryPolicy p; // 5 attempts, 2 of them for stalls
    TransportError reset(TransportError::Kind::Transient, "reset");
    TransportError stall(TransportError::Kind::Stalled, "sent nothing");
    int stalls = 0;
    for (int failures = 1; failures < 5; failures++)
        EXPECT_TRUE(retryTransportError(p, reset, failures, stalls)) << failures;
    EXPECT_FALSE(retryTransportError(p, reset, 5, stalls));
    EXPECT_EQ(stalls, 0);

    EXPECT_TRUE(retryTransportError(p, stall, 1, stalls));
    EXPECT_FALSE(retryTransportError(p, stall, 2, stalls));
    // Resets in between do not reset the stall count: the bound holds whatever the mix.
    stalls = 0;
    EXPECT_TRUE(retryTransportError(p, stall, 1, stalls));
    EXPECT_TRUE(retryTransportError(p, reset, 2, stalls));
    EXPECT_FALSE(retryTransportError(p, stall, 3, stalls));
    EXPECT_TRUE(stall.transient());
}
