#include "sbom.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/digest.hh"
#include "grocker/strings.hh"
#include "python-dists.hh"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace grocker::build {

using nlohmann::json;

namespace {

constexpr std::string_view docPrefix = "usr/share/doc/";

// Percent-encoding of a purl component: all but the unreserved characters.
std::string purlEncode(std::string_view s)
{
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) || c == '.' || c == '-' || c == '_' || c == '~')
            out += char(c);
        else
            out.append("%").append(1, hex[c >> 4]).append(1, hex[c & 15]);
    }
    return out;
}

// "ID" and "VERSION_ID" of os-release: "debian-12".
std::string distroOf(const std::string& osRelease)
{
    std::string id, version;
    std::istringstream in(osRelease);
    for (std::string line; std::getline(in, line);) {
        auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        auto value = std::string(trimmed(line.substr(eq + 1)));
        if (value.size() >= 2 && (value[0] == '"' || value[0] == '\''))
            value = value.substr(1, value.size() - 2);
        if (line.substr(0, eq) == "ID") id = value;
        if (line.substr(0, eq) == "VERSION_ID") version = value;
    }
    return id.empty() ? "" : version.empty() ? id : id + "-" + version;
}

// Debian's short names (copyright-format 1.0, and what packages write) and the classifiers of
// Python packages, as SPDX identifiers.
const std::map<std::string, std::string>& spdxIds()
{
    static const std::map<std::string, std::string> ids{
        {"apache-2.0", "Apache-2.0"},
        {"artistic", "Artistic-1.0-Perl"},
        {"artistic-2.0", "Artistic-2.0"},
        {"bsd-2-clause", "BSD-2-Clause"},
        {"bsd-3-clause", "BSD-3-Clause"},
        {"bsd-4-clause", "BSD-4-Clause"},
        {"cc0-1.0", "CC0-1.0"},
        {"expat", "MIT"},
        {"mit", "MIT"},
        {"gfdl-1.2+", "GFDL-1.2-or-later"},
        {"gfdl-1.3+", "GFDL-1.3-or-later"},
        {"gpl-1+", "GPL-1.0-or-later"},
        {"gpl-2", "GPL-2.0-only"},
        {"gpl-2+", "GPL-2.0-or-later"},
        {"gpl-3", "GPL-3.0-only"},
        {"gpl-3+", "GPL-3.0-or-later"},
        {"isc", "ISC"},
        {"lgpl-2", "LGPL-2.0-only"},
        {"lgpl-2+", "LGPL-2.0-or-later"},
        {"lgpl-2.1", "LGPL-2.1-only"},
        {"lgpl-2.1+", "LGPL-2.1-or-later"},
        {"lgpl-3", "LGPL-3.0-only"},
        {"lgpl-3+", "LGPL-3.0-or-later"},
        {"mpl-1.1", "MPL-1.1"},
        {"mpl-2.0", "MPL-2.0"},
        {"openssl", "OpenSSL"},
        {"psf-2", "PSF-2.0"},
        {"python-2.0", "Python-2.0"},
        {"zlib", "Zlib"},
        {"curl", "curl"},
        {"x11", "X11"},
        {"license :: osi approved :: mit license", "MIT"},
        {"license :: osi approved :: bsd license", "BSD-3-Clause"},
        {"license :: osi approved :: apache software license", "Apache-2.0"},
        {"license :: osi approved :: isc license (iscl)", "ISC"},
        {"license :: osi approved :: python software foundation license", "PSF-2.0"},
        {"license :: osi approved :: mozilla public license 2.0 (mpl 2.0)", "MPL-2.0"},
        {"license :: osi approved :: gnu general public license v2 (gplv2)", "GPL-2.0-only"},
        {"license :: osi approved :: gnu general public license v3 (gplv3)", "GPL-3.0-only"},
        {"license :: osi approved :: gnu lesser general public license v3 (lgplv3)",
         "LGPL-3.0-only"},
    };
    return ids;
}

