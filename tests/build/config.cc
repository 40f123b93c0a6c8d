// Tests of the configuration (src/build/config*.cc): every key, both dependency forms, the merge
// order, every mistake with its exact text and position, services and their services.json.

#include "config.hh"

#include "helpers.hh"
#include "runtimes.hh"

#include <cstdlib>
#include <fstream>
#include <gtest/gtest.h>
#include <iostream>
#include <sstream>

using namespace grocker;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using namespace std::string_literals;
const std::string nginxMisreads = "holds a character nginx would misread (space, quote, ;{}$#\\)";

const std::string pgpKey = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n"
                           "\n"
                           "mQENBE5OMmIBCAD+FPYKGriGGf7NqwKfWC83cBV01gabgVWQmZbMcFzeW+hMsgxH\n"
                           "=A015\n"
                           "-----END PGP PUBLIC KEY BLOCK-----\n";

// The mistakes found in `yaml` read as file c.yml in `dir` (none: an empty list).
std::vector<std::string> problemsOf(const std::string& yaml, const fs::path& dir = "/nonexistent")
{
    try {
        mergeConfigText(Config{}, yaml, "c.yml", dir);
    } catch (const ConfigError& e) {
        return e.problems();
    }
    return {};
}

// The one mistake found in `yaml`.
std::string problemOf(const std::string& yaml, const fs::path& dir = "/nonexistent")
{
    auto p = problemsOf(yaml, dir);
    if (p.size() != 1) {
        std::string all;
        for (auto& l : p)
            all += "\n  " + l;
        ADD_FAILURE() << "expected one problem in:\n" << yaml << "got " << p.size() << ":" << all;
        return "";
    }
    return p[0];
}

Config parse(const std::string& yaml, const fs::path& dir = "/nonexistent")
{
    return mergeConfigText(Config{}, yaml, "c.yml", dir);
}

std::vector<std::string> commandLineProblems(const ConfigOverrides& o, const fs::path& dir)
{
    try {
        loadConfig({}, o, dir);
    } catch (const ConfigError& e) {
        return e.problems();
    }
    return {};
}

std::string readText(const fs::path& p)
{
    std::ifstream f(p);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// Compares `actual` with tests/build/data/<name>, or rewrites it when GROCKER_REGENERATE_GOLDEN=1.
void checkGolden(const std::string& name, const std::string& actual)
{
    auto path = test::testData() / "build" / "data" / name;
    const char* regen = std::getenv("GROCKER_REGENERATE_GOLDEN");
    if (regen && std::string(regen) == "1") {
        test::writeTestFile(path, actual);
        std::cerr << "regenerated " << path << "\n";
        return;
    }
    ASSERT_TRUE(fs::exists(path))
        << path << " is missing (run with GROCKER_REGENERATE_GOLDEN=1 to create it)";
    EXPECT_EQ(actual, readText(path))
        << "the output changed; if on purpose, run with GROCKER_REGENERATE_GOLDEN=1 and commit "
        << path;
}

} // namespace

// --- Reading every key ------------------------------------------------------------------------

TEST(Config, Defaults)
{
    test::TempDir dir;
    Config c = loadConfig({}, {}, dir.path());
    EXPECT_EQ(c, Config{});
    EXPECT_EQ(c.runtime, "bookworm/3.11");
    EXPECT_EQ(c.runtime, defaultRuntime);
    EXPECT_TRUE(c.pipConstraint.empty());
    EXPECT_TRUE(c.volumes.empty() && c.ports.empty() && c.envs.empty() && c.repositories.empty());
    EXPECT_TRUE(c.entrypointName.empty()) << "empty: Grocker's own entrypoint";
}

TEST(Config, ReadsEveryKey)
{
    test::TempDir dir;
    test::writeTestFile(dir / "constraints.txt", "six==1.16.0\n");
    std::string yaml = "runtime: bullseye/3.9\n"
                       "pip_constraint: constraints.txt\n"
                       "volumes: [/data, /cache/]\n"
                       "ports: [8080, 8081]\n"
                       "envs:\n"
                       "  SOME_VAR: value of it\n"
                       "  NUMBER: 45\n"
                       "  EMPTY: ''\n"
                       "repositories:\n"
                       "  nginx:\n"
                       "    uri: deb http://nginx.org/packages/debian/ bookworm nginx\n"
                       "    key: |\n";
    std::istringstream keyLines(pgpKey);
    for (std::string line; std::getline(keyLines, line);)
        yaml += (line.empty() ? "" : "      " + line) + "\n";
    yaml += "  flat:\n"
            "    uri: deb [arch=amd64 trusted=yes] file:/srv/repo ./\n"
            "dependencies:\n"
            "  - libzbar0\n"
            "  - libjpeg62-turbo: libjpeg62-turbo-dev\n"
            "  - libxml2: [libxml2-dev, libxslt1-dev]\n"
            "docker_image_prefix: registry.example.com:5000/team\n"
            "image_base_name: team/myapp\n"
            "entrypoint_name: myapp-run\n"
            "services:\n"
            "  www:\n"
            "    wsgi: myapp.wsgi:application\n"
            "    static:\n"
            "      /static/: /app/static\n"
            "    media: /media\n"
            "    processes: 4\n"
            "  ws:\n"
            "    command: myapp-websocket --port 8081\n"
            "  cron:\n"
            "    - \"*/5 * * * * myapp-cleanup\"\n";
    Config c = parse(yaml, dir.path());
    EXPECT_EQ(c.runtime, "bullseye/3.9");
    EXPECT_EQ(c.pipConstraint, (dir / "constraints.txt").string());
    EXPECT_EQ(c.volumes, (std::vector<std::string>{"/data", "/cache"}));
    EXPECT_EQ(c.ports, (std::vector<int>{8080, 8081}));
    EXPECT_EQ(c.envs, (std::map<std::string, std::string>{
                          {"SOME_VAR", "value of it"}, {"NUMBER", "45"}, {"EMPTY", ""}}));
    ASSERT_EQ(c.repositories.size(), 2u);
    EXPECT_EQ(c.repositories["nginx"].uri, "deb http://nginx.org/packages/debian/ bookworm nginx");
    EXPECT_EQ(c.repositories["nginx"].key, pgpKey);
    EXPECT_EQ(c.repositories["flat"].uri, "deb [arch=amd64 trusted=yes] file:/srv/repo ./");
    EXPECT_EQ(c.repositories["flat"].key, "");
    EXPECT_EQ(c.dependencies.run,
              (std::vector<std::string>{"libzbar0", "libjpeg62-turbo", "libxml2"}));
    EXPECT_EQ(c.dependencies.build,
              (std::vector<std::string>{"libjpeg62-turbo-dev", "libxml2-dev", "libxslt1-dev"}));
    EXPECT_EQ(c.dockerImagePrefix, "registry.example.com:5000/team");
    EXPECT_EQ(c.imageBaseName, "team/myapp");
    EXPECT_EQ(c.entrypointName, "myapp-run");
    ASSERT_EQ(c.services.size(), 2u);
    const auto& www = c.services["www"];
    EXPECT_EQ(www.kind, Service::Kind::Wsgi);
    EXPECT_EQ(www.wsgi, "myapp.wsgi:application");
    EXPECT_EQ(www.statics, (std::map<std::string, std::string>{{"/static/", "/app/static"}}));
    EXPECT_EQ(www.media, "/media");
    EXPECT_EQ(www.processes, 4);
    const auto& ws = c.services["ws"];
    EXPECT_EQ(ws.kind, Service::Kind::Command);
    EXPECT_EQ(ws.command, (std::vector<std::string>{"myapp-websocket", "--port", "8081"}));
    EXPECT_EQ(c.crontab, (std::vector<std::string>{"*/5 * * * * myapp-cleanup"}));
}

TEST(Config, DependenciesRunBuildForm)
{
    Config c = parse("dependencies:\n"
                     "  run: [libzbar0, libtiff6, libzbar0]\n"
                     "  build: [libzbar-dev, libtiff-dev]\n");
    EXPECT_EQ(c.dependencies.run, (std::vector<std::string>{"libzbar0", "libtiff6"}));
    EXPECT_EQ(c.dependencies.build, (std::vector<std::string>{"libzbar-dev", "libtiff-dev"}));
}

TEST(Config, DependenciesVersionsArchitecturesReleases)
{
    Config c = parse(
        "dependencies: [libpq5=15.5-0+deb12u1, 'libc6:amd64', libpq5/bookworm-backports, g++]\n");
    EXPECT_EQ(c.dependencies.run, (std::vector<std::string>{"libpq5=15.5-0+deb12u1", "libc6:amd64",
                                                            "libpq5/bookworm-backports", "g++"}));
}

