#!/bin/bash
# grocker build with a registry prefix, against a real docker-registry on loopback:
#   - the build pushes root, compiler and runner; the result file's hash is the registry's
#     manifest digest, and root_image/compiler_image name images the registry holds;
#   - on a fresh store the same build reads the root's and the compiler's manifests only (their
#     layers stay in the registry: everything is in the build cache, and the app is installed
#     over the root's Python slice); no base, root or compiler step runs, and it gives the same
#     digest and the same SBOMs (from the package list attached to the root); over a slice it
#     cannot run over, the app step runs again over the root;
#   - the same build, on another fresh store, through a fault-injecting proxy (drops mid-body,
#     500, 429 with Retry-After, answers lost, truncation) succeeds with every digest intact;
#   - a registry that answers garbage gets a one-line error, not a crash;
#   - the build cache in the registry: the fresh store compiles nothing it holds; read mode
#     writes nothing; corrupt entries are refused with a warning and built again.
# Uses the warm store of tests/integration/build/build.sh ($GROCKER_TEST_CACHE/build-store).
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${GROCKER_SOURCE_ROOT:?}"
: "${GROCKER_TEST_CACHE:?}"
need_tools mmdebstrap docker-registry skopeo jq curl "$PY" tar
[ "$(id -u)" = 0 ] || fail "run as root"
cache=$GROCKER_TEST_CACHE
setup grocker-build-registry
chmod 755 "$tmp"
store=$cache/build-store
mkdir -p "$cache"

start_registry plain reg --self-host
R=$REGISTRY
start_proxy px "$REGISTRY_URL"
P=$PROXY

serve_example_index
build() { # STORE PREFIX RESULT [more options]
    local s=$1 prefix=$2 result=$3
    shift 3
    "$GROCKER" --root "$s" build "$app" -c "$app/.grocker.yml" --index-url "$index" --image-prefix "$prefix" \
        --result-file "$result" "$@"
}
# The digest the registry gives for NAME:TAG (HEAD with the OCI and Docker manifest types).
registry_digest() { # HOSTPORT REPO TAG
    curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://$1/v2/$2/manifests/$3" |
        tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p'
}