// One name ("GPL-2+", "GPL-2+ or Artistic", "MIT and BSD-3-clause") as SPDX; "" if unknown.
std::string spdxOfOne(const std::string& name)
{
    auto lower = lowercase(std::string(trimmed(name)));
    if (auto it = spdxIds().find(lower); it != spdxIds().end()) return it->second;
    for (auto [word, op] : {std::pair{" or ", " OR "}, std::pair{" and ", " AND "}}) {
        std::vector<std::string> parts;
        size_t start = 0;
        for (size_t at; (at = lower.find(word, start)) != std::string::npos;
             start = at + std::string_view(word).size())
            parts.push_back(lower.substr(start, at - start));
        if (parts.empty()) continue;
        parts.push_back(lower.substr(start));
        std::string expr;
        for (auto& p : parts) {
            auto id = spdxOfOne(p);
            if (id.empty()) return "";
            expr += (expr.empty() ? "" : op) + id;
        }
        return "(" + expr + ")";
    }
    return "";
}

// A name-based UUID (version 5's layout) from content: the same document, the same id.
std::string uuidOf(std::string_view content)
{
    auto h = oci::sha256(content).hex();
    h[12] = '5';
    h[16] = "89ab"[std::stoi(h.substr(16, 1), nullptr, 16) & 3];
    return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
           "-" + h.substr(20, 12);
}

// The Python dist's licence: its expression, else what its classifiers or its License field
// (when a short name) say; as SPDX when known, else as names.
struct Licence {
    std::string expression;
    std::vector<std::string> names;
};

Licence licenceOf(const SbomPython& p)
{
    Licence l;
    if (!p.licenseExpression.empty()) {
        l.expression = p.licenseExpression;
        return l;
    }
    std::vector<std::string> names = p.licenseClassifiers;
    if (names.empty() && !p.license.empty() && p.license.size() <= 80) names.push_back(p.license);
    l.expression = spdxExpression(names);
    if (l.expression.empty()) l.names = names;
    return l;
}

Licence licenceOf(const SbomDeb& d)
{
    Licence l;
    l.expression = spdxExpression(d.licenses);
    if (l.expression.empty()) l.names = d.licenses;
    return l;
}

json cdxLicences(const Licence& l)
{
    json out = json::array();
    if (!l.expression.empty())
        out.push_back({{"expression", l.expression}});
    else
        for (auto& n : l.names)
            out.push_back({{"license", {{"name", n}}}});
    return out;
}

std::string hexOf(const std::string& digest)
{
    auto colon = digest.find(':');
    return colon == std::string::npos ? digest : digest.substr(colon + 1);
}

// bom-refs and SPDX ids of the installed Debian packages, by name (virtual names resolved).
std::vector<std::string> debDependencies(const Sbom& s, const SbomDeb& d,
                                         const std::map<std::string, DebPackage>& byName)
{
    std::set<std::string> out;
    for (auto& dep : d.depends)
        for (auto& p : providersOf(byName, dep))
            if (p != d.name) out.insert(p);
    (void)s;
    return {out.begin(), out.end()};
}

} // namespace

namespace {

constexpr std::string_view wheelsPrefix = "usr/share/python-wheels/";
constexpr std::string_view distPackagesPrefix = "usr/lib/python3/dist-packages/";
constexpr std::string_view dpkgInfoPrefix = "var/lib/dpkg/info/";

// "usr/lib/python3/dist-packages/X.dist-info/METADATA", ".../X.egg-info/PKG-INFO", or the
// ".../X.egg-info" file of an older setuptools.
bool distMetadataPath(std::string_view path)
{
    if (!path.starts_with(distPackagesPrefix)) return false;
    auto rest = path.substr(distPackagesPrefix.size());
    auto slash = rest.find('/');
    if (slash == std::string_view::npos) return rest.ends_with(".egg-info");
    auto dir = rest.substr(0, slash), file = rest.substr(slash + 1);
    return (dir.ends_with(".dist-info") && file == "METADATA") ||
           (dir.ends_with(".egg-info") && file == "PKG-INFO");
}

} // namespace

