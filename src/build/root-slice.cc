// The root's Python slice (root-slice.hh): which files it holds, from dpkg's database, and the
// pipeline's use of it.

#include "root-slice.hh"

#include "dpkg-status.hh"
#include "grocker/display.hh"
#include "grocker/error.hh"
#include "grocker/oci/reference.hh"
#include "grocker/sandbox/rootfs.hh"
#include "passes.hh"

#include <archive_entry.h>
#include <iostream>
#include <sstream>
#include <vector>

namespace grocker::build {

using namespace grocker::oci;

namespace {

constexpr std::string_view infoPrefix = "var/lib/dpkg/info/";

} // namespace

std::string sourceOfPyc(const std::string& path)
{
    // "usr/lib/python3.11/__pycache__/os.cpython-311.pyc" → "usr/lib/python3.11/os.py"
    auto slash = path.rfind('/');
    auto dir = path.substr(0, slash == std::string::npos ? 0 : slash);
    constexpr std::string_view cache = "__pycache__";
    if (!path.ends_with(".pyc") || !dir.ends_with(cache)) return {};
    if (dir.size() > cache.size() && dir[dir.size() - cache.size() - 1] != '/') return {};
    auto name = path.substr(slash + 1);
    auto module = name.substr(0, name.find('.'));
    auto parent = dir.substr(0, dir.size() - cache.size());
    return module.empty() ? std::string() : parent + module + ".py";
}

bool sliceInput(const std::string& path)
{
    return path == dpkgStatusPath ||
           (path.starts_with(infoPrefix) && path.ends_with(".list") &&
            path.find('/', infoPrefix.size()) == std::string::npos) ||
           path.find('/') == std::string::npos;
}

std::set<std::string> slicePaths(const std::map<std::string, LayerFile>& files,
                                 const std::vector<std::string>& wanted)
{
    std::set<std::string> paths;
    auto status = files.find(std::string(dpkgStatusPath));
    if (status == files.end() || status->second.symlink) return paths;
    auto packages = parseDpkgStatus(status->second.data);
    for (auto& p : wanted)
        if (!packages.count(p)) return paths;
    // The .list files by package name (a Multi-Arch: same package's is NAME:ARCH.list).
    std::map<std::string, const std::string*> lists;
    for (auto& [path, f] : files)
        if (path.starts_with(infoPrefix) && path.ends_with(".list") && !f.symlink) {
            auto base = path.substr(infoPrefix.size());
            base = base.substr(0, base.size() - 5);
            lists[base.substr(0, base.find(':'))] = &f.data;
        }
    std::set<std::string> seen;
    std::vector<std::string> todo = wanted;
    while (!todo.empty()) {
        auto name = todo.back();
        todo.pop_back();
        for (auto& c : providersOf(packages, name)) {
            if (!seen.insert(c).second) continue;
            for (auto& d : packages[c].depends)
                todo.push_back(d);
            auto list = lists.find(c);
            if (list == lists.end()) continue;
            std::stringstream in(*list->second);
            std::string line;
            while (std::getline(in, line)) {
                if (line.size() < 2 || line[0] != '/') continue;
                auto path = line.substr(1);
                // Merged /usr: "lib/x86_64-linux-gnu/libc.so.6" is under the symlink lib →
                // usr/lib.
                auto slash = path.find('/');
                if (slash != std::string::npos) {
                    auto top = files.find(path.substr(0, slash));
                    if (top != files.end() && top->second.symlink &&
                        !top->second.data.starts_with("/") &&
                        top->second.data.find("..") == std::string::npos)
                        path = top->second.data + path.substr(slash);
                }
                paths.insert(path);
            }
        }
    }
    return paths;
}

} // namespace grocker::build

