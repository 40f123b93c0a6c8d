#!/bin/bash
# Builds without an index, and with an index that cannot be reached, in a network namespace the
# test makes (unshare -n: no route anywhere, not even loopback up):
#   - --no-index --find-links DIR builds the example from the folder alone, the image the same
#     as with the index (the same wheels: reproducible);
#   - an index that cannot be reached stops the build within seconds, with an error naming the
#     index (its password hidden) and what to do, instead of pip retrying it for every package;
#   - --no-index without a find-links folder, or with an index URL, is refused before any work.
# Uses the warm store of tests/integration/build/build.sh ($GROCKER_TEST_CACHE/build-store).
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${GROCKER_SOURCE_ROOT:?}"
: "${GROCKER_TEST_CACHE:?}"
need_tools unshare jq curl "$PY" tar
[ "$(id -u)" = 0 ] || fail "run as root"
setup grocker-build-offline
chmod 755 "$tmp"
serve_example_index
store=$GROCKER_TEST_CACHE/build-store

# The image with the index, as a reference (the warm store has it: no box runs).
run "build with the index" "$GROCKER" --root "$store" build "$app" -c "$app/.grocker.yml" --index-url "$index" --no-push
with_index=$(tail -n1 <<<"$out")

# --- --no-index: the find-links folder only, no network at all ---------------------------------
mkdir -p "$tmp/links"
cp "$tmp/index/simple/grocker-greeting/grocker-greeting-1.0.0.tar.gz" "$tmp/links/"
chmod -R a+rX "$tmp/links"
run "build with --no-index, no network" unshare -n "$GROCKER" --root "$store" build "$app" -c "$app/.grocker.yml" \
    --no-index --find-links "$tmp/links" --no-push --refresh
expect_eq "digest with --no-index" "$with_index" "$(tail -n1 <<<"$out")"
expect_match "the dependency resolved from the folder" '^resolve: ' "$(steps_ran "$err")"
ok "--no-index --find-links builds with no network at all; the same image as with the index"

# --- an index that cannot be reached -----------------------------------------------------------
# 192.0.2.1 (TEST-NET-1) in a namespace with no route: connect fails at once, nothing is sent.
SECONDS=0
run_fails "build with an unreachable index" unshare -n "$GROCKER" --root "$store" build "$app" \
    -c "$app/.grocker.yml" --index-url "http://ci:s3cret-token@192.0.2.1/simple/" --no-push --refresh
took=$SECONDS
expect_eq "exit status with an unreachable index" 1 "$rc"
[ "$took" -lt 10 ] || fail "the build with an unreachable index took $took s (at most 10): $err"
expect_match "the error names the index" "grocker: error: the package index http://ci:\*\*\*@192.0.2.1/simple/ cannot be reached \(.*; is the package index up and reachable\?\); check the index URL .* or build offline with --no-index and --find-links DIR" "$err"
expect_no_match "the password in the error" 's3cret-token' "$err"
expect_no_match "pip retried" 'Retrying' "$err"
ok "an unreachable index fails in $took s: $(grep 'grocker: error' <<<"$err")"

# --- --no-index misused --------------------------------------------------------------------------
run_fails "--no-index without find-links" "$GROCKER" --root "$store" build "$app" -c "$app/.grocker.yml" --no-index --no-push
expect_eq "exit status of --no-index without find-links" 2 "$rc"
expect_match "its message" "--no-index: no --find-links folder to take packages from; give --find-links DIR" "$err"
run_fails "--no-index with an index URL" "$GROCKER" --root "$store" build "$app" -c "$app/.grocker.yml" --no-index \
    --index-url "$index" --find-links "$tmp/links" --no-push
expect_eq "exit status of --no-index with --index-url" 2 "$rc"
expect_match "its message" "--no-index and --index-url: give one of them" "$err"
ok "--no-index without a find-links folder, or with an index URL: refused before any work"
echo "all offline build checks passed"
