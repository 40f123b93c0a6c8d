// diff: why two images differ (oci::diffImages), printed for a person or as JSON.

#include "commands.hh"
#include "grocker/error.hh"
#include "grocker/oci/image-diff.hh"

#include <cstdio>
#include <iostream>
#include <sstream>

namespace grocker {

using namespace grocker::oci;
using nlohmann::json;

namespace {

struct DiffCommandOptions {
    std::string first, second;
    bool json = false;
    bool quiet = false;
    size_t maxFiles = 200;
};

// --- values, as a person reads them ----------------------------------------------------------

// Control characters and bytes that are not printable ASCII as \xNN, so one entry is one line
// whatever its name.
std::string printable(std::string_view s)
{
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out += char(c);
        else if (c == '\\')
            out += "\\\\";
        else {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        }
    }
    return out;
}

std::string shorten(std::string s, size_t max = 120)
{
    if (s.size() > max) s = s.substr(0, max) + "...";
    return s;
}

std::string imagePath(const std::string& path)
{
    return "/" + path;
}

std::string octal(uint32_t mode)
{
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04o", mode);
    return buf;
}

std::string shortDigest(const std::string& sha256Hex)
{
    return "sha256:" + sha256Hex.substr(0, 12);
}

std::string typeName(TarEntry::Type t)
{
    switch (t) {
    case TarEntry::Regular:
        return "file";
    case TarEntry::HardLink:
        return "hardlink";
    case TarEntry::Symlink:
        return "symlink";
    case TarEntry::CharDevice:
        return "char-device";
    case TarEntry::BlockDevice:
        return "block-device";
    case TarEntry::Directory:
        return "directory";
    case TarEntry::Fifo:
        return "fifo";
    }
    return "unknown";
}

std::string timeText(int64_t seconds, uint32_t nsec)
{
    auto t = rfc3339(seconds);
    if (nsec == 0) return t;
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%09u", nsec);
    return t.substr(0, t.size() - 1) + frac + "Z";
}

std::string xattrText(const std::optional<std::string>& v)
{
    if (!v) return "(none)";
    bool text = true;
    for (unsigned char c : *v)
        text = text && c >= 0x20 && c < 0x7f;
    if (text) return shorten(json(*v).dump(), 60);
    return shorten("0x" + hexString(*v), 60);
}

std::string valueText(const std::optional<json>& v)
{
    return v ? shorten(printable(v->dump())) : "(none)";
}

// What an entry is, in a few words: "file 0644 0:0, 12 bytes sha256:abcdef012345".
std::string describe(const FileInfo& f)
{
    switch (f.marker()) {
    case FileInfo::Marker::Whiteout:
        return "whiteout: removes " + printable(imagePath(f.whiteoutTarget())) +
               " of the layers below";
    case FileInfo::Marker::Opaque:
        return "opaque marker: hides what the layers below have in " +
               printable(imagePath(f.whiteoutTarget()));
    case FileInfo::Marker::None:
        break;
    }
    std::string out = concat(typeName(f.type), " ", octal(f.mode), " ", f.uid, ":", f.gid);
    if (f.type == TarEntry::Regular) out += concat(", ", f.size, " bytes ", shortDigest(f.sha256));
    if (f.type == TarEntry::Symlink) out += " -> " + printable(f.linkTarget);
    if (f.type == TarEntry::HardLink) out += ", link to " + printable(imagePath(f.linkTarget));
    if (f.type == TarEntry::CharDevice || f.type == TarEntry::BlockDevice)
        out += concat(", device ", f.devMajor, ",", f.devMinor);
    if (!f.xattrs.empty()) {
        std::vector<std::string> names;
        for (auto& [name, value] : f.xattrs)
            names.push_back(printable(name));
        out += ", xattrs " + join(names, " ");
    }
    return out;
}

// "mode 0644 -> 0755; mtime ... -> ..." for the attributes that changed.
std::string describeChanges(const FileChange& c)
{
    auto& a = *c.before;
    auto& b = *c.after;
    auto names = [](const FileInfo& f) {
        return f.uname.empty() && f.gname.empty() ? std::string("(none)")
                                                  : printable(f.uname + ":" + f.gname);
    };
    auto content = [](const FileInfo& f) {
        return f.type == TarEntry::Regular ? concat(f.size, " bytes ", shortDigest(f.sha256))
                                           : std::string("(none)");
    };
    std::vector<std::string> parts;
    if (c.attributes & AttrType)
        parts.push_back("type " + typeName(a.type) + " -> " + typeName(b.type));
    if (c.attributes & AttrMode) parts.push_back("mode " + octal(a.mode) + " -> " + octal(b.mode));
    if (c.attributes & AttrOwner)
        parts.push_back(concat("owner ", a.uid, ":", a.gid, " -> ", b.uid, ":", b.gid));
    if (c.attributes & AttrOwnerNames)
        parts.push_back("owner names " + names(a) + " -> " + names(b));
    if (c.attributes & AttrMtime)
        parts.push_back("mtime " + timeText(a.mtime, a.mtimeNsec) + " -> " +
                        timeText(b.mtime, b.mtimeNsec));
    if (c.attributes & AttrContent) parts.push_back("content " + content(a) + " -> " + content(b));
    if (c.attributes & AttrLinkTarget)
        parts.push_back("link target " + printable(a.linkTarget) + " -> " +
                        printable(b.linkTarget));
    if (c.attributes & AttrDevice)
        parts.push_back(
            concat("device ", a.devMajor, ",", a.devMinor, " -> ", b.devMajor, ",", b.devMinor));
    if (c.attributes & AttrXattrs)
        for (auto& x : xattrChanges(a, b))
            parts.push_back("xattr " + printable(x.name) + " " + xattrText(x.before) + " -> " +
                            xattrText(x.after));
    return join(parts, "; ");
}

// --- text ------------------------------------------------------------------------------------

void printValueChanges(std::ostream& out, const std::vector<ValueChange>& changes)
{
    for (auto& c : changes)
        out << "  " << printable(c.path.empty() ? "(whole)" : c.path) << ": " << valueText(c.before)
            << " -> " << valueText(c.after) << "\n";
}

std::string layerHeading(const LayerDiff& l)
{
    auto head = concat("layer ", l.index + 1, ": ");
    auto digest = [](const Descriptor& d) {
        return d.digest.algorithm() + ":" + d.digest.shortHex();
    };
    switch (l.verdict) {
    case LayerDiff::Verdict::Added:
        return head + concat("only in the second image: ", digest(*l.after), " (",
                             plural(l.entriesAfter, "entry", "entries"), ")");
    case LayerDiff::Verdict::Removed:
        return head + concat("only in the first image: ", digest(*l.before), " (",
                             plural(l.entriesBefore, "entry", "entries"), ")");
    case LayerDiff::Verdict::SameBlob:
        return head + digest(*l.before) + " in both, described differently";
    default:
        break;
    }
    head += digest(*l.before) + " -> " + digest(*l.after) + ": ";
    switch (l.verdict) {
    case LayerDiff::Verdict::SameTar:
        return head + "same files, different archive bytes (compression: the same tar, diff_id " +
               l.diffIdBefore->algorithm() + ":" + l.diffIdBefore->shortHex() + ")";
    case LayerDiff::Verdict::SameFiles:
        return head + "same files, different archive bytes (tar encoding: same entries, same "
                      "order, other headers or padding)";
    case LayerDiff::Verdict::SameFilesOrder:
        return head + "same files, different archive bytes (entry order)";
    default:
        return head + concat(l.added, " added, ", l.removed, " removed, ", l.changed, " changed (",
                             l.entriesBefore, " -> ", plural(l.entriesAfter, "entry", "entries"),
                             ")");
    }
}

void printText(std::ostream& out, const ImageDiff& d, const std::string& first,
               const std::string& second)
{
    if (d.identical()) {
        out << first << " and " << second << " are identical (" << d.before.digest.str() << ", "
            << plural(d.layersBefore, "layer", "layers") << ")\n";
        return;
    }
    out << "--- " << first << " " << d.before.digest.str() << " ("
        << plural(d.layersBefore, "layer", "layers") << ")\n";
    out << "+++ " << second << " " << d.after.digest.str() << " ("
        << plural(d.layersAfter, "layer", "layers") << ")\n";
    if (!d.manifest.empty() || d.manifestBytesOnly) {
        out << "\nmanifest:\n";
        if (d.manifestBytesOnly) out << "  same fields, different bytes (JSON formatting)\n";
        printValueChanges(out, d.manifest);
    }
    if (!d.config.empty() || d.configBytesOnly) {
        out << "\nconfig:\n";
        if (d.configBytesOnly) out << "  same fields, different bytes (JSON formatting)\n";
        printValueChanges(out, d.config);
    }
    for (auto& l : d.layers) {
        out << "\n" << layerHeading(l) << "\n";
        printValueChanges(out, l.descriptor);
        for (auto& f : l.files) {
            auto path = printable(imagePath(f.path()));
            switch (f.kind) {
            case FileChange::Kind::Added:
                out << "  + " << path << "  " << describe(*f.after) << "\n";
                break;
            case FileChange::Kind::Removed:
                out << "  - " << path << "  " << describe(*f.before) << "\n";
                break;
            case FileChange::Kind::Changed:
                out << "  ~ " << path << "  " << describeChanges(f) << "\n";
                break;
            }
        }
        uint64_t all = l.added + l.removed + l.changed;
        if (all > l.files.size())
            out << "  ... and " << all - l.files.size() << " more (--max-files)\n";
    }
    out << "\n"
        << plural(d.layers.size(), "layer differs", "layers differ") << ", "
        << plural(d.filesAdded(), "file", "files") << " added, " << d.filesRemoved() << " removed, "
        << d.filesChanged() << " changed\n";
}

// --- JSON ------------------------------------------------------------------------------------

json toJson(const std::vector<ValueChange>& changes)
{
    json out = json::array();
    for (auto& c : changes) {
        json j = {{"path", c.path}};
        if (c.before) j["old"] = *c.before;
        if (c.after) j["new"] = *c.after;
        out.push_back(std::move(j));
    }
    return out;
}

json toJson(const FileInfo& f)
{
    json j = {{"path", imagePath(f.path)},
              {"type", typeName(f.type)},
              {"mode", octal(f.mode)},
              {"uid", f.uid},
              {"gid", f.gid},
              {"mtime", f.mtime}};
    if (!f.uname.empty()) j["uname"] = f.uname;
    if (!f.gname.empty()) j["gname"] = f.gname;
    if (f.mtimeNsec) j["mtimeNsec"] = f.mtimeNsec;
    if (f.type == TarEntry::Regular) {
        j["size"] = f.size;
        j["sha256"] = "sha256:" + f.sha256;
    }
    if (f.type == TarEntry::Symlink) j["linkTarget"] = f.linkTarget;
    if (f.type == TarEntry::HardLink) j["linkTarget"] = imagePath(f.linkTarget);
    if (f.type == TarEntry::CharDevice || f.type == TarEntry::BlockDevice)
        j["device"] = {f.devMajor, f.devMinor};
    if (f.marker() == FileInfo::Marker::Whiteout) j["whiteout"] = imagePath(f.whiteoutTarget());
    if (f.marker() == FileInfo::Marker::Opaque) j["opaque"] = imagePath(f.whiteoutTarget());
    if (!f.xattrs.empty()) {
        // Values in hex: security.capability and most others are binary.
        json x = json::object();
        for (auto& [name, value] : f.xattrs)
            x[name] = hexString(value);
        j["xattrs"] = x;
    }
    return j;
}

json layerSide(const std::optional<Descriptor>& d, const std::optional<Digest>& diffId)
{
    if (!d) return nullptr;
    json j = oci::toJson(*d);
    if (diffId) j["diffId"] = diffId->str();
    return j;
}

const char* verdictName(LayerDiff::Verdict v)
{
    switch (v) {
    case LayerDiff::Verdict::Added:
        return "added";
    case LayerDiff::Verdict::Removed:
        return "removed";
    case LayerDiff::Verdict::SameBlob:
        return "same-blob";
    case LayerDiff::Verdict::SameTar:
        return "same-tar";
    case LayerDiff::Verdict::SameFiles:
        return "same-files";
    case LayerDiff::Verdict::SameFilesOrder:
        return "same-files-other-order";
    case LayerDiff::Verdict::FilesDiffer:
        return "files-differ";
    }
    return "unknown";
}

json toJson(const LayerDiff& l)
{
    json j = {{"index", l.index + 1},
              {"verdict", verdictName(l.verdict)},
              {"old", layerSide(l.before, l.diffIdBefore)},
              {"new", layerSide(l.after, l.diffIdAfter)},
              {"descriptor", toJson(l.descriptor)}};
    if (!l.read()) return j;
    j["entries"] = {{"old", l.entriesBefore}, {"new", l.entriesAfter}};
    j["added"] = l.added;
    j["removed"] = l.removed;
    j["changed"] = l.changed;
    json files = json::array();
    for (auto& f : l.files) {
        json c = {{"path", imagePath(f.path())}};
        c["change"] = f.kind == FileChange::Kind::Added     ? "added"
                      : f.kind == FileChange::Kind::Removed ? "removed"
                                                            : "changed";
        if (f.kind == FileChange::Kind::Changed) c["attributes"] = attributeNames(f.attributes);
        if (f.before) c["old"] = toJson(*f.before);
        if (f.after) c["new"] = toJson(*f.after);
        files.push_back(std::move(c));
    }
    j["files"] = std::move(files);
    j["filesNotShown"] = l.added + l.removed + l.changed - l.files.size();
    return j;
}

json toJson(const ImageDiff& d, const std::string& first, const std::string& second)
{
    json layers = json::array();
    for (auto& l : d.layers)
        layers.push_back(toJson(l));
    return {
        {"identical", d.identical()},
        {"old", {{"name", first}, {"digest", d.before.digest.str()}, {"layers", d.layersBefore}}},
        {"new", {{"name", second}, {"digest", d.after.digest.str()}, {"layers", d.layersAfter}}},
        {"manifest", toJson(d.manifest)},
        {"manifestBytesOnly", d.manifestBytesOnly},
        {"config", toJson(d.config)},
        {"configBytesOnly", d.configBytesOnly},
        {"layers", std::move(layers)},
        {"summary",
         {{"layers", d.layers.size()},
          {"added", d.filesAdded()},
          {"removed", d.filesRemoved()},
          {"changed", d.filesChanged()}}}};
}

// --- the command -----------------------------------------------------------------------------

int runDiff(const GlobalOptions& g, const DiffCommandOptions& o)
{
    auto first = ImageRef::parse(o.first);
    auto second = ImageRef::parse(o.second);
    GlobalOptions options = g;
    options.quiet = g.quiet || o.quiet;
    Store store = openStore(options);
    // Manifests and configs first; from a registry, layers only where the comparison needs them.
    Image a = loadAnyImage(store, first, options, false);
    Image b = loadAnyImage(store, second, options, false);
    // The manifest digests are the answer --quiet asks for.
    if (o.quiet) return a.manifestDescriptor.digest == b.manifestDescriptor.digest ? 0 : 1;
    auto needed = layersToRead(a, b);
    auto layersOf = [&](const Image& image) {
        std::vector<Descriptor> out;
        for (auto& l : needed)
            for (auto& m : image.manifest.layers)
                if (m.digest == l.digest) {
                    out.push_back(l);
                    break;
                }
        return out;
    };
    fetchAnyLayers(store, first, layersOf(a), options);
    fetchAnyLayers(store, second, layersOf(b), options);
    ImageDiff d;
    try {
        d = diffImages(store, a, b, {.maxFiles = o.maxFiles});
    } catch (Error& e) {
        e.addContext(concat("while comparing ", first.str(), " and ", second.str()));
        throw;
    }
    std::ostringstream out;
    if (o.json)
        out << toJson(d, first.str(), second.str()).dump(2) << "\n";
    else
        printText(out, d, first.str(), second.str());
    std::cout << out.str() << std::flush;
    return d.identical() ? 0 : 1;
}

} // namespace

