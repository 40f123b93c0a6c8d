#!/bin/bash
# grocker against a real docker-registry (distribution 2.8) over plain HTTP on loopback:
# push and pull with skopeo interop both ways (same digests), a re-push that uploads nothing,
# a cross-repository mount, a chunked upload of a large layer, platform selection in an index,
# `inspect docker://`, pull by digest, and the error for an unknown repository or tag.
#
# Run by `meson test` with GROCKER (the binary); standalone: GROCKER=build/src/grocker $0.
# A missing tool is a failure, never a skip. KEEP_TMP=1 keeps the temp folder.
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"

: "${GROCKER:?GROCKER must name the grocker binary}"
[ -x "$GROCKER" ] || fail "GROCKER='$GROCKER' is not an executable"
need_tools skopeo docker-registry openssl jq curl sha256sum "$PY"

setup grocker-registry-plain
cd "$tmp"
g() { "$GROCKER" -q --root "$tmp/store" "$@"; }

start_registry plain reg
R=$REGISTRY
ok "registry at $REGISTRY_URL (storage and logs in $REGISTRY_DIR)"

# --- images ------------------------------------------------------------------------------------
mkdir -p app/etc app/bin data
printf 'hello from grocker\n' >app/etc/greeting
seq 1 20000 >app/bin/numbers
head -c $((1024 * 1024)) /dev/urandom >data/random.bin
run "grocker append (app)" g append scratch oci:img:v1 --dir app --dir data:/data --cmd /bin/true
D=$(tail -n1 <<<"$out")
[[ $D =~ ^sha256:[0-9a-f]{64}$ ]] || fail "grocker append printed '$out', not a digest"
run "skopeo inspect --raw oci:img:v1" skopeo inspect --raw oci:img:v1
manifest=$out
expect_eq "local manifest digest" "$D" "sha256:$(printf '%s' "$manifest" | sha256sum | cut -d' ' -f1)"
layers=$(jq -r '.layers[].digest' <<<"$manifest")

# --- grocker pushes, skopeo reads ----------------------------------------------------------------
mark
run "grocker copy oci: -> docker://" g copy oci:img:v1 "docker://$R/test/app:v1"
expect_match "grocker copy prints the pushed digest" "$D" "$out"
run "skopeo inspect --raw of grocker's push" skopeo inspect --raw --tls-verify=false "docker://$R/test/app:v1"
expect_eq "manifest digest in the registry" "$D" "sha256:$(printf '%s' "$out" | sha256sum | cut -d' ' -f1)"
expect_eq "manifest bytes in the registry" "$manifest" "$out"
run "skopeo copy back" skopeo copy -q --src-tls-verify=false "docker://$R/test/app:v1" oci:back:v1
expect_eq "digest of skopeo's copy of grocker's push" "$D" "$(oci_digest back v1)"
check_blobs back
[ "$(count_since PUT '^/v2/test/app/manifests/v1$')" -ge 1 ] || fail "no manifest PUT in the access log: $(requests_since)"
ok "grocker pushed $D; skopeo reads it back with the same digest"

# --- a second push of the same image uploads nothing -------------------------------------------------
mark
run "grocker copy (again)" g copy oci:img:v1 "docker://$R/test/app:v1"
expect_match "second push prints the digest" "$D" "$out"
uploads=$(requests_since | awk '$1 ~ /^(POST|PATCH|PUT)$/ && $2 ~ /\/blobs\/uploads\//')
[ -z "$uploads" ] || fail "the second push of an unchanged image uploaded blobs: $uploads"
ok "second push sent no blob ($(count_since HEAD '/blobs/') HEAD requests)"

