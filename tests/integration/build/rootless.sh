#!/bin/bash
# The whole grocker build run as an unprivileged user with a subordinate id range, and no root
# at any point (mmdebstrap --mode=unshare for the base, every step in a user namespace), from
# an empty store, gives the same image digest as the build run as root.
# The root build uses the warm store of tests/integration/build/build.sh ($GROCKER_TEST_CACHE/build-store).
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${GROCKER_SOURCE_ROOT:?}"
: "${GROCKER_TEST_CACHE:?}"
need_tools mmdebstrap newuidmap newgidmap runuser jq curl "$PY" tar
[ "$(id -u)" = 0 ] || fail "run as root (the test makes its unprivileged user)"
cache=$GROCKER_TEST_CACHE
mkdir -p "$cache"
setup grocker-build-rootless
chmod 755 "$tmp" "$tmp/home"

# The unprivileged builder, with its own subordinate range.
user=grocker-build-rl
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"
grep -q "^$user:" /etc/subuid || usermod --add-subuids 500000-565535 "$user"
grep -q "^$user:" /etc/subgid || usermod --add-subgids 500000-565535 "$user"

serve_example_index

run "build as root" "$GROCKER" --root "$cache/build-store" build "$app" -c "$app/.grocker.yml" --index-url "$index" --no-push
as_root=$(tail -n1 <<<"$out")
expect_match "root build digest" '^sha256:[0-9a-f]{64}$' "$as_root"

# The user's own copy of the program (and the entrypoint beside it), store and home.
mkdir -p "$tmp/user/bin/entrypoint" "$tmp/user/home"
cp "$GROCKER" "$tmp/user/bin/grocker"
cp "${GROCKER_ENTRYPOINT:-$(dirname "$GROCKER")/grocker-entrypoint}" "$tmp/user/bin/entrypoint/"
chown -R "$user:$user" "$tmp/user"
run "build as $user, from an empty store" runuser -u "$user" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    HOME="$tmp/user/home" TMPDIR="$tmp/user/home" "$tmp/user/bin/grocker" --root "$tmp/user/store" \
    build "$app" -c "$app/.grocker.yml" --index-url "$index" --no-push --result-file "$tmp/user/result.json"
rootless=$(tail -n1 <<<"$out")
ran=$(steps_ran "$err" | cut -d: -f1 | tr '\n' ' ')
expect_eq "steps run rootless" "base root compiler compile resolve compile runner runner " "$ran"
expect_eq "the rootless build's digest" "$as_root" "$rootless"
ok "the whole build as $user (no root at any point) gives the root build's digest $rootless"
# Its files are the user's or its subordinate ids', never root's.
found=$(find "$tmp/user/store" -maxdepth 3 -uid 0 | head -n 3)
[ -z "$found" ] || fail "files owned by root in the rootless store: $found"
ok "no file of the rootless store belongs to root"
# Removing the store needs the user's namespace (files of subordinate ids); rm as root here.
echo "all rootless build checks passed"
