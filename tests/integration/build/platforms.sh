#!/bin/bash
# grocker build for several platforms (linux/amd64 and linux/arm64, the arm64 steps under
# qemu-user registered in each sandbox's own binfmt_misc instance), on the bundled example:
#   - one command builds and pushes both runners and an OCI image index over them to a real
#     docker-registry: skopeo reads the index, both platforms in order, their digests the result
#     file's; the arm64 runner's config says arm64 and its Python is an AArch64 program (ELF
#     e_machine read from the layer's bytes); root and compiler of each pushed beside them;
#   - grocker copy --all promotes the signed index to another repository: the same digest, each
#     runner's attachments and the index's signatures; grocker verify accepts the copy;
#   - the same build again runs no step at all (no emulated step), same digests;
#   - each platform built alone (--platform linux/arm64, then linux/amd64) gives the index's
#     entries, and grocker index create over them (amd64 first, as built), the same index, with
#     each runner's attachments;
#   - grocker run --platform linux/arm64 runs the arm64 image of the index, as root and as an
#     unprivileged user (the user namespace's own binfmt_misc instance);
#   - an app with C extensions from real upstream code (fixtures/cext-app: MarkupSafe's upstream
#     sdist from Debian's sources, and rx-cext) for both platforms: each runner's compiled
#     modules are of its architecture, and import under qemu;
#   - the same app from ready-made wheels of both platforms (those it exported): no arm64 step
#     runs emulated (the machine's resolution with arm64 files, installed by the machine's
#     Python), and the arm64 runner is the one a fully emulated build in a fresh store makes;
#     but pip resolves emulated, saying why, under a constraint on platform_machine, and for a
#     release whose aarch64 wheel requires more than its x86_64 one;
#   - podman pulls each platform of the index from the registry and runs it (--arch arm64
#     through the host's qemu-aarch64 rule, which the test registers, last, when the machine has
#     none: grocker needs none): uname -m, and the www service answers through nginx and uwsgi.
# Uses the warm store of tests/integration/build/build.sh ($GROCKER_TEST_CACHE/build-store): the
# amd64 side is cached there; the arm64 side is built there once (about 5 minutes), then cached.
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${GROCKER_SOURCE_ROOT:?}"
: "${GROCKER_TEST_CACHE:?}"
need_tools mmdebstrap docker-registry skopeo podman runc jq curl "$PY" tar od dpkg apt-get runuser newuidmap newgidmap mount
[ "$(id -u)" = 0 ] || fail "run as root (podman, the host's binfmt_misc rule, the test's user)"
[ "$(dpkg --print-architecture)" = amd64 ] || fail "this test is written for an amd64 machine (the other platform is arm64)"
qemu=/usr/bin/qemu-aarch64-static
[ -x "$qemu" ] || fail "$qemu is missing (Debian's qemu-user-static): run scripts/install-deps"
cache=$GROCKER_TEST_CACHE
mkdir -p "$cache"
store=$cache/build-store
setup grocker-build-platforms
chmod 755 "$tmp"
binfmt=/proc/sys/fs/binfmt_misc
binfmt_mounted='' binfmt_added=''

# The unprivileged user of the rootless tests (build/rootless.sh), with its subordinate range.
user=grocker-build-rl
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"
grep -q "^$user:" /etc/subuid || usermod --add-subuids 500000-565535 "$user"
grep -q "^$user:" /etc/subgid || usermod --add-subgids 500000-565535 "$user"
mkdir -p "$tmp/user/bin" "$tmp/user/home"
cp "$GROCKER" "$tmp/user/bin/grocker"
chown -R "$user:$user" "$tmp/user"
as_user() {
    runuser -u "$user" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$tmp/user/home" \
        TMPDIR="$tmp/user/home" "$tmp/user/bin/grocker" --root "$tmp/user/store" "$@"
}

# podman's containers stopped, and the host's rule removed if the test added it, before the
# fixtures' cleanup removes $tmp.
PODMAN=(podman --root "$tmp/podman" --runroot "$tmp/podman-run" --storage-driver vfs --cgroup-manager cgroupfs --runtime runc)
www_pid=
finish() {
    [ -z "$www_pid" ] || kill "$www_pid" 2>/dev/null || true
    "${PODMAN[@]}" rm -f -a >/dev/null 2>&1 || true
    if [ -n "$binfmt_added" ]; then echo -1 >"$binfmt/qemu-aarch64" || echo "could not remove the qemu-aarch64 rule the test added" >&2; fi
    if [ -n "$binfmt_mounted" ]; then umount "$binfmt" || true; fi
}
trap 'finish; cleanup' EXIT

start_registry plain reg
R=$REGISTRY
# The example from the source tree, its dependency's sdist in a find-links folder, as
# build/rebase.sh and build/sbom.sh build it (their cache entries are this test's). (A package
# index on a free port would not do: the index URL is part of what a compile is cached under.)
mkdir -p "$tmp/links"
tar -czf "$tmp/links/grocker-greeting-1.0.0.tar.gz" --owner=0 --group=0 --mtime=@0 --sort=name \
    -C "$GROCKER_SOURCE_ROOT/example" --transform 's,^greeting,grocker-greeting-1.0.0,' greeting
