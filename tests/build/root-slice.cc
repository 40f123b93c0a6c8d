// The root's Python slice: which files of a root it holds, from dpkg's status and lists.

#include "root-slice.hh"

#include <gtest/gtest.h>

namespace grocker::build {
namespace {

using oci::LayerFile;

// A dpkg database as readImageFiles returns it, merged /usr's symlinks included.
std::map<std::string, LayerFile> database()
{
    std::map<std::string, LayerFile> f;
    f["var/lib/dpkg/status"] = {false, "Package: python3\n"
                                       "Status: install ok installed\n"
                                       "Depends: python3.11 (>= 3.11.2-1~),\n"
                                       " libpython3-stdlib (= 3.11.2-1+b1)\n"
                                       "\n"
                                       "Package: python3.11\n"
                                       "Status: install ok installed\n"
                                       "Pre-Depends: libc6 (>= 2.36)\n"
                                       "Depends: media-types | mime-support, python3-venv-any\n"
                                       "\n"
                                       "Package: libc6\n"
                                       "Architecture: amd64\n"
                                       "Status: install ok installed\n"
                                       "\n"
                                       "Package: media-types\n"
                                       "Status: install ok installed\n"
                                       "\n"
                                       "Package: venv-provider\n"
                                       "Status: install ok installed\n"
                                       "Provides: python3-venv-any (= 1)\n"
                                       "\n"
                                       "Package: libpython3-stdlib\n"
                                       "Status: deinstall ok config-files\n"
                                       "\n"
                                       "Package: perl\n"
                                       "Status: install ok installed\n"
                                       "\n"
                                       "Package: dash\n"
                                       "Status: install ok installed\n"};
    f["var/lib/dpkg/info/python3.list"] = {false, "/.\n/usr\n/usr/bin/python3\n"};
    f["var/lib/dpkg/info/python3.11.list"] = {false, "/usr/bin/python3.11\n"};
    f["var/lib/dpkg/info/libc6:amd64.list"] = {false, "/lib/x86_64-linux-gnu/libc.so.6\n"
                                                      "/lib64/ld-linux-x86-64.so.2\n"};
    f["var/lib/dpkg/info/media-types.list"] = {false, "/etc/mime.types\n"};
    f["var/lib/dpkg/info/venv-provider.list"] = {false, "/usr/lib/venv.py\n"};
    f["var/lib/dpkg/info/libpython3-stdlib.list"] = {false, "/usr/lib/stale\n"};
    f["var/lib/dpkg/info/perl.list"] = {false, "/usr/bin/perl\n"};
    f["var/lib/dpkg/info/dash.list"] = {false, "/bin/dash\n"};
    f["lib"] = {true, "usr/lib"};
    f["lib64"] = {true, "usr/lib64"};
    f["bin"] = {true, "usr/bin"};
    return f;
}

TEST(RootSlice, PathsOfThePackagesAndWhatTheyDependOn)
{
    auto paths = slicePaths(database(), {"python3", "dash"});
    EXPECT_EQ(paths, (std::set<std::string>{".", "usr", "usr/bin/python3", "usr/bin/python3.11",
                                            "usr/lib/x86_64-linux-gnu/libc.so.6",
                                            "usr/lib64/ld-linux-x86-64.so.2", "etc/mime.types",
                                            "usr/lib/venv.py", "usr/bin/dash"}));
}

TEST(RootSlice, NoneWhenAPackageIsNotInstalled)
{
    // A runtime whose Python is not Debian's: no slice, the root is pulled.
    EXPECT_TRUE(slicePaths(database(), {"python3", "busybox"}).empty());
    auto noStatus = database();
    noStatus.erase("var/lib/dpkg/status");
    EXPECT_TRUE(slicePaths(noStatus, {"python3"}).empty());
}

TEST(RootSlice, ReadsOnlyDpkgsDatabaseAndTheTopLevel)
{
    EXPECT_TRUE(sliceInput("var/lib/dpkg/status"));
    EXPECT_TRUE(sliceInput("var/lib/dpkg/info/libc6:amd64.list"));
    EXPECT_TRUE(sliceInput("lib"));
    EXPECT_FALSE(sliceInput("var/lib/dpkg/info/libc6.md5sums"));
    EXPECT_FALSE(sliceInput("var/lib/dpkg/info/sub/x.list"));
    EXPECT_FALSE(sliceInput("usr/bin/python3"));
}

TEST(RootSlice, CompiledFilesGoWithTheirSource)
{
    EXPECT_EQ(sourceOfPyc("usr/lib/python3.11/__pycache__/os.cpython-311.pyc"),
              "usr/lib/python3.11/os.py");
    EXPECT_EQ(sourceOfPyc("usr/lib/python3.11/json/__pycache__/decoder.cpython-311.opt-1.pyc"),
              "usr/lib/python3.11/json/decoder.py");
    EXPECT_EQ(sourceOfPyc("usr/lib/python3.11/os.py"), "");
    EXPECT_EQ(sourceOfPyc("usr/lib/x__pycache__/os.cpython-311.pyc"), "");
    EXPECT_EQ(sourceOfPyc("usr/lib/__pycache__/.pyc"), "");
}

} // namespace
} // namespace grocker::build
