// A YAML configuration file merged into a Config: the document, its mappings and scalars, and
// the keys that hold one value or a plain list (config-layer.hh).
#include "config-layer.hh"
#include "grocker/oci/image.hh"

#include <algorithm>
#include <sstream>
#include <yaml-cpp/eventhandler.h>

namespace grocker::config {

namespace fs = std::filesystem;

std::string describe(const YAML::Node& n)
{
    switch (n.Type()) {
    case YAML::NodeType::Map:
        return "a mapping";
    case YAML::NodeType::Sequence:
        return "a list";
    case YAML::NodeType::Scalar:
        return quote(n.Scalar());
    default:
        return "nothing";
    }
}

namespace {

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
    std::optional<YAML::Mark> notUtf8; // the first scalar that is not UTF-8 (yaml-cpp lets it by)
    void OnDocumentStart(const YAML::Mark& m) override { start = m; }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { node(m); }
    void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                  const std::string& value) override
    {
        node(m);
        if (!notUtf8 && !validUtf8(value)) notUtf8 = m;
    }
    void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override
    {
        node(m);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override
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

} // namespace

FileLayer::FileLayer(std::string file, fs::path baseDir, Config& config,
                     std::vector<std::string>& problems)
    : file_(std::move(file)), baseDir_(std::move(baseDir)), config_(config), problems_(problems)
{
}

void FileLayer::merge(const std::string& text)
{
    if (text.size() > maxConfigFileSize) {
        problems_.push_back(
            concat(file_, ": the file is larger than ", maxConfigFileSize / (1024 * 1024),
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
        problems_.push_back(concat(
            at(root.Mark()),
            ": the configuration must be a mapping of keys (like 'runtime: bookworm/3.11'), got ",
            describe(root)));
        return;
    }
    for (auto& e : entries(root, "")) {
        const auto& k = e.key;
        if (k == "runtime")
            runtime(e);
        else if (k == "pip_constraint")
            pipConstraint(e);
        else if (k == "volumes")
            volumes(e);
        else if (k == "ports")
            ports(e);
        else if (k == "envs" || k == "env")
            envs(e); // "env": the original Grocker 6's spelling
        else if (k == "repositories")
            repositories(e);
        else if (k == "dependencies")
            dependencies(e);
        else if (k == "docker_image_prefix")
            optionalName(e, config_.dockerImagePrefix, checkImagePrefix);
        else if (k == "image_base_name")
            optionalName(e, config_.imageBaseName, checkImageBaseName);
        else if (k == "entrypoint_name")
            optionalName(e, config_.entrypointName, checkEntrypointName);
        else if (k == "services")
            services(e);
        else if (k == "platforms")
            platforms(e);
        else
            problem(e.keyNode, e.path, unknownKey(k, topKeys));
    }
}

// Whether `text` parses, as at most one document with something in it (empty documents,
// like a "---" at the end, are harmless; a second real one would be silently ignored).
bool FileLayer::checkDocuments(const std::string& text)
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
                problems_.push_back(
                    concat(at(*doc.start), ": invalid YAML: unexpected ",
                           pos < text.size() ? quote(text.substr(pos, 1)) : std::string("end")));
                return false;
            }
            previousStart = doc.start;
            if (doc.notUtf8) {
                problems_.push_back(
                    concat(at(*doc.notUtf8), ": text that is not UTF-8; save the file as UTF-8"));
                return false;
            }
            if (doc.content && firstContent) {
                problems_.push_back(
                    concat(at(*doc.content), ": a configuration file holds one YAML document"));
                return false;
            }
            if (doc.content) firstContent = doc.content;
        }
    } catch (const YAML::Exception& e) {
        problems_.push_back(concat(at(e.mark), ": invalid YAML: ", e.msg));
        return false;
    }
}

std::string FileLayer::at(const YAML::Mark& m) const
{
    if (m.is_null()) return file_;
    return concat(file_, ":", m.line + 1, ":", m.column + 1);
}

void FileLayer::problem(const YAML::Node& where, const std::string& path, const std::string& what)
{
    problems_.push_back(concat(at(where.Mark()), ": key '", path, "': ", what));
}

// A null value has no position of its own (yaml-cpp points past it): use its key's.
const YAML::Node& FileLayer::whereOf(const Entry& e) const
{
    return e.value.IsNull() ? e.keyNode : e.value;
}