app=$GROCKER_SOURCE_ROOT/example/hello
hello() { # RESULT [options]: build the example
    local result=$1
    shift
    run "build the example $*" "$GROCKER" --root "$store" --tls-verify=false build "$app" -c "$app/.grocker.yml" \
        --no-index --find-links "$tmp/links" --result-file "$result" "$@"
}
# The bytes 18-19 of an ELF file (e_machine): b7 00 for AArch64, 3e 00 for x86-64.
e_machine() { od -An -tx1 -j18 -N2 "$1" | xargs; }
# layer_file LAYOUT MANIFEST-DIGEST PATH-GLOB OUT: the file of the image (a manifest of the
# layout) at PATH-GLOB, from the last of its layers that holds it, read with tar into the folder
# OUT; its path in $found.
layer_file() {
    local layout=$1 manifest=$2 glob=$3 outdir=$4 layers l
    layers=$(jq -r '.layers[].digest' "$layout/blobs/sha256/${manifest#sha256:}" | tac)
    mkdir -p "$outdir"
    for l in $layers; do
        if tar -xzf "$layout/blobs/sha256/${l#sha256:}" -C "$outdir" --wildcards "$glob" 2>/dev/null; then
            found=$(find "$outdir" -type f -path "$outdir/$glob" | sed -n 1p)
            [ -n "$found" ] || fail "$glob of $manifest is not a file"
            return 0
        fi
    done
    fail "no layer of $manifest holds $glob"
}
config_of() { # LAYOUT MANIFEST-DIGEST: the image's config
    local c
    c=$(jq -r .config.digest "$1/blobs/sha256/${2#sha256:}")
    cat "$1/blobs/sha256/${c#sha256:}"
}

# --- one command: both runners and the index, pushed and signed ---------------------------------
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/sign.pem" 2>/dev/null
openssl ec -in "$tmp/sign.pem" -pubout -out "$tmp/sign.pub" 2>/dev/null
start=$SECONDS
hello "$tmp/result.json" --platform linux/amd64,linux/arm64 --image-prefix "$R/team" --output "oci:$tmp/idx:hello" \
    --sign-key "$tmp/sign.pem"
digest=$(tail -n1 <<<"$out")
echo "the two-platform build took $((SECONDS - start)) s; steps:"
steps_ran "$err" | sed 's/^/  /'
expect_match "the printed digest" '^sha256:[0-9a-f]{64}$' "$digest"
expect_eq "the result file's hash is the index's" "$digest" "$(jq -r .hash "$tmp/result.json")"
expect_eq "the result's image" "$R/team/grocker-hello:1.0.0" "$(jq -r .image "$tmp/result.json")"
expect_eq "the result's platforms, in order" "linux/amd64 linux/arm64" "$(jq -r '[.platforms[].platform] | join(" ")' "$tmp/result.json")"
amd=$(jq -r '.platforms[0].hash' "$tmp/result.json")
arm=$(jq -r '.platforms[1].hash' "$tmp/result.json")
expect_match "the amd64 runner's hash" '^sha256:[0-9a-f]{64}$' "$amd"
expect_match "the arm64 runner's hash" '^sha256:[0-9a-f]{64}$' "$arm"
[ "$amd" != "$arm" ] || fail "both platforms have the runner $amd"
expect_match "it says it made the index" "index: 2 platforms, $digest" "$err"
skopeo inspect --tls-verify=false --raw "docker://$R/team/grocker-hello:1.0.0" >"$tmp/index.json" ||
    fail "skopeo cannot read the pushed index"
expect_eq "the registry's tag is the index" "$digest" "$(sha256_of "$tmp/index.json")"
expect_eq "an OCI index of both platforms, the result's runners" \
    "application/vnd.oci.image.index.v1+json linux/amd64 $amd linux/arm64 $arm" \
    "$(jq -r '[.mediaType, (.manifests[] | "\(.platform.os)/\(.platform.architecture)", .digest)] | join(" ")' "$tmp/index.json")"
for p in amd64:$amd arm64:$arm; do
    skopeo inspect --tls-verify=false --raw "docker://$R/team/grocker-hello@${p#*:}" >"$tmp/${p%%:*}.manifest.json" ||
        fail "the registry has no ${p%%:*} runner ${p#*:}"
    expect_eq "the ${p%%:*} runner's manifest bytes" "${p#*:}" "$(sha256_of "$tmp/${p%%:*}.manifest.json")"
done
# (skopeo inspect's Digest is the index's: the runner it picked is told by its layers.)
expect_eq "skopeo picks the arm64 runner of the index" "arm64 $(jq -r '[.layers[].digest] | join(",")' "$tmp/arm64.manifest.json")" \
    "$(skopeo inspect --tls-verify=false --override-arch arm64 "docker://$R/team/grocker-hello:1.0.0" | jq -r '"\(.Architecture) \(.Layers | join(","))"')"
