#include "python-dists.hh"

#include "grocker/error.hh"

#include <archive.h>
#include <archive_entry.h>
#include <memory>

namespace grocker::build {

namespace fs = std::filesystem;

namespace {

bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// "007" → "7", "0" → "0".
std::string number(const std::string& digits)
{
    auto i = digits.find_first_not_of('0');
    return i == std::string::npos ? "0" : digits.substr(i);
}

// A cursor over a version string for the PEP 440 scanner below.
struct Scan {
    std::string_view s;
    size_t i = 0;
    bool at(std::string_view w) const { return s.substr(i, w.size()) == w; }
    bool take(std::string_view w)
    {
        if (!at(w)) return false;
        i += w.size();
        return true;
    }
    bool sep()
    {
        return i < s.size() && (s[i] == '-' || s[i] == '_' || s[i] == '.') && (++i, true);
    }
    std::optional<std::string> digits()
    {
        size_t from = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == from) return std::nullopt;
        return number(std::string(s.substr(from, i - from)));
    }
    // One of words, the first that matches (longest first where one is a prefix of another).
    std::optional<std::string_view> word(std::initializer_list<std::string_view> words)
    {
        for (auto w : words)
            if (take(w)) return w;
        return std::nullopt;
    }
};

// PEP 440, appendix B (the grammar packaging's Version accepts), case-insensitive; scanned by
// hand: std::regex recurses per character, slow and deep on a hostile string.
std::optional<std::string> versionForm(std::string_view text, bool stripZeros)
{
    // Spaces and tabs around it are packaging's to strip; a line break is no part of a version
    // (a file name, a cache key).
    if (text.size() > 256 || text.find_first_of("\r\n") != std::string_view::npos)
        return std::nullopt;
    std::string lowered = lowercase(trimmed(text));
    Scan in{lowered};
    in.take("v");
    std::string out;
    auto first = in.digits();
    if (!first) return std::nullopt;
    if (in.take("!")) {
        if (*first != "0") out += *first + "!";
        first = in.digits();
        if (!first) return std::nullopt;
    }
    std::vector<std::string> release{*first};
    while (in.i + 1 < in.s.size() && in.s[in.i] == '.' && in.s[in.i + 1] >= '0' &&
           in.s[in.i + 1] <= '9') {
        in.i++;
        release.push_back(*in.digits());
    }
    if (stripZeros)
        while (release.size() > 1 && release.back() == "0")
            release.pop_back();
    for (size_t i = 0; i < release.size(); i++)
        out += (i ? "." : "") + release[i];
    // Each optional part: if it does not match from here, the cursor goes back.
    auto part = [&](auto body) {
        size_t from = in.i;
        if (!body()) in.i = from;
    };
    part([&] {
        in.sep();
        auto l = in.word({"alpha", "a", "beta", "b", "preview", "pre", "c", "rc"});
        if (!l) return false;
        std::string_view label = *l == "alpha"                                   ? "a"
                                 : *l == "beta"                                  ? "b"
                                 : (*l == "c" || *l == "pre" || *l == "preview") ? "rc"
                                                                                 : *l;
        in.sep();
        auto n = in.digits();
        out += std::string(label) + n.value_or("0");
        return true;
    });
    part([&] {
        size_t from = in.i;
        if (in.take("-"))
            if (auto n = in.digits()) { // the implicit post-release, "1.0-1"
                out += ".post" + *n;
                return true;
            }
        in.i = from;
        in.sep();
        if (!in.word({"post", "rev", "r"})) return false;
        in.sep();
        auto n = in.digits();
        out += ".post" + n.value_or("0");
        return true;
    });
    part([&] {
        in.sep();
        if (!in.take("dev")) return false;
        in.sep();
        auto n = in.digits();
        out += ".dev" + n.value_or("0");
        return true;
    });
    if (in.take("+")) {
        std::string joined, piece;
        for (;;) {
            size_t from = in.i;
            while (in.i < in.s.size() && alnum(in.s[in.i]))
                in.i++;
            if (in.i == from) return std::nullopt;
            piece = std::string(in.s.substr(from, in.i - from));
            bool numeric = piece.find_first_not_of("0123456789") == std::string::npos;
            if (!joined.empty()) joined += '.';
            joined += numeric ? number(piece) : piece;
            if (in.i == in.s.size()) break;
            if (!in.sep()) return std::nullopt;
        }
        out += "+" + joined;
    }
    if (in.i != in.s.size()) return std::nullopt;
    // Its canonical form within the bound too ("1rc" is "1rc0"): a canonical version is one.
    if (out.size() > 256) return std::nullopt;
    return out;
}

bool tagWord(std::string_view s)
{
    if (s.empty()) return false;
    for (char c : s)
        if (!alnum(c) && c != '_' && c != '.') return false;
    return true;
}

} // namespace

