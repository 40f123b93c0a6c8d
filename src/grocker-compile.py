#!/usr/bin/env python3
# grocker-compile RELEASE: the compile step of `grocker build`, run in the compiler image as
# user grocker. Writes the wheels of RELEASE and of its dependencies into /out/wheels, and
# /out/report.json: what the runner installs, in the shape of `pip install --report`.
#
# RELEASE is /src/project (a project folder, read-only), /src/NAME.whl, or NAME[EXTRAS]==VERSION.
# Read-only inputs: /wheels (the wheel cache), /cache/compile (earlier resolutions),
# /cache/build-envs (prepared build environments). Written, for grocker to move into those
# caches afterwards, whole: /out/wheels, /out/resolutions/KEY.json, /out/build-envs/KEY.
# Environment: GROCKER_EXTRAS, GROCKER_PIP_CONSTRAINT (a file), GROCKER_REQUIREMENTS (more to
# install beside the release, space-separated: uwsgi where the runtime has none for its Python),
# GROCKER_INDEX_KEY (a digest of
# the compiler and the index settings), GROCKER_COMPILER (the compiler image's digest), and
# pip's own (PIP_INDEX_URL, PIP_CONFIG_FILE, ...).
#
# Three shortcuts over plain `pip wheel`, each falling back to it when it does not apply:
# - a project's own wheel is built by calling its PEP 517 backend once, in an isolated build
#   environment prepared once per set of build requirements (pip makes a new one each time);
# - its dependencies are resolved again only when its requirements (Requires-Dist), its extras,
#   the constraints or the index settings changed (or GROCKER_REFRESH is set: grocker build
#   --refresh); otherwise the last resolution's wheels, still in the wheel cache, unchanged,
#   are taken;
# - sdists of dependencies are built in a prepared environment (setuptools and wheel), not in
#   one pip makes for each: pip checks that it holds each sdist's build requirements.
import email.parser
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile

OUT = "/out"
LINKS = ["--find-links", "/out/wheels", "--find-links", "/wheels", "--find-links", "/usr/share/python-wheels"]
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


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def key(*parts):
    return hashlib.sha256(json.dumps([os.environ.get("GROCKER_INDEX_KEY", ""), *parts]).encode()).hexdigest()


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


def metadata(wheel):
    """The METADATA of a wheel, parsed (Name, Version, Requires-Dist, ...)."""
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if len(names) != 1:
            fail(f"the wheel '{wheel}' has no single .dist-info/METADATA: is it a wheel?")
        return email.parser.BytesParser().parsebytes(z.read(names[0]), headersonly=True)


def entry(wheel, requested):
    m = metadata(wheel)
    return {"metadata": {"name": m["Name"], "version": m["Version"]},
            "download_info": {"url": "file://" + os.path.abspath(wheel)}, "requested": requested}


# --- the project's own wheel ------------------------------------------------------------------
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


# Runs in the build environment with no site-packages but the environment's (python -S):
# imports the backend, asks for its extra requirements, builds the wheel.
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
hook = getattr(backend, "get_requires_for_build_wheel", None)
requires = list(hook(None)) if hook else []
with open(a["requires_out"], "w") as f:
    json.dump(requires, f)
name = backend.build_wheel(a["wheel_dir"], None, None)
with open(a["name_out"], "w") as f:
    f.write(name)
