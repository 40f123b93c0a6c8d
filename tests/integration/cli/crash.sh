#!/bin/bash
# Crash consistency of the store. grocker is killed with SIGKILL at random points, spread over
# the command's normal duration (measured first), of
#   - grocker pull from a registry into oci:, and grocker copy docker:// → docker-archive:
#   - grocker build with root and compiler cached (so the compile and runner steps run)
#   - grocker purge
# and after each kill `grocker fsck` finds nothing broken, and the same command run again
# succeeds with what an uninterrupted run gives (digest, archive bytes, purged store). Then a
# store damaged on purpose (a layer blob with a byte flipped, a manifest blob deleted, a cache
# entry cut short): fsck names each piece and exits 1, --repair fixes them, the build heals;
# purge keeps what builds use (the next build runs nothing).
#
# Env: GROCKER, GROCKER_SOURCE_ROOT, GROCKER_TEST_CACHE (its build-store holds the slow root and
# compiler; copied, never written, and made by a first build when missing, as build/end-to-end
# does). KILLS=N kill points per command (default 10, 8 for build); SEED=N repeats a run's
# random points; KEEP_TMP=1 keeps the temp folder. A missing tool fails the test.
set -eu -o pipefail
tests=$(cd "$(dirname "$0")/.." && pwd)
. "$tests/lib.sh"

: "${GROCKER:?GROCKER must name the grocker binary}"
: "${GROCKER_SOURCE_ROOT:?}"
: "${GROCKER_TEST_CACHE:?}"
GROCKER=$(realpath "$GROCKER")
need_tools docker-registry mmdebstrap jq curl sha256sum cmp flock pgrep runuser newuidmap busybox "$PY"
[ "$(id -u)" = 0 ] || fail "run as root (grocker build's sandbox and mmdebstrap)"
KILLS=${KILLS:-10}
SEED=${SEED:-$$}
RANDOM=$SEED
echo "random kill points from SEED=$SEED"

setup grocker-crash
cd "$tmp"
chmod 755 "$tmp"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
ms_text() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

# kill_at MS STORE [grocker arguments...]: runs grocker on STORE and sends it SIGKILL after MS
# milliseconds; `killed` is 1 when it was still running.
kill_at() {
    local ms=$1 store=$2
    shift 2
    "$GROCKER" --root "$store" "$@" >"$tmp/killed.out" 2>"$tmp/killed.err" &
    local pid=$!
    sleep "$(ms_text "$ms")"
    if kill -9 "$pid" 2>/dev/null; then killed=1; else killed=0; fi
    wait "$pid" 2>/dev/null || true
    # Its sandbox's processes die with it (PR_SET_PDEATHSIG); give them a moment.
    for _ in $(seq 50); do pgrep -f -- "--root $store " >/dev/null 2>&1 || break; sleep 0.1; done
}

# delay I: the I-th of KILLS points spread over the first 90% of T ms (each at random in its
# own slice): a run killed is rarely as fast as the measured one.
delay() { echo $((T * 9 / 10 * ($1 * 1000 + RANDOM % 1000) / (KILLS * 1000) + 10)); }

# fsck_clean STORE WHAT: grocker fsck must find nothing broken (a kill before the store was
# made leaves none: nothing to check).
fsck_clean() {
    local rc=0
    [ -e "$1" ] || return 0
    "$GROCKER" --root "$1" fsck >"$tmp/fsck.out" 2>"$tmp/fsck.err" || rc=$?
    if [ $rc -ne 0 ]; then
        cat "$tmp/fsck.out" "$tmp/fsck.err" >&2
        echo "--- the killed command's stderr:" >&2
        cat "$tmp/killed.err" >&2
        fail "grocker fsck found the store broken (status $rc) $2"
    fi
}

# kills_summary WHAT: at least half the points must have hit a running command.
kills=0
kills_summary() {
    [ "$kills" -ge $((KILLS / 2)) ] || fail "$1: only $kills of $KILLS kills hit a running grocker (too fast to test?)"
    ok "$1: $kills kills at random points (of ${T} ms): fsck found the store consistent each time, the rerun gave the same result"
    kills=0
}

# --- pull and copy from a registry -----------------------------------------------------------
start_registry plain reg
R=$REGISTRY
mkdir -p img/a img/b img/c img/d
head -c 12000000 /dev/urandom >img/a/random
head -c 12000000 /dev/urandom >img/b/random
head -c 16000000 < <(yes 'grocker crash test line') >img/c/text
seq 1 50000 >img/d/numbers
run "grocker append" "$GROCKER" -q --root "$tmp/push-store" append scratch "oci:$tmp/layout:v1" \
    --dir img/a:/a --dir img/b:/b --dir img/c:/c --dir img/d:/d
