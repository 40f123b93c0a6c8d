// What the compile pass is asked: RELEASE, a project folder's digest, the index settings, and
// URLs with their secrets hidden for messages.

#include "compile.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/registry/http.hh"
#include "python-dists.hh"

#include <algorithm>
#include <sys/stat.h>

namespace grocker::build {

namespace fs = std::filesystem;
using namespace grocker::oci;

// --- the release ------------------------------------------------------------------------------

namespace {

bool nameChars(std::string_view s, std::string_view extra)
{
    if (s.empty() || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
    for (char c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && extra.find(c) == std::string_view::npos)
            return false;
    return true;
}

// Splits "X[extras]" into X and extras; false when the brackets are malformed.
bool splitExtras(std::string_view text, std::string& base, std::string& extras)
{
    base = std::string(text);
    extras.clear();
    if (!text.ends_with("]")) return text.find('[') == std::string_view::npos;
    auto open = text.find('[');
    if (open == std::string_view::npos) return false;
    base = std::string(text.substr(0, open));
    extras = std::string(text.substr(open + 1, text.size() - open - 2));
    if (extras.empty()) return true;
    for (size_t start = 0;;) {
        auto comma = extras.find(',', start);
        if (!validDistName(std::string_view(extras).substr(start, comma - start))) return false;
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return true;
}

} // namespace

Release parseRelease(const std::string& text)
{
    Release r;
    r.text = text;
    auto refuse = [&] {
        return UsageError("RELEASE '", text,
                          "' is not NAME[EXTRAS]==VERSION, a .whl file or a project folder");
    };
    if (auto eq = text.find("=="); eq != std::string::npos) {
        std::string base, extras;
        std::string_view version = std::string_view(text).substr(eq + 2);
        if (splitExtras(std::string_view(text).substr(0, eq), base, extras) &&
            validDistName(base) && nameChars(version, "._+!-") && canonicalVersion(version)) {
            r.name = base;
            r.extras = extras;
            r.version = std::string(version);
            return r;
        }
        throw refuse();
    }
    std::string base, extras;
    bool bracketed = splitExtras(text, base, extras);
    if (bracketed && base.ends_with(".whl")) {
        r.kind = Release::Kind::Wheel;
        r.path = fs::absolute(base);
        r.extras = extras;
        if (!fs::is_regular_file(r.path))
            throw UsageError("RELEASE '", text, "': no wheel file '", r.path.string(), "'");
        if (!parseWheelName(r.path.filename().string()))
            throw UsageError("RELEASE '", text, "': '", r.path.filename().string(),
                             "' is not a wheel file name (NAME-VERSION-PYTHON-ABI-PLATFORM.whl)");
        return r;
    }
    // A project folder, or path/to/project[EXTRAS].
    bool whole = fs::is_directory(text);
    if (whole || (bracketed && !extras.empty() && fs::is_directory(base))) {
        r.kind = Release::Kind::Project;
        r.path = fs::canonical(whole ? text : base);
        r.extras = whole ? "" : extras;
        if (!fs::exists(r.path / "pyproject.toml") && !fs::exists(r.path / "setup.py"))
            throw UsageError("RELEASE '", text, "': the folder has no pyproject.toml or setup.py");
        r.treeDigest = treeDigest(r.path);
        return r;
    }
    throw refuse();
}

std::string treeDigest(const fs::path& dir)
{
    std::vector<std::string> lines;
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
         ++it) {
        auto name = it->path().filename().string();
        if (it->is_directory() && !it->is_symlink() &&
            (name == ".git" || name == "build" || name == "dist" || name == "__pycache__" ||
             name.ends_with(".egg-info") || name == ".tox" || name == ".venv")) {
            it.disable_recursion_pending();
            continue;
        }
        auto rel = fs::relative(it->path(), dir).string();
        struct stat st;
        if (::lstat(it->path().c_str(), &st) < 0)
            throw SysError("unable to read '", it->path().string(), "'");
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
            throw UsageError("the project folder '", dir.string(), "' holds '", rel, "', which is ",
                             S_ISFIFO(st.st_mode)   ? "a FIFO"
                             : S_ISSOCK(st.st_mode) ? "a socket"
                                                    : "a device",
                             ", not a file, folder or symlink: remove it from the project");
        std::string line = rel + " " + std::to_string(st.st_mode);
        // append, not " " + x: GCC 12 at -O3 reports a false -Wrestrict on operator+ here.
        if (S_ISREG(st.st_mode)) line.append(" ").append(sha256(readFile(it->path())).str());
        if (S_ISLNK(st.st_mode)) line.append(" ").append(fs::read_symlink(it->path()).string());
        lines.push_back(line);
    }
    std::sort(lines.begin(), lines.end());
    std::string all;
    for (auto& l : lines)
        all += l + "\n";
    return sha256(all).str();
}

std::string withoutPassword(const std::string& url)
{
    return registry::withoutPassword(url);
}

IndexSettings IndexSettings::from(const std::string& pipConf, const std::string& indexUrl,
                                  const fs::path& findLinks)
{
    // pip reads [global], then the command's section ([wheel] or [install], [download] for the
    // resolution): later ones win per key.
    std::map<std::string, std::string> keys;
    std::string section, lastKey;
    std::istringstream in(pipConf);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        auto first = line.find_first_not_of(" \t");
        if (first == std::string::npos || line[first] == '#' || line[first] == ';') continue;
        if (line[first] == '[') {
            section = line.substr(first + 1, line.find(']') - first - 1);
            lastKey.clear();
            continue;
        }
        bool ours = section == "global" || section == "install" || section == "wheel" ||
                    section == "download";
        if (first > 0 && !lastKey.empty()) { // a continuation line of a multi-line value
            if (ours) keys[lastKey].append(" ").append(line.substr(first));
            continue;
        }
        auto sep = line.find_first_of("=:");
        if (sep == std::string::npos) continue;
        std::string k = line.substr(first, sep - first), v = line.substr(sep + 1);
        while (!k.empty() && (k.back() == ' ' || k.back() == '\t'))
            k.pop_back();
        std::replace(k.begin(), k.end(), '_', '-');
        lastKey = ours ? k : "";
        if (ours) keys[k] = v;
    }
    auto words = [](const std::string& s) {
        std::vector<std::string> out;
        std::istringstream w(s);
        for (std::string x; w >> x;)
            out.push_back(x);
        return out;
    };
    auto truthy = [&](const std::string& k) {
        auto v = words(keys.count(k) ? keys[k] : "");
        return !v.empty() && (v[0] == "1" || v[0] == "true" || v[0] == "yes" || v[0] == "on");
    };
    IndexSettings s;
    s.findLinks = findLinks;
    for (auto& l : words(keys["find-links"]))
        if (l.starts_with("http://") || l.starts_with("https://")) s.linkPages.push_back(l);
    if (truthy("no-index")) return s;
    auto main = words(keys["index-url"]);
    if (!indexUrl.empty())
        s.indexUrls.push_back(indexUrl);
    else if (!main.empty())
        s.indexUrls.push_back(main[0]);
    else
        s.indexUrls.push_back("https://pypi.org/simple/");
    for (auto& u : words(keys["extra-index-url"]))
        s.indexUrls.push_back(u);
    return s;
}

} // namespace grocker::build
