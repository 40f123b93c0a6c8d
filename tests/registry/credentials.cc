#include "grocker/registry/credentials.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/registry/auth.hh"
#include "helpers.hh"

#include <cstdlib>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <optional>
#include <sys/stat.h>

using namespace grocker;
using namespace grocker::registry;
using grocker::test::TempDir;
using grocker::test::writeTestFile;
using ::testing::HasSubstr;
using ::testing::Not;

namespace fs = std::filesystem;

namespace {

// Sets an environment variable for the test's life, then puts back what was there.
class ScopedEnv {
  public:
    ScopedEnv(const char* name, std::optional<std::string> value) : name_(name)
    {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value)
            ::setenv(name, value->c_str(), 1);
        else
            ::unsetenv(name);
    }
    ~ScopedEnv()
    {
        if (old_)
            ::setenv(name_, old_->c_str(), 1);
        else
            ::unsetenv(name_);
    }

  private:
    const char* name_;
    std::optional<std::string> old_;
};

std::string authJson(const std::string& key, const std::string& user, const std::string& password)
{
    return nlohmann::json{{"auths", {{key, {{"auth", base64Encode(user + ":" + password)}}}}}}
        .dump();
}

// A clean HOME, XDG_RUNTIME_DIR and PATH (with a fake docker-credential-test) per test.
class CredentialsTest : public ::testing::Test {
  protected:
    TempDir dir;
    fs::path home = dir / "home", run = dir / "run", bin = dir / "bin";
    ScopedEnv envHome{"HOME", home.string()};
    ScopedEnv envRun{"XDG_RUNTIME_DIR", run.string()};
    ScopedEnv envDocker{"DOCKER_CONFIG", std::nullopt};
    ScopedEnv envAuth{"REGISTRY_AUTH_FILE", std::nullopt};
    ScopedEnv envPath{"PATH", bin.string() + ":/usr/bin:/bin"};

    fs::path xdgAuth() const { return run / "containers" / "auth.json"; }
    fs::path configAuth() const { return home / ".config" / "containers" / "auth.json"; }
    fs::path dockerConfig() const { return home / ".docker" / "config.json"; }

    // docker-credential-test: logs its argument and stdin, answers for the servers it knows.
    void writeHelper()
    {
        writeTestFile(bin / "docker-credential-test", R"(#!/bin/sh
read -r server
echo "$1 $server" >> ")" + (dir / "helper.log").string() + R"("
case "$server" in
  reg.example:5000) echo '{"ServerURL":"reg.example:5000","Username":"helper-user","Secret":"helper-s3cret"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"<token>","Secret":"identity-t0ken"}' ;;
  broken.example) echo 'the keychain is locked (helper-s3cret)'; exit 3 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
)",
                      0755);
    }
    std::string helperLog() const
    {
        return fs::exists(dir / "helper.log") ? readFile(dir / "helper.log") : "";
    }
};

template <typename F> std::string errorOf(F&& f)
{
    try {
        f();
    } catch (Error& e) {
        return e.message();
    }
    return "(no error)";
}

} // namespace

TEST_F(CredentialsTest, SearchPathOrder)
{
    EXPECT_EQ(authFileSearchPath({}),
              (std::vector<fs::path>{xdgAuth(), configAuth(), dockerConfig()}));
    {
        ScopedEnv env("REGISTRY_AUTH_FILE", "/x/auth.json");
        EXPECT_EQ(authFileSearchPath({}),
                  (std::vector<fs::path>{"/x/auth.json", xdgAuth(), configAuth(), dockerConfig()}));
        // --authfile wins over REGISTRY_AUTH_FILE.
        EXPECT_EQ(authFileSearchPath({"/y/a.json"}),
                  (std::vector<fs::path>{"/y/a.json", xdgAuth(), configAuth(), dockerConfig()}));
    }
    ScopedEnv docker("DOCKER_CONFIG", (dir / "dc").string());
    ScopedEnv noRun("XDG_RUNTIME_DIR", std::nullopt);
    EXPECT_EQ(authFileSearchPath({}),
              (std::vector<fs::path>{configAuth(), dir / "dc" / "config.json"}));
}

