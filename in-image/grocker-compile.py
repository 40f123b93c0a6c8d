#!/usr/bin/env python3
# grocker-compile: the boxes of grocker build's compile pass (src/build/compile.hh), run in the
# compiler image as user grocker, each in a sandbox of its own. What they write is input that
# grocker checks; they see no cache but the build environment grocker made. The mounts, the
# environment, the command lines and the outputs below are the contract that
# in-image/compile-contract.hh states for the C++ side: change both together.
#
#   grocker-compile project /src/project   the project's wheel into /out
#   grocker-compile sdist /src/FILE        the sdist's wheel into /out
#   grocker-compile resolve TARGET...      /out/report.json: pip's report of what TARGET needs
#   grocker-compile resolve-project /tmp/project[EXTRAS] MORE...
#                                          the same for the project /src/project, copied to
#                                          /tmp/project (pip prepares its metadata in its folder)
#
# Read-only inputs: the source, /run/grocker/build-env (setuptools and wheel, extracted by
# grocker from the compiler image's wheels). Environment: GROCKER_PIP_CONSTRAINT (a file) and
# pip's own (PIP_INDEX_URL, PIP_CONFIG_FILE, PIP_FIND_LINKS, ...).
#
# Builds try the prepared build environment first (pip --no-build-isolation
# --check-build-dependencies, or for a project its PEP 517 backend called directly: pip makes a
# new environment each time), then pip's own isolated build when a package needs more.
import json
import os
import shutil
import subprocess
import sys

OUT = "/out"  # compile-contract.hh: outDir
ENV = "/run/grocker/build-env"  # buildEnvDir
LINKS = ["--find-links", "/usr/share/python-wheels"]
DEFAULT_REQUIRES = ["setuptools>=40.8.0", "wheel"]
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"


def fail(message):
    print("grocker-compile: " + message, file=sys.stderr)
    sys.exit(1)


def pip(*args, extra_env=None, check=True, capture=False):
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_CACHE_DIR="1", PIP_ROOT_USER_ACTION="ignore",
               **(extra_env or {}))
    r = subprocess.run([sys.executable, "-m", "pip", *args], env=env,
                       stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None)
    if check and r.returncode != 0:
        sys.exit(r.returncode)
    return r


def constraint_args():
    c = os.environ.get("GROCKER_PIP_CONSTRAINT", "")
    return ["--constraint", c] if c else []


def canonical(name):
    out, dash = [], False
    for c in name.lower():
        if c in "-_.":
            dash = True
            continue
        if dash and out:
            out.append("-")
        dash = False
        out.append(c)
    return "".join(out)


# --- the same wheel from the same source, on any machine ---------------------------------------
def reproducible_flags(folder):
    """What the builds below inherit so that the same source gives the same wheel bytes on any
    machine, as root or rootless (grocker gives SOURCE_DATE_EPOCH, and the folder a package is
    built in is always the same): the build folder written as '.' in compiled code (debug
    information, __FILE__), and Python's string hashing fixed (sets iterated in one order by
    build code that writes files lists)."""
    os.environ["PYTHONHASHSEED"] = "0"
    if folder:
        flag = "-ffile-prefix-map=" + folder + "=."
        for var in ("CFLAGS", "CXXFLAGS"):
            os.environ[var] = (os.environ.get(var, "") + " " + flag).strip()


# --- a project's wheel ------------------------------------------------------------------------
def build_system(project):
    """(requires, backend, backend-path) of a project, as pip reads them (PEP 517/518)."""
    path = os.path.join(project, "pyproject.toml")
    if not os.path.exists(path):
        return DEFAULT_REQUIRES, LEGACY_BACKEND, []
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        try:
            from pip._vendor import tomli as tomllib  # pip 21.2+
        except ImportError:
            return None  # an older pip: its own build
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, ValueError):
        return None  # pip says what is wrong
    bs = data.get("build-system")
    if bs is None:
        return DEFAULT_REQUIRES, LEGACY_BACKEND, []
    requires = bs.get("requires")
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        return None  # pip says what is wrong
    backend = bs.get("build-backend", LEGACY_BACKEND)
    backend_path = bs.get("backend-path", [])
    if not isinstance(backend, str) or not isinstance(backend_path, list):
        return None
    return requires, backend, backend_path