run "grocker copy to the registry" "$GROCKER" -q --root "$tmp/push-store" copy "oci:$tmp/layout:v1" "docker://$R/crash/app:v1"
D=$(tail -n1 <<<"$out")
ok "pushed a 4-layer image of $(du -sm "$tmp/img" | cut -f1) MB as $D"

# T: the shortest of two uninterrupted runs (the first warms the page cache).
t0=$(now_ms)
run "an uninterrupted pull" "$GROCKER" -q --root "$tmp/ref-store" pull "$R/crash/app:v1" "oci:$tmp/pull-ref:v1"
T=$(($(now_ms) - t0))
expect_eq "the uninterrupted pull's digest" "$D" "$out"
t0=$(now_ms)
run "a second uninterrupted pull" "$GROCKER" -q --root "$tmp/ref-store1" pull "$R/crash/app:v1" "oci:$tmp/pull-ref1:v1"
T=$(( $(now_ms) - t0 < T ? $(now_ms) - t0 : T ))
for i in $(seq 0 $((KILLS - 1))); do
    s=$tmp/pull-store
    rm -rf "$s" "$tmp/pulled"
    ms=$(delay "$i")
    kill_at "$ms" "$s" -q pull "$R/crash/app:v1" "oci:$tmp/pulled:v1"
    kills=$((kills + killed))
    fsck_clean "$s" "after pull was killed at $ms ms"
    run "pull again after a kill at $ms ms" "$GROCKER" -q --root "$s" pull "$R/crash/app:v1" "oci:$tmp/pulled:v1"
    expect_eq "digest of the pull after a kill at $ms ms" "$D" "$out"
    check_blobs "$tmp/pulled"
    expect_eq "the pulled layout's digest after a kill at $ms ms" "$D" "$(oci_digest "$tmp/pulled" v1)"
    fsck_clean "$s" "after the pull run again"
done
kills_summary "grocker pull"

t0=$(now_ms)
run "an uninterrupted copy" "$GROCKER" -q --root "$tmp/ref-store2" copy "docker://$R/crash/app:v1" \
    "docker-archive:$tmp/ref.tar:crash/app:v1"
T=$(($(now_ms) - t0))
t0=$(now_ms)
run "a second uninterrupted copy" "$GROCKER" -q --root "$tmp/ref-store3" copy "docker://$R/crash/app:v1" \
    "docker-archive:$tmp/ref3.tar:crash/app:v1"
T=$(( $(now_ms) - t0 < T ? $(now_ms) - t0 : T ))
for i in $(seq 0 $((KILLS - 1))); do
    s=$tmp/copy-store
    rm -rf "$s" "$tmp/copied.tar"
    ms=$(delay "$i")
    kill_at "$ms" "$s" -q copy "docker://$R/crash/app:v1" "docker-archive:$tmp/copied.tar:crash/app:v1"
    kills=$((kills + killed))
    fsck_clean "$s" "after copy was killed at $ms ms"
    run "copy again after a kill at $ms ms" "$GROCKER" -q --root "$s" copy "docker://$R/crash/app:v1" \
        "docker-archive:$tmp/copied.tar:crash/app:v1"
    expect_eq "digest of the copy after a kill at $ms ms" "$D" "$out"
    cmp -s "$tmp/ref.tar" "$tmp/copied.tar" || fail "the archive written after a kill at $ms ms differs from an uninterrupted copy's"
    fsck_clean "$s" "after the copy run again"
done
kills_summary "grocker copy docker:// docker-archive:"
rm -rf "$tmp"/pull-store "$tmp"/copy-store "$tmp"/ref-store* "$tmp"/pull-ref* "$tmp/pulled" "$tmp/copied.tar" "$tmp"/ref*.tar

# --- build -------------------------------------------------------------------------------------
serve_example_index
warm=$GROCKER_TEST_CACHE/build-store
build() { # STORE [grocker build options]: builds the example app
    local s=$1
    shift
    "$GROCKER" --root "$s" build "$app" -c "$app/.grocker.yml" --index-url "$index" --no-push "$@"
}
if ! jq -e '.manifests[].annotations["org.opencontainers.image.ref.name"] | select(test("^grocker-.*-root:"))' \
    "$warm/index.json" >/dev/null 2>&1; then
    echo "no warm build store in $GROCKER_TEST_CACHE: making it (Debian base, root, compiler; minutes)"
    mkdir -p "$GROCKER_TEST_CACHE"
    run "the first build, into the shared build store" build "$warm"
