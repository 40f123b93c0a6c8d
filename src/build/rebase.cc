#include "rebase.hh"

#include "grocker/error.hh"
#include "grocker/oci/transport.hh"

#include <nlohmann/json.hpp>

namespace grocker::build {

using namespace grocker::oci;
using nlohmann::json;

namespace {

json historyOf(const Image& image)
{
    auto h = image.config.json.value("history", json::array());
    return h.is_array() ? h : json::array();
}

// The runner's labels that say what it is, not what its root is: kept over the new root's.
bool runnerLabel(const std::string& key)
{
    return key.rfind("grocker.app.", 0) == 0 || key.rfind("grocker.root.", 0) == 0 ||
           key == "grocker.image.role" || key.rfind("org.opencontainers.image.", 0) == 0;
}

} // namespace

Rebased rebaseRunner(Store& store, const Image& runner, const Image& root,
                     const std::string& rootName)
{
    auto runnerLabels = runner.config.labels(), rootLabels = root.config.labels();
    std::string role = runner.config.label("grocker.image.role");
    if (role != "runner")
        throw Error("the image to rebase is not a runner grocker built: its label "
                    "grocker.image.role is ",
                    role.empty() ? std::string("missing") : "'" + role + "'",
                    "; rebase takes a runner made by grocker build");
    std::string rootRole = root.config.label("grocker.image.role");
    if (rootRole != "root")
        throw Error("the image to rebase onto is not a root image grocker built: its label "
                    "grocker.image.role is ",
                    rootRole.empty() ? std::string("missing") : "'" + rootRole + "'",
                    "; give the root a build of the same runtime made (grocker build pushes "
                    "it beside the runner: PREFIX/grocker-<runtime>-root:<tag>)");
    std::string runtime = runner.config.label("grocker.runtime");
    std::string rootRuntime = root.config.label("grocker.runtime");
    if (runtime.empty() || runtime != rootRuntime)
        throw Error("the runner was built for the runtime '", runtime, "', the root is for '",
                    rootRuntime,
                    "': its venv and compiled extensions are for that runtime's Python; "
                    "rebase keeps the runtime (build the app for '",
                    rootRuntime, "' instead)");
    auto platform = runner.config.platform(), rootPlatform = root.config.platform();
    if (platform.str() != rootPlatform.str())
        throw Error("the runner is for ", platform.str(), ", the root for ", rootPlatform.str(),
                    ": rebase onto the root of the runner's platform");
    std::string count = runner.config.label(rootLayersLabel);
    size_t total = runner.manifest.layers.size(), n = 0;
    auto diffIds = runner.config.diffIds();
    bool counted = !count.empty() && count.size() < 6 &&
                   count.find_first_not_of("0123456789") == std::string::npos;
    if (counted) n = std::stoul(count);
    if (!counted || n == 0 || n >= total || diffIds.size() != total)
        throw Error("the runner does not say which of its ", total,
                    " layers are its root's (label ", rootLayersLabel,
                    count.empty() ? std::string(" missing") : " '" + count + "'",
                    "): built by an older grocker; build it once with this one");
    Rebased out;
    out.ownLayers = total - n;
    out.rootLayers = root.manifest.layers.size();
    if (runner.config.label(rootDigestLabel) == root.manifestDescriptor.digest.str()) {
        out.image = runner;
        out.unchanged = true;
        return out;
    }
    // Its own history: one entry a layer, the last ones (grocker adds no empty-layer entries).
    auto history = historyOf(runner);
    if (history.size() < out.ownLayers)
        throw Error("the runner's history has ", history.size(), " entries for its ", out.ownLayers,
                    " own layers: not as grocker writes it; build it again");
    for (size_t i = history.size() - out.ownLayers; i < history.size(); i++)
        if (history[i].value("empty_layer", false))
            throw Error("the runner's history does not match its layers (entry ", i,
                        " has no layer): not as grocker writes it; build it again");

    // The root's manifest (Docker media types made OCI's), then the runner's own layers.
    ImageDraft draft(root, false, 0);
    Manifest manifest = draft.manifest;
    for (size_t i = n; i < total; i++)
        manifest.layers.push_back(runner.manifest.layers[i]);
    json config = runner.config.json;
    json ids = json::array();
    for (auto& d : root.config.diffIds())
        ids.push_back(d.str());
    for (size_t i = n; i < total; i++)
        ids.push_back(diffIds[i].str());
    config["rootfs"] = {{"type", "layers"}, {"diff_ids", ids}};
    json newHistory = historyOf(root);
    for (size_t i = history.size() - out.ownLayers; i < history.size(); i++)
        newHistory.push_back(history[i]);
    config["history"] = newHistory;
    // The root's labels (its base, its version), then what the runner says of itself.
    json labels = rootLabels;
    for (auto& [k, v] : runnerLabels.items())
        if (runnerLabel(k)) labels[k] = v;
    labels["grocker.root.image"] = rootName;
    labels[rootDigestLabel] = root.manifestDescriptor.digest.str();
    labels[rootLayersLabel] = std::to_string(out.rootLayers);
    config["config"]["Labels"] = labels;
    out.image = commitImage(store, std::move(manifest), ImageConfig{std::move(config)});
    return out;
}

} // namespace grocker::build
