#!/bin/bash
# grocker build, end to end, on fixture applications made here, with real Debian packages:
#   web   NAME[EXTRAS]==VERSION from a PEP 503 index on loopback; a dependency with a C extension
#         (compiled by the compiler image, imported in a runner with no compiler), one served
#         only from --find-links, one pinned by the configuration's pip_constraint below the
#         index's newest, one from the extra; services www (through nginx and uwsgi) and
#         cron (a job's output mailed through msmtp to an SMTP sink of the test's); envs, ports
#         and volumes from the file and the command line in the image config; /scripts and a
#         plain command through the entrypoint;
#   wheel a .whl[extra] file, with --entrypoint: podman runs the app's console script;
#   tool  a project folder with extras (path/to/project[extra]), --pip-constraint on the command line.
# The base, root and compiler images come warm from $GROCKER_TEST_CACHE/build-store, shared with
# build/end-to-end. Fails, never skips, when a tool is missing.
# shellcheck disable=SC2016 # jq programs and scripts for the container, in single quotes
set -eu -o pipefail
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${GROCKER_SOURCE_ROOT:?}"
: "${GROCKER_TEST_CACHE:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok ($SECONDS s): $*"; }
for t in mmdebstrap podman runc jq curl python3 tar; do command -v "$t" >/dev/null || fail "$t is missing: run scripts/install-deps"; done
[ "$(id -u)" = 0 ] || fail "run as root (podman, and the sandbox's subordinate ids)"
if curl -s -o /dev/null --max-time 2 http://127.0.0.1:8080/; then
    fail "something already answers on port 8080 of this machine: the www service needs that port (host network)"
fi

