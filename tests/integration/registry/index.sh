#!/bin/bash
# grocker index create: one image index over per-platform images of one app and version,
# made from real amd64 and arm64 binaries (Debian's busybox-static of each architecture, from
# the mirror), labelled as grocker labels a runner:
#   - pushed to a registry: skopeo sees an OCI index with both platforms and picks each;
#     grocker copy/pull --platform pick each, and by default this machine's; the images'
#     layers mounted or already there, the index under the tag;
#   - written to an oci: layout and an oci-archive: skopeo, podman (load, run) and grocker run
#     take this machine's image of it;
#   - copied whole (copy, pull, push --all): the same index, byte for byte, between repositories,
#     into a layout and an archive and back into a registry (skopeo copy --all reads it);
#   - refused, saying why: two images of one platform, two apps, a docker-archive destination,
#     one image only, a bad platform.
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${GROCKER_TEST_CACHE:?}"
need_tools jq skopeo podman runc dpkg-deb apt-get docker-registry "$PY"
[ "$(id -u)" = 0 ] || fail "run as root"
setup grocker-registry-index
G=("$GROCKER" --root "$tmp/store" --tls-verify=false)
host=linux/$(dpkg --print-architecture)
[ "$host" = linux/amd64 ] || fail "this test is written for an amd64 machine (the other image is arm64)"

# --- an amd64 and an arm64 image of "tool 1.0" -------------------------------------------------
for arch in amd64 arm64; do
    deb=$("$fixtures/debian-deb" "$GROCKER_TEST_CACHE" "$arch" busybox-static | tail -n1) ||
        fail "no busybox-static for $arch from the mirror"
    dpkg-deb -x "$deb" "$tmp/$arch"
    run "the $arch image" "${G[@]}" append scratch "oci:$tmp/images:$arch" --platform "linux/$arch" \
        --dir "$tmp/$arch" --entrypoint /bin/busybox --label grocker.image.role=runner \
        --label grocker.app.name=tool --label grocker.app.version=1.0
done
amd=$(oci_digest "$tmp/images" amd64)
arm=$(oci_digest "$tmp/images" arm64)
# ELF e_machine: 0xb7 is AArch64, 0x3e x86-64.
expect_eq "the arm64 busybox is an AArch64 binary" "b7 00" "$(od -An -tx1 -j18 -N2 "$tmp/arm64/bin/busybox" | xargs)"
ok "an amd64 and an arm64 image of tool 1.0, from Debian's busybox-static of each architecture"

# --- into a registry -------------------------------------------------------------------------------
start_registry plain reg
R=$REGISTRY
run "push the amd64 image" "${G[@]}" -q copy "oci:$tmp/images:amd64" "docker://$R/team/tool:1.0-amd64"
run "push the arm64 image" "${G[@]}" -q copy "oci:$tmp/images:arm64" "docker://$R/team/tool:1.0-arm64"
mark
run "index create in the registry" "$GROCKER" --root "$tmp/empty" --tls-verify=false index create "docker://$R/team/tool:1.0" \
    --from "docker://$R/team/tool:1.0-amd64" --from "docker://$R/team/tool:1.0-arm64"
index=$(tail -n1 <<<"$out")
expect_match "it says what it wrote" "index: 2 platforms \(linux/amd64, linux/arm64\) of tool 1.0 written to docker://$R/team/tool:1.0" "$err"
expect_eq "no blob read but the configs" 2 "$(count_since GET '/blobs/sha256:')"
expect_eq "no blob sent" 0 "$(count_since PUT '/blobs/uploads/')"
skopeo inspect --tls-verify=false --raw "docker://$R/team/tool:1.0" >"$tmp/index.json" || fail "skopeo could not read the index"
expect_eq "skopeo sees an OCI index of both" "application/vnd.oci.image.index.v1+json amd64 $amd arm64 $arm" \
    "$(jq -r '[.mediaType, (.manifests[] | .platform.architecture, .digest)] | join(" ")' "$tmp/index.json")"
