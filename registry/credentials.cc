#include "grocker/registry/credentials.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/process.hh"
#include "grocker/registry/auth.hh"
#include "text.hh"

#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sys/stat.h>

namespace grocker::registry {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::mutex secretsMutex;
std::set<std::string>& secrets()
{
    static std::set<std::string> s;
    return s;
}

std::string env(const char* name)
{
    const char* v = std::getenv(name);
    return v ? v : "";
}

fs::path home()
{
    auto h = env("HOME");
    return h.empty() ? fs::path("/root") : fs::path(h);
}

// A missing file is no file; a malformed one is an error naming it (never quoting it: it holds
// secrets).
std::optional<json> readAuthFile(const fs::path& path)
{
    std::error_code ec;
    if (!fs::exists(path, ec)) return std::nullopt;
    std::string text;
    try {
        text = readFile(path);
    } catch (Error& e) {
        e.addContext("while reading the credentials file");
        throw;
    }
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw Error("the credentials file '", path.string(),
                    "' is not a JSON object; fix or remove it");
    return j;
}

// The server URL credential helpers are asked about: docker's historical key for Docker Hub.
std::string helperServerUrl(std::string_view registry)
{
    return registry == "docker.io" ? "https://index.docker.io/v1/" : std::string(registry);
}

std::optional<Credentials> fromAuthEntry(const json& entry, const fs::path& file,
                                         const std::string& key)
{
    if (!entry.is_object())
        throw Error("the credentials file '", file.string(), "': auths['", key,
                    "'] must be an object");
    Credentials c;
    c.origin = file.string();
    auto str = [&](const char* name) -> std::string {
        auto it = entry.find(name);
        if (it == entry.end() || it->is_null()) return {};
        if (!it->is_string())
            throw Error("the credentials file '", file.string(), "': auths['", key, "'].", name,
                        " must be a string");
        return it->get<std::string>();
    };
    auto auth = str("auth");
    if (!auth.empty()) {
        std::string decoded;
        try {
            decoded = base64Decode(auth);
        } catch (Error&) {
            throw Error("the credentials file '", file.string(), "': auths['", key,
                        "'].auth is not base64 of user:password; log in again");
        }
        auto colon = decoded.find(':');
        if (colon == std::string::npos)
            throw Error("the credentials file '", file.string(), "': auths['", key,
                        "'].auth is not base64 of user:password; log in again");
        c.username = decoded.substr(0, colon);
        c.password = decoded.substr(colon + 1);
    }
    if (c.username.empty()) c.username = str("username");
    if (c.password.empty()) c.password = str("password");
    c.identityToken = str("identitytoken");
    c.registryToken = str("registrytoken");
    if (c.empty()) return std::nullopt;
    return c;
}

// Keys to try for a registry and repository, the most specific first.
std::vector<std::string> candidateKeys(std::string_view registry, std::string_view repository)
{
    std::vector<std::string> keys;
    std::string path(repository);
    while (!path.empty()) {
        keys.push_back(std::string(registry) + "/" + path);
        auto slash = path.rfind('/');
        if (slash == std::string::npos) break;
        path.erase(slash);
    }
    keys.emplace_back(registry);
    return keys;
}

std::optional<Credentials> fromFile(const fs::path& file, std::string_view registry,
                                    std::string_view repository)
{
    auto j = readAuthFile(file);
    if (!j) return std::nullopt;
    auto objectField = [&](const char* name) -> const json* {
        auto it = j->find(name);
        if (it == j->end() || it->is_null()) return nullptr;
        if (!it->is_object())
            throw Error("the credentials file '", file.string(), "': '", name,
                        "' must be an object");
        return &*it;
    };
    if (auto* helpers = objectField("credHelpers"))
        for (auto& [key, name] : helpers->items())
            if (normaliseAuthKey(key) == registry) {
                if (!name.is_string())
                    throw Error("the credentials file '", file.string(), "': credHelpers['", key,
                                "'] must be a string");
                if (auto c =
                        runCredentialHelper(name.get<std::string>(), helperServerUrl(registry)))
                    return c;
            }
    if (auto* auths = objectField("auths")) {
        for (auto& want : candidateKeys(registry, repository))
            for (auto& [key, entry] : auths->items())
                if (normaliseAuthKey(key) == want)
                    if (auto c = fromAuthEntry(entry, file, key)) return c;
    }
    if (auto it = j->find("credsStore");
        it != j->end() && it->is_string() && !it->get<std::string>().empty())
        if (auto c = runCredentialHelper(it->get<std::string>(), helperServerUrl(registry)))
            return c;
    return std::nullopt;
}

} // namespace

std::string normaliseAuthKey(std::string_view key)
{
    std::string k = lower(key);
    bool hadScheme = false;
    for (const char* scheme : {"https://", "http://"})
        if (k.starts_with(scheme)) {
            k.erase(0, strlen(scheme));
            hadScheme = true;
        }
    // Legacy docker keys are URLs ("https://index.docker.io/v1/"): only their host counts.
    if (hadScheme) k = k.substr(0, k.find('/'));
    while (!k.empty() && k.back() == '/')
        k.pop_back();
    auto slash = k.find('/');
    std::string host = k.substr(0, slash), rest = slash == std::string::npos ? "" : k.substr(slash);
    if (host == "index.docker.io" || host == "registry-1.docker.io") host = "docker.io";
    return host + rest;
}