TEST(Config, EnvIsTheOriginalSpellingOfEnvs)
{
    EXPECT_EQ(parse("env: {A: b}\n").envs, (std::map<std::string, std::string>{{"A", "b"}}));
}

TEST(Config, EmptyAndNullValuesChangeNothing)
{
    EXPECT_EQ(parse(""), Config{});
    EXPECT_EQ(parse("# only a comment\n"), Config{});
    EXPECT_EQ(parse("---\nports: [1]\n---\n").ports, std::vector<int>{1})
        << "empty documents are harmless";
    EXPECT_EQ(
        parse("volumes:\nports:\nenvs:\nrepositories:\ndependencies:\nservices:\npip_constraint:\n"
              "docker_image_prefix:\nimage_base_name:\nentrypoint_name:\n"),
        Config{});
}

TEST(Config, CommandsAreSplitAsShWould)
{
    EXPECT_EQ(splitCommand("a  'b c' \"d \\\" e\" f\\ g \"\\n\" ''"),
              (std::vector<std::string>{"a", "b c", "d \" e", "f g", "\\n", ""}));
    EXPECT_EQ(splitCommand("  "), std::vector<std::string>{});
    auto error = [](const std::string& s) {
        try {
            splitCommand(s);
        } catch (const UsageError& e) {
            return e.message();
        }
        return std::string("no error");
    };
    EXPECT_EQ(error("a 'b"), "unterminated ' in 'a 'b'");
    EXPECT_EQ(error("a \"b"), "unterminated \" in 'a \"b'");
    EXPECT_EQ(error("a \\"), "a lone '\\' at the end in 'a \\'");
    Config c = parse("services:\n  a: {command: [sh, -c, 'echo hi | tee x']}\n  b: {command: \"sh "
                     "-c 'echo hi'\"}\n");
    EXPECT_EQ(c.services["a"].command, (std::vector<std::string>{"sh", "-c", "echo hi | tee x"}));
    EXPECT_EQ(c.services["b"].command, (std::vector<std::string>{"sh", "-c", "echo hi"}));
}

// --- Merge order ------------------------------------------------------------------------------

namespace {

struct TwoFiles : ::testing::Test {
    test::TempDir dir;
    void SetUp() override
    {
        test::writeTestFile(dir / "conf" / "constraints.txt", "");
        test::writeTestFile(dir / "conf" / "a.yml",
                            "runtime: bullseye/3.9\n"
                            "pip_constraint: constraints.txt\n"
                            "volumes: [/data]\n"
                            "ports: [8080]\n"
                            "envs: {A: a, B: a}\n"
                            "repositories:\n"
                            "  one: {uri: deb http://one.example/debian bookworm main}\n"
                            "  two: {uri: deb http://two.example/debian bookworm main}\n"
                            "dependencies: [libpq5: libpq-dev]\n"
                            "docker_image_prefix: a.example.com\n"
                            "image_base_name: from-a\n"
                            "entrypoint_name: from-a\n"
                            "services:\n"
                            "  www: {wsgi: 'a:app'}\n"
                            "  ops: {command: ops}\n"
                            "  cron: ['@daily a']\n");
        test::writeTestFile(dir / "b.yml",
                            "runtime: bookworm/3.12\n"
                            "volumes: [/cache, /data]\n"
                            "ports: [8081, 8080]\n"
                            "envs: {B: b}\n"
                            "repositories:\n"
                            "  two: {uri: deb http://two.example/debian bookworm contrib}\n"
                            "dependencies: {run: [libpq5, zlib1g], build: [zlib1g-dev]}\n"
                            "docker_image_prefix:\n"
                            "services:\n"
                            "  www: {command: b-www}\n"
                            "  cron: ['@hourly b', '@daily a']\n");
    }
};

} // namespace

TEST_F(TwoFiles, LaterFilesReplaceScalarsAndMergeListsAndMaps)
{
    Config c = loadConfig({"conf/a.yml", dir / "b.yml"}, {}, dir.path());
    EXPECT_EQ(c.runtime, "bookworm/3.12");
    EXPECT_EQ(c.pipConstraint, (dir / "conf" / "constraints.txt").string())
        << "relative to a.yml's folder";
    EXPECT_EQ(c.volumes, (std::vector<std::string>{"/data", "/cache"}));
    EXPECT_EQ(c.ports, (std::vector<int>{8080, 8081}));
    EXPECT_EQ(c.envs, (std::map<std::string, std::string>{{"A", "a"}, {"B", "b"}}));
    ASSERT_EQ(c.repositories.size(), 2u);
    EXPECT_EQ(c.repositories["one"].uri, "deb http://one.example/debian bookworm main");
    EXPECT_EQ(c.repositories["two"].uri, "deb http://two.example/debian bookworm contrib");
    EXPECT_EQ(c.dependencies.run, (std::vector<std::string>{"libpq5", "zlib1g"}));
    EXPECT_EQ(c.dependencies.build, (std::vector<std::string>{"libpq-dev", "zlib1g-dev"}));
    EXPECT_EQ(c.dockerImagePrefix, "") << "null in b.yml unsets it";
    EXPECT_EQ(c.imageBaseName, "from-a");
    EXPECT_EQ(c.entrypointName, "from-a");
    ASSERT_EQ(c.services.size(), 2u);
    EXPECT_EQ(c.services["www"].kind, Service::Kind::Command) << "a service is replaced whole";
    EXPECT_EQ(c.services["www"].command, std::vector<std::string>{"b-www"});
    EXPECT_EQ(c.services["ops"].command, std::vector<std::string>{"ops"});
    EXPECT_EQ(c.crontab, (std::vector<std::string>{"@daily a", "@hourly b"}));
}

TEST_F(TwoFiles, FileOrderMatters)
{
    Config c = loadConfig({dir / "b.yml", dir / "conf" / "a.yml"}, {}, dir.path());
    EXPECT_EQ(c.runtime, "bullseye/3.9");
    EXPECT_EQ(c.volumes, (std::vector<std::string>{"/cache", "/data"}));
    EXPECT_EQ(c.ports, (std::vector<int>{8081, 8080}));
    EXPECT_EQ(c.envs["B"], "a");
    EXPECT_EQ(c.repositories["two"].uri, "deb http://two.example/debian bookworm main");
    EXPECT_EQ(c.dockerImagePrefix, "a.example.com");
    EXPECT_EQ(c.services["www"].kind, Service::Kind::Wsgi);
    EXPECT_EQ(c.crontab, (std::vector<std::string>{"@hourly b", "@daily a"}));
}

TEST_F(TwoFiles, CommandLineComesLast)
{
    test::writeTestFile(dir / "cli-constraints.txt", "");
    ConfigOverrides o;
    o.runtime = "bookworm/3.11";
    o.pipConstraint = "cli-constraints.txt";
    o.volumes = {"/logs", "/data"};
    o.ports = {"9000", "8080"};
    o.envs = {"B=cli", "C=x=y", "D="};
    o.entrypointName = "cli-run";
    o.imagePrefix = "cli.example.com/team";
    o.imageBaseName = "cli-name";
    o.imageName = "registry.local/x:1";
    Config c = loadConfig({"conf/a.yml", "b.yml"}, o, dir.path());
    EXPECT_EQ(c.runtime, "bookworm/3.11");
    EXPECT_EQ(c.pipConstraint, (dir / "cli-constraints.txt").string())
        << "relative to the working folder";
    EXPECT_EQ(c.volumes, (std::vector<std::string>{"/data", "/cache", "/logs"}));
    EXPECT_EQ(c.ports, (std::vector<int>{8080, 8081, 9000}));
    EXPECT_EQ(c.envs, (std::map<std::string, std::string>{
                          {"A", "a"}, {"B", "cli"}, {"C", "x=y"}, {"D", ""}}));
    EXPECT_EQ(c.entrypointName, "cli-run");
    EXPECT_EQ(c.dockerImagePrefix, "cli.example.com/team");
    EXPECT_EQ(c.imageBaseName, "cli-name");
    EXPECT_EQ(c.imageName, "registry.local/x:1");
}

TEST_F(TwoFiles, EmptyCommandLineValuesUnset)
{
    ConfigOverrides o;
    o.pipConstraint = "";
    o.imageBaseName = "";
    o.entrypointName = "";
    Config c = loadConfig({"conf/a.yml"}, o, dir.path());
    EXPECT_EQ(c.pipConstraint, "");
    EXPECT_EQ(c.imageBaseName, "");
    EXPECT_EQ(c.entrypointName, "");
}