# --- a push to another repository of the same registry mounts -----------------------------------------
mark
run "grocker copy to a second repository" g copy oci:img:v1 "docker://$R/test/app2:v1"
expect_match "push to app2 prints the digest" "$D" "$out"
for b in $layers; do
    b_re=${b//:/(:|%3A)}
    mounts=$(requests_since | grep -E "^POST /v2/test/app2/blobs/uploads/[?].*mount=$b_re" || true)
    [ -n "$mounts" ] || fail "layer $b was not mounted into test/app2: $(requests_since)"
    grep -qE 'from=test(/|%2F)app(&|$| )' <<<"$mounts" || fail "mount of $b does not name from=test/app: $mounts"
    grep -qE ' 201$' <<<"$mounts" || fail "the registry did not accept the mount of $b (201): $mounts"
    expect_eq "uploads of layer $b into test/app2 (mounted, not uploaded)" 0 \
        "$(count_since PUT "^/v2/test/app2/blobs/uploads/.*digest=$b_re")"
done
# A layer goes up as POST, PATCH..., PUT?digest=: a mounted layer has no PATCH. Blobs that were
# not mounted are small (the config) and go up monolithic (POST, PUT with the body).
expect_eq "PATCH requests on test/app2 (everything mounted or monolithic)" 0 \
    "$(count_since PATCH '^/v2/test/app2/blobs/uploads/')"
run "skopeo inspect --raw test/app2" skopeo inspect --raw --tls-verify=false "docker://$R/test/app2:v1"
expect_eq "digest in test/app2" "$D" "sha256:$(printf '%s' "$out" | sha256sum | cut -d' ' -f1)"
ok "push to a second repository mounted every layer, uploaded none"

# --- skopeo pushes, grocker pulls -----------------------------------------------------------------------
mkdir -p other
head -c 300000 /dev/urandom >other/blob
printf 'other\n' >other/name
run "grocker append (other)" g append scratch oci:img-other:v1 --dir other
run "skopeo copy to the registry" skopeo copy -q --dest-tls-verify=false oci:img-other:v1 "docker://$R/test/other:v1"
run "skopeo inspect --raw test/other" skopeo inspect --raw --tls-verify=false "docker://$R/test/other:v1"
S=sha256:$(printf '%s' "$out" | sha256sum | cut -d' ' -f1)
run "grocker pull" g pull "$R/test/other:v1" oci:pulled:v1
[ -z "$out" ] || expect_match "grocker pull prints the digest" "$S" "$out"
expect_eq "digest of grocker's pull of skopeo's push" "$S" "$(oci_digest pulled v1)"
check_blobs pulled
run "grocker unpack of the pulled image" g unpack oci:pulled:v1 unpacked-other
cmp -s other/blob unpacked-other/blob || fail "unpacked blob differs from the original"
run "grocker copy docker:// -> oci:" g copy "docker://$R/test/other:v1" oci:pulled2:v1
expect_eq "digest of grocker copy docker:// -> oci:" "$S" "$(oci_digest pulled2 v1)"
ok "skopeo pushed $S; grocker pulls it with the same digest"

# The same image as skopeo writes it with docker media types (v2s2): grocker keeps the manifest
# as the registry has it, so the digest is still the registry's.
run "skopeo copy --format v2s2 to the registry" skopeo copy -q --format v2s2 --dest-tls-verify=false \
    oci:img-other:v1 "docker://$R/test/other-v2s2:v1"
run "skopeo inspect --raw test/other-v2s2" skopeo inspect --raw --tls-verify=false "docker://$R/test/other-v2s2:v1"
S2=sha256:$(printf '%s' "$out" | sha256sum | cut -d' ' -f1)
expect_eq "skopeo pushed a docker v2s2 manifest" application/vnd.docker.distribution.manifest.v2+json \
    "$(jq -r .mediaType <<<"$out")"
run "grocker pull (v2s2)" g pull "$R/test/other-v2s2:v1" oci:pulled-v2s2:v1
[ -z "$out" ] || expect_match "grocker pull (v2s2) prints the digest" "$S2" "$out"
expect_eq "digest of grocker's pull of skopeo's v2s2 push" "$S2" "$(oci_digest pulled-v2s2 v1)"
check_blobs pulled-v2s2
run "grocker unpack of the pulled v2s2 image" g unpack oci:pulled-v2s2:v1 unpacked-v2s2
cmp -s other/blob unpacked-v2s2/blob || fail "unpacked blob (v2s2) differs from the original"
ok "skopeo pushed $S2 (docker v2s2); grocker pulls it with the same digest"

# --- pull by digest ----------------------------------------------------------------------------------
run "grocker pull by digest" g pull "$R/test/app@$D" oci:bydigest:latest
ref=$(jq -r '.manifests[0].digest' bydigest/index.json)
expect_eq "digest of a pull by digest" "$D" "$ref"
ok "pull by digest"

# --- inspect docker:// ------------------------------------------------------------------------------
run "grocker inspect oci:" g inspect oci:img:v1
local_config=$(jq -S .config <<<"$out")
run "grocker inspect docker://" g inspect "docker://$R/test/app:v1"
expect_eq "inspect docker:// digest" "$D" "$(jq -r .digest <<<"$out")"
expect_eq "inspect docker:// config" "$local_config" "$(jq -S .config <<<"$out")"
expect_eq "inspect docker:// manifest" "$(jq -S . <<<"$manifest")" "$(jq -S .manifest <<<"$out")"
ok "grocker inspect docker:// shows the pushed manifest and config"

# --- a large layer goes through a chunked upload -------------------------------------------------------
mkdir -p big
head -c $((40 * 1024 * 1024)) /dev/urandom >big/random.bin
run "grocker append (big)" g append scratch oci:img-big:v1 --dir big
B=$(tail -n1 <<<"$out")
run "skopeo inspect --raw oci:img-big:v1" skopeo inspect --raw oci:img-big:v1
big_layer=$(jq -r '.layers[0].digest' <<<"$out")
big_size=$(jq -r '.layers[0].size' <<<"$out")
mark
run "grocker push (big layer)" g copy oci:img-big:v1 "docker://$R/test/big:v1"
expect_match "big push prints the digest" "$B" "$out"
# The upload session that ended with the PUT naming the layer: its PATCH requests are the chunks.
final_put=$(requests_since | grep -E "^PUT /v2/test/big/blobs/uploads/[^ ]*digest=${big_layer//:/(:|%3A)}" || true)
expect_eq "final PUTs of the big layer" 1 "$(grep -c . <<<"$final_put" || true)"
session=$(sed -E 's|^PUT /v2/test/big/blobs/uploads/([^?/ ]+).*|\1|' <<<"$final_put")
patches=$(count_since PATCH "^/v2/test/big/blobs/uploads/$session([?]|$)")
[ "$patches" -ge 1 ] || fail "the $big_size-byte layer was not uploaded in chunks (no PATCH in its session $session): $(requests_since)"
run "skopeo copy back (big)" skopeo copy -q --src-tls-verify=false "docker://$R/test/big:v1" oci:big-back:v1
expect_eq "digest of the big image read back" "$B" "$(oci_digest big-back v1)"
expect_eq "big layer bytes" "$big_layer" "$(sha256_of "big-back/blobs/sha256/${big_layer#sha256:}")"
ok "the $big_size-byte layer went up in $patches PATCH request(s) and a PUT; read back intact"

# --- a multi-platform index: grocker picks linux/amd64 ---------------------------------------------------
# Built by hand in an OCI layout: arm64/v8 first, then a BuildKit-style attestation (unknown/unknown),
# then amd64; pushed as it is with skopeo --all --preserve-digests.
mkdir -p plat-amd64 plat-arm64
echo amd64 >plat-amd64/arch
echo arm64 >plat-arm64/arch
run "grocker append (amd64)" g append scratch oci:multi:amd64 --dir plat-amd64
A=$(tail -n1 <<<"$out")
run "grocker append (arm64 base)" g append scratch oci:multi:arm64-base --dir plat-arm64
arm_base=$(tail -n1 <<<"$out")
put_blob() { # FILE -> prints digest, stores the file in multi/blobs
    local d
    d=$(sha256sum "$1" | cut -d' ' -f1)
    cp "$1" "multi/blobs/sha256/$d"
    echo "sha256:$d"
}
blob() { cat "multi/blobs/sha256/${1#sha256:}"; }
arm_manifest=$(blob "$arm_base")
blob "$(jq -r .config.digest <<<"$arm_manifest")" | jq -c '.architecture = "arm64" | .variant = "v8"' | tr -d '\n' >arm-config.json
arm_config=$(put_blob arm-config.json)
jq -c --arg d "$arm_config" --argjson s "$(stat -c %s arm-config.json)" '.config.digest = $d | .config.size = $s' \
    <<<"$arm_manifest" | tr -d '\n' >arm-manifest.json
ARM=$(put_blob arm-manifest.json)
printf '{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document"}' >att-layer.json
att_layer=$(put_blob att-layer.json)
printf '{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":["%s"]}}' "$att_layer" >att-config.json
att_config=$(put_blob att-config.json)
jq -cn --arg c "$att_config" --argjson cs "$(stat -c %s att-config.json)" --arg l "$att_layer" \
    --argjson ls "$(stat -c %s att-layer.json)" '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
      layers: [{mediaType: "application/vnd.in-toto+json", digest: $l, size: $ls,
                annotations: {"in-toto.io/predicate-type": "https://spdx.dev/Document"}}]}' | tr -d '\n' >att-manifest.json
ATT=$(put_blob att-manifest.json)
size_of() { stat -c %s "multi/blobs/sha256/${1#sha256:}"; }
jq -cn --arg arm "$ARM" --argjson arms "$(size_of "$ARM")" --arg att "$ATT" --argjson atts "$(size_of "$ATT")" \
    --arg amd "$A" --argjson amds "$(size_of "$A")" '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [
        {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $arm, size: $arms,
         platform: {architecture: "arm64", os: "linux", variant: "v8"}},
        {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $att, size: $atts,
         platform: {architecture: "unknown", os: "unknown"},
         annotations: {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": $amd}},
        {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $amd, size: $amds,
         platform: {architecture: "amd64", os: "linux"}}]}' | tr -d '\n' >index.json
I=$(put_blob index.json)
jq -n --arg i "$I" --argjson s "$(size_of "$I")" '{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.index.v1+json",
    digest: $i, size: $s, annotations: {"org.opencontainers.image.ref.name": "v1"}}]}' >multi/index.json