# Runs in a build environment with no site-packages but the environment's (python -S): imports
# the backend, asks for its extra requirements (when requires_out is set), builds the wheel (when
# name_out is set).
HOOKS = r"""
import importlib, json, os, site, sys
a = json.loads(sys.argv[1])
sys.path = [p for p in sys.path if p not in ("", os.getcwd())]
for p in reversed(a["backend_path"]):
    sys.path.insert(0, os.path.join(os.getcwd(), p))
site.addsitedir(a["env"])
module, _, attr = a["backend"].partition(":")
backend = importlib.import_module(module)
for part in attr.split(".") if attr else []:
    backend = getattr(backend, part)
if a["requires_out"]:
    hook = getattr(backend, "get_requires_for_build_wheel", None)
    requires = list(hook(None)) if hook else []
    with open(a["requires_out"], "w") as f:
        json.dump(requires, f)
if a["name_out"]:
    name = backend.build_wheel(a["wheel_dir"], None, None)
    with open(a["name_out"], "w") as f:
        f.write(name)
"""
REQUIRES_OUT = "/tmp/grocker-requires.json"
NAME_OUT = "/tmp/grocker-wheel-name"


def pip_verbose():
    """Whether pip is told to be verbose (PIP_VERBOSE, or verbose in the pip.conf's [global],
    [wheel] or [install])."""
    def truthy(v):
        return v.strip().lower() not in ("", "0", "false", "no", "off")
    if truthy(os.environ.get("PIP_VERBOSE", "")):
        return True
    conf = os.environ.get("PIP_CONFIG_FILE", "")
    if not conf:
        return False
    import configparser
    c = configparser.RawConfigParser()
    try:
        c.read(conf)
    except (configparser.Error, OSError, UnicodeDecodeError):
        return False
    return any(truthy(c.get(sec, "verbose", fallback="")) for sec in ("global", "wheel", "install"))


def satisfied(requires, env):
    """Whether the build environment `env` holds every one of `requires`."""
    from importlib import metadata as im
    from pip._vendor.packaging.requirements import Requirement
    have = {canonical(d.metadata["Name"]): d.version for d in im.distributions(path=[env])}
    for text in requires:
        r = Requirement(text)
        if r.marker is not None and not r.marker.evaluate({"extra": ""}):
            continue
        v = have.get(canonical(r.name))
        if v is None or not r.specifier.contains(v, prereleases=True):
            return False
    return True


def holds(requires, env):
    try:
        return satisfied(requires, env)
    except Exception:  # a requirement pip's parser refuses: pip says what is wrong
        return False


def run_hooks(project, bs, env, wheel_dir, requires, build):
    """The backend of `project` (bs: build_system's answer) in the environment `env`: its extra
    requirements asked for (requires), the wheel built into wheel_dir (build). As pip's builds:
    no user site, no system site-packages, the environment's scripts first on the PATH; the
    backend's own output shown when pip would show it (verbose), as pip wheel does."""
    _, backend, backend_path = bs
    args = {"env": env, "backend": backend, "backend_path": backend_path, "wheel_dir": wheel_dir,
            "requires_out": REQUIRES_OUT if requires else "", "name_out": NAME_OUT if build else ""}
    quiet = None if pip_verbose() else subprocess.DEVNULL
    path = os.path.join(env, "bin") + os.pathsep + os.environ.get("PATH", "")
    r = subprocess.run([sys.executable, "-S", "-s", "-c", HOOKS, json.dumps(args)], cwd=project,
                       stdout=quiet, stderr=quiet, env=dict(os.environ, PATH=path))
    return r.returncode == 0


def read_json(path):
    with open(path) as f:
        return json.load(f)