TEST_F(TwoFiles, DotGrockerYmlOnlyWithoutFiles)
{
    test::writeTestFile(dir / ".grocker.yml", "runtime: bookworm/3.12\nports: [1]\n");
    EXPECT_EQ(loadConfig({}, {}, dir.path()).ports, std::vector<int>{1});
    EXPECT_EQ(loadConfig({"conf/a.yml"}, {}, dir.path()).ports, std::vector<int>{8080});
}

TEST_F(TwoFiles, DotGrockerYmlMistakesNameIt)
{
    test::writeTestFile(dir / ".grocker.yml", "prots: [1]\n");
    try {
        loadConfig({}, {}, dir.path());
        FAIL() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(e.problems(),
                  std::vector<std::string>{
                      ".grocker.yml:1:1: key 'prots': unknown key (did you mean 'ports'?)"});
    }
}

TEST_F(TwoFiles, UnreadableFiles)
{
    fs::create_directories(dir / "folder.yml");
    try {
        loadConfig({"missing.yml", "folder.yml", "b.yml"}, {}, dir.path());
        FAIL() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(e.problems(),
                  (std::vector<std::string>{
                      "missing.yml: cannot read the configuration file: No such file or directory",
                      "folder.yml: cannot read the configuration file: Is a directory",
                  }));
    }
}

// --- Mistakes, one by one, with their exact text ----------------------------------------------

struct Mistake {
    std::string yaml;
    std::string problem;
};

// gtest shows the YAML of a failing case rather than its bytes.
void PrintTo(const Mistake& m, std::ostream* os)
{
    *os << m.yaml;
}

class OneMistake : public ::testing::TestWithParam<Mistake> {};

TEST_P(OneMistake, IsReportedExactly)
{
    EXPECT_EQ(problemOf(GetParam().yaml), GetParam().problem) << GetParam().yaml;
}

const std::string sourcesHint =
    " is not a one-line sources.list entry (deb URI SUITE COMPONENT...): ";
const std::string volumeChars = " holds a space, a control character or ':', which a volume's path "
                                "cannot hold (docker run -v HOST:PATH splits at ':')";
const std::string lineBreakValue = "the value holds a line break (\\n or \\r), which crontabs and "
                                   "env files cannot carry: write it on one line";

INSTANTIATE_TEST_SUITE_P(
    TopLevel, OneMistake,
    ::testing::Values(
        Mistake{"- runtime\n", "c.yml:1:1: the configuration must be a mapping of keys (like "
                               "'runtime: bookworm/3.11'), got a list"},
        Mistake{"just text\n", "c.yml:1:1: the configuration must be a mapping of keys (like "
                               "'runtime: bookworm/3.11'), got 'just text'"},
        Mistake{"ports: [1, 2\nvolumes: []\n",
                "c.yml:2:8: invalid YAML: end of sequence flow not found"},
        Mistake{"ports: [1]\n---\nports: [2]\n",
                "c.yml:3:1: a configuration file holds one YAML document"},
        Mistake{",\n", "c.yml:1:1: invalid YAML: unexpected ','"},
        Mistake{"ports: [1]\n---\n,volumes: []\n", "c.yml:3:1: invalid YAML: unexpected ','"},
        // yaml-cpp takes any bytes; services.json and the image config are JSON (found by
        // tests/fuzz/config.cc).
        Mistake{"envs:\n  A: ok\n  B: caf\xe9\n",
                "c.yml:3:6: text that is not UTF-8; save the file as UTF-8"},
        Mistake{"services:\n  \xed\xa0\x80: {command: x}\n",
                "c.yml:2:3: text that is not UTF-8; save the file as UTF-8"},
        Mistake{"ports: [1]\nruntime: bookworm/3.12\nports: [2]\n",
                "c.yml:3:1: key 'ports': given twice (first at line 1)"},
        Mistake{"[a, b]: 1\n", "c.yml:1:1: keys must be strings, got a list"},
        Mistake{"volume: [/data]\n",
                "c.yml:1:1: key 'volume': unknown key (did you mean 'volumes'?)"},
        Mistake{"Runtime: bookworm/3.11\n",
                "c.yml:1:1: key 'Runtime': unknown key (did you mean 'runtime'?)"},
        Mistake{"pip-constraint: c.txt\n",
                "c.yml:1:1: key 'pip-constraint': unknown key (did you mean 'pip_constraint'?)"},
        Mistake{"dependancies: []\n",
                "c.yml:1:1: key 'dependancies': unknown key (did you mean 'dependencies'?)"},
        Mistake{"image_prefix: x\n",
                "c.yml:1:1: key 'image_prefix': unknown key (did you mean 'docker_image_prefix'?)"},
        Mistake{"prots: []\n", "c.yml:1:1: key 'prots': unknown key (did you mean 'ports'?)"},
        Mistake{"flavour: x\n",
                "c.yml:1:1: key 'flavour': unknown key (known keys: runtime, pip_constraint, "
                "volumes, ports, envs, repositories, "
                "dependencies, docker_image_prefix, image_base_name, entrypoint_name, services, "
                "platforms)"}));

INSTANTIATE_TEST_SUITE_P(
    Scalars, OneMistake,
    ::testing::Values(
        Mistake{"runtime:\n", "c.yml:1:1: key 'runtime': expected a runtime name, got nothing"},
        Mistake{"runtime: [a]\n", "c.yml:1:10: key 'runtime': expected a runtime name, got a list"},
        Mistake{"runtime: bookworm/3.13\n",
                "c.yml:1:10: key 'runtime': unknown runtime 'bookworm/3.13' (known runtimes: "
                "bookworm/3.11, bookworm/3.12, bullseye/3.9)"},
        Mistake{"pip_constraint: {a: b}\n",
                "c.yml:1:17: key 'pip_constraint': expected a file path, got a mapping"},
        Mistake{"pip_constraint: /nonexistent/c.txt\n",
                "c.yml:1:17: key 'pip_constraint': cannot read '/nonexistent/c.txt': No such file "
                "or directory"},
        Mistake{"pip_constraint: c.txt\n", "c.yml:1:17: key 'pip_constraint': cannot read "
                                           "'/nonexistent/c.txt': No such file or directory"},
        Mistake{"pip_constraint: /\n",
                "c.yml:1:17: key 'pip_constraint': '/' is a folder, not a file"},
        Mistake{"docker_image_prefix: Registry.example.com/Team\n",
                "c.yml:1:22: key 'docker_image_prefix': 'Registry.example.com/Team' is not a "
                "registry/namespace prefix "
                "(like registry.example.com/team: lowercase names, no tag)"},
        Mistake{"docker_image_prefix: example.com/team:1.0\n",
                "c.yml:1:22: key 'docker_image_prefix': 'example.com/team:1.0' is not a "
                "registry/namespace prefix "
                "(like registry.example.com/team: lowercase names, no tag)"},
        Mistake{"docker_image_prefix: example.com/\n",
                "c.yml:1:22: key 'docker_image_prefix': 'example.com/' is not a registry/namespace "
                "prefix "
                "(like registry.example.com/team: lowercase names, no tag)"},
        Mistake{"image_base_name: My App\n", "c.yml:1:18: key 'image_base_name': 'My App' is not "
                                             "an image name (lowercase letters and digits, "
                                             "separated by '.', '_', '-' or '/')"},
        Mistake{"image_base_name: app:1.0\n", "c.yml:1:18: key 'image_base_name': 'app:1.0' is not "
                                              "an image name (lowercase letters and digits, "
                                              "separated by '.', '_', '-' or '/')"},
        Mistake{"entrypoint_name: bin/run\n",
                "c.yml:1:18: key 'entrypoint_name': 'bin/run' is not a console script name "
                "(letters, digits, '.', '_' and '-')"},
        Mistake{"entrypoint_name: [a]\n",
                "c.yml:1:18: key 'entrypoint_name': expected a string, got a list"}));

