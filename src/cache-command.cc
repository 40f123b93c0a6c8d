// grocker cache ls|prune: the build cache a registry holds for `grocker build`
// (build/remote-cache.hh), listed and pruned.

#include "commands.hh"
#include "grocker/error.hh"
#include "grocker/registry/progress.hh"
#include "remote-cache.hh"

#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace grocker {

namespace {

// REPO as given, else $GROCKER_CACHE_REPO; "docker://" allowed; a tag or digest refused.
std::string cacheRepository(const std::string& given)
{
    std::string repo = given;
    if (repo.empty()) {
        const char* env = std::getenv("GROCKER_CACHE_REPO");
        if (env) repo = env;
    }
    if (repo.empty())
        throw UsageError("name the cache repository (REPO, or GROCKER_CACHE_REPO): the build's "
                         "--cache-repo, by default PREFIX/grocker-cache");
    if (repo.starts_with("docker://")) repo = repo.substr(9);
    if (build::repositoryExtra(repo) != build::RepositoryExtra::None)
        throw UsageError("'", given, "' names a tag or digest: name the cache repository");
    return repo;
}

std::string age(int64_t seconds)
{
    if (seconds < 0) return "?";
    if (seconds < 3600) return std::to_string(seconds / 60) + " min";
    if (seconds < 2 * 86400) return std::to_string(seconds / 3600) + " h";
    return std::to_string(seconds / 86400) + " days";
}

void printEntries(const std::vector<build::RemoteCache::Entry>& entries)
{
    // Each entry by its kind and the first 10 digits of its key.
    std::cout << std::left << std::setw(23) << "ENTRY" << std::setw(10) << "SIZE" << std::setw(10)
              << "AGE"
              << "WHAT\n";
    for (auto& e : entries)
        std::cout << std::setw(23) << e.tag.substr(0, e.kind.size() + 11) << std::setw(10)
                  << registry::Progress::formatBytes(uint64_t(e.size)) << std::setw(10)
                  << age(e.age) << e.what << "\n";
}

} // namespace

Runners registerCacheCommands(CLI::App& app, GlobalOptions& global)
{
    Runners runners;
    auto* cache =
        app.add_subcommand("cache", "The build cache in a registry (grocker build's --cache-repo)");
    cache->require_subcommand(1);

    static std::string lsRepo;
    auto* ls = cache->add_subcommand("ls", "List the entries of a build cache: size, age, what");
    ls->add_option("REPO", lsRepo, "The cache repository (default $GROCKER_CACHE_REPO)");
    runners.emplace_back(ls, [&global] {
        auto repo = cacheRepository(lsRepo);
        oci::Store store = openStore(global);
        build::RemoteCache c(store, registryOptions(global), repo, build::CacheMode::Read);
        std::vector<build::RemoteCache::Entry> entries;
        try {
            entries = c.list();
        } catch (Error& e) {
            e.addContext("while listing the build cache " + repo);
            throw;
        }
        printEntries(entries);
        int64_t total = 0;
        for (auto& e : entries)
            total += e.size;
        std::cerr << entries.size() << " entries, "
                  << registry::Progress::formatBytes(uint64_t(total)) << ", in " << repo << "\n";
        return 0;
    });

    static std::string pruneRepo;
    static double days = -1;
    auto* prune = cache->add_subcommand("prune", "Remove the entries older than --older-than DAYS");
    prune->add_option("REPO", pruneRepo, "The cache repository (default $GROCKER_CACHE_REPO)");
    prune->add_option("--older-than", days, "Age in days (fractions allowed)")->required();
    runners.emplace_back(prune, [&global] {
        if (days < 0) throw UsageError("--older-than must be a number of days, 0 or more");
        auto repo = cacheRepository(pruneRepo);
        oci::Store store = openStore(global);
        build::RemoteCache c(store, registryOptions(global), repo, build::CacheMode::ReadWrite);
        std::vector<build::RemoteCache::Entry> removed;
        try {
            removed = c.prune(int64_t(days * 86400));
        } catch (Error& e) {
            e.addContext("while pruning the build cache " + repo);
            throw;
        }
        printEntries(removed);
        std::cerr << "removed " << removed.size() << " entries older than " << days << " days from "
                  << repo << " (the registry frees their blobs in its own garbage collection)\n";
        return 0;
    });
    return runners;
}

} // namespace grocker
