#include "grocker/registry/http.hh"

#include <cstdlib>
#include <gtest/gtest.h>
#include <string>

using namespace grocker::registry;

TEST(ResolveUrl, Rfc3986Examples)
{
    const std::string base = "http://a/b/c/d;p?q";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"g:h", "g:h"},
        {"g", "http://a/b/c/g"},
        {"./g", "http://a/b/c/g"},
        {"g/", "http://a/b/c/g/"},
        {"/g", "http://a/g"},
        {"//g", "http://g"},
        {"?y", "http://a/b/c/d;p?y"},
        {"g?y", "http://a/b/c/g?y"},
        {";x", "http://a/b/c/;x"},
        {"g;x", "http://a/b/c/g;x"},
        {"", "http://a/b/c/d;p?q"},
        {".", "http://a/b/c/"},
        {"./", "http://a/b/c/"},
        {"..", "http://a/b/"},
        {"../", "http://a/b/"},
        {"../g", "http://a/b/g"},
        {"../..", "http://a/"},
        {"../../", "http://a/"},
        {"../../g", "http://a/g"},
        {"../../../g", "http://a/g"},
        {"../../../../g", "http://a/g"},
        {"/./g", "http://a/g"},
        {"/../g", "http://a/g"},
        {"g.", "http://a/b/c/g."},
        {".g", "http://a/b/c/.g"},
        {"g..", "http://a/b/c/g.."},
        {"..g", "http://a/b/c/..g"},
        {"./../g", "http://a/b/g"},
        {"./g/.", "http://a/b/c/g/"},
        {"g/./h", "http://a/b/c/g/h"},
        {"g/../h", "http://a/b/c/h"},
        {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
        {"g;x=1/../y", "http://a/b/c/y"},
        {"g?y/./x", "http://a/b/c/g?y/./x"},
    };
    for (auto& [ref, want] : cases)
        EXPECT_EQ(resolveUrl(base, ref), want) << "reference '" << ref << "'";
}

TEST(ResolveUrl, UploadLocations)
{
    // Registry 2.8 answers absolute Locations; others relative ones. The query (the upload
    // state) is always kept.
    const std::string post = "http://127.0.0.1:5000/v2/team/app/blobs/uploads/";
    EXPECT_EQ(resolveUrl(post, "/v2/team/app/blobs/uploads/9f2c?_state=abc%3D%3D&x=1"),
              "http://127.0.0.1:5000/v2/team/app/blobs/uploads/9f2c?_state=abc%3D%3D&x=1");
    EXPECT_EQ(resolveUrl(post, "http://127.0.0.1:5000/v2/team/app/blobs/uploads/9f2c?_state=abc"),
              "http://127.0.0.1:5000/v2/team/app/blobs/uploads/9f2c?_state=abc");
    EXPECT_EQ(resolveUrl(post, "9f2c?_state=abc"),
              "http://127.0.0.1:5000/v2/team/app/blobs/uploads/9f2c?_state=abc");
    EXPECT_EQ(resolveUrl("https://r.example/v2/x/blobs/uploads/1?_state=old", "?_state=new"),
              "https://r.example/v2/x/blobs/uploads/1?_state=new");
    EXPECT_EQ(
        resolveUrl("https://r.example/v2/x/blobs/sha256:ab", "https://cdn.example/b/ab?sig=1"),
        "https://cdn.example/b/ab?sig=1");
    EXPECT_EQ(resolveUrl("https://r.example/v2/", "//cdn.example/x"), "https://cdn.example/x");
    EXPECT_EQ(resolveUrl("http://[::1]:5000/v2/x/blobs/uploads/", "/v2/x/blobs/uploads/u?s=1"),
              "http://[::1]:5000/v2/x/blobs/uploads/u?s=1");
    EXPECT_EQ(resolveUrl("https://r.example", "v2/"), "https://r.example/v2/");
}