INSTANTIATE_TEST_SUITE_P(
    Lists, OneMistake,
    ::testing::Values(
        Mistake{"volumes: /data\n",
                "c.yml:1:10: key 'volumes': expected a list of absolute paths, got '/data'"},
        Mistake{"volumes: [/data, data]\n",
                "c.yml:1:18: key 'volumes': 'data' is not an absolute path"},
        Mistake{"volumes:\n  - /a/../b\n",
                "c.yml:2:5: key 'volumes': '/a/../b' has a '.' or '..' component"},
        Mistake{"volumes: [/]\n", "c.yml:1:11: key 'volumes': the root folder cannot be a volume"},
        Mistake{"volumes: [[/a]]\n",
                "c.yml:1:11: key 'volumes': expected an absolute path, got a list"},
        // What mounts volumes cannot name them (docker run -v HOST:PATH), nor can a line of text.
        Mistake{"volumes: ['/my data']\n", "c.yml:1:11: key 'volumes': '/my data'" + volumeChars},
        Mistake{"volumes: [\"/data\\n/etc\"]\n",
                "c.yml:1:11: key 'volumes': '/data\\n/etc'" + volumeChars},
        Mistake{"volumes: [\"/data\\r\"]\n", "c.yml:1:11: key 'volumes': '/data\\r'" + volumeChars},
        Mistake{"volumes: [\"/a\\tb\"]\n", "c.yml:1:11: key 'volumes': '/a\\tb'" + volumeChars},
        Mistake{"volumes: [\"/a\\x01b\"]\n", "c.yml:1:11: key 'volumes': '/a\\x01b'" + volumeChars},
        Mistake{"volumes: ['/c:/d']\n", "c.yml:1:11: key 'volumes': '/c:/d'" + volumeChars},
        Mistake{"ports: [0]\n", "c.yml:1:9: key 'ports': '0' is not a port number (1 to 65535)"},
        Mistake{"ports: [65536]\n",
                "c.yml:1:9: key 'ports': '65536' is not a port number (1 to 65535)"},
        Mistake{"ports: [80, http]\n",
                "c.yml:1:13: key 'ports': 'http' is not a port number (1 to 65535)"},
        Mistake{"ports: [-1]\n", "c.yml:1:9: key 'ports': '-1' is not a port number (1 to 65535)"},
        Mistake{"ports: [{a: 1}]\n",
                "c.yml:1:9: key 'ports': expected a port number, got a mapping"},
        Mistake{"ports: 8080\n",
                "c.yml:1:8: key 'ports': expected a list of port numbers, got '8080'"}));

INSTANTIATE_TEST_SUITE_P(
    Envs, OneMistake,
    ::testing::Values(
        Mistake{"envs: [A=b]\n",
                "c.yml:1:7: key 'envs': expected a mapping of NAME: value, got a list"},
        Mistake{"envs: {1A: x}\n", "c.yml:1:8: key 'envs': '1A' is not an environment variable "
                                   "name (letters, digits and '_', not starting with a digit)"},
        Mistake{"envs: {MY-VAR: x}\n",
                "c.yml:1:8: key 'envs': 'MY-VAR' is not an environment variable name (letters, "
                "digits and '_', not starting with a digit)"},
        Mistake{"envs: {GROCKER_APP: x}\n", "c.yml:1:8: key 'envs': 'GROCKER_APP' is reserved: "
                                            "Grocker sets the GROCKER_* variables itself"},
        Mistake{"envs:\n  A:\n", "c.yml:2:3: key 'envs.A': expected a string (write '' for an "
                                 "empty value), got nothing"},
        Mistake{"envs: {A: [1]}\n", "c.yml:1:11: key 'envs.A': expected a string, got a list"},
        Mistake{"env: {A: {b: c}}\n", "c.yml:1:10: key 'env.A': expected a string, got a mapping"},
        // A value is never quoted: it may be a secret (a key on several lines, here).
        Mistake{"envs: {A: \"x\\ny\"}\n", "c.yml:1:11: key 'envs.A': " + lineBreakValue},
        Mistake{"envs: {A: \"x\\ry\"}\n", "c.yml:1:11: key 'envs.A': " + lineBreakValue},
        Mistake{"envs: {A: \"x\\r\"}\n", "c.yml:1:11: key 'envs.A': " + lineBreakValue},
        Mistake{"envs:\n  KEY: |\n    -----BEGIN s3cr3t\n    s3cr3t\n",
                "c.yml:2:8: key 'envs.KEY': " + lineBreakValue},
        Mistake{"envs: {A: \"x\\0y\"}\n", "c.yml:1:11: key 'envs.A': the value holds a NUL "
                                          "character, which no environment variable can carry"}));

INSTANTIATE_TEST_SUITE_P(
    Repositories, OneMistake,
    ::testing::Values(
        Mistake{"repositories: [a]\n", "c.yml:1:15: key 'repositories': expected a mapping of "
                                       "name: {uri: ..., key: ...}, got a list"},
        Mistake{"repositories: {my repo: {uri: deb http://x b main}}\n",
                "c.yml:1:16: key 'repositories': 'my repo' is not a repository name (letters, "
                "digits, '.', '_' and '-')"},
        Mistake{"repositories: {x: deb http://x b main}\n",
                "c.yml:1:19: key 'repositories.x': expected a mapping with 'uri' (and 'key'), got "
                "'deb http://x b main'"},
        Mistake{"repositories: {x: {}}\n", "c.yml:1:16: key 'repositories.x': 'uri' is missing (a "
                                           "line like 'deb http://host/debian bookworm main')"},
        Mistake{"repositories: {x: {uri: deb http://x b main, url: y}}\n",
                "c.yml:1:46: key 'repositories.x.url': unknown key (did you mean 'uri'?)"},
        Mistake{"repositories: {x: {uri: http://x b main}}\n",
                "c.yml:1:25: key 'repositories.x.uri': 'http://x b main'" + sourcesHint +
                    "it must start with 'deb'"},
        Mistake{"repositories: {x: {uri: deb-src http://x b main}}\n",
                "c.yml:1:25: key 'repositories.x.uri': 'deb-src http://x b main'" + sourcesHint +
                    "it must start with 'deb'"},
        Mistake{"repositories: {x: {uri: deb x.org b main}}\n",
                "c.yml:1:25: key 'repositories.x.uri': 'deb x.org b main'" + sourcesHint +
                    "'x.org' is not a URI"},
        Mistake{"repositories: {x: {uri: deb http://x}}\n",
                "c.yml:1:25: key 'repositories.x.uri': 'deb http://x'" + sourcesHint +
                    "the suite is missing"},
        Mistake{"repositories: {x: {uri: deb http://x bookworm}}\n",
                "c.yml:1:25: key 'repositories.x.uri': 'deb http://x bookworm'" + sourcesHint +
                    "the components are missing (like 'main')"},
        Mistake{"repositories: {x: {uri: deb http://x ./ main}}\n",
                "c.yml:1:25: key 'repositories.x.uri': 'deb http://x ./ main'" + sourcesHint +
                    "a suite ending with '/' (a flat repository) takes no components"},
        Mistake{"repositories: {x: {uri: 'deb [arch=amd64 http://x b main'}}\n",
                "c.yml:1:25: key 'repositories.x.uri': 'deb [arch=amd64 http://x b main'" +
                    sourcesHint + "the '[' options are not closed"},
        Mistake{
            "repositories:\n  x:\n    uri: |\n      deb http://x b main\n      deb http://y b "
            "main\n",
            "c.yml:3:10: key 'repositories.x.uri': 'deb http://x b main\\ndeb http://y b main'" +
                sourcesHint + "it has several lines"},
        Mistake{"repositories: {x: {uri: deb http://x b main, key: not a key}}\n",
                "c.yml:1:51: key 'repositories.x.key': not an armored PGP public key (from "
                "'-----BEGIN PGP PUBLIC KEY "
                "BLOCK-----' to '-----END PGP PUBLIC KEY BLOCK-----')"}));

INSTANTIATE_TEST_SUITE_P(
    Dependencies, OneMistake,
    ::testing::Values(
        Mistake{"dependencies: libpq5\n",
                "c.yml:1:15: key 'dependencies': expected a list of packages or a mapping {run: "
                "[...], build: [...]}, got 'libpq5'"},
        Mistake{"dependencies: [LibPQ5]\n",
                "c.yml:1:16: key 'dependencies': 'LibPQ5' is not a Debian package name (like "
                "libpq5, libpq5=15.5-0+deb12u1 "
                "or libpq5/bookworm-backports)"},
        Mistake{"dependencies: [-o=Debug::pkgProblemResolver=1]\n",
                "c.yml:1:16: key 'dependencies': '-o=Debug::pkgProblemResolver=1' is not a Debian "
                "package name (like libpq5, "
                "libpq5=15.5-0+deb12u1 or libpq5/bookworm-backports)"},
        Mistake{"dependencies: [[a]]\n", "c.yml:1:16: key 'dependencies': expected a package name "
                                         "or a one-key mapping {run_package: build_package(s)}, "
                                         "got a list"},
        Mistake{"dependencies: [{libpq5: libpq-dev, zlib1g: zlib1g-dev}]\n",
                "c.yml:1:16: key 'dependencies': expected a package name or a one-key mapping "
                "{run_package: build_package(s)}, "
                "got a mapping of 2 keys"},
        Mistake{"dependencies:\n  - libpq5:\n", "c.yml:2:5: key 'dependencies': expected the build "
                                                "package(s) of 'libpq5', got nothing"},
        Mistake{"dependencies: [{libpq5: {a: b}}]\n",
                "c.yml:1:25: key 'dependencies': expected the build package(s) of 'libpq5', got a "
                "mapping"},
        Mistake{"dependencies: [{libpq5: [libpq-dev, Bad]}]\n",
                "c.yml:1:37: key 'dependencies': 'Bad' is not a Debian package name (like libpq5, "
                "libpq5=15.5-0+deb12u1 or "
                "libpq5/bookworm-backports)"},
        Mistake{"dependencies: {rnu: [a]}\n",
                "c.yml:1:16: key 'dependencies.rnu': unknown key (did you mean 'run'?)"},
        Mistake{
            "dependencies: {run: libpq5}\n",
            "c.yml:1:21: key 'dependencies.run': expected a list of package names, got 'libpq5'"},
        Mistake{"dependencies: {build: [{a: b}]}\n",
                "c.yml:1:24: key 'dependencies.build': expected a package name, got a mapping"}));