"""


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


def build_env(requires):
    """A prepared environment holding `requires`: from the cache, or made now into /out."""
    k = key("build-env", sys.version, sorted(requires))
    cached = os.path.join("/cache/build-envs", k)
    if os.path.isdir(cached):
        return cached
    made = os.path.join(OUT, "build-envs", k)
    if not os.path.isdir(made):
        os.makedirs(os.path.dirname(made), exist_ok=True)
        tmp = made + ".tmp"
        pip("install", "--quiet", "--target", tmp, "--ignore-installed", "--no-warn-script-location", *LINKS, *requires)
        # Whose it is: `grocker purge` removes it with its compiler image.
        with open(os.path.join(tmp, ".grocker-compiler"), "w") as f:
            f.write(os.environ.get("GROCKER_COMPILER", "") + "\n")
        os.rename(tmp, made)
    return made


def fast_project_wheel(project, wheel_dir):
    """The project's wheel through its backend in a prepared environment, or None."""
    bs = build_system(project)
    if bs is None:
        return None
    requires, backend, backend_path = bs
    env = build_env(requires)
    os.makedirs(wheel_dir, exist_ok=True)
    args = {"env": env, "backend": backend, "backend_path": backend_path, "wheel_dir": wheel_dir,
            "requires_out": "/tmp/grocker-requires.json", "name_out": "/tmp/grocker-wheel-name"}
    # As pip's builds: no user site, no system site-packages, a fresh temporary folder.
    r = subprocess.run([sys.executable, "-S", "-s", "-c", HOOKS, json.dumps(args)], cwd=project,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        return None
    with open(args["requires_out"]) as f:
        extra = json.load(f)
    try:
        enough = satisfied(extra, env)
    except Exception:  # a requirement pip's parser refuses: pip says what is wrong
        enough = False
    if not enough:
        return None  # the backend wants more than the environment holds: pip makes one
    with open(args["name_out"]) as f:
        return os.path.join(wheel_dir, f.read().strip())


def project_wheel(project):
    """Builds the project's own wheel (alone, so that its file name is known) into /out/wheels."""
    # pip builds a project in its folder: build from a copy, the source is read-only.
    shutil.copytree(project, "/tmp/project", symlinks=True)
    for attempt in ("fast", "pip"):
        shutil.rmtree("/tmp/app", ignore_errors=True)
        if attempt == "fast":
            built = fast_project_wheel("/tmp/project", "/tmp/app")
            if built is None:
                # What the backend left behind (build/, *.egg-info) must not reach pip's build.
                shutil.rmtree("/tmp/project")
                shutil.copytree(project, "/tmp/project", symlinks=True)
                continue
        else:
            pip("wheel", "--no-deps", "--wheel-dir", "/tmp/app", *LINKS, *constraint_args(), "/tmp/project")
            wheels = [w for w in os.listdir("/tmp/app") if w.endswith(".whl")]
            if len(wheels) != 1:
                fail(f"pip wheel of the project made {len(wheels)} wheels, not one")
            built = os.path.join("/tmp/app", wheels[0])
        dest = os.path.join(OUT, "wheels", os.path.basename(built))
        shutil.copyfile(built, dest)
        return dest


def check_python(wheel):
    """Refuses a wheel whose Requires-Python excludes this Python, as pip does."""
    spec = metadata(wheel).get("Requires-Python")
    if not spec:
        return
    from pip._vendor.packaging.specifiers import InvalidSpecifier, SpecifierSet
    version = ".".join(str(v) for v in sys.version_info[:3])
    try:
        ok = SpecifierSet(spec).contains(version, prereleases=True)
    except InvalidSpecifier:
        ok = True  # pip ignores an invalid one too
    if not ok:
        fail(f"{os.path.basename(wheel)} requires Python {spec}, and the runtime's is {version}: "
             "choose another runtime (--runtime) or release")


def pip_wheel(*requirements):
    """pip wheel of `requirements` and their dependencies into /out/wheels. First with the
    prepared default build environment standing in for the isolated one pip would make for each
    sdist (--no-build-isolation, and --check-build-dependencies so that pip refuses an sdist
    whose build requirements it does not satisfy); when any sdist needs more, the whole run
    again with pip's own isolated builds."""
    wheels = os.path.join(OUT, "wheels")
    before = set(os.listdir(wheels))
    args = ["wheel", "--wheel-dir", wheels, *LINKS, *constraint_args(), *requirements]
    env = build_env(DEFAULT_REQUIRES)
    path = os.pathsep.join(p for p in (env, os.environ.get("PYTHONPATH", "")) if p)
    r = pip(*args, "--no-build-isolation", "--check-build-dependencies", extra_env={"PYTHONPATH": path},
            check=False, capture=True)
    if r.returncode == 0:
        sys.stdout.buffer.write(r.stdout)
        sys.stdout.flush()
        return
    print("grocker-compile: a dependency's build needs more than the prepared build environment: "
          "pip wheel again, with an isolated build environment for each sdist", flush=True)
    for w in set(os.listdir(wheels)) - before:
        os.unlink(os.path.join(wheels, w))
    pip(*args)


# --- dependencies ---------------------------------------------------------------------------------
def more_requirements():
    return os.environ.get("GROCKER_REQUIREMENTS", "").split()


def cached_resolution(k):
    """The wheels of an earlier resolution, when each is in the wheel cache unchanged."""
    try:
        with open(os.path.join("/cache/compile", k + ".json")) as f:
            entry_ = json.load(f)
        wheels = entry_["wheels"]
        for file, d in wheels.items():
            if file_digest(os.path.join("/wheels", file)) != d:
                return None
        return [os.path.join("/wheels", file) for file in wheels]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def dependencies(app, extras):
    """The wheels of the app's dependencies: an earlier resolution of the same requirements,
    or a new one (pip wheel of the app's wheel)."""
    m = metadata(app)
    constraints = os.environ.get("GROCKER_PIP_CONSTRAINT", "")
    k = key("resolution", sys.version, canonical(m["Name"]), sorted(m.get_all("Requires-Dist") or []),
            sorted(canonical(e) for e in extras.split(",") if e),
            file_digest(constraints) if constraints else "", sorted(more_requirements()))
    found = None if os.environ.get("GROCKER_REFRESH") else cached_resolution(k)
    if found is not None:
        print(f"dependencies of {m['Name']}: unchanged requirements, the last resolution's wheels")
        return found
    target = app + (f"[{extras}]" if extras else "")
    pip_wheel(target, *more_requirements())
    deps = sorted(os.path.join(OUT, "wheels", w) for w in os.listdir(os.path.join(OUT, "wheels"))
                  if w.endswith(".whl") and w != os.path.basename(app))
    os.makedirs(os.path.join(OUT, "resolutions"), exist_ok=True)
    with open(os.path.join(OUT, "resolutions", k + ".json"), "w") as f:
        json.dump({"report": {"install": [entry(d, False) for d in deps]},
                   "wheels": {os.path.basename(d): file_digest(d) for d in deps}}, f, sort_keys=True)
    return deps


def main():
    if len(sys.argv) != 2:
        fail("usage: grocker-compile RELEASE")
    release = sys.argv[1]
    extras = os.environ.get("GROCKER_EXTRAS", "")
    os.makedirs(os.path.join(OUT, "wheels"), exist_ok=True)
    if release == "/src/project" or release.startswith("/src/") and release.endswith(".whl"):
        if release == "/src/project":
            app = project_wheel(release)
        else:
            app = os.path.join(OUT, "wheels", os.path.basename(release))
            shutil.copyfile(release, app)
        check_python(app)
        install = [entry(app, True)] + [entry(d, False) for d in dependencies(app, extras)]
    else:
        # NAME[EXTRAS]==VERSION: pip resolves it all; the app is the wheel of that name.
        pip_wheel(release, *more_requirements())
        name = canonical(release.split("[")[0].split("=")[0].split("<")[0].split(">")[0].split("~")[0].split("!")[0].strip())
        install = []
        for w in sorted(os.listdir(os.path.join(OUT, "wheels"))):
            if w.endswith(".whl"):
                e = entry(os.path.join(OUT, "wheels", w), False)
                e["requested"] = canonical(e["metadata"]["name"]) == name
                install.append(e)
    with open(os.path.join(OUT, "report.json"), "w") as f:
        json.dump({"install": install}, f, sort_keys=True)


if __name__ == "__main__":
    main()
