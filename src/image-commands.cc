// append, copy, unpack and inspect: the commands over the oci library.

#include "commands.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/image-summary.hh"
#include "grocker/oci/layer-unpacker.hh"
#include "grocker/oci/layer-writer.hh"
#include "grocker/oci/store.hh"
#include "grocker/oci/transport.hh"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <unistd.h>

namespace grocker {

namespace fs = std::filesystem;
using namespace grocker::oci;
using nlohmann::json;

void addProgressOption(CLI::App* app, GlobalOptions& global)
{
    app->add_option("--progress", global.progress,
                    "auto (default: tty on a terminal, else plain), tty, plain or quiet "
                    "(also $GROCKER_PROGRESS)");
}

Store openStore(const GlobalOptions& g)
{
    return Store(g.root.empty() ? Store::defaultRoot() : fs::path(g.root));
}

namespace {

std::pair<std::string, std::string> splitKeyValue(const std::string& kv, const char* option)
{
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
        throw UsageError(option, " '", kv, "' must be KEY=VALUE");
    return {kv.substr(0, eq), kv.substr(eq + 1)};
}

struct AppendOptions {
    std::string src, dest;
    std::vector<std::string> dirs;
    std::vector<std::string> entrypoint, cmd, env, labels;
    std::optional<std::string> workdir, user;
    std::string compression = "gzip";
    bool keepOwners = false;
    std::string platform; // of an image made from scratch
};

int runAppend(const GlobalOptions& g, const AppendOptions& o)
{
    auto src = ImageRef::parse(o.src);
    auto dest = ImageRef::parse(o.dest);
    if (dest.kind == ImageRef::Kind::Scratch)
        throw UsageError("scratch cannot be a destination: name an image location");
    std::optional<Platform> platform;
    if (!o.platform.empty()) {
        if (src.kind != ImageRef::Kind::Scratch)
            throw UsageError("--platform '", o.platform,
                             "': only an image made from scratch takes a platform (over ",
                             src.str(), ", the base's is the image's)");
        platform = Platform::parse(o.platform);
    }
    LayerOptions lo;
    lo.compress.compression = parseCompression(o.compression);
    lo.sourceDateEpoch = sourceDateEpochFromEnv();
    if (o.keepOwners)
        lo.owner = [](uid_t uid, gid_t gid) { return std::pair<uint64_t, uint64_t>(uid, gid); };
    // Check every --dir before any work.
    std::vector<std::pair<fs::path, std::string>> dirs;
    for (auto& d : o.dirs) {
        auto colon = d.find(':');
        fs::path path = d.substr(0, colon);
        std::string target = colon == std::string::npos ? "/" : d.substr(colon + 1);
        std::error_code ec;
        bool isDir = fs::is_directory(path, ec);
        if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory)
            throw Error("--dir '", d, "': unable to read '", path.string(), "': ", ec.message());
        if (!isDir) throw UsageError("--dir '", d, "': '", path.string(), "' is not a folder");
        if (target.empty() || target[0] != '/')
            throw UsageError("--dir '", d, "': the target '", target,
                             "' must be an absolute path in the image");
        dirs.emplace_back(path, target);
    }

    for (auto& kv : o.env)
        splitKeyValue(kv, "--env");
    for (auto& kv : o.labels)
        splitKeyValue(kv, "--label");