TEST_F(CredentialsTest, FirstFileThatKnowsTheRegistryWins)
{
    fs::path explicitFile = dir / "explicit.json";
    writeTestFile(explicitFile, authJson("reg.example:5000", "u-explicit", "p1"));
    writeTestFile(xdgAuth(), authJson("reg.example:5000", "u-xdg", "p2"));
    writeTestFile(configAuth(), authJson("reg.example:5000", "u-config", "p3"));
    writeTestFile(dockerConfig(), authJson("https://reg.example:5000", "u-docker", "p4"));
    EXPECT_EQ(findCredentials("reg.example:5000", "team/app", {explicitFile}).username,
              "u-explicit");
    EXPECT_EQ(findCredentials("reg.example:5000", "team/app", {explicitFile}).origin,
              explicitFile.string());
    EXPECT_EQ(findCredentials("reg.example:5000", "team/app", {}).username, "u-xdg");
    fs::remove(xdgAuth());
    EXPECT_EQ(findCredentials("reg.example:5000", "team/app", {}).username, "u-config");
    fs::remove(configAuth());
    auto c = findCredentials("reg.example:5000", "team/app", {});
    EXPECT_EQ(c.username, "u-docker");
    EXPECT_EQ(c.password, "p4");
    EXPECT_EQ(c.origin, dockerConfig().string());
    fs::remove(dockerConfig());
    EXPECT_TRUE(findCredentials("reg.example:5000", "team/app", {}).empty());
}

TEST_F(CredentialsTest, FileWithoutTheRegistryIsPassedOver)
{
    writeTestFile(xdgAuth(), authJson("other.example", "u-other", "p"));
    writeTestFile(dockerConfig(), authJson("reg.example", "u-docker", "p"));
    EXPECT_EQ(findCredentials("reg.example", "x", {}).username, "u-docker");
}

TEST_F(CredentialsTest, DockerConfigFromEnvironment)
{
    ScopedEnv docker("DOCKER_CONFIG", (dir / "dc").string());
    writeTestFile(dir / "dc" / "config.json", authJson("reg.example", "u-dc", "p"));
    writeTestFile(dockerConfig(), authJson("reg.example", "u-home", "p"));
    EXPECT_EQ(findCredentials("reg.example", "x", {}).username, "u-dc");
}

TEST_F(CredentialsTest, RegistryAuthFileEnvironment)
{
    ScopedEnv env("REGISTRY_AUTH_FILE", (dir / "env.json").string());
    writeTestFile(dir / "env.json", authJson("reg.example", "u-env", "p"));
    writeTestFile(xdgAuth(), authJson("reg.example", "u-xdg", "p"));
    EXPECT_EQ(findCredentials("reg.example", "x", {}).username, "u-env");
}