namespace grocker::build {

std::string Pipeline::sliceName() const
{
    // "grocker-bookworm-3.11-root-slice:0.1.0-ROOTKEY-RECIPEKEY": a repository of its own, so
    // that grocker purge keeps the newest slice and the newest root apart.
    auto colon = rootName.rfind(':');
    return rootName.substr(0, colon) + "-slice" + rootName.substr(colon) + "-" +
           cacheKey({sliceRecipe}).substr(0, 8);
}

bool Pipeline::sliceable() const
{
    // Debian's Python: the slice is its packages. Another (a registry image's own, as
    // bookworm/3.12's) has none, and its root is pulled.
    return runtime->python == "/usr/bin/python3";
}

std::optional<Image> Pipeline::findSlice()
{
    if (!sliceable()) return std::nullopt;
    auto name = sliceName();
    if (auto d = store->getRef(name)) {
        try {
            return imageFromStore(*store, *d);
        } catch (Error&) {
            // missing pieces: pulled again below
        }
    }
    if (!registry) return std::nullopt;
    auto ref = registry->ref(name);
    try {
        if (!registry->get().hasManifest(ref)) return std::nullopt;
        Image img = registry->get().pull(*store, ref);
        store->setRef(name, img.manifestDescriptor);
        return img;
    } catch (std::exception& e) {
        display().warning(concat("the root's Python slice ", ref.str(),
                                 " cannot be used: ", e.what(), "; the root is pulled instead"));
        return std::nullopt;
    }
}

std::optional<Image> Pipeline::makeSlice()
{
    needRoot();
    auto files = readImageFiles(*store, root.manifest.layers, sliceInput, uint64_t(256) << 20,
                                "the root " + rootName);
    auto paths = slicePaths(files, {"python3", "dash"});
    if (paths.empty()) return std::nullopt;
    // zstd, whatever the build's compression: only grocker reads it, and it inflates in a
    // fraction of gzip's time. Two layers, unpacked side by side: Python's library and the rest.
    LayerOptions lo;
    lo.compress.compression = Compression::Zstd;
    lo.sourceDateEpoch = ctx->epoch;
    auto keep = [&](const std::string& path, unsigned type) {
        return type == AE_IFDIR || type == AE_IFLNK || path.starts_with("etc/") ||
               paths.count(path) > 0 || paths.count(sourceOfPyc(path)) > 0;
    };
    constexpr std::string_view library = "usr/lib/python3";
    auto inLibrary = [&](const std::string& path, unsigned type) {
        // its folders' parents too, as the root has them (else made with the unpacker's modes)
        return path.starts_with(library) ||
               (type == AE_IFDIR && std::string_view(library).starts_with(path + "/"));
    };
    ImageDraft d(loadImage(*store, ImageRef{}), true, ctx->epoch);
    auto rest = sandbox::sliceLayer(
        *store, root,
        [&](const std::string& p, unsigned t) {
            return keep(p, t) && (!p.starts_with(library) || t == AE_IFDIR);
        },
        ctx->map, lo);
    d.addLayer(rest.descriptor, rest.diffId,
               "the Python slice of " + rootName + ": all but " + std::string(library) + "*");
    auto lib = sandbox::sliceLayer(
        *store, root,
        [&](const std::string& p, unsigned t) { return keep(p, t) && inLibrary(p, t); }, ctx->map,
        lo);
    d.addLayer(lib.descriptor, lib.diffId,
               "the Python slice of " + rootName + ": " + std::string(library) + "*");
    auto& labels = d.runConfig()["Labels"];
    labels["grocker.version"] = GROCKER_VERSION;
    labels["grocker.image.role"] = "root-slice";
    labels["grocker.root.image"] = rootName;
    auto img = std::move(d).commit(*store);
    store->setRef(sliceName(), img.manifestDescriptor);
    return img;
}

void Pipeline::shareSlice()
{
    // Written by runners that write the build cache, as its entries are, when the registry
    // lacks it; from the root's layers, which such a runner has.
    if (rootLayersIn || !remoteCache || !remoteCache->writes() || !sliceable()) return;
    auto ref = registry->ref(sliceName());
    try {
        if (registry->get().hasManifest(ref)) return;
        std::optional<Image> slice;
        if (auto d = store->getRef(sliceName())) slice = imageFromStore(*store, *d);
        if (!slice) slice = makeSlice();
        if (!slice) return; // the root's Python is not Debian's
        registry->get().push(*store, *slice, ref);
        say(*ctx, "root: its Python slice pushed to " + ref.str() +
                      " (a fresh runner installs the app over it)");
    } catch (std::exception& e) {
        display().warning(concat("the root's Python slice could not be pushed to ", ref.str(), ": ",
                                 e.what(), "; the build goes on"));
    }
}

} // namespace grocker::build
