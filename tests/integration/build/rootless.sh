#!/bin/bash
# The whole grocker build run as an unprivileged user with a subordinate id range, and no root
# at any point (mmdebstrap --mode=unshare for the base, every step in a user namespace), from
# an empty store, and with umask 077, gives the same image digest as the build run as root.
# Then an app with compiled dependencies from real upstream code (fixtures/cext-app: MarkupSafe's
# upstream sdist from Debian's sources, and a C extension built in a build environment of its
# own): the same wheel bytes and the same image digest from both stores, and the same SBOMs and
# provenance, byte for byte: CycloneDX's validator accepts the SBOM, which gives MarkupSafe's
# upstream sdist by its hash; the rootless build signs with a PEM key, grocker verify accepts it.
# The root build uses the warm store of tests/integration/build/build.sh ($GROCKER_TEST_CACHE/build-store).
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${GROCKER_SOURCE_ROOT:?}"
: "${GROCKER_TEST_CACHE:?}"
need_tools docker-registry mmdebstrap newuidmap newgidmap runuser jq curl "$PY" tar apt-get unzip strings node npm openssl
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
# as_user ARGS...: grocker as the user, with its store, and a umask that would change the modes
# of everything a step makes if the sandbox let it through.
as_user() {
    runuser -u "$user" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$tmp/user/home" \
        TMPDIR="$tmp/user/home" /bin/sh -c 'umask 077; exec "$@"' sh "$tmp/user/bin/grocker" \
        --root "${user_store:-$tmp/user/store}" "$@"
}
# With a registry prefix whose registry holds nothing yet: root and compiler are looked for
# there (a 404 each), then built here; nothing is pushed.
start_registry plain reg
run "build as $user, from an empty store" as_user \
    build "$app" -c "$app/.grocker.yml" --index-url "$index" --no-push --result-file "$tmp/user/result.json" \
    --image-prefix "$REGISTRY/rootless"
rootless=$(tail -n1 <<<"$out")
ran=$(steps_ran "$err" | cut -d: -f1 | tr '\n' ' ')
expect_eq "steps run rootless" "base root compiler compile resolve compile runner runner " "$ran"
expect_eq "the rootless build's digest" "$as_root" "$rootless"
ok "the whole build as $user (no root at any point) gives the root build's digest $rootless"
# Its files are the user's or its subordinate ids', never root's.
found=$(find "$tmp/user/store" -maxdepth 3 -uid 0 | head -n 3)
[ -z "$found" ] || fail "files owned by root in the rootless store: $found"
ok "no file of the rootless store belongs to root"

# The same build pushed: root, compiler, runner, and the root's Python slice, made from the
# root's layers in the user's namespace. A fresh store of the user's then installs the app over
# that slice, the root's and the compiler's layers left in the registry: same digest.
run "build and push as $user" as_user build "$app" -c "$app/.grocker.yml" --index-url "$index" \
    --image-prefix "$REGISTRY/rootless"
expect_eq "the pushed build's digest" "$as_root" "$(tail -n1 <<<"$out")"
expect_match "the slice made and pushed as $user" "root: its Python slice pushed to $REGISTRY/rootless/grocker-bookworm-3.11-root-slice:" "$err"
# Root and compiler got their SBOMs when first pushed (the root its package list too).
"$fixtures/npm-cyclonedx.sh" "$cache/npm-cyclonedx" || fail "could not install CycloneDX's validator"
for role in root compiler; do
    name=$(jq -r ".${role}_image" "$tmp/user/result.json")
    expect_match "the $role's name" "^$REGISTRY/rootless/grocker-bookworm-3.11-$role:" "$name"
    run "the $role's attachments" "$GROCKER" --root "$tmp/reader" attestations "docker://$name"
    want="application/spdx+json application/vnd.cyclonedx+json"
    [ $role = root ] && want="$want application/vnd.grocker.root-packages.v1+json"
    expect_eq "the $role's attachment types" "$want" "$(sed -n 's/^  sha256:[0-9a-f]*  \([^ ]*\).*/\1/p' <<<"$out" | sort | tr '\n' ' ' | sed 's/ $//')"
    run "the $role's SBOM" "$GROCKER" --root "$tmp/reader" sbom "docker://$name"
    printf '%s\n' "$out" >"$tmp/$role.cdx.json"
    v=$(cd "$cache/npm-cyclonedx" && node validate-cyclonedx.mjs "$tmp/$role.cdx.json" 1.5) || fail "CycloneDX's validator refused the $role's SBOM: $v"
done
expect_eq "the compiler's SBOM has gcc" 1 "$(jq '[.components[] | select(.name == "gcc")] | length' "$tmp/compiler.cdx.json")"
expect_eq "the root's has not" 0 "$(jq '[.components[] | select(.name == "gcc")] | length' "$tmp/root.cdx.json")"
user_store=$tmp/user/home/fresh-store run "build and push as $user from a fresh store" as_user build "$app" \
    -c "$app/.grocker.yml" --index-url "$index" --image-prefix "$REGISTRY/rootless"
