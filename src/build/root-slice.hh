#pragma once
// The root's Python slice: the files of a root image that the runner's app step reads, so that a
// fresh runner installs a new release without pulling and unpacking the whole root (private to
// src/build/).
//
// What it holds: every folder and symbolic link of the root (paths resolve as in the root, the
// sandbox's mount points are there), /etc, and the regular files of Debian's `python3` and of
// every package it depends on (Depends and Pre-Depends, recursively, as dpkg's status records
// them; the files as their .list files name them, merged-/usr paths resolved). The app step
// (install-wheels.py run by the venv's Python) reads nothing else: it writes only into the venv,
// which the dependencies' layer above the slice holds as the runner has it. So its layer is the
// one it makes over the whole root, byte for byte (the pipeline's test and bench/fleet compare
// digests); a step that fails over the slice runs again over the root.

#include "grocker/oci/layer-files.hh"

#include <map>
#include <set>
#include <string>
#include <vector>

namespace grocker::build {

// Changes whenever what a slice holds changes: part of the slice's name.
inline constexpr const char* sliceRecipe = "python3, dash and their dependencies' files, every "
                                           "folder and symlink, /etc; two zstd layers; v3";

// Whether readImageFiles must read `path` for slicePaths: dpkg's status, its .list files, and
// the root's top-level entries (merged /usr's symbolic links).
bool sliceInput(const std::string& path);

// The paths ("usr/bin/python3.11", as the unpacker names them) of the regular files of
// `packages` and of what they depend on, from the files sliceInput selected; empty when one of
// them is not installed (a runtime whose Python is not Debian's).
std::set<std::string> slicePaths(const std::map<std::string, oci::LayerFile>& files,
                                 const std::vector<std::string>& packages);

// The source of a byte-compiled file ("usr/lib/python3.11/os.py" for
// "usr/lib/python3.11/__pycache__/os.cpython-311.pyc"), which dpkg's lists do not name (Debian's
// packages compile them when installed); "" for any other path. The slice holds the compiled
// files of the sources it holds: without them, every module the step imports is compiled again.
std::string sourceOfPyc(const std::string& path);

} // namespace grocker::build