tmp=$(mktemp -d /tmp/grocker-apps-test-XXXXXX)
chmod 755 "$tmp"
pids=()
P=(podman --root "$tmp/podman" --runroot "$tmp/podman-run" --storage-driver vfs)
PRUN=("${P[@]}" --cgroup-manager cgroupfs --runtime runc run --rm --network host
    --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    "${P[@]}" --runtime runc rm -f -a >/dev/null 2>&1 || true
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp" # KEEP_TMP=1: keep the folder to look into
}
trap cleanup EXIT
# Waits up to $1 tenths of a second for the command that follows to succeed.
wait_for() {
    local n=$1
    shift
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

# --- the fixture projects -------------------------------------------------------------------
# The C extension and the find-links dependency get a version of this run: a wheel of an
# earlier run in the shared wheel cache cannot stand in for them, so the C compiler really runs.
stamp=$(date +%s)
V=1.0.post$stamp
# project NAME VERSION DEPS [PYPROJECT-EXTRA]: a setuptools project in $tmp/src/NAME-VERSION.
project() {
    local name=$1 version=$2 deps=$3 extra=${4:-}
    local dir=$tmp/src/$name-$version
    mkdir -p "$dir"
    cat >"$dir/pyproject.toml" <<EOF
[build-system]
requires = ["setuptools>=61", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "$name"
version = "$version"
requires-python = ">=3.9"
dependencies = [$deps]
$extra
EOF
}
# sdist NAME VERSION FOLDER: $tmp/src/NAME-VERSION as NAME-VERSION.tar.gz in FOLDER.
sdist() {
    mkdir -p "$3"
    tar -czf "$3/$1-$2.tar.gz" --owner=0 --group=0 --mtime=@0 --sort=name -C "$tmp/src" "$1-$2"
}
index=$tmp/index/simple
links=$tmp/links
# serve NAME VERSION: the sdist in the index, with NAME's page listing every version served.
serve() {
    sdist "$1" "$2" "$index/$1"
    (cd "$index/$1" && printf '<html><body>\n' && for f in *.tar.gz; do printf '<a href="%s">%s</a>\n' "$f" "$f"; done &&
        printf '</body></html>\n') >"$index/$1/index.html.tmp"
    mv "$index/$1/index.html.tmp" "$index/$1/index.html"
}

# gapps-fastmath: a module written in C; building it needs gcc and Python.h.
project gapps-fastmath "$V" "" $'[tool.setuptools]\npy-modules = []'
cat >"$tmp/src/gapps-fastmath-$V/setup.py" <<'EOF'
from setuptools import Extension, setup

setup(ext_modules=[Extension("gapps_fastmath", ["gapps_fastmath.c"])])
EOF
cat >"$tmp/src/gapps-fastmath-$V/gapps_fastmath.c" <<'EOF'
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *add(PyObject *self, PyObject *args)
{
    long a, b;
    if (!PyArg_ParseTuple(args, "ll", &a, &b))
        return NULL;
    return PyLong_FromLong(a + b);
}

static PyMethodDef methods[] = {
    {"add", add, METH_VARARGS, "The sum of two integers, computed in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "gapps_fastmath", NULL, -1, methods};

PyMODINIT_FUNC PyInit_gapps_fastmath(void) { return PyModule_Create(&module); }
EOF
serve gapps-fastmath "$V"

# module NAME VERSION MODULE TEXT: a project of one Python module.
module() {
    project "$1" "$2" "" "[tool.setuptools]
py-modules = [\"$3\"]"
    printf '%s\n' "$4" >"$tmp/src/$1-$2/$3.py"
}
# gapps-pinned: 1.0 and 2.0 in the index; the constraints want 1.0.
for pv in 1.0 2.0; do
    module gapps-pinned "$pv" gapps_pinned "VERSION = \"$pv\""
    serve gapps-pinned "$pv"
done
module gapps-extradep 1.0 gapps_extradep 'NAME = "extradep"'
serve gapps-extradep 1.0
# gapps-linkonly: in the --find-links folder only.
module gapps-linkonly "$V" gapps_linkonly 'NAME = "linkonly"'
sdist gapps-linkonly "$V" "$links"

# gapps-web: the WSGI application, in the index.
project gapps-web 1.0 '"gapps-fastmath", "gapps-pinned", "gapps-linkonly"' '[project.optional-dependencies]
extra = ["gapps-extradep"]

[project.scripts]
gapps-web-report = "gapps_web:report"'
mkdir -p "$tmp/src/gapps-web-1.0/gapps_web"
cat >"$tmp/src/gapps-web-1.0/gapps_web/__init__.py" <<'EOF'
import getpass
import importlib.util
import os
import sys

import gapps_fastmath
import gapps_linkonly
import gapps_pinned


def summary():
    extradep = "yes" if importlib.util.find_spec("gapps_extradep") else "no"
    return "add(2,3)=%d pinned=%s %s extradep=%s mode=%s" % (
        gapps_fastmath.add(2, 3), gapps_pinned.VERSION, gapps_linkonly.NAME, extradep,
        os.environ.get("APPS_MODE", "unset"))


def report():
    print("gapps-web report %s by %s: %s" % (" ".join(sys.argv[1:]), getpass.getuser(), summary()))
EOF
cat >"$tmp/src/gapps-web-1.0/gapps_web/wsgi.py" <<'EOF'
from gapps_web import summary


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("web: %s\n" % summary()).encode()]
EOF
serve gapps-web 1.0

# gapps-wheelapp: a wheel made here by hand (a wheel is a zip with a .dist-info), with an extra
# and a console script.
mkdir -p "$tmp/dist"
python3 - "$tmp/dist" <<'EOF'
import base64, hashlib, sys, zipfile

files = {
    "gapps_wheelapp/__init__.py": (
        "import getpass, importlib.util, sys\n"
        "import gapps_pinned\n\n"
        "def main():\n"
        "    extradep = 'yes' if importlib.util.find_spec('gapps_extradep') else 'no'\n"
        "    print('wheelapp %s by %s: pinned=%s extradep=%s' % (' '.join(sys.argv[1:]), getpass.getuser(),\n"
        "          gapps_pinned.VERSION, extradep))\n"),
    "gapps_wheelapp-1.0.dist-info/METADATA": (
        "Metadata-Version: 2.1\nName: gapps-wheelapp\nVersion: 1.0\nRequires-Dist: gapps-pinned\n"
        "Provides-Extra: extra\nRequires-Dist: gapps-extradep ; extra == \"extra\"\n"),
    "gapps_wheelapp-1.0.dist-info/WHEEL": (
        "Wheel-Version: 1.0\nGenerator: grocker-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
    "gapps_wheelapp-1.0.dist-info/entry_points.txt": "[console_scripts]\ngapps-wheelapp = gapps_wheelapp:main\n",
}
record = "gapps_wheelapp-1.0.dist-info/RECORD"
lines = []
with zipfile.ZipFile(sys.argv[1] + "/gapps_wheelapp-1.0-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as z:
    for name, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append("%s,sha256=%s,%d" % (name, digest, len(data)))
        z.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
    z.writestr(zipfile.ZipInfo(record, (1980, 1, 1, 0, 0, 0)), "\n".join(lines + [record + ",,"]) + "\n")
EOF

# gapps-tool: a project folder, built as it is.
project gapps-tool 1.0 '"gapps-pinned"' '[project.optional-dependencies]
extra = ["gapps-extradep"]

[project.scripts]
gapps-tool = "gapps_tool:main"'
mkdir -p "$tmp/src/gapps-tool-1.0/gapps_tool"
cat >"$tmp/src/gapps-tool-1.0/gapps_tool/__init__.py" <<'EOF'
import importlib.util

import gapps_pinned


def main():
    extradep = "yes" if importlib.util.find_spec("gapps_extradep") else "no"
    print("tool: pinned=%s extradep=%s" % (gapps_pinned.VERSION, extradep))
EOF

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$tmp/index" "$port" >"$tmp/index.log" 2>&1 &
pids+=($!)
wait_for 50 curl -sf "http://127.0.0.1:$port/simple/gapps-web/" || fail "the package index did not start"
index_url="http://127.0.0.1:$port/simple/"
pass "fixtures: gapps-fastmath $V (C), gapps-pinned 1.0 and 2.0, gapps-extradep, gapps-web in a PEP 503 index; gapps-linkonly in a find-links folder; a hand-made wheel; a project folder"

# A shared store for the slow parts (base, root, compiler) across runs of this test and build.sh.
mkdir -p "$GROCKER_TEST_CACHE"
store=$GROCKER_TEST_CACHE/build-store
build() { "$GROCKER" --root "$store" build "$@"; }
G=("$GROCKER" --root "$store" -q)
ep=/usr/local/bin/grocker-entrypoint

# --- web: index, find-links, C extension, extras, constraints, services ---------------------
mkdir -p "$tmp/web"
echo "gapps-pinned==1.0" >"$tmp/web/constraints.txt"
cat >"$tmp/web/grocker.yml" <<'EOF'
pip_constraint: constraints.txt
envs:
  APPS_MODE: blue
ports: [8000]
volumes: [/data]
services:
  www:
    wsgi: gapps_web.wsgi:application
    processes: 1
  cron:
    - "@reboot gapps-web-report at-start"
    - "* * * * * gapps-web-report every-minute"
EOF
build 'gapps-web[extra]==1.0' -c "$tmp/web/grocker.yml" --index-url "$index_url" --find-links "$links" \
    --env APPS_CLI=yes --port 9000 --volume /srv/cache/ --no-push --result-file "$tmp/web/result.json" \
    --output "oci:$tmp/layout:web" \
    >"$tmp/web/out" 2>"$tmp/web/err" || { cat "$tmp/web/err" >&2; fail "grocker build gapps-web[extra]==1.0 failed"; }
grep -Eq "^\[ *[0-9]+\.[0-9]s\] compile: gapps-fastmath 1[.]0[^:]*: running" "$tmp/web/err" || fail "the compile step did not build gapps-fastmath's wheel:
$(cat "$tmp/web/err")"
grep -q "GET /simple/gapps-fastmath/ " "$tmp/index.log" || fail "the index was not asked for gapps-fastmath"
# Every sdist here asks for setuptools and wheel only: built in the prepared build environment,
# with no isolated one made for each.
! grep -q "Installing build dependencies\|isolated build environment for each sdist\|needs more than the prepared build environment" "$tmp/web/err" ||
    fail "the dependencies' sdists were built in isolated environments: $(cat "$tmp/web/err")"
grep -q "GET /simple/gapps-pinned/gapps-pinned-2.0.tar.gz" "$tmp/index.log" && fail "pip fetched gapps-pinned 2.0 despite the constraint"
# The image's name with or without the extras (docs/configuration.md and the code disagree): its tag.
jq -e '(.image | test("^gapps-web[^:]*:1[.]0$")) and .release == "gapps-web[extra]==1.0"' "$tmp/web/result.json" >/dev/null \
    || fail "the result file: $(cat "$tmp/web/result.json")"
pass "built gapps-web[extra]==1.0: gapps-fastmath compiled from its sdist by the compiler image"

"${G[@]}" inspect "oci:$tmp/layout:web" >"$tmp/web/inspect.json"
has() { jq -e --arg v "$2" "$1" "$tmp/web/inspect.json" >/dev/null; }
for e in GROCKER_APP=gapps-web GROCKER_APP_VERSION=1.0 GROCKER_APP_EXTRAS=extra APPS_MODE=blue APPS_CLI=yes; do
    has '.config.config.Env | index($v)' "$e" || fail "Env lacks $e: $(jq -c .config.config.Env "$tmp/web/inspect.json")"
done
for p in 8000/tcp 9000/tcp 8080/tcp; do has '.config.config.ExposedPorts[$v]' "$p" || fail "port $p is not exposed"; done
for v in /config /scripts /media /data /srv/cache; do has '.config.config.Volumes[$v]' "$v" || fail "no volume $v"; done
has '.config.config.Labels["grocker.app.extras"] == $v' extra || fail "no grocker.app.extras label"
[ "$(jq -r '.config.config.Entrypoint | join(" ")' "$tmp/web/inspect.json")" = "$ep" ] || fail "the entrypoint is not grocker's"
pass "the image config: GROCKER_APP_EXTRAS=extra, envs from the file and --env, ports 8000 (file), 9000 (--port) and 8080 (www), volumes /data (file) and /srv/cache (--volume)"

# The SMTP sink the cron job's mail must reach: every message appended to a file.
cat >"$tmp/smtp-sink.py" <<'EOF'
import socket, sys, threading

def session(conn):
    f = conn.makefile("rb")
    say = lambda text: conn.sendall(text.encode() + b"\r\n")
    say("220 sink")
    lines, in_data = [], False
    for raw in f:
        line = raw.decode(errors="replace").rstrip("\r\n")
        if in_data:
            if line == ".":
                with open(sys.argv[2], "a") as out:
                    out.write("\n".join(lines) + "\n.\n")
                lines, in_data = [], False
                say("250 saved")
            else:
                lines.append(line[1:] if line.startswith(".") else line)
        elif line[:4].upper() == "DATA":
            in_data = True
            say("354 end with .")
        elif line[:4].upper() == "QUIT":
            say("221 bye")
            break
        else:
            if line[:4].upper() in ("MAIL", "RCPT"):
                lines.append(line)
            say("250 ok")
    conn.close()

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen()
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.getsockname()[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    conn, _ = server.accept()
    threading.Thread(target=session, args=(conn,), daemon=True).start()
EOF
touch "$tmp/mail"
python3 "$tmp/smtp-sink.py" "$tmp/smtp-port" "$tmp/mail" &
pids+=($!)
wait_for 50 test -s "$tmp/smtp-port" || fail "the SMTP sink did not start"
mkdir -p "$tmp/config" "$tmp/scripts"
echo "127.0.0.1:$(cat "$tmp/smtp-port")" >"$tmp/config/smtp"
echo "MAILTO=cron@example.com" >"$tmp/config/env"

# cron first, in the background: its every-minute job takes up to a minute, spent on the rest.
"${G[@]}" run --network host --volume "$tmp/config:/config:ro" "oci:$tmp/layout:web" -- "$ep" cron \
    >"$tmp/cron.out" 2>"$tmp/cron.err" &
cron_pid=$!
pids+=("$cron_pid")

# Inside the runner, through the entrypoint: the C extension imports; no compiler, header or
# -dev package came from the compiler image.
out=$("${G[@]}" run "oci:$tmp/layout:web" -- "$ep" python3 -c '
import gapps_fastmath, gapps_web, sys
print(sys.prefix, gapps_fastmath.__file__.rsplit("/", 1)[1], gapps_web.summary())') \
    || fail "python3 in the runner could not import the app"
[ "$out" = "/home/grocker/venv gapps_fastmath.cpython-311-x86_64-linux-gnu.so add(2,3)=5 pinned=1.0 linkonly extradep=yes mode=blue" ] \
    || fail "in the runner: '$out'"
pass "the runner imports gapps_fastmath (a compiled .so), the find-links dependency, gapps-pinned 1.0 (the constraint's, not the index's 2.0) and the extra's dependency"
out=$("${G[@]}" run "oci:$tmp/layout:web" -- "$ep" sh -c '
for f in gcc cc x86_64-linux-gnu-gcc cpp make; do command -v "$f" || true; done
ls /usr/include/python3*/Python.h 2>/dev/null || true
dpkg-query -W -f "\${Package}\n" | grep -E -- "-dev(:[a-z0-9]+)?$|^build-essential$" || true
ls /home/grocker/venv/lib/python3.11/site-packages | grep -E "^(gapps_|setuptools|wheel|pip)" | tr "\n" " "')
[ "$out" = "gapps_extradep-1.0.dist-info gapps_extradep.py gapps_fastmath-$V.dist-info gapps_fastmath.cpython-311-x86_64-linux-gnu.so gapps_linkonly-$V.dist-info gapps_linkonly.py gapps_pinned-1.0.dist-info gapps_pinned.py gapps_web gapps_web-1.0.dist-info " ] \
    || fail "the runner holds a compiler, Python.h or -dev packages, or an unexpected venv:
$out"
pass "no gcc, cc, make, Python.h, -dev package or build-essential in the runner; its venv holds the app and its dependencies only (no pip, setuptools, wheel)"

# A script of /scripts by its name, and any command.
printf '#!/bin/sh\necho "script x: $* as $(id -un) in $GROCKER_APP"\n' >"$tmp/scripts/x"
chmod 755 "$tmp/scripts/x"
out=$("${G[@]}" run --volume "$tmp/scripts:/scripts:ro" "oci:$tmp/layout:web" -- "$ep" x one two)
[ "$out" = "script x: one two as grocker in gapps-web" ] || fail "'x' with /scripts mounted gave '$out'"
[ "$("${G[@]}" run "oci:$tmp/layout:web" -- "$ep" echo hi)" = hi ] || fail "'echo hi' did not run"
pass "'x' runs /scripts/x as grocker; 'echo hi' runs"

# www: nginx in front of uwsgi, the app answering with the C extension's result. (podman runs
# www in build/end-to-end; here it runs the --entrypoint image below: each image loaded into
# podman's vfs storage costs a full copy of the root filesystem per layer.)
"${G[@]}" run --network host "oci:$tmp/layout:web" -- "$ep" www >"$tmp/www.out" 2>"$tmp/www.err" &
www_pid=$!
pids+=("$www_pid")
answer=
for _ in $(seq 300); do answer=$(curl -sf http://127.0.0.1:8080/ 2>/dev/null) && break; sleep 0.1; done
[ "$answer" = "web: add(2,3)=5 pinned=1.0 linkonly extradep=yes mode=blue" ] || { cat "$tmp/www.err" >&2; fail "www answered '$answer'"; }
curl -sI http://127.0.0.1:8080/ | grep -qi '^server: nginx' || fail "www's answer did not come through nginx"
kill -TERM "$www_pid"
status=0
wait "$www_pid" || status=$?
[ "$status" = 0 ] || fail "www exited with $status after SIGTERM, not 0: $(tail -5 "$tmp/www.err")"
pass "www answers on 8080 through nginx and uwsgi with the C extension's result; SIGTERM stops it (0)"

# The cron jobs' output, mailed by cron through msmtp to the sink.
wait_for 100 grep -q "gapps-web report at-start by grocker: add(2,3)=5 pinned=1.0 linkonly extradep=yes mode=blue" "$tmp/mail" \
    || fail "no mail from the @reboot job reached the SMTP sink:
$(cat "$tmp/cron.err")
$(cat "$tmp/mail")"
grep -q "^RCPT TO:<cron@example.com>" "$tmp/mail" || fail "cron's mail did not go to MAILTO: $(cat "$tmp/mail")"
pass "cron: the @reboot job ran as grocker with the venv and the image's env; cron mailed its output to MAILTO through msmtp"

# --- wheel: a .whl[extra] file, with --entrypoint --------------------------------------------
build "$tmp/dist/gapps_wheelapp-1.0-py3-none-any.whl[extra]" --index-url "$index_url" --entrypoint gapps-wheelapp \
    --no-push --output "oci-archive:$tmp/wheelapp.tar:gapps-wheelapp:1.0" --output "oci:$tmp/layout:wheelapp" \
    >"$tmp/wheelapp.out" 2>"$tmp/wheelapp.err" || { cat "$tmp/wheelapp.err" >&2; fail "grocker build of the wheel failed"; }
"${G[@]}" inspect "oci:$tmp/layout:wheelapp" >"$tmp/wheelapp.json"
[ "$(jq -c '[.config.config.Entrypoint, .config.config.User]' "$tmp/wheelapp.json")" = '[["/home/grocker/venv/bin/gapps-wheelapp"],"grocker"]' ] \
    || fail "--entrypoint: $(jq -c '[.config.config.Entrypoint, .config.config.User]' "$tmp/wheelapp.json")"
jq -e '.config.config.Env | index("GROCKER_APP_EXTRAS=extra")' "$tmp/wheelapp.json" >/dev/null || fail "the wheel's extras are not in GROCKER_APP_EXTRAS"
"${P[@]}" load -i "$tmp/wheelapp.tar" >"$tmp/load.log" 2>&1 || { cat "$tmp/load.log" >&2; fail "podman load of the wheel app's archive failed"; }
out=$("${PRUN[@]}" gapps-wheelapp:1.0 a b 2>&1) || fail "podman run gapps-wheelapp:1.0 failed: $out"
# No constraint here: the index's newest gapps-pinned.
[ "$out" = "wheelapp a b by grocker: pinned=2.0 extradep=yes" ] || fail "podman run gapps-wheelapp:1.0 a b: '$out'"
pass "a .whl[extra] file: its extra's dependency is installed; --entrypoint gapps-wheelapp runs the console script as grocker under podman; unconstrained, gapps-pinned is the index's 2.0"

# --- tool: a project folder, --pip-constraint on the command line ----------------------------
echo "gapps-pinned<2" >"$tmp/tool-constraints.txt"
build "$tmp/src/gapps-tool-1.0[extra]" --index-url "$index_url" --pip-constraint "$tmp/tool-constraints.txt" \
    --no-push --output "oci:$tmp/layout:tool" >"$tmp/tool.out" 2>"$tmp/tool.err" \
    || { cat "$tmp/tool.err" >&2; fail "grocker build of the project folder failed"; }
"${G[@]}" inspect "oci:$tmp/layout:tool" >"$tmp/tool.json"
for e in GROCKER_APP=gapps-tool GROCKER_APP_VERSION=1.0 GROCKER_APP_EXTRAS=extra; do
    jq -e --arg e "$e" '.config.config.Env | index($e)' "$tmp/tool.json" >/dev/null || fail "the folder's image: Env lacks $e"
done
out=$("${G[@]}" run "oci:$tmp/layout:tool" -- "$ep" gapps-tool) || fail "gapps-tool did not run"
[ "$out" = "tool: pinned=1.0 extradep=yes" ] || fail "gapps-tool printed '$out'"
pass "a project folder with extras (path[extra]) builds with its extra's dependency; --pip-constraint keeps gapps-pinned below the index's 2.0"

# --- an sdist dependency asking for more than setuptools and wheel to build (gapps-extradep):
# built in a build environment of its own, made from its requirements (as pip's isolated builds,
# in a fixed folder). A version of this run, so
# that no wheel of an earlier run in the shared wheel cache stands in for the build.
module gapps-helped "$V" gapps_helped 'from gapps_extradep import NAME as HELPER'
sed -i 's/^requires = \["setuptools>=61", "wheel"\]$/requires = ["setuptools>=61", "wheel", "gapps-extradep"]/' \
    "$tmp/src/gapps-helped-$V/pyproject.toml"
sed -i 's/^dependencies = \[\]$/dependencies = ["gapps-extradep"]/' "$tmp/src/gapps-helped-$V/pyproject.toml"
grep -q '"gapps-extradep"\]$' "$tmp/src/gapps-helped-$V/pyproject.toml" || fail "the test could not write gapps-helped's requirements"
serve gapps-helped "$V"
build "gapps-helped==$V" --index-url "$index_url" --no-push --output "oci:$tmp/layout:helped" \
    >"$tmp/helped.out" 2>"$tmp/helped.err" || { cat "$tmp/helped.err" >&2; fail "grocker build gapps-helped==$V failed"; }
grep -q "needs more than the prepared build environment: building it in an environment of its own" "$tmp/helped.err" ||
    fail "gapps-helped's build requirement did not get an isolated build: $(cat "$tmp/helped.err")"
out=$("${G[@]}" run "oci:$tmp/layout:helped" -- /home/grocker/venv/bin/python3 -c "import gapps_helped as m; print(m.HELPER)") ||
    fail "gapps-helped does not import in its image"
[ "$out" = extradep ] || fail "gapps-helped printed '$out'"
pass "an sdist needing more than setuptools and wheel to build gets a build environment of its own"

# --- build backends: an in-tree one (backend-path) takes the compile step's fast path (its
# PEP 517 hooks called once, in a prepared environment); one asking for more than that
# environment holds gets pip's own build instead.
for name in gapps-inback gapps-moreback; do
    module "$name" 1.0 "${name//-/_}" "NAME = \"$name\""
    d=$tmp/src/$name-1.0
    sed -i 's/^build-backend = "setuptools.build_meta"$/build-backend = "grocker_test_backend"\nbackend-path = ["_backend"]/' \
        "$d/pyproject.toml"
    mkdir -p "$d/_backend"
    cat >"$d/_backend/grocker_test_backend.py" <<'EOF'
"""setuptools' backend, asking also for what extra-build-requires.txt lists."""
import os

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403


def get_requires_for_build_wheel(config_settings=None):
    extra = open("extra-build-requires.txt").read().split() if os.path.exists("extra-build-requires.txt") else []
    return _setuptools.get_requires_for_build_wheel(config_settings) + extra
EOF
done
echo gapps-extradep >"$tmp/src/gapps-moreback-1.0/extra-build-requires.txt"
for name in gapps-inback gapps-moreback; do
    build "$tmp/src/$name-1.0" --index-url "$index_url" --no-push --output "oci:$tmp/layout:$name" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" || { cat "$tmp/$name.err" >&2; fail "grocker build of $name failed"; }
    out=$("${G[@]}" run "oci:$tmp/layout:$name" -- /home/grocker/venv/bin/python3 -c "import ${name//-/_} as m; print(m.NAME)") ||
        fail "$name's module does not import in its image"
    [ "$out" = "$name" ] || fail "$name's module printed '$out'"
done
! grep -q "Processing /tmp/project" "$tmp/gapps-inback.err" ||
    fail "the in-tree backend's project went through pip wheel: $(cat "$tmp/gapps-inback.err")"
grep -q "project needs more than the prepared build environment: building it in an environment of its own" "$tmp/gapps-moreback.err" ||
    fail "the backend asking for gapps-extradep did not get a build environment of its own: $(cat "$tmp/gapps-moreback.err")"
pass "an in-tree backend (backend-path) builds through its hooks directly; one asking for more than the prepared environment holds gets an environment of its own"

# Last, so that the builds above use the minute the every-minute job takes to come.
wait_for 700 grep -q "gapps-web report every-minute by grocker" "$tmp/mail" \
    || fail "no mail from the every-minute job reached the SMTP sink in 70 s:
$(cat "$tmp/cron.err")
$(cat "$tmp/mail")"
kill -TERM "$cron_pid"
status=0
wait "$cron_pid" || status=$?
[ "$status" = 143 ] || fail "the cron instance exited with $status after SIGTERM, not 143"
pass "cron: the every-minute job ran and mailed too; SIGTERM stops the instance (143)"
echo "all apps checks passed"