expect_eq "the fresh rootless store's digest" "$as_root" "$(tail -n1 <<<"$out")"
expect_match "the slice pulled" "pulled $REGISTRY/rootless/grocker-bookworm-3.11-root-slice:" "$err"
expect_no_match "root pulled" "grocker-bookworm-3.11-root:[^ ]*: pulled from" "$err"
expect_eq "steps run on the fresh rootless store" "runner: grocker-hello 1.0.0" "$(steps_ran "$err")"
ok "rootless: the root's Python slice made and pushed (root and compiler with their SBOMs), then a fresh store installs the app over it; same digest"

# --- compiled wheels: the same bytes from two stores, as root and rootless ----------------------
sdist=$("$fixtures/debian-sdist" "$cache" markupsafe) || fail "no upstream sdist of MarkupSafe from Debian's sources"
"$fixtures/cext-app" "$tmp" "$sdist"
run "build the C-extension app as root" "$GROCKER" --root "$cache/build-store" build "$tmp/cext-app" \
    -c "$tmp/cext-app/.grocker.yml" --index-url "$index" --no-push --export-wheels "$tmp/wheels-root" \
    --output "oci:$tmp/cext-root:cext"
cext_root=$(tail -n1 <<<"$out")
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/user/sign.pem" 2>/dev/null
openssl ec -in "$tmp/user/sign.pem" -pubout -out "$tmp/sign.pub" 2>/dev/null
chown "$user" "$tmp/user/sign.pem"
run "build the C-extension app as $user" as_user build "$tmp/cext-app" -c "$tmp/cext-app/.grocker.yml" \
    --index-url "$index" --no-push --export-wheels "$tmp/user/wheels" --output "oci:$tmp/user/cext:cext" \
    --sign-key "$tmp/user/sign.pem"
cext_user=$(tail -n1 <<<"$out")
ran=$(steps_ran "$err" | tr '\n' ' ')
expect_match "MarkupSafe compiled as $user" 'compile: MarkupSafe 2\.1\.2 ' "$ran"
expect_match "rx-cext compiled as $user" 'compile: rx-cext 1\.0 ' "$ran"
# The wheels each build used (--export-wheels): the same bytes.
for w in MarkupSafe-2.1.2-cp311-cp311-linux_x86_64.whl rx_cext-1.0-cp311-cp311-linux_x86_64.whl; do
    [ -f "$tmp/wheels-root/$w" ] || fail "the root build used no $w: $(ls "$tmp/wheels-root")"
    cmp "$tmp/wheels-root/$w" "$tmp/user/wheels/$w" || fail "$w compiled rootless, in another store, differs"
    # No build folder in the compiled code: built in a fixed folder, written as '.'.
    rm -rf "$tmp/unzipped" && mkdir "$tmp/unzipped"
    unzip -q "$tmp/user/wheels/$w" -d "$tmp/unzipped"
    so=$(find "$tmp/unzipped" -name '*.so')
    [ -n "$so" ] || fail "$w holds no compiled extension"
    # shellcheck disable=SC2086 # one word per library
    if strings -a $so | grep -E '/tmp/(sdist|pip-)'; then fail "$w names its build folder"; fi
done
ok "MarkupSafe's and rx-cext's wheels: the same bytes from both stores, as root and rootless"
expect_eq "the C-extension app's digest rootless" "$cext_root" "$cext_user"
ok "the C-extension app: the same image digest as root and rootless ($cext_user)"

# --- its attestations: the same bytes as root and rootless, and signed -----------------------------
for kind in cyclonedx spdx provenance; do
    run "the root build's $kind" "$GROCKER" --root "$tmp/reader" attestations --print $kind "oci:$tmp/cext-root:cext"
    printf '%s\n' "$out" >"$tmp/root.$kind.json"
    run "the rootless build's $kind" "$GROCKER" --root "$tmp/reader" attestations --print $kind "oci:$tmp/user/cext:cext"
    printf '%s\n' "$out" | cmp -s - "$tmp/root.$kind.json" || fail "the rootless build's $kind differs from the root build's"
done
v=$(cd "$cache/npm-cyclonedx" && node validate-cyclonedx.mjs "$tmp/root.cyclonedx.json" 1.5) || fail "CycloneDX's validator refused the SBOM: $v"
sdist_hash=$(sha256sum "$sdist" | cut -d' ' -f1)
expect_match "MarkupSafe from its upstream sdist, by hash" "sha256:$sdist_hash\$" \
    "$(jq -r '.components[] | select(.name == "MarkupSafe" or .name == "markupsafe") | .properties[] | select(.name == "grocker:built-from-sdist") | .value' "$tmp/root.cyclonedx.json")"
expect_eq "and in the provenance" "$sdist_hash" \
    "$(jq -r '.predicate.buildDefinition.resolvedDependencies[] | select(.uri == "pkg:pypi/markupsafe@2.1.2") | .digest.sha256' "$tmp/root.provenance.json")"
expect_match "the compiled wheels by hash" "rx_cext-1.0-cp311-cp311-linux_x86_64.whl" "$(cat "$tmp/root.provenance.json")"
run "verify the rootless build's signature" "$GROCKER" --root "$tmp/reader" verify --key "$tmp/sign.pub" "oci:$tmp/user/cext:cext"
ok "the C-extension app's SBOMs and provenance: the same bytes as root and rootless, valid, MarkupSafe's sdist by hash; signed rootless"
# Removing the store needs the user's namespace (files of subordinate ids); rm as root here.
echo "all rootless build checks passed"