bool sbomFileWanted(const std::string& path)
{
    if (path == dpkgStatusPath || path == "usr/lib/os-release" || path == "etc/os-release")
        return true;
    if (path.starts_with(wheelsPrefix) && path.ends_with(".whl") &&
        path.find('/', wheelsPrefix.size()) == std::string::npos)
        return true;
    if (distMetadataPath(path)) return true;
    // Which package put each of those there.
    if (path.starts_with(dpkgInfoPrefix) && path.ends_with(".list")) return true;
    if (!path.starts_with(docPrefix) || !path.ends_with("/copyright")) return false;
    auto rest = std::string_view(path).substr(docPrefix.size());
    return rest.find('/') == rest.size() - std::string_view("/copyright").size();
}

std::vector<std::string> debianLicenses(std::string_view copyright)
{
    std::vector<std::string> names;
    std::istringstream in{std::string(copyright)};
    std::string line;
    size_t paragraph = 0; // the header is paragraph 0
    bool inParagraph = false, dep5 = false, inFiles = false;
    while (std::getline(in, line)) {
        if (trimmed(line).empty()) {
            if (inParagraph) paragraph++;
            inParagraph = inFiles = false;
            continue;
        }
        inParagraph = true;
        if (line[0] == ' ' || line[0] == '\t') continue;
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        auto field = lowercase(line.substr(0, colon));
        auto value = std::string(trimmed(line.substr(colon + 1)));
        if (paragraph == 0 && field == "format")
            dep5 = value.find("copyright-format/1.0") != std::string::npos;
        if (!dep5) {
            if (paragraph == 0) continue;
            return {};
        }
        if (field == "files") inFiles = true;
        // A Files paragraph's License (its first line, the short name); stand-alone License
        // paragraphs only give the texts of names already seen.
        if (field == "license" && inFiles && !value.empty() &&
            std::find(names.begin(), names.end(), value) == names.end())
            names.push_back(value);
    }
    return dep5 ? names : std::vector<std::string>{};
}

std::string spdxExpression(const std::vector<std::string>& names)
{
    std::set<std::string> parts;
    for (auto& n : names) {
        auto id = spdxOfOne(n);
        if (id.empty()) return "";
        parts.insert(id);
    }
    std::string expr;
    for (auto& p : parts)
        expr += (expr.empty() ? "" : " AND ") + p;
    if (parts.size() == 1 && expr.front() == '(') expr = expr.substr(1, expr.size() - 2);
    return expr;
}

std::string debPurl(const DebPackage& p, const std::string& distro)
{
    std::string purl = "pkg:deb/debian/" + purlEncode(p.name) + "@" + purlEncode(p.version);
    std::string q;
    if (!p.architecture.empty()) q += "arch=" + purlEncode(p.architecture);
    if (!distro.empty()) q += (q.empty() ? "" : "&") + std::string("distro=") + purlEncode(distro);
    return q.empty() ? purl : purl + "?" + q;
}

std::string pypiPurl(const std::string& name, const std::string& version)
{
    // The purl spec's pypi names: lowercased, '_' as '-'.
    auto n = normalisePythonName(name);
    return "pkg:pypi/" + purlEncode(n) + "@" + purlEncode(version);
}

