// Apt repositories and Debian packages of a configuration file: `repositories` and both forms of
// `dependencies`.
#include "config-layer.hh"

namespace grocker::config {

void FileLayer::repositories(const Entry& e)
{
    if (e.value.IsNull()) return;
    if (!e.value.IsMap()) return expected(e, "a mapping of name: {uri: ..., key: ...}");
    for (auto& r : entries(e.value, e.path)) {
        if (!isPlainName(r.key)) {
            problem(r.keyNode, e.path,
                    concat(quote(r.key),
                           " is not a repository name (letters, digits, '.', '_' and '-')"));
            continue;
        }
        if (!r.value.IsMap()) {
            expected(r, "a mapping with 'uri' (and 'key')");
            continue;
        }
        size_t before = problems_.size();
        Repository repo;
        bool hasUri = false;
        for (auto& f : entries(r.value, r.path)) {
            if (f.key == "uri") {
                hasUri = true;
                auto v = scalar(f, "a sources.list line");
                if (!v) continue;
                if (auto p = checkSourcesLine(*v))
                    problem(f.value, f.path, *p);
                else
                    repo.uri = trimmed(*v);
            } else if (f.key == "key") {
                if (f.value.IsNull()) continue;
                auto v = scalar(f, "an armored PGP public key");
                if (!v || v->empty()) continue;
                if (auto p = checkArmoredKey(*v))
                    problem(f.value, f.path, *p);
                else
                    repo.key = concat(trimmed(*v), "\n");
            } else {
                problem(f.keyNode, f.path, unknownKey(f.key, repositoryKeys));
            }
        }
        if (!hasUri)
            problem(r.keyNode, r.path,
                    "'uri' is missing (a line like 'deb http://host/debian bookworm main')");
        if (problems_.size() == before) config_.repositories[r.key] = repo;
    }
}

void FileLayer::packages(const YAML::Node& list, const std::string& path,
                         std::vector<std::string>& to)
{
    for (const auto& n : list) {
        if (!n.IsScalar())
            problem(n, path, concat("expected a package name, got ", describe(n)));
        else if (auto p = checkPackage(n.Scalar()))
            problem(n, path, *p);
        else
            appendUnique(to, n.Scalar());
    }
}

// Two forms: the original Grocker 5's {run: [...], build: [...]}, and its 6's list whose
// items are a run package, or {run_package: build_package(s)}.
void FileLayer::dependencies(const Entry& e)
{
    auto& deps = config_.dependencies;
    if (e.value.IsNull()) return;
    if (e.value.IsMap()) {
        for (auto& f : entries(e.value, e.path)) {
            if (f.key != "run" && f.key != "build") {
                problem(f.keyNode, f.path, unknownKey(f.key, dependencyKeys));
                continue;
            }
            if (f.value.IsNull()) continue;
            if (!f.value.IsSequence()) {
                expected(f, "a list of package names");
                continue;
            }
            packages(f.value, f.path, f.key == "run" ? deps.run : deps.build);
        }
        return;
    }
    if (!e.value.IsSequence())
        return expected(e, "a list of packages or a mapping {run: [...], build: [...]}");
    for (const auto& item : e.value) {
        if (item.IsScalar()) {
            if (auto p = checkPackage(item.Scalar()))
                problem(item, e.path, *p);
            else
                appendUnique(deps.run, item.Scalar());
            continue;
        }
        if (!item.IsMap() || item.size() != 1) {
            problem(item, e.path,
                    concat("expected a package name or a one-key mapping {run_package: "
                           "build_package(s)}, got ",
                           item.IsMap() ? concat("a mapping of ", item.size(), " keys")
                                        : describe(item)));
            continue;
        }
        // Copies: yaml-cpp's iterator hands out a proxy that dies with the statement.
        YAML::Node run = item.begin()->first, build = item.begin()->second;
        if (!run.IsScalar()) {
            problem(run, e.path, concat("expected a package name, got ", describe(run)));
            continue;
        }
        if (auto p = checkPackage(run.Scalar()))
            problem(run, e.path, *p);
        else
            appendUnique(deps.run, run.Scalar());
        if (build.IsScalar()) {
            if (auto p = checkPackage(build.Scalar()))
                problem(build, e.path, *p);
            else
                appendUnique(deps.build, build.Scalar());
        } else if (build.IsSequence()) {
            packages(build, e.path, deps.build);
        } else {
            problem(build.IsNull() ? run : build, e.path,
                    concat("expected the build package(s) of ", quote(run.Scalar()), ", got ",
                           describe(build)));
        }
    }
}

} // namespace grocker::config