    Store store = openStore(g);
    Image base = loadAnyImage(store, src, g);
    if (platform) {
        // The files given are for it (binaries of another machine, say): the config says so.
        auto& c = base.config.json;
        c["os"] = platform->os;
        c["architecture"] = platform->architecture;
        if (platform->variant.empty())
            c.erase("variant");
        else
            c["variant"] = platform->variant;
    }
    // The base's config is anyone's JSON, and --env/--label edit its Env and Labels: checked
    // before any layer is written (a number in Env was a JSON library's "type must be string").
    if (auto& bc = base.config.json; bc.contains("config") && bc["config"].is_object()) {
        auto& rc = bc["config"];
        if (!o.env.empty() && rc.contains("Env") && rc["Env"].is_array())
            for (auto& e : rc["Env"])
                if (!e.is_string())
                    throw Error(src.str(), ": its config's Env holds ", e.dump().substr(0, 40),
                                ", not a KEY=VALUE string; fix the image, or add no --env");
        if (!o.labels.empty() && rc.contains("Labels") && !rc["Labels"].is_object() &&
            !rc["Labels"].is_null())
            throw Error(src.str(), ": its config's Labels is ", rc["Labels"].type_name(),
                        ", not an object; fix the image, or add no --label");
    }
    ImageDraft draft(base, src.kind == ImageRef::Kind::Scratch, lo.sourceDateEpoch);
    for (auto& [path, target] : dirs) {
        auto r = writeLayer(store, path, target, lo);
        draft.addLayer(r.descriptor, r.diffId, "grocker append --dir " + target,
                       concat(r.entries, " entries"));
        if (!g.quiet)
            std::cerr << "layer " << r.descriptor.digest.str() << " (" << r.descriptor.size
                      << " bytes) from '" << path.string() << "'\n";
    }
    auto& c = draft.runConfig();
    if (!o.entrypoint.empty()) {
        c["Entrypoint"] = o.entrypoint;
        // As Dockerfile ENTRYPOINT: the base's CMD no longer applies.
        if (o.cmd.empty()) c.erase("Cmd");
    }
    if (!o.cmd.empty()) c["Cmd"] = o.cmd;
    if (!o.env.empty()) {
        std::vector<std::string> env;
        if (c.contains("Env") && c["Env"].is_array())
            for (auto& e : c["Env"])
                env.push_back(e.get<std::string>());
        for (auto& kv : o.env) {
            auto [k, v] = splitKeyValue(kv, "--env");
            std::erase_if(env, [&](const std::string& e) { return e.rfind(k + "=", 0) == 0; });
            env.push_back(k + "=" + v);
        }
        c["Env"] = env;
    }
    for (auto& kv : o.labels) {
        auto [k, v] = splitKeyValue(kv, "--label");
        c["Labels"][k] = v;
    }
    if (o.workdir) c["WorkingDir"] = *o.workdir;
    if (o.user) c["User"] = *o.user;
    Image out = std::move(draft).commit(store);
    saveAnyImage(store, out, dest, g);
    std::cout << out.manifestDescriptor.digest.str() << "\n";
    return 0;
}

int runCopy(const GlobalOptions& g, const std::string& srcText, const std::string& destText)
{
    auto src = ImageRef::parse(srcText);
    auto dest = ImageRef::parse(destText);
    if (src.kind == ImageRef::Kind::Scratch || dest.kind == ImageRef::Kind::Scratch)
        throw UsageError("scratch is not an image to copy");
    Store store = openStore(g);
    std::cout << copyWithAttachments(store, src, dest, g).str() << "\n";
    return 0;
}

int runUnpack(const GlobalOptions& g, const std::string& srcText, const fs::path& dir)
{
    auto src = ImageRef::parse(srcText);
    std::error_code ec;
    bool exists = fs::exists(dir, ec);
    if (ec) throw Error("unable to unpack into '", dir.string(), "': ", ec.message());
    if (exists && !fs::is_empty(dir, ec))
        throw UsageError("'", dir.string(), "' is not empty: unpack into a new or empty folder");
    Store store = openStore(g);
    Image img = loadAnyImage(store, src, g);
    auto parent = fs::absolute(dir).parent_path();
    fs::create_directories(parent, ec);
    if (ec)
        throw Error("unable to create '", parent.string(), "' to unpack into '", dir.string(),
                    "': ", ec.message());
    // Unpacked beside the target and renamed at the end: a failure leaves nothing half done.
    AutoDelete tmp(makeTempDir(parent, ".grocker-unpack-"));
    fs::path rootfs = tmp.path() / "rootfs";
    fs::create_directory(rootfs);
    UnpackOptions uo;
    uo.preserveOwnership = ::geteuid() == 0;
    uo.warn = [&](const std::string& w) { std::cerr << "grocker: warning: " << w << "\n"; };
    auto diffIds = img.config.diffIds();
    for (size_t i = 0; i < img.manifest.layers.size(); i++) {
        auto& l = img.manifest.layers[i];
        try {
            unpackLayer(store.blobPath(l.digest), rootfs, uo, l.digest);
        } catch (Error& e) {
            e.addContext(
                concat("while unpacking layer ", i + 1, " (", l.digest.str(), ") of ", src.str()));
            throw;
        }
    }
    if (fs::exists(dir)) fs::remove(dir);
    fs::rename(rootfs, dir);
    if (!g.quiet)
        std::cerr << "unpacked " << img.manifest.layers.size()
                  << (img.manifest.layers.size() == 1 ? " layer" : " layers") << " of " << src.str()
                  << " into '" << dir.string() << "'\n";
    return 0;
}

// A config value in one line: strings as they are, lists joined by spaces, "-" for none.
std::string shortValue(const json& v)
{
    if (v.is_null()) return "-";
    if (v.is_string()) return v.get<std::string>().empty() ? "-" : v.get<std::string>();
    if (v.is_array()) {
        std::vector<std::string> words;
        for (auto& w : v)
            words.push_back(w.is_string() ? w.get<std::string>() : w.dump());
        return words.empty() ? "-" : join(words, " ");
    }
    if (v.is_object()) {
        std::vector<std::string> keys;
        for (auto& [k, x] : v.items())
            keys.push_back(k);
        return keys.empty() ? "-" : join(keys, " ");
    }
    return v.dump();
}

// `inspect --summary`: the layers (what made each, its size, the folders that hold most of
// it), the image's size, its config in short. Reads every layer (pulled into the store from a
// registry).
void printSummary(const Store& store, const std::string& name, const Image& img)
{
    auto& cfg = img.config.json;
    uint64_t compressed = 0, files = 0;
    std::vector<LayerSummary> layers;
    for (auto& l : img.manifest.layers) {
        layers.push_back(summarizeLayer(store, l));
        compressed += uint64_t(std::max<int64_t>(l.size, 0));
        files += layers.back().bytes;
    }
    // The history entries of layers, in order ("empty_layer" ones made none).
    std::vector<std::string> madeBy;
    for (auto& h : cfg.value("history", json::array()))
        if (!h.value("empty_layer", false)) madeBy.push_back(h.value("created_by", ""));
    std::cout << name << "\n";
    std::cout << "  digest    " << img.manifestDescriptor.digest.str() << "\n";
    std::cout << "  platform  " << cfg.value("os", "?") << "/" << cfg.value("architecture", "?")
              << (cfg.contains("variant") ? "/" + cfg.value("variant", "") : "") << "\n";
    std::cout << "  size      " << humanBytes(compressed) << " compressed, " << humanBytes(files)
              << " of files, " << plural(layers.size(), "layer", "layers") << "\n\n";
    std::cout << "  LAYER  COMPRESSED  FILES       ENTRIES  MADE BY\n";
    for (size_t i = 0; i < layers.size(); i++) {
        auto by = i < madeBy.size() && !madeBy[i].empty() ? madeBy[i] : "-";
        if (by.size() > 72) by = by.substr(0, 69) + "...";
        char head[96];
        std::snprintf(
            head, sizeof head, "  %-5zu  %-10s  %-10s  %7llu  ", i + 1,
            humanBytes(uint64_t(std::max<int64_t>(img.manifest.layers[i].size, 0))).c_str(),
            humanBytes(layers[i].bytes).c_str(),
            static_cast<unsigned long long>(layers[i].entries));
        std::cout << head << by << "\n";
        std::vector<std::string> largest;
        for (auto& [folder, bytes] : layers[i].largest)
            largest.push_back("/" + folder + " " + humanBytes(bytes));
        if (!largest.empty()) std::cout << "         in " << join(largest, ", ") << "\n";
    }
    auto run = cfg.value("config", json::object());
    std::cout << "\n  config\n";
    auto field = [&](const char* label, const json& v) {
        char head[32];
        std::snprintf(head, sizeof head, "    %-11s ", label);
        std::cout << head << shortValue(v) << "\n";
    };
    field("entrypoint", run.value("Entrypoint", json()));
    field("cmd", run.value("Cmd", json()));
    field("user", run.contains("User") && !run["User"].get<std::string>().empty() ? run["User"]
                                                                                  : json("root"));
    field("workdir", run.value("WorkingDir", json()));
    field("ports", run.value("ExposedPorts", json()));
    field("volumes", run.value("Volumes", json()));
    auto env = run.value("Env", json::array());
    if (env.empty()) field("env", json());
    for (size_t i = 0; i < env.size(); i++)
        field(i == 0 ? "env" : "", env[i]);
    std::vector<std::string> labels;
    auto labelsJson = run.value("Labels", json::object());
    for (auto& [k, v] : labelsJson.items())
        labels.push_back(k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
    if (labels.empty()) field("labels", json());
    for (size_t i = 0; i < labels.size(); i++)
        field(i == 0 ? "labels" : "", labels[i]);
}

int runInspect(const GlobalOptions& g, const std::string& srcText, bool summary)
{
    auto src = ImageRef::parse(srcText);
    Store store = openStore(g);
    Image img = loadAnyImage(store, src, g, summary);
    if (summary) {
        printSummary(store, src.str(), img);
        return 0;
    }
    json out = {{"name", src.str()},
                {"digest", img.manifestDescriptor.digest.str()},
                {"mediaType", img.manifestDescriptor.mediaType},
                {"manifest", json::parse(img.manifestBytes)},
                {"config", json::parse(img.configBytes)}};
    std::cout << out.dump(2) << "\n";
    return 0;
}

} // namespace

Runners registerImageCommands(CLI::App& app, GlobalOptions& global)
{
    Runners runners;
    static AppendOptions ao;
    auto* append = app.add_subcommand(
        "append", "Add one layer per --dir on top of SRC (or scratch) and write DEST");
    append->add_option("SRC", ao.src, "Base image location, or scratch")->required();
    addProgressOption(append, global);
    append->add_option("DEST", ao.dest, "Where to write the image")->required();
    append
        ->add_option("--dir", ao.dirs,
                     "PATH[:TARGET]: a folder to add as a layer at TARGET (default /)")
        ->allow_extra_args(false);
    append->add_option("--entrypoint", ao.entrypoint, "Entrypoint argument (repeat for each)")
        ->allow_extra_args(false);
    append->add_option("--cmd", ao.cmd, "Cmd argument (repeat for each)")->allow_extra_args(false);
    append->add_option("--env", ao.env, "KEY=VALUE environment variable")->allow_extra_args(false);
    append->add_option("--label", ao.labels, "KEY=VALUE label")->allow_extra_args(false);
    append->add_option("--workdir", ao.workdir, "Working directory");
    append->add_option("--user", ao.user, "User to run as");
    append->add_option("--compression", ao.compression, "gzip (default) or zstd");
    append->add_option("--platform", ao.platform,
                       "OS/ARCH[/VARIANT] of an image made from scratch (default this machine's)");
    append->add_flag(
        "--keep-owners", ao.keepOwners,
        "Record the files' owners as they are (a root filesystem made as root); default: all root");
    runners.emplace_back(append, [&global] { return runAppend(global, ao); });

    static std::string copySrc, copyDest;
    auto* copy = app.add_subcommand("copy", "Copy an image between locations");
    copy->add_option("SRC", copySrc)->required();
    copy->add_option("DEST", copyDest)->required();
    addProgressOption(copy, global);
    addPlatformOption(copy, global);
    addAllOption(copy, global);
    runners.emplace_back(copy, [&global] { return runCopy(global, copySrc, copyDest); });

    static std::string unpackSrc, unpackDir;
    auto* unpack = app.add_subcommand(
        "unpack", "Write the root filesystem of an image (all layers applied) to DIR");
    unpack->add_option("SRC", unpackSrc)->required();
    addProgressOption(unpack, global);
    unpack->add_option("DIR", unpackDir)->required();
    runners.emplace_back(unpack, [&global] { return runUnpack(global, unpackSrc, unpackDir); });

    static std::string inspectSrc;
    static bool inspectSummary = false;
    auto* inspect = app.add_subcommand(
        "inspect", "Print an image's manifest and config as JSON, or a summary of it");
    inspect->add_option("SRC", inspectSrc)->required();
    addProgressOption(inspect, global);
    inspect->add_flag("--summary", inspectSummary,
                      "A table of the layers (size, what made each, the folders that hold most "
                      "of it), the image's size and its config in short; reads every layer");
    runners.emplace_back(inspect,
                         [&global] { return runInspect(global, inspectSrc, inspectSummary); });
    return runners;
}

} // namespace grocker
