// The caching decisions of the build pipeline, with steps run by a fake StepRunner (a layer
// that records the step, no namespace, no root) and a fake compile (wheel files made here):
// what a rebuild runs after each kind of change. The real runner and compile are covered by
// the integration tests (tests/build/).

#include "build/pipeline.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/layer-writer.hh"
#include "helpers.hh"

#include <gtest/gtest.h>

using namespace grocker;
using namespace grocker::build;
using grocker::test::TempDir;
using grocker::test::writeTestFile;
namespace fs = std::filesystem;

namespace {

// Each step's layer holds one file naming the step and its command, so a step that runs again
// with other inputs makes another layer.
class FakeStep : public RunningStep {
  public:
    FakeStep(oci::Store& store, const Step& step) : store_(store), step_(step) {}
    int wait() override { return 0; }
    oci::LayerResult commit(const oci::LayerOptions& options) override
    {
        auto dir = makeTempDir(store_.tmpDir(), "fake-step-");
        AutoDelete remove(dir);
        fs::create_directories(dir / "fake");
        writeTestFile(dir / "fake" / cacheKey({step_.name}),
                      step_.name + "\n" + join(step_.argv) + "\n" + step_.keyExtra);
        return oci::writeLayer(store_, dir, "/", options);
    }

  private:
    oci::Store& store_;
    Step step_;
};

class FakeRunner : public StepRunner {
  public:
    std::unique_ptr<RunningStep> start(Context& ctx, const oci::Image&, const Step& step,
                                       AutoCloseFD) override
    {
        return std::make_unique<FakeStep>(ctx.store, step);
    }
    oci::Image makeDebianBase(Context& ctx, const std::string& suite) override
    {
        auto dir = makeTempDir(ctx.store.tmpDir(), "fake-base-");
        AutoDelete remove(dir);
        writeTestFile(dir / "os-release", "fake Debian " + suite + "\n");
        oci::LayerOptions lo;
        auto layer = oci::writeLayer(ctx.store, dir, "/", lo);
        oci::ImageDraft draft(oci::loadImage(ctx.store, oci::ImageRef{}), true, ctx.epoch);
        draft.addLayer(layer.descriptor, layer.diffId, "fake base");
        return std::move(draft).commit(ctx.store);
    }
};

// A build of the app "shop" from a fixed list of wheels, in a store kept across builds.
struct Builds {
    TempDir tmp;
    FakeRunner runner;
    std::map<std::string, std::string> wheels{{"shop", "1.0"}, {"requests", "2.31.0"}};
    std::string config = "runtime: bookworm/3.11\n";
    int compiles = 0;

    std::vector<CompiledWheel> compile(const CompileRequest& r)
    {
        EXPECT_NE(r.compiler, nullptr);
        compiles++;
        std::vector<CompiledWheel> out;
        for (auto& [name, version] : wheels) {
            std::string file = name + "-" + version + "-py3-none-any.whl";
            auto path = tmp / "wheels" / file;
            fs::create_directories(path.parent_path());
            writeTestFile(path, "wheel " + name + " " + version);
            out.push_back({name, version, file, oci::sha256(readFile(path)), path, name == "shop"});
        }
        return out;
    }

    BuildResult build()
    {
        writeTestFile(tmp / "grocker.yml", config);
        writeTestFile(tmp / "entrypoint", "#!/bin/sh\n", 0755);
        BuildRequest r;
        r.release = "shop==" + wheels["shop"];
        r.configFiles = {tmp / "grocker.yml"};
        r.storeRoot = tmp / "store";
        r.quiet = true;
        r.epoch = 0;
        r.entrypoint = [this](const oci::Platform&) { return tmp / "entrypoint"; };
        r.runner = &runner;
        r.compile = [this](Context&, const CompileRequest& c) { return compile(c); };
        return build::build(std::move(r));
    }
};

std::vector<std::string> ran(const BuildResult& r)
{
    return r.ran;
}

const std::vector<std::string> firstBuild{"base",
                                          "root: bookworm/3.11 run dependencies and user grocker",
                                          "compiler: bookworm/3.11 build dependencies",
                                          "runner: dependencies of shop", "runner: shop 1.0"};

} // namespace