INSTANTIATE_TEST_SUITE_P(
    Services, OneMistake,
    ::testing::Values(
        Mistake{
            "services: [www]\n",
            "c.yml:1:11: key 'services': expected a mapping of service name: service, got a list"},
        Mistake{"services: {w w: {command: x}}\n",
                "c.yml:1:12: key 'services': 'w w' is not a service name (letters, digits, '.', "
                "'_' and '-')"},
        Mistake{"services: {www: myapp.wsgi:application}\n",
                "c.yml:1:17: key 'services.www': expected a mapping with 'wsgi' or 'command', got "
                "'myapp.wsgi:application'"},
        Mistake{"services:\n  www:\n", "c.yml:2:3: key 'services.www': expected a mapping with "
                                       "'wsgi' or 'command', got nothing"},
        Mistake{"services: {www: {}}\n", "c.yml:1:12: key 'services.www': a service needs 'wsgi' "
                                         "(a WSGI application) or 'command'"},
        Mistake{"services: {www: {processes: 2}}\n",
                "c.yml:1:12: key 'services.www': a service needs 'wsgi' (a WSGI application) or "
                "'command'"},
        Mistake{"services: {www: {wsgi: 'a:b', command: c}}\n",
                "c.yml:1:12: key 'services.www': a service has 'wsgi' or 'command', not both"},
        Mistake{"services: {www: {wsgi: myapp.wsgi}}\n",
                "c.yml:1:24: key 'services.www.wsgi': 'myapp.wsgi' is not 'module:callable' (like "
                "myapp.wsgi:application)"},
        Mistake{"services: {www: {wsgi: 'my-app:app'}}\n",
                "c.yml:1:24: key 'services.www.wsgi': 'my-app:app' is not 'module:callable' (like "
                "myapp.wsgi:application)"},
        Mistake{"services: {www: {wsgi: 'a..b:app'}}\n",
                "c.yml:1:24: key 'services.www.wsgi': 'a..b:app' is not 'module:callable' (like "
                "myapp.wsgi:application)"},
        Mistake{"services: {www: {wsgi: [a]}}\n",
                "c.yml:1:24: key 'services.www.wsgi': expected 'module:callable', got a list"},
        Mistake{"services: {www: {wsgi: 'a:b', statics: {}}}\n",
                "c.yml:1:31: key 'services.www.statics': unknown key (did you mean 'static'?)"},
        Mistake{"services: {www: {wsgi: 'a:b', static: [/static/]}}\n",
                "c.yml:1:39: key 'services.www.static': expected a mapping of URL prefix: folder, "
                "got a list"},
        Mistake{"services: {www: {wsgi: 'a:b', static: {/static: /app/static}}}\n",
                "c.yml:1:40: key 'services.www.static': URL prefix '/static' must start and end "
                "with '/'"},
        Mistake{"services: {www: {wsgi: 'a:b', static: {static/: /app/static}}}\n",
                "c.yml:1:40: key 'services.www.static': URL prefix 'static/' must start and end "
                "with '/'"},
        Mistake{
            "services: {www: {wsgi: 'a:b', static: {/static/: app/static}}}\n",
            "c.yml:1:50: key 'services.www.static': folder 'app/static' is not an absolute path"},
        Mistake{"services: {www: {wsgi: 'a:b', media: media}}\n",
                "c.yml:1:38: key 'services.www.media': 'media' is not an absolute path"},
        // The entrypoint's rules (in-image/nginx-words.hh), so that the runner's service starts.
        Mistake{"services: {www: {wsgi: 'a:b', static: {'/my static/': /app/static}}}\n",
                "c.yml:1:40: key 'services.www.static./my static/': the URL prefix " +
                    nginxMisreads},
        Mistake{"services: {www: {wsgi: 'a:b', static: {'/s;x/': /app/static}}}\n",
                "c.yml:1:40: key 'services.www.static./s;x/': the URL prefix " + nginxMisreads},
        Mistake{"services: {www: {wsgi: 'a:b', static: {/: /app/static}}}\n",
                "c.yml:1:40: key 'services.www.static./': the URL prefix '/' would hide the "
                "application: use a prefix such as "
                "/static/"},
        Mistake{"services: {www: {wsgi: 'a:b', static: {/s/: '/app/my static'}}}\n",
                "c.yml:1:45: key 'services.www.static': folder '/app/my static' " + nginxMisreads +
                    ": rename the folder"},
        Mistake{"services: {www: {wsgi: 'a:b', static: {/s/: '/app/${HOME}'}}}\n",
                "c.yml:1:45: key 'services.www.static': folder '/app/${HOME}' " + nginxMisreads +
                    ": rename the folder"},
        Mistake{"services: {www: {wsgi: 'a:b', static: {/s/: \"/app/x\\ny\"}}}\n",
                "c.yml:1:45: key 'services.www.static': folder '/app/x\\ny' " + nginxMisreads +
                    ": rename the folder"},
        Mistake{"services: {www: {wsgi: 'a:b', static: {/s/: /}}}\n",
                "c.yml:1:45: key 'services.www.static': folder '/' is the root folder, which "
                "cannot be a static folder: nginx "
                "would reach every file of the image (/config/env included)"},
        Mistake{"services: {www: {wsgi: 'a:b', media: /}}\n",
                "c.yml:1:38: key 'services.www.media': '/' is the root folder, which cannot be the "
                "media folder: nginx would "
                "reach every file of the image (/config/env included)"},
        Mistake{"services: {www: {wsgi: 'a:b', media: //}}\n",
                "c.yml:1:38: key 'services.www.media': '/' is the root folder, which cannot be the "
                "media folder: nginx would "
                "reach every file of the image (/config/env included)"},
        Mistake{"services: {www: {wsgi: 'a:b', media: '/srv/my media'}}\n",
                "c.yml:1:38: key 'services.www.media': '/srv/my media' " + nginxMisreads +
                    ": rename the folder"},
        Mistake{"services: {www: {wsgi: 'a:b', media: '/srv/media#1'}}\n",
                "c.yml:1:38: key 'services.www.media': '/srv/media#1' " + nginxMisreads +
                    ": rename the folder"},
        Mistake{"services: {ws: {command: [\"a\\0b\"]}}\n",
                "c.yml:1:26: key 'services.ws.command': the command holds a NUL character, which "
                "no program's argument can carry"},
        Mistake{
            "services: {www: {wsgi: 'a:b', processes: 0}}\n",
            "c.yml:1:42: key 'services.www.processes': '0' is not a number of processes (1 to 64)"},
        Mistake{"services: {www: {wsgi: 'a:b', processes: 65}}\n",
                "c.yml:1:42: key 'services.www.processes': '65' is not a number of processes (1 to "
                "64)"},
        Mistake{"services: {www: {wsgi: 'a:b', processes: many}}\n",
                "c.yml:1:42: key 'services.www.processes': 'many' is not a number of processes (1 "
                "to 64)"},
        Mistake{"services: {ws: {command: x, static: {/s/: /s}}}\n",
                "c.yml:1:29: key 'services.ws.static': only wsgi services have 'static'"},
        Mistake{"services: {ws: {command: x, processes: 2}}\n",
                "c.yml:1:29: key 'services.ws.processes': only wsgi services have 'processes'"},
        Mistake{"services: {ws: {command: ''}}\n",
                "c.yml:1:26: key 'services.ws.command': the command is empty"},
        Mistake{"services: {ws: {command: []}}\n",
                "c.yml:1:26: key 'services.ws.command': the command is empty"},
        Mistake{"services:\n  ws:\n    command:\n",
                "c.yml:3:5: key 'services.ws.command': expected a string or a list of strings, got "
                "nothing"},
        Mistake{"services: {ws: {command: {a: b}}}\n",
                "c.yml:1:26: key 'services.ws.command': expected a string or a list of strings, "
                "got a mapping"},
        Mistake{"services: {ws: {command: [a, [b]]}}\n",
                "c.yml:1:30: key 'services.ws.command': expected a string, got a list"},
        Mistake{"services: {ws: {command: \"run 'x\"}}\n",
                "c.yml:1:26: key 'services.ws.command': unterminated ' in 'run 'x'"},
        Mistake{"services: {cron: {a: b}}\n",
                "c.yml:1:18: key 'services.cron': expected a list of crontab lines, got a mapping"},
        Mistake{"services: {cron: ['* * * myjob']}\n",
                "c.yml:1:19: key 'services.cron': '* * * myjob' is not a crontab line (five time "
                "fields or @hourly, @daily..., then a command)"},
        Mistake{"services: {cron: ['@often myjob']}\n",
                "c.yml:1:19: key 'services.cron': '@often myjob' is not a crontab line (five time "
                "fields or @hourly, @daily..., then a command)"},
        Mistake{"services: {cron: ['* * * * *']}\n",
                "c.yml:1:19: key 'services.cron': '* * * * *' is not a crontab line (five time "
                "fields or @hourly, @daily..., then a command)"},
        Mistake{"services: {cron: [[a]]}\n",
                "c.yml:1:19: key 'services.cron': expected a crontab line, got a list"}));