void FileLayer::expected(const Entry& e, const std::string& what)
{
    problem(whereOf(e), e.path, concat("expected ", what, ", got ", describe(e.value)));
}

// The entries of a mapping, with string keys given once.
std::vector<Entry> FileLayer::entries(const YAML::Node& map, const std::string& parent)
{
    std::vector<Entry> out;
    for (auto it = map.begin(); it != map.end(); ++it) {
        if (!it->first.IsScalar()) {
            problems_.push_back(concat(at(it->first.Mark()), ": ",
                                       parent.empty() ? "" : concat("key '", parent, "': "),
                                       "keys must be strings, got ", describe(it->first)));
            continue;
        }
        auto key = it->first.Scalar();
        auto path = keyPath(parent, key);
        auto first =
            std::find_if(out.begin(), out.end(), [&](const Entry& e) { return e.key == key; });
        if (first != out.end()) {
            problem(it->first, path,
                    concat("given twice (first at line ", first->keyNode.Mark().line + 1, ")"));
            continue;
        }
        out.push_back(Entry{key, path, it->first, it->second});
    }
    return out;
}

// The text of a scalar, or nothing after saying what it is instead.
std::optional<std::string> FileLayer::scalar(const Entry& e, const std::string& what)
{
    if (e.value.IsScalar()) return e.value.Scalar();
    expected(e, what);
    return std::nullopt;
}

// The scalar items of a list (a null value is an empty list).
std::vector<std::pair<std::string, YAML::Node>>
FileLayer::scalarItems(const Entry& e, const std::string& list, const std::string& item)
{
    std::vector<std::pair<std::string, YAML::Node>> out;
    if (e.value.IsNull()) return out;
    if (!e.value.IsSequence()) {
        expected(e, list);
        return out;
    }
    for (const auto& n : e.value) {
        if (n.IsScalar())
            out.emplace_back(n.Scalar(), n);
        else
            problem(n, e.path, concat("expected ", item, ", got ", describe(n)));
    }
    return out;
}

void FileLayer::runtime(const Entry& e)
{
    auto v = scalar(e, "a runtime name");
    if (!v) return;
    if (auto p = checkRuntime(*v)) return problem(e.value, e.path, *p);
    config_.runtime = *v;
}

void FileLayer::pipConstraint(const Entry& e)
{
    if (e.value.IsNull()) return config_.pipConstraint.clear();
    auto v = scalar(e, "a file path");
    if (!v) return;
    if (v->empty()) return config_.pipConstraint.clear();
    std::string path;
    if (auto p = resolveReadableFile(*v, baseDir_, path)) return problem(e.value, e.path, *p);
    config_.pipConstraint = path;
}

void FileLayer::volumes(const Entry& e)
{
    for (auto& [text, node] : scalarItems(e, "a list of absolute paths", "an absolute path")) {
        std::string path = text;
        if (auto p = checkVolume(path))
            problem(node, e.path, *p);
        else
            appendUnique(config_.volumes, path);
    }
}

// A later file's list replaces an earlier one's, as the command line's does.
void FileLayer::platforms(const Entry& e)
{
    config_.platforms.clear();
    for (auto& [text, node] : scalarItems(e, "a list of platforms", "a platform (linux/arm64)"))
        if (auto p = checkPlatform(text))
            problem(node, e.path, *p);
        else
            appendUnique(config_.platforms, oci::Platform::parse(text).str());
}

void FileLayer::ports(const Entry& e)
{
    for (auto& [text, node] : scalarItems(e, "a list of port numbers", "a port number")) {
        int port = 0;
        if (auto p = parsePort(text, port))
            problem(node, e.path, *p);
        else
            appendUnique(config_.ports, port);
    }
}

// YAML scalars are taken as written: `DEBUG: yes` gives "yes", `N: 010` gives "010".
void FileLayer::envs(const Entry& e)
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
        if (auto p = checkEnvValue(*text))
            problem(v.value, v.path, concat("the value ", *p));
        else
            config_.envs[v.key] = *text;
    }
}

// A scalar that may be unset: null or '' clears what earlier layers set.
void FileLayer::optionalName(const Entry& e, std::string& to, Problem (*check)(std::string_view))
{
    if (e.value.IsNull()) return to.clear();
    auto v = scalar(e, "a string");
    if (!v) return;
    if (v->empty()) return to.clear();
    if (auto p = check(*v)) return problem(e.value, e.path, *p);
    to = *v;
}

} // namespace grocker::config
