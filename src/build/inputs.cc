// The pass that checks the inputs of a build: the configuration files, the command line and
// the files they name, every mistake at once (mold's checkpoint), before any work.

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/reference.hh"
#include "passes.hh"

#include <unistd.h>

namespace grocker::build {

namespace fs = std::filesystem;

namespace {

// Problems of the configuration (ConfigError, one per line) and of the command line, gathered.
struct Problems {
    std::vector<std::string> config, cli;

    void check(const std::function<void()>& fn)
    {
        try {
            fn();
        } catch (ConfigError& e) {
            config.insert(config.end(), e.problems().begin(), e.problems().end());
        } catch (Error& e) {
            cli.push_back(e.message());
        }
    }

    // A file or folder named by an option, which the build reads.
    void readable(const std::string& option, const std::string& path, bool folder)
    {
        if (path.empty()) return;
        check([&] {
            std::error_code ec;
            auto st = fs::status(path, ec);
            if (ec || !fs::exists(st))
                throw UsageError(option, " '", path,
                                 "': ", ec ? ec.message() : "No such file or directory");
            if (folder != fs::is_directory(st))
                throw UsageError(option, " '", path,
                                 "': ", folder ? "not a folder" : "a folder, not a file");
            if (::access(path.c_str(), R_OK | (folder ? X_OK : 0)) < 0)
                throw SysError(option, " '", path, "': unable to read it");
        });
    }

    // One command-line mistake alone is a UsageError (exit 2); more, or any of the
    // configuration, one ConfigError listing them all.
    void stopIfAny()
    {
        if (config.empty() && cli.size() == 1) throw UsageError(cli[0]);
        config.insert(config.end(), cli.begin(), cli.end());
        if (!config.empty()) throw ConfigError(config);
    }
};

void checkResultFile(Problems& p, const std::string& file)
{
    if (file.empty()) return;
    p.check([&] {
        auto parent = fs::absolute(file).parent_path();
        if (fs::is_directory(file))
            throw UsageError("--result-file '", file, "' is a folder: name a file");
        if (!fs::is_directory(parent))
            throw UsageError("--result-file '", file, "': the folder '", parent.string(),
                             "' does not exist");
    });
}

void checkExportFolder(Problems& p, const std::string& dir)
{
    if (dir.empty()) return;
    p.check([&] {
        std::error_code ec;
        auto st = fs::status(dir, ec);
        if (st.type() == fs::file_type::not_found) {
            auto parent = fs::absolute(dir).parent_path();
            if (!fs::is_directory(parent))
                throw UsageError("--export-wheels '", dir, "': the folder '", parent.string(),
                                 "' does not exist");
        } else if (st.type() != fs::file_type::directory) {
            throw UsageError("--export-wheels '", dir, "' is not a folder: name a folder");
        }
    });
}

// The index URL may hold a secret: from a file or the environment, not only from the command
// line (which every user of the host sees in ps).
void readIndexUrl(Problems& p, BuildRequest& r)
{
    if (!r.indexUrlFile.empty())
        p.check([&] {
            if (!r.indexUrl.empty())
                throw UsageError("--index-url and --index-url-file: give one of them");
            std::string text = readFile(r.indexUrlFile);
            r.indexUrl = text.substr(0, text.find_first_of("\r\n"));
            if (r.indexUrl.empty())
                throw UsageError("--index-url-file '", r.indexUrlFile,
                                 "': its first line is empty; write the index URL there");
        });
    else if (const char* e = std::getenv("GROCKER_INDEX_URL"); r.indexUrl.empty() && e && *e)
        r.indexUrl = e;
}

void checkIndexUrl(Problems& p, const std::string& url)
{
    if (!url.empty() && !url.starts_with("http://") && !url.starts_with("https://") &&
        !url.starts_with("file://"))
        p.cli.push_back("--index-url '" + withoutPassword(url) +
                        "' is not an http://, https:// or file:// URL");
}

} // namespace

void Pipeline::checkInputs()
{
    auto& r = request;
    Problems p;
    release.text = r.release;
    p.check([&] { config = loadConfig(r.configFiles, r.overrides); });
    p.check([&] { runtime = &findRuntime(config.runtime); });
    p.check([&] { release = parseRelease(r.release); });
    for (auto& text : r.outputs)
        p.check([&] {
            auto out = oci::ImageRef::parse(text);
            if (out.kind == oci::ImageRef::Kind::Scratch)
                throw UsageError("--output scratch: scratch is not a place to write an image; name "
                                 "an image location");
            outputs.push_back(out);
        });
    p.check([&] { compression = oci::parseCompression(r.compression); });
    p.readable("--pip-conf", r.pipConf, false);
    p.readable("--find-links", r.findLinks, true);
    checkResultFile(p, r.resultFile);
    checkExportFolder(p, r.exportWheels);
    if (!r.cacheMode.empty()) p.check([&] { (void)parseCacheMode(r.cacheMode); });
    if (!r.cacheRepo.empty())
        p.check([&] {
            auto extra = repositoryExtra(r.cacheRepo);
            if (extra == RepositoryExtra::Tag)
                throw UsageError("--cache-repo '", r.cacheRepo,
                                 "' names a tag: name a repository (grocker tags its entries)");
            if (extra == RepositoryExtra::Digest)
                throw UsageError("--cache-repo '", r.cacheRepo,
                                 "' names a digest: name a repository");
        });
    if (r.noIndex) {
        if (!r.indexUrl.empty() || !r.indexUrlFile.empty())
            p.cli.push_back("--no-index and --index-url: give one of them");
        else if (r.findLinks.empty())
            p.cli.push_back("--no-index: no --find-links folder to take packages from; give "
                            "--find-links DIR");
    } else {
        readIndexUrl(p, r);
    }
    if (r.compileNetwork != "host" && r.compileNetwork != "none")
        p.cli.push_back("--compile-network '" + r.compileNetwork + "' is neither host nor none");
    checkIndexUrl(p, r.indexUrl);
    if (!r.baseImage.empty())
        p.check([&] {
            (void)oci::Reference::parse(r.baseImage.starts_with("docker://") ? r.baseImage.substr(9)
                                                                             : r.baseImage);
        });
    p.stopIfAny();
}

} // namespace grocker::build
