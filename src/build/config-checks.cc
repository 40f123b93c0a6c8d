// The checks of configuration values, alike for files and the command line (config-checks.hh).
#include "config-checks.hh"

#include "grocker/error.hh"
#include "grocker/oci/image.hh"
#include "grocker/oci/reference.hh"
#include "grocker/sandbox/emulation.hh"
#include "nginx-words.hh"
#include "runtimes.hh"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <span>
#include <sys/stat.h>
#include <unistd.h>

namespace grocker::config {

namespace fs = std::filesystem;

namespace {

// --- Near misses ------------------------------------------------------------------------------

// Optimal string alignment distance: Levenshtein plus swapped neighbours ("prots").
size_t editDistance(std::string_view a, std::string_view b)
{
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); i++)
        d[i][0] = i;
    for (size_t j = 0; j <= b.size(); j++)
        d[0][j] = j;
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
std::optional<std::string_view> nearMiss(std::string_view key,
                                         std::span<const std::string_view> known)
{
    if (key.size() > 64) return std::nullopt; // no key is that long, and the distance is quadratic
    std::string k;
    for (char c : key)
        k += c == '-' ? '_' : char(std::tolower((unsigned char)c));
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
            if (candidate.find(k) != std::string_view::npos ||
                k.find(candidate) != std::string_view::npos)
                return candidate;
    return std::nullopt;
}

std::string join(std::span<const std::string_view> words)
{
    std::string s;
    for (auto w : words)
        s += concat(s.empty() ? "" : ", ", w);
    return s;
}

} // namespace

std::string unknownKey(std::string_view key, std::span<const std::string_view> known)
{
    if (auto m = nearMiss(key, known)) return concat("unknown key (did you mean '", *m, "'?)");
    return concat("unknown key (known keys: ", join(known), ")");
}

namespace {

bool hasControlCharacter(std::string_view s)
{
    return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

} // namespace

bool isDigits(std::string_view s)
{
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Long values are cut in messages: the position says where the rest is. Control characters are
// written as escapes, so that each problem stays on its own line.
std::string quote(std::string_view text)
{
    std::string q = "'";
    for (unsigned char c : text.size() > 80 ? text.substr(0, 77) : text) {
        if (c == '\n')
            q += "\\n";
        else if (c == '\r')
            q += "\\r";
        else if (c == '\t')
            q += "\\t";
        else if (c < 0x20 || c == 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", unsigned(c));
            q += hex;
        } else
            q += char(c);
    }
    return q + (text.size() > 80 ? "...'" : "'");
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
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-';
    });
}

namespace {

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

} // namespace

