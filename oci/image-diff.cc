#include "grocker/oci/image-diff.hh"

#include "grocker/error.hh"
#include "grocker/oci/store.hh"
#include "layer-reader.hh"
#include "unpack-paths.hh"

#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <string_view>

namespace grocker::oci {

using namespace unpacking;
using nlohmann::json;

namespace {

// --- the entries of a layer, compactly --------------------------------------------------------

// A string of a Listing's pool.
struct PoolString {
    uint32_t offset = 0, size = 0;
};

// The entries of one layer: fixed-size records whose strings (paths, link targets, owner names,
// digests, xattrs) are slices of one pool, so a layer of 100,000 entries costs about ten
// megabytes and its names, not a hundred thousand small allocations.
class Listing {
  public:
    struct Record {
        PoolString path, link, uname, gname, sha256, xattrs;
        uint64_t uid = 0, gid = 0, size = 0;
        int64_t mtime = 0;
        uint32_t mtimeNsec = 0, mode = 0, devMajor = 0, devMinor = 0;
        uint32_t order = 0; // position in the archive
        TarEntry::Type type = TarEntry::Regular;
    };

    explicit Listing(std::string what) : what_(std::move(what)) {}

    void add(archive* a, archive_entry* entry);
    // By path, entries of one path in archive order.
    void sort();

    const std::vector<Record>& records() const { return records_; }
    std::string_view str(PoolString s) const { return {pool_.data() + s.offset, s.size}; }
    FileInfo info(const Record& r) const;

