// grocker fsck and grocker purge: the store's own upkeep, over Store::check and
// Store::collectGarbage. Which old images purge removes is decided here, from the names
// grocker build gives them.

#include "build/build-log.hh"
#include "build/caches.hh"
#include "commands.hh"
#include "grocker/error.hh"
#include "grocker/sandbox/id-map.hh"
#include "grocker/sandbox/rootfs.hh"

#include <cstdio>
#include <iostream>
#include <map>
#include <memory>

namespace grocker {

namespace fs = std::filesystem;
using namespace grocker::oci;

namespace {

fs::path storeRoot(const GlobalOptions& g)
{
    return g.root.empty() ? Store::defaultRoot() : fs::path(g.root);
}

// Opening makes a store where there is none: checking or purging a mistyped path must not.
// (A store whose making was cut short has at least its blobs folder, or is an empty folder.)
bool isStore(const fs::path& root)
{
    std::error_code ec;
    return fs::exists(root / "oci-layout", ec) || fs::exists(root / "index.json", ec) ||
           fs::exists(root / "blobs", ec) || (fs::is_directory(root, ec) && fs::is_empty(root, ec));
}

// Unpacked layers, run folders and wheels hold files of subordinate ids when rootless: they
// are removed from inside a user namespace with the caller's map, as grocker build removes
// its out folder. Root removes in-process.
Remover removerForCaller()
{
    auto map = std::make_shared<sandbox::IdMap>(sandbox::IdMap::forCaller());
    if (map->privileged) return removeTrees;
    return [map](const std::vector<fs::path>& paths) {
        sandbox::runInUserNamespace(*map, [&] { removeTrees(paths); });
    };
}

void lockAlone(Store& store)
{
    store.lockExclusive([&] {
        std::cerr << "grocker: waiting for other grocker processes using " << store.root().string()
                  << std::endl;
    });
}

int runFsck(const GlobalOptions& g, bool repair)
{
    auto root = storeRoot(g);
    if (!isStore(root))
        throw Error(
            "no store at '", root.string(),
            "' (no oci-layout, index.json nor blobs): give the store with --root or GROCKER_ROOT");
    // Opened keeping what dead processes left, so that they are reported (and, with --repair,
    // removed and said so) rather than quietly removed by the opening.
    Store store(root, Store::Leftovers::Keep);
    CheckOptions o;
    o.repair = repair;
    if (repair) {
        lockAlone(store);
        o.remove = removerForCaller();
    }
    auto r = store.check(o);
    for (auto& i : r.issues)
        std::cout << i.line() << "\n";
    std::cout << std::flush;
    // Damage fails the check until repaired; leftovers are said, and fail only a repair that
    // could not remove them.
    size_t problems = 0, problemsLeft = 0, leftovers = 0, leftoversLeft = 0;
    for (auto& i : r.issues) {
        (i.leftover ? leftovers : problems)++;
        if (i.repair.empty()) (i.leftover ? leftoversLeft : problemsLeft)++;
    }
    if (!g.quiet) {
        std::string found =
            problems ? plural(problems, "problem", "problems") +
                           (repair ? concat(", ", problems - problemsLeft, " repaired") : "")
                     : "no problem";
        if (leftovers)
            found += "; " + plural(leftovers, "leftover", "leftovers") + " of dead processes" +
                     (repair ? concat(", ", leftovers - leftoversLeft, " removed")
                             : ": grocker fsck --repair or grocker purge removes them");
        std::cerr << "checked " << plural(r.blobs, "blob", "blobs") << ", "
                  << plural(r.refs, "ref", "refs") << ", "
                  << plural(r.entriesOf(build::stepCacheEntries), "step cache entry",
                            "step cache entries")
                  << ", "
                  << plural(r.entriesOf(build::compileCacheEntries), "compile cache entry",
                            "compile cache entries")
                  << " and "
                  << plural(r.entriesOf(sandbox::unpackedLayers), "unpacked layer",
                            "unpacked layers")
                  << " in '" << store.root().string() << "': " << found << "\n";
    }
    size_t left = problemsLeft + (repair ? leftoversLeft : 0);
    if (left) {
        std::cerr << "grocker: error: " << plural(left, "problem", "problems") << " in the store '"
                  << store.root().string() << "'"
                  << (repair ? ": see above why they could not be repaired"
                             : ": run 'grocker fsck --repair' to remove what is broken (images "
                               "that lose blobs are "
                               "dropped: build or pull them again)")
                  << "\n";
        return 1;
    }
    return 0;
}

struct PurgeOptions {
    bool all = false;
    int keep = 1;
    bool dryRun = false;
};

// The group in which purge keeps the newest images: the repository of an image grocker build
// made from a runtime ("grocker-bookworm-3.11-root", "grocker-bookworm-3.11-compiler",
// "grocker-bookworm-3.11-root-slice", "grocker-base/debian-bookworm"). Empty for app images
// (grocker-app/...) and for refs grocker build did not make: purge keeps those.
std::string purgeGroup(const std::string& ref)
{
    auto colon = ref.rfind(':');
    if (colon == std::string::npos) return "";
    auto repo = ref.substr(0, colon);
    if (repo.starts_with("grocker-base/") && repo.size() > 13) return repo;
    if (repo.starts_with("grocker-") && repo.find('/') == std::string::npos &&
        (repo.ends_with("-root") || repo.ends_with("-compiler") || repo.ends_with("-root-slice")))
        return repo;
    return "";
}

int runPurge(const GlobalOptions& g, const PurgeOptions& o)
{
    auto root = storeRoot(g);
    if (!isStore(root)) {
        if (!g.quiet) std::cerr << "no store at '" << root.string() << "': nothing to purge\n";
        return 0;
    }
    Store store(root);
    lockAlone(store);
    // Index order is the order refs were last set: a rebuild that reuses a root image sets its
    // ref again, so the last ones of a group are the ones builds use now.
    std::map<std::string, std::vector<std::string>> groups;
    for (auto& d : store.readIndex().manifests) {
        auto it = d.annotations.find("org.opencontainers.image.ref.name");
        if (it == d.annotations.end()) continue;
        if (auto group = purgeGroup(it->second); !group.empty())
            groups[group].push_back(it->second);
    }
    GcOptions go;
    go.dryRun = o.dryRun;
    go.remove = removerForCaller();
    size_t keep = o.all ? 0 : size_t(o.keep);
    for (auto& [group, names] : groups)
        for (size_t i = 0; i + keep < names.size(); i++)
            go.dropRefs.push_back(names[i]);
    auto r = store.collectGarbage(go);
    if (!g.quiet)
        for (auto& name : go.dropRefs)
            std::cout << (o.dryRun ? "would remove " : "removed ") << name << "\n";
    auto part = [](GcReport::Freed f, const std::string& one, const std::string& many) {
        return plural(f.count, one, many) + (f.count ? " (" + humanBytes(f.bytes) + ")" : "");
    };
    // What could not be read or removed, each said; a purge that could not remove something fails.
    for (auto& w : r.warnings)
        std::cerr << "grocker: warning: " << w << "\n";
    for (auto& f : r.failures)
        std::cerr << "grocker: error: " << f << "\n";
    // Exact bytes first, for scripts; then each part, for people.
    std::cout << (o.dryRun ? "would free " : "freed ") << r.bytes() << " bytes ("
              << humanBytes(r.bytes()) << "): " << plural(go.dropRefs.size(), "image", "images")
              << ", " << part(r.blobs, "blob", "blobs") << ", "
              << plural(r.partOf(build::stepCacheEntries).count, "step cache entry",
                        "step cache entries")
              << ", "
              << part(r.partOf(build::compileCacheEntries), "compile cache entry",
                      "compile cache entries")
              << ", "
              << part(r.partOf(build::buildEnvironments), "build environment", "build environments")
              << ", "
              << part(r.partOf(sandbox::unpackedLayers), "unpacked layer", "unpacked layers")
              << ", " << part(r.leftovers, "leftover", "leftovers") << "\n";
    return r.failures.empty() ? 0 : 1;
}

struct LogOptions {
    std::string name;
    bool list = false, path = false;
};

// grocker log: a kept build log, as it is (its lines were made printable when written).
int runLog(const GlobalOptions& g, const LogOptions& o)
{
    auto root = storeRoot(g);
    if (o.list) {
        for (auto& l : build::buildLogs(root)) {
            std::error_code ec;
            auto size = fs::file_size(l, ec);
            std::cout << l.filename().string() << "  " << humanBytes(ec ? 0 : size) << "\n";
        }
        return 0;
    }
    auto log = build::findBuildLog(root, o.name);
    if (o.path) {
        std::cout << log.string() << "\n";
        return 0;
    }
    std::cout << readFile(log);
    std::cout.flush();
    return 0;
}

} // namespace

Runners registerStoreCommands(CLI::App& app, GlobalOptions& global)
{
    // The parts of every store this program opens, in the order fsck reports them: main calls
    // this before any command runs, so every store's opening clears their leftovers too.
    setStoreParts({build::stepCachePart(), build::compileCachePart(), build::packageCachePart(),
                   sandbox::storePart()});
    Runners runners;
    static bool repair = false;
    auto* fsck = app.add_subcommand(
        "fsck", "Check the store: blobs, images, caches, unpacked layers, leftovers");
    fsck->add_flag("--repair", repair,
                   "Remove corrupt blobs, broken cache entries, stray files and leftovers, and "
                   "drop the refs of images "
                   "that are incomplete");
    fsck->footer("Prints one line per problem (where: what) and exits 1 when any is left. Also "
                 "prints one line per "
                 "leftover of a dead process (temp files, run folders of killed steps, lock files "
                 "no one holds), "
                 "which takes room but harms nothing: it does not fail the check. Waits for other "
                 "grocker processes "
                 "using the store before repairing.");
    runners.push_back({fsck, [&global] { return runFsck(global, repair); }});

    static PurgeOptions po;
    auto* purge = app.add_subcommand(
        "purge", "Remove old base, root and compiler images and what no image needs");
    auto* all = purge->add_flag(
        "-a,--all", po.all,
        "Remove every base, root and compiler image (the next build makes them again)");
    purge
        ->add_option("--keep", po.keep,
                     "Keep the N most recently used base, root and compiler images of each runtime "
                     "(default 1)")
        ->check(CLI::NonNegativeNumber)
        ->excludes(all);
    purge->add_flag("-n,--dry-run", po.dryRun,
                    "Say what would be removed and freed; remove nothing");
    purge->footer("Images of applications (grocker-app/...) and images grocker build did not make "
                  "are never removed. Then "
                  "removed: blobs no remaining image needs, step cache entries whose layer is in "
                  "no remaining image, compile "
                  "cache entries whose wheels changed, unpacked layers of no remaining image, "
                  "leftovers of killed processes. "
                  "The wheel cache is kept. Waits for other grocker processes using the store.");
    runners.push_back({purge, [&global] { return runPurge(global, po); }});

    static LogOptions lo;
    auto* log = app.add_subcommand("log", "Show the whole output of the last build (or of NAME)");
    log->add_option("NAME", lo.name,
                    "A log's file name (or its start), or part of the release it built");
    log->add_flag("-l,--list", lo.list, "List the kept logs, oldest first, with their sizes");
    log->add_flag("--path", lo.path, "Print the log's path instead");
    log->footer("Each build's log is kept in the store's logs/ folder: every line of every step "
                "and every message, unfiltered, each with the time since the build started. The " +
                std::to_string(build::keptLogs) + " newest are kept, at most " +
                humanBytes(build::logLimit) + " each.");
    runners.push_back({log, [&global] { return runLog(global, lo); }});
    return runners;
}

} // namespace grocker
