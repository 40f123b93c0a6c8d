#!/bin/bash
# Six grocker builds at once on one store: four different apps, and the first app twice. All
# succeed, the two builds of the same app give the same digest, the root and compiler images
# they share are built once (every other build waits for that one and takes its result), and
# `grocker fsck` finds the store consistent afterwards.
# The store starts as a copy of the warm store of tests/integration/build/build.sh with only the Debian base
# kept, and the root is made new (a run dependency added), so root and compiler really run.
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${GROCKER_SOURCE_ROOT:?}"
: "${GROCKER_TEST_CACHE:?}"
need_tools mmdebstrap jq curl "$PY" tar
[ "$(id -u)" = 0 ] || fail "run as root"
setup grocker-build-concurrent
chmod 755 "$tmp"
serve_example_index

# A store of our own: the warm store's blobs, index and step cache (its unpacked layers are made
# again on first use). Without a warm store, the first build makes the base.
store=$tmp/store
if [ -d "$GROCKER_TEST_CACHE/build-store/blobs" ]; then
    # (not the compile cache: its entries name wheels of a wheel cache this store does not have)
    mkdir -p "$store/cache"
    cp -a "$GROCKER_TEST_CACHE/build-store/blobs" "$GROCKER_TEST_CACHE/build-store/index.json" \
        "$GROCKER_TEST_CACHE/build-store/oci-layout" "$store/"
    cp -a "$GROCKER_TEST_CACHE/build-store/cache/steps" "$store/cache/"
fi

# Four apps: hello as shipped, and three copies under other names, each depending on greeting.
# A run dependency the usual root lacks makes a root that the copied store does not hold.
for i in 1 2 3; do
    cp -r "$app" "$tmp/example/app$i"
    sed -i -e "s/^name = \"grocker-hello\"/name = \"grocker-app$i\"/" "$tmp/example/app$i/pyproject.toml"
done
cat >"$tmp/concurrent.yml" <<EOF
dependencies:
  run: [less]
EOF

pids=()
start_build() { # NAME PROJECT
    "$GROCKER" --root "$store" build "$2" -c "$app/.grocker.yml" -c "$tmp/concurrent.yml" \
        --index-url "$index" --no-push --result-file "$tmp/$1.json" >"$tmp/$1.out" 2>"$tmp/$1.err" &
    pids+=($!)
}
start_build hello-a "$app"
start_build hello-b "$app"
for i in 1 2 3; do start_build "app$i" "$tmp/example/app$i"; done
start_build hello-c "$app"
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
if [ "$failed" -ne 0 ]; then
    for f in "$tmp"/*.err; do echo "--- $f" >&2; tail -n 20 "$f" >&2; done
    fail "$failed of the six concurrent builds failed"
fi
ok "six builds at once (four apps, hello three times) all succeeded"

for b in hello-b hello-c; do
    expect_eq "digest of $b" "$(tail -n1 "$tmp/hello-a.out")" "$(tail -n1 "$tmp/$b.out")"
done
for i in 1 2 3; do
    expect_eq "app$i's name" "grocker-app$i" "$(jq -r .image "$tmp/app$i.json" | cut -d: -f1)"
done
roots=$(jq -r .root_image "$tmp"/*.json | sort -u | wc -l)
expect_eq "root images named by the six builds" 1 "$roots"
ran=$(for f in "$tmp"/*.err; do steps_ran "$(cat "$f")"; done)
expect_eq "root steps run in all" 1 "$(grep -c '^root:' <<<"$ran" || true)"
expect_eq "compiler steps run in all" 1 "$(grep -c '^compiler:' <<<"$ran" || true)"
# The four apps have the same dependencies: one layer for all.
expect_eq "dependency layers made" 1 "$(grep -c '^runner: dependencies of ' <<<"$ran" || true)"
expect_eq "app layers made" 4 "$(grep -c '^runner: grocker-' <<<"$ran" || true)"
ok "the shared root, compiler and dependency layer were built once; each app's layer once"

run "fsck after the concurrent builds" "$GROCKER" --root "$store" fsck
ok "fsck: the store is consistent"
run "a seventh build" "$GROCKER" --root "$store" build "$app" -c "$app/.grocker.yml" -c "$tmp/concurrent.yml" \
    --index-url "$index" --no-push
expect_eq "the seventh build's digest" "$(tail -n1 "$tmp/hello-a.out")" "$(tail -n1 <<<"$out")"
expect_eq "steps the seventh build ran" "" "$(steps_ran "$err")"
ok "a later build finds everything made"
echo "all concurrent build checks passed"