fi
# The test's own copy; the kill points get hard-linked copies of it (blobs, unpacked layers and
# cache entries and the compile caches' files are only ever replaced by rename, never written in
# place), with locks of their own (an flock is the inode's).
cp -a "$warm" "$tmp/base"
copy_store() { # FROM TO
    cp -al "$1" "$2"
    rm -rf "$2/gc.lock" "$2/lock"
}
# The compiler of this grocker (the warm store may predate a change of the compile script),
# then a new version of the app: its builds run the compile and runner steps only.
run "a build of the app as shipped" build "$tmp/base"
sed -i 's/^version = "1.0.0"/version = "1.2.3"/' "$app/pyproject.toml"
copy_store "$tmp/base" "$tmp/build-ref"
t0=$(now_ms)
run "an uninterrupted build" build "$tmp/build-ref"
T=$(($(now_ms) - t0))
Dbuild=$(tail -n1 <<<"$out")
ran=$(steps_ran "$err")
expect_eq "steps of an uninterrupted build" $'compile: '"$app"$'\nrunner: grocker-hello 1.2.3' "$ran"
ok "the uninterrupted build ran compile and runner in $T ms: $Dbuild"
fsck_clean "$tmp/build-ref" "after an uninterrupted build"
KILLS=${BUILD_KILLS:-$((KILLS < 8 ? KILLS : 8))}
for i in $(seq 0 $((KILLS - 1))); do
    s=$tmp/build-store
    rm -rf "$s"
    copy_store "$tmp/base" "$s"
    ms=$(delay "$i")
    kill_at "$ms" "$s" build "$app" -c "$app/.grocker.yml" --index-url "$index" --no-push
    kills=$((kills + killed))
    fsck_clean "$s" "after build was killed at $ms ms ($(grep -E ': (running|cached)$' "$tmp/killed.err" | tail -n1))"
    run "build again after a kill at $ms ms" build "$s"
    expect_eq "digest of the build after a kill at $ms ms" "$Dbuild" "$(tail -n1 <<<"$out")"
    fsck_clean "$s" "after the build run again"
done
kills_summary "grocker build"
rm -rf "$tmp/build-store"

# --- purge -------------------------------------------------------------------------------------
# What a store holds, to compare purged stores: refs, blobs, cache entries, unpacked layers.
contents() {
    jq -r '.manifests[] | "ref \(.annotations["org.opencontainers.image.ref.name"]) \(.digest)"' "$1/index.json" | sort
    (cd "$1" && find blobs cache layers -mindepth 1 -maxdepth 2 | sort)
}
# Images of an older grocker, as a store used for a while has: the oldest root and compiler.
mkdir -p old/etc
head -c 3000000 /dev/urandom >old/etc/data
run "an image for old refs" "$GROCKER" -q --root "$tmp/build-ref" append scratch "oci:$tmp/old:v1" --dir old
old=$(jq -c '.manifests[0] | del(.annotations)' "$tmp/old/index.json")
oldRoot=grocker-bookworm-3.11-root:0.0.1-000000000000
oldCompiler=grocker-bookworm-3.11-compiler:0.0.1-000000000000
jq --argjson d "$old" --arg r "$oldRoot" --arg c "$oldCompiler" \
    '.manifests = [$d + {annotations: {"org.opencontainers.image.ref.name": $r}},
                   $d + {annotations: {"org.opencontainers.image.ref.name": $c}}] + .manifests' \
    "$tmp/build-ref/index.json" >"$tmp/index.new"
