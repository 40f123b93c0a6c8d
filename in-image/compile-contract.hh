#pragma once
// The compile step's contract: what grocker gives in-image/grocker-compile.py in each box of the
// compile pass (src/compile.cc builds the boxes from these constants) and what the script must
// leave there. The script spells the same paths and names (its OUT, ENV, ...): change both sides
// together, and the compiler image's key changes with the script's bytes.
//
// Every box runs the script in the compiler image, as `user` with `home` as its working folder,
// in a sandbox of its own, with:
//   outDir          /out, writable, empty: the box's only output;
//   buildEnvDir     read-only: setuptools and wheel, extracted by the host from the compiler
//                   image's wheels (the prepared build environment);
//   the source, read-only: the project's folder at projectDir, an sdist at sdistPath(FILE), the
//                   app's wheel at appWheelPath(FILE);
//   environment     HOME, SOURCE_DATE_EPOCH (wheels with fixed zip times), constraintEnv naming
//                   constraintPath when the configuration has a pip constraint, pip's own
//                   (PIP_CONFIG_FILE at pipConfPath, PIP_INDEX_URL, PIP_FIND_LINKS, ...).
// and one of these command lines, with what it must leave in outDir:
//   scriptPath projectMode projectDir            exactly one wheel (*.whl), the project's;
//   scriptPath sdistMode sdistPath(FILE)         exactly one wheel, of the sdist's name and
//   version; scriptPath resolveMode TARGET MORE...        reportFile: pip's `--dry-run --report` of
//   TARGET; scriptPath resolveProjectMode projectCopy[EXTRAS] MORE...
//                                                the same for projectDir, which the script copies
//                                                to projectCopy first (pip prepares metadata in
//                                                the project's folder, which is read-only).
// Whatever it leaves is input the host checks; no box sees a cache but the build environment.

#include <string>

namespace grocker::compileStep {

inline constexpr char scriptPath[] = "/usr/local/bin/grocker-compile"; // in the compiler image
inline constexpr char user[] = "grocker";
inline constexpr char home[] = "/home/grocker";

inline constexpr char outDir[] = "/out";
inline constexpr char reportFile[] = "report.json"; // in outDir
inline constexpr char buildEnvDir[] = "/run/grocker/build-env";
inline constexpr char projectDir[] = "/src/project";
inline constexpr char projectCopy[] = "/tmp/project";
inline std::string sdistPath(const std::string& file)
{
    return "/src/" + file;
}
inline std::string appWheelPath(const std::string& file)
{
    return "/src/app/" + file;
}

inline constexpr char constraintEnv[] = "GROCKER_PIP_CONSTRAINT";
inline constexpr char constraintPath[] = "/run/grocker/constraints.txt";
inline constexpr char pipConfPath[] = "/run/grocker/pip.conf";

inline constexpr char projectMode[] = "project";
inline constexpr char sdistMode[] = "sdist";
inline constexpr char resolveMode[] = "resolve";
inline constexpr char resolveProjectMode[] = "resolve-project";

} // namespace grocker::compileStep