// Each time field as Debian's cron reads it: its range, names, ranges, lists and steps.
INSTANTIATE_TEST_SUITE_P(
    Crontab, OneMistake,
    ::testing::Values(Mistake{"services: {cron: ['61 * * * * job']}\n",
                              "c.yml:1:19: key 'services.cron': '61 * * * * job': minute '61' is "
                              "out of range (0 to 59)"},
                      Mistake{"services: {cron: ['* 24 * * * job']}\n",
                              "c.yml:1:19: key 'services.cron': '* 24 * * * job': hour '24' is out "
                              "of range (0 to 23)"},
                      Mistake{"services: {cron: ['* * 0 * * job']}\n",
                              "c.yml:1:19: key 'services.cron': '* * 0 * * job': day of month '0' "
                              "is out of range (1 to 31)"},
                      Mistake{"services: {cron: ['* * 32 * * job']}\n",
                              "c.yml:1:19: key 'services.cron': '* * 32 * * job': day of month "
                              "'32' is out of range (1 to 31)"},
                      Mistake{"services: {cron: ['* * * 13 * job']}\n",
                              "c.yml:1:19: key 'services.cron': '* * * 13 * job': month '13' is "
                              "out of range (1 to 12, or jan to dec)"},
                      Mistake{"services: {cron: ['* * * 0 * job']}\n",
                              "c.yml:1:19: key 'services.cron': '* * * 0 * job': month '0' is out "
                              "of range (1 to 12, or jan to dec)"},
                      Mistake{"services: {cron: ['* * * * 8 job']}\n",
                              "c.yml:1:19: key 'services.cron': '* * * * 8 job': day of week '8' "
                              "is out of range (0 to 7, or sun to sat; 0 "
                              "and 7 are Sunday)"},
                      Mistake{"services: {cron: ['* * * foo * job']}\n",
                              "c.yml:1:19: key 'services.cron': '* * * foo * job': month 'foo' is "
                              "not a number or a name (1 to 12, or jan to "
                              "dec)"},
                      Mistake{"services: {cron: ['* * * * monday job']}\n",
                              "c.yml:1:19: key 'services.cron': '* * * * monday job': day of week "
                              "'monday' is not a number or a name (0 to 7, "
                              "or sun to sat; 0 and 7 are Sunday)"},
                      Mistake{"services: {cron: ['x * * * * job']}\n",
                              "c.yml:1:19: key 'services.cron': 'x * * * * job': minute 'x' is not "
                              "a number (0 to 59)"},
                      Mistake{"services: {cron: ['* jan * * * job']}\n",
                              "c.yml:1:19: key 'services.cron': '* jan * * * job': hour 'jan' is "
                              "not a number (0 to 23)"},
                      Mistake{"services: {cron: ['1-70 * * * * job']}\n",
                              "c.yml:1:19: key 'services.cron': '1-70 * * * * job': minute '70' is "
                              "out of range (0 to 59)"},
                      Mistake{"services: {cron: ['0,15,60 * * * * job']}\n",
                              "c.yml:1:19: key 'services.cron': '0,15,60 * * * * job': minute '60' "
                              "is out of range (0 to 59)"},
                      Mistake{"services: {cron: ['0 9-5 * * * job']}\n",
                              "c.yml:1:19: key 'services.cron': '0 9-5 * * * job': hour '9-5' runs "
                              "backwards: cron would match nothing with it"},
                      Mistake{"services: {cron: ['*/0 * * * * job']}\n",
                              "c.yml:1:19: key 'services.cron': '*/0 * * * * job': minute '*/0': "
                              "the step after '/' must be a number from 1"},
                      Mistake{"services: {cron: ['*/x * * * * job']}\n",
                              "c.yml:1:19: key 'services.cron': '*/x * * * * job': minute '*/x': "
                              "the step after '/' must be a number from 1"},
                      Mistake{"services: {cron: ['5/10 * * * * job']}\n",
                              "c.yml:1:19: key 'services.cron': '5/10 * * * * job': minute '5/10': "
                              "a step follows '*' or a range (like */15 "
                              "or 0-30/15)"},
                      Mistake{"services: {cron: ['1,,2 * * * * job']}\n",
                              "c.yml:1:19: key 'services.cron': '1,,2 * * * * job': minute '1,,2' "
                              "has an empty item between ','"},
                      Mistake{"services: {cron: ['1- * * * * job']}\n",
                              "c.yml:1:19: key 'services.cron': '1- * * * * job': minute '' is not "
                              "a number (0 to 59)"},
                      Mistake{"services: {cron: [\"* * * * * a\\rb\"]}\n",
                              "c.yml:1:19: key 'services.cron': '* * * * * a\\rb' holds a line "
                              "break or another control character: give "
                              "each job its own item"},
                      Mistake{"services: {cron: [\"MAILTO=a\\r\\nb\"]}\n",
                              "c.yml:1:19: key 'services.cron': 'MAILTO=a\\r\\nb' holds a line "
                              "break or another control character: give "
                              "each job its own item"},
                      Mistake{"services:\n  cron:\n    - |\n      * * * * * a\n      * * * * * b\n",
                              "c.yml:3:7: key 'services.cron': '* * * * * a\\n* * * * * b' holds a "
                              "line break or another control "
                              "character: give each job its own item"}));

TEST(Config, GoodCrontabLines)
{
    Config c = parse("services:\n  cron:\n"
                     "    - '*/5 * * * * myapp-cleanup --all'\n"
                     "    - '0 3 1-7 jan,feb mon myapp report'\n"
                     "    - '@reboot myapp warm'\n"
                     "    - 'MAILTO=ops@example.com'\n");
    EXPECT_EQ(c.crontab.size(), 4u);
}

TEST(Config, GoodCrontabFields)
{
    Config c = parse("services:\n  cron:\n"
                     "    - '0-59/5 0-23 1-31 1-12 0-7 every-5-minutes'\n"
                     "    - '59 23 31 12 7 last'\n"
                     "    - '0 9 * JAN-Mar mon-FRI names'\n"
                     "    - '*/15,45 */2 1,15 * sun,7 lists'\n"
                     "    - '0 0-12/3 * dec sat stepped'\n"
                     "    - \"0\\t3 * * *\\tmyapp tabs\"\n"
                     "    - \"@daily myapp\\r\"\n"
                     "    - |\n"
                     "      * * * * * block-scalar\n");
    EXPECT_EQ(c.crontab, (std::vector<std::string>{
                             "0-59/5 0-23 1-31 1-12 0-7 every-5-minutes", "59 23 31 12 7 last",
                             "0 9 * JAN-Mar mon-FRI names", "*/15,45 */2 1,15 * sun,7 lists",
                             "0 0-12/3 * dec sat stepped", "0\t3 * * *\tmyapp tabs", "@daily myapp",
                             "* * * * * block-scalar"}))
        << "blanks and line breaks around a line are dropped";
}

