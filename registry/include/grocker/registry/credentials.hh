#pragma once
// Where registry credentials come from, in the order containers tools and docker look:
//   1. --authfile FILE, else $REGISTRY_AUTH_FILE
//   2. ${XDG_RUNTIME_DIR}/containers/auth.json
//   3. ~/.config/containers/auth.json
//   4. $DOCKER_CONFIG/config.json, else ~/.docker/config.json
// In each file: credHelpers[host] (the docker-credential-NAME protocol), then auths (keys
// "host", "host/namespace/repo" or legacy "https://host/v1/", the most specific first; "auth"
// is base64 user:password, or "identitytoken", "registrytoken"), then credsStore. The first
// file that knows the registry wins. Every secret found is registered so messages can be
// scrubbed of it.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grocker::registry {

struct Credentials {
    std::string username, password;
    std::string identityToken; // an OAuth2 refresh token (docker login with a token server)
    std::string registryToken; // a bearer token sent as it is
    std::string origin;        // the file or helper they came from, for messages

    bool empty() const
    {
        return username.empty() && password.empty() && identityToken.empty() &&
               registryToken.empty();
    }
};

struct AuthFileOptions {
    std::filesystem::path authFile; // --authfile; empty: $REGISTRY_AUTH_FILE or the defaults
};

// The files consulted, in order (those that do not exist included).
std::vector<std::filesystem::path> authFileSearchPath(const AuthFileOptions& options);

// Credentials for `registry` ("docker.io", "host:port") and repository path ("library/x");
// empty when none is configured. Throws an Error naming the file when one is malformed, or
// when a credential helper fails (other than "not found").
Credentials findCredentials(std::string_view registry, std::string_view repository,
                            const AuthFileOptions& options);

// Runs `docker-credential-NAME get` for `serverUrl`; nullopt when the helper knows nothing.
std::optional<Credentials> runCredentialHelper(const std::string& name,
                                               const std::string& serverUrl);

// "https://index.docker.io/v1/" → "docker.io"; "http://host:5000" → "host:5000"; "host/ns/repo"
// stays (containers' repository-scoped keys).
std::string normaliseAuthKey(std::string_view key);

// The file login and logout change: --authfile, $REGISTRY_AUTH_FILE,
// ${XDG_RUNTIME_DIR}/containers/auth.json, or ~/.config/containers/auth.json without
// XDG_RUNTIME_DIR.
std::filesystem::path loginAuthFile(const AuthFileOptions& options);
// Writes auths[registry] = {auth: base64(user:password)} into `file`, atomically, mode 0600,
// keeping the rest of the file.
void saveLogin(const std::filesystem::path& file, std::string_view registry,
               std::string_view username, std::string_view password);
// Removes the registry's entries; false when there were none.
bool removeLogin(const std::filesystem::path& file, std::string_view registry);

// Secrets this process holds (passwords, tokens): messages pass through scrubSecrets.
void registerSecret(std::string_view secret);
std::string scrubSecrets(std::string text);

} // namespace grocker::registry