skopeo inspect --tls-verify=false --config --raw "docker://$R/team/grocker-hello@$arm" >"$tmp/arm64.config.json" ||
    fail "skopeo cannot read the arm64 runner's config"
expect_eq "the arm64 runner's config" "linux arm64 runner" \
    "$(jq -r '"\(.os) \(.architecture) \(.config.Labels["grocker.image.role"])"' "$tmp/arm64.config.json")"
# The root and the compiler of each platform pushed beside the runners, of that platform.
for i in 0 1; do
    arch=$(jq -r ".platforms[$i].platform" "$tmp/result.json")
    arch=${arch#linux/}
    for role in root compiler; do
        name=$(jq -r ".platforms[$i].${role}_image" "$tmp/result.json")
        # amd64's as before; another platform's a repository of its own (grocker purge keeps the
        # newest of each).
        repo=grocker-bookworm-3.11-$role
        [ "$arch" = amd64 ] || repo=grocker-bookworm-3.11-linux-$arch-$role
        expect_match "the $arch $role's name" "^$R/team/$repo:" "$name"
        a=$(skopeo inspect --tls-verify=false --config --raw "docker://$name" | jq -r .architecture) ||
            fail "the registry has no $name"
        expect_eq "the $arch $role ($name) is for" "$arch" "$a"
    done
done
[ "$(jq -r '.platforms[0].root_image' "$tmp/result.json")" != "$(jq -r '.platforms[1].root_image' "$tmp/result.json")" ] ||
    fail "both platforms name one root"
ok "one command pushed an OCI index of linux/amd64 and linux/arm64 ($digest): the result file's runners, the arm64 one's config arm64, each platform's root and compiler beside them"

# The oci: output is the same index, with both runners' blobs; the arm64 runner's Python and
# entrypoint are AArch64 programs, the amd64 ones x86-64 (their bytes, read with tar).
expect_eq "the oci: output's index" "$digest" "$(oci_digest "$tmp/idx" hello)"
check_blobs "$tmp/idx"
# Each runner's attachments (its SBOMs and provenance) beside the index, as the registry has
# them: the same referrers, naming their runner.
for p in amd64:$amd arm64:$arm; do
    in_layout=$(jq -r '.manifests[] | select(.artifactType != null) | .digest' "$tmp/idx/index.json" | while read -r d; do
        if [ "$(jq -r .subject.digest "$tmp/idx/blobs/sha256/${d#sha256:}")" = "${p#*:}" ]; then echo "$d"; fi
    done | sort)
    in_registry=$(skopeo inspect --tls-verify=false --raw "docker://$R/team/grocker-hello:sha256-${p#*:sha256:}" |
        jq -r '.manifests[].digest' | sort)
    expect_eq "the ${p%%:*} runner's attachments in the layout, as in the registry" "$in_registry" "$in_layout"
    expect_eq "how many (SBOMs, provenance, signature)" 4 "$(wc -l <<<"$in_layout")"
done
cmp -s "$tmp/index.json" "$tmp/idx/blobs/sha256/${digest#sha256:}" || fail "the layout's index is not the registry's"
expect_eq "the arm64 config in the layout" "$(jq -cS . "$tmp/arm64.config.json")" "$(config_of "$tmp/idx" "$arm" | jq -cS .)"
for p in amd64:$amd:"3e 00" arm64:$arm:"b7 00"; do
    a=${p%%:*} m=${p#*:} want=${p##*:}
    m=${m%:*}
    for f in usr/bin/python3.11 usr/local/bin/grocker-entrypoint; do
        layer_file "$tmp/idx" "$m" "$f" "$tmp/files-$a"
        expect_eq "the e_machine of the $a runner's /$f" "$want" "$(e_machine "$found")"
    done
done
ok "the oci: output holds the same index, each runner's attachments; the arm64 runner's python3.11 and entrypoint are AArch64 ELF programs, the amd64 ones x86-64"

# The index is signed too, as cosign signs what a tag names: a Sigstore bundle naming it beside
# it in the layout and the registry, and cosign's .sig of its digest (checked with openssl).
bundles=$(jq -r --arg d "$digest" '.manifests[] | select(.artifactType == "application/vnd.dev.sigstore.bundle.v0.3+json") | .digest' "$tmp/idx/index.json" |
    while read -r b; do if [ "$(jq -r .subject.digest "$tmp/idx/blobs/sha256/${b#sha256:}")" = "$digest" ]; then echo "$b"; fi; done)
expect_eq "the layout's bundles naming the index" 1 "$(grep -c . <<<"$bundles")"
expect_eq "the registry's referrers of the index" "$bundles" \
    "$(skopeo inspect --tls-verify=false --raw "docker://$R/team/grocker-hello:sha256-${digest#sha256:}" | jq -r '.manifests[].digest')"
skopeo inspect --tls-verify=false --raw "docker://$R/team/grocker-hello:sha256-${digest#sha256:}.sig" >"$tmp/index-sig.json" ||
    fail "the registry has no cosign .sig of the index"
curl -sf "http://$R/v2/team/grocker-hello/blobs/$(jq -r '.layers[0].digest' "$tmp/index-sig.json")" >"$tmp/index-payload.json" ||
    fail "cannot read the index's .sig payload"
expect_eq "the .sig payload names the index" "$digest" "$(jq -r '.critical.image["docker-manifest-digest"]' "$tmp/index-payload.json")"
jq -r '.layers[0].annotations["dev.cosignproject.cosign/signature"]' "$tmp/index-sig.json" | base64 -d >"$tmp/index-payload.sig"
run "openssl checks the index's signature" openssl dgst -sha256 -verify "$tmp/sign.pub" -signature "$tmp/index-payload.sig" "$tmp/index-payload.json"
run "grocker verify of the tag (this machine's runner)" "$GROCKER" --root "$store" --tls-verify=false -q verify --key "$tmp/sign.pub" "docker://$R/team/grocker-hello:1.0.0"
run "grocker verify of the arm64 runner" "$GROCKER" --root "$store" --tls-verify=false -q verify --key "$tmp/sign.pub" "docker://$R/team/grocker-hello@$arm"
ok "--sign-key: each runner and the index signed (a bundle in the layout and the registry, cosign's .sig)"

# Promoted whole to another repository (copy --all): the same index, both runners, each one's
# attachments and every signature, so that verify accepts the copy.
run "grocker copy --all of the signed index" "$GROCKER" --root "$store" --tls-verify=false copy --all \
    "docker://$R/team/grocker-hello:1.0.0" "docker://$R/prod/grocker-hello:1.0.0"
expect_eq "the copy's digest" "$digest" "$(tail -n1 <<<"$out")"
expect_eq "the copy's referrers of the index" "$bundles" \
    "$(skopeo inspect --tls-verify=false --raw "docker://$R/prod/grocker-hello:sha256-${digest#sha256:}" | jq -r '.manifests[].digest')"
expect_eq "the copy's .sig of the index" "$(jq -cS . "$tmp/index-sig.json")" \
    "$(skopeo inspect --tls-verify=false --raw "docker://$R/prod/grocker-hello:sha256-${digest#sha256:}.sig" | jq -cS .)"
referrers_of() { skopeo inspect --tls-verify=false --raw "docker://$R/$1:sha256-${arm#sha256:}" | jq -r '[.manifests[].digest] | sort | join(" ")'; }
expect_eq "the arm64 runner's attachments in the copy" "$(referrers_of team/grocker-hello)" "$(referrers_of prod/grocker-hello)"
run "grocker verify of the copy's arm64 runner" "$GROCKER" --root "$store" --tls-verify=false -q verify --key "$tmp/sign.pub" "docker://$R/prod/grocker-hello@$arm"
ok "copy --all promotes the signed index: the same digest, each runner's attachments and the index's signatures; verify accepts the copy"

# --- the same build again: no step runs ----------------------------------------------------------
mark
layout_referrers() { jq -r '[.manifests[] | select(.artifactType != null) | .digest] | sort | join(" ")' "$tmp/idx/index.json"; }
layout_before=$(layout_referrers)
hello "$tmp/result2.json" --platform linux/amd64,linux/arm64 --image-prefix "$R/team" --output "oci:$tmp/idx:hello" \
    --sign-key "$tmp/sign.pem"
expect_eq "the rebuild's digest" "$digest" "$(tail -n1 <<<"$out")"
expect_match "the rebuild ran no step" '^steps: 0 ran, ' "$err"
expect_eq "the rebuild's steps" "" "$(steps_ran "$err")"
expect_eq "the rebuild's result file" "$(jq -cS 'del(.outputs)' "$tmp/result.json")" "$(jq -cS 'del(.outputs)' "$tmp/result2.json")"
# Nothing sent again: no upload to the root's or the compiler's repositories, no layer or config
# of the runners, none of their attachments (listed as referrers already); only the index's
# manifest put again under the tag. Signed again with the same key: the signatures there are
# this key's, none is added.
expect_eq "uploads by the rebuild" "" "$(requests_since | grep -E '^POST [^ ]*/blobs/uploads/' || true)"
expect_eq "chunked uploads by the rebuild" 0 "$(count_since PATCH '/blobs/uploads/')"
expect_eq "uploads to the root's and the compiler's repositories" 0 "$(count_since POST '/grocker-bookworm-3.11-(linux-arm64-)?(root|compiler|root-slice)/blobs/uploads/')"
sent=$(requests_since | sed -En 's,^PUT /v2/[^ ]*/blobs/uploads/[^ ]*digest=sha256%3A([0-9a-f]{64}).*,sha256:\1,p' | sort -u)
for d in $(jq -r '.config.digest, .layers[].digest' "$tmp/amd64.manifest.json" "$tmp/arm64.manifest.json"); do
    if grep -qx "$d" <<<"$sent"; then fail "the rebuild uploaded the runners' blob $d again"; fi
done
expect_eq "the index's referrers after it" "$bundles" \
    "$(skopeo inspect --tls-verify=false --raw "docker://$R/team/grocker-hello:sha256-${digest#sha256:}" | jq -r '.manifests[].digest')"
expect_eq "the layout's attachments after it (no new bundle)" "$layout_before" "$(layout_referrers)"
ok "the same two-platform build again runs no step (none emulated), uploads no blob (no layer, config, attachment or signature), adds no bundle to its oci: layout; same index and runners"

# --- each platform alone, and grocker index create over them --------------------------------------
# (arm64 first: a build of one platform names its runner grocker-hello:1.0.0 in the store, which
# the tests sharing the store then find as this machine's.)
hello "$tmp/r-arm.json" --platform linux/arm64 --no-push --output "oci:$tmp/arm:hello"
expect_eq "the arm64 build alone" "$arm" "$(tail -n1 <<<"$out")"
expect_match "ran no step" '^steps: 0 ran, ' "$err"
hello "$tmp/r-amd.json" --platform linux/amd64 --no-push --output "oci:$tmp/amd:hello"
expect_eq "the amd64 build alone" "$amd" "$(tail -n1 <<<"$out")"
expect_match "ran no step" '^steps: 0 ran, ' "$err"
expect_eq "the arm64 build alone writes an image, not an index" application/vnd.oci.image.manifest.v1+json \
    "$(jq -r .manifests[0].mediaType "$tmp/arm/index.json")"
expect_eq "its result file's root" "$(jq -r '.platforms[1].root_image' "$tmp/result.json" | sed 's,.*/,,')" "$(jq -r .root_image "$tmp/r-arm.json")"
run "index create over them" "$GROCKER" --root "$store" index create "oci:$tmp/merged:hello" --from "oci:$tmp/amd:hello" --from "oci:$tmp/arm:hello"
expect_eq "index create gives the one-command build's index" "$digest" "$(tail -n1 <<<"$out")"
cmp -s "$tmp/index.json" "$tmp/merged/blobs/sha256/${digest#sha256:}" || fail "index create wrote other bytes"
attachments_of() { jq -rs '[.[].manifests[] | select(.artifactType != null) | .digest] | sort | join(" ")' "$@"; }
expect_eq "index create carries each runner's attachments (SBOMs, provenance)" \
    "$(attachments_of "$tmp/amd/index.json" "$tmp/arm/index.json")" "$(attachments_of "$tmp/merged/index.json")"
[ -n "$(attachments_of "$tmp/merged/index.json")" ] || fail "the runners built alone have no attachments"
check_blobs "$tmp/merged"
run "index create into the registry" "$GROCKER" --root "$store" --tls-verify=false index create "docker://$R/team/grocker-hello:merged" \
    --from "oci:$tmp/amd:hello" --from "oci:$tmp/arm:hello"
expect_eq "the same index in the registry" "$digest" "$(tail -n1 <<<"$out")"
ok "each platform built alone gives the index's runner; grocker index create over them, the same index ($digest), with each runner's attachments"

# --- grocker run --platform linux/arm64, as root and rootless ------------------------------------
run "grocker run --platform linux/arm64" "$GROCKER" --root "$store" -q run --platform linux/arm64 "oci:$tmp/idx:hello" -- \
    /home/grocker/venv/bin/python -c 'import platform, grocker_hello; print(platform.machine())'
expect_eq "grocker run of the index's arm64 runner" aarch64 "$out"
run "grocker run of the index (this machine's)" "$GROCKER" --root "$store" -q run "oci:$tmp/idx:hello" -- uname -m
expect_eq "grocker run of the index, no platform" x86_64 "$out"
run "grocker run --platform linux/arm64 as $user" as_user -q run --platform linux/arm64 "oci:$tmp/idx:hello" -- uname -m
expect_eq "grocker run of the arm64 runner as $user" aarch64 "$out"
ok "grocker run --platform linux/arm64 runs the index's arm64 runner under qemu, as root and as $user; without --platform, this machine's"

# --- an app with C extensions, for both platforms ----------------------------------------------
sdist=$("$fixtures/debian-sdist" "$cache" markupsafe) || fail "no upstream sdist of MarkupSafe from Debian's sources"
"$fixtures/cext-app" "$tmp" "$sdist"
# Its index's files as a find-links folder (the same cache entries from one run to the next).
mkdir -p "$tmp/cext-links"
cp "$tmp"/index/simple/*/*.tar.gz "$tmp"/index/simple/*/*.whl "$tmp/cext-links/"
start=$SECONDS
run "build the C-extension app for both platforms" "$GROCKER" --root "$store" build "$tmp/cext-app" \
    -c "$tmp/cext-app/.grocker.yml" --no-index --find-links "$tmp/cext-links" --result-file "$tmp/cext.json" \
    --platform linux/amd64,linux/arm64 --no-push --output "oci:$tmp/cext:cext" --export-wheels "$tmp/wheels"
echo "the C-extension app's two-platform build took $((SECONDS - start)) s; steps:"
steps_ran "$err" | sed 's/^/  /'
# Each step of the summary (ran or cached) names its platform.
summary=$(sed -n '/^steps: [0-9]* ran, /,/^data: /p' <<<"$err" | sed '1d;$d')
for p in linux/amd64 linux/arm64; do
    grep -q "^  .*: .* ($p)$" <<<"$summary" || fail "no step of $p in the summary: $summary"
done
unnamed=$(grep -Ev ' \(linux/(amd64|arm64)\)( \(.*\))?$' <<<"$summary" || true)
expect_eq "the summary's steps without their platform" "" "$unnamed"
cext=$(tail -n1 <<<"$out")
expect_eq "the C-extension app's index in the layout" "$cext" "$(oci_digest "$tmp/cext" cext)"
cext_amd=$(jq -r '.platforms[0].hash' "$tmp/cext.json")
cext_arm=$(jq -r '.platforms[1].hash' "$tmp/cext.json")
for p in amd64:$cext_amd:"3e 00" arm64:$cext_arm:"b7 00"; do
    a=${p%%:*} m=${p#*:} want=${p##*:}
    m=${m%:*}
    for f in 'home/grocker/venv/lib/python3.11/site-packages/markupsafe/_speedups*.so' \
        'home/grocker/venv/lib/python3.11/site-packages/rx_cext/_answer*.so'; do
        layer_file "$tmp/cext" "$m" "$f" "$tmp/cext-files-$a"
        expect_eq "the e_machine of the $a runner's ${found#"$tmp/cext-files-$a"}" "$want" "$(e_machine "$found")"
    done
done
ls "$tmp/wheels" >"$tmp/wheels.list"
for w in MarkupSafe-2.1.2-cp311-cp311-linux_x86_64.whl MarkupSafe-2.1.2-cp311-cp311-linux_aarch64.whl \
    rx_cext-1.0-cp311-cp311-linux_x86_64.whl rx_cext-1.0-cp311-cp311-linux_aarch64.whl; do
    grep -qx "$w" "$tmp/wheels.list" || fail "--export-wheels wrote no $w: $(cat "$tmp/wheels.list")"
done
run "import the compiled modules under qemu" "$GROCKER" --root "$store" -q run --platform linux/arm64 "oci:$tmp/cext:cext" -- \
    /home/grocker/venv/bin/python -c 'import platform, markupsafe._speedups, rx_cext._answer, cext_app
print(platform.machine(), rx_cext._answer.answer(), markupsafe._speedups.escape("<a>"))'
expect_eq "the arm64 runner's compiled modules" "aarch64 42 &lt;a&gt;" "$out"
run "and natively" "$GROCKER" --root "$store" -q run --platform linux/amd64 "oci:$tmp/cext:cext" -- \
    /home/grocker/venv/bin/python -c 'import platform, markupsafe._speedups, rx_cext._answer, cext_app
print(platform.machine(), rx_cext._answer.answer(), markupsafe._speedups.escape("<a>"))'
expect_eq "the amd64 runner's compiled modules" "x86_64 42 &lt;a&gt;" "$out"
ok "MarkupSafe (its upstream sdist) and rx-cext compiled for each platform: AArch64 and x86-64 modules, wheels of each, and they import and run"

# --- ready-made wheels of both platforms: nothing emulated ----------------------------------------
# The wheels just exported (MarkupSafe's and rx-cext's, x86_64 and aarch64) beside the sdists, as
# an internal index holds them. The machine's platform resolves in its box; the arm64 side takes
# that resolution with its own wheels (the host picks them as pip there would), and installs
# them with the machine's Python over the machine's root: no arm64 step runs, not even pip.
mkdir -p "$tmp/ready-links"
cp "$tmp/cext-links"/* "$tmp"/wheels/MarkupSafe-* "$tmp"/wheels/rx_cext-* "$tmp/ready-links/"
start=$SECONDS
# (arm64 first in the index: the machine's platform is built first all the same. --refresh: each
# platform resolves again, as on a cold store, whatever the shared store kept of the last run.)
run "build the C-extension app from ready-made wheels" "$GROCKER" --root "$store" build "$tmp/cext-app" \
    -c "$tmp/cext-app/.grocker.yml" --no-index --find-links "$tmp/ready-links" --result-file "$tmp/ready.json" \
    --platform linux/arm64,linux/amd64 --refresh --no-push --output "oci:$tmp/ready:cext"
echo "the two-platform build from ready-made wheels took $((SECONDS - start)) s; steps:"
steps_ran "$err" | sed 's/^/  /'
expect_eq "the index's platforms, in the order given" "linux/arm64 linux/amd64" \
    "$(jq -r '[.platforms[].platform] | join(" ")' "$tmp/ready.json")"
expect_eq "the platforms built, the machine's first" "linux/amd64 linux/arm64" \
    "$(grep -Eo "${EV}platform linux/[a-z0-9]+$" <<<"$err" | sed 's,.* ,,' | xargs)"
expect_match "the arm64 resolution is the machine's, with arm64 files" \
    "dependencies of cext-app: the resolution of the machine's platform, with the files of linux/arm64" "$err"
expect_eq "arm64 steps run under emulation" "" "$(steps_ran "$err" | grep -E '\(linux/arm64\)$' | grep -Ev '^runner: ' || true)"
expect_no_match "a resolution or compile of arm64" '^(resolve|compile): .*\(linux/arm64\)' "$(steps_ran "$err")"
ready_arm=$(jq -r '.platforms[0].hash' "$tmp/ready.json")
for f in 'home/grocker/venv/lib/python3.11/site-packages/markupsafe/_speedups*.so' \
    'home/grocker/venv/lib/python3.11/site-packages/rx_cext/_answer*.so'; do
    layer_file "$tmp/ready" "$ready_arm" "$f" "$tmp/ready-files"
    expect_eq "the e_machine of the arm64 runner's ${found#"$tmp/ready-files"}" "b7 00" "$(e_machine "$found")"
done
# Its install steps, when they run (the dependencies' wheels are those of the build above, whose
# layer the step cache holds), run natively over the machine's root.
if grep -q '^runner: .*(linux/arm64)$' <<<"$(steps_ran "$err")"; then
    expect_match "arm64 installs over the machine's root" "runner: .*\(linux/arm64\): running over the machine's root \(linux/amd64\), natively" "$err"
fi
# What an arm64 machine builds: the same release alone in a fresh store, its root and compiler
# pulled from the registry (the example's, pushed above), everything there run under emulation
# (pip's resolution, the app's wheel, the install).
start=$SECONDS
run "build the arm64 runner alone in a fresh store" "$GROCKER" --root "$tmp/fresh-store" --tls-verify=false build "$tmp/cext-app" \
    -c "$tmp/cext-app/.grocker.yml" --no-index --find-links "$tmp/ready-links" --platform linux/arm64 \
    --image-prefix "$R/team" --no-push --output "oci:$tmp/ready-alone:cext"
echo "the emulated arm64 build took $((SECONDS - start)) s; steps:"
steps_ran "$err" | sed 's/^/  /'
expect_match "it resolved with pip, emulated" '^resolve: ' "$(steps_ran "$err")"
expect_match "it installed emulated" '^runner: dependencies of cext-app$' "$(steps_ran "$err")"
expect_eq "the arm64 runner built alone, emulated, is the index's" "$ready_arm" "$(tail -n1 <<<"$out")"
ok "ready-made wheels of both platforms: the arm64 side resolved from the machine's resolution and installed natively (no arm64 step emulated), and its runner is the one a fully emulated arm64 build makes ($ready_arm)"
# A constraint that says platform_machine: what the machine resolved may not be arm64's, which
# resolves with pip under emulation.
printf 'runtime: bookworm/3.11\npip_constraint: machine-constraints.txt\n' >"$tmp/machine.yml"
printf 'MarkupSafe==2.1.2; platform_machine != "s390x"\n' >"$tmp/machine-constraints.txt"
run "build with a constraint on platform_machine" "$GROCKER" --root "$store" build "$tmp/cext-app" \
    -c "$tmp/machine.yml" --no-index --find-links "$tmp/ready-links" --platform linux/amd64,linux/arm64 \
    --refresh --no-push --output "oci:$tmp/machine:cext"
expect_match "it says why arm64 resolves emulated" \
    "dependencies of cext-app \(linux/arm64\): resolved under emulation: the machine's resolution went through requirements that say platform_machine" "$err"
expect_match "arm64 resolved with pip" '^resolve: .*\(linux/arm64\)$' "$(steps_ran "$err")"
ok "a constraint on platform_machine: the arm64 side resolves with pip, emulated, and says why"
# A release whose aarch64 wheel requires more than its x86_64 one (as some do): the machine's
# resolution is not arm64's, which pip makes, emulated; the arm64 runner has what its wheel needs.
mkdir -p "$tmp/unlike-app/unlike_app" "$tmp/unlike-links"
cp "$tmp"/cext-links/rx_build_helper-*.whl "$tmp/unlike-links/"
printf '[build-system]\nrequires = ["setuptools>=61", "wheel"]\nbuild-backend = "setuptools.build_meta"\n[project]\nname = "unlike-app"\nversion = "1.0"\ndependencies = ["rx-unlike==1.0"]\n' \
    >"$tmp/unlike-app/pyproject.toml"
: >"$tmp/unlike-app/unlike_app/__init__.py"
printf 'runtime: bookworm/3.11\n' >"$tmp/unlike-app/.grocker.yml"
"$PY" - "$tmp/unlike-links" <<'EOF'
import base64, hashlib, sys, zipfile
def digest(b):
    return base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b"=").decode()
for arch, needs in (("x86_64", ""), ("aarch64", "Requires-Dist: rx-build-helper\n")):
    info = "rx_unlike-1.0.dist-info/"
    files = [("rx_unlike/__init__.py", b""),
             (info + "METADATA", ("Metadata-Version: 2.1\nName: rx-unlike\nVersion: 1.0\n" + needs).encode()),
             (info + "WHEEL", f"Wheel-Version: 1.0\nGenerator: grocker-test\nRoot-Is-Purelib: false\nTag: py3-none-linux_{arch}\n".encode())]
    record = "".join(f"{a},sha256={digest(b)},{len(b)}\n" for a, b in files) + info + "RECORD,,\n"
    files.append((info + "RECORD", record.encode()))
    with zipfile.ZipFile(f"{sys.argv[1]}/rx_unlike-1.0-py3-none-linux_{arch}.whl", "w") as z:
        for a, b in files:
            z.writestr(zipfile.ZipInfo(a, (1980, 1, 1, 0, 0, 0)), b)
EOF
run "build an app whose aarch64 wheel requires more" "$GROCKER" --root "$store" build "$tmp/unlike-app" \
    -c "$tmp/unlike-app/.grocker.yml" --no-index --find-links "$tmp/unlike-links" --platform linux/amd64,linux/arm64 \
    --refresh --no-push --output "oci:$tmp/unlike:unlike" --result-file "$tmp/unlike.json"
expect_match "it says why arm64 resolves emulated" \
    "dependencies of unlike-app \(linux/arm64\): resolved under emulation: 'rx_unlike-1.0-py3-none-linux_aarch64.whl' requires other distributions than 'rx_unlike-1.0-py3-none-linux_x86_64.whl'" "$err"
expect_match "arm64 resolved with pip" '^resolve: .*\(linux/arm64\)$' "$(steps_ran "$err")"
layer_file "$tmp/unlike" "$(jq -r '.platforms[1].hash' "$tmp/unlike.json")" \
    'home/grocker/venv/lib/python3.11/site-packages/rx_build_helper/__init__.py' "$tmp/unlike-files"
ok "an aarch64 wheel that requires more than the x86_64 one: the arm64 side resolves with pip, emulated, says why, and installs what it requires"

# --- the host's binfmt_misc rule for podman (grocker registers its own in each sandbox) ----------
# Registered (flags POF: the interpreter opened now, so it works in containers) only when the
# machine has no qemu-aarch64 rule, and only now: grocker's own steps above needed none. Removed
# at exit only if the test added it.
if [ ! -e "$binfmt/register" ]; then
    mount -t binfmt_misc binfmt_misc "$binfmt" || fail "cannot mount binfmt_misc on $binfmt"
    binfmt_mounted=1
fi
if [ ! -e "$binfmt/qemu-aarch64" ]; then
    conf=/usr/lib/binfmt.d/qemu-aarch64.conf
    [ -f "$conf" ] || fail "$conf is missing (Debian's qemu-user-static or binfmt-support)"
    # :NAME:M::MAGIC:MASK:INTERPRETER:FLAGS, Debian's magic and mask with the static interpreter.
    # (echo without -e: the kernel reads the \x escapes itself.)
    rule=$(awk -F: -v q="$qemu" '$2 == "qemu-aarch64" { OFS = ":"; $7 = q; $8 = "POF"; print }' "$conf")
    [ -n "$rule" ] || fail "no qemu-aarch64 rule in $conf"
    echo "$rule" >"$binfmt/register" || fail "cannot register qemu-aarch64 in $binfmt"
    binfmt_added=1
fi
grep -qx enabled "$binfmt/qemu-aarch64" || fail "the host's qemu-aarch64 rule is disabled"

# --- podman runs each platform ---------------------------------------------------------------------
for a in amd64 arm64; do
    id=$("${PODMAN[@]}" pull -q --tls-verify=false --arch $a "docker://$R/team/grocker-hello:1.0.0" 2>"$tmp/pull.err") ||
        fail "podman pull --arch $a: $(cat "$tmp/pull.err")"
    m=$amd
    [ $a = arm64 ] && m=$arm
    expect_eq "podman takes the $a runner (its config)" "$(jq -r .config.digest "$tmp/idx/blobs/sha256/${m#sha256:}")" "sha256:${id#sha256:}"
    got=$("${PODMAN[@]}" run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$id" uname -m 2>&1) ||
        fail "podman run of the $a runner failed: $got"
    want=x86_64
    [ $a = arm64 ] && want=aarch64
    expect_eq "uname -m in podman's $a runner" "$want" "$got"
    "${PODMAN[@]}" run --rm --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --name "www-$a" "$id" www \
        >"$tmp/www-$a.log" 2>&1 &
    www_pid=$!
    answer=
    for _ in $(seq 300); do answer=$(curl -sf http://127.0.0.1:8080/ 2>/dev/null) && break; sleep 0.2; done
    [ "$answer" = "hello, web, from grocker-greeting" ] || { cat "$tmp/www-$a.log" >&2; fail "the $a runner's www answered '$answer'"; }
    "${PODMAN[@]}" stop -t 5 "www-$a" >/dev/null 2>&1 || true
    wait "$www_pid" 2>/dev/null || true
    www_pid=
    # Its port free again before the next one.
    for _ in $(seq 50); do curl -sf http://127.0.0.1:8080/ >/dev/null 2>&1 || break; sleep 0.2; done
    ok "podman pulls the index's $a runner from the registry and runs it (--arch $a): uname -m says $want, www answers through nginx and uwsgi"
done

echo "all platform build checks passed"
