#!/bin/bash
# grocker build, end to end, on the bundled example (a WSGI app and its dependency) with real
# Debian packages: the image's config, what is and is not in the runner, the www service
# through nginx and uwsgi under podman, caching (a no-op rebuild runs nothing, a version bump
# reruns only compile and the app's layer), a planted index secret found nowhere. The rootless
# build's digest is checked by build/rootless.sh. Fails, never skips, when a tool is missing.
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${GROCKER_SOURCE_ROOT:?}"
: "${GROCKER_TEST_CACHE:?}"
pass() { echo "ok: $*"; }
need_tools mmdebstrap podman runc jq curl "$PY" tar unzip
[ "$(id -u)" = 0 ] || fail "run as root (podman, and the build as root)"

setup grocker-build-test
chmod 755 "$tmp"
# The www container, stopped before the fixtures' cleanup removes $tmp.
pids=()
stop_podman() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    podman --root "$tmp/podman" --runroot "$tmp/podman-run" --storage-driver vfs --runtime runc rm -f -a >/dev/null 2>&1 || true
}
trap 'stop_podman; cleanup' EXIT
secret="grocker-planted-secret-$RANDOM$RANDOM"

# The example, copied so the test can bump its version; its dependency from a PEP 503 index on
# loopback, with a secret in the index URL's user info.
serve_example_index
index="http://ci:$secret@${index#http://}"

# A shared store for the slow parts (base, root, compiler) across runs of this test.
mkdir -p "$GROCKER_TEST_CACHE"
store=$GROCKER_TEST_CACHE/build-store
build() { "$GROCKER" --root "$store" build "$@"; }

# --- the build -------------------------------------------------------------------------------
build "$app" -c "$app/.grocker.yml" --index-url "$index" --no-push \
    --output "oci-archive:$tmp/hello.tar:grocker-hello:1.0.0" --output "oci:$tmp/layout:hello" \
    --result-file "$tmp/result.json" >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err" >&2; fail "grocker build failed"; }
