#!/bin/bash
# A hostile dependency cannot poison another app through the shared store (issue 11). On one
# store: a hostile app, whose dependency gevil tries every route the old compile step offered
# (the wheel cache, the resolutions, the build environments, a wheel of another package's name
# in its output), fails with a refusal; then a clean app that depends on gvictim gets exactly the
# genuine gvictim (checked by hash) and fsck finds nothing wrong. Also: a cache entry filed
# under another key is flagged by fsck and never read; inside a step, the compile user is not a
# host account and PID 1 shows nothing of grocker's command line.
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${GROCKER_TEST_CACHE:?}"
pass() { echo "ok: $*"; }
need_tools mmdebstrap jq "$PY" tar sha256sum
[ "$(id -u)" = 0 ] || fail "run as root"

setup grocker-hostile-test
chmod 755 "$tmp"
mkdir -p "$GROCKER_TEST_CACHE"
store=$GROCKER_TEST_CACHE/build-store # shared with build/end-to-end: root and compiler are warm
links=$tmp/links
mkdir -p "$links" "$tmp/src"
# verbose: pip shows what gevil's setup.py prints (its findings)
printf '[global]\nno-index = true\nverbose = 1\n' >"$tmp/pip.conf"
secret="grocker-cmdline-secret-$RANDOM$RANDOM"

