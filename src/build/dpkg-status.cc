#include "dpkg-status.hh"

#include "grocker/strings.hh"

#include <sstream>

namespace grocker::build {

namespace {

// "libc6 (>= 2.34), python3.11 | python3.12, foo:any": each relation's first alternative,
// without version or architecture qualifier.
void addRelations(std::vector<std::string>& out, std::string_view field)
{
    std::stringstream in{std::string(field)};
    std::string relation;
    while (std::getline(in, relation, ',')) {
        auto first = std::string(trimmed(relation.substr(0, relation.find('|'))));
        auto name = first.substr(0, first.find_first_of(" ("));
        name = name.substr(0, name.find(':'));
        if (!name.empty()) out.push_back(name);
    }
}

} // namespace

std::map<std::string, DebPackage> parseDpkgStatus(std::string_view text)
{
    std::map<std::string, DebPackage> packages;
    std::stringstream in{std::string(text)};
    std::string line;
    DebPackage p;
    std::string status, depends, predepends, provides, source;
    auto flush = [&] {
        if (!p.name.empty() && status.ends_with(" installed")) {
            addRelations(p.depends, depends);
            addRelations(p.depends, predepends);
            addRelations(p.provides, provides);
            // "Source: name (version)" when the source's version differs from the package's.
            auto paren = source.find(" (");
            p.source = std::string(trimmed(source.substr(0, paren)));
            p.sourceVersion =
                paren == std::string::npos
                    ? p.version
                    : std::string(
                          trimmed(source.substr(paren + 2, source.find(')', paren) - paren - 2)));
            if (p.source.empty()) p.source = p.name;
            packages[p.name] = std::move(p);
        }
        p = DebPackage{};
        status.clear(), depends.clear(), predepends.clear(), provides.clear(), source.clear();
    };
    std::string* last = nullptr;
    while (std::getline(in, line)) {
        if (line.empty()) {
            flush();
            last = nullptr;
            continue;
        }
        if (line[0] == ' ' || line[0] == '\t') {
            if (last) *last += " " + line; // a continued field
            continue;
        }
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        auto field = line.substr(0, colon);
        auto value = std::string(trimmed(std::string_view(line).substr(colon + 1)));
        last = nullptr;
        if (field == "Package")
            p.name = value;
        else if (field == "Status")
            status = value;
        else if (field == "Version")
            p.version = value;
        else if (field == "Architecture")
            p.architecture = value;
        else if (field == "Source")
            source = value;
        else if (field == "Depends")
            last = &(depends = value);
        else if (field == "Pre-Depends")
            last = &(predepends = value);
        else if (field == "Provides")
            last = &(provides = value);
    }
    flush();
    return packages;
}

std::vector<std::string> providersOf(const std::map<std::string, DebPackage>& packages,
                                     const std::string& name)
{
    if (packages.count(name)) return {name};
    std::vector<std::string> found;
    for (auto& [n, p] : packages)
        for (auto& v : p.provides)
            if (v == name) {
                found.push_back(n);
                break;
            }
    return found;
}

} // namespace grocker::build
