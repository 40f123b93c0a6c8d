#include "accounts.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"

#include <sstream>

namespace grocker::sandbox {

namespace {

bool numeric(const std::string& s)
{
    return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

// A line's fields as getline splits them: a trailing empty field is dropped ("a:b:" has two).
std::vector<std::string> fields(const std::string& line)
{
    std::vector<std::string> f;
    std::istringstream s(line);
    for (std::string x; std::getline(s, x, ':');)
        f.push_back(x);
    return f;
}

} // namespace

std::string readAccountFile(const std::filesystem::path& path)
{
    try {
        return readFile(path);
    } catch (SysError&) {
        return "";
    }
}

UserIds resolveUser(const std::string& user, std::string_view passwd, std::string_view group)
{
    UserIds ids;
    if (user.empty()) return ids;
    std::string name = user, groupName;
    if (auto c = user.find(':'); c != std::string::npos) {
        name = user.substr(0, c);
        groupName = user.substr(c + 1);
    }
    bool found = false;
    std::istringstream passwdLines{std::string(passwd)};
    for (std::string line; std::getline(passwdLines, line);) {
        auto f = fields(line);
        if (f.size() < 4) continue;
        if (f[0] == name || (numeric(name) && f[2] == name)) {
            ids.uid = uid_t(std::stoul(f[2]));
            ids.gid = gid_t(std::stoul(f[3]));
            found = true;
            break;
        }
    }
    if (!found) {
        if (!numeric(name)) throw Error("user '", name, "' is not in the image's /etc/passwd");
        ids.uid = uid_t(std::stoul(name));
        ids.gid = ids.uid;
    }
    if (!groupName.empty()) {
        if (numeric(groupName)) {
            ids.gid = gid_t(std::stoul(groupName));
        } else {
            bool g = false;
            std::istringstream groupLines{std::string(group)};
            for (std::string line; std::getline(groupLines, line);) {
                auto c1 = line.find(':');
                if (line.substr(0, c1) != groupName) continue;
                auto c2 = line.find(':', c1 + 1), c3 = line.find(':', c2 + 1);
                ids.gid = gid_t(std::stoul(line.substr(c2 + 1, c3 - c2 - 1)));
                g = true;
            }
            if (!g) throw Error("group '", groupName, "' is not in the image's /etc/group");
        }
    }
    ids.groups = {ids.gid};
    return ids;
}

std::optional<SubordinateRange> findSubordinate(std::string_view text, const std::string& user,
                                                uid_t uid)
{
    std::istringstream lines{std::string(text)};
    for (std::string line; std::getline(lines, line);) {
        std::istringstream s(line);
        std::string name, start, count;
        if (!std::getline(s, name, ':') || !std::getline(s, start, ':') || !std::getline(s, count))
            continue;
        if (name != user && name != std::to_string(uid)) continue;
        try {
            unsigned long st = std::stoul(start), n = std::stoul(count);
            if (n == 0) continue;
            return SubordinateRange{st, n};
        } catch (std::exception&) {
            continue;
        }
    }
    return std::nullopt;
}

std::optional<Account> findAccountInRange(std::string_view text, unsigned long start,
                                          unsigned long count)
{
    std::istringstream lines{std::string(text)};
    for (std::string line; std::getline(lines, line);) {
        auto f = fields(line);
        if (f.size() < 3) continue;
        unsigned long id;
        try {
            id = std::stoul(f[2]);
        } catch (std::exception&) {
            continue;
        }
        if (id >= start && id - start < count) return Account{f[0], id};
    }
    return std::nullopt;
}

} // namespace grocker::sandbox