expect_eq "the digest printed is the index's" "$index" "sha256:$(sha256sum "$tmp/index.json" | cut -d' ' -f1)"
arm_layer=$("${G[@]}" inspect "oci:$tmp/images:arm64" | jq -r '.manifest.layers[0].digest')
expect_eq "skopeo picks arm64 when asked" "arm64 $arm_layer" \
    "$(skopeo inspect --tls-verify=false --override-arch arm64 "docker://$R/team/tool:1.0" | jq -r '"\(.Architecture) \(.Layers[0])"')"
ok "pushed: an OCI index skopeo reads, with both platforms; no layer read or sent"

run "grocker copy --platform linux/arm64" "${G[@]}" copy --platform linux/arm64 "docker://$R/team/tool:1.0" "oci:$tmp/picked:arm"
expect_eq "the arm64 image" "$arm" "$(oci_digest "$tmp/picked" arm)"
run "grocker pull (this machine's)" "${G[@]}" pull "docker://$R/team/tool:1.0" "oci:$tmp/picked:host"
expect_eq "the amd64 image" "$amd" "$(oci_digest "$tmp/picked" host)"
run_fails "a docker-archive of the index" "${G[@]}" index create "docker-archive:$tmp/x.tar" --from "oci:$tmp/images:amd64" --from "oci:$tmp/images:arm64"
expect_match "says it holds one image" "docker-archive:$tmp/x.tar: a docker-archive holds one image, not an index of 2 platforms: write it to oci:, oci-archive: or docker://, or copy one platform with --platform" "$err"
run "one platform of it into a docker-archive" "${G[@]}" copy --platform linux/arm64 "docker://$R/team/tool:1.0" "docker-archive:$tmp/arm.tar:tool:arm"
expect_eq "is the arm64 image" "$arm" "$(tail -n1 <<<"$out")"
ok "grocker copy and pull pick a platform of an index: --platform's, else this machine's; a docker-archive takes one"

# --- into an oci: layout and an oci-archive --------------------------------------------------------
run "index create into a layout" "${G[@]}" index create "oci:$tmp/layout:tool" --from "oci:$tmp/images:amd64" --from "oci:$tmp/images:arm64"
expect_eq "the same index as in the registry" "$index" "$(tail -n1 <<<"$out")"
expect_eq "the layout names it" "$index" "$(oci_digest "$tmp/layout" tool)"
check_blobs "$tmp/layout"
amd_layer=$("${G[@]}" inspect "oci:$tmp/images:amd64" | jq -r '.manifest.layers[0].digest')
expect_eq "skopeo takes this machine's image of it" "amd64 $amd_layer" \
    "$(skopeo inspect "oci:$tmp/layout:tool" | jq -r '"\(.Architecture) \(.Layers[0])"')"
out=$("$GROCKER" --root "$tmp/store" -q run "oci:$tmp/layout:tool" -- /bin/busybox echo hi 2>&1) || fail "grocker run of the index layout failed: $out"
expect_eq "grocker run runs this machine's image of it" hi "$out"
run "index create into an oci-archive" "${G[@]}" index create "oci-archive:$tmp/tool.tar:tool" --from "oci:$tmp/images:amd64" --from "oci:$tmp/images:arm64"
P=(podman --root "$tmp/podman" --runroot "$tmp/podman-run" --storage-driver vfs)
"${P[@]}" load -i "$tmp/tool.tar" >"$tmp/load.log" 2>&1 || fail "podman load of the index archive failed: $(cat "$tmp/load.log")"
loaded=$(sed -n 's/^Loaded image: //p' "$tmp/load.log" | tail -n1)
[ -n "$loaded" ] || fail "podman load named no image: $(cat "$tmp/load.log")"
out=$("${P[@]}" --cgroup-manager cgroupfs --runtime runc run --rm --network none --ulimit nofile=1024:1024 \
    --ulimit nproc=1024:1024 "$loaded" echo from podman 2>&1) ||
    fail "podman run of the loaded index failed: $out ($(cat "$tmp/load.log"))"
expect_eq "podman runs this machine's image of it" "from podman" "$out"
ok "an oci: layout and an oci-archive of the index: skopeo, grocker run and podman take this machine's image"

