#!/usr/bin/env python3
# install-wheels [--requested WHEEL]... WHEEL...: installs each WHEEL (a .whl file) into the
# virtualenv of the Python running this script, as `pip install --no-deps` (pip 23) would, with
# the standard library only: importing pip costs more than installing a small app.
# `--requested W` (or `--requested=W`, W as given in the list) writes W's REQUESTED file.
#
# Run by the runner image's steps as VENV/bin/python3 /run/grocker/install-wheels, mounted
# read-only. Follows the binary distribution format spec (PEP 427) and RECORD (PEP 376) the
# way pip does, except where reproducibility or safety asks otherwise:
# - .pyc files are unchecked-hash ones (PEP 552; no timestamp), listed in RECORD with a hash;
# - the wheel is checked against its RECORD before anything is written (pip 23 checks nothing):
#   every file listed with a hash it matches, every row naming a file of the wheel, no row
#   naming a path out of it (RECORD and its signatures RECORD.jws, RECORD.p7s excepted);
# - no path of a wheel may leave the venv, even through a symlink already in the venv;
# - modes are set explicitly, whatever the umask; all of .data/scripts become 0755;
# - INSTALLER says grocker; no direct_url.json.
# Exit status: 0 done, 1 a wheel could not be installed, 2 bad usage or not run in a venv.
import base64
import csv
import email.parser
import hashlib
import importlib.util
import io
import os
import py_compile
import re
import sys
import sysconfig
import warnings
import zipfile
import zlib

CHUNK = 1 << 20
SCHEME_KEYS = ("purelib", "platlib", "headers", "scripts", "data")
# PEP 427's file name: NAME-VERSION(-BUILD)?-PYTHON-ABI-PLATFORM.whl (pip's regex).
WHEEL_NAME_RE = re.compile(r"^(?P<name>[^\s-]+?)-(?P<ver>[^\s-]*?)(-\d[^-]*?)?-[^\s-]+?-[^\s-]+?-[^\s-]+?\.whl$")
# The entry point grammar distlib (pip's script maker) accepts: module:attr.sub [extras].
ENTRY_NAME_RE = re.compile(r"[\w.+-]+")
ENTRY_VALUE_RE = re.compile(r"(?P<module>\w+(?:\.\w+)*):(?P<attr>\w+(?:\.\w+)*)"
                            r"\s*(?:\[\s*[\w-]+(?:=\w+)?(?:,\s*\w+(?:=\w+)?)*\s*\])?")
# distlib's wrapper, byte for byte, so the scripts are those pip writes.
SCRIPT_TEMPLATE = r"""# -*- coding: utf-8 -*-
import re
import sys
from %(module)s import %(import_name)s
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\.pyw|\.exe)?$', '', sys.argv[0])
    sys.exit(%(func)s())
"""


class InstallError(Exception):
    pass


def usage(message):
    print("install-wheels: " + message, file=sys.stderr)
    print("usage: VENV/bin/python3 install-wheels [--requested WHEEL]... WHEEL...", file=sys.stderr)
    sys.exit(2)