bool validDistName(std::string_view name)
{
    if (name.empty() || name.size() > 200 || !alnum(name.front()) || !alnum(name.back()))
        return false;
    for (char c : name)
        if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
    return true;
}

std::optional<std::string> canonicalVersion(std::string_view version)
{
    return versionForm(version, false);
}

bool sameVersion(std::string_view a, std::string_view b)
{
    auto x = versionForm(a, true), y = versionForm(b, true);
    return x && y && *x == *y;
}

std::optional<WheelName> parseWheelName(std::string_view file)
{
    if (!file.ends_with(".whl") || !plainFileName(file)) return std::nullopt;
    std::string_view stem = file.substr(0, file.size() - 4);
    std::vector<std::string> parts;
    for (size_t start = 0;;) {
        auto dash = stem.find('-', start);
        parts.emplace_back(stem.substr(start, dash - start));
        if (dash == std::string_view::npos) break;
        start = dash + 1;
    }
    if (parts.size() != 5 && parts.size() != 6) return std::nullopt;
    WheelName w;
    w.name = parts[0];
    w.version = parts[1];
    if (parts.size() == 6) {
        w.build = parts[2];
        if (w.build.empty() || w.build[0] < '0' || w.build[0] > '9' || !tagWord(w.build))
            return std::nullopt;
    }
    w.python = parts[parts.size() - 3];
    w.abi = parts[parts.size() - 2];
    w.platform = parts[parts.size() - 1];
    if (!validDistName(w.name) || !canonicalVersion(w.version) || !tagWord(w.python) ||
        !tagWord(w.abi) || !tagWord(w.platform))
        return std::nullopt;
    return w;
}

namespace {

std::pair<int, int> majorMinor(std::string_view text, std::string_view what)
{
    auto dot = text.find('.');
    auto number = [&](std::string_view digits) {
        if (digits.empty() || digits.size() > 3 ||
            digits.find_first_not_of("0123456789") != std::string_view::npos)
            throw Error("'", text, "' is not a ", what, " version (MAJOR.MINOR)");
        return std::stoi(std::string(digits));
    };
    if (dot == std::string_view::npos) number({});
    return {number(text.substr(0, dot)), number(text.substr(dot + 1))};
}

// Each of the '.'-separated parts of a compressed tag part ("py2.py3").
std::vector<std::string_view> tagParts(std::string_view text)
{
    std::vector<std::string_view> parts;
    for (size_t start = 0;;) {
        auto dot = text.find('.', start);
        parts.push_back(text.substr(start, dot - start));
        if (dot == std::string_view::npos) return parts;
        start = dot + 1;
    }
}

} // namespace

bool namesMachine(std::string_view text)
{
    return text.find("platform_machine") != std::string_view::npos ||
           text.find("platform.machine") != std::string_view::npos;
}

void WheelTags::add(const std::string& tag)
{
    order_.emplace(tag, order_.size());
}

WheelTags::WheelTags(std::string_view python, std::string_view glibc, std::string_view arch)
{
    auto [major, minor] = majorMinor(python, "Python");
    auto [libcMajor, libcMinor] = majorMinor(glibc, "glibc");
    if (arch.empty() ||
        arch.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string_view::npos)
        throw Error("'", arch, "' is not a machine name");
    std::string a(arch);
    // packaging's _manylinux.platform_tags for glibc 2.x, then the plain linux_ARCH.
    std::vector<std::string> platforms;
    int oldest = (a == "x86_64" || a == "i686") ? 5 : 17;
    if (libcMajor == 2)
        for (int m = libcMinor; m >= oldest; m--) {
            platforms.push_back("manylinux_2_" + std::to_string(m) + "_" + a);
            if (m == 17) platforms.push_back("manylinux2014_" + a);
            if (m == 12) platforms.push_back("manylinux2010_" + a);
            if (m == 5) platforms.push_back("manylinux1_" + a);
        }
    platforms.push_back("linux_" + a);
    auto cp = [](int x, int y) { return "cp" + std::to_string(x) + std::to_string(y); };
    auto interpreter = cp(major, minor);
    // cpython_tags: its own ABI, abi3 (from 3.2), none; then abi3 of every older 3.x.
    bool abi3 = major == 3 && minor >= 2;
    for (auto& p : platforms)
        add(interpreter + "-" + interpreter + "-" + p);
    if (abi3)
        for (auto& p : platforms)
            add(interpreter + "-abi3-" + p);
    for (auto& p : platforms)
        add(interpreter + "-none-" + p);
    if (abi3)
        for (int m = minor - 1; m >= 2; m--)
            for (auto& p : platforms)
                add(cp(major, m) + "-abi3-" + p);
    // compatible_tags: pyXY, pyX, then pyX(Y-1) ... pyX0, on each platform and then on "any".
    std::vector<std::string> pys{"py" + std::to_string(major) + std::to_string(minor),
                                 "py" + std::to_string(major)};
    for (int m = minor - 1; m >= 0; m--)
        pys.push_back("py" + std::to_string(major) + std::to_string(m));
    for (auto& py : pys)
        for (auto& p : platforms)
            add(py + "-none-" + p);
    add(interpreter + "-none-any");
    for (auto& py : pys)
        add(py + "-none-any");
}