# --- push with a prefix ------------------------------------------------------------------------
run "build and push to $R/team" build "$store" "$R/team" "$tmp/result.json"
digest=$(tail -n1 <<<"$out")
expect_match "the printed digest" '^sha256:[0-9a-f]{64}$' "$digest"
expect_eq "result hash" "$digest" "$(jq -r .hash "$tmp/result.json")"
expect_eq "result image" "$R/team/grocker-hello:1.0.0" "$(jq -r .image "$tmp/result.json")"
expect_eq "the registry's digest of team/grocker-hello:1.0.0" "$digest" "$(registry_digest "$R" team/grocker-hello 1.0.0)"
for role in root compiler; do
    name=$(jq -r ".${role}_image" "$tmp/result.json")
    expect_match "result ${role}_image" "^$R/team/grocker-bookworm-3.11-$role:[0-9.]+-[0-9a-f]{12}\$" "$name"
    repo=${name#"$R/"}
    [ -n "$(registry_digest "$R" "${repo%:*}" "${name##*:}")" ] || fail "the registry has no $name"
done
# The root's Python slice, pushed next to the root for fresh runners (this runner writes the
# build cache).
slice=$(sed -En 's/^\[ *[0-9]+\.[0-9]s\] root: its Python slice pushed to ([^ ]*) .*/\1/p' <<<"$err")
expect_match "the slice pushed next to the root" "^$R/team/grocker-bookworm-3.11-root-slice:[0-9.]+-[0-9a-f]{12}-[0-9a-f]{8}\$" "$slice"
skopeo inspect --tls-verify=false "docker://$R/team/grocker-hello:1.0.0" >"$tmp/skopeo.json" ||
    fail "skopeo cannot read the pushed image"
expect_eq "skopeo's digest" "$digest" "$(jq -r .Digest "$tmp/skopeo.json")"
ok "the build pushed root, compiler and runner; the result file's hash is the registry's digest"

# --- a fresh store: the root's and the compiler's layers stay in the registry ---------------------
run "build on a fresh store" build "$tmp/fresh" "$R/team" "$tmp/result2.json"
expect_eq "digest on a fresh store" "$digest" "$(tail -n1 <<<"$out")"
# Nothing to build (the project's wheel, its dependencies' and its resolution are in the build
# cache): the compiler's layers stay in the registry; the app is installed over the root's
# Python slice, so the root's layers stay there too (mounted into the app's repository).
expect_match "compiler not pulled" "grocker-bookworm-3.11-compiler:[^ ]*: in $R/team/[^ ]*, its layers not pulled: no box to run" "$err"
expect_no_match "compiler layers pulled" "grocker-bookworm-3.11-compiler:[^ ]*: pulled from" "$err"
expect_no_match "root layers pulled" "grocker-bookworm-3.11-root:[^ ]*: pulled from" "$err"
expect_match "slice pulled" "pulled $slice: " "$err"
expect_match "the runner not kept" "runner: not kept in the store, its root's layers stayed in $R/team/grocker-bookworm-3.11-root" "$err"
ran=$(steps_ran "$err")
expect_no_match "steps run on a fresh store" '^(base|root|compiler)' "$ran"
expect_eq "result root_image" "$(jq -r .root_image "$tmp/result.json")" "$(jq -r .root_image "$tmp/result2.json")"
err_fresh=$err
# Its SBOMs from the package list the first build attached to the root: the same bytes as the
# warm build's, so the runner's referrers index still has three entries.
expect_match "the fresh runner's SBOMs" "sbom: 166 Debian packages \(2 Python distributions in them\), 2 Python distributions in the venv" "$err"
root_name=$(jq -r .root_image "$tmp/result.json")
root_repo=${root_name#"$R/"}
root_digest=$(registry_digest "$R" "${root_repo%:*}" "${root_name##*:}")
run "the root's referrers" skopeo inspect --tls-verify=false --raw "docker://${root_name%:*}:sha256-${root_digest#sha256:}"
expect_eq "the root's package list and SBOMs attached to it" "application/spdx+json application/vnd.cyclonedx+json application/vnd.grocker.root-packages.v1+json" "$(jq -r '[.manifests[].artifactType] | sort | join(" ")' <<<"$out")"
run "the runner's referrers" skopeo inspect --tls-verify=false --raw "docker://$R/team/grocker-hello:sha256-${digest#sha256:}"
expect_eq "the warm and the fresh build attached the same" "application/vnd.cyclonedx+json application/spdx+json application/vnd.in-toto+json" \
    "$(jq -r '[.manifests[].artifactType] | join(" ")' <<<"$out")"
run "fsck of the fresh store" "$GROCKER" --root "$tmp/fresh" fsck
ok "a fresh store leaves the root's and the compiler's layers in the registry (the app over the root's Python slice); same digest"

# A slice the app step cannot run over (here an image with no /bin/sh under its name): the step
# runs again over the whole root, pulled then; same digest.
slice_repo=${slice#"$R/"}
curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$R/v2/${slice_repo%:*}/manifests/${slice##*:}" >"$tmp/slice-manifest.json" || fail "cannot read $slice"
mkdir -p "$tmp/bogus-tree/etc"
echo bogus >"$tmp/bogus-tree/etc/hostname"
run "an image without a shell" "$GROCKER" --root "$tmp/bogus-store" append scratch "oci:$tmp/bogus" --dir "$tmp/bogus-tree"
run "it put under the slice's name" "$GROCKER" --root "$tmp/bogus-store" copy "oci:$tmp/bogus" "docker://$slice"
run "build on a fresh store over a bogus slice" build "$tmp/fresh-bogus" "$R/team" "$tmp/result-bogus.json"
expect_eq "digest over a bogus slice" "$digest" "$(tail -n1 <<<"$out")"
expect_match "the step ran again" "runner: grocker-hello 1.0.0: over the root's Python slice, .*; again over the whole image" "$err"
expect_match "root pulled then" "grocker-bookworm-3.11-root:[^ ]*: pulled from $R/team/" "$err"
curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "@$tmp/slice-manifest.json" \
    "http://$R/v2/${slice_repo%:*}/manifests/${slice##*:}" >/dev/null || fail "cannot put $slice back"
ok "a slice the app step cannot run over: it runs again over the root; same digest"

# --- the build cache in the registry ---------------------------------------------------------------
# The fresh store above compiled nothing: the wheels came from $R/team/grocker-cache (the warm
# store filed them there, as it had built them before the registry's cache existed).
expect_no_match "compile or resolve steps on the fresh store" '^(compile|resolve)' "$(steps_ran "$err_fresh")"
expect_match "wheels from the build cache" "build cache: 2 wheels, 1 resolutions and 1 layers from $R/team/grocker-cache, 0 entries written" "$err_fresh"
expect_match "the dependencies' layer from the build cache" "runner: dependencies of grocker-hello: from the build cache" "$err_fresh"
expect_eq "steps run on the fresh store" "runner: grocker-hello 1.0.0" "$(steps_ran "$err_fresh")"
tags=$(curl -sf "http://$R/v2/team/grocker-cache/tags/list" | jq -r '.tags[]' | sort)
expect_eq "wheel entries" 2 "$(grep -c '^wheel-[0-9a-f]\{64\}$' <<<"$tags")"
expect_eq "resolution entries" 1 "$(grep -c '^resolution-[0-9a-f]\{64\}$' <<<"$tags")"
expect_eq "step entries" 1 "$(grep -c '^step-[0-9a-f]\{64\}$' <<<"$tags")"
ok "a fresh store compiles, resolves and installs nothing the registry's build cache holds, and gives the same digest"

# --- a release NAME==VERSION whose index has its wheel ------------------------------------------
# The app's wheel as the first build made it, published on the index: a fresh store builds
# grocker-hello==1.0.0 from it with no box at all (the build cache has the resolution of its
# requirements and the dependencies' layer; the compiler's layers stay in the registry), and the
# image is the project's, digest for digest.
run "export the app's wheel" build "$store" "$R/team" "$tmp/r-export.json" --no-push --export-wheels "$tmp/wheels"
hello_whl=$(cd "$tmp/wheels" && ls grocker_hello-*.whl)
mkdir -p "$tmp/index/simple/grocker-hello"
cp "$tmp/wheels/$hello_whl" "$tmp/index/simple/grocker-hello/"
printf '<html><body><a href="%s">%s</a></body></html>\n' "$hello_whl" "$hello_whl" >"$tmp/index/simple/grocker-hello/index.html"
run "build grocker-hello==1.0.0 on a fresh store" "$GROCKER" --root "$tmp/spec" build grocker-hello==1.0.0 \
    -c "$app/.grocker.yml" --index-url "$index" --image-prefix "$R/team" --no-push
expect_eq "digest of grocker-hello==1.0.0" "$digest" "$(tail -n1 <<<"$out")"
expect_match "the release's wheel from the index" "release: grocker-hello==1.0.0: the wheel $hello_whl" "$err"
expect_eq "steps run for grocker-hello==1.0.0" "runner: grocker-hello 1.0.0" "$(steps_ran "$err")"
expect_match "the compiler's layers left in the registry" "its layers not pulled: no box to run" "$err"
ok "a release NAME==VERSION with its wheel on the index: no box on a fresh store, the project's image"

# Read mode (untrusted jobs) writes nothing to the registry, even when it builds everything.
mark
run "build in read mode with an empty cache" build "$tmp/readonly" "$R/team" "$tmp/result5.json" --no-push \
    --cache-mode read --cache-repo "$R/untrusted-cache"
expect_eq "digest in read mode" "$digest" "$(tail -n1 <<<"$out")"
expect_match "read mode compiled" '^compile: ' "$(steps_ran "$err")"
writes=$(requests_since | awk '$1 == "PUT" || $1 == "POST" || $1 == "PATCH" || $1 == "DELETE"' | wc -l)
expect_eq "requests that write, in read mode" 0 "$writes"
ok "--cache-mode read looks the cache up and writes nothing to the registry"

# --- two runners writing the same keys at once; faults and an unreachable registry on reads ----
# (before the corruption below: the registry's blob storage is shared by its repositories)
# Two fresh stores build at once with an empty cache repository: both compile, both write the
# same keys at the same time; both succeed with the same digest, and one valid entry stays under
# each key (a third fresh store, read only, compiles and resolves nothing).
build "$tmp/race1" "$R/team" "$tmp/race1.json" --no-push --cache-mode readwrite --cache-repo "$R/race-cache" \
    >"$tmp/race1.out" 2>"$tmp/race1.err" &
race1=$!
build "$tmp/race2" "$R/team" "$tmp/race2.json" --no-push --cache-mode readwrite --cache-repo "$R/race-cache" \
    >"$tmp/race2.out" 2>"$tmp/race2.err" || { cat "$tmp/race2.err" >&2; fail "the second racing build failed"; }
wait "$race1" || { cat "$tmp/race1.err" >&2; fail "the first racing build failed"; }
expect_eq "digest of the first racing build" "$digest" "$(tail -n1 "$tmp/race1.out")"
expect_eq "digest of the second racing build" "$digest" "$(tail -n1 "$tmp/race2.out")"
race_tags=$(curl -sf "http://$R/v2/race-cache/tags/list" | jq -r '.tags[]' | sort)
expect_eq "wheel entries after the race" 2 "$(grep -c '^wheel-' <<<"$race_tags")"
expect_eq "resolution entries after the race" 1 "$(grep -c '^resolution-' <<<"$race_tags")"
run "a read-only build from the raced cache" build "$tmp/race3" "$R/team" "$tmp/race3.json" --no-push \
    --cache-mode read --cache-repo "$R/race-cache"
expect_eq "digest from the raced cache" "$digest" "$(tail -n1 <<<"$out")"
expect_no_match "compile or resolve steps after the race" '^(compile|resolve)' "$(steps_ran "$err")"
expect_eq "step entries after the race" 1 "$(grep -c '^step-' <<<"$race_tags")"
expect_match "what came from the raced cache" "build cache: 2 wheels, 1 resolutions and 1 layers from $R/race-cache, 0 entries written" "$err"
ok "two runners writing the same keys at once both succeed; the entries they leave are whole"

# Reads through the fault proxy: a 500 for a manifest, a blob cut mid-body, a corrupted blob.
# Whatever the client cannot retry is a warning and a miss; the build succeeds, same digest.
faults "status GET /v2/race-cache/manifests/ nth=1 status=500 times=4" \
    "drop-response GET /v2/race-cache/blobs/ nth=1" \
    "corrupt GET /v2/race-cache/blobs/ nth=2 times=4"
run "a build whose cache reads meet faults" build "$tmp/cache-faults" "$R/team" "$tmp/cf.json" --no-push \
    --cache-mode read --cache-repo "$P/race-cache"
expect_eq "digest with faulty cache reads" "$digest" "$(tail -n1 <<<"$out")"
fired=$(jq -r 'select(.fault != null) | .fault' "$PROXY_LOG" | sort | uniq -c | tr -s ' ' | tr '\n' ',')
expect_match "cache faults fired" 'corrupt' "$fired"
run "fsck of the store after faulty cache reads" "$GROCKER" --root "$tmp/cache-faults" fsck
faults
ok "faults on cache reads: the build succeeds with the same digest ($fired)"

# A cache registry that cannot be reached: one warning, then the build goes on without it.
closed=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
run "a build whose cache cannot be reached" build "$tmp/unreachable" "$R/team" "$tmp/ur.json" --no-push \
    --cache-mode read --cache-repo "127.0.0.1:$closed/cache"
expect_eq "digest without a reachable cache" "$digest" "$(tail -n1 <<<"$out")"
expect_eq "warnings that the cache cannot be reached" 1 "$(grep -c "the build cache 127.0.0.1:$closed/cache cannot be reached" <<<"$err")"
expect_eq "other cache warnings" 0 "$(grep -c 'warning: the build cache entry' <<<"$err")"
ok "an unreachable cache: one warning, and the build goes on without it"

# An entry corrupted in the registry's storage is detected, ignored with a warning naming it, and
# built again; the build succeeds with the same digest.
for t in $tags; do
    layer=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$R/v2/team/grocker-cache/manifests/$t" | jq -r '.layers[0].digest')
    data=$tmp/reg/storage/docker/registry/v2/blobs/sha256/${layer:7:2}/${layer#sha256:}/data
    [ -f "$data" ] || fail "no blob file for $layer in the registry's storage"
    size=$(stat -c %s "$data")
    head -c "$size" /dev/urandom >"$data"
done
run "build with corrupted cache entries" build "$tmp/corrupt" "$R/team" "$tmp/result6.json" --no-push
expect_eq "digest with corrupted cache entries" "$digest" "$(tail -n1 <<<"$out")"
expect_match "the corrupt entry named" "grocker: warning: the build cache entry wheel-[0-9a-f]{64} of $R/team/grocker-cache cannot be used" "$err"
expect_match "corrupt entries built again" '^compile: ' "$(steps_ran "$err")"
run "fsck of the store that met corrupt entries" "$GROCKER" --root "$tmp/corrupt" fsck
ok "corrupt cache entries are refused with a warning and built again: same digest"

# --- the same through faults ----------------------------------------------------------------------
# Root and compiler are pulled through the proxy (their big layers cut mid-body, 500s, 429s),
# and the runner pushed through it to another repository.
faults "drop-response GET /v2/team/.*/blobs/ nth=1" \
    "truncate GET /v2/team/.*/blobs/ nth=3" \
    "status GET /v2/team/.*/manifests/ nth=2 status=500" \
    "status HEAD /v2/other/.*/blobs/ nth=1 status=429 retry-after=1" \
    "drop-answer PUT /v2/other/.*/manifests/ nth=1" \
    "status POST /v2/other/.*/blobs/uploads/ nth=1 status=503"
run "build through the fault proxy" build "$tmp/faulty" "$P/team" "$tmp/result3.json" \
    --image-name "$P/other/grocker-hello:1.0.0"
expect_eq "digest through faults" "$digest" "$(tail -n1 <<<"$out")"
fired=$(jq -r 'select(.fault != null) | .fault' "$PROXY_LOG" | sort | uniq -c | tr -s ' ' | tr '\n' ',')
expect_match "faults fired" 'drop-response' "$fired"
expect_match "faults fired" 'status' "$fired"
expect_eq "the registry's digest of other/grocker-hello" "$digest" "$(registry_digest "$R" other/grocker-hello 1.0.0)"
run "fsck of the store after the faults" "$GROCKER" --root "$tmp/faulty" fsck
ok "build and push through drops, 500s, 429s and truncation: same digest ($fired)"

# --- a registry runtime: its base is pulled (here from a mirror's name that is missing) -------
run_fails "a bookworm/3.12 build whose base is missing" "$GROCKER" --root "$tmp/fresh" build "$app" -c "$app/.grocker.yml" \
    --index-url "$index" --no-push -r bookworm/3.12 --base-image "$R/library/python:3.12-slim-bookworm"
expect_eq "exit status of a missing base" 1 "$rc"
expect_match "the base was asked of the registry" "base: pulling $R/library/python:3.12-slim-bookworm" "$err"
expect_match "the error names the base image" "grocker: error: .*$R/library/python:3.12-slim-bookworm" "$err"
ok "a registry runtime pulls its base: $(grep 'grocker: error' <<<"$err")"

# --- garbage -----------------------------------------------------------------------------------
faults "garbage * /v2/ times=0"
run_fails "build against a registry answering garbage" build "$tmp/garbage" "$P/team" "$tmp/result4.json"
expect_one_line "the garbage error" "$(grep -v '^\(base\|root\|compiler\|grocker: warning\)' <<<"$err" | grep 'grocker: error' )"
expect_match "the garbage error names the registry" "$P" "$err"
ok "a registry answering garbage: $(grep 'grocker: error' <<<"$err")"
# --- grocker cache ls / prune ------------------------------------------------------------------------
run "cache ls" "$GROCKER" cache ls "$R/team/grocker-cache"
expect_eq "entries listed" 2 "$(grep -c '^wheel-' <<<"$out")"
expect_match "the resolution listed" '^resolution-[0-9a-f]{10} .*the requirements of grocker-hello' "$out"
expect_match "the listing names the dependency's wheel" 'grocker_greeting-1.0.0-py3-none-any\.whl' "$out"
run "cache prune, nothing a day old" "$GROCKER" cache prune "$R/team/grocker-cache" --older-than 1
expect_eq "entries pruned when none is a day old" 0 "$(grep -c '^wheel-' <<<"$out")"
run "cache prune" "$GROCKER" cache prune "$R/team/grocker-cache" --older-than 0
expect_eq "entries pruned" 2 "$(grep -c '^wheel-' <<<"$out")"
run "cache ls after the prune" "$GROCKER" cache ls "$R/team/grocker-cache"
expect_eq "entries left" 0 "$(grep -c '^wheel-' <<<"$out")"
ok "grocker cache ls lists the entries; cache prune --older-than removes the old ones"
echo "all build registry checks passed"
