#include "config.hh"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <span>
#include <sstream>
#include <string_view>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "grocker/file.hh"
#include "grocker/oci/reference.hh"
#include "nginx-words.hh"
#include "services-format.hh"
#include "runtimes.hh"

namespace grocker {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// --- Near misses ------------------------------------------------------------------------------

// Optimal string alignment distance: Levenshtein plus swapped neighbours ("prots").
size_t editDistance(std::string_view a, std::string_view b)
{
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); i++) d[i][0] = i;
    for (size_t j = 0; j <= b.size(); j++) d[0][j] = j;
    for (size_t i = 1; i <= a.size(); i++)
        for (size_t j = 1; j <= b.size(); j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[a.size()][b.size()];
}

// The known key `key` was probably meant as: a typo away, or spelt with '-' or capitals, or
// a part of it ("image_prefix" for "docker_image_prefix").
std::optional<std::string_view> nearMiss(std::string_view key, std::span<const std::string_view> known)
{
    if (key.size() > 64) return std::nullopt; // no key is that long, and the distance is quadratic
    std::string k;
    for (char c : key) k += c == '-' ? '_' : char(std::tolower((unsigned char)c));
    size_t threshold = k.size() <= 4 ? 1 : 2;
    std::optional<std::string_view> best;
    size_t bestDistance = threshold + 1;
    for (auto candidate : known) {
        size_t d = editDistance(k, candidate);
        if (d < bestDistance) best = candidate, bestDistance = d;
    }
    if (best) return best;
    if (k.size() >= 4)
        for (auto candidate : known)
            if (candidate.find(k) != std::string_view::npos || k.find(candidate) != std::string_view::npos)
                return candidate;
    return std::nullopt;
}

std::string join(std::span<const std::string_view> words)
{
    std::string s;
    for (auto w : words) s += concat(s.empty() ? "" : ", ", w);
    return s;
}

std::string unknownKey(std::string_view key, std::span<const std::string_view> known)
{
    if (auto m = nearMiss(key, known)) return concat("unknown key (did you mean '", *m, "'?)");
    return concat("unknown key (known keys: ", join(known), ")");
}

constexpr std::string_view topKeys[] = {"runtime", "pip_constraint", "volumes", "ports", "envs",
    "repositories", "dependencies", "docker_image_prefix", "image_base_name", "entrypoint_name",
    "services"};
constexpr std::string_view repositoryKeys[] = {"uri", "key"};
constexpr std::string_view dependencyKeys[] = {"run", "build"};
constexpr std::string_view serviceKeys[] = {"wsgi", "command", "static", "media", "processes"};

// --- Values, checked alike in files and on the command line -----------------------------------
// Each check returns the problem, or nothing when the value is good.

using Problem = std::optional<std::string>;

// A configuration is a few kilobytes: a larger file is likely a wrong one (a log, an image).
constexpr size_t maxConfigFileSize = 1024 * 1024;

// Long values are cut in messages: the position says where the rest is. Control characters are
// written as escapes, so that each problem stays on its own line.
std::string quote(std::string_view text)
{
    std::string q = "'";
    for (unsigned char c : text.size() > 80 ? text.substr(0, 77) : text) {
        if (c == '\n') q += "\\n";
        else if (c == '\r') q += "\\r";
        else if (c == '\t') q += "\\t";
        else if (c < 0x20 || c == 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", unsigned(c));
            q += hex;
        } else q += char(c);
    }
    return q + (text.size() > 80 ? "...'" : "'");
}