# --- an index copied whole: --all -------------------------------------------------------------------
run "grocker copy --all between repositories" "${G[@]}" copy --all "docker://$R/team/tool:1.0" "docker://$R/prod/tool:1.0"
expect_eq "prints the index's digest" "$index" "$(tail -n1 <<<"$out")"
expect_match "says it is whole" "an index of 2 images, copied whole" "$err"
skopeo inspect --tls-verify=false --raw "docker://$R/prod/tool:1.0" >"$tmp/prod.json" || fail "skopeo could not read the copied index"
cmp -s "$tmp/index.json" "$tmp/prod.json" || fail "the copied index is not the original byte for byte: $(cat "$tmp/prod.json")"
expect_eq "skopeo picks arm64 of the copy" "arm64 $arm_layer" \
    "$(skopeo inspect --tls-verify=false --override-arch arm64 "docker://$R/prod/tool:1.0" | jq -r '"\(.Architecture) \(.Layers[0])"')"
run "grocker pull --all into a layout" "${G[@]}" pull --all "docker://$R/team/tool:1.0" "oci:$tmp/whole:tool"
expect_eq "the layout names the index" "$index" "$(oci_digest "$tmp/whole" tool)"
check_blobs "$tmp/whole"
run "grocker copy --all from the layout to an oci-archive" "${G[@]}" copy --all "oci:$tmp/whole:tool" "oci-archive:$tmp/whole.tar:tool"
expect_eq "the same index" "$index" "$(tail -n1 <<<"$out")"
run "grocker push --all of the archive" "${G[@]}" push --all "oci-archive:$tmp/whole.tar:tool" "docker://$R/mirror/tool:1.0"
expect_eq "the same index pushed" "$index" "$(tail -n1 <<<"$out")"
run "skopeo copy --all of what it pushed (every manifest and blob checked)" skopeo copy -q --all --src-tls-verify=false \
    "docker://$R/mirror/tool:1.0" "oci:$tmp/mirror-check:tool"
expect_eq "skopeo's copy is the index" "$index" "$(oci_digest "$tmp/mirror-check" tool)"
run "grocker copy --all of one image copies it" "${G[@]}" copy --all "oci:$tmp/images:arm64" "oci:$tmp/one:arm"
expect_eq "the arm64 image" "$arm" "$(tail -n1 <<<"$out")"
run_fails "--all into a docker-archive" "${G[@]}" copy --all "oci:$tmp/layout:tool" "docker-archive:$tmp/x.tar"
expect_match "says it holds one image" "docker-archive:$tmp/x.tar: a docker-archive holds one image, not the index of 2 images that --all copies: write it to oci:, oci-archive: or docker://, or copy one platform with --platform" "$err"
run_fails "--all with --platform" "${G[@]}" copy --all --platform linux/arm64 "oci:$tmp/layout:tool" "oci:$tmp/x:x"
expect_match "says they exclude each other" "--platform excludes --all" "$err"
# An index that also lists an artifact (OCI 1.1: the empty config, an in-toto layer), as build
# tools attach attestations: copied as it is, there and back.
cp -a "$tmp/layout" "$tmp/withart"
add_blob() { # FILE: into the layout; prints its digest and size
    local d
    d=$(sha256sum "$1" | cut -d' ' -f1)
    cp "$1" "$tmp/withart/blobs/sha256/$d"
    echo "sha256:$d $(stat -c %s "$1")"
}
printf '{}' >"$tmp/empty.json"
read -r e_d e_s < <(add_blob "$tmp/empty.json")
printf '{"_type":"https://in-toto.io/Statement/v1"}' >"$tmp/statement.json"
read -r s_d s_s < <(add_blob "$tmp/statement.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.in-toto+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.in-toto+json","digest":"%s","size":%s}]}' \
    "$e_d" "$e_s" "$s_d" "$s_s" >"$tmp/artifact.json"
read -r a_d a_s < <(add_blob "$tmp/artifact.json")
jq -c --arg d "$a_d" --argjson s "$a_s" '.manifests += [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": $d, "size": $s}]' \
    "$tmp/index.json" >"$tmp/artindex.json"
read -r i_d i_s < <(add_blob "$tmp/artindex.json")
jq --arg d "$i_d" --argjson s "$i_s" \
    '.manifests |= map(if .annotations["org.opencontainers.image.ref.name"] == "tool" then .digest = $d | .size = $s else . end)' \
    "$tmp/layout/index.json" >"$tmp/withart/index.json"
