// The SBOM's formats and the facts they are made of: licences of Debian copyright files, SPDX
// expressions, package URLs, and documents made from a small database (tests/integration/build/
// sbom.sh checks real images with CycloneDX's validator).

#include "build/sbom.hh"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <regex>

using namespace grocker::build;
using nlohmann::json;

TEST(Sbom, DebianLicensesOfMachineReadableFiles)
{
    EXPECT_EQ(debianLicenses(
                  "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
                  "Upstream-Name: x\n\n"
                  "Files: *\nCopyright: 2000 A\nLicense: GPL-2+\n\n"
                  "Files: lib/*\nCopyright: 2001 B\nLicense: BSD-3-clause\n comment\n\n"
                  "Files: doc/*\nLicense: GPL-2+\n\n"
                  "License: GPL-2+\n This program is free software...\n"),
              (std::vector<std::string>{"GPL-2+", "BSD-3-clause"}));
    EXPECT_TRUE(
        debianLicenses("This is the Debian package of glibc.\n\nCopyright (C) 1991 FSF\n").empty());
}

TEST(Sbom, SpdxExpressions)
{
    EXPECT_EQ(spdxExpression({"GPL-2+"}), "GPL-2.0-or-later");
    EXPECT_EQ(spdxExpression({"GPL-2+", "BSD-3-clause", "GPL-2+"}),
              "BSD-3-Clause AND GPL-2.0-or-later");
    EXPECT_EQ(spdxExpression({"GPL-2+ or Artistic"}), "GPL-2.0-or-later OR Artistic-1.0-Perl");
    EXPECT_EQ(spdxExpression({"GPL-2+ or Artistic", "Expat"}),
              "(GPL-2.0-or-later OR Artistic-1.0-Perl) AND MIT");
    EXPECT_EQ(spdxExpression({"License :: OSI Approved :: MIT License"}), "MIT");
    EXPECT_EQ(spdxExpression({"GPL-2+ with OpenSSL exception"}), "");
    EXPECT_EQ(spdxExpression({"public-domain"}), "");
}

TEST(Sbom, PackageUrls)
{
    DebPackage p;
    p.name = "libstdc++6";
    p.version = "1:12.2.0-14+deb12u1";
    p.architecture = "amd64";
    EXPECT_EQ(debPurl(p, "debian-12"),
              "pkg:deb/debian/libstdc%2B%2B6@1%3A12.2.0-14%2Bdeb12u1?arch=amd64&distro=debian-12");
    EXPECT_EQ(pypiPurl("Zope.Interface", "6.0"), "pkg:pypi/zope-interface@6.0");
}

TEST(Sbom, DocumentsFromADatabase)
{
    std::map<std::string, grocker::oci::LayerFile> files;
    files["var/lib/dpkg/status"].data =
        "Package: python3\nStatus: install ok installed\nArchitecture: amd64\nVersion: "
        "3.11.2-1+b1\n"
        "Source: python3-defaults (3.11.2-1)\nDepends: python3.11 (>= 3.11.2-1~), "
        "libpython3-stdlib\n\n"
        "Package: python3.11\nStatus: install ok installed\nArchitecture: amd64\nVersion: "
        "3.11.2-6\n"
        "Provides: python3.11-venv\n\n"
        "Package: libpython3-stdlib\nStatus: install ok installed\nArchitecture: amd64\n"
        "Version: 3.11.2-1+b1\nSource: python3-defaults (3.11.2-1)\n\n"
        "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n";
    files["usr/share/doc/python3/copyright"].data =
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nLicense: PSF-2\n";
    files["usr/lib/os-release"].data = "ID=debian\nVERSION_ID=\"12\"\n";
    Sbom s = makeSbom(rootPackages(files), {}, "app:1.0", 0);
    ASSERT_EQ(s.debs.size(), 3u);
    // Kept and read back as they were.
    EXPECT_EQ(toJson(rootPackagesFromJson(toJson(rootPackages(files)))),
              toJson(rootPackages(files)));
    EXPECT_EQ(s.distro, "debian-12");
    auto cdx = json::parse(cycloneDxJson(s));
    EXPECT_EQ(cdx["specVersion"], "1.5");
    EXPECT_EQ(cdx["metadata"]["timestamp"], "1970-01-01T00:00:00Z");
    EXPECT_TRUE(std::regex_match(cdx["serialNumber"].get<std::string>(),
                                 std::regex("urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab]"
                                            "[0-9a-f]{3}-[0-9a-f]{12}")));
    json python3;
    for (auto& c : cdx["components"])
        if (c["name"] == "python3") python3 = c;
    EXPECT_EQ(python3["version"], "3.11.2-1+b1");
    EXPECT_EQ(python3["licenses"][0]["expression"], "PSF-2.0");
    EXPECT_EQ(python3["properties"][0]["value"], "python3-defaults 3.11.2-1");
    json deps;
    for (auto& d : cdx["dependencies"])
        if (d["ref"] == python3["bom-ref"]) deps = d["dependsOn"];
    EXPECT_EQ(deps,
              json({"pkg:deb/debian/libpython3-stdlib@3.11.2-1%2Bb1?arch=amd64&distro=debian-12",
                    "pkg:deb/debian/python3.11@3.11.2-6?arch=amd64&distro=debian-12"}));
    // The same input, the same bytes; another input, another id.
    EXPECT_EQ(cycloneDxJson(s), cycloneDxJson(makeSbom(rootPackages(files), {}, "app:1.0", 0)));
    EXPECT_NE(
        json::parse(cycloneDxJson(makeSbom(rootPackages(files), {}, "app:1.1", 0)))["serialNumber"],
        cdx["serialNumber"]);
    auto spdx = json::parse(spdxJson(s));
    EXPECT_EQ(spdx["spdxVersion"], "SPDX-2.3");
    EXPECT_EQ(spdx["packages"].size(), 3u);
    EXPECT_TRUE(spdx["documentNamespace"].get<std::string>().starts_with(
        "https://grocker.invalid/spdx/app%3A1.0-"));
}