std::vector<fs::path> authFileSearchPath(const AuthFileOptions& options)
{
    std::vector<fs::path> out;
    if (!options.authFile.empty())
        out.push_back(options.authFile);
    else if (auto f = env("REGISTRY_AUTH_FILE"); !f.empty())
        out.emplace_back(f);
    if (auto x = env("XDG_RUNTIME_DIR"); !x.empty())
        out.push_back(fs::path(x) / "containers" / "auth.json");
    out.push_back(home() / ".config" / "containers" / "auth.json");
    if (auto d = env("DOCKER_CONFIG"); !d.empty())
        out.push_back(fs::path(d) / "config.json");
    else
        out.push_back(home() / ".docker" / "config.json");
    return out;
}

Credentials findCredentials(std::string_view registry, std::string_view repository,
                            const AuthFileOptions& options)
{
    for (auto& file : authFileSearchPath(options))
        if (auto c = fromFile(file, registry, repository)) {
            for (auto* s : {&c->password, &c->identityToken, &c->registryToken})
                registerSecret(*s);
            return *c;
        }
    return {};
}

std::optional<Credentials> runCredentialHelper(const std::string& name,
                                               const std::string& serverUrl)
{
    std::string program = "docker-credential-" + name;
    if (name.empty() || name.find('/') != std::string::npos)
        throw Error("invalid credential helper name '", name, "'");
    ProcessResult run;
    try {
        // The helper reads the server URL on its standard input and answers JSON on its output.
        run = runProgram({program, "get"}, serverUrl);
    } catch (SpawnError& e) {
        throw SysError(e.errNo(), "unable to run the credential helper '", program,
                       "' named in your credentials file; install it or remove it from the file");
    }
    const std::string& output = run.output;
    if (!run.succeeded()) {
        if (output.find("credentials not found") != std::string::npos) return std::nullopt;
        auto line = output.substr(0, output.find('\n')).substr(0, 200);
        throw Error("the credential helper '", program, "' failed for ", serverUrl, ": ",
                    line.empty() ? concat("exit status ", run.exitCode()) : scrubSecrets(line));
    }
    json j = json::parse(output, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.value("Secret", json()).is_string())
        throw Error("the credential helper '", program,
                    "' answered something else than {\"Username\", \"Secret\"} for ", serverUrl);
    Credentials c;
    c.origin = "credential helper " + program;
    std::string user = j.value("Username", "");
    std::string secret = j.value("Secret", "");
    registerSecret(secret);
    // docker's convention: a username "<token>" means the secret is an identity token.
    if (user == "<token>")
        c.identityToken = secret;
    else {
        c.username = user;
        c.password = secret;
    }
    if (c.empty()) return std::nullopt;
    return c;
}

fs::path loginAuthFile(const AuthFileOptions& options)
{
    if (!options.authFile.empty()) return options.authFile;
    if (auto f = env("REGISTRY_AUTH_FILE"); !f.empty()) return f;
    if (auto x = env("XDG_RUNTIME_DIR"); !x.empty())
        return fs::path(x) / "containers" / "auth.json";
    return home() / ".config" / "containers" / "auth.json";
}

void saveLogin(const fs::path& file, std::string_view registry, std::string_view username,
               std::string_view password)
{
    json j = readAuthFile(file).value_or(json::object());
    if (!j.contains("auths") || !j["auths"].is_object()) j["auths"] = json::object();
    auto& auths = j["auths"];
    std::string key = normaliseAuthKey(registry);
    for (auto it = auths.begin(); it != auths.end();)
        it = normaliseAuthKey(it.key()) == key ? auths.erase(it) : std::next(it);
    auths[key] = {{"auth", base64Encode(std::string(username) + ":" + std::string(password))}};
    auto dir = file.parent_path().empty() ? fs::path(".") : file.parent_path();
    std::error_code ec;
    if (!fs::exists(dir, ec)) {
        fs::create_directories(dir, ec);
        if (ec)
            throw Error("unable to create '", dir.string(),
                        "' for the credentials file: ", ec.message());
        ::chmod(dir.c_str(), 0700);
    }
    writeFileAtomic(file, j.dump(1, '\t') + "\n", 0600);
}

bool removeLogin(const fs::path& file, std::string_view registry)
{
    auto j = readAuthFile(file);
    if (!j || !j->contains("auths") || !(*j)["auths"].is_object()) return false;
    auto& auths = (*j)["auths"];
    std::string key = normaliseAuthKey(registry);
    bool removed = false;
    for (auto it = auths.begin(); it != auths.end();) {
        if (normaliseAuthKey(it.key()) == key) {
            it = auths.erase(it);
            removed = true;
        } else
            ++it;
    }
    if (removed) writeFileAtomic(file, j->dump(1, '\t') + "\n", 0600);
    return removed;
}

void registerSecret(std::string_view secret)
{
    // Very short strings would scrub ordinary words from messages; they are no secrets anyway.
    if (secret.size() < 4) return;
    std::lock_guard g(secretsMutex);
    secrets().emplace(secret);
    auto b64 = base64Encode(secret);
    secrets().insert(b64);
}

std::string scrubSecrets(std::string text)
{
    std::lock_guard g(secretsMutex);
    for (auto& s : secrets())
        for (size_t pos; (pos = text.find(s)) != std::string::npos;)
            text.replace(pos, s.size(), "***");
    return text;
}

} // namespace grocker::registry
