#pragma once
// One YAML configuration file merged over a Config: each key's handler checks its value, says
// every mistake with the file, line and column, and sets the Config only from good values. The
// handlers are grouped by job: the document and single values (config-yaml.cc), repositories
// and packages (config-packages.cc), services (config-services.cc). Private to the configuration.

#include "config-checks.hh"
#include "config.hh"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>
#include <yaml-cpp/yaml.h>

namespace grocker::config {

// What a node is, in a message: "a mapping", "a list", the scalar quoted, or "nothing".
std::string describe(const YAML::Node& n);

struct Entry {
    std::string key;
    std::string path; // "services.www"
    YAML::Node keyNode, value;
};

class FileLayer {
  public:
    FileLayer(std::string file, std::filesystem::path baseDir, Config& config,
              std::vector<std::string>& problems);

    void merge(const std::string& text);

  private:
    // The document and its parts (config-yaml.cc).
    bool checkDocuments(const std::string& text);
    std::string at(const YAML::Mark& m) const;
    void problem(const YAML::Node& where, const std::string& path, const std::string& what);
    const YAML::Node& whereOf(const Entry& e) const;
    void expected(const Entry& e, const std::string& what);
    std::vector<Entry> entries(const YAML::Node& map, const std::string& parent);
    std::optional<std::string> scalar(const Entry& e, const std::string& what);
    std::vector<std::pair<std::string, YAML::Node>>
    scalarItems(const Entry& e, const std::string& list, const std::string& item);

    // Keys of one value or a plain list (config-yaml.cc).
    void runtime(const Entry& e);
    void pipConstraint(const Entry& e);
    void volumes(const Entry& e);
    void platforms(const Entry& e);
    void ports(const Entry& e);
    void envs(const Entry& e);
    void optionalName(const Entry& e, std::string& to, Problem (*check)(std::string_view));

    // config-packages.cc
    void repositories(const Entry& e);
    void packages(const YAML::Node& list, const std::string& path, std::vector<std::string>& to);
    void dependencies(const Entry& e);

    // config-services.cc
    void services(const Entry& e);
    Service service(const Entry& s);
    void statics(const Entry& f, std::map<std::string, std::string>& to);
    void command(const Entry& f, std::vector<std::string>& to);

    std::string file_;
    std::filesystem::path baseDir_;
    Config& config_;
    std::vector<std::string>& problems_;
};

// A service as the canonical configuration (toJson) writes it (config-services.cc).
nlohmann::json serviceJson(const Service& s);

} // namespace grocker::config
