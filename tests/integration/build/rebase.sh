#!/bin/bash
# grocker rebase: the example's runner put over a patched root (the root plus one more Debian
# package's files, unpacked from the mirror's .deb as a security update's layer would be),
# nothing run:
#   - the rebased runner is the new root's layers then the runner's own, unchanged (digests,
#     diff_ids, history), labelled with its new root; the package is in it and the www service
#     answers through nginx and uwsgi;
#   - refused, saying why: a root as the image, a runner as the root, a root of another runtime,
#     a runner that does not say which layers are its root's (an older grocker's);
#     the root it is on already: written as it is;
#   - in a registry, from an empty store: only manifests and configs read, every layer already
#     there or mounted from the root's repository (only the new config sent), the same digest as
#     the rebase between oci: layouts;
#   - grocker build --rebase-only after a real root change (one more run dependency): no step
#     but the root's runs (none once that root is in the store), the runner built before goes over it, in the store and with a prefix.
# Uses the warm store of tests/integration/build/build.sh ($GROCKER_TEST_CACHE/build-store).
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${GROCKER_SOURCE_ROOT:?}"
: "${GROCKER_TEST_CACHE:?}"
need_tools tar jq curl apt-get dpkg-deb docker-registry "$PY"
[ "$(id -u)" = 0 ] || fail "run as root"
setup grocker-build-rebase
store=$GROCKER_TEST_CACHE/build-store
app=$GROCKER_SOURCE_ROOT/example/hello
G=("$GROCKER" --root "$store" --tls-verify=false)
ep=/usr/local/bin/grocker-entrypoint

mkdir -p "$tmp/links"
tar -czf "$tmp/links/grocker-greeting-1.0.0.tar.gz" --owner=0 --group=0 --mtime=@0 --sort=name \
    -C "$GROCKER_SOURCE_ROOT/example" --transform 's,^greeting,grocker-greeting-1.0.0,' greeting
run "build the example" "${G[@]}" build "$app" -c "$app/.grocker.yml" --no-index --find-links "$tmp/links" \
    --no-push --no-sbom --no-provenance --output "oci:$tmp/out:grocker-hello"
runner=oci:$tmp/out:grocker-hello
run "inspect the runner" "${G[@]}" inspect "$runner"
printf '%s\n' "$out" >"$tmp/runner.json"
root_name=$(jq -r '.config.config.Labels["grocker.root.image"]' "$tmp/runner.json")
old_root=oci:$store:$root_name
run "inspect its root" "${G[@]}" inspect "$old_root"
printf '%s\n' "$out" >"$tmp/old-root.json"
n_old=$(jq '.manifest.layers | length' "$tmp/old-root.json")
expect_eq "the runner labels its root's layer count" "$n_old" "$(jq -r '.config.config.Labels["grocker.root.layers"]' "$tmp/runner.json")"
expect_eq "and its root's digest" "$(oci_digest "$store" "$root_name")" "$(jq -r '.config.config.Labels["grocker.root.digest"]' "$tmp/runner.json")"

# --- a patched root: GNU hello's files from the mirror, one more layer -----------------------------
deb=$("$fixtures/debian-deb" "$GROCKER_TEST_CACHE" amd64 hello | tail -n1) || fail "no GNU hello .deb from the mirror"
dpkg-deb -x "$deb" "$tmp/pkg"
run "the patched root" "${G[@]}" append "$old_root" "oci:$tmp/newroot:grocker-bookworm-3.11-root:patched" --dir "$tmp/pkg" --keep-owners
new_root=oci:$tmp/newroot:grocker-bookworm-3.11-root:patched
new_digest=$(oci_digest "$tmp/newroot" grocker-bookworm-3.11-root:patched)

# --- rebase between layouts ------------------------------------------------------------------------
run "rebase" "${G[@]}" rebase "$runner" --onto "$new_root" "oci:$tmp/rebased:grocker-hello"
rebased=$(tail -n1 <<<"$out")
expect_match "it says what it did" "rebased onto $new_root: its 3 own layers over the root's $((n_old + 1)), nothing run" "$err"
expect_eq "the digest printed is the layout's" "$(oci_digest "$tmp/rebased" grocker-hello)" "$rebased"
run "inspect the rebased runner" "${G[@]}" inspect "oci:$tmp/rebased:grocker-hello"
printf '%s\n' "$out" >"$tmp/rebased.json"
run "inspect the patched root" "${G[@]}" inspect "$new_root"
printf '%s\n' "$out" >"$tmp/new-root.json"
expect_eq "the layers: the new root's, then the runner's own" \
    "$(jq -c '[.manifest.layers[].digest]' "$tmp/new-root.json" | jq -c --argjson own "$(jq -c --argjson n "$n_old" '[.manifest.layers[$n:][].digest]' "$tmp/runner.json")" '. + $own')" \
    "$(jq -c '[.manifest.layers[].digest]' "$tmp/rebased.json")"