RootPackages rootPackages(const std::map<std::string, oci::LayerFile>& files)
{
    RootPackages r;
    for (auto path : {"etc/os-release", "usr/lib/os-release"})
        if (auto f = files.find(path); f != files.end() && !f->second.symlink && r.distro.empty())
            r.distro = distroOf(f->second.data);
    if (auto st = files.find(std::string(dpkgStatusPath)); st != files.end() && !st->second.symlink)
        for (auto& [name, p] : parseDpkgStatus(st->second.data)) {
            SbomDeb d;
            static_cast<DebPackage&>(d) = p;
            auto copyright = files.find(std::string(docPrefix) + name + "/copyright");
            if (copyright != files.end() && !copyright->second.symlink)
                d.licenses = debianLicenses(copyright->second.data);
            r.debs.push_back(std::move(d));
        }
    // The owners of the Python distributions' files, from dpkg's file lists.
    std::map<std::string, std::string> owner; // "/usr/share/python-wheels/x.whl" → package
    for (auto& [path, f] : files) {
        if (!path.starts_with(dpkgInfoPrefix) || !path.ends_with(".list") || f.symlink) continue;
        auto package = path.substr(dpkgInfoPrefix.size(), path.size() - dpkgInfoPrefix.size() - 5);
        package = package.substr(0, package.find(':')); // "libc6:amd64" → "libc6"
        std::istringstream in(f.data);
        for (std::string line; std::getline(in, line);)
            if (line.starts_with("/usr/share/python-wheels/") ||
                line.starts_with("/usr/lib/python3/dist-packages/"))
                owner[line] = package;
    }
    auto ownerOf = [&](const std::string& path) {
        // A dist-info's METADATA is listed, and so is its folder (an egg-info's too).
        // (append, not "/" + x: GCC 12 at -O3 reports a false -Wrestrict there)
        for (auto p : {std::string("/").append(path),
                       std::string("/").append(path.substr(0, path.rfind('/')))})
            if (auto o = owner.find(p); o != owner.end()) return o->second;
        return std::string();
    };
    for (auto& [path, f] : files) {
        if (f.symlink) continue;
        PythonInDeb p;
        if (path.starts_with(wheelsPrefix) && path.ends_with(".whl")) {
            auto n = parseWheelName(path.substr(wheelsPrefix.size()));
            if (!n) continue;
            p.name = n->name;
            p.version = n->version;
            p.digest = oci::sha256(f.data).str();
        } else if (distMetadataPath(path)) {
            try {
                auto m = parseMetadata(f.data);
                p.name = m.name;
                p.version = m.version;
            } catch (Error&) {
                continue; // not metadata a Python tool would read either
            }
        } else {
            continue;
        }
        p.path = "/" + path;
        p.debianPackage = ownerOf(path);
        r.python.push_back(std::move(p));
    }
    return r;
}

json toJson(const RootPackages& r)
{
    json debs = json::array();
    for (auto& d : r.debs)
        debs.push_back({{"name", d.name},
                        {"version", d.version},
                        {"architecture", d.architecture},
                        {"source", d.source},
                        {"sourceVersion", d.sourceVersion},
                        {"depends", d.depends},
                        {"provides", d.provides},
                        {"licenses", d.licenses}});
    json python = json::array();
    for (auto& p : r.python)
        python.push_back({{"name", p.name},
                          {"version", p.version},
                          {"path", p.path},
                          {"digest", p.digest},
                          {"debianPackage", p.debianPackage}});
    return {{"distro", r.distro}, {"debs", debs}, {"python", python}};
}

RootPackages rootPackagesFromJson(const json& j)
{
    RootPackages r;
    r.distro = j.at("distro").get<std::string>();
    for (auto& d : j.at("debs")) {
        SbomDeb p;
        p.name = d.at("name").get<std::string>();
        p.version = d.at("version").get<std::string>();
        p.architecture = d.at("architecture").get<std::string>();
        p.source = d.at("source").get<std::string>();
        p.sourceVersion = d.at("sourceVersion").get<std::string>();
        p.depends = d.at("depends").get<std::vector<std::string>>();
        p.provides = d.at("provides").get<std::vector<std::string>>();
        p.licenses = d.at("licenses").get<std::vector<std::string>>();
        r.debs.push_back(std::move(p));
    }
    // (Lists of roots made before grocker recorded them have none: those roots have other
    // digests since, as their labels changed.)
    for (auto& d : j.value("python", json::array()))
        r.python.push_back({d.at("name").get<std::string>(), d.at("version").get<std::string>(),
                            d.at("path").get<std::string>(), d.at("digest").get<std::string>(),
                            d.at("debianPackage").get<std::string>()});
    return r;
}