run "skopeo copy --all (index)" skopeo copy -q --all --preserve-digests --dest-tls-verify=false oci:multi:v1 "docker://$R/test/multi:v1"
run "skopeo inspect --raw test/multi" skopeo inspect --raw --tls-verify=false "docker://$R/test/multi:v1"
expect_eq "index digest in the registry" "$I" "sha256:$(printf '%s' "$out" | sha256sum | cut -d' ' -f1)"
run "grocker pull (index)" g pull "$R/test/multi:v1" oci:multi-pulled:v1
expect_eq "grocker picked the linux/amd64 image of the index" "$A" "$(oci_digest multi-pulled v1)"
check_blobs multi-pulled
run "grocker unpack (amd64)" g unpack oci:multi-pulled:v1 multi-unpacked
expect_eq "unpacked image's file" amd64 "$(cat multi-unpacked/arch)"
run "grocker inspect docker:// (index)" g inspect "docker://$R/test/multi:v1"
expect_eq "inspect of an index shows the amd64 image's config" amd64 "$(jq -r .config.architecture <<<"$out")"
ok "pull of an index (arm64/v8, attestation, amd64) picked linux/amd64 $A"

# --- errors: unknown repository, unknown tag --------------------------------------------------------
for what in "unknown repository:test/nothing:v1" "unknown tag:test/app:nope"; do
    name=${what#*:}
    repo=${name%:*}
    run_fails "grocker inspect of an $what" g inspect "docker://$R/$name"
    expect_eq "exit status for an ${what%%:*}" 1 "$rc"
    expect_one_line "error for an ${what%%:*}" "$err"
    expect_match "error names the registry" "$R" "$err"
    expect_match "error names the repository" "$repo" "$err"
    expect_match "error shows the registry's code" "MANIFEST_UNKNOWN" "$err"
    run_fails "grocker pull of an $what" g pull "$R/$name" oci:nothing:v1
    expect_eq "pull exit status for an ${what%%:*}" 1 "$rc"
    expect_one_line "pull error for an ${what%%:*}" "$err"
    expect_match "pull error names the registry and code" "$R.*MANIFEST_UNKNOWN|MANIFEST_UNKNOWN.*$R" "$err"
done
ok "unknown repository and tag: exit 1, one line naming $R, the repository and MANIFEST_UNKNOWN"

echo "plain: all checks passed"