expect_eq "the diff_ids likewise" \
    "$(jq -c --argjson n "$n_old" --slurpfile r "$tmp/runner.json" '.config.rootfs.diff_ids + $r[0].config.rootfs.diff_ids[$n:]' "$tmp/new-root.json")" \
    "$(jq -c '.config.rootfs.diff_ids' "$tmp/rebased.json")"
expect_eq "the history: the new root's, then the runner's own entries" \
    "$(jq -c --slurpfile r "$tmp/runner.json" '.config.history + $r[0].config.history[-3:]' "$tmp/new-root.json")" \
    "$(jq -c '.config.history' "$tmp/rebased.json")"
expect_eq "its labels name the new root" "$new_digest $((n_old + 1)) runner 1.0.0 bookworm/3.11" \
    "$(jq -r '.config.config.Labels | "\(.["grocker.root.digest"]) \(.["grocker.root.layers"]) \(.["grocker.image.role"]) \(.["grocker.app.version"]) \(.["grocker.runtime"])"' "$tmp/rebased.json")"
expect_eq "the rest of its config is the runner's" \
    "$(jq -c '.config.config | del(.Labels)' "$tmp/runner.json")" "$(jq -c '.config.config | del(.Labels)' "$tmp/rebased.json")"
expect_eq "its base annotation is the new root" "$new_digest" "$(jq -r '.manifest.annotations["org.opencontainers.image.base.digest"]' "$tmp/rebased.json")"
ok "rebased: the patched root's layers, then the runner's 3 own layers unchanged (digests, diff_ids, history), labelled with its new root"

! "$GROCKER" --root "$store" -q run "$runner" -- "$ep" hello >/dev/null 2>&1 || fail "GNU hello is in the old root already: the test shows nothing"
out=$("$GROCKER" --root "$store" -q run "oci:$tmp/rebased:grocker-hello" -- "$ep" hello 2>&1) || fail "hello did not run in the rebased runner: $out"
expect_eq "the patched root's package runs in it" "Hello, world!" "$out"
"$GROCKER" --root "$store" -q run --network host "oci:$tmp/rebased:grocker-hello" -- "$ep" www >"$tmp/www.out" 2>"$tmp/www.err" &
www_pid=$!
trap 'kill "$www_pid" 2>/dev/null || true; cleanup' EXIT
answer=
for _ in $(seq 300); do answer=$(curl -sf http://127.0.0.1:8080/ 2>/dev/null) && break; sleep 0.1; done
kill -TERM "$www_pid" 2>/dev/null || true
wait "$www_pid" 2>/dev/null || true
[ "$answer" = "hello, web, from grocker-greeting" ] || fail "the rebased runner's www answered '$answer': $(tail -5 "$tmp/www.err")"
ok "the rebased runner runs: GNU hello from its new root, www through nginx and uwsgi on 8080"

# --- refused, or nothing to do -------------------------------------------------------------------
run_fails "a root as the image" "${G[@]}" rebase "$old_root" --onto "$new_root" "oci:$tmp/x:x"
expect_match "says it is not a runner" "grocker: error: while rebasing $old_root onto $new_root: the image to rebase is not a runner grocker built: its label grocker.image.role is 'root'; rebase takes a runner made by grocker build" "$err"
run_fails "a runner as the root" "${G[@]}" rebase "$runner" --onto "$runner" "oci:$tmp/x:x"
expect_match "says it is not a root" "the image to rebase onto is not a root image grocker built: its label grocker.image.role is 'runner'" "$err"
run "a root of another runtime" "${G[@]}" append "$old_root" "oci:$tmp/other:root" --label grocker.runtime=trixie/3.13
run_fails "rebase across runtimes" "${G[@]}" rebase "$runner" --onto "oci:$tmp/other:root" "oci:$tmp/x:x"
expect_match "says which runtimes" "the runner was built for the runtime 'bookworm/3.11', the root is for 'trixie/3.13': its venv and compiled extensions are for that runtime's Python; rebase keeps the runtime \(build the app for 'trixie/3.13' instead\)" "$err"
run "a runner that does not say its root's layers (an older grocker's)" "${G[@]}" append "$runner" "oci:$tmp/older:x" --label grocker.root.layers=
run_fails "rebase it" "${G[@]}" rebase "oci:$tmp/older:x" --onto "$new_root" "oci:$tmp/x:x"
expect_match "says to build it once" "the runner does not say which of its [0-9]+ layers are its root's \(label grocker.root.layers missing\): built by an older grocker; build it once with this one" "$err"
[ ! -e "$tmp/x/index.json" ] || fail "a refused rebase wrote its destination"
run "rebase onto the root it is on" "${G[@]}" rebase "$runner" --onto "$old_root" "oci:$tmp/same:grocker-hello"
expect_match "says so" "is on $old_root already: written as it is" "$err"
expect_eq "and writes the runner as it is" "$(oci_digest "$tmp/out" grocker-hello)" "$(oci_digest "$tmp/same" grocker-hello)"
ok "refused with the reason: a root as the image, a runner as the root, another runtime's root, a runner of an older grocker; onto its own root, the runner as it is"

# --- in a registry, from an empty store ---------------------------------------------------------
start_registry plain reg
R=$REGISTRY
run "push the runner" "${G[@]}" -q copy "$runner" "docker://$R/team/grocker-hello:1.0.0"
run "push the patched root" "${G[@]}" -q copy "$new_root" "docker://$R/team/grocker-bookworm-3.11-root:patched"
mark
run "rebase in the registry" "$GROCKER" --root "$tmp/empty-store" --tls-verify=false rebase "docker://$R/team/grocker-hello:1.0.0" \
    --onto "docker://$R/team/grocker-bookworm-3.11-root:patched"
# (The root named alike both times: the runner's label grocker.root.image says its name.)
expect_eq "the same digest as between layouts" "$rebased" "$(tail -n1 <<<"$out")"
expect_eq "no layer read: the two configs only" 2 "$(count_since GET '/blobs/sha256:')"
expect_eq "the patched root's new layer mounted" 1 "$(count_since POST '/v2/team/grocker-hello/blobs/uploads/\?mount=')"
expect_eq "one blob sent: the new config" 1 "$(count_since PUT '/v2/team/grocker-hello/blobs/uploads/')"
expect_eq "no other upload" 0 "$(count_since PATCH '/blobs/uploads/')"
expect_eq "the tag moved to it" "$rebased" \
    "$(curl -sf -o /dev/null -w '%header{docker-content-digest}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R/v2/team/grocker-hello/manifests/1.0.0")"