TEST_F(CredentialsTest, EntryForms)
{
    nlohmann::json j = {{"auths",
                         {{"https://index.docker.io/v1/",
                           {{"auth", base64Encode("hub-user:hub:pass:with:colons")}}},
                          {"reg.example/team/app", {{"auth", base64Encode("scoped:p")}}},
                          {"reg.example", {{"auth", base64Encode("host:p")}}},
                          {"id.example", {{"identitytoken", "refresh-tok"}}},
                          {"rt.example", {{"registrytoken", "bearer-tok"}}},
                          {"old.example", {{"username", "old-user"}, {"password", "old-pass"}}},
                          {"marker.example", nlohmann::json::object()}}}};
    writeTestFile(xdgAuth(), j.dump());
    auto hub = findCredentials("docker.io", "library/ubuntu", {});
    EXPECT_EQ(hub.username, "hub-user");
    EXPECT_EQ(hub.password, "hub:pass:with:colons");
    // containers' repository-scoped keys: the most specific first.
    EXPECT_EQ(findCredentials("reg.example", "team/app", {}).username, "scoped");
    EXPECT_EQ(findCredentials("reg.example", "team/app/sub", {}).username, "scoped");
    EXPECT_EQ(findCredentials("reg.example", "team/other", {}).username, "host");
    auto id = findCredentials("id.example", "x", {});
    EXPECT_EQ(id.identityToken, "refresh-tok");
    EXPECT_TRUE(id.username.empty());
    EXPECT_EQ(findCredentials("rt.example", "x", {}).registryToken, "bearer-tok");
    auto old = findCredentials("old.example", "x", {});
    EXPECT_EQ(old.username, "old-user");
    EXPECT_EQ(old.password, "old-pass");
    EXPECT_TRUE(findCredentials("marker.example", "x", {}).empty());
}

TEST_F(CredentialsTest, NormalisedKeys)
{
    EXPECT_EQ(normaliseAuthKey("https://index.docker.io/v1/"), "docker.io");
    EXPECT_EQ(normaliseAuthKey("index.docker.io"), "docker.io");
    EXPECT_EQ(normaliseAuthKey("registry-1.docker.io"), "docker.io");
    EXPECT_EQ(normaliseAuthKey("http://Reg.Example:5000"), "reg.example:5000");
    EXPECT_EQ(normaliseAuthKey("https://reg.example:5000/v2/"), "reg.example:5000");
    EXPECT_EQ(normaliseAuthKey("reg.example/team/app"), "reg.example/team/app");
    EXPECT_EQ(normaliseAuthKey("reg.example/"), "reg.example");
}

TEST_F(CredentialsTest, CredentialHelpers)
{
    writeHelper();
    writeTestFile(
        dockerConfig(),
        R"({"credHelpers": {"reg.example:5000": "test"}, "auths": {"reg.example:5000": {"auth": ")" +
            base64Encode("auths-user:p") + R"("}}})");
    auto c = findCredentials("reg.example:5000", "x", {});
    EXPECT_EQ(c.username, "helper-user");
    EXPECT_EQ(c.password, "helper-s3cret");
    EXPECT_EQ(c.origin, "credential helper docker-credential-test");
    EXPECT_EQ(helperLog(), "get reg.example:5000\n");

    // credsStore: asked with docker's key for Docker Hub; "<token>" means an identity token.
    writeTestFile(dockerConfig(), R"({"credsStore": "test"})");
    auto hub = findCredentials("docker.io", "library/x", {});
    EXPECT_EQ(hub.identityToken, "identity-t0ken");
    EXPECT_TRUE(hub.username.empty());
    EXPECT_THAT(helperLog(), HasSubstr("get https://index.docker.io/v1/\n"));
    // Not found by the store: no credentials, no error.
    EXPECT_TRUE(findCredentials("unknown.example", "x", {}).empty());
}

TEST_F(CredentialsTest, FailingHelperNamesItWithoutTheSecret)
{
    writeHelper();
    registerSecret("helper-s3cret");
    writeTestFile(dockerConfig(),
                  R"({"credHelpers": {"broken.example": "test", "gone.example": "missing"}})");
    EXPECT_EQ(errorOf([] { findCredentials("broken.example", "x", {}); }),
              "the credential helper 'docker-credential-test' failed for broken.example: the "
              "keychain is locked (***)");
    EXPECT_THAT(errorOf([] { findCredentials("gone.example", "x", {}); }),
                HasSubstr("unable to run the credential helper 'docker-credential-missing' named "
                          "in your credentials file"));
}

