#include "config-files.hh"

#include "grocker/file.hh"
#include "grocker/strings.hh"
#include "services.hh"

#include <arpa/inet.h>
#include <cctype>
#include <cstring>
#include <fcntl.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace grocker::entrypoint {

namespace {

std::vector<std::string> lines(const std::string& text)
{
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        out.push_back(line);
    }
    return out;
}

std::vector<std::string> split(const std::string& s, char sep)
{
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        auto p = s.find(sep, start);
        out.push_back(s.substr(start, p == std::string::npos ? p : p - start));
        if (p == std::string::npos) return out;
        start = p + 1;
    }
}

std::string trim(const std::string& s)
{
    auto b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return {};
    return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

bool parseNumber(const std::string& s, unsigned long& out, int base = 10)
{
    if (s.empty() || s.size() > 10) return false;
    for (char c : s)
        if (!(base == 16 ? std::isxdigit(static_cast<unsigned char>(c))
                         : std::isdigit(static_cast<unsigned char>(c))))
            return false;
    out = std::stoul(s, nullptr, base);
    return true;
}

} // namespace

std::optional<std::string> readConfigFile(const std::string& path,
                                          std::vector<std::string>& warnings)
{
    auto skip = [&](const char* what) {
        warnings.push_back(concat(
            path, " is ", what, ", not a regular file: it is ignored; mount a regular file there"));
        return std::nullopt;
    };
    // O_NOFOLLOW: a link may lead anywhere in the image; O_NONBLOCK: a FIFO would wait for a
    // writer forever. What it is, fstat says of the file opened, not of a name that may change.
    AutoCloseFD fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
    if (!fd) {
        int err = errno;
        struct stat st;
        if (err == ENOENT) return std::nullopt;
        if (err == ELOOP && ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
            return skip("a symbolic link");
        throw SysError(err, "unable to read '", path, "'");
    }
    struct stat st;
    if (::fstat(fd.get(), &st) < 0) throw SysError(errno, "unable to read '", path, "'");
    if (S_ISDIR(st.st_mode)) return skip("a folder");
    if (S_ISFIFO(st.st_mode)) return skip("a FIFO");
    if (S_ISSOCK(st.st_mode)) return skip("a socket");
    if (!S_ISREG(st.st_mode)) return skip("a device");
    try {
        return readFd(fd.get());
    } catch (SysError& e) {
        throw SysError(e.errNo(), "unable to read '", path, "'"); // readFd's message names no file
    }
}

EnvList parseEnvFile(const std::string& text, const std::string& source)
{
    EnvList out;
    std::vector<std::string> problems;
    auto all = lines(text);
    for (size_t i = 0; i < all.size(); i++) {
        auto line = all[i];
        auto start = line.find_first_not_of(" \t");
        if (start == std::string::npos || line[start] == '#') continue;
        line = line.substr(start);
        auto where = concat(source, ":", i + 1, ": ");
        auto eq = line.find('=');
        if (eq == std::string::npos) {
            problems.push_back(concat(where, "the line has no '=': write KEY=VALUE"));
            continue;
        }
        auto key = line.substr(0, eq);
        if (!isIdentifier(key)) {
            problems.push_back(concat(where, "what comes before '=' is not a variable name "
                                             "(letters, digits and _, not starting with a digit)"));
            continue;
        }
        out.emplace_back(key, line.substr(eq + 1));
    }
    if (!problems.empty()) throw ConfigError(problems);
    return out;
}

std::string Relay::str() const
{
    return concat(host.find(':') != std::string::npos ? "[" + host + "]" : host, ":", port);
}

Relay parseRelay(const std::string& text, const std::string& source, bool echo)
{
    Relay r;
    r.origin = source;
    auto t = trim(text);
    auto bad = [&](const std::string& why) {
        return Error(source, ": ", echo ? concat("'", t, "' is not") : std::string("not"),
                     " a mail relay: ", why,
                     "; write HOST, HOST:PORT or [IPV6]:PORT, as smtp.example.com:25");
    };
    std::string port;
    if (!t.empty() && t[0] == '[') {
        auto close = t.find(']');
        if (close == std::string::npos) throw bad("the '[' has no ']'");
        r.host = t.substr(1, close - 1);
        if (close + 1 < t.size()) {
            if (t[close + 1] != ':') throw bad("only ':PORT' may follow ']'");
            port = t.substr(close + 2);
            if (port.empty()) throw bad("the port after ':' is empty");
        }
        in6_addr a;
        if (::inet_pton(AF_INET6, r.host.c_str(), &a) != 1)
            throw bad(echo ? "'" + r.host + "' is not an IPv6 address"
                           : "what is in brackets is not an IPv6 address");
    } else {
        auto colon = t.find(':');
        if (colon != std::string::npos && t.find(':', colon + 1) != std::string::npos)
            throw bad("an IPv6 address needs brackets");
        r.host = t.substr(0, colon);
        if (colon != std::string::npos) {
            port = t.substr(colon + 1);
            if (port.empty()) throw bad("the port after ':' is empty");
        }
        if (r.host.empty()) throw bad("the host is empty");
        for (char c : r.host)
            if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_'))
                throw bad(echo ? concat("'", std::string(1, c), "' cannot be in a host name")
                               : "a host name holds letters, digits, '.', '-' and '_' only");
    }
    if (!port.empty()) {
        unsigned long n = 0;
        if (!parseNumber(port, n) || n < 1 || n > 65535)
            throw bad("the port must be a number from 1 to 65535");
        r.port = int(n);
    }
    return r;
}

Relay parseSmtpFile(const std::string& text, const std::string& source)
{
    auto all = lines(text);
    for (size_t i = 0; i < all.size(); i++) {
        auto t = trim(all[i]);
        if (t.empty() || t[0] == '#') continue;
        return parseRelay(t, concat(source, ":", i + 1), false);
    }
    throw Error(source, ": no relay in it: write the mail relay's HOST or HOST:PORT on one line, "
                        "or remove the file");
}

std::optional<std::string> defaultGateway(const std::string& procNetRoute)
{
    std::optional<std::string> best;
    unsigned long bestMetric = 0;
    auto all = lines(procNetRoute);
    // Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT; the first line is
    // that header.
    for (size_t i = 1; i < all.size(); i++) {
        std::istringstream in(all[i]);
        std::vector<std::string> f;
        std::string x;
        while (in >> x)
            f.push_back(x);
        if (f.size() < 8) continue;
        unsigned long dest, gateway, flags, metric, mask;
        if (!parseNumber(f[1], dest, 16) || !parseNumber(f[2], gateway, 16) ||
            !parseNumber(f[3], flags, 16) || !parseNumber(f[6], metric) ||
            !parseNumber(f[7], mask, 16))
            continue;
        constexpr unsigned long up = 0x1, viaGateway = 0x2; // RTF_UP, RTF_GATEWAY
        if (dest != 0 || mask != 0 || (flags & (up | viaGateway)) != (up | viaGateway)) continue;
        if (best && metric >= bestMetric) continue;
        // The kernel prints the address as the 32-bit word it keeps in network order, so its
        // bytes in this machine's memory are the address's bytes in order.
        uint32_t word = uint32_t(gateway);
        in_addr a;
        std::memcpy(&a, &word, sizeof word);
        char text[INET_ADDRSTRLEN];
        ::inet_ntop(AF_INET, &a, text, sizeof text);
        best = text;
        bestMetric = metric;
    }
    return best;
}

namespace {

std::optional<Account> findAccountIf(const std::string& passwd, const auto& match)
{
    for (auto& line : lines(passwd)) {
        auto f = split(line, ':');
        unsigned long uid, gid;
        if (f.size() < 7 || !parseNumber(f[2], uid) || !parseNumber(f[3], gid)) continue;
        Account a{f[0], uid_t(uid), gid_t(gid), f[5]};
        if (match(a)) return a;
    }
    return std::nullopt;
}

} // namespace

std::optional<Account> findAccount(const std::string& passwd, const std::string& name)
{
    return findAccountIf(passwd, [&](const Account& a) { return a.name == name; });
}

std::optional<Account> findAccount(const std::string& passwd, uid_t uid)
{
    return findAccountIf(passwd, [&](const Account& a) { return a.uid == uid; });
}

std::vector<gid_t> accountGroups(const std::string& group, const Account& account)
{
    std::vector<gid_t> out{account.gid};
    for (auto& line : lines(group)) {
        auto f = split(line, ':');
        unsigned long gid;
        if (f.size() < 4 || !parseNumber(f[2], gid) || gid_t(gid) == account.gid) continue;
        for (auto& member : split(f[3], ','))
            if (member == account.name) {
                out.push_back(gid_t(gid));
                break;
            }
    }
    return out;
}

} // namespace grocker::entrypoint
