// Tests of src/runtimes.cc: the packaged table and its lookups.

#include "runtimes.hh"

#include "config.hh"
#include "grocker/error.hh"
#include "grocker/oci/reference.hh"

#include <algorithm>
#include <gtest/gtest.h>
#include <set>

using namespace grocker;

TEST(Runtimes, DefaultComesFirst)
{
    ASSERT_FALSE(runtimes().empty());
    EXPECT_EQ(runtimes()[0].name, defaultRuntime);
    EXPECT_EQ(Config{}.runtime, defaultRuntime);
    EXPECT_EQ(runtimes()[0].base, Runtime::Base::Mmdebstrap) << "the default needs no registry";
}

TEST(Runtimes, Finds)
{
    const auto& b311 = findRuntime("bookworm/3.11");
    EXPECT_EQ(b311.base, Runtime::Base::Mmdebstrap);
    EXPECT_EQ(b311.suite, "bookworm");
    EXPECT_EQ(b311.image, "");
    EXPECT_EQ(b311.python, "/usr/bin/python3");
    EXPECT_EQ(b311.uwsgiPlugin, "python3");

    const auto& b312 = findRuntime("bookworm/3.12");
    EXPECT_EQ(b312.base, Runtime::Base::Registry);
    EXPECT_EQ(b312.image, "docker.io/library/python:3.12-slim-bookworm");
    EXPECT_EQ(b312.python, "/usr/local/bin/python3.12");
    EXPECT_EQ(b312.uwsgiPlugin, "") << "Debian's plugin is built for Debian's 3.11";

    const auto& bullseye = findRuntime("bullseye/3.9");
    EXPECT_EQ(bullseye.base, Runtime::Base::Mmdebstrap);
    EXPECT_EQ(bullseye.suite, "bullseye");

    EXPECT_EQ(lookupRuntime("bookworm/3.11"), &b311);
    EXPECT_EQ(lookupRuntime("bookworm"), nullptr);
    EXPECT_EQ(lookupRuntime(""), nullptr);
}

TEST(Runtimes, UnknownNamesListTheKnownOnes)
{
    for (std::string name : {"bookworm/3.13", "python3", "", "BOOKWORM/3.11"}) {
        try {
            findRuntime(name);
            ADD_FAILURE() << "no error for '" << name << "'";
        } catch (const UsageError& e) {
            EXPECT_EQ(e.message(),
                      "unknown runtime '" + name +
                          "' (known runtimes: bookworm/3.11, bookworm/3.12, bullseye/3.9)");
        }
    }
    EXPECT_EQ(unknownRuntimeMessage(std::string(300, 'x')),
              "unknown runtime '" + std::string(100, 'x') +
                  "' (known runtimes: bookworm/3.11, bookworm/3.12, bullseye/3.9)");
}

TEST(Runtimes, TableIsConsistent)
{
    std::set<std::string_view> names;
    for (const auto& r : runtimes()) {
        SCOPED_TRACE(std::string(r.name));
        EXPECT_TRUE(names.insert(r.name).second) << "the name is unique";
        EXPECT_TRUE(r.name.starts_with(r.suite)) << "the name starts with the suite";
        EXPECT_TRUE(r.python.starts_with("/"));
        EXPECT_EQ(r.base == Runtime::Base::Registry, !r.image.empty()) << "an image iff pulled";
        if (!r.image.empty()) {
            EXPECT_NO_THROW(oci::Reference::parse(r.image));
        }
        // A Debian interpreter goes with Debian's uwsgi plugin; another one brings its own uwsgi.
        EXPECT_EQ(r.python.starts_with("/usr/bin/"), !r.uwsgiPlugin.empty());
        bool debianPython = std::find(r.runDependencies.begin(), r.runDependencies.end(),
                                      "python3") != r.runDependencies.end();
        EXPECT_EQ(debianPython, r.python.starts_with("/usr/bin/"));
        for (auto needed : {"cron", "msmtp-mta", "ca-certificates", "tzdata", "libpq5"})
            EXPECT_NE(std::find(r.runDependencies.begin(), r.runDependencies.end(), needed),
                      r.runDependencies.end())
                << needed;
        EXPECT_NE(
            std::find(r.buildDependencies.begin(), r.buildDependencies.end(), "build-essential"),
            r.buildDependencies.end());
        std::set<std::string_view> run(r.runDependencies.begin(), r.runDependencies.end());
        std::set<std::string_view> build(r.buildDependencies.begin(), r.buildDependencies.end());
        EXPECT_EQ(run.size(), r.runDependencies.size()) << "no package twice";
        EXPECT_EQ(build.size(), r.buildDependencies.size()) << "no package twice";
        for (auto p : build)
            EXPECT_FALSE(run.contains(p)) << p << " is in both lists";
        for (auto p : run)
            EXPECT_FALSE(p.ends_with("-dev")) << p << ": headers in the runner";
    }
}

TEST(Runtimes, PackagesPassTheConfigurationsChecks)
{
    // The table's packages would be accepted in `dependencies`: same rules for both.
    for (const auto& r : runtimes()) {
        std::string yaml = "dependencies:\n  run:\n";
        for (auto p : r.runDependencies)
            yaml += "    - " + std::string(p) + "\n";
        yaml += "  build:\n";
        for (auto p : r.buildDependencies)
            yaml += "    - " + std::string(p) + "\n";
        yaml += "runtime: " + std::string(r.name) + "\n";
        EXPECT_NO_THROW(mergeConfigText(Config{}, yaml, "table", "/")) << r.name;
    }
}
