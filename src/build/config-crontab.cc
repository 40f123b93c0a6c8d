// Crontab lines of `services: cron:`, checked as Debian's cron reads them, so that a build never
// makes an image whose cron instance refuses its crontab.
#include "config-checks.hh"

namespace grocker::config {

namespace {

// A time field of a crontab line, as Debian's cron reads it (entry.c of vixie cron 3.0).
struct CronField {
    std::string_view name; // in messages
    int min, max;
    std::span<const std::string_view>
        names;               // the values from `min` on by name; empty: numbers only
    std::string_view values; // in messages
};

constexpr std::string_view monthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                           "jul", "aug", "sep", "oct", "nov", "dec"};
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
        if (value < f.min || value > f.max)
            return concat(f.name, " ", quote(text), " is out of range (", f.values, ")");
        return std::nullopt;
    }
    for (size_t i = 0; i < f.names.size(); i++)
        if (text.size() == 3 &&
            std::equal(text.begin(), text.end(), f.names[i].begin(),
                       [](char a, char b) { return std::tolower((unsigned char)a) == b; })) {
            value = f.min + int(i);
            return std::nullopt;
        }
    return concat(f.name, " ", quote(text), " is not ",
                  f.names.empty() ? "a number" : "a number or a name", " (", f.values, ")");
}

// A field: a list of `*`, `N` or `N-M` separated by ',', `*` and ranges with an optional `/STEP`.
Problem checkCronField(std::string_view field, const CronField& f)
{
    for (size_t pos = 0; pos <= field.size();) {
        auto comma = std::min(field.find(',', pos), field.size());
        auto item = field.substr(pos, comma - pos);
        pos = comma + 1;
        if (item.empty())
            return concat(f.name, " ", quote(field), " has an empty item between ','");
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
                if (from > to)
                    return concat(f.name, " ", quote(range),
                                  " runs backwards: cron would match nothing with it");
                stepped = true;
            }
        }
        if (slash == std::string_view::npos) continue;
        if (!stepped)
            return concat(f.name, " ", quote(item),
                          ": a step follows '*' or a range (like */15 or 0-30/15)");
        auto step = item.substr(slash + 1);
        if (!isDigits(step) || step.size() > 6 || std::stoi(std::string(step)) == 0)
            return concat(f.name, " ", quote(item), ": the step after '/' must be a number from 1");
    }
    return std::nullopt;
}

} // namespace

// A line of a user crontab (crontab(5), no user field): five time fields or an @nickname,
// then a command; or a NAME=value assignment.
Problem checkCronLine(std::string_view text)
{
    auto line = trimmed(text);
    auto notALine = [&] {
        return concat(
            quote(line),
            " is not a crontab line (five time fields or @hourly, @daily..., then a command)");
    };
    // cron reads its file line by line: a '\r' or '\n' inside would cut the job in two.
    if (std::any_of(line.begin(), line.end(),
                    [](unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }))
        return concat(
            quote(line),
            " holds a line break or another control character: give each job its own item");
    if (line.starts_with('@')) {
        static constexpr std::string_view nicknames[] = {"@reboot",   "@yearly", "@annually",
                                                         "@monthly",  "@weekly", "@daily",
                                                         "@midnight", "@hourly"};
        auto end = line.find_first_of(" \t");
        if (end == std::string_view::npos || std::find(std::begin(nicknames), std::end(nicknames),
                                                       line.substr(0, end)) == std::end(nicknames))
            return notALine();
        return std::nullopt;
    }
    if (auto eq = line.find('=');
        eq != std::string_view::npos && isIdentifier(trimmed(line.substr(0, eq))))
        return std::nullopt;
    size_t pos = 0;
    for (const auto& f : cronFields) {
        auto end = line.find_first_of(" \t", pos);
        if (end == std::string_view::npos) return notALine(); // a field or the command missing
        if (auto p = checkCronField(line.substr(pos, end - pos), f))
            return concat(quote(line), ": ", *p);
        pos = line.find_first_not_of(" \t", end);
    }
    if (pos == std::string_view::npos) return notALine();
    return std::nullopt;
}

} // namespace grocker::config