def built_wheel(wheel_dir):
    with open(NAME_OUT) as f:
        return os.path.join(wheel_dir, f.read().strip())


def fast_project_wheel(project, wheel_dir):
    """The project's wheel through its backend in the prepared environment, or None."""
    bs = build_system(project)
    if bs is None or not holds(bs[0], ENV):
        return None
    os.makedirs(wheel_dir, exist_ok=True)
    if not run_hooks(project, bs, ENV, wheel_dir, True, True):
        return None
    if not holds(read_json(REQUIRES_OUT), ENV):
        return None  # the backend wants more than the environment holds
    return built_wheel(wheel_dir)


DEPS = "/tmp/build-deps"  # the build environment of its own that a package's requirements make


def install_build_deps(requires):
    return not requires or pip("install", "--target", DEPS, "--no-warn-script-location", "--quiet", *LINKS,
                               *constraint_args(), *requires, check=False).returncode == 0


def isolated_wheel(project, wheel_dir):
    """The project's wheel in a build environment of its own, made of its build requirements
    (from the index and the find-links) as pip's isolated builds do, but always in the same
    folder: pip's random one ends up in compiled code (a header of a build requirement, say
    numpy's, is named in the debug information). None when that cannot be done here."""
    bs = build_system(project)
    if bs is None:
        return None
    print(f"grocker-compile: {os.path.basename(project)} needs more than the prepared build environment: "
          "building it in an environment of its own", flush=True)
    shutil.rmtree(DEPS, ignore_errors=True)
    if not install_build_deps(bs[0]) or not run_hooks(project, bs, DEPS, wheel_dir, True, False):
        return None
    extra = read_json(REQUIRES_OUT)
    if not holds(extra, DEPS) and not install_build_deps(extra):
        return None
    os.makedirs(wheel_dir, exist_ok=True)
    if not run_hooks(project, bs, DEPS, wheel_dir, False, True):
        return None
    return built_wheel(wheel_dir)


def build_fresh(source, copy, wheel_dir, make_copy):
    """The wheel of a project (`make_copy` copies it to `copy`): in the prepared environment, else
    in one of its own; each try from a fresh copy (what a failed backend leaves behind, build/ and
    *.egg-info, must not reach the next). None when both fail."""
    for build in (fast_project_wheel, isolated_wheel):
        shutil.rmtree(copy, ignore_errors=True)
        shutil.rmtree(wheel_dir, ignore_errors=True)
        top = make_copy(source, copy)
        if top is None:
            return None
        built = build(top, wheel_dir)
        if built is not None:
            return built
    return None


def project(source):
    # pip builds a project in its folder: build from a copy, the source is read-only.
    reproducible_flags("/tmp/project")
    built = build_fresh(source, "/tmp/project", "/tmp/app",
                        lambda s, c: shutil.copytree(s, c, symlinks=True))
    if built is None:
        shutil.rmtree("/tmp/project", ignore_errors=True)
        shutil.rmtree("/tmp/app", ignore_errors=True)
        shutil.copytree(source, "/tmp/project", symlinks=True)
        pip("wheel", "--no-deps", "--wheel-dir", "/tmp/app", *LINKS, *constraint_args(), "/tmp/project")
        wheels = [w for w in os.listdir("/tmp/app") if w.endswith(".whl")]
        if len(wheels) != 1:
            fail(f"pip wheel of the project made {len(wheels)} wheels, not one")
        built = os.path.join("/tmp/app", wheels[0])
    shutil.copyfile(built, os.path.join(OUT, os.path.basename(built)))