TEST(Url, Origin)
{
    EXPECT_EQ(urlOrigin("HTTPS://Example.COM/v2/"), "https://example.com:443");
    EXPECT_EQ(urlOrigin("http://example.com"), "http://example.com:80");
    EXPECT_EQ(urlOrigin("http://127.0.0.1:5000/v2/x?y"), "http://127.0.0.1:5000");
    EXPECT_EQ(urlOrigin("http://[::1]:5000/v2/"), "http://[::1]:5000");
    EXPECT_EQ(urlOrigin("https://user:pw@host.example/x"), "https://host.example:443");
    EXPECT_NE(urlOrigin("https://r.example/v2/"), urlOrigin("https://cdn.example/v2/"));
    EXPECT_NE(urlOrigin("https://r.example/v2/"), urlOrigin("http://r.example/v2/"));
    EXPECT_EQ(urlHost("http://[::1]:5000/v2/"), "::1");
    EXPECT_EQ(urlHost("https://Registry.Example:5000/v2/"), "registry.example");
}

TEST(Url, AddQueryAndEncode)
{
    EXPECT_EQ(addQuery("http://h/p", "digest", "sha256:ab"), "http://h/p?digest=sha256%3Aab");
    EXPECT_EQ(addQuery("http://h/p?_state=x", "digest", "sha256:ab"),
              "http://h/p?_state=x&digest=sha256%3Aab");
    EXPECT_EQ(addQuery("http://h/p?", "a", "b c/d"), "http://h/p?a=b%20c%2Fd");
    EXPECT_EQ(addQuery("http://h/p?x=1&", "a", "b"), "http://h/p?x=1&a=b");
    EXPECT_EQ(percentEncode("AZaz09-._~ :/?&=+"), "AZaz09-._~%20%3A%2F%3F%26%3D%2B");
}

TEST(Url, RedactKeepsNoQuery)
{
    EXPECT_EQ(redactUrl("http://h/v2/x/blobs/uploads/u?_state=SECRET&digest=x"),
              "http://h/v2/x/blobs/uploads/u?…");
    EXPECT_EQ(redactUrl("https://cdn/b?X-Amz-Signature=SECRET"), "https://cdn/b?…");
    EXPECT_EQ(redactUrl("https://h/v2/"), "https://h/v2/");
    // An index URL's credentials: the password hidden, wherever the URL is named.
    EXPECT_EQ(redactUrl("https://ci:SECRET@pypi.example/simple/x/?q=1"),
              "https://ci:***@pypi.example/simple/x/?…");
    EXPECT_EQ(redactUrl("https://token-only@h/simple/"), "https://***@h/simple/");
    EXPECT_EQ(redactUrl("https://h/a@b:c"), "https://h/a@b:c");
}