  private:
    PoolString intern(std::string_view s);
    std::string what_;
    std::vector<Record> records_;
    std::string pool_;
    std::vector<char> buffer_;
    Sha256 hash_;
};

PoolString Listing::intern(std::string_view s)
{
    if (s.empty()) return {};
    if (pool_.size() + s.size() > std::numeric_limits<uint32_t>::max())
        throw Error("layer ", what_,
                    ": its names, link targets and extended attributes make more than 4 GiB; "
                    "too many to compare");
    PoolString out{uint32_t(pool_.size()), uint32_t(s.size())};
    pool_.append(s);
    return out;
}

// "./usr//bin/" is "usr/bin", as the unpacker reads it; a name that climbs above the root stays
// as the archive has it (the unpacker refuses it; the diff shows it).
std::string cleanPath(std::string_view name)
{
    auto parts = splitPath(name);
    return parts ? joinPath(*parts, parts->size()) : std::string(name);
}

// Extended attributes as one pool string: for each, sorted by name, the name's length, the name,
// the value's length, the value.
std::string encodeXattrs(std::vector<std::pair<std::string, std::string>> xattrs)
{
    std::sort(xattrs.begin(), xattrs.end());
    std::string out;
    auto put = [&](const std::string& s) {
        uint32_t n = uint32_t(s.size());
        out.append(reinterpret_cast<const char*>(&n), sizeof n);
        out += s;
    };
    for (auto& [name, value] : xattrs) {
        put(name);
        put(value);
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> decodeXattrs(std::string_view s)
{
    std::vector<std::pair<std::string, std::string>> out;
    auto take = [&] {
        uint32_t n;
        std::memcpy(&n, s.data(), sizeof n);
        std::string value(s.substr(sizeof n, n));
        s.remove_prefix(sizeof n + n);
        return value;
    };
    while (!s.empty()) {
        auto name = take();
        out.emplace_back(std::move(name), take());
    }
    return out;
}

TarEntry::Type typeOf(archive_entry* entry)
{
    if (archive_entry_hardlink(entry)) return TarEntry::HardLink;
    switch (archive_entry_filetype(entry)) {
    case AE_IFLNK:
        return TarEntry::Symlink;
    case AE_IFCHR:
        return TarEntry::CharDevice;
    case AE_IFBLK:
        return TarEntry::BlockDevice;
    case AE_IFDIR:
        return TarEntry::Directory;
    case AE_IFIFO:
        return TarEntry::Fifo;
    default:
        return TarEntry::Regular;
    }
}

void Listing::add(archive* a, archive_entry* entry)
{
    const char* rawName = archive_entry_pathname(entry);
    if (!rawName) rawName = archive_entry_pathname_utf8(entry);
    if (!rawName) throw Error("layer ", what_, ": an entry has a name that cannot be read");
    if (records_.size() == std::numeric_limits<uint32_t>::max())
        throw Error("layer ", what_, ": more than 2^32 entries; too many to compare");
    Record r;
    r.order = uint32_t(records_.size());
    r.type = typeOf(entry);
    r.path = intern(cleanPath(rawName));
    r.mode = uint32_t(archive_entry_perm(entry));
    r.uid = uint64_t(archive_entry_uid(entry));
    r.gid = uint64_t(archive_entry_gid(entry));
    if (auto* u = archive_entry_uname(entry)) r.uname = intern(u);
    if (auto* g = archive_entry_gname(entry)) r.gname = intern(g);
    r.mtime = archive_entry_mtime(entry);
    r.mtimeNsec = uint32_t(archive_entry_mtime_nsec(entry));
    if (auto* h = archive_entry_hardlink(entry))
        r.link = intern(cleanPath(h));
    else if (auto* s = archive_entry_symlink(entry))
        r.link = intern(s);
    if (r.type == TarEntry::CharDevice || r.type == TarEntry::BlockDevice) {
        r.devMajor = uint32_t(archive_entry_rdevmajor(entry));
        r.devMinor = uint32_t(archive_entry_rdevminor(entry));
    }
    if (archive_entry_xattr_reset(entry) > 0) {
        std::vector<std::pair<std::string, std::string>> xattrs;
        std::set<std::string> seen;
        const char* name;
        const void* value;
        size_t size;
        // libarchive reports an xattr twice when the archive carries it both as SCHILY.xattr and
        // LIBARCHIVE.xattr (as its own pax writer does).
        while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK)
            if (seen.insert(name).second)
                xattrs.emplace_back(name, std::string(static_cast<const char*>(value), size));
        r.xattrs = intern(encodeXattrs(std::move(xattrs)));
    }
    if (r.type == TarEntry::Regular) {
        buffer_.resize(size_t(1) << 17);
        for (;;) {
            la_ssize_t n = archive_read_data(a, buffer_.data(), buffer_.size());
            if (n == 0) break;
            if (n < 0)
                throw Error("layer ", what_, ": unable to read the content of '", rawName,
                            "': ", archive_error_string(a));
            hash_.update(buffer_.data(), size_t(n));
            r.size += uint64_t(n);
        }
        r.sha256 = intern(hash_.finish().hex());
    }
    records_.push_back(r);
}

void Listing::sort()
{
    std::sort(records_.begin(), records_.end(), [&](const Record& x, const Record& y) {
        auto px = str(x.path), py = str(y.path);
        return px != py ? px < py : x.order < y.order;
    });
}

FileInfo Listing::info(const Record& r) const
{
    FileInfo f;
    f.path = str(r.path);
    f.type = r.type;
    f.mode = r.mode;
    f.uid = r.uid;
    f.gid = r.gid;
    f.uname = str(r.uname);
    f.gname = str(r.gname);
    f.mtime = r.mtime;
    f.mtimeNsec = r.mtimeNsec;
    f.size = r.size;
    f.sha256 = str(r.sha256);
    f.linkTarget = str(r.link);
    f.devMajor = r.devMajor;
    f.devMinor = r.devMinor;
    f.xattrs = decodeXattrs(str(r.xattrs));
    return f;
}

Listing readListing(const Store& store, const Descriptor& layer)
{
    std::string what = layer.digest.str();
    Listing listing(what);
    auto fd = store.openBlob(layer.digest, "layer " + what);
    readLayerEntries(fd.get(), what, layer.digest,
                     [&](archive* a, archive_entry* entry) { listing.add(a, entry); });
    listing.sort();
    return listing;
}

// The FileAttribute bits in which two entries differ.
unsigned compareRecords(const Listing& la, const Listing::Record& a, const Listing& lb,
                        const Listing::Record& b)
{
    unsigned bits = 0;
    auto differ = [&](PoolString x, PoolString y) { return la.str(x) != lb.str(y); };
    if (a.type != b.type) bits |= AttrType;
    if (a.mode != b.mode) bits |= AttrMode;
    if (a.uid != b.uid || a.gid != b.gid) bits |= AttrOwner;
    if (differ(a.uname, b.uname) || differ(a.gname, b.gname)) bits |= AttrOwnerNames;
    if (a.mtime != b.mtime || a.mtimeNsec != b.mtimeNsec) bits |= AttrMtime;
    if (a.size != b.size || differ(a.sha256, b.sha256)) bits |= AttrContent;
    if (differ(a.link, b.link)) bits |= AttrLinkTarget;
    if (a.devMajor != b.devMajor || a.devMinor != b.devMinor) bits |= AttrDevice;
    if (differ(a.xattrs, b.xattrs)) bits |= AttrXattrs;
    return bits;
}

// --- JSON, field by field ---------------------------------------------------------------------

std::string member(const std::string& prefix, const std::string& key)
{
    if (isIdentifier(key)) return prefix.empty() ? key : prefix + "." + key;
    return prefix + "[" + json(key).dump() + "]";
}

std::optional<json> valueOf(const json& j)
{
    return j;
}

// An Env array ("KEY=VALUE" strings) compared by key: a variable added in the middle is one
// change, not one per index after it.
bool diffEnv(const json& a, const json& b, const std::string& path, std::vector<ValueChange>& out)
{
    auto asMap = [](const json& env) -> std::optional<std::map<std::string, json>> {
        std::map<std::string, json> m;
        for (auto& e : env) {
            if (!e.is_string()) return std::nullopt;
            auto s = e.get<std::string>();
            auto eq = s.find('=');
            m[s.substr(0, eq)] = eq == std::string::npos ? json(nullptr) : json(s.substr(eq + 1));
        }
        return m;
    };
    auto ma = asMap(a), mb = asMap(b);
    if (!ma || !mb) return false;
    size_t before = out.size();
    std::set<std::string> keys;
    for (auto& [k, v] : *ma)
        keys.insert(k);
    for (auto& [k, v] : *mb)
        keys.insert(k);
    for (auto& k : keys) {
        auto x = ma->find(k), y = mb->find(k);
        std::optional<json> vx, vy;
        if (x != ma->end()) vx = x->second;
        if (y != mb->end()) vy = y->second;
        if (vx != vy) out.push_back({path + "[" + json(k).dump() + "]", vx, vy});
    }
    // Only the order (or a repeated key) differs: the arrays as they are.
    if (out.size() == before) out.push_back({path, valueOf(a), valueOf(b)});
    return true;
}

void diffJsonInto(const json& a, const json& b, const std::string& path,
                  std::vector<ValueChange>& out)
{
    if (a == b) return;
    if (a.is_object() && b.is_object()) {
        std::set<std::string> keys;
        for (auto& [k, v] : a.items())
            keys.insert(k);
        for (auto& [k, v] : b.items())
            keys.insert(k);
        for (auto& k : keys) {
            auto p = member(path, k);
            bool inA = a.contains(k), inB = b.contains(k);
            static const json none = json::object();
            // An object one side lacks (annotations, Labels) is compared key by key with an
            // empty one: a label per line, not the whole map on one.
            auto& only = inA ? a.at(k) : b.at(k);
            if (inA && inB)
                diffJsonInto(a.at(k), b.at(k), p, out);
            else if (only.is_object() && !only.empty())
                diffJsonInto(inA ? only : none, inB ? only : none, p, out);
            else
                out.push_back({p, inA ? valueOf(a.at(k)) : std::nullopt,
                               inB ? valueOf(b.at(k)) : std::nullopt});
        }
        return;
    }
    if (a.is_array() && b.is_array()) {
        if ((path == "Env" || path.ends_with(".Env")) && diffEnv(a, b, path, out)) return;
        for (size_t i = 0; i < std::max(a.size(), b.size()); i++) {
            auto p = concat(path, "[", i, "]");
            if (i < a.size() && i < b.size())
                diffJsonInto(a[i], b[i], p, out);
            else
                out.push_back({p, i < a.size() ? valueOf(a[i]) : std::nullopt,
                               i < b.size() ? valueOf(b[i]) : std::nullopt});
        }
        return;
    }
    out.push_back({path, valueOf(a), valueOf(b)});
}

// A descriptor's fields but its digest and size, which the diff compares apart.
json descriptorFields(json d)
{
    if (d.is_object()) {
        d.erase("digest");
        d.erase("size");
    }
    return d;
}

// The manifest's fields but its layers and its config's digest and size.
json manifestFields(json m)
{
    if (!m.is_object()) return m;
    m.erase("layers");
    if (m.contains("config")) m["config"] = descriptorFields(m["config"]);
    return m;
}

std::optional<Digest> diffIdAt(const Image& image, size_t i)
{
    auto ids = image.config.diffIds();
    return i < ids.size() ? std::optional(ids[i]) : std::nullopt;
}

// Whether the files of the layers at `i` must be read: they differ by digest and by diff_id, or
// only one image has a layer there.
bool mustRead(const Image& before, const Image& after, size_t i)
{
    auto& la = before.manifest.layers;
    auto& lb = after.manifest.layers;
    if (i >= la.size() || i >= lb.size()) return true;
    if (la[i].digest == lb[i].digest) return false;
    auto a = diffIdAt(before, i), b = diffIdAt(after, i);
    return !a || !b || *a != *b;
}

} // namespace

FileInfo::Marker FileInfo::marker() const
{
    auto name = lastRawComponent(path);
    if (name == opaqueMarker) return Marker::Opaque;
    // Other ".wh..wh." names are aufs bookkeeping, which the unpacker skips: shown as they are.
    if (name.starts_with(whiteoutPrefix) && !name.starts_with(whiteoutMetaPrefix))
        return Marker::Whiteout;
    return Marker::None;
}

std::string FileInfo::whiteoutTarget() const
{
    auto slash = path.rfind('/');
    std::string parent = slash == std::string::npos ? "" : path.substr(0, slash);
    switch (marker()) {
    case Marker::Opaque:
        return parent;
    case Marker::Whiteout: {
        auto name = path.substr(slash == std::string::npos ? 0 : slash + 1);
        return childPath(parent, name.substr(whiteoutPrefix.size()));
    }
    case Marker::None:
        break;
    }
    return path;
}

std::vector<std::string> attributeNames(unsigned attributes)
{
    static const std::pair<unsigned, const char*> names[] = {
        {AttrType, "type"},
        {AttrMode, "mode"},
        {AttrOwner, "owner"},
        {AttrOwnerNames, "owner-names"},
        {AttrMtime, "mtime"},
        {AttrContent, "content"},
        {AttrLinkTarget, "link-target"},
        {AttrDevice, "device"},
        {AttrXattrs, "xattrs"},
    };
    std::vector<std::string> out;
    for (auto& [bit, name] : names)
        if (attributes & bit) out.emplace_back(name);
    return out;
}

std::vector<XattrChange> xattrChanges(const FileInfo& before, const FileInfo& after)
{
    std::map<std::string, XattrChange> changes;
    for (auto& [name, value] : before.xattrs)
        changes[name].before = value;
    for (auto& [name, value] : after.xattrs)
        changes[name].after = value;
    std::vector<XattrChange> out;
    for (auto& [name, c] : changes)
        if (c.before != c.after) out.push_back({name, c.before, c.after});
    return out;
}

bool LayerDiff::read() const
{
    return verdict != Verdict::SameBlob && verdict != Verdict::SameTar;
}

uint64_t ImageDiff::filesAdded() const
{
    uint64_t n = 0;
    for (auto& l : layers)
        n += l.added;
    return n;
}

uint64_t ImageDiff::filesRemoved() const
{
    uint64_t n = 0;
    for (auto& l : layers)
        n += l.removed;
    return n;
}

uint64_t ImageDiff::filesChanged() const
{
    uint64_t n = 0;
    for (auto& l : layers)
        n += l.changed;
    return n;
}

std::vector<ValueChange> diffJson(const json& before, const json& after, const std::string& prefix)
{
    std::vector<ValueChange> out;
    diffJsonInto(before, after, prefix, out);
    return out;
}

void diffLayerBlobs(const Store& store, LayerDiff& diff, const DiffOptions& options)
{
    auto read = [&](const Descriptor& layer, const char* image) {
        try {
            return readListing(store, layer);
        } catch (Error& e) {
            e.addContext(
                concat("while reading layer ", diff.index + 1, " of the ", image, " image"));
            throw;
        }
    };
    Listing none("");
    std::optional<Listing> a, b;
    if (diff.before) a = read(*diff.before, "first");
    if (diff.after) b = read(*diff.after, "second");
    const Listing& la = a ? *a : none;
    const Listing& lb = b ? *b : none;
    auto& ra = la.records();
    auto& rb = lb.records();
    diff.entriesBefore = ra.size();
    diff.entriesAfter = rb.size();
    diff.added = diff.removed = diff.changed = 0;
    diff.files.clear();
    auto keep = [&](FileChange c) {
        if (options.maxFiles == 0 || diff.files.size() < options.maxFiles)
            diff.files.push_back(std::move(c));
    };
    bool sameOrder = true;
    size_t i = 0, j = 0;
    while (i < ra.size() || j < rb.size()) {
        int order = i == ra.size()   ? 1
                    : j == rb.size() ? -1
                                     : la.str(ra[i].path).compare(lb.str(rb[j].path));
        if (order < 0) {
            diff.removed++;
            keep({FileChange::Kind::Removed, la.info(ra[i++]), std::nullopt, 0});
        } else if (order > 0) {
            diff.added++;
            keep({FileChange::Kind::Added, std::nullopt, lb.info(rb[j++]), 0});
        } else {
            if (unsigned bits = compareRecords(la, ra[i], lb, rb[j])) {
                diff.changed++;
                keep({FileChange::Kind::Changed, la.info(ra[i]), lb.info(rb[j]), bits});
            }
            sameOrder = sameOrder && ra[i].order == rb[j].order;
            i++;
            j++;
        }
    }
    if (!diff.before)
        diff.verdict = LayerDiff::Verdict::Added;
    else if (!diff.after)
        diff.verdict = LayerDiff::Verdict::Removed;
    else if (diff.added + diff.removed + diff.changed > 0)
        diff.verdict = LayerDiff::Verdict::FilesDiffer;
    else
        diff.verdict =
            sameOrder ? LayerDiff::Verdict::SameFiles : LayerDiff::Verdict::SameFilesOrder;
}

std::vector<Descriptor> layersToRead(const Image& before, const Image& after)
{
    std::vector<Descriptor> out;
    std::set<Digest> seen;
    auto& la = before.manifest.layers;
    auto& lb = after.manifest.layers;
    for (size_t i = 0; i < std::max(la.size(), lb.size()); i++) {
        if (!mustRead(before, after, i)) continue;
        if (i < la.size() && seen.insert(la[i].digest).second) out.push_back(la[i]);
        if (i < lb.size() && seen.insert(lb[i].digest).second) out.push_back(lb[i]);
    }
    return out;
}

ImageDiff diffImages(const Store& store, const Image& before, const Image& after,
                     const DiffOptions& options)
{
    ImageDiff d;
    d.before = before.manifestDescriptor;
    d.after = after.manifestDescriptor;
    auto& la = before.manifest.layers;
    auto& lb = after.manifest.layers;
    d.layersBefore = la.size();
    d.layersAfter = lb.size();
    if (d.identical()) return d;

    auto ma = json::parse(before.manifestBytes), mb = json::parse(after.manifestBytes);
    d.manifestBytesOnly = ma == mb;
    d.manifest = diffJson(manifestFields(ma), manifestFields(mb));
    if (before.manifest.config.digest != after.manifest.config.digest) {
        auto ca = json::parse(before.configBytes), cb = json::parse(after.configBytes);
        d.configBytesOnly = ca == cb;
        d.config = diffJson(ca, cb);
    }

    for (size_t i = 0; i < std::max(la.size(), lb.size()); i++) {
        LayerDiff l;
        l.index = i;
        if (i < la.size()) {
            l.before = la[i];
            l.diffIdBefore = diffIdAt(before, i);
        }
        if (i < lb.size()) {
            l.after = lb[i];
            l.diffIdAfter = diffIdAt(after, i);
        }
        if (l.before && l.after) {
            l.descriptor =
                diffJson(descriptorFields(ma["layers"][i]), descriptorFields(mb["layers"][i]));
            if (!mustRead(before, after, i)) {
                if (l.before->digest == l.after->digest && l.descriptor.empty()) continue;
                l.verdict = l.before->digest == l.after->digest ? LayerDiff::Verdict::SameBlob
                                                                : LayerDiff::Verdict::SameTar;
                d.layers.push_back(std::move(l));
                continue;
            }
        }
        diffLayerBlobs(store, l, options);
        d.layers.push_back(std::move(l));
    }
    return d;
}

} // namespace grocker::oci