Problem checkVolume(std::string& path)
{
    if (auto p = checkAbsolutePath(path)) return p;
    if (path == "/") return std::string("the root folder cannot be a volume");
    // JSON would carry them, but not the tools that mount volumes: `docker run -v HOST:PATH[:ro]`
    // splits at ':'; and a blank or a control character in a mount point is a slip far more often
    // than a wish, and one that shows only when the container is run.
    if (path.find_first_of(" :") != std::string::npos || hasControlCharacter(path))
        return concat(
            quote(path),
            " holds a space, a control character or ':', which a volume's path cannot hold "
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
        return std::string(
            "holds a line break (\\n or \\r), which crontabs and env files cannot carry: "
            "write it on one line");
    if (value.find('\0') != std::string_view::npos)
        return std::string("holds a NUL character, which no environment variable can carry");
    return std::nullopt;
}

Problem checkEnvName(std::string_view name)
{
    if (!isIdentifier(name))
        return concat(quote(name), " is not an environment variable name (letters, digits and '_', "
                                   "not starting with a digit)");
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
    if (::access(p.c_str(), R_OK) != 0)
        return concat("cannot read ", quote(p.string()), ": ", std::strerror(errno));
    out = p.string();
    return std::nullopt;
}

Problem checkRuntime(std::string_view name)
{
    if (!lookupRuntime(name)) return unknownRuntimeMessage(name);
    return std::nullopt;
}

Problem checkPlatform(std::string_view text)
{
    try {
        auto p = oci::Platform::parse(text);
        if (p.os != "linux")
            return concat("'", text, "': grocker builds Linux images only (linux/ARCH)");
        sandbox::debianArch(p.architecture, p.variant);
    } catch (Error& e) {
        return std::string(e.what());
    }
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
        return concat(quote(prefix), " is not a registry/namespace prefix (like "
                                     "registry.example.com/team: lowercase names, no tag)");
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
        return concat(quote(name), " is not an image name (lowercase letters and digits, separated "
                                   "by '.', '_', '-' or '/')");
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
        return concat(quote(name),
                      " is not a console script name (letters, digits, '.', '_' and '-')");
    return std::nullopt;
}

// apt-get reads a leading '-' as an option: names are checked, not just passed on.
Problem checkPackage(std::string_view pkg)
{
    auto isName = [](std::string_view s) {
        if (s.size() < 2 ||
            !(std::islower((unsigned char)s[0]) || std::isdigit((unsigned char)s[0])))
            return false;
        return std::all_of(s.begin(), s.end(), [](char c) {
            return std::islower((unsigned char)c) || std::isdigit((unsigned char)c) || c == '+' ||
                   c == '-' || c == '.';
        });
    };
    auto isWord = [](std::string_view s, const char* extra) {
        return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) {
            return std::isalnum((unsigned char)c) || std::strchr(extra, c) != nullptr;
        });
    };
    std::string_view rest = pkg, version, release, arch;
    if (auto eq = rest.find('='); eq != std::string_view::npos)
        version = rest.substr(eq + 1), rest = rest.substr(0, eq);
    else if (auto sl = rest.find('/'); sl != std::string_view::npos)
        release = rest.substr(sl + 1), rest = rest.substr(0, sl);
    if (auto colon = rest.find(':'); colon != std::string_view::npos)
        arch = rest.substr(colon + 1), rest = rest.substr(0, colon);
    bool ok = isName(rest) && (version.data() == nullptr || isWord(version, ".+~:-_")) &&
              (release.data() == nullptr || isWord(release, ".-")) &&
              (arch.data() == nullptr || isWord(arch, "-"));
    if (!ok)
        return concat(quote(pkg), " is not a Debian package name (like libpq5, "
                                  "libpq5=15.5-0+deb12u1 or libpq5/bookworm-backports)");
    return std::nullopt;
}

// One-line-style sources.list entry: "deb [options] URI SUITE [COMPONENT...]".
Problem checkSourcesLine(std::string_view text)
{
    auto line = trimmed(text);
    auto bad = [&](const std::string& why) {
        return concat(quote(line),
                      " is not a one-line sources.list entry (deb URI SUITE COMPONENT...): ", why);
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
        while (i < words.size() && !words[i].ends_with(']'))
            i++;
        if (i == words.size()) return bad("the '[' options are not closed");
        i++;
    }
    if (i == words.size()) return bad("the URI is missing");
    auto uri = words[i];
    auto colon = uri.find(':');
    bool scheme = colon != std::string_view::npos && colon > 0 &&
                  std::isalpha((unsigned char)uri[0]) && colon + 1 < uri.size() &&
                  std::all_of(uri.begin(), uri.begin() + colon, [](char c) {
                      return std::isalnum((unsigned char)c) || c == '+' || c == '.' || c == '-';
                  });
    if (!scheme) return bad(concat(quote(uri), " is not a URI"));
    if (++i == words.size()) return bad("the suite is missing");
    bool flat = words[i].ends_with('/');
    size_t components = words.size() - i - 1;
    if (flat && components > 0)
        return bad("a suite ending with '/' (a flat repository) takes no components");
    if (!flat && components == 0) return bad("the components are missing (like 'main')");
    return std::nullopt;
}

constexpr std::string_view pgpBegin = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
constexpr std::string_view pgpEnd = "-----END PGP PUBLIC KEY BLOCK-----";

Problem checkArmoredKey(std::string_view text)
{
    auto t = trimmed(text);
    if (!t.starts_with(pgpBegin) || !t.ends_with(pgpEnd) ||
        t.size() < pgpBegin.size() + pgpEnd.size() + 2)
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

} // namespace grocker::config