Sbom makeSbom(const RootPackages& root, const std::vector<CompiledWheel>& wheels,
              const std::string& image, int64_t epoch)
{
    Sbom s;
    s.image = image;
    s.epoch = epoch;
    s.distro = root.distro;
    s.debs = root.debs;
    std::set<std::string> installed;
    for (auto& w : wheels)
        installed.insert(normalisePythonName(w.name));
    for (auto& w : wheels) {
        SbomPython p;
        p.name = w.name;
        p.version = w.version;
        p.wheelFile = w.file;
        p.wheelDigest = w.digest.str();
        p.sourceFile = w.sourceFile;
        p.sourceDigest = w.sourceDigest;
        p.fromProject = w.fromProject;
        p.app = w.requested;
        auto m = readWheelMetadata(w.path, w.file);
        std::set<std::string> req;
        for (auto& r : m.requiresDist) {
            auto end = r.find_first_of(" ;[(<>=!~");
            auto n = normalisePythonName(r.substr(0, end));
            if (installed.count(n) && n != normalisePythonName(w.name)) req.insert(n);
        }
        p.dependsOn.assign(req.begin(), req.end());
        p.licenseExpression = m.licenseExpression;
        p.license = m.license;
        p.licenseClassifiers = m.licenseClassifiers;
        if (p.app) {
            s.appName = w.name;
            s.appVersion = w.version;
        }
        s.python.push_back(std::move(p));
    }
    for (auto& d : root.python) {
        SbomPython p;
        p.name = d.name;
        p.version = d.version;
        p.wheelDigest = d.digest;
        if (d.path.ends_with(".whl")) p.wheelFile = d.path.substr(d.path.rfind('/') + 1);
        p.path = d.path;
        p.debianPackage = d.debianPackage;
        s.python.push_back(std::move(p));
    }
    // By name, then grocker's before a Debian package's (the venv's is what the app imports).
    std::sort(s.python.begin(), s.python.end(), [](auto& a, auto& b) {
        return std::tuple(normalisePythonName(a.name), !a.path.empty(), a.path) <
               std::tuple(normalisePythonName(b.name), !b.path.empty(), b.path);
    });
    return s;
}

std::string cycloneDxJson(const Sbom& s)
{
    std::map<std::string, DebPackage> byName;
    for (auto& d : s.debs)
        byName[d.name] = d;
    json components = json::array(), dependencies = json::array();
    std::map<std::string, std::string> pyRef; // normalised name → bom-ref, of the venv's
    for (auto& p : s.python)
        if (p.path.empty()) pyRef[normalisePythonName(p.name)] = pypiPurl(p.name, p.version);
    json app;
    for (auto& p : s.python) {
        // A Debian package's distribution is told apart by where it is (the venv may hold
        // the same name and version).
        auto ref = pypiPurl(p.name, p.version) + (p.path.empty() ? "" : "#" + p.path);
        json c = {{"type", p.app ? "application" : "library"},
                  {"bom-ref", ref},
                  {"name", p.name},
                  {"version", p.version},
                  {"purl", pypiPurl(p.name, p.version)}};
        if (!p.wheelDigest.empty())
            c["hashes"] = {{{"alg", "SHA-256"}, {"content", hexOf(p.wheelDigest)}}};
        if (!p.path.empty()) {
            c["properties"] = {{{"name", "grocker:path"}, {"value", p.path}},
                               {{"name", "grocker:debian-package"}, {"value", p.debianPackage}}};
            components.push_back(c);
            dependencies.push_back({{"ref", ref}, {"dependsOn", json::array()}});
            continue;
        }
        auto l = cdxLicences(licenceOf(p));
        if (!l.empty()) c["licenses"] = l;
        json props = {{{"name", "grocker:wheel"}, {"value", p.wheelFile}}};
        if (!p.sourceFile.empty())
            props.push_back({{"name", p.fromProject ? "grocker:built-from-project"
                                                    : "grocker:built-from-sdist"},
                             {"value", p.sourceFile + " " + p.sourceDigest}});
        c["properties"] = props;
        json deps = json::array();
        for (auto& r : p.dependsOn)
            deps.push_back(pyRef[r]);
        if (p.app) {
            // The app is the BOM's subject, and depends on the image's Debian packages too.
            for (auto& d : s.debs)
                deps.push_back(debPurl(d, s.distro));
            app = c;
        } else {
            components.push_back(c);
        }
        dependencies.push_back({{"ref", pypiPurl(p.name, p.version)}, {"dependsOn", deps}});
    }
    for (auto& d : s.debs) {
        json c = {{"type", "library"},
                  {"bom-ref", debPurl(d, s.distro)},
                  {"name", d.name},
                  {"version", d.version},
                  {"purl", debPurl(d, s.distro)}};
        auto l = cdxLicences(licenceOf(d));
        if (!l.empty()) c["licenses"] = l;
        c["properties"] = {
            {{"name", "grocker:source-package"}, {"value", d.source + " " + d.sourceVersion}}};
        components.push_back(c);
        json deps = json::array();
        for (auto& n : debDependencies(s, d, byName))
            deps.push_back(debPurl(byName[n], s.distro));
        dependencies.push_back({{"ref", debPurl(d, s.distro)}, {"dependsOn", deps}});
    }
    json bom = {
        {"bomFormat", "CycloneDX"},
        {"specVersion", "1.5"},
        {"version", 1},
        {"metadata",
         {{"timestamp", oci::rfc3339(s.epoch)},
          {"tools",
           {{"components",
             {{{"type", "application"}, {"name", "grocker"}, {"version", GROCKER_VERSION}}}}}},
          {"properties", {{{"name", "grocker:image"}, {"value", s.image}}}}}},
        {"components", components},
        {"dependencies", dependencies}};
    if (!app.is_null()) bom["metadata"]["component"] = app;
    bom["serialNumber"] = "urn:uuid:" + uuidOf(bom.dump());
    return bom.dump() + "\n";
}