TEST(Config, GoodNginxWordsAndVolumes)
{
    Config c = parse("volumes: ['/data/caf\xc3\xa9', /srv/a-b_c.d, '/x@y+z']\n"
                     "services:\n  www:\n    wsgi: a:b\n    static: {/s/: /app/static, "
                     "/caf\xc3\xa9/: /app/caf\xc3\xa9}\n"
                     "    media: /srv/media\n");
    EXPECT_EQ(c.volumes, (std::vector<std::string>{"/data/caf\xc3\xa9", "/srv/a-b_c.d", "/x@y+z"}));
    EXPECT_EQ(c.services["www"].media, "/srv/media");
    EXPECT_EQ(c.services["www"].statics.size(), 2u);
}

// --- The size of a file -----------------------------------------------------------------------

TEST(Config, FileOverOneMebibyteIsRefused)
{
    std::string comment = "# " + std::string(1021, 'x') + "\n"; // 1 KiB
    std::string atLimit;
    for (int i = 0; i < 1024; i++)
        atLimit += comment;
    ASSERT_EQ(atLimit.size(), 1024u * 1024u);
    EXPECT_EQ(parse(atLimit), Config{}) << "1 MiB is allowed";
    EXPECT_EQ(problemOf(atLimit + "\n"), "c.yml: the file is larger than 1 MiB, the limit of a "
                                         "configuration file: is it the right file?");

    test::TempDir dir;
    test::writeTestFile(dir / "big.yml", atLimit + atLimit + "ports: [0]\n");
    test::writeTestFile(dir / "also-bad.yml", "ports: [0]\n");
    try {
        loadConfig({"big.yml", "also-bad.yml"}, {}, dir.path());
        FAIL() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(e.problems(),
                  (std::vector<std::string>{
                      "big.yml: the file is larger than 1 MiB, the limit of a configuration file: "
                      "is it the right file?",
                      "also-bad.yml:1:9: key 'ports': '0' is not a port number (1 to 65535)"}));
    }
}

TEST(Config, EndlessFileIsRefusedWithoutReadingItAll)
{
    // A character device that never ends: the reading stops past the limit.
    try {
        loadConfig({"/dev/zero"}, {}, "/");
        FAIL() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(e.problems(), std::vector<std::string>{
                                    "/dev/zero: the file is larger than 1 MiB, the limit of a "
                                    "configuration file: is it the right file?"});
    }
}

// --- Every mistake at once --------------------------------------------------------------------

TEST(Config, EveryMistakeAtOnce)
{
    test::TempDir dir;
    test::writeTestFile(dir / "a.yml", "runtime: bookworm/3.1\n"
                                       "volume: [/data]\n"
                                       "ports: [80, 0, 70000]\n"
                                       "services:\n"
                                       "  www:\n"
                                       "    wsgi: app\n"
                                       "    processes: 100\n");
    test::writeTestFile(dir / "b.yml", "envs: {1X: y}\n"
                                       "dependencies: [Bad]\n"
                                       "ports: [8080, 80]\n");
    ConfigOverrides o;
    o.ports = {"http"};
    o.envs = {"NOEQUAL"};
    o.runtime = "nope";
    o.volumes = {"relative"};
    o.pipConstraint = "missing.txt";
    o.entrypointName = "a/b";
    o.imagePrefix = "UPPER";
    o.imageBaseName = "A";
    o.imageName = "x:bad tag";
    try {
        loadConfig({"a.yml", "b.yml"}, o, dir.path());
        FAIL() << "no error";
    } catch (const UsageError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "the configuration has 17 mistakes:\n"
                  "a.yml:1:10: key 'runtime': unknown runtime 'bookworm/3.1' (known runtimes: "
                  "bookworm/3.11, bookworm/3.12, "
                  "bullseye/3.9)\n"
                  "a.yml:2:1: key 'volume': unknown key (did you mean 'volumes'?)\n"
                  "a.yml:3:13: key 'ports': '0' is not a port number (1 to 65535)\n"
                  "a.yml:3:16: key 'ports': '70000' is not a port number (1 to 65535)\n"
                  "a.yml:6:11: key 'services.www.wsgi': 'app' is not 'module:callable' (like "
                  "myapp.wsgi:application)\n"
                  "a.yml:7:16: key 'services.www.processes': '100' is not a number of processes (1 "
                  "to 64)\n"
                  "b.yml:1:8: key 'envs': '1X' is not an environment variable name (letters, "
                  "digits and '_', not starting "
                  "with a digit)\n"
                  "b.yml:2:16: key 'dependencies': 'Bad' is not a Debian package name (like "
                  "libpq5, libpq5=15.5-0+deb12u1 or "
                  "libpq5/bookworm-backports)\n"
                  "command line: option '--runtime': unknown runtime 'nope' (known runtimes: "
                  "bookworm/3.11, bookworm/3.12, "
                  "bullseye/3.9)\n"
                  "command line: option '--pip-constraint': cannot read '" +
                      (dir / "missing.txt").string() +
                      "': No such file or directory\n"
                      "command line: option '--volume': 'relative' is not an absolute path\n"
                      "command line: option '--port': 'http' is not a port number (1 to 65535)\n"
                      "command line: option '--env': 'NOEQUAL' must be KEY=VALUE\n"
                      "command line: option '--entrypoint': 'a/b' is not a console script name "
                      "(letters, digits, '.', '_' and "
                      "'-')\n"
                      "command line: option '--image-prefix': 'UPPER' is not a registry/namespace "
                      "prefix (like "
                      "registry.example.com/team: lowercase names, no tag)\n"
                      "command line: option '--image-base-name': 'A' is not an image name "
                      "(lowercase letters and digits, "
                      "separated by '.', '_', '-' or '/')\n"
                      "command line: option '--image-name': invalid image reference 'x:bad tag': "
                      "tag 'bad tag' is not valid: "
                      "up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'");
    }
}

TEST(Config, OneMistakeSaysSo)
{
    try {
        mergeConfigText(Config{}, "prots: [1]\n", "c.yml", "/");
        FAIL() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()), "the configuration has 1 mistake:\nc.yml:1:1: key "
                                         "'prots': unknown key (did you mean 'ports'?)");
    }
}

TEST(Config, PlatformsAreNormalisedAndTheLastListWins)
{
    test::TempDir dir;
    test::writeTestFile(dir.path() / "a.yml", "platforms: [linux/x86_64, linux/aarch64/v8]\n");
    test::writeTestFile(dir.path() / "b.yml", "platforms:\n  - linux/arm64\n  - linux/arm/v7\n");
    EXPECT_EQ(loadConfig({"a.yml"}, {}, dir.path()).platforms,
              (std::vector<std::string>{"linux/amd64", "linux/arm64"}));
    EXPECT_EQ(loadConfig({"a.yml", "b.yml"}, {}, dir.path()).platforms,
              (std::vector<std::string>{"linux/arm64", "linux/arm/v7"}));
    ConfigOverrides o;
    o.platforms = "linux/arm64,linux/amd64,linux/arm64";
    EXPECT_EQ(loadConfig({"a.yml"}, o, dir.path()).platforms,
              (std::vector<std::string>{"linux/arm64", "linux/amd64"}))
        << "the command line's list replaces the files', once each";
}

TEST(Config, PlatformMistakes)
{
    test::TempDir dir;
    ConfigOverrides o;
    o.platforms = "linux/amd64,windows/amd64,linux/sparc,arm64";
    EXPECT_EQ(commandLineProblems(o, dir.path()),
              (std::vector<std::string>{
                  "command line: option '--platform': 'windows/amd64': grocker builds Linux "
                  "images only (linux/ARCH)",
                  "command line: option '--platform': no Debian architecture for linux/sparc: use "
                  "linux/amd64, linux/arm64, linux/arm/v7, linux/386, linux/ppc64le, linux/s390x "
                  "or linux/riscv64",
                  "command line: option '--platform': 'arm64' is not a platform: write "
                  "OS/ARCH[/VARIANT], as linux/amd64 or linux/arm64",
              }));
    EXPECT_EQ(problemsOf("platforms: [linux/mips]\n"),
              (std::vector<std::string>{
                  "c.yml:1:13: key 'platforms': no Debian architecture for linux/mips: use "
                  "linux/amd64, linux/arm64, linux/arm/v7, linux/386, linux/ppc64le, linux/s390x "
                  "or linux/riscv64"}));
}