digest=$(cat "$tmp/out")
[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || fail "grocker build printed '$digest', not a digest"
[ "$(jq -r .hash "$tmp/result.json")" = "$digest" ] || fail "the result file's hash is not the printed digest"
[ "$(jq -r .image "$tmp/result.json")" = "grocker-hello:1.0.0" ] || fail "result image: $(jq -r .image "$tmp/result.json")"
jq -e '.root_image | test("^grocker-bookworm-3.11-root:")' "$tmp/result.json" >/dev/null || fail "result root_image"
jq -e '.compiler_image | test("^grocker-bookworm-3.11-compiler:")' "$tmp/result.json" >/dev/null || fail "result compiler_image"
pass "built $digest; the result file names the image, root, compiler and hash"
# A first build of the project resolves its dependencies from its folder beside its build, and
# keeps that resolution (its wheel says the same requirements).
if grep -qx "compile: $app" <<<"$(steps_ran "$(cat "$tmp/err")")"; then
    grep -qx "resolve: $app" <<<"$(steps_ran "$(cat "$tmp/err")")" || fail "the first build did not resolve: $(cat "$tmp/err")"
    grep -q "resolving again" "$tmp/err" && fail "the first build's early resolution was dropped: $(cat "$tmp/err")"
    pass "the first build resolved from the project's folder beside the project's build, and kept it"
fi

"$GROCKER" --root "$store" inspect "oci:$tmp/layout:hello" >"$tmp/inspect.json"
[ "$(jq -r .digest "$tmp/inspect.json")" = "$digest" ] || fail "the oci: output has another digest"
cfg() { jq -r "$1" "$tmp/inspect.json"; }
# The entrypoint starts as root and runs everything as grocker but the cron daemon.
[ "$(cfg '.config.config.User')" = null ] || fail "the runner's user is $(cfg '.config.config.User')"
[ "$(cfg '.config.config.Entrypoint[0]')" = /usr/local/bin/grocker-entrypoint ] || fail "entrypoint $(cfg '.config.config.Entrypoint')"
for e in GROCKER_APP=grocker-hello GROCKER_APP_VERSION=1.0.0 GREETING_STYLE=plain LANG=C.UTF-8 \
    "PATH=/home/grocker/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"; do
    jq -e --arg e "$e" '.config.config.Env | index($e)' "$tmp/inspect.json" >/dev/null || fail "Env lacks $e"
done
jq -e '.config.config.ExposedPorts["8080/tcp"]' "$tmp/inspect.json" >/dev/null || fail "port 8080 is not exposed"
for v in /config /scripts /media; do jq -e --arg v "$v" '.config.config.Volumes[$v]' "$tmp/inspect.json" >/dev/null || fail "no volume $v"; done
[ "$(cfg '.config.config.Labels["grocker.image.role"]')" = runner ] || fail "role label"
layers=$(cfg '.manifest.layers | length')
history=$(cfg '[.config.history[] | select(.empty_layer != true)] | length')
[ "$layers" = "$history" ] || fail "$layers layers but $history history entries"
pass "the image config: no user (the entrypoint drops to grocker), entrypoint, env, ports, volumes, labels, one history entry per layer"

# inspect --summary: each layer with what made it and its sizes, checked against Python's own
# reading of the layout's blobs (tarfile), and the config in short.
"$GROCKER" --root "$store" inspect --summary "oci:$tmp/layout:hello" >"$tmp/summary" || fail "inspect --summary failed"
"$PY" - "$tmp/layout" "$tmp/summary" <<'EOF' || fail "inspect --summary does not match the layout"
import json, sys, tarfile
layout, summary = sys.argv[1], open(sys.argv[2]).read().splitlines()
def human(n):
    if n < 1000:
        return f"{n} B"
    v, units = n / 1000, ["kB", "MB", "GB", "TB"]
    u = 0
    while v >= 1000 and u < 3:
        v, u = v / 1000, u + 1
    return f"{v:.1f} {units[u]}"
blob = lambda d: f"{layout}/blobs/sha256/{d.split(':')[1]}"
index = json.load(open(f"{layout}/index.json"))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
config = json.load(open(blob(manifest["config"]["digest"])))
made_by = [h.get("created_by", "") for h in config["history"] if not h.get("empty_layer")]
total, compressed = 0, 0
for i, layer in enumerate(manifest["layers"], 1):
    with tarfile.open(blob(layer["digest"])) as t:
        members = t.getmembers()
    size = sum(m.size for m in members if m.isreg())
    total += size
    compressed += layer["size"]
    row = [l for l in summary if l.startswith(f"  {i} ")]
    assert len(row) == 1, f"no row for layer {i}: {summary}"
    words = row[0].split()
    assert " ".join(words[1:3]) == human(layer["size"]), f"layer {i}'s compressed size: {row[0]}"
    assert " ".join(words[3:5]) == human(size), f"layer {i}'s files: {row[0]} (Python: {human(size)})"
    assert words[5] == str(len(members)), f"layer {i}'s entries: {row[0]} (Python: {len(members)})"
    assert row[0].endswith(made_by[i - 1][:72]), f"layer {i} made by: {row[0]}"
n = len(manifest["layers"])
size_line = f"  size      {human(compressed)} compressed, {human(total)} of files, {n} layers"
assert size_line in summary, f"no '{size_line}' in {summary}"
EOF
grep -q "^         in /home/grocker/venv/lib/python3.11/site-packages " "$tmp/summary" ||
    fail "the app's layer is not shown in the venv's site-packages: $(cat "$tmp/summary")"
for line in "    entrypoint  /usr/local/bin/grocker-entrypoint" "    ports       8080/tcp" \
    "    volumes     /config /media /scripts" "    user        root" "                GREETING_STYLE=plain"; do
    grep -qxF -- "$line" "$tmp/summary" || fail "inspect --summary lacks '$line': $(cat "$tmp/summary")"
done
pass "inspect --summary: each layer's sizes, entries and maker as Python's tarfile reads them, the venv's folder, the config in short"

"$GROCKER" --root "$store" -q unpack "oci:$tmp/layout:hello" "$tmp/rootfs"
for f in usr/bin/gcc usr/bin/cc usr/include/python3.11/Python.h usr/bin/pip3; do
    [ ! -e "$tmp/rootfs/$f" ] || fail "the runner holds $f from the compiler"
done
ls "$tmp/rootfs/var/lib/dpkg/info" | grep -E -- '-dev(:amd64)?\.list$' && fail "the runner holds -dev packages"
ls "$tmp"/rootfs/home/grocker/venv/lib/python3.11/site-packages/ | grep -q '^grocker_greeting$' || fail "the dependency is not in the venv"
ls "$tmp"/rootfs/home/grocker/venv/lib/python3.11/site-packages/ | grep -q '^grocker_hello$' || fail "the app is not in the venv"
[ -x "$tmp/rootfs/usr/local/bin/grocker-entrypoint" ] || fail "no entrypoint"
pass "no compiler, header or -dev package in the runner; the app and its dependency are in the venv"

# --- secrets ---------------------------------------------------------------------------------
grep -q "$secret" "$tmp/out" "$tmp/err" && fail "the index secret is in grocker's output"
mkdir -p "$tmp/layers"
for blob in "$tmp"/layout/blobs/sha256/*; do
    if gzip -t "$blob" 2>/dev/null; then gzip -dc "$blob" | grep -a -q "$secret" && fail "the secret is in layer $(basename "$blob")"
    else grep -a -q "$secret" "$blob" && fail "the secret is in blob $(basename "$blob")"; fi
done
grep -q "$secret" "$tmp/result.json" && fail "the secret is in the result file"
grep -q "GET /simple/grocker-greeting/ " "$tmp/index.log" || fail "the index was not asked for the dependency"
pass "the planted index secret is in no layer, config, history, result or log line"

# --- podman runs the www service --------------------------------------------------------------
P=(podman --root "$tmp/podman" --runroot "$tmp/podman-run" --storage-driver vfs)
"${P[@]}" load -i "$tmp/hello.tar" >/dev/null
"${P[@]}" --cgroup-manager cgroupfs --runtime runc run --rm --network host --ulimit nofile=1024:1024 \
    --ulimit nproc=1024:1024 --name www grocker-hello:1.0.0 www >"$tmp/www.log" 2>&1 &
pids+=($!)
answer=
for _ in $(seq 100); do answer=$(curl -sf http://127.0.0.1:8080/ 2>/dev/null) && break; sleep 0.2; done
[ "$answer" = "hello, web, from grocker-greeting" ] || { cat "$tmp/www.log" >&2; fail "www answered '$answer'"; }
static=$(curl -sf http://127.0.0.1:8080/static/hello.txt)
[ "$static" = "static file of grocker-hello" ] || fail "the static file was '$static'"
"${P[@]}" --runtime runc stop -t 5 www >/dev/null
pass "podman run IMAGE www answers through nginx and uwsgi on 8080 and serves a static file"

# --- caching -----------------------------------------------------------------------------------
build "$app" -c "$app/.grocker.yml" --index-url "$index" --no-push --export-wheels "$tmp/wheels" >"$tmp/out2" 2>"$tmp/err2"
[ "$(cat "$tmp/out2")" = "$digest" ] || fail "the no-op rebuild gave another digest"
grep -q '^steps: 0 ran, ' "$tmp/err2" || fail "the no-op rebuild ran steps: $(cat "$tmp/err2")"
# --export-wheels: the wheels the build used (the app's, its dependency's built from the sdist),
# whole, under their names, even from a build that ran nothing.
exported=$(cd "$tmp/wheels" && ls)
expect_wheels="grocker_greeting-1.0.0-py3-none-any.whl
grocker_hello-1.0.0-py3-none-any.whl"
[ "$exported" = "$expect_wheels" ] || fail "--export-wheels wrote: $exported"
for w in "$tmp"/wheels/*.whl; do "$PY" -m zipfile -t "$w" >/dev/null || fail "$w is not a whole wheel"; done
unzip -p "$tmp/wheels/grocker_hello-1.0.0-py3-none-any.whl" grocker_hello-1.0.0.dist-info/METADATA |
    grep -q '^Requires-Dist: grocker-greeting' || fail "the exported app wheel lacks its requirement"
pass "the no-op rebuild with --export-wheels wrote the app's and the dependency's wheels"
pass "a no-op rebuild runs no sandbox step and gives the same digest"
# A version of this run only: wheels are reproducible, so a version some earlier run of this
# test built would find its app layer in the shared store's cache.
bump=1.1.$(date +%s)
sed -i "s/^version = \"1.0.0\"/version = \"$bump\"/" "$app/pyproject.toml"
build "$app" -c "$app/.grocker.yml" --index-url "$index" --no-push >"$tmp/out3" 2>"$tmp/err3"
ran=$(steps_ran "$(cat "$tmp/err3")")
[ "$ran" = $'compile: '"$app"$'\nrunner: grocker-hello '"$bump" ] || fail "a version bump ran: $ran"
pass "a version bump reruns only compile and the app's layer"
# ... without pip: the project's wheel from its backend in the prepared build environment, the
# dependencies from the last resolution (its requirements did not change).
grep -Eq "${EV}dependencies of grocker-hello: unchanged requirements" "$tmp/err3" ||
    fail "the version bump resolved the dependencies again: $(cat "$tmp/err3")"
! grep -q "Processing /tmp/project\|Looking in indexes" "$tmp/err3" || fail "the version bump ran pip: $(cat "$tmp/err3")"
pass "a version bump runs no pip: the app's wheel through its backend, the last resolution's dependencies"
# A changed requirement is resolved again (in a box of its own), and finds the same sdist of
# grocker-greeting, whose wheel is cached under its source's hash: the dependencies' layer stays.
sed -i 's/^dependencies = \["grocker-greeting>=1.0"\]$/dependencies = ["grocker-greeting>=1.0,<2"]/' "$app/pyproject.toml"
grep -q '<2"]' "$app/pyproject.toml" || fail "the test could not change the example's requirement"
build "$app" -c "$app/.grocker.yml" --index-url "$index" --no-push >"$tmp/out4" 2>"$tmp/err4"
grep -Eq "${EV}compile: grocker-greeting 1.0.0: cached$" "$tmp/err4" || fail "the dependency's wheel was not taken from the cache: $(cat "$tmp/err4")"
ran=$(steps_ran "$(cat "$tmp/err4")")
[ "$ran" = $'compile: '"$app"$'\nresolve: '"$app"$'\nrunner: grocker-hello '"$bump" ] || fail "a changed requirement ran: $ran"
pass "a changed requirement is resolved again; the same dependency wheel keeps the dependencies' layer"
# --refresh resolves again with nothing changed (new releases of unpinned dependencies); the
# same wheels give the same image.
build "$app" -c "$app/.grocker.yml" --index-url "$index" --no-push --refresh >"$tmp/out5" 2>"$tmp/err5"
[ "$(steps_ran "$(cat "$tmp/err5")")" = "resolve: $app" ] || fail "--refresh ran: $(steps_ran "$(cat "$tmp/err5")")"
[ "$(cat "$tmp/out5")" = "$(cat "$tmp/out4")" ] || fail "--refresh with the same wheels gave another image"
pass "--refresh resolves the dependencies again; the same wheels give the same image"
echo "all build checks passed"