std::optional<size_t> WheelTags::rank(const WheelName& wheel) const
{
    std::optional<size_t> best;
    for (auto py : tagParts(wheel.python))
        for (auto abi : tagParts(wheel.abi))
            for (auto platform : tagParts(wheel.platform)) {
                auto it = order_.find(concat(py, "-", abi, "-", platform));
                if (it != order_.end() && (!best || it->second < *best)) best = it->second;
            }
    return best;
}

std::optional<std::string> sdistVersion(std::string_view file, std::string_view name)
{
    if (!plainFileName(file)) return std::nullopt;
    std::string_view stem;
    for (std::string_view ext : {".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip"})
        if (file.ends_with(ext)) stem = file.substr(0, file.size() - ext.size());
    if (stem.empty()) return std::nullopt;
    auto want = normalisePythonName(name);
    for (size_t dash = stem.find('-'); dash != std::string_view::npos;
         dash = stem.find('-', dash + 1)) {
        if (normalisePythonName(stem.substr(0, dash)) != want) continue;
        auto version = stem.substr(dash + 1);
        if (canonicalVersion(version)) return std::string(version);
    }
    return std::nullopt;
}

DistMetadata parseMetadata(std::string_view text)
{
    DistMetadata m;
    std::vector<std::pair<std::string, std::string>> headers;
    size_t lineNo = 0;
    for (size_t start = 0; start < text.size();) {
        auto end = text.find('\n', start);
        std::string_view line = text.substr(
            start, end == std::string_view::npos ? std::string_view::npos : end - start);
        start = end == std::string_view::npos ? text.size() : end + 1;
        lineNo++;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) break; // the body (a description) follows
        for (char c : line)
            if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
                throw Error("METADATA line ", lineNo, " holds a control character");
        if (line[0] == ' ' || line[0] == '\t') {
            if (headers.empty()) throw Error("METADATA line ", lineNo, " continues no header");
            headers.back().second += ' ';
            headers.back().second += trimmed(line);
            continue;
        }
        auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0)
            throw Error("METADATA line ", lineNo, " is not 'Key: value'");
        headers.emplace_back(lowercase(line.substr(0, colon)), trimmed(line.substr(colon + 1)));
    }
    for (auto& [k, v] : headers) {
        if (k == "name")
            m.name = v;
        else if (k == "version")
            m.version = v;
        else if (k == "requires-python")
            m.requiresPython = v;
        else if (k == "requires-dist")
            m.requiresDist.push_back(v);
        else if (k == "license-expression")
            m.licenseExpression = v;
        else if (k == "license")
            m.license = v;
        else if (k == "classifier" && v.starts_with("License :: "))
            m.licenseClassifiers.push_back(v);
    }
    if (!validDistName(m.name))
        throw Error("METADATA's Name '", m.name.substr(0, 80),
                    "' is not a valid distribution name (PEP 508)");
    if (!canonicalVersion(m.version))
        throw Error("METADATA's Version '", m.version.substr(0, 80),
                    "' is not a valid version (PEP 440)");
    return m;
}