# --- sdists: in the prepared build environment first ------------------------------------------
def pip_prepared_first(args, fallback_message, before_fallback=None):
    """pip ARGS with the prepared build environment standing in for the isolated ones pip would
    make (--no-build-isolation, and --check-build-dependencies so that pip refuses an sdist whose
    build requirements it does not satisfy); when one needs more, pip ARGS again with pip's own
    isolated builds."""
    path = os.pathsep.join(p for p in (ENV, os.environ.get("PYTHONPATH", "")) if p)
    r = pip(*args, "--no-build-isolation", "--check-build-dependencies", extra_env={"PYTHONPATH": path},
            check=False, capture=True)
    if r.returncode == 0:
        sys.stdout.buffer.write(r.stdout)
        sys.stdout.flush()
        return
    print("grocker-compile: " + fallback_message, flush=True)
    if before_fallback:
        before_fallback()
    pip(*args)


def unpack_sdist(source, target):
    """The sdist's top folder, unpacked under target (PEP 517: NAME-VERSION/), or None. The box
    is the sdist's own: what it unpacks can harm nothing but the box."""
    import tarfile
    import zipfile
    os.makedirs(target)
    try:
        if source.endswith(".zip"):
            with zipfile.ZipFile(source) as z:
                z.extractall(target)
        else:
            with tarfile.open(source) as t:
                if hasattr(tarfile, "data_filter"):
                    t.extractall(target, filter="data")
                else:
                    t.extractall(target)
    except (OSError, tarfile.TarError, zipfile.BadZipFile, ValueError):
        return None
    tops = os.listdir(target)
    if len(tops) != 1 or not os.path.isdir(os.path.join(target, tops[0])):
        return None
    top = os.path.join(target, tops[0])
    if not any(os.path.exists(os.path.join(top, f)) for f in ("pyproject.toml", "setup.py")):
        return None
    return top


def sdist(source):
    """The wheel of one sdist, no dependencies: its backend called directly (as PEP 517 frontends
    do; pip would start itself and the backend twice) in the prepared build environment, else in
    one of its own, else pip wheel. All build in the same folder, /tmp/sdist/NAME-VERSION, not in
    a random one of pip's: the folder ends up in compiled code (debug information, the GNU
    build-id)."""
    reproducible_flags("/tmp/sdist")
    built = build_fresh(source, "/tmp/sdist", "/tmp/wheel", unpack_sdist)
    if built is not None:
        shutil.copyfile(built, os.path.join(OUT, os.path.basename(built)))
        return
    # The last resort: pip's own build, which says what is wrong.
    shutil.rmtree("/tmp/sdist", ignore_errors=True)
    shutil.rmtree("/tmp/wheel", ignore_errors=True)
    top = unpack_sdist(source, "/tmp/sdist")
    pip("wheel", "--no-deps", "--wheel-dir", "/tmp/wheel", *LINKS, *constraint_args(), top or source)
    for w in os.listdir("/tmp/wheel"):
        shutil.copyfile(os.path.join("/tmp/wheel", w), os.path.join(OUT, w))


# --- the resolution ---------------------------------------------------------------------------
def resolve(targets):
    """pip's report of what the targets need (pip prepares sdists' metadata, so build code runs
    here too: grocker checks the report and fetches every file itself), the metadata prepared
    as the sdists' builds are."""
    pip_prepared_first(["install", "--dry-run", "--ignore-installed", "--quiet", "--report",
                        os.path.join(OUT, "report.json"), "--target", "/tmp/resolve-target", *LINKS,
                        *constraint_args(), *targets],
                       "a dependency's metadata needs more than the prepared build environment: "
                       "pip again, with isolated build environments")


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("project", "sdist", "resolve", "resolve-project"):
        fail("usage: grocker-compile project|sdist SOURCE, or grocker-compile resolve|resolve-project TARGET...")
    mode = sys.argv[1]
    if mode == "project":
        project(sys.argv[2])
    elif mode == "sdist":
        sdist(sys.argv[2])
    elif mode == "resolve-project":
        if sys.argv[2] != "/tmp/project" and not sys.argv[2].startswith("/tmp/project["):
            fail("resolve-project resolves /tmp/project[EXTRAS], a copy of /src/project")
        shutil.copytree("/src/project", "/tmp/project", symlinks=True)
        resolve(sys.argv[2:])
    else:
        resolve(sys.argv[2:])


if __name__ == "__main__":
    main()