TEST(RetryAfter, Parses)
{
    const std::time_t when = 1445412480; // Wed, 21 Oct 2015 07:28:00 GMT
    EXPECT_EQ(parseRetryAfter("120", when), 120.0);
    EXPECT_EQ(parseRetryAfter(" 3 ", when), 3.0);
    EXPECT_EQ(parseRetryAfter("0", when), 0.0);
    EXPECT_EQ(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", when - 30), 30.0);
    EXPECT_EQ(parseRetryAfter("Wednesday, 21-Oct-15 07:28:00 GMT", when - 30), 30.0);
    EXPECT_EQ(parseRetryAfter("Wed Oct 21 07:28:00 2015", when - 30), 30.0);
    EXPECT_EQ(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", when + 100), 0.0); // in the past
    EXPECT_FALSE(parseRetryAfter("", when));
    EXPECT_FALSE(parseRetryAfter("soon", when));
    EXPECT_FALSE(parseRetryAfter("-5", when));
    EXPECT_FALSE(parseRetryAfter("1.5", when));
    EXPECT_FALSE(parseRetryAfter("99999999999999", when));
    EXPECT_FALSE(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT trailing", when));
}

TEST(UploadRange, Parses)
{
    EXPECT_EQ(parseUploadRange("0-1023"), 1024u);
    EXPECT_EQ(parseUploadRange("bytes=0-99"), 100u);
    EXPECT_EQ(parseUploadRange(" 0-4194303 "), 4194304u);
    // Registry 2.8 says 0-0 for an empty upload.
    EXPECT_EQ(parseUploadRange("0-0"), 0u);
    EXPECT_FALSE(parseUploadRange("5-10"));
    EXPECT_FALSE(parseUploadRange("0-"));
    EXPECT_FALSE(parseUploadRange("abc"));
    EXPECT_FALSE(parseUploadRange(""));
    EXPECT_FALSE(parseUploadRange("0-99999999999999999999999"));
}

TEST(ResumedDownload, BytesToSkip)
{
    EXPECT_EQ(bytesToSkip(206, "bytes 100-199/200", 100), 0u);
    EXPECT_EQ(bytesToSkip(206, "bytes 100-199/*", 100), 0u);
    // The range was ignored: the whole blob comes again, its first bytes are already here.
    EXPECT_EQ(bytesToSkip(200, "", 100), 100u);
    EXPECT_EQ(bytesToSkip(200, "", 0), 0u);
    EXPECT_FALSE(bytesToSkip(206, "bytes 50-199/200", 100));
    EXPECT_FALSE(bytesToSkip(206, "", 100));
    EXPECT_FALSE(bytesToSkip(206, "items 100-199/200", 100));
    EXPECT_FALSE(bytesToSkip(416, "bytes */200", 200));
}

TEST(Loopback, Hosts)
{
    for (auto h : {"localhost", "127.0.0.1", "127.1.2.3", "127.255.255.255", "::1", "[::1]"})
        EXPECT_TRUE(isLoopbackHost(h)) << h;
    for (auto h : {"127.0.0.256", "127.0.0", "10.0.0.1", "127.example.com", "localhost.example.com",
                   "", "128.0.0.1", "::2", "0.0.0.0"})
        EXPECT_FALSE(isLoopbackHost(h)) << h;
}

TEST(TransferLimits, StallMessages)
{
    TransferLimits l;
    l.connect = std::chrono::seconds(30);
    l.stall = std::chrono::seconds(60);
    const std::string hint =
        "; check that it is up and reachable, or raise GROCKER_REGISTRY_TIMEOUT (";
    EXPECT_EQ(stallMessage("10.0.0.1:5000", l, false, false, 0, 0),
              "no connection to 10.0.0.1:5000 within 30 s" + hint + "30 s now)");
    EXPECT_EQ(stallMessage("10.0.0.1:5000", l, true, false, 0, 0),
              "10.0.0.1:5000 sent nothing for 60 s" + hint + "60 s now)");
    EXPECT_EQ(stallMessage("10.0.0.1:5000", l, true, false, 0, 42),
              "10.0.0.1:5000 sent only 42 bytes of headers in 60 s" + hint + "60 s now)");
    EXPECT_EQ(stallMessage("10.0.0.1:5000", l, true, false, 60, 0),
              "10.0.0.1:5000 sent only 60 bytes in 60 s (under 1.00 kB/s)" + hint + "60 s now)");
    EXPECT_EQ(stallMessage("10.0.0.1:5000", l, true, true, 0, 0),
              "10.0.0.1:5000 took nothing for 60 s" + hint + "60 s now)");
    EXPECT_EQ(stallMessage("10.0.0.1:5000", l, true, true, 7, 0),
              "10.0.0.1:5000 took only 7 bytes in 60 s (under 1.00 kB/s)" + hint + "60 s now)");
}

TEST(TransferLimits, FromEnvironment)
{
    ::unsetenv("GROCKER_REGISTRY_TIMEOUT");
    auto d = transferLimitsFromEnvironment();
    EXPECT_EQ(d.connect, std::chrono::seconds(30));
    EXPECT_EQ(d.stall, std::chrono::seconds(60));
    EXPECT_EQ(d.minSpeed, 1000u);
    ::setenv("GROCKER_REGISTRY_TIMEOUT", "5", 1);
    auto s = transferLimitsFromEnvironment();
    EXPECT_EQ(s.connect, std::chrono::seconds(5));
    EXPECT_EQ(s.stall, std::chrono::seconds(5));
    for (const char* bad : {"0", "3601", "-1", "5s", "1e3", " 5", "99999999999"}) {
        ::setenv("GROCKER_REGISTRY_TIMEOUT", bad, 1);
        try {
            transferLimitsFromEnvironment();
            ADD_FAILURE() << "accepted '" << bad << "'";
        } catch (grocker::UsageError& e) {
            EXPECT_EQ(e.message(), std::string("GROCKER_REGISTRY_TIMEOUT='") + bad +
                                       "' is not a number of seconds from 1 to 3600");
        }
    }
    ::unsetenv("GROCKER_REGISTRY_TIMEOUT");
}

TEST(UrlPeer, HostAndPort)
{
    EXPECT_EQ(urlPeer("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
    EXPECT_EQ(urlPeer("https://Registry.Example:443/v2/x?y"), "registry.example:443");
    EXPECT_EQ(urlPeer("https://cdn.example/blob"), "cdn.example:443");
}