# gvictim 1.0: a ready-made wheel. Its genuine module's hash is what the clean app must carry.
"$PY" - "$links" <<'PY'
import base64, hashlib, sys, zipfile
def rec(data): return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
files = {"gvictim/__init__.py": b"GENUINE = True\n",
         "gvictim-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: gvictim\nVersion: 1.0\n",
         "gvictim-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
record = "".join(f"{n},{rec(d)},{len(d)}\n" for n, d in files.items()) + "gvictim-1.0.dist-info/RECORD,,\n"
with zipfile.ZipFile(sys.argv[1] + "/gvictim-1.0-py3-none-any.whl", "w") as z:
    for n, d in files.items(): z.writestr(zipfile.ZipInfo(n, (1980, 1, 1, 0, 0, 0)), d)
    z.writestr(zipfile.ZipInfo("gvictim-1.0.dist-info/RECORD", (1980, 1, 1, 0, 0, 0)), record)
PY
genuine=$(printf 'GENUINE = True\n' | sha256sum | cut -d' ' -f1)

# gevil 1.0: an sdist whose setup.py attacks from every box it runs in (resolution, build).
mkdir -p "$tmp/src/gevil-1.0/gevil"
echo "X = 1" >"$tmp/src/gevil-1.0/gevil/__init__.py"
cat >"$tmp/src/gevil-1.0/setup.py" <<'PY'
import os, subprocess, sys, time, zipfile
from setuptools import setup
def trojan(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("gvictim/__init__.py", "GENUINE = False  # trojaned\n")
        z.writestr("gvictim-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: gvictim\nVersion: 1.0\n")
        z.writestr("gvictim-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("gvictim-1.0.dist-info/RECORD", "")
# The routes of the old compile step: the wheel cache, resolutions, build environments.
for d in ["/out/wheels", "/out/resolutions", "/out/build-envs/0000", "/wheels", "/cache/compile", "/cache/build-envs/0000",
          "/cache/wheels", "/cache/resolutions", "/run/grocker/build-env"]:
    try:
        os.makedirs(d, exist_ok=True)
        trojan(d + "/gvictim-1.0-py3-none-any.whl")
        with open(d + "/pwned.json", "w") as f:
            f.write('{"pwned": true}')
        print("gevil: wrote into " + d, flush=True)
    except OSError as e:
        print("gevil: could not write into " + d + ": " + e.strerror, flush=True)
print("gevil: uid " + str(os.getuid()) + ", pid 1 is " + open("/proc/1/cmdline", "rb").read().replace(b"\0", b" ").decode(), flush=True)
if "bdist_wheel" in sys.argv:
    # The build box: a wheel of another package's name as the box's output, and the box's own
    # wheel removed as soon as the compile script copies it there.
    trojan("/out/gvictim-1.0-py3-none-any.whl")
    if os.fork() == 0:
        os.setsid()
        end = time.time() + 60
        while time.time() < end:
            for n in os.listdir("/out"):
                if n.startswith("gevil"):
                    try: os.unlink("/out/" + n)
                    except OSError: pass
            time.sleep(0.0005)
        os._exit(0)
    # Seen from the host meanwhile (the test looks for it): whose process is it?
    subprocess.run(["sleep", "4.2718"])
setup(name="gevil", version="1.0", packages=["gevil"])
PY
tar -czf "$links/gevil-1.0.tar.gz" -C "$tmp/src" gevil-1.0

# Two apps: the hostile one (depends on gevil and gvictim), the clean one (gvictim only).
for a in hostile clean; do
    mkdir -p "$tmp/$a/${a}app"
    echo "" >"$tmp/$a/${a}app/__init__.py"
    deps='"gvictim==1.0"'
    [ "$a" = hostile ] && deps='"gevil==1.0", "gvictim==1.0"'
    printf '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n[project]\nname = "%sapp"\nversion = "1.0"\ndependencies = [%s]\n' \
        "$a" "$deps" >"$tmp/$a/pyproject.toml"
    printf 'runtime: bookworm/3.11\n' >"$tmp/$a/.grocker.yml"
done
g() { "$GROCKER" --root "$store" build "$@" --pip-conf "$tmp/pip.conf" --find-links "$links" --no-push --env "SECRET=$secret"; }

# --- the hostile app first: refused ------------------------------------------------------------
g "$tmp/hostile" -c "$tmp/hostile/.grocker.yml" >"$tmp/hostile.out" 2>"$tmp/hostile.err" &
build=$!
# The box's processes as the host sees them: gevil's "sleep 4.2718" runs as the compile user.
box_uid=
while kill -0 "$build" 2>/dev/null; do
    pid=$(pgrep -x -f "sleep 4.2718" | head -1) && box_uid=$(stat -c %u "/proc/$pid" 2>/dev/null) && [ -n "$box_uid" ] && break
    sleep 0.1
done
if wait "$build"; then cat "$tmp/hostile.err" >&2; fail "the hostile app's build succeeded"; fi
tail -1 "$tmp/hostile.err" | grep -Eq "^grocker: .*the build of gevil 1.0 (left 2 wheels, not one|made a wheel of gvictim 1.0 .*, not of gevil 1.0): refused" ||
    { cat "$tmp/hostile.err" >&2; fail "the hostile build did not end with the refusal of gevil's output"; }
grep -q "gevil: could not write into /wheels" "$tmp/hostile.err" || fail "gevil's attack did not run: $(cat "$tmp/hostile.err")"
pass "a build step writing a wheel of another package's name is refused, and the build fails"
for d in /wheels /cache/compile /cache/build-envs/0000 /cache/wheels /cache/resolutions /run/grocker/build-env; do
    grep -q "gevil: could not write into $d" "$tmp/hostile.err" || fail "gevil could write into $d: $(grep gevil: "$tmp/hostile.err")"
done
[ -z "$(find "$store" -name 'pwned.json' -o -name 'gvictim-1.0-py3-none-any.whl' | grep -v '/tmp/')" ] ||
    fail "gevil's files reached the store: $(find "$store" -name 'pwned.json' -o -name 'gvictim-1.0-py3-none-any.whl')"
pass "no cache, build environment or wheel of the store is writable (or even visible) from a box; nothing gevil wrote is in the store"

# Inside the boxes: the compile user is not a host account, and PID 1 is not grocker's command.
uid=$(grep -m1 -o "gevil: uid [0-9]*" "$tmp/hostile.err" | grep -o '[0-9]*$')
[ "$uid" = 1000 ] || fail "the compile user inside is uid $uid, not 1000"
grep "gevil: uid" "$tmp/hostile.err" | grep -q "$secret" && fail "PID 1 of a box shows grocker's command line"
grep -q "pid 1 is grocker-init" "$tmp/hostile.err" || fail "PID 1 of a box: $(grep 'gevil: uid' "$tmp/hostile.err" | head -1)"
pass "PID 1 of a box shows 'grocker-init', not grocker's command line (its --env values)"
# As root, the compile user (1000 inside) is 1000 up from root's own subordinate range (65536
# ids) or from 2^31: no host account, which could otherwise signal the box or own its files.
want=$(grocker_uid_outside)
[ "$box_uid" = "$want" ] || fail "the compile user is host uid '$box_uid', expected $want"
getent passwd "$box_uid" >/dev/null && fail "the compile user's host uid $box_uid is an account: $(getent passwd "$box_uid")"
pass "the compile user is host uid $box_uid, no host account"

# --- then the clean app, on the same store: the genuine gvictim --------------------------------
g "$tmp/clean" -c "$tmp/clean/.grocker.yml" --output "oci:$tmp/layout:clean" >"$tmp/clean.out" 2>"$tmp/clean.err" ||
    { cat "$tmp/clean.err" >&2; fail "the clean app's build failed"; }
"$GROCKER" --root "$store" -q unpack "oci:$tmp/layout:clean" "$tmp/rootfs"
got=$(sha256sum "$tmp"/rootfs/home/grocker/venv/lib/python3.*/site-packages/gvictim/__init__.py | cut -d' ' -f1)
[ "$got" = "$genuine" ] || fail "the clean app's gvictim is not the genuine one: $(cat "$tmp"/rootfs/home/grocker/venv/lib/python3.*/site-packages/gvictim/__init__.py)"
pass "a clean app built after the hostile one carries the genuine gvictim (sha256 $genuine)"
"$GROCKER" --root "$store" fsck >"$tmp/fsck.out" 2>"$tmp/fsck.err" || { cat "$tmp/fsck.out" "$tmp/fsck.err" >&2; fail "fsck failed"; }
grep -v "leftover\|lock file" "$tmp/fsck.out" | grep -q . && fail "fsck found problems: $(cat "$tmp/fsck.out")"
pass "fsck finds nothing wrong after both builds"

# --- a project whose metadata hook and wheel disagree: resolved again from its wheel ------------
# A first build resolves from the project's folder beside its build; a resolution that says
# other requirements than the wheel the build made is dropped, never used nor kept.
mkdir -p "$tmp/shifty/shifty"
echo "" >"$tmp/shifty/shifty/__init__.py"
printf '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n' >"$tmp/shifty/pyproject.toml"
cat >"$tmp/shifty/setup.py" <<'PY'
import sys
from setuptools import setup
# The wheel needs gvictim; the metadata pip prepares for the resolution says nothing.
setup(name="shifty", version="1.0", packages=["shifty"], install_requires=["gvictim==1.0"] if "bdist_wheel" in sys.argv else [])
PY
printf 'runtime: bookworm/3.11\n' >"$tmp/shifty/.grocker.yml"
g "$tmp/shifty" -c "$tmp/shifty/.grocker.yml" --output "oci:$tmp/layout:shifty" >"$tmp/shifty.out" 2>"$tmp/shifty.err" ||
    { cat "$tmp/shifty.err" >&2; fail "the shifty app's build failed"; }
grep -q "^\[ *[0-9]*\.[0-9]s\] resolve: $tmp/shifty: resolving again from its wheel (.*what it says of the project (shifty 1.0, 0 requirements) is not what its wheel says (shifty 1.0, 1 requirements))" \
    "$tmp/shifty.err" || fail "the early resolution was not dropped: $(cat "$tmp/shifty.err")"
"$GROCKER" --root "$store" -q unpack "oci:$tmp/layout:shifty" "$tmp/rootfs-shifty"
ls "$tmp"/rootfs-shifty/home/grocker/venv/lib/python3.*/site-packages/gvictim/__init__.py >/dev/null ||
    fail "the shifty app's image lacks the gvictim its wheel requires"
pass "a resolution from the project's folder that its wheel contradicts is dropped; the wheel's requirements are installed"

# --- an entry filed under another key: flagged by fsck, never read ----------------------------
res=$(ls "$store"/cache/resolutions/*.json | sed -n 1p)
forged=$store/cache/resolutions/$(printf '%064d' 0).json
cp "$res" "$forged"
"$GROCKER" --root "$store" fsck >"$tmp/fsck2.out" 2>&1 && fail "fsck passed a resolution filed under another key"
grep -q "^$forged: broken resolution cache entry: it is filed under a key that is not its inputs'" "$tmp/fsck2.out" ||
    fail "fsck said: $(cat "$tmp/fsck2.out")"
"$GROCKER" --root "$store" -q fsck --repair >/dev/null 2>&1 || true
[ ! -e "$forged" ] || fail "fsck --repair left the forged entry"
hint=$(ls "$store"/cache/hints/*.json | sed -n 1p)
forged=$store/cache/hints/$(printf '%064d' 0).json
cp "$hint" "$forged"
"$GROCKER" --root "$store" fsck >"$tmp/fsck3.out" 2>&1 && fail "fsck passed a hint filed under another key"
grep -q "^$forged: broken resolution hint" "$tmp/fsck3.out" || fail "fsck said: $(cat "$tmp/fsck3.out")"
"$GROCKER" --root "$store" -q fsck --repair >/dev/null 2>&1 || true
[ ! -e "$forged" ] || fail "fsck --repair left the forged hint"
pass "a cache entry (a resolution, a hint) filed under a key that is not its inputs' is flagged by fsck and removed by --repair"
echo "all hostile-build checks passed"