TEST(Config, CommandLineMistakes)
{
    test::TempDir dir;
    ConfigOverrides o;
    o.ports = {"0", "8080", "65536"};
    o.envs = {"1A=x", "GROCKER_APP=x", "=x"};
    o.volumes = {"/a/./b"};
    EXPECT_EQ(commandLineProblems(o, dir.path()),
              (std::vector<std::string>{
                  "command line: option '--volume': '/a/./b' has a '.' or '..' component",
                  "command line: option '--port': '0' is not a port number (1 to 65535)",
                  "command line: option '--port': '65536' is not a port number (1 to 65535)",
                  "command line: option '--env': '1A' is not an environment variable name "
                  "(letters, digits and '_', not "
                  "starting with a digit)",
                  "command line: option '--env': 'GROCKER_APP' is reserved: Grocker sets the "
                  "GROCKER_* variables itself",
                  "command line: option '--env': '' is not an environment variable name (letters, "
                  "digits and '_', not "
                  "starting with a digit)",
              }));
}

TEST(Config, CommandLineValuesThatBreakTheImage)
{
    test::TempDir dir;
    ConfigOverrides o;
    o.envs = {"A=x\ny", "B=x\r", "C=fine value", "D=a\0b"s};
    o.volumes = {"/my data", "/a:b", "/ok"};
    EXPECT_EQ(commandLineProblems(o, dir.path()),
              (std::vector<std::string>{
                  "command line: option '--volume': '/my data'" + volumeChars,
                  "command line: option '--volume': '/a:b'" + volumeChars,
                  "command line: option '--env': the value of 'A' holds a line break (\\n or \\r), "
                  "which crontabs and env "
                  "files cannot carry: write it on one line",
                  "command line: option '--env': the value of 'B' holds a line break (\\n or \\r), "
                  "which crontabs and env "
                  "files cannot carry: write it on one line",
                  "command line: option '--env': the value of 'D' holds a NUL character, which no "
                  "environment variable can "
                  "carry",
              }));
}

TEST(Config, NewMistakesComeAllAtOnce)
{
    test::TempDir dir;
    test::writeTestFile(dir / "c.yml", "volumes: ['/my data']\n"
                                       "envs: {TOKEN: \"a\\nb\"}\n"
                                       "services:\n"
                                       "  www:\n"
                                       "    wsgi: a:b\n"
                                       "    static: {'/s s/': /app/static}\n"
                                       "    media: /\n"
                                       "  cron: ['61 * * * * job']\n");
    ConfigOverrides o;
    o.envs = {"SECRET=line1\nline2"};
    try {
        loadConfig({"c.yml"}, o, dir.path());
        FAIL() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(
            e.problems(),
            (std::vector<std::string>{
                "c.yml:1:11: key 'volumes': '/my data'" + volumeChars,
                "c.yml:2:15: key 'envs.TOKEN': " + lineBreakValue,
                "c.yml:6:14: key 'services.www.static./s s/': the URL prefix " + nginxMisreads,
                "c.yml:7:12: key 'services.www.media': '/' is the root folder, which cannot be the "
                "media folder: nginx "
                "would reach every file of the image (/config/env included)",
                "c.yml:8:10: key 'services.cron': '61 * * * * job': minute '61' is out of range (0 "
                "to 59)",
                "command line: option '--env': the value of 'SECRET' " + lineBreakValue.substr(10),
            }));
        EXPECT_EQ(std::string(e.what()).find("line2"), std::string::npos)
            << "values are never quoted";
    }
}

TEST(Config, AValueWithAMistakeLeavesTheRestOfItsServiceOut)
{
    // Nothing half-read is kept: the checkpoint throws anyway, but a fuzzer may keep going.
    EXPECT_EQ(problemsOf("services: {www: {wsgi: 'a:b', processes: 0}, ws: {command: x}}\n").size(),
              1u);
}

// --- Output -----------------------------------------------------------------------------------

namespace {

const std::string servicesExample = "services:\n"
                                    "  www:\n"
                                    "    wsgi: myapp.wsgi:application\n"
                                    "    static:\n"
                                    "      /static/: /app/static\n"
                                    "    media: /media\n"
                                    "    processes: 4\n"
                                    "  ws:\n"
                                    "    command: myapp-websocket --port 8081\n"
                                    "  cron:\n"
                                    "    - \"*/5 * * * * myapp-cleanup\"\n";

} // namespace

TEST(ServicesJson, Golden)
{
    Config c = parse(servicesExample + "  api:\n    wsgi: myapp.api:app\n");
    checkGolden("services.golden.json", servicesJson(c, "myapp", "1.2.0", "/home/grocker/venv"));
}

TEST(ServicesJson, MatchesDocsServicesMd)
{
    // The example of docs/services.md, read from the docs themselves so the two cannot drift.
    auto root = std::getenv("GROCKER_SOURCE_ROOT");
    ASSERT_TRUE(root) << "GROCKER_SOURCE_ROOT is not set (run with meson test)";
    auto md = readText(fs::path(root) / "docs" / "services.md");
    auto yamlStart = md.find("```yaml\n");
    auto jsonStart = md.find("```json\n");
    ASSERT_NE(yamlStart, std::string::npos);
    ASSERT_NE(jsonStart, std::string::npos);
    yamlStart += 8, jsonStart += 8;
    auto yaml = md.substr(yamlStart, md.find("```", yamlStart) - yamlStart);
    auto expected = json::parse(md.substr(jsonStart, md.find("```", jsonStart) - jsonStart));
    Config c = parse(yaml);
    EXPECT_EQ(json::parse(servicesJson(c, "myapp", "1.2.0", "/home/grocker/venv")), expected);
}

TEST(ServicesJson, NoServices)
{
    EXPECT_EQ(servicesJson(Config{}, "a", "1", "/v"),
              "{\n  \"app\": \"a\",\n  \"version\": \"1\",\n  \"venv\": \"/v\",\n  "
              "\"uwsgi_plugin\": \"python3\",\n  \"services\": {},\n  \"crontab\": []\n}\n");
}

TEST(ServicesJson, WsgiWithoutMediaSaysNull)
{
    auto j = json::parse(servicesJson(parse("services: {www: {wsgi: 'a:b'}}\n"), "a", "1", "/v"));
    EXPECT_EQ(
        j["services"]["www"],
        json::parse(
            R"({"kind": "wsgi", "wsgi": "a:b", "static": {}, "media": null, "processes": 2})"));
}

TEST(ToJson, CanonicalAndReadsBack)
{
    test::TempDir dir;
    test::writeTestFile(dir / "c.txt", "");
    std::string yaml =
        "runtime: bookworm/3.12\npip_constraint: c.txt\nvolumes: [/b, /a]\nports: [2, 1]\n"
        "envs: {Z: '1', A: 'x y'}\n"
        "repositories: {r: {uri: deb http://x b main}}\n"
        "dependencies: [libpq5: libpq-dev]\n"
        "docker_image_prefix: example.com/team\nimage_base_name: app\nentrypoint_name: run\n"
        "platforms: [linux/arm64, linux/amd64]\n" +
        servicesExample;
    Config c = parse(yaml, dir.path());
    auto j = toJson(c);
    EXPECT_EQ(j.dump(), toJson(parse(yaml, dir.path())).dump());
    EXPECT_EQ(mergeConfigText(Config{}, j.dump(), "json", "/"), c) << "JSON is YAML: it reads back";
    EXPECT_EQ(
        j.dump(),
        "{\"dependencies\":{\"build\":[\"libpq-dev\"],\"run\":[\"libpq5\"]},\"docker_image_"
        "prefix\":\"example.com/team\","
        "\"entrypoint_name\":\"run\",\"envs\":{\"A\":\"x "
        "y\",\"Z\":\"1\"},\"image_base_name\":\"app\",\"pip_constraint\":\"" +
            (dir / "c.txt").string() + "\",\"platforms\":[\"linux/arm64\",\"linux/amd64\"]" +
            ",\"ports\":[2,1],\"repositories\":{\"r\":{\"key\":\"\",\"uri\":\"deb http://x b "
            "main\"}},"
            "\"runtime\":\"bookworm/3.12\",\"services\":{\"cron\":[\"*/5 * * * * myapp-cleanup\"],"
            "\"ws\":{\"command\":[\"myapp-websocket\",\"--port\",\"8081\"]},\"www\":{\"media\":\"/"
            "media\","
            "\"processes\":4,\"static\":{\"/static/\":\"/app/"
            "static\"},\"wsgi\":\"myapp.wsgi:application\"}},"
            "\"volumes\":[\"/b\",\"/a\"]}");
    EXPECT_EQ(mergeConfigText(Config{}, toJson(Config{}).dump(), "json", "/"), Config{});
}
