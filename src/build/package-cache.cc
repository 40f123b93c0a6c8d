// The root images' package lists (sbom.hh's RootPackages), kept in the store under
// cache/packages/<root manifest's hex>.json: reading them from the root's layers costs a pass
// over every layer (half a second for a Debian root), which a version bump must not pay.

#include "caches.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/layer-files.hh"
#include "sbom.hh"

namespace grocker::build {

namespace fs = std::filesystem;
using namespace grocker::oci;
using nlohmann::json;

namespace {

constexpr const char* packageEntries = "package lists";

fs::path packagesDir(const Store& store)
{
    return cacheDir(store) / "packages";
}

// An entry's root and packages, from its text (a file's, or a referrer's); throws when it is
// not one (what is wrong in the message).
std::pair<Digest, RootPackages> entryOf(std::string_view text)
{
    try {
        auto j = json::parse(text);
        return {Digest::parse(j.at("root").get<std::string>()),
                rootPackagesFromJson(j.at("packages"))};
    } catch (json::exception& e) {
        throw Error("it is not a package list (", e.what(), ")");
    }
}

// A kept entry, which must name the root of its file name.
std::pair<Digest, RootPackages> parseEntry(const fs::path& path)
{
    auto entry = entryOf(readFile(path));
    if (path.stem().string() != entry.first.hex())
        throw Error("it names the root ", entry.first.str(), ", not the one of its file name");
    return entry;
}

class PackageCachePart : public StorePart {
  public:
    void check(PartCheck& c) override
    {
        c.counted(packageEntries, 0);
        for (auto& e : c.entries(packagesDir(c.store()))) {
            if (e.path().extension() != ".json") continue;
            c.counted(packageEntries);
            try {
                parseEntry(e.path());
            } catch (Error& ex) {
                c.issue(e.path(), "broken package list: " + ex.message(), "removed",
                        [&] { c.removeFile(e.path()); });
            }
        }
    }
    // Lists stay while their root is kept.
    void sweep(PartSweep& s) override
    {
        for (auto& e : s.entries(packagesDir(s.store()))) {
            if (e.path().extension() != ".json") continue;
            bool keep = false;
            try {
                keep = s.kept().blobs.count(parseEntry(e.path()).first.str()) > 0;
            } catch (Error&) {
            }
            if (!keep) s.dropFile(packageEntries, e.path());
        }
    }
    void leftovers(const Store& store, LeftoverSearch& search) override
    {
        search.deadTemps(packagesDir(store));
    }
};

} // namespace

namespace {

fs::path entryPath(const Store& store, const Image& root)
{
    return packagesDir(store) / (root.manifestDescriptor.digest.hex() + ".json");
}

} // namespace

std::optional<RootPackages> keptRootPackages(const Store& store, const Image& root)
{
    auto path = entryPath(store, root);
    if (fs::exists(path)) try {
            return parseEntry(path).second;
        } catch (Error&) {
            // a broken entry is made again
        }
    return std::nullopt;
}

std::string rootPackagesEntry(const Image& root, const RootPackages& packages)
{
    return json{{"root", root.manifestDescriptor.digest.str()}, {"packages", toJson(packages)}}
        .dump();
}

RootPackages rootPackagesFromEntry(const Image& root, std::string_view entry)
{
    auto [named, packages] = entryOf(entry);
    if (named != root.manifestDescriptor.digest)
        throw Error("it names the root ", named.str(), ", not ",
                    root.manifestDescriptor.digest.str());
    return packages;
}

void keepRootPackages(Store& store, const Image& root, const RootPackages& packages)
{
    auto path = entryPath(store, root);
    fs::create_directories(path.parent_path());
    writeFileAtomic(path, rootPackagesEntry(root, packages));
}

RootPackages cachedRootPackages(Store& store, const Image& root)
{
    if (auto kept = keptRootPackages(store, root)) return *kept;
    auto files = readImageFiles(store, root.manifest.layers, sbomFileWanted, uint64_t(64) << 20,
                                "the root's package database");
    auto packages = rootPackages(files);
    keepRootPackages(store, root, packages);
    return packages;
}

std::shared_ptr<StorePart> packageCachePart()
{
    return std::make_shared<PackageCachePart>();
}

} // namespace grocker::build