ok "in a registry from an empty store: manifests and configs read, the root's new layer mounted, only the new config sent; the same digest, under the runner's tag"

# --- grocker build --rebase-only: the root changed (one more run dependency), the app did not ------
cp "$app/.grocker.yml" "$tmp/changed.yml"
printf 'dependencies:\n  - hello\n' >>"$tmp/changed.yml"
run_fails "--rebase-only of a project folder" "${G[@]}" build "$app" -c "$tmp/changed.yml" --rebase-only --no-push
expect_match "asks for NAME==VERSION" "--rebase-only takes the release as NAME==VERSION \('$app' is not\): the runner to rebase is the one built under that name" "$err"
run_fails "--rebase-only of a release never built" "${G[@]}" build 'grocker-hello==9.9' -c "$tmp/changed.yml" --rebase-only --no-push
expect_match "says to build it once" "--rebase-only: no runner grocker-hello:9.9 in the store to rebase: build it once without --rebase-only" "$err"
run "--rebase-only in the store" "${G[@]}" build 'grocker-hello==1.0.0' -c "$tmp/changed.yml" --no-index --find-links "$tmp/links" \
    --rebase-only --no-push --no-sbom --no-provenance --output "oci:$tmp/ro:grocker-hello"
expect_match "says what it did" "rebase: grocker-hello:1.0.0: its 3 own layers over grocker-bookworm-3.11-root:[^,]*, nothing compiled or run" "$err"
ran=$(steps_ran "$err")
[ -z "$ran" ] || [ "$ran" = "root: bookworm/3.11 run dependencies and user grocker" ] || fail "steps other than the root's ran: $ran"
expect_no_match "nothing compiled or installed" "^  (ran|cached) .*(compile|runner):" "$err"
new_root_name=$("${G[@]}" inspect "oci:$tmp/ro:grocker-hello" | jq -r '.config.config.Labels["grocker.root.image"]')
run "grocker rebase onto the same root" "${G[@]}" rebase "$runner" --onto "oci:$store:$new_root_name" "oci:$tmp/ro2:grocker-hello"
expect_eq "the same runner as grocker rebase gives" "$(tail -n1 <<<"$out")" "$(oci_digest "$tmp/ro" grocker-hello)"
out=$("$GROCKER" --root "$store" -q run "oci:$tmp/ro:grocker-hello" -- "$ep" hello 2>&1) || fail "hello did not run in the --rebase-only runner: $out"
expect_eq "its new root's package runs in it" "Hello, world!" "$out"
run "--rebase-only with the prefix" "${G[@]}" build 'grocker-hello==1.0.0' -c "$tmp/changed.yml" --no-index --find-links "$tmp/links" \
    --rebase-only --image-prefix "$R/team" --no-sbom --no-provenance
expect_eq "the tag moved to the same runner" "$(oci_digest "$tmp/ro" grocker-hello)" \
    "$(curl -sf -o /dev/null -w '%header{docker-content-digest}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R/v2/team/grocker-hello/manifests/1.0.0")"
curl -sf -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$R/v2/team/${new_root_name%%:*}/manifests/${new_root_name#*:}" || fail "the new root was not pushed beside it"
ok "build --rebase-only: the new root made (its one step), the runner built before put over it, in the store and under the prefix; the same runner as grocker rebase gives, and it runs"