DistMetadata readWheelMetadata(const fs::path& wheel, std::string_view fileName)
{
    auto file = fileName.empty() ? wheel.filename().string() : std::string(fileName);
    auto parsed = parseWheelName(file);
    if (!parsed)
        throw Error("'", file, "' is not a wheel file name (name-version-python-abi-platform.whl)");
    std::unique_ptr<struct archive, decltype(&archive_read_free)> a(archive_read_new(),
                                                                    archive_read_free);
    archive_read_support_format_zip(a.get());
    if (archive_read_open_filename(a.get(), wheel.c_str(), 1 << 16) != ARCHIVE_OK)
        throw Error("unable to read the wheel '", wheel.string(),
                    "': ", archive_error_string(a.get()));
    std::optional<std::string> metadata;
    struct archive_entry* e;
    int r;
    while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
        const char* p = archive_entry_pathname(e);
        std::string_view path = p ? p : "";
        auto slash = path.find('/');
        if (slash == std::string_view::npos || path.find('/', slash + 1) != std::string_view::npos)
            continue;
        if (!path.substr(0, slash).ends_with(".dist-info") || path.substr(slash + 1) != "METADATA")
            continue;
        if (metadata) throw Error("the wheel '", file, "' has more than one .dist-info/METADATA");
        if (archive_entry_size(e) > (16 << 20))
            throw Error("the wheel '", file, "' has a METADATA over 16 MiB");
        std::string data(size_t(std::max<int64_t>(archive_entry_size(e), 0)), '\0');
        auto n = archive_read_data(a.get(), data.data(), data.size());
        if (n < 0 || size_t(n) != data.size())
            throw Error("unable to read the METADATA of the wheel '", file,
                        "': ", archive_error_string(a.get()));
        metadata = std::move(data);
    }
    if (r != ARCHIVE_EOF)
        throw Error("the wheel '", file,
                    "' is not a readable zip: ", archive_error_string(a.get()));
    if (!metadata) throw Error("the wheel '", file, "' has no .dist-info/METADATA: is it a wheel?");
    DistMetadata m;
    try {
        m = parseMetadata(*metadata);
    } catch (Error& err) {
        err.addContext("in the wheel '" + file + "'");
        throw;
    }
    if (normalisePythonName(m.name) != normalisePythonName(parsed->name) ||
        !sameVersion(m.version, parsed->version))
        throw Error("the wheel '", file, "' holds the metadata of ", m.name, " ", m.version,
                    ", not of the name and version of its file name");
    return m;
}

std::vector<IndexLink> parseIndexPage(std::string_view html)
{
    std::vector<IndexLink> links;
    std::string low = lowercase(html);
    for (size_t at = low.find("<a"); at != std::string::npos; at = low.find("<a", at + 2)) {
        if (at + 2 >= low.size() || !(low[at + 2] == ' ' || low[at + 2] == '\t' ||
                                      low[at + 2] == '\n' || low[at + 2] == '\r'))
            continue;
        auto close = low.find('>', at);
        if (close == std::string::npos) break;
        auto tag = std::string_view(html).substr(at, close - at);
        auto ltag = std::string_view(low).substr(at, close - at);
        auto h = ltag.find("href");
        while (h != std::string_view::npos && h > 0 && alnum(ltag[h - 1]))
            h = ltag.find("href", h + 4);
        if (h == std::string_view::npos) continue;
        auto eq = ltag.find_first_not_of(" \t\r\n", h + 4);
        if (eq == std::string_view::npos || ltag[eq] != '=') continue;
        auto q = ltag.find_first_not_of(" \t\r\n", eq + 1);
        if (q == std::string_view::npos) continue;
        std::string value;
        if (ltag[q] == '"' || ltag[q] == '\'') {
            auto end = tag.find(ltag[q], q + 1);
            if (end == std::string_view::npos) continue;
            value = std::string(tag.substr(q + 1, end - q - 1));
        } else {
            auto end = tag.find_first_of(" \t\r\n", q);
            value = std::string(
                tag.substr(q, end == std::string_view::npos ? std::string_view::npos : end - q));
        }
        // HTML character references that may appear in a URL.
        for (auto [from, to] :
             {std::pair{"&amp;", "&"}, {"&#43;", "+"}, {"&#x2b;", "+"}, {"&#x2B;", "+"}})
            for (size_t i; (i = value.find(from)) != std::string::npos;)
                value.replace(i, std::string_view(from).size(), to);
        IndexLink link;
        auto hash = value.find('#');
        std::string fragment = hash == std::string::npos ? "" : value.substr(hash + 1);
        link.href = value.substr(0, hash);
        if (fragment.starts_with("sha256=")) {
            link.sha256 = lowercase(fragment.substr(7));
            if (link.sha256.size() != 64 ||
                link.sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
                link.sha256.clear();
        }
        std::string path = link.href.substr(0, link.href.find('?'));
        std::string last = path.substr(path.rfind('/') + 1);
        link.file = percentDecode(last);
        if (!link.file.empty()) links.push_back(std::move(link));
    }
    return links;
}

std::string percentDecode(std::string_view s)
{
    auto hex = [](char c) {
        return c >= '0' && c <= '9'                     ? c - '0'
               : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
                                                        : -1;
    };
    std::string out;
    for (size_t i = 0; i < s.size(); i++) {
        if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out += char(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

bool plainFileName(std::string_view name)
{
    if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
    for (char c : name)
        if (!alnum(c) && c != '.' && c != '_' && c != '-' && c != '+' && c != '!') return false;
    return true;
}

} // namespace grocker::build