TEST(Pipeline, FirstBuildRunsEveryStepInOrder)
{
    Builds b;
    auto r = b.build();
    EXPECT_EQ(ran(r), firstBuild);
    EXPECT_EQ(b.compiles, 1);
    EXPECT_EQ(r.image, "shop:1.0");
    EXPECT_EQ(r.rootImage.rfind("grocker-bookworm-3.11-root:", 0), 0u) << r.rootImage;
    EXPECT_EQ(r.json()["hash"], r.digest.str());
}

TEST(Pipeline, NoOpRebuildRunsNothingAndGivesTheSameImage)
{
    Builds b;
    auto first = b.build();
    auto again = b.build();
    EXPECT_EQ(ran(again), std::vector<std::string>{});
    EXPECT_EQ(again.digest, first.digest);
    EXPECT_EQ(again.rootImage, first.rootImage);
    EXPECT_EQ(again.compilerImage, first.compilerImage);
}

TEST(Pipeline, VersionBumpRerunsOnlyTheAppLayer)
{
    Builds b;
    auto first = b.build();
    b.wheels["shop"] = "1.1";
    auto bump = b.build();
    EXPECT_EQ(ran(bump), std::vector<std::string>{"runner: shop 1.1"});
    EXPECT_EQ(b.compiles, 2); // compile always runs: its own cache decides what it builds
    EXPECT_NE(bump.digest, first.digest);
    EXPECT_EQ(bump.image, "shop:1.1");
    EXPECT_EQ(bump.compilerImage, first.compilerImage);
}

TEST(Pipeline, ChangedRequirementRerunsTheRunnerLayers)
{
    Builds b;
    b.build();
    b.wheels["requests"] = "2.32.0";
    EXPECT_EQ(ran(b.build()),
              (std::vector<std::string>{"runner: dependencies of shop", "runner: shop 1.0"}));
    b.wheels["idna"] = "3.7";
    EXPECT_EQ(ran(b.build()),
              (std::vector<std::string>{"runner: dependencies of shop", "runner: shop 1.0"}));
}

TEST(Pipeline, ChangedBuildDependencyRerunsTheCompilerOnly)
{
    Builds b;
    auto first = b.build();
    b.config += "dependencies:\n  run: []\n  build: [libxml2-dev]\n";
    auto r = b.build();
    EXPECT_EQ(ran(r), std::vector<std::string>{"compiler: bookworm/3.11 build dependencies"});
    EXPECT_NE(r.compilerImage, first.compilerImage);
    EXPECT_EQ(r.rootImage, first.rootImage);
    EXPECT_EQ(r.digest, first.digest); // the same wheels: the same runner
}

TEST(Pipeline, ChangedRunDependencyRerunsRootAndWhatIsOverIt)
{
    Builds b;
    auto first = b.build();
    b.config += "dependencies:\n  run: [libxml2]\n";
    auto r = b.build();
    EXPECT_EQ(ran(r),
              (std::vector<std::string>{"root: bookworm/3.11 run dependencies and user grocker",
                                        "compiler: bookworm/3.11 build dependencies",
                                        "runner: dependencies of shop", "runner: shop 1.0"}));
    EXPECT_NE(r.rootImage, first.rootImage);
    EXPECT_NE(r.digest, first.digest);
}

TEST(Pipeline, BadInputsAreAllReportedBeforeAnyWork)
{
    Builds b;
    b.config = "runtime: nosuch/1.0\n";
    writeTestFile(b.tmp / "grocker.yml", b.config);
    BuildRequest r;
    r.release = "shop==1.0";
    r.configFiles = {b.tmp / "grocker.yml"};
    r.storeRoot = b.tmp / "store";
    r.compileNetwork = "sometimes";
    r.runner = &b.runner;
    try {
        build::build(std::move(r));
        FAIL() << "a bad runtime and a bad --compile-network built";
    } catch (ConfigError& e) {
        ASSERT_EQ(e.problems().size(), 2u);
        EXPECT_NE(e.problems()[0].find("nosuch/1.0"), std::string::npos) << e.problems()[0];
        EXPECT_EQ(e.problems()[1], "--compile-network 'sometimes' is neither host nor none");
    }
    EXPECT_FALSE(fs::exists(b.tmp / "store"));
}
