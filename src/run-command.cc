// grocker run: a command in the sandbox over an image, its changes optionally committed as a
// new layer.

#include "commands.hh"
#include "grocker/error.hh"
#include "grocker/oci/layer-writer.hh"
#include "grocker/oci/store.hh"
#include "grocker/oci/transport.hh"
#include "grocker/sandbox/rootfs.hh"
#include "grocker/sandbox/sandbox.hh"

#include <filesystem>
#include <iostream>

namespace grocker {

namespace fs = std::filesystem;
using namespace grocker::oci;
using namespace grocker::sandbox;

namespace {

struct RunOptions {
    std::string src;
    std::vector<std::string> command;
    std::string network = "none";
    std::vector<std::string> volumes, env;
    std::optional<std::string> workdir, user, commit;
    std::string compression = "gzip";
};

int runRun(const GlobalOptions& g, const RunOptions& o)
{
    auto src = ImageRef::parse(o.src);
    if (src.kind == ImageRef::Kind::Docker)
        throw UsageError("the docker:// transport is not supported yet");
    std::optional<ImageRef> dest;
    if (o.commit) {
        dest = ImageRef::parse(*o.commit);
        if (dest->kind == ImageRef::Kind::Scratch || dest->kind == ImageRef::Kind::Docker)
            throw UsageError("--commit '", *o.commit,
                             "': name an oci:, oci-archive: or docker-archive: location");
    }
    if (o.network != "none" && o.network != "host")
        throw UsageError("--network '", o.network,
                         "': use none (loopback only, the default) or host");
    LayerOptions lo;
    lo.compress.compression = parseCompression(o.compression);
    lo.sourceDateEpoch = sourceDateEpochFromEnv();
    SandboxSpec spec;
    for (auto& v : o.volumes)
        spec.volumes.push_back(Volume::parse(v));
    for (auto& e : o.env)
        if (e.find('=') == std::string::npos || e[0] == '=')
            throw UsageError("--env '", e, "' must be KEY=VALUE");

    Store store(g.root.empty() ? Store::defaultRoot() : fs::path(g.root));
    Image image = loadImage(store, src, wantedPlatform(g));
    auto map = IdMap::forCaller();
    if (!map.warning.empty() && !g.quiet) std::cerr << "grocker: warning: " << map.warning << "\n";

    // An image of another architecture runs under qemu-user (grocker run --platform linux/arm64).
    auto platform = image.config.platform();
    if (!platform.architecture.empty())
        spec.emulator = emulatorFor(platform.architecture, platform.variant);
    auto& cfg = image.config.json;
    nlohmann::json runCfg = cfg.contains("config") && cfg["config"].is_object()
                                ? cfg["config"]
                                : nlohmann::json::object();
    if (runCfg.contains("Env") && runCfg["Env"].is_array())
        for (auto& e : runCfg["Env"])
            if (e.is_string()) spec.env.push_back(e.get<std::string>());
    bool hasPath = false;
    for (auto& e : spec.env)
        hasPath |= e.rfind("PATH=", 0) == 0;
    if (!hasPath)
        spec.env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for (auto& kv : o.env) {
        auto key = kv.substr(0, kv.find('=') + 1);
        std::erase_if(spec.env, [&](const std::string& e) { return e.rfind(key, 0) == 0; });
        spec.env.push_back(kv);
    }
    // The image's config is anyone's JSON: a number where a string belongs is named, not left to
    // the JSON library's "type must be string".
    auto configText = [&](const char* key, const char* option) {
        auto it = runCfg.find(key);
        if (it == runCfg.end() || it->is_null()) return std::string();
        if (!it->is_string())
            throw Error(src.str(), ": its config's ", key, " is ", it->dump().substr(0, 40),
                        ", not a string; fix the image, or give ", option);
        return it->get<std::string>();
    };
    spec.workdir = o.workdir ? *o.workdir : configText("WorkingDir", "--workdir");
    if (spec.workdir.empty()) spec.workdir = "/";
    spec.user = o.user ? *o.user : configText("User", "--user");
    spec.hostNetwork = o.network == "host";
    spec.argv = o.command;

    spec.lowerDirs = prepareLowerDirs(store, image, map);
    RunDir run(store, map);
    spec.runDir = run.path();
    int status = runSandbox(spec, map);
    if (!dest) return status;
    if (status != 0) {
        std::cerr << "grocker: error: '" << join(o.command) << "' exited with status " << status
                  << ": nothing was committed to " << dest->str() << "\n";
        return status;
    }
    auto layer = commitUpper(store, run.path(), map, lo);
    ImageDraft draft(image, src.kind == ImageRef::Kind::Scratch, lo.sourceDateEpoch);
    draft.addLayer(layer.descriptor, layer.diffId, "grocker run -- " + join(o.command),
                   concat(layer.entries, " entries"));
    Image out = std::move(draft).commit(store);
    saveImage(store, out, *dest);
    std::cout << out.manifestDescriptor.digest.str() << "\n";
    return 0;
}

} // namespace

Runners registerRunCommand(CLI::App& app, GlobalOptions& global)
{
    static RunOptions ro;
    auto* run = app.add_subcommand(
        "run", "Run a command in a sandbox over an image; --commit keeps its changes as a layer");
    run->add_option("SRC", ro.src, "Image location")->required();
    addProgressOption(run, global);
    addPlatformOption(run, global);
    run->add_option("COMMAND", ro.command, "The command and its arguments, after --")->required();
    run->add_option("--network", ro.network, "none (loopback only, default) or host");
    run->add_option("--volume", ro.volumes, "HOST:CONTAINER[:ro] bind mount")
        ->allow_extra_args(false);
    run->add_option("--env", ro.env, "KEY=VALUE environment variable")->allow_extra_args(false);
    run->add_option("--workdir", ro.workdir, "Working directory");
    run->add_option("--user", ro.user, "User (NAME, UID, NAME:GROUP, UID:GID)");
    run->add_option("--commit", ro.commit,
                    "Write SRC plus the command's changes as a new image here");
    run->add_option("--compression", ro.compression, "gzip (default) or zstd");
    return {{run, [&global] { return runRun(global, ro); }}};
}

} // namespace grocker
