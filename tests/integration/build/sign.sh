#!/bin/bash
# Signatures, end to end, with real verifiers:
#   - grocker build --sign-key (a cosign key pair grocker generated, one written by Python as
#     cosign does, a PEM key from openssl) pushes to distribution 2.8 a Sigstore bundle as a
#     referrer and cosign's .sig tag; grocker verify accepts both; sigstore's own JavaScript
#     verifier (@sigstore/verify) accepts the bundle, openssl the .sig layer's signature;
#   - a wrong key fails, naming each signature and why; a layer altered in the registry's
#     storage fails verify, naming the blob; an unsigned image says how to sign it;
#   - the signature survives grocker copy between registries and into an oci-archive; grocker
#     sign signs an oci: layout; signing again does not grow the .sig tag; four signers at once
#     lose no signature;
#   - a wrong password fails the build before any work.
# Uses the warm store of tests/integration/build/build.sh ($GROCKER_TEST_CACHE/build-store).
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${GROCKER_SOURCE_ROOT:?}"
: "${GROCKER_TEST_CACHE:?}"
need_tools tar jq node npm openssl skopeo docker-registry base64 "$PY"
"$PY" -c 'import nacl.secret, cryptography' 2>/dev/null ||
    fail "$PY lacks python3-nacl or python3-cryptography: run scripts/install-deps"
[ "$(id -u)" = 0 ] || fail "run as root"
setup grocker-build-sign
store=$GROCKER_TEST_CACHE/build-store
app=$GROCKER_SOURCE_ROOT/example/hello

npmdir=$GROCKER_TEST_CACHE/npm-sigstore
"$fixtures/npm-sigstore.sh" "$npmdir" || fail "could not install sigstore's verifier"
cp "$fixtures/sigstore-verify.mjs" "$npmdir/"
outside() { node "$npmdir/sigstore-verify.mjs" "$@"; }

mkdir -p "$tmp/links" "$tmp/keys/py" "$tmp/keys/other"
tar -czf "$tmp/links/grocker-greeting-1.0.0.tar.gz" --owner=0 --group=0 --mtime=@0 --sort=name \
    -C "$GROCKER_SOURCE_ROOT/example" --transform 's,^greeting,grocker-greeting-1.0.0,' greeting
start_registry plain reg
R=$REGISTRY
g() { "$GROCKER" --root "$store" --tls-verify=false "$@"; }
fresh=0
gf() { fresh=$((fresh + 1)); "$GROCKER" --root "$tmp/fresh$fresh" --tls-verify=false "$@"; }

# --- keys: grocker's, Python's (cosign's format written by an outsider), openssl's PEM ----------
(cd "$tmp/keys" && COSIGN_PASSWORD=s3cret-pw "$GROCKER" generate-key-pair) >/dev/null 2>&1 ||
    fail "grocker generate-key-pair failed"
expect_eq "the private key's mode" 600 "$(stat -c %a "$tmp/keys/cosign.key")"
expect_match "cosign's PEM type" "^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----" "$(head -n1 "$tmp/keys/cosign.key")"
COSIGN_PASSWORD=py-pw "$PY" "$fixtures/make-cosign-key.py" "$tmp/keys/py" || fail "make-cosign-key.py failed"
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/keys/other/ec.pem" 2>/dev/null
openssl ec -in "$tmp/keys/other/ec.pem" -pubout -out "$tmp/keys/other/ec.pub" 2>/dev/null
run_fails "generate-key-pair over existing files" env COSIGN_PASSWORD=x "$GROCKER" generate-key-pair --output-key-prefix "$tmp/keys/cosign"
expect_eq "its message" "grocker: '$tmp/keys/cosign.key' exists: remove it first or give another --output-key-prefix" "$err"
ok "key pairs: grocker's (cosign's format, mode 0600), Python's as cosign writes them, openssl's PEM"

# --- build, push and sign ---------------------------------------------------------------------------
build() { # PREFIX [options]
    local prefix=$1
    shift
    g build "$app" -c "$app/.grocker.yml" --no-index --find-links "$tmp/links" --image-prefix "$prefix" "$@"
}
run_fails "a wrong password" env COSIGN_PASSWORD=wrong "$GROCKER" --root "$store" build "$app" \
    -c "$app/.grocker.yml" --no-index --find-links "$tmp/links" --image-prefix "$R/team" --sign-key "$tmp/keys/cosign.key"