run "grocker push --all of an index with an artifact" "${G[@]}" push --all "oci:$tmp/withart:tool" "docker://$R/art/tool:1.0"
expect_eq "its digest" "$i_d" "$(tail -n1 <<<"$out")"
run "grocker pull --all of it" "${G[@]}" pull --all "docker://$R/art/tool:1.0" "oci:$tmp/artback:tool"
expect_eq "the same index back" "$i_d" "$(oci_digest "$tmp/artback" tool)"
check_blobs "$tmp/artback"
cmp -s "$tmp/artifact.json" "$tmp/artback/blobs/sha256/${a_d#sha256:}" || fail "the artifact's manifest came back changed"

# An index of indexes (not one grocker writes): refused by --all, saying how to copy one platform.
cp -a "$tmp/layout" "$tmp/nested"
inner=$(oci_digest "$tmp/nested" tool)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"%s","size":%s}]}' \
    "$inner" "$(stat -c %s "$tmp/nested/blobs/sha256/${inner#sha256:}")" >"$tmp/outer.json"
outer=sha256:$(sha256sum "$tmp/outer.json" | cut -d' ' -f1)
cp "$tmp/outer.json" "$tmp/nested/blobs/sha256/${outer#sha256:}"
jq --arg d "$outer" --argjson s "$(stat -c %s "$tmp/outer.json")" \
    '.manifests |= map(if .annotations["org.opencontainers.image.ref.name"] == "tool" then .digest = $d | .size = $s else . end)' \
    "$tmp/layout/index.json" >"$tmp/nested/index.json"
run_fails "--all of an index of indexes" "${G[@]}" copy --all "oci:$tmp/nested:tool" "oci:$tmp/x:x"
expect_match "says why and what to do" "its index $outer lists $inner \(application/vnd.oci.image.index.v1\+json\), not an image: an index of indexes is not copied whole; copy one platform of it with --platform" "$err"
ok "grocker copy/pull/push --all: the index byte for byte, between repositories, into a layout and an archive and back; one image as it is; an index listing an artifact there and back; refused into a docker-archive, with --platform, and for an index of indexes"

# --- refused -------------------------------------------------------------------------------------
run_fails "two images of one platform" "${G[@]}" index create "oci:$tmp/x:x" --from "oci:$tmp/images:amd64" --from "oci:$tmp/picked:host"
expect_match "names both" "oci:$tmp/images:amd64 and oci:$tmp/picked:host are both for linux/amd64: an index holds one image a platform; give one of each" "$err"
run "another app" "${G[@]}" append "oci:$tmp/images:arm64" "oci:$tmp/images:other" --label grocker.app.version=2.0
run_fails "two apps" "${G[@]}" index create "oci:$tmp/x:x" --from "oci:$tmp/images:amd64" --from "oci:$tmp/images:other"
expect_match "says which" "oci:$tmp/images:amd64 is 'tool 1.0', oci:$tmp/images:other is 'tool 2.0': an index is one app and version on several platforms" "$err"
run_fails "one image" "${G[@]}" index create "oci:$tmp/x:x" --from "oci:$tmp/images:amd64"
expect_match "asks for two" "an index needs two images or more" "$err"
run_fails "a bad platform" "${G[@]}" copy --platform linux "oci:$tmp/layout:tool" "oci:$tmp/x:x"
expect_match "says how to write one" "'linux' is not a platform: write OS/ARCH\[/VARIANT\], as linux/amd64 or linux/arm64" "$err"
run_fails "a platform the index lacks" "${G[@]}" copy --platform linux/riscv64 "oci:$tmp/layout:tool" "oci:$tmp/x:x"
expect_match "names the platforms it has" "the index has no image for linux/riscv64 \(it has: linux/amd64, linux/arm64\); pick one of them \(--platform\)" "$err"
run_fails "the same from the registry" "${G[@]}" copy --platform linux/riscv64 "docker://$R/team/tool:1.0" "oci:$tmp/x:x"
expect_match "names them too" "has no image for linux/riscv64 \(it has: linux/amd64, linux/arm64\)" "$err"
[ ! -e "$tmp/x/index.json" ] || fail "a refused command wrote its destination"
ok "refused with the reason: two images of one platform, two apps, one image, a bad platform, a platform the index lacks"
