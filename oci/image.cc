#include "grocker/oci/image.hh"

#include "grocker/error.hh"

#include <algorithm>
#include <ctime>
#include <sys/utsname.h>

namespace grocker::oci {

using nlohmann::json;

namespace media {

bool isManifest(std::string_view t)
{
    return t == ociManifest || t == dockerManifest;
}
bool isIndex(std::string_view t)
{
    return t == ociIndex || t == dockerManifestList;
}
bool isLayer(std::string_view t)
{
    return t == ociLayer || t == ociLayerGzip || t == ociLayerZstd || t == dockerLayerGzip ||
           t == dockerLayerForeign ||
           t == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
}

} // namespace media

Platform Platform::normalise(Platform p)
{
    static const std::map<std::string, std::pair<std::string, std::string>> arches = {
        {"x86_64", {"amd64", ""}}, {"x86-64", {"amd64", ""}},    {"aarch64", {"arm64", ""}},
        {"armhf", {"arm", "v7"}},  {"armel", {"arm", "v6"}},     {"i386", {"386", ""}},
        {"i686", {"386", ""}},     {"ppc64el", {"ppc64le", ""}},
    };
    if (auto it = arches.find(p.architecture); it != arches.end()) {
        p.architecture = it->second.first;
        if (p.variant.empty()) p.variant = it->second.second;
    }
    // arm64 images say "v8" or nothing: the same thing.
    if (p.architecture == "arm64" && p.variant == "v8") p.variant.clear();
    return p;
}

Platform Platform::parse(std::string_view text)
{
    Platform p;
    auto parts = std::string(text);
    auto first = parts.find('/');
    auto second = first == std::string::npos ? first : parts.find('/', first + 1);
    p.os = parts.substr(0, first);
    if (first != std::string::npos)
        p.architecture =
            parts.substr(first + 1, second == std::string::npos ? second : second - first - 1);
    if (second != std::string::npos) p.variant = parts.substr(second + 1);
    auto word = [](const std::string& w) {
        return !w.empty() &&
               w.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos;
    };
    if (!word(p.os) || !word(p.architecture) || (second != std::string::npos && !word(p.variant)))
        throw UsageError("'", text,
                         "' is not a platform: write OS/ARCH[/VARIANT], as "
                         "linux/amd64 or linux/arm64");
    return normalise(p);
}

Platform Platform::host()
{
    struct utsname u;
    uname(&u);
    Platform p;
    p.os = "linux";
    p.architecture = u.machine;
    return normalise(p);
}

bool Platform::matches(const Platform& wanted) const
{
    auto a = normalise(*this), b = normalise(wanted);
    if (a.os != b.os || a.architecture != b.architecture) return false;
    return b.variant.empty() || a.variant == b.variant;
}

std::string Platform::str() const
{
    return os + "/" + architecture + (variant.empty() ? "" : "/" + variant);
}

std::string Platform::slug() const
{
    auto s = str();
    std::replace(s.begin(), s.end(), '/', '-');
    return s;
}

void verifyBlob(std::string_view bytes, const Descriptor& d, const std::string& what)
{
    if (int64_t(bytes.size()) != d.size)
        throw Error(what, " has ", bytes.size(), " bytes but its descriptor says ", d.size,
                    "; the source is corrupt or was changed: fetch it again");
    if (d.digest.algorithm() != "sha256")
        throw Error(what, ": digest algorithm '", d.digest.algorithm(),
                    "' is not supported (sha256 is)");
    auto actual = sha256(bytes);
    if (actual != d.digest)
        throw Error(what, " has digest ", actual.str(), " but ", d.digest.str(),
                    " was expected; the source is corrupt or was changed: fetch it again");
}

namespace {

const json& field(const json& j, const char* key, const std::string& where)
{
    auto it = j.find(key);
    if (it == j.end()) throw Error(where, ": missing field '", key, "'");
    return *it;
}

std::string stringField(const json& j, const char* key, const std::string& where,
                        bool required = true)
{
    auto it = j.find(key);
    if (it == j.end()) {
        if (required) throw Error(where, ": missing field '", key, "'");
        return {};
    }
    if (!it->is_string())
        throw Error(where, ": field '", key, "' must be a string, not ", it->type_name());
    return it->get<std::string>();
}

std::map<std::string, std::string> annotationsOf(const json& j, const std::string& where)
{
    std::map<std::string, std::string> out;
    auto it = j.find("annotations");
    if (it == j.end() || it->is_null()) return out;
    if (!it->is_object()) throw Error(where, ": 'annotations' must be an object of strings");
    for (auto& [k, v] : it->items()) {
        if (!v.is_string()) throw Error(where, ": annotation '", k, "' must be a string");
        out[k] = v.get<std::string>();
    }
    return out;
}

void checkMediaTypeSyntax(const std::string& t, const std::string& where)
{
    // RFC 6838: type "/" subtype, restricted names; enough to catch garbage.
    auto slash = t.find('/');
    bool ok = slash != std::string::npos && slash > 0 && slash + 1 < t.size() &&
              t.find('/', slash + 1) == std::string::npos;
    for (char c : t)
        if (!(isalnum((unsigned char)c) ||
              std::string_view("!#$&-^_.+/").find(c) != std::string_view::npos))
            ok = false;
    if (!ok) throw Error(where, ": malformed media type '", t.substr(0, 100), "'");
}

json parseJson(std::string_view bytes, const std::string& what)
{
    try {
        auto j = json::parse(bytes);
        if (!j.is_object()) throw Error(what, " must be a JSON object, not ", j.type_name());
        return j;
    } catch (json::exception& e) {
        // parse_error, and out_of_range for a number no double holds ("1e999").
        throw Error(what, " is not valid JSON: ", e.what());
    }
}

Platform parsePlatform(const json& j, const std::string& where)
{
    if (!j.is_object()) throw Error(where, ": 'platform' must be an object");
    Platform p;
    p.architecture = stringField(j, "architecture", where + " platform");
    p.os = stringField(j, "os", where + " platform");
    p.variant = stringField(j, "variant", where, false);
    p.osVersion = stringField(j, "os.version", where, false);
    if (auto it = j.find("os.features"); it != j.end()) {
        if (!it->is_array()) throw Error(where, ": 'os.features' must be an array of strings");
        for (auto& f : *it) {
            if (!f.is_string()) throw Error(where, ": 'os.features' must be an array of strings");
            p.osFeatures.push_back(f.get<std::string>());
        }
    }
    return p;
}

void checkSchemaVersion(const json& j, const std::string& what)
{
    auto& v = field(j, "schemaVersion", what);
    if (!v.is_number_integer() || v.get<int64_t>() != 2)
        throw Error(what, ": schemaVersion must be 2, not ", v.dump());
}

// The mediaType field, checked against what the referrer said and what the content is.
std::string mediaTypeOf(const json& j, const std::string& what, std::string_view expected,
                        bool wantIndex)
{
    std::string t = stringField(j, "mediaType", what, false);
    if (t.empty()) {
        // Allowed by image-spec for OCI; the shape decides.
        t = std::string(j.contains("manifests") ? media::ociIndex : media::ociManifest);
        if (!expected.empty() && (media::isIndex(expected) || media::isManifest(expected)))
            t = std::string(expected);
    }
    if (!expected.empty() && t != expected)
        throw Error(what, " says its mediaType is '", t, "' but it was referred to as '", expected,
                    "'");
    bool isIdx = media::isIndex(t), isMan = media::isManifest(t);
    if (!isIdx && !isMan) throw Error(what, ": unsupported manifest media type '", t, "'");
    if (isIdx && j.contains("layers")) throw Error(what, ": an index must not have 'layers'");
    if (isMan && j.contains("manifests"))
        throw Error(what, " says it is '", t, "' but has 'manifests' like an index");
    if (wantIndex && !isIdx) throw Error(what, " is an image manifest ('", t, "'), not an index");
    if (!wantIndex && !isIdx && !isMan) throw Error(what, " is not an image manifest");
    if (!wantIndex && isIdx) throw Error(what, " is an index ('", t, "'), not an image manifest");
    return t;
}

} // namespace

Descriptor parseDescriptor(const json& j, const std::string& where)
{
    if (!j.is_object()) throw Error(where, ": a descriptor must be an object");
    Descriptor d;
    d.mediaType = stringField(j, "mediaType", where);
    checkMediaTypeSyntax(d.mediaType, where);
    try {
        d.digest = Digest::parse(stringField(j, "digest", where));
    } catch (Error& e) {
        e.addContext(where);
        throw;
    }
    auto& size = field(j, "size", where);
    if (!size.is_number_integer() || size.get<int64_t>() < 0)
        throw Error(where, " (", d.digest.str(), "): size must be a non-negative integer",
                    size.is_number_unsigned() ? " of at most 2^63-1 (a descriptor's int64)" : "",
                    ", not ", size.dump(),
                    ": the image is not valid OCI; ask its publisher to fix it");
    d.size = size.get<int64_t>();
    d.annotations = annotationsOf(j, where);
    if (auto it = j.find("urls"); it != j.end() && !it->is_null()) {
        if (!it->is_array()) throw Error(where, ": 'urls' must be an array of strings");
        for (auto& u : *it) {
            if (!u.is_string()) throw Error(where, ": 'urls' must be an array of strings");
            d.urls.push_back(u.get<std::string>());
        }
    }
    if (auto it = j.find("platform"); it != j.end() && !it->is_null())
        d.platform = parsePlatform(*it, where);
    d.artifactType = stringField(j, "artifactType", where, false);
    return d;
}

Manifest parseManifest(std::string_view bytes, const std::string& what,
                       std::string_view expectedMediaType)
{
    json j = parseJson(bytes, what);
    checkSchemaVersion(j, what);
    Manifest m;
    m.mediaType = mediaTypeOf(j, what, expectedMediaType, false);
    m.config = parseDescriptor(field(j, "config", what), what + " config");
    auto& layers = field(j, "layers", what);
    if (!layers.is_array()) throw Error(what, ": 'layers' must be an array");
    for (size_t i = 0; i < layers.size(); i++)
        m.layers.push_back(parseDescriptor(layers[i], concat(what, " layer ", i)));
    m.annotations = annotationsOf(j, what);
    if (auto it = j.find("subject"); it != j.end() && !it->is_null())
        m.subject = parseDescriptor(*it, what + " subject");
    m.artifactType = stringField(j, "artifactType", what, false);
    return m;
}

Index parseIndex(std::string_view bytes, const std::string& what,
                 std::string_view expectedMediaType)
{
    json j = parseJson(bytes, what);
    checkSchemaVersion(j, what);
    Index idx;
    idx.mediaType = mediaTypeOf(j, what, expectedMediaType, true);
    auto& ms = field(j, "manifests", what);
    if (!ms.is_array()) throw Error(what, ": 'manifests' must be an array");
    for (size_t i = 0; i < ms.size(); i++)
        idx.manifests.push_back(parseDescriptor(ms[i], concat(what, " manifest ", i)));
    idx.annotations = annotationsOf(j, what);
    return idx;
}

std::string sniffMediaType(std::string_view bytes, const std::string& what)
{
    json j = parseJson(bytes, what);
    if (auto it = j.find("mediaType"); it != j.end() && it->is_string())
        return it->get<std::string>();
    return std::string(j.contains("manifests") ? media::ociIndex : media::ociManifest);
}

ImageConfig parseConfig(std::string_view bytes, const std::string& what)
{
    ImageConfig c{parseJson(bytes, what)};
    stringField(c.json, "architecture", what);
    stringField(c.json, "os", what);
    stringField(c.json, "variant", what, false); // platform() reads it as a string
    auto& rootfs = field(c.json, "rootfs", what);
    if (!rootfs.is_object()) throw Error(what, ": 'rootfs' must be an object");
    if (stringField(rootfs, "type", what + " rootfs") != "layers")
        throw Error(what, ": rootfs.type must be 'layers'");
    auto& ids = field(rootfs, "diff_ids", what + " rootfs");
    if (!ids.is_array()) throw Error(what, ": rootfs.diff_ids must be an array");
    for (size_t i = 0; i < ids.size(); i++) {
        if (!ids[i].is_string()) throw Error(what, ": rootfs.diff_ids[", i, "] must be a string");
        try {
            Digest::parse(ids[i].get<std::string>());
        } catch (Error& e) {
            e.addContext(concat(what, ": rootfs.diff_ids[", i, "]"));
            throw;
        }
    }
    if (auto it = c.json.find("config"); it != c.json.end() && !it->is_null() && !it->is_object())
        throw Error(what, ": 'config' must be an object");
    if (auto it = c.json.find("history"); it != c.json.end() && !it->is_null() && !it->is_array())
        throw Error(what, ": 'history' must be an array");
    return c;
}

std::vector<Digest> ImageConfig::diffIds() const
{
    std::vector<Digest> out;
    for (auto& d : json.at("rootfs").at("diff_ids"))
        out.push_back(Digest::parse(d.get<std::string>()));
    return out;
}

Platform ImageConfig::platform() const
{
    Platform p;
    p.architecture = json.value("architecture", "");
    p.os = json.value("os", "");
    p.variant = json.value("variant", "");
    return p;
}

nlohmann::json ImageConfig::labels() const
{
    auto c = json.find("config");
    if (c == json.end() || !c->is_object()) return nlohmann::json::object();
    auto l = c->find("Labels");
    return l != c->end() && l->is_object() ? *l : nlohmann::json::object();
}

std::string ImageConfig::label(std::string_view key) const
{
    auto all = labels();
    auto it = all.find(key);
    return it != all.end() && it->is_string() ? it->get<std::string>() : std::string();
}

ImageConfig ImageConfig::scratch()
{
    auto p = Platform::host();
    nlohmann::json j = {{"architecture", p.architecture},
                        {"os", p.os},
                        {"rootfs", {{"type", "layers"}, {"diff_ids", nlohmann::json::array()}}},
                        {"config", nlohmann::json::object()},
                        {"history", nlohmann::json::array()}};
    if (!p.variant.empty()) j["variant"] = p.variant;
    return ImageConfig{j};
}

json toJson(const Descriptor& d)
{
    json j = {{"mediaType", d.mediaType}, {"digest", d.digest.str()}, {"size", d.size}};
    if (!d.annotations.empty()) j["annotations"] = d.annotations;
    if (!d.urls.empty()) j["urls"] = d.urls;
    if (!d.artifactType.empty()) j["artifactType"] = d.artifactType;
    if (d.platform) {
        json p = {{"architecture", d.platform->architecture}, {"os", d.platform->os}};
        if (!d.platform->variant.empty()) p["variant"] = d.platform->variant;
        if (!d.platform->osVersion.empty()) p["os.version"] = d.platform->osVersion;
        if (!d.platform->osFeatures.empty()) p["os.features"] = d.platform->osFeatures;
        j["platform"] = p;
    }
    return j;
}

json toJson(const Manifest& m)
{
    json j = {{"schemaVersion", 2},
              {"mediaType", m.mediaType},
              {"config", toJson(m.config)},
              {"layers", json::array()}};
    for (auto& l : m.layers)
        j["layers"].push_back(toJson(l));
    if (!m.annotations.empty()) j["annotations"] = m.annotations;
    if (m.subject) j["subject"] = toJson(*m.subject);
    if (!m.artifactType.empty()) j["artifactType"] = m.artifactType;
    return j;
}

json toJson(const Index& i)
{
    json j = {{"schemaVersion", 2}, {"mediaType", i.mediaType}, {"manifests", json::array()}};
    for (auto& m : i.manifests)
        j["manifests"].push_back(toJson(m));
    if (!i.annotations.empty()) j["annotations"] = i.annotations;
    return j;
}

std::string canonical(const json& j)
{
    try {
        return j.dump(-1, ' ', false, json::error_handler_t::strict);
    } catch (json::type_error& e) {
        throw Error("an image config or manifest would hold text that is not UTF-8 (", e.what(),
                    "): give --env, --label, --user and the like in UTF-8");
    }
}

std::string rfc3339(int64_t epochSeconds)
{
    time_t t = time_t(epochSeconds);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[64];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

} // namespace grocker::oci