def canonical_name(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def within(path, root):
    return path == root or path.startswith(root.rstrip("/") + "/")


def escapes(name):
    """Whether a path of a wheel (an entry, a RECORD row) leads out of the folder it goes in."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return name.startswith("/") or ".." in parts or "\0" in name or not parts


def venv_scheme():
    """The install folders of the venv this Python runs in. Never sysconfig's default scheme:
    Debian patches it (posix_local, /usr/local) for the system's Python."""
    scheme = "venv" if "venv" in sysconfig.get_scheme_names() else "posix_prefix"
    paths = sysconfig.get_paths(scheme=scheme, vars={"base": sys.prefix, "platbase": sys.prefix})
    folders = {key: paths[key] for key in ("purelib", "platlib", "scripts", "data")}
    # pip's historical header folder in a virtualenv (it adds the project's name).
    folders["headers"] = os.path.join(sys.prefix, "include", "site", "python%d.%d" % sys.version_info[:2])
    for key, folder in folders.items():
        if not within(os.path.normpath(folder), sys.prefix):
            raise InstallError(f"the venv's {key} folder '{folder}' is outside the venv '{sys.prefix}' "
                               f"(sysconfig scheme '{scheme}'): this Python's installation is not supported")
    return folders


def check_digest(expected, data_hash, what):
    """expected: 'ALGO=urlsafe-base64' from RECORD; data_hash: a hashlib object of the bytes."""
    try:
        want = base64.urlsafe_b64decode(expected.split("=", 1)[1] + "==")
    except ValueError:
        raise InstallError(f"{what} has a malformed RECORD hash '{expected}': build the wheel again")
    if data_hash.digest() != want:
        raise InstallError(f"{what} does not match its RECORD entry ({expected}): the wheel is damaged or "
                           f"was changed after it was built; build or download it again")


def record_digest(expected, what):
    """A hashlib object for a RECORD hash 'ALGO=...' (refusing the algorithms the format forbids)."""
    algo = expected.split("=", 1)[0] if expected else "sha256"
    if algo in ("md5", "sha1") or algo not in hashlib.algorithms_guaranteed:
        raise InstallError(f"{what} has a RECORD hash of algorithm '{algo}', which the wheel format does not "
                           f"allow (sha256 or stronger); build the wheel again")
    return hashlib.new(algo)


def check_size(expected_size, size, what):
    if expected_size and expected_size != str(size):
        raise InstallError(f"{what} has {size} bytes, its RECORD entry says {expected_size}: the wheel is "
                           f"damaged or was changed after it was built; build or download it again")


def record_hash(digest):
    return "sha256=" + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


class Wheel:
    """One wheel's plan: where each of its files goes, checked before anything is written."""

    def __init__(self, path, requested, installer):
        folders = installer.folders
        self.path = path
        self.requested = requested
        match = WHEEL_NAME_RE.match(os.path.basename(path))
        if not match:
            raise InstallError(f"'{path}' is not named like a wheel (NAME-VERSION-PYTHON-ABI-PLATFORM.whl): "
                               f"give the file its name from the build")
        # pip names the headers folder after the name in the file name, '_' turned into '-'.
        self.name = match.group("name").replace("_", "-")
        try:
            self.zip = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise InstallError(f"wheel '{path}' does not exist")
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise InstallError(f"cannot open wheel '{path}' as a zip archive: {e}; build or download it again")
        names = [i.filename for i in self.zip.infolist()]
        info_dirs = sorted({n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info") and "/" in n})
        if len(info_dirs) != 1:
            found = ", ".join(info_dirs) if info_dirs else "none"
            raise InstallError(f"wheel '{path}' must hold exactly one .dist-info folder at its root (found: {found}); "
                               f"it is not a valid wheel: build it again")
        self.info_dir = info_dirs[0]
        self.signatures = {self.info_dir + "/RECORD.jws", self.info_dir + "/RECORD.p7s"}
        if not canonical_name(self.info_dir[:-len(".dist-info")]).startswith(canonical_name(self.name)):
            raise InstallError(f"wheel '{path}': its folder '{self.info_dir}' is not named after the project "
                               f"'{match.group('name')}' of the file name; rename the file as built")
        wheel_meta = email.parser.Parser().parsestr(self.read_text("WHEEL"))
        version = wheel_meta.get("Wheel-Version", "")
        if version.split(".")[0] != "1":
            raise InstallError(f"wheel '{path}' has Wheel-Version '{version}' in {self.info_dir}/WHEEL; "
                               f"only version 1.x wheels can be installed")
        self.lib_dir = folders["purelib" if wheel_meta.get("Root-Is-Purelib", "").lower() == "true" else "platlib"]
        self.record = {}
        try:
            for row in csv.reader(self.read_text("RECORD").splitlines()):
                if row:
                    self.record[row[0]] = (row[1] if len(row) > 1 else "", row[2] if len(row) > 2 else "")
        except csv.Error as e:
            raise InstallError(f"wheel '{path}' has a malformed {self.info_dir}/RECORD ({e}); build it again")
        consoles, guis = self.entry_points()
        self.entry_names = set(consoles) | set(guis)
        self.scripts = console_script_specs(consoles) + list(guis.items())

        # pip's order, which decides when two entries land on one path: the root, then .data
        # but scripts, then scripts (but setuptools' own wrappers of the entry points below).
        root, data, scripts = [], [], []
        for info in self.zip.infolist():
            if info.filename.endswith("/"):
                continue
            parts = self.safe_parts(info.filename)
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in SCHEME_KEYS:
                    raise InstallError(f"wheel '{path}' has '{info.filename}', which is not in a folder named after "
                                       f"a scheme ({', '.join(sorted(SCHEME_KEYS))}) of its .data folder; build it again")
                base = folders[parts[1]]
                if parts[1] == "headers":
                    base = os.path.join(base, self.name)
                if parts[1] == "scripts":
                    if not self.is_entry_point_wrapper(parts[-1]):
                        scripts.append((info, os.path.join(base, *parts[2:]), True))
                else:
                    data.append((info, os.path.join(base, *parts[2:]), False))
            else:
                root.append((info, os.path.join(self.lib_dir, *parts), False))
        self.files = root + data + scripts
        for _, dest, _ in self.files:
            installer.check_inside(os.path.dirname(dest))
        self.check_record()

    def check_record(self):
        """Every entry of the wheel against RECORD, and every row of RECORD against the wheel,
        before anything is written: a wheel changed after it was built is refused whole, never
        installed in part. Costs a second read of each file (extract reads it again)."""
        exempt = {self.info_dir + "/RECORD"} | self.signatures
        names = set()
        for info in self.zip.infolist():
            if info.filename.endswith("/"):
                continue
            names.add(info.filename)
            if info.filename in exempt:
                continue
            what = f"'{info.filename}' in wheel '{self.path}'"
            if info.filename not in self.record:
                raise InstallError(f"{what} is not listed in its {self.info_dir}/RECORD: the wheel was changed after "
                                   f"it was built, or its build is broken; build or download it again")
            expected, expected_size = self.record[info.filename]
            if not expected:
                raise InstallError(f"{what} is listed without a hash in its {self.info_dir}/RECORD; build the wheel again")
            h = record_digest(expected, what)
            size = 0
            try:
                with self.zip.open(info) as src:
                    while True:
                        chunk = src.read(CHUNK)
                        if not chunk:
                            break
                        h.update(chunk)
                        size += len(chunk)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
                raise InstallError(f"cannot read {what}: {e}; the wheel is damaged: build or download it again")
            check_digest(expected, h, what)
            check_size(expected_size, size, what)
        for name in self.record:
            if name in names or name in exempt:
                continue
            if escapes(name):
                # pip uninstall removes what RECORD lists: such a row would remove files elsewhere.
                raise InstallError(f"wheel '{self.path}': its {self.info_dir}/RECORD names '{name}', which is "
                                   f"outside the wheel's folder (an absolute path or '..'); refusing to install it: "
                                   f"the wheel is broken or hostile")
            raise InstallError(f"wheel '{self.path}': its {self.info_dir}/RECORD names '{name}', which is not in the "
                               f"wheel: the wheel is damaged or was changed after it was built; build or download it "
                               f"again")

    def read_text(self, name):
        try:
            return self.zip.read(self.info_dir + "/" + name).decode("utf-8")
        except KeyError:
            raise InstallError(f"wheel '{self.path}' has no {self.info_dir}/{name}: it is not a valid wheel; "
                               f"build it again")
        except (zipfile.BadZipFile, zlib.error, EOFError, UnicodeDecodeError) as e:
            raise InstallError(f"cannot read {self.info_dir}/{name} in wheel '{self.path}': {e}; "
                               f"the wheel is damaged: build or download it again")

    def safe_parts(self, name):
        if escapes(name):
            raise InstallError(f"wheel '{self.path}' has an entry '{name}' that would be written outside its "
                               f"folder (an absolute path or '..'); refusing to install it: the wheel is broken "
                               f"or hostile")
        return [p for p in name.split("/") if p not in ("", ".")]

    def entry_points(self):
        """[console_scripts] and [gui_scripts] of entry_points.txt, parsed as importlib.metadata
        does (pip 23's reader on Python 3.11): names keep their case, last one wins."""
        try:
            text = self.read_text("entry_points.txt")
        except InstallError:
            if self.info_dir + "/entry_points.txt" in self.zip.NameToInfo:
                raise
            return {}, {}
        groups = {"console_scripts": {}, "gui_scripts": {}}
        section = None
        for line in map(str.strip, text.splitlines()):
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line.strip("[]")
                continue
            if section not in groups:
                continue
            name, eq, value = line.partition("=")
            name, value = name.strip(), value.strip()
            if not eq or not ENTRY_NAME_RE.fullmatch(name) or not ENTRY_VALUE_RE.fullmatch(value):
                raise InstallError(f"wheel '{self.path}' has an invalid entry point '{line}' in [{section}] of "
                                   f"{self.info_dir}/entry_points.txt (expected NAME = module:function [extras]); "
                                   f"fix the project's entry points")
            groups[section][name] = value
        return groups["console_scripts"], groups["gui_scripts"]

    def is_entry_point_wrapper(self, name):
        # setuptools' own wrappers of an entry point (EP, EP.exe, EP-script.py, EP.pya): pip
        # skips them and writes its own.
        lower = name.lower()
        for suffix in (".exe", "-script.py", ".pya"):
            if lower.endswith(suffix):
                name = name[:-len(suffix)]
                break
        return name in self.entry_names


def console_script_specs(console):
    """pip's special case: the versioned scripts of pip and easy_install are those of the
    Python installing them, not of the one that built the wheel (ENSUREPIP_OPTIONS unset)."""
    console = dict(console)
    specs = []
    xy = "%d.%d" % sys.version_info[:2]
    pip = console.pop("pip", None)
    if pip:
        specs += [("pip", pip), ("pip%d" % sys.version_info[0], pip), ("pip" + xy, pip)]
        for k in [k for k in console if re.match(r"pip(\d+(\.\d+)?)?$", k)]:
            del console[k]
    easy_install = console.pop("easy_install", None)
    if easy_install:
        specs += [("easy_install", easy_install), ("easy_install-" + xy, easy_install)]
        for k in [k for k in console if re.match(r"easy_install(-\d+\.\d+)?$", k)]:
            del console[k]
    return specs + list(console.items())


class Installer:
    def __init__(self):
        self.folders = venv_scheme()
        self.venv_real = os.path.realpath(sys.prefix)
        self.inside = set()  # folders checked by check_inside
        self.made = set()  # folders made (or found) by make_dirs

    def check_inside(self, folder):
        """Refuses a folder that resolves outside the venv: a symlink already in the venv must
        not carry a wheel's files out. Called on every folder before anything is written (this
        script makes no symlink, so what it resolves to cannot change), and again as made."""
        if folder in self.inside:
            return
        existing = folder
        while not os.path.lexists(existing):
            existing = os.path.dirname(existing)
        real = os.path.realpath(existing)
        if not within(real, self.venv_real):
            raise InstallError(f"folder '{existing}' resolves to '{real}', outside the venv '{sys.prefix}'; "
                               f"refusing to write there: remove that symlink")
        if existing == folder:
            self.inside.add(folder)

    def make_dirs(self, folder):
        """Creates folder (0755) and its missing parents, inside the venv."""
        if folder in self.made:
            return
        if not os.path.isdir(folder):
            self.make_dirs(os.path.dirname(folder))
            try:
                os.mkdir(folder, 0o755)
            except FileExistsError:
                raise InstallError(f"cannot create folder '{folder}': a file of that name is in the way "
                                   f"(two wheels install conflicting paths?)")
            os.chmod(folder, 0o755)
        self.check_inside(folder)
        self.made.add(folder)

    def open_new(self, path, mode):
        """A file object for writing path anew, with mode. Replaces a file, or a symlink (never
        followed: pip too unlinks first), already there."""
        self.make_dirs(os.path.dirname(path))
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except (IsADirectoryError, PermissionError):
            if os.path.isdir(path) and not os.path.islink(path):
                raise InstallError(f"cannot write file '{path}': a folder of that name is in the way "
                                   f"(two wheels install conflicting paths?)")
            raise
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, mode)
        return os.fdopen(fd, "wb")

    def write_bytes(self, path, data, mode):
        with self.open_new(path, mode) as f:
            f.write(data)
        return (record_hash(hashlib.sha256(data).digest()), str(len(data)))

    def extract(self, wheel, info, dest, is_script):
        """Writes one entry, checked against the wheel's RECORD; returns its RECORD (hash, size)."""
        # Checked by Wheel.check_record before anything was written; checked again as written,
        # in case the wheel's file changed since (only RECORD's signatures are not listed).
        expected, expected_size = wheel.record.get(info.filename, ("", ""))
        what = f"'{info.filename}' in wheel '{wheel.path}'"
        h = record_digest(expected, what)
        algo = h.name
        mode = 0o755 if is_script else 0o644
        unix_mode = info.external_attr >> 16
        # pip's test: a regular file with an execute bit.
        if unix_mode & 0o170000 == 0o100000 and unix_mode & 0o111:
            mode = 0o755
        try:
            with wheel.zip.open(info) as src:
                if is_script:
                    data = src.read()
                    h.update(data)
                    size = len(data)
                else:
                    # Streamed: a wheel may hold a shared library of hundreds of megabytes.
                    out_hash = h if algo == "sha256" else hashlib.sha256()
                    size = 0
                    with self.open_new(dest, mode) as out:
                        while True:
                            chunk = src.read(CHUNK)
                            if not chunk:
                                break
                            h.update(chunk)
                            if out_hash is not h:
                                out_hash.update(chunk)
                            out.write(chunk)
                            size += len(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
            raise InstallError(f"cannot read {what}: {e}; the wheel is damaged: build or download it again")
        if expected:
            check_digest(expected, h, what)
        check_size(expected_size, size, what)
        if is_script:
            # pip's fix_script: '#!python' (also '#!pythonw', '#!python3'...) becomes this Python.
            if data.startswith(b"#!python"):
                rest = data.split(b"\n", 1)[1] if b"\n" in data else b""
                data = b"#!" + os.fsencode(sys.executable) + b"\n" + rest
            return self.write_bytes(dest, data, mode)
        return (record_hash(out_hash.digest()), str(size))

    def compile(self, path):
        """Byte-compiles path as pip does by default, but into an unchecked-hash .pyc, the same
        bytes on every run. Returns the .pyc's path and RECORD (hash, size), or None for a file
        that does not compile (pip skips those quietly too: python 2 code in a data folder...)."""
        cfile = importlib.util.cache_from_source(path)
        self.make_dirs(os.path.dirname(cfile))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                py_compile.compile(path, cfile=cfile, dfile=path, doraise=True,
                                   invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        except py_compile.PyCompileError:
            return None
        os.chmod(cfile, 0o644)
        with open(cfile, "rb") as f:
            data = f.read()
        return cfile, (record_hash(hashlib.sha256(data).digest()), str(len(data)))

    def shebang(self):
        # distlib's: '#!PYTHON' when that fits Linux's 127 bytes and has no space, else lines that
        # sh runs and python reads as a string.
        exe = sys.executable
        if " " in exe:
            exe = '"' + exe + '"'
        exe = exe.encode("utf-8")
        if b" " not in exe and len(exe) + 3 <= 127:
            return b"#!" + exe + b"\n"
        return b"#!/bin/sh\n'''exec' " + exe + b' "$0" "$@"\n' + b"' '''\n"

    def install(self, wheel):
        installed = {}  # absolute path -> (hash, size)
        for info, dest, is_script in wheel.files:
            installed[dest] = self.extract(wheel, info, dest, is_script)
            # RECORD's signatures (of the wheel's RECORD, not of this one) listed without a
            # hash, as pip lists what the wheel's RECORD does not.
            if info.filename in wheel.signatures:
                installed[dest] = ("", "")
        for path in sorted(p for p in installed if p.endswith(".py")):
            compiled = self.compile(path)
            if compiled:
                installed[compiled[0]] = compiled[1]
        shebang = self.shebang()
        for name, value in wheel.scripts:
            module, attr = ENTRY_VALUE_RE.fullmatch(value).group("module", "attr")
            text = SCRIPT_TEMPLATE % {"module": module, "import_name": attr.split(".")[0], "func": attr}
            dest = os.path.join(self.folders["scripts"], name)
            installed[dest] = self.write_bytes(dest, shebang + text.encode("utf-8"), 0o755)
        info_dir = os.path.join(wheel.lib_dir, wheel.info_dir)
        generated = {"INSTALLER": b"grocker\n", "REQUESTED": b""} if wheel.requested else {"INSTALLER": b"grocker\n"}
        for name, data in generated.items():
            installed[os.path.join(info_dir, name)] = self.write_bytes(os.path.join(info_dir, name), data, 0o644)
        record_path = os.path.join(info_dir, "RECORD")
        installed[record_path] = ("", "")
        rows = sorted((os.path.relpath(p, wheel.lib_dir), h, s) for p, (h, s) in installed.items())
        text = io.StringIO()
        csv.writer(text).writerows(rows)  # pip's dialect: excel, CRLF line ends
        self.write_bytes(record_path, text.getvalue().encode("utf-8"), 0o644)


def main(argv):
    wheels, requested = [], []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--requested":
            if i + 1 == len(argv):
                usage("--requested needs a wheel")
            requested.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith("--requested="):
            requested.append(arg[len("--requested="):])
        elif arg.startswith("-"):
            usage(f"unknown option '{arg}'")
        else:
            wheels.append(arg)
        i += 1
    if not wheels:
        usage("no wheel to install")
    for r in requested:
        if r not in wheels:
            usage(f"--requested '{r}' is not one of the wheels to install; give it in the list too")
    if sys.prefix == sys.base_prefix:
        print(f"install-wheels: {sys.executable} does not run in a virtualenv (sys.prefix is {sys.prefix}); "
              f"run the script with the venv's python (VENV/bin/python3 install-wheels ...)", file=sys.stderr)
        sys.exit(2)
    if sys.pycache_prefix:
        print(f"install-wheels: PYTHONPYCACHEPREFIX (or -X pycache_prefix) is set to '{sys.pycache_prefix}': "
              f"the .pyc files would be written outside the venv; unset it", file=sys.stderr)
        sys.exit(2)
    try:
        installer = Installer()
        # Every wheel checked (names, paths, metadata) before anything is written; all the
        # broken ones reported at once.
        plans, errors = [], []
        for path in wheels:
            try:
                plans.append(Wheel(path, path in requested, installer))
            except InstallError as e:
                errors.append(str(e))
            except OSError as e:
                errors.append(f"cannot read wheel '{path}': {os_error(e)}")
        if errors:
            for e in errors:
                print("install-wheels: " + e, file=sys.stderr)
            sys.exit(1)
        for wheel in plans:
            try:
                installer.install(wheel)
            except OSError as e:
                raise InstallError(f"cannot install wheel '{wheel.path}' into '{sys.prefix}': {os_error(e)}")
    except InstallError as e:
        print("install-wheels: " + str(e), file=sys.stderr)
        sys.exit(1)


def os_error(e):
    return (e.strerror or str(e)) + (f" on '{e.filename}'" if e.filename else "")


if __name__ == "__main__":
    main(sys.argv[1:])