mv -f "$tmp/index.new" "$tmp/build-ref/index.json" # a new file: index.json is a hard link to base's
run "inspect of the old image" "$GROCKER" -q --root "$tmp/build-ref" inspect "oci:$tmp/old:v1"
oldDiffId=$(jq -r '.config.rootfs.diff_ids[0]' <<<"$out")
# Unpacked, as if a step had used it: a copy of the largest unpacked layer, so that purge takes
# long enough to be killed in the middle of removing it.
biggest=$(cd "$tmp/build-ref/layers" && for d in */; do echo "$(find "$d" | wc -l) ${d%/}"; done | sort -n | tail -n1 | cut -d' ' -f2)
cp -a "$tmp/build-ref/layers/$biggest" "$tmp/build-ref/layers/${oldDiffId#sha256:}"
fsck_clean "$tmp/build-ref" "with old refs added"
copy_store "$tmp/build-ref" "$tmp/purge-ref"
t0=$(now_ms)
run "an uninterrupted purge" "$GROCKER" --root "$tmp/purge-ref" purge
T=$(($(now_ms) - t0))
expect_match "purge removes the old root" "^removed $oldRoot$" "$out"
expect_match "purge removes the old compiler" "^removed $oldCompiler$" "$out"
expect_match "purge frees the old image's blobs and unpacked layer" \
    '^freed [0-9]+ bytes \([0-9.]+ [kMGT]?B\): [0-9]+ images, [0-9]+ blobs \([0-9.]+ [kMGT]?B\), .*, [1-9][0-9]* unpacked layers?' "$out"
[ -z "$(jq -r --arg r "$oldRoot" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $r)' "$tmp/purge-ref/index.json")" ] ||
    fail "purge left $oldRoot"
jq -e '.manifests[].annotations["org.opencontainers.image.ref.name"] | select(startswith("grocker-bookworm-3.11-compiler:"))' \
    "$tmp/purge-ref/index.json" >/dev/null || fail "purge removed every compiler (it keeps the newest)"
expect_match "purge says what it freed" '^freed [0-9]+ bytes \(.*\): [0-9]+ images?, [0-9]+ blobs?' "$out"
contents "$tmp/purge-ref" >"$tmp/purged.ref"
ok "an uninterrupted purge in $T ms: $(tail -n1 <<<"$out")"
KILLS=${PURGE_KILLS:-$KILLS}
for i in $(seq 0 $((KILLS - 1))); do
    s=$tmp/purge-store
    rm -rf "$s"
    copy_store "$tmp/build-ref" "$s"
    ms=$(delay "$i")
    kill_at "$ms" "$s" purge
    kills=$((kills + killed))
    fsck_clean "$s" "after purge was killed at $ms ms"
    run "purge again after a kill at $ms ms" "$GROCKER" --root "$s" purge
    contents "$s" >"$tmp/purged"
    diff "$tmp/purged.ref" "$tmp/purged" >&2 || fail "the store purged again after a kill at $ms ms differs from an uninterrupted purge's"
    fsck_clean "$s" "after the purge run again"
done
kills_summary "grocker purge"
rm -rf "$tmp/purge-store"

# waits_for_lock MODE WHAT MESSAGE-ERE COMMAND...: COMMAND, run while another process holds the
# store's gc.lock (flock MODE: -s as a grocker process using it, -x as a purge) for 2 s, waits
# for it and says MESSAGE.
waits_for_lock() {
    local mode=$1 what=$2 message=$3
    shift 3
    flock "$mode" "$tmp/purge-ref/gc.lock" sleep 2 &
    local holder=$! t0
    sleep 0.3
    t0=$(now_ms)
    run "$what" "$@"
    wait "$holder"
    expect_match "$what: it says it waits" "$message" "$err"
    [ $(($(now_ms) - t0)) -ge 1000 ] || fail "$what: it did not wait for the process holding the store"
}
# purge waits for the grocker processes using the store (each holds gc.lock shared), and says so.
waits_for_lock -s "purge while another process uses the store" \
    "^grocker: waiting for other grocker processes using $tmp/purge-ref$" "$GROCKER" --root "$tmp/purge-ref" purge
expect_match "a second purge frees nothing" '^freed 0 bytes' "$out"
ok "purge waits for the other processes using the store, saying so"
# ... and a command opening the store while a purge (exclusive) holds it waits, saying so.
waits_for_lock -x "fsck while a purge holds the store" \
    "^grocker: waiting for the store '$tmp/purge-ref': another grocker process \(purge or fsck --repair\) is cleaning it$" \
    "$GROCKER" --root "$tmp/purge-ref" fsck
ok "a command waits while a purge holds the store, saying so"

# A purged store keeps what builds use: the next build runs nothing and gives the same image.
run "a build after purge" build "$tmp/purge-ref"
expect_eq "digest of a build after purge" "$Dbuild" "$(tail -n1 <<<"$out")"
expect_eq "steps run after purge" "" "$(steps_ran "$err")"
ok "after purge, the build runs no step and gives $Dbuild"