bool hasControlCharacter(std::string_view s)
{
    return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

std::string_view trimmed(std::string_view s)
{
    auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

bool isDigits(std::string_view s)
{
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<int> smallInt(std::string_view text, int min, int max)
{
    if (!isDigits(text) || text.size() > 6) return std::nullopt;
    int v = std::stoi(std::string(text));
    if (v < min || v > max) return std::nullopt;
    return v;
}

// Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF), as the JSON of
// services.json and of the image config must be.
bool validUtf8(std::string_view s)
{
    for (size_t i = 0; i < s.size();) {
        auto c = (unsigned char)s[i];
        size_t more;
        char32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            more = 1, cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            more = 2, cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if (s.size() - i <= more) return false;
        for (size_t k = 1; k <= more; k++) {
            auto cc = (unsigned char)s[i + k];
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += more + 1;
    }
    return true;
}

// Names that end up as file names (apt sources) or words of the entrypoint's command line.
bool isPlainName(std::string_view s)
{
    if (s.empty() || s.size() > 100 || !std::isalnum((unsigned char)s[0])) return false;
    return std::all_of(s.begin(), s.end(),
        [](char c) { return std::isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-'; });
}

// An absolute container path, returned with repeated and trailing '/' dropped. '.' and '..'
// are refused rather than resolved: the image config would otherwise differ from the file.
Problem checkAbsolutePath(std::string& path)
{
    if (!path.starts_with('/')) return concat(quote(path), " is not an absolute path");
    std::string clean;
    size_t pos = 0;
    while (pos < path.size()) {
        auto end = path.find('/', pos);
        if (end == std::string::npos) end = path.size();
        auto part = std::string_view(path).substr(pos, end - pos);
        if (part == "." || part == "..") return concat(quote(path), " has a '.' or '..' component");
        if (!part.empty()) clean += concat("/", part);
        pos = end + 1;
    }
    path = clean.empty() ? "/" : clean;
    return std::nullopt;
}

Problem checkVolume(std::string& path)
{
    if (auto p = checkAbsolutePath(path)) return p;
    if (path == "/") return std::string("the root folder cannot be a volume");
    // JSON would carry them, but not the tools that mount volumes: `docker run -v HOST:PATH[:ro]`
    // splits at ':'; and a blank or a control character in a mount point is a slip far more often
    // than a wish, and one that shows only when the container is run.
    if (path.find_first_of(" :") != std::string::npos || hasControlCharacter(path))
        return concat(quote(path), " holds a space, a control character or ':', which a volume's path cannot hold "
                                   "(docker run -v HOST:PATH splits at ':')");
    return std::nullopt;
}

// A folder that nginx serves (a static folder, the media folder): the entrypoint's rules
// (in-image/nginx-words.hh), and not the root, which would put every file of the image
// (/config/env included) within nginx's reach. `what` names it: "a static folder".
Problem checkServedFolder(std::string& path, std::string_view what)
{
    if (auto p = checkAbsolutePath(path)) return p;
    if (!entrypoint::isPlainNginxWord(path))
        return concat(quote(path), " ", entrypoint::nginxMisreads, ": rename the folder");
    if (path == "/")
        return concat(quote(path), " is the root folder, which cannot be ", what,
            ": nginx would reach every file of the image (/config/env included)");
    return std::nullopt;
}

Problem parsePort(std::string_view text, int& port)
{
    auto v = smallInt(text, 1, 65535);
    if (!v) return concat(quote(text), " is not a port number (1 to 65535)");
    port = *v;
    return std::nullopt;
}

// What is wrong with an environment variable's value, said of it ("holds ..."). Never quoted in
// messages: values are often secrets.
Problem checkEnvValue(std::string_view value)
{
    // The entrypoint's crontab, docker's --env-file and /config/env are read line by line.
    if (value.find_first_of("\n\r") != std::string_view::npos)
        return std::string("holds a line break (\\n or \\r), which crontabs and env files cannot carry: "
                           "write it on one line");
    if (value.find('\0') != std::string_view::npos)
        return std::string("holds a NUL character, which no environment variable can carry");
    return std::nullopt;
}

Problem checkEnvName(std::string_view name)
{
    if (!isIdentifier(name))
        return concat(quote(name),
            " is not an environment variable name (letters, digits and '_', not starting with a digit)");
    if (name.starts_with("GROCKER_"))
        return concat(quote(name), " is reserved: Grocker sets the GROCKER_* variables itself");
    return std::nullopt;
}

// A file read at build time: relative to the folder of the file naming it.
Problem resolveReadableFile(std::string_view text, const fs::path& baseDir, std::string& out)
{
    fs::path p = fs::path(text).is_absolute() ? fs::path(text) : baseDir / text;
    p = p.lexically_normal();
    std::error_code ec;
    if (fs::is_directory(p, ec)) return concat(quote(p.string()), " is a folder, not a file");
    if (::access(p.c_str(), R_OK) != 0) return concat("cannot read ", quote(p.string()), ": ", std::strerror(errno));
    out = p.string();
    return std::nullopt;
}

Problem checkRuntime(std::string_view name)
{
    if (!lookupRuntime(name)) return unknownRuntimeMessage(name);
    return std::nullopt;
}

Problem checkImagePrefix(std::string_view prefix)
{
    // Any "PREFIX/name" must be a reference, and the prefix must not carry a tag or digest.
    bool ok = prefix.find_first_of(":@") == std::string_view::npos ||
              prefix.find(':') < prefix.find('/'); // a registry port
    if (ok) {
        try {
            auto r = oci::Reference::parse(concat(prefix, "/x"));
            ok = r.tag == "latest" && !r.digest;
        } catch (const Error&) {
            ok = false;
        }
    }
    if (!ok)
        return concat(quote(prefix),
            " is not a registry/namespace prefix (like registry.example.com/team: lowercase names, no tag)");
    return std::nullopt;
}

Problem checkImageBaseName(std::string_view name)
{
    bool ok = name.find_first_of(":@") == std::string_view::npos;
    if (ok) {
        try {
            oci::Reference::parse(concat("example.com/", name));
        } catch (const Error&) {
            ok = false;
        }
    }
    if (!ok)
        return concat(quote(name),
            " is not an image name (lowercase letters and digits, separated by '.', '_', '-' or '/')");
    return std::nullopt;
}

Problem checkImageName(std::string_view name)
{
    try {
        oci::Reference::parse(name);
    } catch (const Error& e) {
        return e.message();
    }
    return std::nullopt;
}

Problem checkEntrypointName(std::string_view name)
{
    if (!isPlainName(name))
        return concat(quote(name), " is not a console script name (letters, digits, '.', '_' and '-')");
    return std::nullopt;
}

// apt-get reads a leading '-' as an option: names are checked, not just passed on.
Problem checkPackage(std::string_view pkg)
{
    auto isName = [](std::string_view s) {
        if (s.size() < 2 || !(std::islower((unsigned char)s[0]) || std::isdigit((unsigned char)s[0]))) return false;
        return std::all_of(s.begin(), s.end(), [](char c) {
            return std::islower((unsigned char)c) || std::isdigit((unsigned char)c) || c == '+' || c == '-' || c == '.';
        });
    };
    auto isWord = [](std::string_view s, const char* extra) {
        return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) {
            return std::isalnum((unsigned char)c) || std::strchr(extra, c) != nullptr;
        });
    };
    std::string_view rest = pkg, version, release, arch;
    if (auto eq = rest.find('='); eq != std::string_view::npos) version = rest.substr(eq + 1), rest = rest.substr(0, eq);
    else if (auto sl = rest.find('/'); sl != std::string_view::npos) release = rest.substr(sl + 1), rest = rest.substr(0, sl);
    if (auto colon = rest.find(':'); colon != std::string_view::npos) arch = rest.substr(colon + 1), rest = rest.substr(0, colon);
    bool ok = isName(rest) && (version.data() == nullptr || isWord(version, ".+~:-_")) &&
              (release.data() == nullptr || isWord(release, ".-")) && (arch.data() == nullptr || isWord(arch, "-"));
    if (!ok)
        return concat(quote(pkg),
            " is not a Debian package name (like libpq5, libpq5=15.5-0+deb12u1 or libpq5/bookworm-backports)");
    return std::nullopt;
}

// One-line-style sources.list entry: "deb [options] URI SUITE [COMPONENT...]".
Problem checkSourcesLine(std::string_view text)
{
    auto line = trimmed(text);
    auto bad = [&](const std::string& why) {
        return concat(quote(line), " is not a one-line sources.list entry (deb URI SUITE COMPONENT...): ", why);
    };
    if (line.find('\n') != std::string_view::npos) return bad("it has several lines");
    std::vector<std::string_view> words;
    for (size_t pos = 0; pos < line.size();) {
        auto end = line.find_first_of(" \t", pos);
        if (end == std::string_view::npos) end = line.size();
        if (end > pos) words.push_back(line.substr(pos, end - pos));
        pos = end + 1;
    }
    if (words.empty() || words[0] != "deb") return bad("it must start with 'deb'");
    size_t i = 1;
    if (i < words.size() && words[i].starts_with('[')) {
        while (i < words.size() && !words[i].ends_with(']')) i++;
        if (i == words.size()) return bad("the '[' options are not closed");
        i++;
    }
    if (i == words.size()) return bad("the URI is missing");
    auto uri = words[i];
    auto colon = uri.find(':');
    bool scheme = colon != std::string_view::npos && colon > 0 && std::isalpha((unsigned char)uri[0]) &&
                  colon + 1 < uri.size() &&
                  std::all_of(uri.begin(), uri.begin() + colon, [](char c) {
                      return std::isalnum((unsigned char)c) || c == '+' || c == '.' || c == '-';
                  });
    if (!scheme) return bad(concat(quote(uri), " is not a URI"));
    if (++i == words.size()) return bad("the suite is missing");
    bool flat = words[i].ends_with('/');
    size_t components = words.size() - i - 1;
    if (flat && components > 0) return bad("a suite ending with '/' (a flat repository) takes no components");
    if (!flat && components == 0) return bad("the components are missing (like 'main')");
    return std::nullopt;
}

constexpr std::string_view pgpBegin = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
constexpr std::string_view pgpEnd = "-----END PGP PUBLIC KEY BLOCK-----";

Problem checkArmoredKey(std::string_view text)
{
    auto t = trimmed(text);
    if (!t.starts_with(pgpBegin) || !t.ends_with(pgpEnd) || t.size() < pgpBegin.size() + pgpEnd.size() + 2)
        return concat("not an armored PGP public key (from '", pgpBegin, "' to '", pgpEnd, "')");
    return std::nullopt;
}

// uwsgi's "module:callable": a dotted module path, then an attribute of it.
Problem checkWsgi(std::string_view text)
{
    auto colon = text.find(':');
    bool ok = colon != std::string_view::npos && isIdentifier(text.substr(colon + 1));
    for (size_t pos = 0; ok && pos < colon;) {
        auto dot = text.find('.', pos);
        if (dot == std::string_view::npos || dot > colon) dot = colon;
        ok = isIdentifier(text.substr(pos, dot - pos));
        pos = dot + 1;
    }
    if (!ok) return concat(quote(text), " is not 'module:callable' (like myapp.wsgi:application)");
    return std::nullopt;
}

// A time field of a crontab line, as Debian's cron reads it (entry.c of vixie cron 3.0).
struct CronField {
    std::string_view name; // in messages
    int min, max;
    std::span<const std::string_view> names; // the values from `min` on by name; empty: numbers only
    std::string_view values;                 // in messages
};

constexpr std::string_view monthNames[] = {
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::string_view dayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
const CronField cronFields[] = {
    {"minute", 0, 59, {}, "0 to 59"},
    {"hour", 0, 23, {}, "0 to 23"},
    {"day of month", 1, 31, {}, "1 to 31"},
    {"month", 1, 12, monthNames, "1 to 12, or jan to dec"},
    {"day of week", 0, 7, dayNames, "0 to 7, or sun to sat; 0 and 7 are Sunday"},
};

// A value of a field: a number, or a name where the field has them (cron matches them
// whatever their case), as the number it stands for.
Problem cronValue(std::string_view text, const CronField& f, int& value)
{
    if (isDigits(text)) {
        value = text.size() > 6 ? f.max + 1 : std::stoi(std::string(text));
        if (value < f.min || value > f.max) return concat(f.name, " ", quote(text), " is out of range (", f.values, ")");
        return std::nullopt;
    }
    for (size_t i = 0; i < f.names.size(); i++)
        if (text.size() == 3 && std::equal(text.begin(), text.end(), f.names[i].begin(),
                                    [](char a, char b) { return std::tolower((unsigned char)a) == b; })) {
            value = f.min + int(i);
            return std::nullopt;
        }
    return concat(f.name, " ", quote(text), " is not ", f.names.empty() ? "a number" : "a number or a name", " (",
        f.values, ")");
}

// A field: a list of `*`, `N` or `N-M` separated by ',', `*` and ranges with an optional `/STEP`.
Problem checkCronField(std::string_view field, const CronField& f)
{
    for (size_t pos = 0; pos <= field.size();) {
        auto comma = std::min(field.find(',', pos), field.size());
        auto item = field.substr(pos, comma - pos);
        pos = comma + 1;
        if (item.empty()) return concat(f.name, " ", quote(field), " has an empty item between ','");
        auto slash = item.find('/');
        auto range = item.substr(0, slash);
        bool stepped = range == "*";
        if (!stepped) {
            auto dash = range.find('-');
            int from = 0, to = 0;
            if (auto p = cronValue(range.substr(0, dash), f, from)) return p;
            if (dash != std::string_view::npos) {
                if (auto p = cronValue(range.substr(dash + 1), f, to)) return p;
                // cron takes it, and matches nothing with it.
                if (from > to) return concat(f.name, " ", quote(range), " runs backwards: cron would match nothing with it");
                stepped = true;
            }
        }
        if (slash == std::string_view::npos) continue;
        if (!stepped) return concat(f.name, " ", quote(item), ": a step follows '*' or a range (like */15 or 0-30/15)");
        auto step = item.substr(slash + 1);
        if (!isDigits(step) || step.size() > 6 || std::stoi(std::string(step)) == 0)
            return concat(f.name, " ", quote(item), ": the step after '/' must be a number from 1");
    }
    return std::nullopt;
}

// A line of a user crontab (crontab(5), no user field): five time fields or an @nickname,
// then a command; or a NAME=value assignment.
Problem checkCronLine(std::string_view text)
{
    auto line = trimmed(text);
    auto notALine = [&] {
        return concat(quote(line), " is not a crontab line (five time fields or @hourly, @daily..., then a command)");
    };
    // cron reads its file line by line: a '\r' or '\n' inside would cut the job in two.
    if (std::any_of(line.begin(), line.end(), [](unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }))
        return concat(quote(line), " holds a line break or another control character: give each job its own item");
    if (line.starts_with('@')) {
        static constexpr std::string_view nicknames[] = {
            "@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"};
        auto end = line.find_first_of(" \t");
        if (end == std::string_view::npos ||
            std::find(std::begin(nicknames), std::end(nicknames), line.substr(0, end)) == std::end(nicknames))
            return notALine();
        return std::nullopt;
    }
    if (auto eq = line.find('='); eq != std::string_view::npos && isIdentifier(trimmed(line.substr(0, eq))))
        return std::nullopt;
    size_t pos = 0;
    for (const auto& f : cronFields) {
        auto end = line.find_first_of(" \t", pos);
        if (end == std::string_view::npos) return notALine(); // a field or the command missing
        if (auto p = checkCronField(line.substr(pos, end - pos), f)) return concat(quote(line), ": ", *p);
        pos = line.find_first_not_of(" \t", end);
    }
    if (pos == std::string_view::npos) return notALine();
    return std::nullopt;
}

template <typename T> void appendUnique(std::vector<T>& to, const T& item)
{
    if (std::find(to.begin(), to.end(), item) == to.end()) to.push_back(item);
}

// --- A YAML file merged into the configuration ------------------------------------------------

std::string describe(const YAML::Node& n)
{
    switch (n.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return quote(n.Scalar());
    default: return "nothing";
    }
}

std::string keyPath(const std::string& parent, std::string_view key)
{
    // Messages stay short: the position says where the rest is.
    std::string k = key.size() > 80 ? concat(key.substr(0, 77), "...") : std::string(key);
    return parent.empty() ? k : concat(parent, ".", k);
}

// Watches yaml-cpp's parser go through the documents of a stream. Its LoadAll loops forever,
// allocating, on some malformed input such as a line starting with ',': the parser keeps
// starting empty documents at the same place (yaml-cpp issue #1040, fixed in 0.8.0).
class DocumentWatch : public YAML::EventHandler {
public:
    std::optional<YAML::Mark> start, content; // where the document starts; its first node
    std::optional<YAML::Mark> notUtf8;        // the first scalar that is not UTF-8 (yaml-cpp lets it by)
    void OnDocumentStart(const YAML::Mark& m) override { start = m; }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { node(m); }
    void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t, const std::string& value) override
    {
        node(m);
        if (!notUtf8 && !validUtf8(value)) notUtf8 = m;
    }
    void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override
    {
        node(m);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override
    {
        node(m);
    }
    void OnMapEnd() override {}

private:
    void node(const YAML::Mark& m)
    {
        if (!content) content = m;
    }
};

struct Entry {
    std::string key;
    std::string path; // "services.www"
    YAML::Node keyNode, value;
};

class FileLayer {
public:
    FileLayer(std::string file, fs::path baseDir, Config& config, std::vector<std::string>& problems)
        : file_(std::move(file)), baseDir_(std::move(baseDir)), config_(config), problems_(problems)
    {
    }

    void merge(const std::string& text)
    {
        if (text.size() > maxConfigFileSize) {
            problems_.push_back(concat(file_, ": the file is larger than ", maxConfigFileSize / (1024 * 1024),
                " MiB, the limit of a configuration file: is it the right file?"));
            return;
        }
        if (!checkDocuments(text)) return;
        std::vector<YAML::Node> docs;
        try {
            docs = YAML::LoadAll(text); // ends: checkDocuments saw the same parser end
        } catch (const YAML::Exception& e) {
            problems_.push_back(concat(at(e.mark), ": invalid YAML: ", e.msg));
            return;
        }
        std::erase_if(docs, [](const YAML::Node& d) { return d.IsNull(); });
        if (docs.empty()) return; // an empty file changes nothing
        const auto& root = docs[0];
        if (!root.IsMap()) {
            problems_.push_back(concat(at(root.Mark()),
                ": the configuration must be a mapping of keys (like 'runtime: bookworm/3.11'), got ", describe(root)));
            return;
        }
        for (auto& e : entries(root, "")) {
            const auto& k = e.key;
            if (k == "runtime") runtime(e);
            else if (k == "pip_constraint") pipConstraint(e);
            else if (k == "volumes") volumes(e);
            else if (k == "ports") ports(e);
            else if (k == "envs" || k == "env") envs(e); // "env": the original Grocker 6's spelling
            else if (k == "repositories") repositories(e);
            else if (k == "dependencies") dependencies(e);
            else if (k == "docker_image_prefix") optionalName(e, config_.dockerImagePrefix, checkImagePrefix);
            else if (k == "image_base_name") optionalName(e, config_.imageBaseName, checkImageBaseName);
            else if (k == "entrypoint_name") optionalName(e, config_.entrypointName, checkEntrypointName);
            else if (k == "services") services(e);
            else problem(e.keyNode, e.path, unknownKey(k, topKeys));
        }
    }

private:
    // Whether `text` parses, as at most one document with something in it (empty documents,
    // like a "---" at the end, are harmless; a second real one would be silently ignored).
    bool checkDocuments(const std::string& text)
    {
        std::istringstream in(text);
        YAML::Parser parser(in);
        std::optional<YAML::Mark> previousStart, firstContent;
        try {
            for (;;) {
                DocumentWatch doc;
                if (!parser.HandleNextDocument(doc)) return true;
                if (doc.start && previousStart && doc.start->pos == previousStart->pos) {
                    auto pos = size_t(std::max(doc.start->pos, 0));
                    problems_.push_back(concat(at(*doc.start), ": invalid YAML: unexpected ",
                        pos < text.size() ? quote(text.substr(pos, 1)) : std::string("end")));
                    return false;
                }
                previousStart = doc.start;
                if (doc.notUtf8) {
                    problems_.push_back(concat(at(*doc.notUtf8), ": text that is not UTF-8; save the file as UTF-8"));
                    return false;
                }
                if (doc.content && firstContent) {
                    problems_.push_back(concat(at(*doc.content), ": a configuration file holds one YAML document"));
                    return false;
                }
                if (doc.content) firstContent = doc.content;
            }
        } catch (const YAML::Exception& e) {
            problems_.push_back(concat(at(e.mark), ": invalid YAML: ", e.msg));
            return false;
        }
    }

    std::string at(const YAML::Mark& m) const
    {
        if (m.is_null()) return file_;
        return concat(file_, ":", m.line + 1, ":", m.column + 1);
    }

    void problem(const YAML::Node& where, const std::string& path, const std::string& what)
    {
        problems_.push_back(concat(at(where.Mark()), ": key '", path, "': ", what));
    }

    // A null value has no position of its own (yaml-cpp points past it): use its key's.
    const YAML::Node& whereOf(const Entry& e) const { return e.value.IsNull() ? e.keyNode : e.value; }

    void expected(const Entry& e, const std::string& what)
    {
        problem(whereOf(e), e.path, concat("expected ", what, ", got ", describe(e.value)));
    }

    // The entries of a mapping, with string keys given once.
    std::vector<Entry> entries(const YAML::Node& map, const std::string& parent)
    {
        std::vector<Entry> out;
        for (auto it = map.begin(); it != map.end(); ++it) {
            if (!it->first.IsScalar()) {
                problems_.push_back(concat(at(it->first.Mark()), ": ",
                    parent.empty() ? "" : concat("key '", parent, "': "), "keys must be strings, got ",
                    describe(it->first)));
                continue;
            }
            auto key = it->first.Scalar();
            auto path = keyPath(parent, key);
            auto first = std::find_if(out.begin(), out.end(), [&](const Entry& e) { return e.key == key; });
            if (first != out.end()) {
                problem(it->first, path, concat("given twice (first at line ", first->keyNode.Mark().line + 1, ")"));
                continue;
            }
            out.push_back(Entry{key, path, it->first, it->second});
        }
        return out;
    }

    // The text of a scalar, or nothing after saying what it is instead.
    std::optional<std::string> scalar(const Entry& e, const std::string& what)
    {
        if (e.value.IsScalar()) return e.value.Scalar();
        expected(e, what);
        return std::nullopt;
    }

    // The scalar items of a list (a null value is an empty list).
    std::vector<std::pair<std::string, YAML::Node>> scalarItems(const Entry& e, const std::string& list,
        const std::string& item)
    {
        std::vector<std::pair<std::string, YAML::Node>> out;
        if (e.value.IsNull()) return out;
        if (!e.value.IsSequence()) {
            expected(e, list);
            return out;
        }
        for (const auto& n : e.value) {
            if (n.IsScalar()) out.emplace_back(n.Scalar(), n);
            else problem(n, e.path, concat("expected ", item, ", got ", describe(n)));
        }
        return out;
    }

    void runtime(const Entry& e)
    {
        auto v = scalar(e, "a runtime name");
        if (!v) return;
        if (auto p = checkRuntime(*v)) return problem(e.value, e.path, *p);
        config_.runtime = *v;
    }

    void pipConstraint(const Entry& e)
    {
        if (e.value.IsNull()) return config_.pipConstraint.clear();
        auto v = scalar(e, "a file path");
        if (!v) return;
        if (v->empty()) return config_.pipConstraint.clear();
        std::string path;
        if (auto p = resolveReadableFile(*v, baseDir_, path)) return problem(e.value, e.path, *p);
        config_.pipConstraint = path;
    }

    void volumes(const Entry& e)
    {
        for (auto& [text, node] : scalarItems(e, "a list of absolute paths", "an absolute path")) {
            std::string path = text;
            if (auto p = checkVolume(path)) problem(node, e.path, *p);
            else appendUnique(config_.volumes, path);
        }
    }

    void ports(const Entry& e)
    {
        for (auto& [text, node] : scalarItems(e, "a list of port numbers", "a port number")) {
            int port = 0;
            if (auto p = parsePort(text, port)) problem(node, e.path, *p);
            else appendUnique(config_.ports, port);
        }
    }

    // YAML scalars are taken as written: `DEBUG: yes` gives "yes", `N: 010` gives "010".
    void envs(const Entry& e)
    {
        if (e.value.IsNull()) return;
        if (!e.value.IsMap()) return expected(e, "a mapping of NAME: value");
        for (auto& v : entries(e.value, e.path)) {
            if (auto p = checkEnvName(v.key)) {
                problem(v.keyNode, e.path, *p);
                continue;
            }
            if (v.value.IsNull()) {
                expected(v, "a string (write '' for an empty value)");
                continue;
            }
            auto text = scalar(v, "a string");
            if (!text) continue;
            if (auto p = checkEnvValue(*text)) problem(v.value, v.path, concat("the value ", *p));
            else config_.envs[v.key] = *text;
        }
    }

    void repositories(const Entry& e)
    {
        if (e.value.IsNull()) return;
        if (!e.value.IsMap()) return expected(e, "a mapping of name: {uri: ..., key: ...}");
        for (auto& r : entries(e.value, e.path)) {
            if (!isPlainName(r.key)) {
                problem(r.keyNode, e.path,
                    concat(quote(r.key), " is not a repository name (letters, digits, '.', '_' and '-')"));
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
                    if (auto p = checkSourcesLine(*v)) problem(f.value, f.path, *p);
                    else repo.uri = trimmed(*v);
                } else if (f.key == "key") {
                    if (f.value.IsNull()) continue;
                    auto v = scalar(f, "an armored PGP public key");
                    if (!v || v->empty()) continue;
                    if (auto p = checkArmoredKey(*v)) problem(f.value, f.path, *p);
                    else repo.key = concat(trimmed(*v), "\n");
                } else {
                    problem(f.keyNode, f.path, unknownKey(f.key, repositoryKeys));
                }
            }
            if (!hasUri) problem(r.keyNode, r.path, "'uri' is missing (a line like 'deb http://host/debian bookworm main')");
            if (problems_.size() == before) config_.repositories[r.key] = repo;
        }
    }

    void packages(const YAML::Node& list, const std::string& path, std::vector<std::string>& to)
    {
        for (const auto& n : list) {
            if (!n.IsScalar()) problem(n, path, concat("expected a package name, got ", describe(n)));
            else if (auto p = checkPackage(n.Scalar())) problem(n, path, *p);
            else appendUnique(to, n.Scalar());
        }
    }

    // Two forms: the original Grocker 5's {run: [...], build: [...]}, and its 6's list whose
    // items are a run package, or {run_package: build_package(s)}.
    void dependencies(const Entry& e)
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
                if (auto p = checkPackage(item.Scalar())) problem(item, e.path, *p);
                else appendUnique(deps.run, item.Scalar());
                continue;
            }
            if (!item.IsMap() || item.size() != 1) {
                problem(item, e.path,
                    concat("expected a package name or a one-key mapping {run_package: build_package(s)}, got ",
                        item.IsMap() ? concat("a mapping of ", item.size(), " keys") : describe(item)));
                continue;
            }
            // Copies: yaml-cpp's iterator hands out a proxy that dies with the statement.
            YAML::Node run = item.begin()->first, build = item.begin()->second;
            if (!run.IsScalar()) {
                problem(run, e.path, concat("expected a package name, got ", describe(run)));
                continue;
            }
            if (auto p = checkPackage(run.Scalar())) problem(run, e.path, *p);
            else appendUnique(deps.run, run.Scalar());
            if (build.IsScalar()) {
                if (auto p = checkPackage(build.Scalar())) problem(build, e.path, *p);
                else appendUnique(deps.build, build.Scalar());
            } else if (build.IsSequence()) {
                packages(build, e.path, deps.build);
            } else {
                problem(build.IsNull() ? run : build, e.path,
                    concat("expected the build package(s) of ", quote(run.Scalar()), ", got ", describe(build)));
            }
        }
    }

    // A scalar that may be unset: null or '' clears what earlier layers set.
    void optionalName(const Entry& e, std::string& to, Problem (*check)(std::string_view))
    {
        if (e.value.IsNull()) return to.clear();
        auto v = scalar(e, "a string");
        if (!v) return;
        if (v->empty()) return to.clear();
        if (auto p = check(*v)) return problem(e.value, e.path, *p);
        to = *v;
    }

    void services(const Entry& e)
    {
        if (e.value.IsNull()) return;
        if (!e.value.IsMap()) return expected(e, "a mapping of service name: service");
        for (auto& s : entries(e.value, e.path)) {
            if (s.key == "cron") {
                for (auto& [text, node] : scalarItems(s, "a list of crontab lines", "a crontab line")) {
                    if (auto p = checkCronLine(text)) problem(node, s.path, *p);
                    else appendUnique(config_.crontab, std::string(trimmed(text)));
                }
                continue;
            }
            if (!isPlainName(s.key)) {
                problem(s.keyNode, e.path,
                    concat(quote(s.key), " is not a service name (letters, digits, '.', '_' and '-')"));
                continue;
            }
            if (!s.value.IsMap()) {
                expected(s, "a mapping with 'wsgi' or 'command'");
                continue;
            }
            size_t before = problems_.size();
            auto svc = service(s);
            if (problems_.size() == before) config_.services[s.key] = svc;
        }
    }

    Service service(const Entry& s)
    {
        Service svc;
        auto fields = entries(s.value, s.path);
        auto has = [&](std::string_view k) {
            return std::any_of(fields.begin(), fields.end(), [&](const Entry& f) { return f.key == k; });
        };
        if (has("wsgi") && has("command")) problem(s.keyNode, s.path, "a service has 'wsgi' or 'command', not both");
        else if (!has("wsgi") && !has("command"))
            problem(s.keyNode, s.path, "a service needs 'wsgi' (a WSGI application) or 'command'");
        svc.kind = has("wsgi") ? Service::Kind::Wsgi : Service::Kind::Command;
        for (auto& f : fields) {
            bool wsgiOnly = f.key == "static" || f.key == "media" || f.key == "processes";
            if (wsgiOnly && has("command") && !has("wsgi")) {
                problem(f.keyNode, f.path, concat("only wsgi services have '", f.key, "'"));
            } else if (f.key == "wsgi") {
                if (auto v = scalar(f, "'module:callable'")) {
                    if (auto p = checkWsgi(*v)) problem(f.value, f.path, *p);
                    else svc.wsgi = *v;
                }
            } else if (f.key == "static") {
                statics(f, svc.statics);
            } else if (f.key == "media") {
                if (auto v = scalar(f, "an absolute path")) {
                    if (auto p = checkServedFolder(*v, "the media folder")) problem(f.value, f.path, *p);
                    else svc.media = *v;
                }
            } else if (f.key == "processes") {
                if (auto v = scalar(f, "a number of processes")) {
                    if (auto n = smallInt(*v, 1, 64)) svc.processes = *n;
                    else problem(f.value, f.path, concat(quote(*v), " is not a number of processes (1 to 64)"));
                }
            } else if (f.key == "command") {
                command(f, svc.command);
            } else {
                problem(f.keyNode, f.path, unknownKey(f.key, serviceKeys));
            }
        }
        return svc;
    }

    void statics(const Entry& f, std::map<std::string, std::string>& to)
    {
        if (f.value.IsNull()) return;
        if (!f.value.IsMap()) return expected(f, "a mapping of URL prefix: folder");
        for (auto& s : entries(f.value, f.path)) {
            if (!s.key.starts_with('/') || !s.key.ends_with('/')) {
                problem(s.keyNode, f.path, concat("URL prefix ", quote(s.key), " must start and end with '/'"));
                continue;
            }
            if (auto p = entrypoint::staticPrefixProblem(s.key); !p.empty()) {
                problem(s.keyNode, s.path, p);
                continue;
            }
            auto v = scalar(s, "a folder");
            if (!v) continue;
            if (auto p = checkServedFolder(*v, "a static folder")) problem(s.value, f.path, concat("folder ", *p));
            else to[s.key] = *v;
        }
    }

    void command(const Entry& f, std::vector<std::string>& to)
    {
        if (f.value.IsScalar()) {
            try {
                to = splitCommand(f.value.Scalar());
            } catch (const UsageError& e) {
                return problem(f.value, f.path, e.message());
            }
        } else if (f.value.IsSequence()) {
            for (auto& [text, node] : scalarItems(f, "", "a string")) to.push_back(text);
            if (to.size() != f.value.size()) return; // a bad item, said already
        } else {
            return expected(f, "a string or a list of strings");
        }
        if (to.empty() || to[0].empty()) problem(whereOf(f), f.path, "the command is empty");
        else if (std::any_of(to.begin(), to.end(), [](const std::string& w) { return w.find('\0') != std::string::npos; }))
            problem(whereOf(f), f.path, "the command holds a NUL character, which no program's argument can carry");
    }

    std::string file_;
    fs::path baseDir_;
    Config& config_;
    std::vector<std::string>& problems_;
};

// The text of `path`, cut after `limit` + 1 bytes: enough to tell that it is too large, without
// reading a huge file (or an endless one, such as /dev/zero) whole.
std::string readAtMost(const fs::path& path, size_t limit)
{
    AutoCloseFD fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw SysError("unable to open '", path.string(), "'");
    std::string text;
    char buffer[65536];
    while (text.size() <= limit) {
        size_t n = readSome(fd.get(), buffer, sizeof buffer, path.string());
        if (n == 0) break;
        text.append(buffer, n);
    }
    return text;
}

void mergeFile(const fs::path& path, const std::string& name, Config& config, std::vector<std::string>& problems)
{
    std::string text;
    try {
        text = readAtMost(path, maxConfigFileSize);
    } catch (const SysError& e) {
        problems.push_back(concat(name, ": cannot read the configuration file: ", std::strerror(e.errNo())));
        return;
    } catch (const Error& e) {
        problems.push_back(concat(name, ": cannot read the configuration file: ", e.message()));
        return;
    }
    FileLayer(name, fs::absolute(path).parent_path(), config, problems).merge(text);
}

// --- The command line, the last layer ---------------------------------------------------------

void mergeOverrides(const ConfigOverrides& o, const fs::path& workDir, Config& c, std::vector<std::string>& problems)
{
    auto problem = [&](std::string_view option, const std::string& what) {
        problems.push_back(concat("command line: option '", option, "': ", what));
    };
    if (o.runtime) {
        if (auto p = checkRuntime(*o.runtime)) problem("--runtime", *p);
        else c.runtime = *o.runtime;
    }
    if (o.pipConstraint) {
        std::string path;
        if (o.pipConstraint->empty()) c.pipConstraint.clear();
        else if (auto p = resolveReadableFile(*o.pipConstraint, workDir, path)) problem("--pip-constraint", *p);
        else c.pipConstraint = path;
    }
    for (auto path : o.volumes) {
        if (auto p = checkVolume(path)) problem("--volume", *p);
        else appendUnique(c.volumes, path);
    }
    for (const auto& text : o.ports) {
        int port = 0;
        if (auto p = parsePort(text, port)) problem("--port", *p);
        else appendUnique(c.ports, port);
    }
    for (const auto& kv : o.envs) {
        auto eq = kv.find('=');
        if (eq == std::string::npos) problem("--env", concat(quote(kv), " must be KEY=VALUE"));
        else if (auto p = checkEnvName(kv.substr(0, eq))) problem("--env", *p);
        else if (auto v = checkEnvValue(std::string_view(kv).substr(eq + 1)))
            problem("--env", concat("the value of ", quote(kv.substr(0, eq)), " ", *v));
        else c.envs[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    auto name = [&](const std::optional<std::string>& value, std::string_view option, std::string& to,
                    Problem (*check)(std::string_view)) {
        if (!value) return;
        if (value->empty()) to.clear();
        else if (auto p = check(*value)) problem(option, *p);
        else to = *value;
    };
    name(o.entrypointName, "--entrypoint", c.entrypointName, checkEntrypointName);
    name(o.imagePrefix, "--image-prefix", c.dockerImagePrefix, checkImagePrefix);
    name(o.imageBaseName, "--image-base-name", c.imageBaseName, checkImageBaseName);
    name(o.imageName, "--image-name", c.imageName, checkImageName);
}

json serviceJson(const Service& s)
{
    if (s.kind == Service::Kind::Command) return json{{"command", s.command}};
    json j{{"wsgi", s.wsgi}, {"static", s.statics}, {"processes", s.processes}};
    if (!s.media.empty()) j["media"] = s.media;
    return j;
}

} // namespace

// --- Public API -------------------------------------------------------------------------------

namespace {
std::string listProblems(const std::vector<std::string>& problems)
{
    std::string s = concat("the configuration has ", problems.size(), problems.size() == 1 ? " mistake:" : " mistakes:");
    for (const auto& p : problems) s += concat("\n", p);
    return s;
}
} // namespace

ConfigError::ConfigError(std::vector<std::string> problems)
    : UsageError(listProblems(problems)), problems_(std::move(problems))
{
}

Config loadConfig(const std::vector<fs::path>& files, const ConfigOverrides& overrides, const fs::path& workDir)
{
    auto dir = fs::absolute(workDir);
    Config config; // the packaged defaults are Config's initial values
    std::vector<std::string> problems;
    if (files.empty()) {
        auto implicit = dir / ".grocker.yml";
        std::error_code ec;
        if (fs::exists(fs::symlink_status(implicit, ec))) mergeFile(implicit, ".grocker.yml", config, problems);
    }
    for (const auto& f : files) mergeFile(f.is_absolute() ? f : dir / f, f.string(), config, problems);
    mergeOverrides(overrides, dir, config, problems);
    // Checkpoint: every layer has been read, so the user sees all of the mistakes at once.
    if (!problems.empty()) throw ConfigError(std::move(problems));
    return config;
}

Config mergeConfigText(Config base, const std::string& yaml, const std::string& fileName, const fs::path& baseDir)
{
    std::vector<std::string> problems;
    FileLayer(fileName, fs::absolute(baseDir), base, problems).merge(yaml);
    if (!problems.empty()) throw ConfigError(std::move(problems));
    return base;
}

// The keys of a configuration file, so that the result reads back as one (JSON is YAML).
json toJson(const Config& c)
{
    json repos = json::object();
    for (const auto& [name, r] : c.repositories) repos[name] = json{{"uri", r.uri}, {"key", r.key}};
    json services = json::object();
    for (const auto& [name, s] : c.services) services[name] = serviceJson(s);
    services["cron"] = c.crontab;
    return json{
        {"runtime", c.runtime},
        {"pip_constraint", c.pipConstraint},
        {"volumes", c.volumes},
        {"ports", c.ports},
        {"envs", c.envs},
        {"repositories", repos},
        {"dependencies", {{"run", c.dependencies.run}, {"build", c.dependencies.build}}},
        {"docker_image_prefix", c.dockerImagePrefix},
        {"image_base_name", c.imageBaseName},
        {"entrypoint_name", c.entrypointName},
        {"services", services},
    };
}

std::string servicesJson(const Config& c, const std::string& app, const std::string& version, const std::string& venv,
    const std::string& uwsgiPlugin)
{
    entrypoint::Services out{app, version, venv, uwsgiPlugin, {}, c.crontab};
    for (const auto& [name, s] : c.services) {
        if (s.kind == Service::Kind::Command) {
            out.services.push_back({name, entrypoint::CommandService{s.command}});
        } else {
            entrypoint::WsgiService w{s.wsgi, {s.statics.begin(), s.statics.end()}, s.media, s.processes};
            out.services.push_back({name, std::move(w)});
        }
    }
    return entrypoint::writeServices(out);
}

std::vector<std::string> splitCommand(const std::string& s)
{
    std::vector<std::string> words;
    std::string word;
    bool inWord = false;
    auto bad = [&](std::string_view why) { return UsageError(why, " in ", quote(s)); };
    for (size_t i = 0; i < s.size(); i++) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\n') {
            if (inWord) words.push_back(std::move(word)), word.clear(), inWord = false;
            continue;
        }
        inWord = true;
        if (c == '\'') {
            auto end = s.find('\'', i + 1);
            if (end == std::string::npos) throw bad("unterminated '");
            word += s.substr(i + 1, end - i - 1);
            i = end;
        } else if (c == '"') {
            // Inside "…", '\' escapes only what sh lets it escape.
            for (i++;; i++) {
                if (i >= s.size()) throw bad("unterminated \"");
                if (s[i] == '"') break;
                if (s[i] == '\\' && i + 1 < s.size() && std::strchr("\"\\$`", s[i + 1])) i++;
                word += s[i];
            }
        } else if (c == '\\') {
            if (i + 1 >= s.size()) throw bad("a lone '\\' at the end");
            word += s[++i];
        } else {
            word += c;
        }
    }
    if (inWord) words.push_back(std::move(word));
    return words;
}

} // namespace grocker