Runners registerDiffCommand(CLI::App& app, GlobalOptions& global)
{
    static DiffCommandOptions o;
    auto* diff = app.add_subcommand(
        "diff", "Show why two images differ: manifest, config, and the files of each layer");
    addProgressOption(diff, global);
    diff->add_option("IMAGE1", o.first, "The first image (any location, docker:// included)")
        ->required();
    diff->add_option("IMAGE2", o.second, "The second image")->required();
    diff->add_flag("--json", o.json, "Print the differences as JSON");
    diff->add_flag("-q,--quiet", o.quiet, "Print nothing: only the exit status tells");
    diff->add_option("--max-files", o.maxFiles,
                     "File changes shown per layer (default 200; 0 shows them all)")
        // CLI11's own range check prints its bound as a 300-digit number.
        ->check(CLI::Validator(
            [](std::string& v) {
                if (!v.empty() && v.size() < 10 &&
                    v.find_first_not_of("0123456789") == std::string::npos)
                    return std::string();
                return "'" + v + "' is not a number of files: give 0 (all of them) or more";
            },
            ""));
    diff->footer("Exit status: 0 when the images are identical (same manifest digest), 1 when "
                 "they differ, and 1 too when the comparison failed (then stderr has a "
                 "'grocker: error: ...' line and stdout is empty); 2 for misuse.");
    return {{diff, [&global] { return runDiff(global, o); }}};
}

} // namespace grocker