# --- a store damaged on purpose --------------------------------------------------------------------
s=$tmp/damaged
copy_store "$tmp/build-ref" "$s"
ref_digest() { jq -r --arg n "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $n) | .digest' "$1/index.json"; }
blob() { echo "$s/blobs/sha256/${1#sha256:}"; }
appRef=grocker-app/grocker-hello:1.2.3
appManifest=$(ref_digest "$s" "$appRef")
[ -n "$appManifest" ] || fail "no ref $appRef in the built store"
# The app's own layer (the runner step's; the last one holds the entrypoint).
appLayer=$(jq -r '.layers[-2].digest' "$(blob "$appManifest")")
compilerRef=$(jq -r '.manifests[].annotations["org.opencontainers.image.ref.name"] | select(startswith("grocker-bookworm-3.11-compiler:"))' "$s/index.json" | tail -n1)
compilerManifest=$(ref_digest "$s" "$compilerRef")
stepEntry=$(grep -l "${appLayer#sha256:}" "$s"/cache/steps/*.json)
# (sed reads every line: head would close the pipe early, and ls's SIGPIPE fails the test under pipefail.)
compileEntry=$(ls -t "$s"/cache/resolutions/*.json | sed -n 1p)
# Each damage made on a new file put in place: the files are hard links to the base store's.
"$PY" -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[len(b) // 2] ^= 1; open(sys.argv[2], "wb").write(b)' \
    "$(blob "$appLayer")" "$tmp/flipped"
mv -f "$tmp/flipped" "$(blob "$appLayer")"
rm "$(blob "$compilerManifest")"
head -c 40 "$compileEntry" >"$tmp/cut" && mv -f "$tmp/cut" "$compileEntry"

run_fails "fsck of a damaged store" "$GROCKER" --root "$s" fsck
expect_eq "fsck's status on a damaged store" 1 "$rc"
expect_match "fsck finds the flipped layer" "^$(blob "$appLayer"): corrupt blob: its content has digest sha256:" "$out"
expect_match "fsck finds the app image incomplete" \
    "^$s/index.json: ref '$appRef' \($appManifest\) is incomplete: layer $appLayer is corrupt$" "$out"
expect_match "fsck finds the compiler's manifest gone" \
    "^$s/index.json: ref '$compilerRef' \($compilerManifest\) is incomplete: manifest $compilerManifest is missing$" "$out"
expect_match "fsck finds the step cache entry of the flipped layer" \
    "^$stepEntry: broken step cache entry: its layer $appLayer is corrupt$" "$out"
expect_match "fsck finds the cut resolution cache entry" \
    "^$compileEntry: broken resolution cache entry: it is not valid JSON \(cut short\?\)$" "$out"
# (Other lines: the key lock files of the builds, which no process holds, as leftovers.)
expect_eq "fsck's problem lines" 5 "$(grep -vc ': grocker fsck --repair or grocker purge removes it$' <<<"$out")"
expect_match "fsck says what to do" "run 'grocker fsck --repair'" "$err"
ok "fsck names each damaged piece (exit 1)"

run "fsck --repair" "$GROCKER" --root "$s" fsck --repair
expect_match "repair removes the corrupt blob" "^$(blob "$appLayer"): corrupt blob: .*; removed$" "$out"
expect_match "repair drops the app's ref" "^$s/index.json: ref '$appRef' .*; dropped the ref: build or pull the image again$" "$out"
expect_match "repair drops the compiler's ref" "^$s/index.json: ref '$compilerRef' .*; dropped the ref" "$out"
expect_match "repair removes the step cache entry" "^$stepEntry: .*; removed$" "$out"
expect_match "repair removes the resolution cache entry" "^$compileEntry: .*; removed$" "$out"
fsck_clean "$s" "after fsck --repair"
run "a build after the repair" build "$s"
expect_eq "digest of the build after the repair" "$Dbuild" "$(tail -n1 <<<"$out")"
fsck_clean "$s" "after the build that followed the repair"
ok "fsck --repair fixes the store (exit 0, then fsck clean) and the build heals it: same digest"

# --- purge --all --------------------------------------------------------------------------------------
run "purge --all" "$GROCKER" --root "$s" purge --all
left=$(jq -r '.manifests[].annotations["org.opencontainers.image.ref.name"]' "$s/index.json" | sort)
expect_no_match "purge --all removes every base, root and compiler" '^grocker-(base/|.*-(root|compiler):)' "$left"
expect_match "purge --all keeps app images" "^$appRef$" "$left"
fsck_clean "$s" "after purge --all"
ok "purge --all keeps only app images, whole (fsck checks every blob of them)"

# --- rootless -------------------------------------------------------------------------------------
# An unprivileged user's store holds files of its subordinate ids (unpacked layers, the upper
# dir of a killed step), which only a user namespace removes: fsck reports them, --repair and
# purge remove them.
user=grocker-test
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"
grep -q "^$user:" /etc/subuid || usermod --add-subuids 300000-365535 "$user"
grep -q "^$user:" /etc/subgid || usermod --add-subgids 300000-365535 "$user"
install -m 755 "$GROCKER" "$tmp/grocker"
mkdir -p bb/bin bb/etc bb/home/ci/private bb/ro/sub
cp /bin/busybox bb/bin/busybox
for a in sh true sleep; do ln -s busybox "bb/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nci:x:1000:1000::/:/bin/sh\n' >bb/etc/passwd
echo secret >bb/home/ci/private/file
chown -R 1000:1000 bb/home/ci
chmod 700 bb/home/ci/private
echo x >bb/ro/sub/file
chmod 555 bb/ro/sub bb/ro
run "a busybox image" "$GROCKER" -q --root "$tmp/bb-store" append scratch "oci:$tmp/bb-image:v1" --dir bb --keep-owners --env PATH=/bin
chmod -R a+rX "$tmp/bb-image"
s=$tmp/rootless-store
mkdir "$s"
chown "$user" "$s"
rl() { runuser -u "$user" -- "$tmp/grocker" --root "$s" "$@"; }
ci=$(($(awk -F: -v u="$user" '$1 == u { print $2; exit }' /etc/subuid) + 999)) # ci (1000) seen from outside
run "grocker run as $user" rl -q run "oci:$tmp/bb-image:v1" -- /bin/true
[ -n "$(find "$s/layers" -uid "$ci" -print -quit)" ] || fail "the unpacked layer has no file of a subordinate id"
# A step killed in the middle, whose upper dir holds a private folder of a subordinate id.
runuser -u "$user" -- "$tmp/grocker" --root "$s" -q run "oci:$tmp/bb-image:v1" -- \
    /bin/sh -c 'mkdir -p /state/d && echo x >/state/d/f && chown -R 1000 /state/d && chmod 700 /state/d && sleep 60' &
rpid=$!
for _ in $(seq 100); do [ -n "$(find "$s/run" -path '*/upper/state/d/f' -uid "$ci" 2>/dev/null)" ] && break; sleep 0.1; done
[ -n "$(find "$s/run" -path '*/upper/state/d/f' -uid "$ci")" ] || fail "the step did not start"
gpid=$(pgrep -P "$rpid" -x grocker)
kill -9 "$gpid"
wait "$rpid" 2>/dev/null || true
# A leftover harms nothing: reported, with what removes it, but not a failed check.
run "fsck as $user after a killed step" rl fsck
expect_match "fsck reports the killed step's folder" \
    "^$s/run/step-[^:]*: leftover run folder of a step whose grocker process is gone: grocker fsck --repair or grocker purge removes it$" "$out"
expect_match "fsck counts it" "no problem; [0-9]+ leftovers? of dead processes: grocker fsck --repair or grocker purge removes them$" "$err"
run "fsck --repair as $user" rl fsck --repair
expect_match "fsck --repair removes the killed step's folder" "^$s/run/step-[^:]*: leftover .*; removed$" "$out"
[ -z "$(ls -A "$s/run")" ] || fail "fsck --repair left $(ls -A "$s/run")"
run "purge as $user" rl purge
expect_match "purge as $user removes the unpacked layer" '^freed [0-9]+ bytes .*, 1 unpacked layer ' "$out"
[ -z "$(ls -A "$s/layers")" ] || fail "purge as $user left $(ls -A "$s/layers")"
run "fsck as $user after purge" rl fsck
ok "rootless: fsck reports a killed step's folder of subordinate ids, --repair removes it, purge removes unpacked layers"

# A mistyped store is not made and checked empty.
run_fails "fsck of a folder that is no store" "$GROCKER" --root "$tmp/no-store" fsck
expect_eq "fsck of no store" "grocker: error: no store at '$tmp/no-store' (no oci-layout, index.json nor blobs): give the store with --root or GROCKER_ROOT" "$err"
[ ! -e "$tmp/no-store" ] || fail "fsck made a store at $tmp/no-store"
run "purge of a folder that is no store" "$GROCKER" --root "$tmp/no-store" purge
expect_eq "purge of no store" "no store at '$tmp/no-store': nothing to purge" "$err"
ok "fsck and purge of a path with no store say so and make none"
echo "all crash checks passed"