std::string spdxJson(const Sbom& s)
{
    std::map<std::string, DebPackage> byName;
    for (auto& d : s.debs)
        byName[d.name] = d;
    // SPDX ids: letters, digits, '.' and '-' only; numbered so that two names made alike
    // ("libstdc++6", "libstdc--6") stay apart.
    auto idOf = [](const std::string& kind, size_t n, const std::string& name) {
        std::string id = "SPDXRef-" + kind + "-" + std::to_string(n) + "-";
        for (char c : name)
            id += std::isalnum(static_cast<unsigned char>(c)) || c == '.' ? c : '-';
        return id;
    };
    json packages = json::array(), relationships = json::array();
    std::map<std::string, std::string> debId, pyId; // pyId: the venv's, by normalised name
    for (size_t i = 0; i < s.debs.size(); i++)
        debId[s.debs[i].name] = idOf("deb", i, s.debs[i].name);
    for (size_t i = 0; i < s.python.size(); i++)
        if (s.python[i].path.empty())
            pyId[normalisePythonName(s.python[i].name)] = idOf("pypi", i, s.python[i].name);
    auto purlRef = [](const std::string& purl) {
        return json::array({{{"referenceCategory", "PACKAGE-MANAGER"},
                             {"referenceType", "purl"},
                             {"referenceLocator", purl}}});
    };
    std::string appId;
    for (size_t i = 0; i < s.python.size(); i++) {
        auto& p = s.python[i];
        if (!p.path.empty()) {
            // In a Debian package: CONTAINS from it.
            auto id = idOf("pypi", i, p.name);
            json pkg = {
                {"SPDXID", id},
                {"name", p.name},
                {"versionInfo", p.version},
                {"downloadLocation", "NOASSERTION"},
                {"filesAnalyzed", false},
                {"licenseConcluded", "NOASSERTION"},
                {"licenseDeclared", "NOASSERTION"},
                {"copyrightText", "NOASSERTION"},
                {"sourceInfo", "in the image at " + p.path + ", from the Debian package " +
                                   (p.debianPackage.empty() ? "(unknown)" : p.debianPackage)},
                {"externalRefs", purlRef(pypiPurl(p.name, p.version))},
                {"primaryPackagePurpose", "LIBRARY"}};
            if (!p.wheelDigest.empty()) {
                pkg["packageFileName"] = p.wheelFile;
                pkg["checksums"] = {
                    {{"algorithm", "SHA256"}, {"checksumValue", hexOf(p.wheelDigest)}}};
            }
            packages.push_back(pkg);
            if (debId.count(p.debianPackage))
                relationships.push_back({{"spdxElementId", debId[p.debianPackage]},
                                         {"relationshipType", "CONTAINS"},
                                         {"relatedSpdxElement", id}});
            continue;
        }
        auto id = pyId[normalisePythonName(p.name)];
        auto l = licenceOf(p);
        json pkg = {
            {"SPDXID", id},
            {"name", p.name},
            {"versionInfo", p.version},
            {"packageFileName", p.wheelFile},
            {"downloadLocation", "NOASSERTION"},
            {"filesAnalyzed", false},
            {"licenseConcluded", "NOASSERTION"},
            {"licenseDeclared", l.expression.empty() ? "NOASSERTION" : l.expression},
            {"copyrightText", "NOASSERTION"},
            {"checksums", {{{"algorithm", "SHA256"}, {"checksumValue", hexOf(p.wheelDigest)}}}},
            {"externalRefs", purlRef(pypiPurl(p.name, p.version))},
            {"primaryPackagePurpose", p.app ? "APPLICATION" : "LIBRARY"}};
        if (!p.sourceFile.empty())
            pkg["sourceInfo"] = std::string(p.fromProject ? "built from the project folder "
                                                          : "built from the sdist ") +
                                p.sourceFile + " (" + p.sourceDigest + ")";
        packages.push_back(pkg);
        if (p.app) appId = id;
        for (auto& r : p.dependsOn)
            relationships.push_back({{"spdxElementId", id},
                                     {"relationshipType", "DEPENDS_ON"},
                                     {"relatedSpdxElement", pyId[r]}});
    }
    for (auto& d : s.debs) {
        auto l = licenceOf(d);
        packages.push_back(
            {{"SPDXID", debId[d.name]},
             {"name", d.name},
             {"versionInfo", d.version},
             {"downloadLocation", "NOASSERTION"},
             {"filesAnalyzed", false},
             {"licenseConcluded", "NOASSERTION"},
             {"licenseDeclared", l.expression.empty() ? "NOASSERTION" : l.expression},
             {"copyrightText", "NOASSERTION"},
             {"sourceInfo",
              "built from the Debian source package " + d.source + " " + d.sourceVersion},
             {"externalRefs", purlRef(debPurl(d, s.distro))},
             {"primaryPackagePurpose", "LIBRARY"}});
        for (auto& n : debDependencies(s, d, byName))
            relationships.push_back({{"spdxElementId", debId[d.name]},
                                     {"relationshipType", "DEPENDS_ON"},
                                     {"relatedSpdxElement", debId[n]}});
        if (!appId.empty())
            relationships.push_back({{"spdxElementId", appId},
                                     {"relationshipType", "DEPENDS_ON"},
                                     {"relatedSpdxElement", debId[d.name]}});
    }
    if (!appId.empty())
        relationships.insert(relationships.begin(),
                             json::object({{"spdxElementId", "SPDXRef-DOCUMENT"},
                                           {"relationshipType", "DESCRIBES"},
                                           {"relatedSpdxElement", appId}}));
    std::string name = s.appName.empty() ? s.image : s.appName + "-" + s.appVersion;
    json doc = {{"spdxVersion", "SPDX-2.3"},
                {"dataLicense", "CC0-1.0"},
                {"SPDXID", "SPDXRef-DOCUMENT"},
                {"name", name},
                {"creationInfo",
                 {{"created", oci::rfc3339(s.epoch)},
                  {"creators", {std::string("Tool: grocker-") + GROCKER_VERSION}}}},
                {"packages", packages},
                {"relationships", relationships}};
    if (!appId.empty()) doc["documentDescribes"] = {appId};
    // Unique per content, and resolvable nowhere (.invalid), as a namespace need only be.
    doc["documentNamespace"] =
        "https://grocker.invalid/spdx/" + purlEncode(name) + "-" + oci::sha256(doc.dump()).hex();
    return doc.dump() + "\n";
}

} // namespace grocker::build