expect_eq "its message" "grocker: error: the password does not open '$tmp/keys/cosign.key' (a wrong password, or a damaged file)" "$err"
run_fails "an encrypted key with no password" env -u COSIGN_PASSWORD "$GROCKER" --root "$store" build "$app" \
    -c "$app/.grocker.yml" --image-prefix "$R/team" --sign-key "$tmp/keys/cosign.key" </dev/null
expect_eq "its message" "grocker: the key '$tmp/keys/cosign.key' is encrypted: set COSIGN_PASSWORD to its password" "$err"
run "build --sign-key" env COSIGN_PASSWORD=s3cret-pw "$GROCKER" --root "$store" --tls-verify=false build "$app" \
    -c "$app/.grocker.yml" --no-index --find-links "$tmp/links" --image-prefix "$R/team" \
    --sign-key "$tmp/keys/cosign.key" --output "oci:$tmp/out:hello"
digest=$(tail -n1 <<<"$out")
hex=${digest#sha256:}
expect_match "it says it signed" "sign: a Sigstore bundle with the key " "$err"
expect_match "and pushed the .sig tag" "sign: cosign's sha256-$hex.sig pushed beside it" "$err"
expect_match "four attachments" "attestations: attached to $R/team/grocker-hello:1.0.0 \(4 referrers\)" "$err"
for s in s3cret-pw; do grep -rqF -- "$s" "$store/logs" && fail "the key's password is in a build log"; done
run "grocker verify docker://" gf verify --key "$tmp/keys/cosign.pub" "docker://$R/team/grocker-hello:1.0.0"
expect_match "both signatures verified" "^verified docker://$R/team/grocker-hello:1.0.0 \($digest, every blob checked\): sigstore bundle sha256:[0-9a-f]{64}; cosign sha256:[0-9a-f]{12}… \(\.sig\), layer 1$" "$out"
run "grocker verify oci:" g verify --key "$tmp/keys/cosign.pub" "oci:$tmp/out:hello"
expect_match "the layout's bundle verified" "^verified oci:$tmp/out:hello \($digest, every blob checked\): sigstore bundle sha256:" "$out"
ok "build --sign-key: a bundle and cosign's .sig in the registry, a bundle in the layout; grocker verify accepts them"
referrers_now() { skopeo inspect --tls-verify=false --raw "docker://$R/team/grocker-hello:sha256-$hex" | jq -r '[.manifests[].digest] | sort | join(" ")'; }
before=$(referrers_now)
layout_bundles() { jq '[.manifests[] | select(.artifactType == "application/vnd.dev.sigstore.bundle.v0.3+json")] | length' "$tmp/out/index.json"; }
expect_eq "the layout's bundles" 1 "$(layout_bundles)"
run "the same build again, with the key" env COSIGN_PASSWORD=s3cret-pw "$GROCKER" --root "$store" --tls-verify=false build "$app" \
    -c "$app/.grocker.yml" --no-index --find-links "$tmp/links" --image-prefix "$R/team" --sign-key "$tmp/keys/cosign.key" \
    --output "oci:$tmp/out:hello"
expect_match "it says they were there" "attestations: already attached to $R/team/grocker-hello:1.0.0 \(4 referrers\)" "$err"
expect_eq "the referrers after it (no second bundle of the key)" "$before" "$(referrers_now)"
expect_eq "the layout's bundles after it (the one there kept)" 1 "$(layout_bundles)"
run "grocker verify oci: after it" g verify --key "$tmp/keys/cosign.pub" "oci:$tmp/out:hello"
ok "the same signed build again adds no signature, to the registry or the oci: layout: this key's bundle is there, checked"

# --- outsiders -------------------------------------------------------------------------------------
run "the bundle" gf attestations --print sigstore "docker://$R/team/grocker-hello:1.0.0"
printf '%s\n' "$out" >"$tmp/bundle.json"
run "sigstore's verifier accepts it" outside "$tmp/bundle.json" "$tmp/keys/cosign.pub" "$digest"
expect_match "its verdict" "^verified: https://sigstore.dev/cosign/sign/v1 of $digest, key " "$out"
run_fails "sigstore's verifier with another key" outside "$tmp/bundle.json" "$tmp/keys/py/cosign.pub" "$digest"
run "cosign's .sig tag" skopeo inspect --tls-verify=false --raw "docker://$R/team/grocker-hello:sha256-$hex.sig"
printf '%s\n' "$out" >"$tmp/sig-manifest.json"
expect_eq "its one layer" "application/vnd.dev.cosign.simplesigning.v1+json" "$(jq -r '[.layers[].mediaType] | join(" ")' "$tmp/sig-manifest.json")"
layer=$(jq -r '.layers[0].digest' "$tmp/sig-manifest.json")
curl -sf "http://$R/v2/team/grocker-hello/blobs/$layer" >"$tmp/payload.json" || fail "cannot read the .sig payload"
expect_eq "the payload names the image" "$R/team/grocker-hello $digest cosign container image signature" \
    "$(jq -r '"\(.critical.identity["docker-reference"]) \(.critical.image["docker-manifest-digest"]) \(.critical.type)"' "$tmp/payload.json")"
jq -r '.layers[0].annotations["dev.cosignproject.cosign/signature"]' "$tmp/sig-manifest.json" | base64 -d >"$tmp/payload.sig"
run "openssl checks the .sig signature" openssl dgst -sha256 -verify "$tmp/keys/cosign.pub" -signature "$tmp/payload.sig" "$tmp/payload.json"
expect_eq "openssl's verdict" "Verified OK" "$out"
ok "sigstore's verifier accepts the bundle (and refuses another key); openssl checks the .sig layer's signature"

# --- refusals --------------------------------------------------------------------------------------
run_fails "verify with another key" gf verify --key "$tmp/keys/py/cosign.pub" "docker://$R/team/grocker-hello:1.0.0"
expect_eq "its status" 1 "$rc"
expect_match "its message" "^grocker: error: docker://$R/team/grocker-hello:1.0.0: no signature of its image $digest verifies with the key $tmp/keys/py/cosign.pub \([A-Za-z0-9+/=]+\):$" "$err"
expect_match "the bundle's reason" "^  sigstore bundle sha256:[0-9a-f]{64}: the sigstore bundle was signed with another key: its hint is " "$err"
expect_match "the .sig's reason" "^  cosign sha256:[0-9a-f]{12}… \(\.sig\), layer 1: .*signature" "$err"
mkdir -p "$tmp/extra" && echo extra >"$tmp/extra/file"
run "an unsigned image (one more layer)" g append "oci:$tmp/out:hello" "docker://$R/unsigned/hello:1" --dir "$tmp/extra"
run_fails "verify an unsigned image" gf verify --key "$tmp/keys/cosign.pub" "docker://$R/unsigned/hello:1"
expect_match "its message" "^grocker: error: docker://$R/unsigned/hello:1: no signature of its image sha256:[0-9a-f]{64} was found \(no Sigstore bundle attached, no cosign .sig tag\); sign it with grocker sign --key KEY docker://$R/unsigned/hello:1$" "$err"
ok "another key and an unsigned image are refused, saying why"

# --- concurrent signers ------------------------------------------------------------------------------
# Four signers of one image at once, each with its own store: the referrers index and the .sig
# tag are read, merged, written and read back, so that no signature is lost.
pids=()
for i in 1 2 3 4; do
    openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/keys/c$i.pem" 2>/dev/null
    openssl ec -in "$tmp/keys/c$i.pem" -pubout -out "$tmp/keys/c$i.pub" 2>/dev/null
done
for i in 1 2 3 4; do
    "$GROCKER" --root "$tmp/signer$i" --tls-verify=false -q sign --key "$tmp/keys/c$i.pem" "docker://$R/unsigned/hello:1" \
        >"$tmp/signer$i.out" 2>&1 &
    pids+=($!)
done
for i in 1 2 3 4; do wait "${pids[$((i - 1))]}" || fail "signer $i failed: $(cat "$tmp/signer$i.out")"; done
unsigned=$(skopeo inspect --tls-verify=false "docker://$R/unsigned/hello:1" | jq -r .Digest)
run "the .sig tag after them" skopeo inspect --tls-verify=false --raw "docker://$R/unsigned/hello:sha256-${unsigned#sha256:}.sig"
expect_eq "four layers" 4 "$(jq '.layers | length' <<<"$out")"
run "the referrers index after them" skopeo inspect --tls-verify=false --raw "docker://$R/unsigned/hello:sha256-${unsigned#sha256:}"
expect_eq "four bundles" 4 "$(jq '[.manifests[] | select(.artifactType == "application/vnd.dev.sigstore.bundle.v0.3+json")] | length' <<<"$out")"
for i in 1 2 3 4; do
    run "verify with signer $i's key" gf verify --key "$tmp/keys/c$i.pub" "docker://$R/unsigned/hello:1"
    expect_match "both of its signatures" "sigstore bundle sha256:[0-9a-f]{64}; cosign .*layer [1-4]$" "$out"
done
ok "four concurrent signers: every bundle and every .sig layer kept"

# --- copies ----------------------------------------------------------------------------------------
run "grocker copy to another registry path" gf copy "docker://$R/team/grocker-hello:1.0.0" "docker://$R/copied/hello:1"
run "verify the copy" gf verify --key "$tmp/keys/cosign.pub" "docker://$R/copied/hello:1"
expect_match "both signatures there" "sigstore bundle sha256:[0-9a-f]{64}; cosign .*layer 1$" "$out"
run "grocker copy into an oci-archive" gf copy "docker://$R/copied/hello:1" "oci-archive:$tmp/signed.tar:hello"
run "verify the archive" gf verify --key "$tmp/keys/cosign.pub" "oci-archive:$tmp/signed.tar"
expect_match "its bundle" "sigstore bundle sha256:[0-9a-f]{64}$" "$out"
ok "the signature survives grocker copy between registries and into an oci-archive"

# --- grocker sign ----------------------------------------------------------------------------------
run "grocker sign with Python's key" env COSIGN_PASSWORD=py-pw "$GROCKER" --root "$store" --tls-verify=false sign \
    --key "$tmp/keys/py/cosign.key" "docker://$R/team/grocker-hello:1.0.0"
run "grocker sign with openssl's PEM key" g sign --key "$tmp/keys/other/ec.pem" "docker://$R/team/grocker-hello:1.0.0"
run "grocker sign with it again" g sign --key "$tmp/keys/other/ec.pem" "docker://$R/team/grocker-hello:1.0.0"
run "the .sig tag after three signatures" skopeo inspect --tls-verify=false --raw "docker://$R/team/grocker-hello:sha256-$hex.sig"
expect_eq "one layer per key (signing again adds none)" 3 "$(jq '.layers | length' <<<"$out")"
for key in py/cosign.pub other/ec.pub cosign.pub; do
    run "verify with $key" gf verify --key "$tmp/keys/$key" "docker://$R/team/grocker-hello:1.0.0"
done
run "grocker sign an oci: layout" g sign --key "$tmp/keys/other/ec.pem" "oci:$tmp/out:hello"
run "verify it" g verify --key "$tmp/keys/other/ec.pub" "oci:$tmp/out:hello"
run "skopeo still reads the layout's image" skopeo inspect "oci:$tmp/out:hello"
expect_eq "skopeo's digest" "$digest" "$(jq -r .Digest <<<"$out")"
ok "grocker sign: three keys' signatures side by side; signing again adds no .sig layer; an oci: layout"

# --- tampering -------------------------------------------------------------------------------------
# One byte of the runner's last layer changed where the registry keeps it: the manifest and its
# signatures are intact, the content is not.
last=$(jq -r '.layers[-1].digest' "$tmp/out/blobs/sha256/$hex")
data="$tmp/reg/storage/docker/registry/v2/blobs/sha256/${last:7:2}/${last#sha256:}/data"
[ -f "$data" ] || fail "no blob file $data in the registry's storage"
printf '\x00' | dd of="$data" bs=1 seek=100 conv=notrunc status=none
run_fails "verify the altered image" gf verify --key "$tmp/keys/cosign.pub" "docker://$R/team/grocker-hello:1.0.0"
expect_match "it names the blob" "$last" "$err"
expect_match "and says what it was doing" "while reading every blob of docker://$R/team/grocker-hello:1.0.0 to check it" "$err"
ok "a layer altered in the registry's storage fails verify, naming the blob"
echo "all sign checks passed"
