#!/bin/bash
# in-image/install-wheels.py against Debian's pip (23.0.1 on bookworm, run from its wheel): fixture
# wheels installed by each into a venv at the same path give the same tree (paths, types, modes,
# bytes) but for what differs on purpose: INSTALLER; pip's direct_url.json; the .pyc files
# (unchecked-hash ones here, checked on their own) and their RECORD rows (with a hash here);
# the RECORD row pip keeps for a setuptools wrapper it does not install; the mode of a
# .data/scripts file without an execute bit (0755 here, pip leaves it 0644). Then: two runs give
# the same bytes; Python loads those pycs; the scripts run; a path out of the venv (by '..', or
# through a symlink), a wheel at odds with its RECORD (a file changed, unlisted, listed without a
# hash or missing; a row out of the venv), broken wheels, a Python outside a venv are refused with
# one clear line a wheel, nothing written. Fails, never skips, when a tool is missing.
set -eu -o pipefail
root=${GROCKER_SOURCE_ROOT:-$(cd "$(dirname "$0")/../../.." && pwd)}
installer=$root/in-image/install-wheels.py
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok ($SECONDS s): $*"; }
# Debian's Python and pip, never the first python3 on PATH (pyenv's, on a developer's machine).
PY=/usr/bin/python3
need="apt-get install python3 python3-venv python3-pip-whl"
[ -x $PY ] || fail "$PY is missing: $need"
$PY -c 'import sys; assert sys.version_info >= (3, 9)' || fail "$PY is older than 3.9: $need (Debian 12 or later)"
pip_wheels=(/usr/share/python-wheels/pip-*.whl)
[ -f "${pip_wheels[0]}" ] || fail "pip's wheel is missing from /usr/share/python-wheels: $need"
PIP=${pip_wheels[-1]}/pip
pyver=$($PY -c 'import sys; print("%d.%d" % sys.version_info[:2])')
tag=$($PY -c 'import sys; print(sys.implementation.cache_tag)')