TEST_F(CredentialsTest, MalformedFileIsNamedNotQuoted)
{
    writeTestFile(xdgAuth(), R"({"auths": {"reg.example": {"auth": "planted-s3cret")");
    auto msg = errorOf([] { findCredentials("reg.example", "x", {}); });
    EXPECT_EQ(msg, "the credentials file '" + xdgAuth().string() +
                       "' is not a JSON object; fix or remove it");
    writeTestFile(xdgAuth(),
                  R"({"auths": {"reg.example": {"auth": "not base64 planted-s3cret"}}})");
    msg = errorOf([] { findCredentials("reg.example", "x", {}); });
    EXPECT_EQ(msg, "the credentials file '" + xdgAuth().string() +
                       "': auths['reg.example'].auth is not base64 of user:password; log in again");
    EXPECT_THAT(msg, Not(HasSubstr("planted")));
}

TEST_F(CredentialsTest, LoginFileLocation)
{
    EXPECT_EQ(loginAuthFile({}), xdgAuth());
    EXPECT_EQ(loginAuthFile({dir / "a.json"}), dir / "a.json");
    {
        ScopedEnv env("REGISTRY_AUTH_FILE", (dir / "env.json").string());
        EXPECT_EQ(loginAuthFile({}), dir / "env.json");
    }
    ScopedEnv noRun("XDG_RUNTIME_DIR", std::nullopt);
    EXPECT_EQ(loginAuthFile({}), configAuth());
}

TEST_F(CredentialsTest, SaveAndRemoveLogin)
{
    writeTestFile(
        xdgAuth(),
        R"({"auths": {"other.example": {"auth": "b3RoZXI6cA=="}, "http://reg.example:5000": {"auth": "x"}},
        "credHelpers": {"h.example": "test"}})");
    saveLogin(xdgAuth(), "reg.example:5000", "alice", "s3cr3t-p4ss");
    struct stat st;
    ASSERT_EQ(::stat(xdgAuth().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto j = nlohmann::json::parse(readFile(xdgAuth()));
    EXPECT_EQ(j["auths"]["reg.example:5000"]["auth"], "YWxpY2U6czNjcjN0LXA0c3M=");
    EXPECT_FALSE(j["auths"].contains("http://reg.example:5000")); // the old spelling replaced
    EXPECT_EQ(j["auths"]["other.example"]["auth"], "b3RoZXI6cA==");
    EXPECT_EQ(j["credHelpers"]["h.example"], "test");
    auto c = findCredentials("reg.example:5000", "x", {});
    EXPECT_EQ(c.username, "alice");
    EXPECT_EQ(c.password, "s3cr3t-p4ss");

    EXPECT_TRUE(removeLogin(xdgAuth(), "reg.example:5000"));
    EXPECT_FALSE(removeLogin(xdgAuth(), "reg.example:5000"));
    j = nlohmann::json::parse(readFile(xdgAuth()));
    EXPECT_FALSE(j["auths"].contains("reg.example:5000"));
    EXPECT_TRUE(j["auths"].contains("other.example"));
    EXPECT_FALSE(removeLogin(dir / "none.json", "reg.example"));
}

TEST_F(CredentialsTest, SaveLoginCreatesPrivateFolder)
{
    auto file = dir / "new" / "containers" / "auth.json";
    saveLogin(file, "docker.io", "bob", "pw");
    struct stat st;
    ASSERT_EQ(::stat(file.parent_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_EQ(nlohmann::json::parse(readFile(file))["auths"]["docker.io"]["auth"],
              base64Encode("bob:pw"));
}

TEST(Secrets, Scrubbed)
{
    registerSecret("Pl4nted-Secret");
    registerSecret("ab"); // too short to be scrubbed from every message
    EXPECT_EQ(scrubSecrets("token Pl4nted-Secret in Pl4nted-Secret"), "token *** in ***");
    EXPECT_EQ(scrubSecrets("basic " + base64Encode("Pl4nted-Secret")), "basic ***");
    EXPECT_EQ(scrubSecrets("about ab"), "about ab");
}