tmp=$(mktemp -d /tmp/grocker-install-wheels-test-XXXXXX)
cleanup() { [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"; } # KEEP_TMP=1: keep the folder to look into
trap cleanup EXIT
umask 022
# Every venv is made at this one path, then moved away: shebangs and .pyc files hold the path.
venv=$tmp/v/venv
new_venv() {
    rm -rf "$tmp/v"
    mkdir -p "$(dirname "$venv")"
    $PY -m venv --without-pip "$venv" || fail "cannot create a venv with $PY: $need"
}
export PYTHONDONTWRITEBYTECODE=1 PIP_CONFIG_FILE=/dev/null
unset PYTHONPYCACHEPREFIX PYTHONPATH PYTHONHOME

# --- the fixture wheels (written with zipfile: no build backend needed) ----------------------
mkdir -p "$tmp/wheels" "$tmp/bad"
$PY - "$tmp/wheels" "$tmp/bad" <<'EOF'
import base64, hashlib, sys, zipfile
good, bad = sys.argv[1:]

def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")

# files: (name, text, mode) with mode None for an entry without unix bits, or ("raw", bits) for
# external_attr's high word as is. The dist-info is added; record(rows) may spoil RECORD.
def wheel(folder, filename, files, purelib=True, entry_points=None, name=None, record=lambda rows: rows,
          skip=()):
    project, version = filename.split("-")[:2]
    info = f"{project}-{version}.dist-info"
    files = list(files) + [
        (f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name or project}\nVersion: {version}\n", 0o644),
        (f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: grocker-test\nRoot-Is-Purelib: %s\nTag: py3-none-any\n"
         % ("true" if purelib else "false"), 0o644)]
    if entry_points:
        files.append((f"{info}/entry_points.txt", entry_points, 0o644))
    files = [(n, t.encode() if isinstance(t, str) else t, m) for n, t, m in files]
    rows = record([f"{n},{digest(t)},{len(t)}" for n, t, m in files] + [f"{info}/RECORD,,"])
    files.append((f"{info}/RECORD", "\n".join(rows).encode() + b"\n", 0o644))
    with zipfile.ZipFile(f"{folder}/{filename}", "w") as z:
        for n, t, m in files:
            if n in skip:
                continue
            zi = zipfile.ZipInfo(n, date_time=(2020, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            if isinstance(m, tuple):
                zi.external_attr = m[1] << 16
            elif m is not None:
                zi.external_attr = (0o100000 | m) << 16
            z.writestr(zi, t)

d = "demo_app-1.0.data"
wheel(good, "demo_app-1.0-py3-none-any.whl", [
    ("demo_app/__init__.py", "VALUE = 42\n", 0o644),
    ("demo_app/cli.py", "def main():\n    print('demo cli')\n    return 0\n\n\nclass App:\n"
     "    @staticmethod\n    def run():\n        print('demo gui')\n        return 0\n", 0o644),
    ("demo_app/sub/__init__.py", "", 0o644),
    ("demo_app/sub/deep/__init__.py", "from .mod import f\n", 0o644),
    ("demo_app/sub/deep/mod.py", "def f():\n    return 'deep'\n", 0o644),
    ("demo_app/run.sh", "#!/bin/sh\necho run\n", 0o755),           # executable package data
    ("demo_app/no-bits.txt", "no unix bits\n", None),                # zip made elsewhere: 0644
    ("demo_app/no-type.sh", "#!/bin/sh\n", ("raw", 0o755)),          # x bit but no S_IFREG: pip says 0644
    ("demo_app/bad_escape.py", "s = '\\d'\n", 0o644),               # a SyntaxWarning: compiled, quiet
    (f"{d}/scripts/demo-py", "#!python\nimport demo_app\nprint('demo-py', demo_app.VALUE)\n", 0o755),
    (f"{d}/scripts/demo-pyw", "#!pythonw -u\nprint('pyw')\n", 0o755),
    (f"{d}/scripts/demo-sh", "#!/bin/sh\necho demo-sh\n", 0o755),
    (f"{d}/scripts/demo-noexec", "#!/bin/sh\necho noexec\n", 0o644),  # pip: 0644, ours: 0755
    (f"{d}/scripts/tool.py", "#!python\nprint('tool')\n", 0o755),     # compiled too, as pip does
    (f"{d}/scripts/demo-cli", "#!python\n# setuptools' wrapper: replaced\n", 0o755),
    (f"{d}/data/share/demo/readme.txt", "data\n", 0o644),
    (f"{d}/data/share/demo/tool.sh", "#!/bin/sh\necho tool\n", 0o755),
    (f"{d}/data/share/demo/ok.py", "x = 1\n", 0o644),
    (f"{d}/data/share/demo/py2.py", "print 'python 2'\n", 0o644),     # does not compile: skipped
    (f"{d}/headers/demo.h", "#define DEMO 1\n", 0o644),
    (f"{d}/purelib/demo_extra_mod.py", "EXTRA = True\n", 0o644),
], name="Demo.App", entry_points="""# comment
[console_scripts]
demo-cli = demo_app.cli:main
Demo-Extra = demo_app.cli:main [extra1]
demo-extras2 = demo_app.sub.deep:f [a, b]
pip = demo_app.cli:main
pip3.8 = demo_app.cli:main

[gui_scripts]
demo-gui = demo_app.cli:App.run

[other.group]
ignored = demo_app:nothing
""")
wheel(good, "plat_pkg-2.0-py3-none-any.whl", [
    ("plat_pkg/__init__.py", "from plat_pkg._impl import impl\n", 0o644),
    ("plat_pkg/_impl.py", "def impl():\n    return 'plat'\n", 0o644),
    ("plat_pkg-2.0.data/purelib/plat_pure.py", "PURE = 1\n", 0o644),
], purelib=False)
for i in range(20):
    p = f"small_{i:02d}"
    body = "".join(f"def f{j}(x):\n    return x + {j}\n\n\n" for j in range(40))
    wheel(good, f"{p}-1.{i}-py3-none-any.whl",
          [(f"{p}/__init__.py", "from .m0 import f0\n", 0o644)]
          + [(f"{p}/m{j}.py", body, 0o644) for j in range(5)]
          + [(f"{p}/cli.py", f"def main():\n    print('{p}')\n", 0o644)],
          entry_points=f"[console_scripts]\n{p.replace('_', '-')} = {p}.cli:main\n")

# RECORD's signatures are not listed in it (the wheel spec): installed, not refused.
wheel(good, "signed_pkg-1.0-py3-none-any.whl", [
    ("signed_pkg/__init__.py", "SIGNED = 1\n", 0o644),
    ("signed_pkg-1.0.dist-info/RECORD.jws", '{"signatures": []}\n', 0o644),
    ("signed_pkg-1.0.dist-info/RECORD.p7s", "not really PKCS#7\n", 0o644),
], record=lambda rows: [r for r in rows if not r.startswith("signed_pkg-1.0.dist-info/RECORD.")])

# The broken ones.
wheel(bad, "evil-1.0-py3-none-any.whl", [("evil/__init__.py", "", 0o644), ("../../../../canary/evil", "x", 0o644)])
wheel(bad, "evil_abs-1.0-py3-none-any.whl", [("evil_abs/__init__.py", "", 0o644), ("/tmp/evil_abs", "x", 0o644)])
wheel(bad, "via_link-1.0-py3-none-any.whl", [("via_link-1.0.data/data/share/x", "x", 0o644)])
wheel(bad, "mismatch-1.0-py3-none-any.whl", [("mismatch/a.py", "", 0o644), ("mismatch/__init__.py", "A = 1\n", 0o644)],
      record=lambda rows: [r.replace(r.split(",")[1], digest(b"other\n")) if r.startswith("mismatch/__init__.py") else r
                           for r in rows])
# Hostile RECORDs, each after a good file that an install in order would write first: a file
# RECORD does not list, one listed without a hash, a row naming a file not in the wheel, rows
# naming paths out of the venv.
wheel(bad, "unlisted-1.0-py3-none-any.whl", [("unlisted/__init__.py", "", 0o644), ("unlisted/extra.py", "X = 1\n", 0o644)],
      record=lambda rows: [r for r in rows if not r.startswith("unlisted/extra.py,")])
wheel(bad, "no_hash-1.0-py3-none-any.whl", [("no_hash/__init__.py", "", 0o644), ("no_hash/mod.py", "X = 1\n", 0o644)],
      record=lambda rows: ["no_hash/mod.py,," if r.startswith("no_hash/mod.py,") else r for r in rows])
wheel(bad, "ghost-1.0-py3-none-any.whl", [("ghost/__init__.py", "", 0o644), ("ghost/gone.py", "X = 1\n", 0o644)],
      skip=("ghost/gone.py",))
wheel(bad, "record_escape-1.0-py3-none-any.whl", [("record_escape/__init__.py", "", 0o644)],
      record=lambda rows: rows + [f"../../../../canary/x,{digest(b'x')},1"])
wheel(bad, "record_abs-1.0-py3-none-any.whl", [("record_abs/__init__.py", "", 0o644)],
      record=lambda rows: rows + [f"/tmp/record_abs,{digest(b'x')},1"])
wheel(bad, "no_record-1.0-py3-none-any.whl", [("no_record/__init__.py", "", 0o644)],
      skip=("no_record-1.0.dist-info/RECORD",))
wheel(bad, "no_wheel_file-1.0-py3-none-any.whl", [("no_wheel_file/__init__.py", "", 0o644)],
      skip=("no_wheel_file-1.0.dist-info/WHEEL",))
wheel(bad, "bad_scheme-1.0-py3-none-any.whl", [("bad_scheme-1.0.data/elsewhere/x", "x", 0o644)])
wheel(bad, "bad_entry-1.0-py3-none-any.whl", [("bad_entry/__init__.py", "", 0o644)],
      entry_points="[console_scripts]\nbad-entry = bad_entry\n")
with zipfile.ZipFile(f"{bad}/no_info-1.0-py3-none-any.whl", "w") as z:
    z.writestr("no_info/__init__.py", "")
with open(f"{bad}/notzip-1.0-py3-none-any.whl", "wb") as f:
    f.write(b"this is not a zip archive\n")
EOF
wheels=("$tmp"/wheels/*.whl)
pass "${#wheels[@]} fixture wheels written"

# --- pip and ours, at the same path -----------------------------------------------------------
# install_both NAME WHEEL...: the wheels installed by pip into $tmp/pip-NAME, by install-wheels
# into $tmp/ours-NAME, both made at $venv, all of them requested (as pip makes each).
install_both() {
    local name=$1 t0 t1 t2
    shift
    local requested=()
    for w in "$@"; do requested+=(--requested "$w"); done
    new_venv
    t0=$(date +%s.%N)
    "$venv/bin/python3" "$PIP" install --no-index --no-deps --disable-pip-version-check --no-cache-dir \
        --root-user-action=ignore --no-warn-script-location -q "$@" ||
        fail "pip could not install the fixture wheels"
    t1=$(date +%s.%N)
    mv "$venv" "$tmp/pip-$name"
    new_venv
    # A umask that would show any mode left to it.
    (umask 077 && "$venv/bin/python3" "$installer" "${requested[@]}" "$@" >"$tmp/out" 2>&1) ||
        fail "install-wheels failed on the fixture wheels: $(cat "$tmp/out")"
    t2=$(date +%s.%N)
    [ ! -s "$tmp/out" ] || fail "install-wheels was not quiet: $(cat "$tmp/out")"
    mv "$venv" "$tmp/ours-$name"
    awk -v n=$# -v a="$t0" -v b="$t1" -v c="$t2" \
        'BEGIN { printf "time to install %d wheel(s): pip %.2f s, install-wheels %.2f s\n", n, b - a, c - b }'
}
install_both main "${wheels[@]}"

# compare.py PIP OURS VENV pip|same: the trees, as said at the top; 'same': byte for byte.
cat >"$tmp/compare.py" <<'EOF'
import base64, csv, hashlib, importlib.util, marshal, os, stat, sys
pip_root, ours_root, venv, how = sys.argv[1:]
errors = []

def walk(root):
    tree = {}
    for folder, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(folder, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if stat.S_ISLNK(st.st_mode):
                tree[rel] = ("link", 0, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                tree[rel] = ("dir", stat.S_IMODE(st.st_mode), None)
            else:
                with open(p, "rb") as f:
                    tree[rel] = ("file", stat.S_IMODE(st.st_mode), f.read())
    return tree

def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")

pip, ours = walk(pip_root), walk(ours_root)
if how == "same":
    for rel in sorted(set(pip) | set(ours)):
        if pip.get(rel) != ours.get(rel):
            show = lambda e: "missing" if e is None else f"{e[0]} {e[1]:o}"
            errors.append(f"{rel}: differs between the two runs ({show(pip.get(rel))} / {show(ours.get(rel))})")
else:
    excepted = lambda rel: rel.endswith((".dist-info/INSTALLER", ".dist-info/direct_url.json", ".pyc"))
    mode_exceptions = {"bin/demo-noexec": (0o644, 0o755)}
    for rel in sorted(set(pip) | set(ours)):
        a, b = pip.get(rel), ours.get(rel)
        if rel.endswith(".dist-info/direct_url.json"):
            if b is not None:
                errors.append(f"{rel}: written by install-wheels")
            continue
        if a is None or b is None:
            errors.append(f"{rel}: only installed by {'install-wheels' if a is None else 'pip'}")
            continue
        if a[0] != b[0]:
            errors.append(f"{rel}: a {a[0]} from pip, a {b[0]} from install-wheels")
            continue
        if (a[1], b[1]) != mode_exceptions.get(rel, (a[1], a[1])):
            errors.append(f"{rel}: mode {a[1]:o} from pip, {b[1]:o} from install-wheels")
        if rel.endswith(".dist-info/INSTALLER"):
            if (a[2], b[2]) != (b"pip\n", b"grocker\n"):
                errors.append(f"{rel}: {a[2]!r} from pip, {b[2]!r} from install-wheels")
        elif rel.endswith(".pyc"):
            # Ours: unchecked-hash (flags 0b01), the hash of the source beside it, and the final
            # path of the source as co_filename.
            source = importlib.util.source_from_cache(os.path.join(venv, rel))
            with open(os.path.join(ours_root, os.path.relpath(source, venv)), "rb") as f:
                source_bytes = f.read()
            flags = int.from_bytes(b[2][4:8], "little")
            if flags != 0b01:
                errors.append(f"{rel}: flags {flags:#b}, not an unchecked-hash pyc")
            if b[2][8:16] != importlib.util.source_hash(source_bytes):
                errors.append(f"{rel}: not the hash of its source")
            if b[2][:4] != importlib.util.MAGIC_NUMBER:
                errors.append(f"{rel}: not this Python's magic number")
            co = marshal.loads(b[2][16:])
            if co.co_filename != source:
                errors.append(f"{rel}: co_filename {co.co_filename}, not {source}")
        elif rel.endswith(".dist-info/RECORD"):
            site = os.path.dirname(os.path.dirname(rel))
            rows_a = set(tuple(r) for r in csv.reader(a[2].decode().splitlines()))
            rows_b = set(tuple(r) for r in csv.reader(b[2].decode().splitlines()))
            keep = lambda rows: {r for r in rows if not excepted(os.path.normpath(os.path.join(site, r[0])))}
            # pip keeps the wheel's row of a setuptools wrapper it skips (at its path in the
            # wheel, naming no file); ours lists only what it installed.
            stale = {r for r in rows_a if r[0].split("/", 1)[0].endswith(".data")
                     and os.path.normpath(os.path.join(site, r[0])) not in pip}
            rows_a -= stale
            for r in keep(rows_a) ^ keep(rows_b):
                errors.append(f"{rel}: row {','.join(r)} only from {'pip' if r in rows_a else 'install-wheels'}")
            pycs = lambda rows: {r[0] for r in rows if r[0].endswith(".pyc")}
            if pycs(rows_a) != pycs(rows_b):
                errors.append(f"{rel}: lists other .pyc files than pip's: {sorted(pycs(rows_a) ^ pycs(rows_b))}")
            if not b[2].endswith(b"\r\n"):
                errors.append(f"{rel}: not with pip's CRLF line ends")
            rows = list(csv.reader(b[2].decode().splitlines()))
            if rows != sorted(rows):
                errors.append(f"{rel}: rows not sorted as pip sorts them")
            # Every row of ours is true of the file installed; RECORD's own row is 'RECORD,,', and
            # so are those of its signatures (as pip writes them).
            for r in rows_b:
                path = os.path.normpath(os.path.join(site, r[0]))
                if path == rel or path in (rel + ".jws", rel + ".p7s"):
                    if r[1:] != ("", ""):
                        errors.append(f"{rel}: its own row is {r}")
                    continue
                if path not in ours or ours[path][0] != "file":
                    errors.append(f"{rel}: row {r[0]} names no installed file")
                elif r[1:] != (digest(ours[path][2]), str(len(ours[path][2]))):
                    errors.append(f"{rel}: row {','.join(r)} does not match the file installed")
        elif a[2] != b[2]:
            errors.append(f"{rel}: other bytes from install-wheels than from pip")
for e in errors:
    print("  " + e)
sys.exit(1 if errors else 0)
EOF
$PY "$tmp/compare.py" "$tmp/pip-main" "$tmp/ours-main" "$venv" pip ||
    fail "install-wheels and pip installed different trees (above)"
pass "the same tree as pip's (paths, types, modes, bytes; INSTALLER, .pyc, RECORD rows as said)"
# The tree holds what the fixtures ask, so the comparison compared something.
# The header's folder is named after the wheel's file name, '_' made '-' (pip's), not METADATA's Name.
site=lib/python$pyver/site-packages
for f in "$site/demo_app/sub/deep/__pycache__/mod.$tag.pyc" "$site/plat_pure.py" "$site/demo_extra_mod.py" \
    "include/site/python$pyver/demo-app/demo.h" "share/demo/__pycache__/ok.$tag.pyc" "bin/__pycache__/tool.$tag.pyc" \
    bin/demo-cli bin/Demo-Extra bin/demo-gui bin/pip bin/pip3 "bin/pip$pyver" "$site/demo_app-1.0.dist-info/REQUESTED"; do
    [ -f "$tmp/ours-main/$f" ] || fail "install-wheels did not install $f"
done
for f in "share/demo/__pycache__/py2.$tag.pyc" bin/pip3.8 "$site/demo_app-1.0.dist-info/direct_url.json"; do
    [ ! -e "$tmp/ours-main/$f" ] || fail "install-wheels installed $f"
done
[ "$(stat -c %a "$tmp/ours-main/$site/demo_app/run.sh")" = 755 ] || fail "an executable file of a package is not 0755"
[ "$(stat -c %a "$tmp/ours-main/share/demo/tool.sh")" = 755 ] || fail "an executable data file is not 0755"
[ "$(head -1 "$tmp/ours-main/bin/demo-py")" = "#!$venv/bin/python3" ] || fail "the #!python line of a script was not replaced"
[ "$(head -1 "$tmp/ours-main/bin/demo-sh")" = "#!/bin/sh" ] || fail "the #!/bin/sh line of a script was changed"
expected_script="#!$venv/bin/python3
# -*- coding: utf-8 -*-
import re
import sys
from demo_app.cli import App
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\.pyw|\.exe)?\$', '', sys.argv[0])
    sys.exit(App.run())"
[ "$(cat "$tmp/ours-main/bin/demo-gui")" = "$expected_script" ] ||
    fail "bin/demo-gui is not distlib's script: $(cat "$tmp/ours-main/bin/demo-gui")"
pass "scripts, headers, data, platlib and .pyc files where pip puts them"

# A venv path too long for a '#!' line (127 bytes on Linux): distlib's /bin/sh wrapper, as pip.
short_venv=$venv
venv=$tmp/v/$(printf 'a-folder-name-long-enough/%.0s' 1 2 3 4)venv
install_both long "$tmp/wheels/demo_app-1.0-py3-none-any.whl"
$PY "$tmp/compare.py" "$tmp/pip-long" "$tmp/ours-long" "$venv" pip ||
    fail "install-wheels and pip differ at a long venv path (above)"
head -1 "$tmp/ours-long/bin/demo-cli" | grep -qx '#!/bin/sh' || fail "no /bin/sh wrapper at a long venv path"
venv=$short_venv
pass "the same tree as pip's at a venv path too long for '#!'"

# --- reproducible ------------------------------------------------------------------------------
new_venv
requested=()
for w in "${wheels[@]}"; do requested+=(--requested "$w"); done
"$venv/bin/python3" "$installer" "${requested[@]}" "${wheels[@]}" || fail "install-wheels failed on its second run"
mv "$venv" "$tmp/ours2"
$PY "$tmp/compare.py" "$tmp/ours-main" "$tmp/ours2" "$venv" same ||
    fail "two runs of install-wheels gave different trees (above)"
pass "two runs give the same tree, byte for byte"

# --- the installed venv works, from its pycs ---------------------------------------------------
rm -rf "$tmp/v" && mkdir -p "$tmp/v" && cp -a "$tmp/ours-main" "$venv"
out=$(cd / && "$venv/bin/python3" -c 'import demo_app.sub.deep, plat_pkg, plat_pure, demo_extra_mod, small_07
print(demo_app.sub.deep.f(), plat_pkg.impl(), small_07.f0(1))') || fail "the installed packages do not import"
[ "$out" = "deep plat 1" ] || fail "the installed packages do not work: $out"
# An unchecked-hash pyc is loaded without a look at its source: a source changed now is not run.
echo 'raise RuntimeError("the source was read, not the pyc")' >>"$venv/$site/demo_app/sub/deep/mod.py"
(cd / && "$venv/bin/python3" -c 'import demo_app.sub.deep') || fail "Python did not load install-wheels' pyc"
# runs SCRIPT OUTPUT: bin/SCRIPT of the venv runs and prints OUTPUT.
runs() {
    local out
    out=$("$venv/bin/$1" 2>&1) || fail "bin/$1 failed: $out"
    [ "$out" = "$2" ] || fail "bin/$1 printed '$out', not '$2'"
}
runs demo-cli "demo cli"
runs Demo-Extra "demo cli"
runs pip "demo cli"
runs demo-gui "demo gui"
runs demo-py "demo-py 42"
runs demo-sh demo-sh
runs small-03 small_03
pass "the packages import from their pycs; the scripts run"

# --- --requested marks those only ---------------------------------------------------------------
new_venv
"$venv/bin/python3" "$installer" --requested="$tmp/wheels/plat_pkg-2.0-py3-none-any.whl" \
    "$tmp/wheels/demo_app-1.0-py3-none-any.whl" "$tmp/wheels/plat_pkg-2.0-py3-none-any.whl" ||
    fail "install-wheels --requested= failed"
[ -f "$venv/$site/plat_pkg-2.0.dist-info/REQUESTED" ] || fail "no REQUESTED in the dist-info of a --requested wheel"
[ ! -e "$venv/$site/demo_app-1.0.dist-info/REQUESTED" ] || fail "a REQUESTED in the dist-info of a wheel not --requested"
grep -q '^plat_pkg-2.0.dist-info/REQUESTED,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0' \
    "$venv/$site/plat_pkg-2.0.dist-info/RECORD" || fail "REQUESTED is not in RECORD"
pass "--requested (both spellings) marks those wheels only"

# --- refused ----------------------------------------------------------------------------------
# expect_refused STATUS PATTERN ARGS...: install-wheels ARGS exits with STATUS, saying PATTERN,
# in one line (LINES_MAX lines), no traceback, and writes nothing: neither in the venv nor beside
# it (the canary folder).
expect_refused() {
    local status=$1 pattern=$2
    shift 2
    new_venv
    mkdir "$tmp/v/canary"
    [ -z "${LINK:-}" ] || ln -s "$tmp/v/canary" "$venv/share"
    find "$tmp/v" -printf '%P %y %m %s\n' | sort >"$tmp/before"
    local rc=0
    "${RUN_WITH:-$venv/bin/python3}" "$installer" "$@" 2>"$tmp/err" || rc=$?
    [ "$rc" = "$status" ] || fail "install-wheels $*: exit status $rc, not $status ($(cat "$tmp/err"))"
    [ "$(grep -c . "$tmp/err")" -le "${LINES_MAX:-1}" ] || fail "install-wheels $*: more than one line: $(cat "$tmp/err")"
    grep -q "^install-wheels: .*${pattern#^install-wheels: }" "$tmp/err" ||
        fail "install-wheels $*: no message saying '$pattern': $(cat "$tmp/err")"
    ! grep -q Traceback "$tmp/err" || fail "install-wheels $*: a traceback: $(cat "$tmp/err")"
    find "$tmp/v" -printf '%P %y %m %s\n' | sort >"$tmp/after"
    diff "$tmp/before" "$tmp/after" >&2 || fail "install-wheels $* wrote files though it refused"
    echo "  refused as expected: $(head -1 "$tmp/err")"
}
good=$tmp/wheels/plat_pkg-2.0-py3-none-any.whl
expect_refused 1 "'../../../../canary/evil'.*outside" "$tmp/bad/evil-1.0-py3-none-any.whl"
# A good wheel before it is not installed either: every wheel is checked before any is written.
expect_refused 1 "'/tmp/evil_abs'.*outside" "$good" "$tmp/bad/evil_abs-1.0-py3-none-any.whl"
# Two broken wheels: both named at once.
LINES_MAX=2 expect_refused 1 "no_info-1.0-py3-none-any.whl.*exactly one .dist-info" "$tmp/bad/notzip-1.0-py3-none-any.whl" \
    "$tmp/bad/no_info-1.0-py3-none-any.whl"
grep -q "notzip-1.0-py3-none-any.whl' as a zip archive" "$tmp/err" ||
    fail "the first of two broken wheels was not named: $(cat "$tmp/err")"
expect_refused 1 "has no no_record-1.0.dist-info/RECORD" "$tmp/bad/no_record-1.0-py3-none-any.whl"
expect_refused 1 "has no no_wheel_file-1.0.dist-info/WHEEL" "$tmp/bad/no_wheel_file-1.0-py3-none-any.whl"
expect_refused 1 "'bad_scheme-1.0.data/elsewhere/x'.*scheme" "$tmp/bad/bad_scheme-1.0-py3-none-any.whl"
expect_refused 1 "invalid entry point 'bad-entry = bad_entry' in \\[console_scripts\\]" \
    "$tmp/bad/bad_entry-1.0-py3-none-any.whl"
LINES_MAX=2 expect_refused 2 "not one of the wheels" --requested "$tmp/bad/x.whl" "$good"
RUN_WITH=$PY expect_refused 2 "does not run in a virtualenv" "$good"
# RECORD against the wheel, checked before anything is written (a good wheel before it is not
# installed either); RECORD's own signatures are exempt (signed_pkg, among the good ones).
expect_refused 1 "^install-wheels: 'mismatch/__init__.py' in wheel '.*mismatch-1.0-py3-none-any.whl' does not match its RECORD" \
    "$good" "$tmp/bad/mismatch-1.0-py3-none-any.whl"
expect_refused 1 "^install-wheels: 'unlisted/extra.py' in wheel '.*unlisted-1.0-py3-none-any.whl' is not listed in its unlisted-1.0.dist-info/RECORD" \
    "$good" "$tmp/bad/unlisted-1.0-py3-none-any.whl"
expect_refused 1 "^install-wheels: 'no_hash/mod.py' in wheel '.*no_hash-1.0-py3-none-any.whl' is listed without a hash" \
    "$tmp/bad/no_hash-1.0-py3-none-any.whl"
expect_refused 1 "^install-wheels: wheel '.*ghost-1.0-py3-none-any.whl': its ghost-1.0.dist-info/RECORD names 'ghost/gone.py', which is not in the wheel" \
    "$tmp/bad/ghost-1.0-py3-none-any.whl"
expect_refused 1 "^install-wheels: wheel '.*record_escape-1.0-py3-none-any.whl': its record_escape-1.0.dist-info/RECORD names '../../../../canary/x', which is outside" \
    "$tmp/bad/record_escape-1.0-py3-none-any.whl"
expect_refused 1 "^install-wheels: wheel '.*record_abs-1.0-py3-none-any.whl': its record_abs-1.0.dist-info/RECORD names '/tmp/record_abs', which is outside" \
    "$tmp/bad/record_abs-1.0-py3-none-any.whl"
# A symlink of the venv to a folder outside: found before anything is written.
LINK=1 expect_refused 1 "resolves to '$tmp/v/canary', outside the venv" "$tmp/bad/via_link-1.0-py3-none-any.whl"
pass "broken and hostile wheels refused, nothing written outside the venv"
