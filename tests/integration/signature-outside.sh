#!/bin/bash
# The signature formats of oci/signature.hh checked by outsiders, through grocker-test-sign:
# - the Sigstore bundle grocker makes is verified by sigstore's own JavaScript verifier
#   (@sigstore/verify, offline, the public key found by its hint, the statement's subject checked),
#   which rejects it under another key, over another digest, and with a flipped signature or
#   statement byte; a message-signature bundle over cosign's simple-signing payload too;
# - the simple-signing signature is checked by `openssl dgst`;
# - a cosign key pair written by Python (hashlib's scrypt, PyNaCl's secretbox, cryptography's
#   PKCS#8) opens in grocker, and a wrong password is refused; a pair grocker writes opens in
#   Python to the same public key.
#
# Run by `meson test` with GROCKER_TEST_SIGN and GROCKER_TEST_CACHE (npm's packages are kept in
# $GROCKER_TEST_CACHE/npm-sigstore). A missing tool is a failure, never a skip. KEEP_TMP=1 keeps
# the temp folder.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

: "${GROCKER_TEST_SIGN:?GROCKER_TEST_SIGN must name the grocker-test-sign binary}"
: "${GROCKER_TEST_CACHE:?GROCKER_TEST_CACHE must name a folder for the npm packages}"
need_tools node npm openssl jq base64 "$PY"
"$PY" -c 'import nacl.secret, cryptography' 2>/dev/null ||
    fail "$PY lacks python3-nacl or python3-cryptography: run scripts/install-deps"

npmdir=$GROCKER_TEST_CACHE/npm-sigstore
mkdir -p "$GROCKER_TEST_CACHE"
"$fixtures/npm-sigstore.sh" "$npmdir" || fail "could not install sigstore's verifier"
# Node resolves a module's imports from its own folder: the script runs from beside the packages.
cp "$fixtures/sigstore-verify.mjs" "$npmdir/"

setup grocker-signature-outside
cd "$tmp"
sign() { "$GROCKER_TEST_SIGN" "$@"; }
outside() { node "$npmdir/sigstore-verify.mjs" "$@"; }

digest=sha256:$(printf 'the image' | sha256sum | cut -d' ' -f1)
other=sha256:$(printf 'another image' | sha256sum | cut -d' ' -f1)
mkdir a b py

run "generate key a" env COSIGN_PASSWORD=pw-a "$GROCKER_TEST_SIGN" generate a
run "generate key b" env COSIGN_PASSWORD=pw-b "$GROCKER_TEST_SIGN" generate b
export COSIGN_PASSWORD=pw-a

# --- the bundle, by sigstore's verifier ---
sign bundle a/cosign.key "$digest" >bundle.json
jq -e '.mediaType == "application/vnd.dev.sigstore.bundle.v0.3+json"' bundle.json >/dev/null ||
    fail "bundle: media type: $(cat bundle.json)"
run "sigstore's verifier accepts grocker's bundle" outside bundle.json a/cosign.pub "$digest"
expect_eq "sigstore's verdict" \
    "verified: https://sigstore.dev/cosign/sign/v1 of $digest, key $(jq -r .verificationMaterial.publicKey.hint bundle.json)" \
    "$out"
run "grocker accepts its own bundle" sign verify-bundle a/cosign.pub bundle.json "$digest"
ok "bundle verified by @sigstore/verify"

run_fails "another key" outside bundle.json b/cosign.pub "$digest"
expect_match "another key: the hint finds no key" "PUBLIC_KEY_ERROR: key not found" "$err"
# The bundle made to name b's key (its hint computed by openssl): the signature itself must fail.
hint_b=$(openssl pkey -pubin -in b/cosign.pub -outform DER | openssl dgst -sha256 -binary | base64)
jq --arg h "$hint_b" '.verificationMaterial.publicKey.hint = $h' bundle.json >renamed.json
run_fails "another key named by the hint" outside renamed.json b/cosign.pub "$digest"
expect_match "another key: the signature fails" "SIGNATURE_ERROR: signature verification failed" "$err"

run_fails "another digest" outside bundle.json a/cosign.pub "$other"
expect_match "another digest" "the statement's subjects are .*, not $other" "$err"
sign bundle a/cosign.key "$other" >other.json
run_fails "a bundle of another image" outside other.json a/cosign.pub "$digest"
expect_match "a bundle of another image" "not $digest" "$err"

# flip FIELD: the bundle with one bit of the base64 FIELD of the envelope flipped.
flip() {
    jq -r ".dsseEnvelope.$1" bundle.json | base64 -d >field.bin
    "$PY" -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[len(b) // 2] ^= 1; sys.stdout.buffer.write(b)' \
        field.bin | base64 -w0 >field.b64
    jq --rawfile v field.b64 ".dsseEnvelope.$1 = \$v" bundle.json
}
flip 'signatures[0].sig' >flipped-sig.json
run_fails "a flipped signature byte" outside flipped-sig.json a/cosign.pub "$digest"
expect_match "a flipped signature byte" "SIGNATURE_ERROR" "$err"
run_fails "grocker: a flipped signature byte" sign verify-bundle a/cosign.pub flipped-sig.json "$digest"
expect_match "grocker: a flipped signature byte" "signature does not verify with this key" "$err"
flip payload >flipped-payload.json
run_fails "a flipped statement byte" outside flipped-payload.json a/cosign.pub "$digest"
expect_match "a flipped statement byte" "SIGNATURE_ERROR" "$err"
ok "@sigstore/verify rejects another key, another digest, flipped bytes"

# --- cosign's simple signing: the message-signature path, and openssl ---
sign payload registry.example/team/app "$digest" >payload.json
sign message-bundle a/cosign.key payload.json >message.json
run "a message signature" outside message.json a/cosign.pub "$digest" payload.json
expect_eq "message verdict" \
    "verified: message signature of $digest, key $(jq -r .verificationMaterial.publicKey.hint message.json)" "$out"
run_fails "a message signature of another image" outside message.json a/cosign.pub "$other" payload.json
expect_match "a message signature of another image" "the payload names $digest, not $other" "$err"
sed 's/team/teem/' payload.json >changed.json
run_fails "a message signature over another payload" outside message.json a/cosign.pub "$digest" changed.json
expect_match "another payload" "message digest in the bundle is not the SHA-256 of PAYLOAD" "$err"

sign sign a/cosign.key payload.json >payload.sig
base64 -d payload.sig >payload.sig.der
run "openssl checks the simple-signing signature" \
    openssl dgst -sha256 -verify a/cosign.pub -signature payload.sig.der payload.json
expect_eq "openssl's verdict" "Verified OK" "$out"
run "grocker checks it" sign verify-payload a/cosign.pub payload.json payload.sig "$digest"
expect_eq "grocker's verdict" "verified: registry.example/team/app@$digest" "$out"
ok "simple signing checked by openssl and by @sigstore/verify's message path"

# --- cosign's encrypted key pair, written and read by Python ---
run "python writes a cosign key pair" env COSIGN_PASSWORD='py pass' "$PY" "$fixtures/make-cosign-key.py" py
expect_eq "python's key type" "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----" "$(head -1 py/cosign.key)"
run "grocker opens python's key" env COSIGN_PASSWORD='py pass' "$GROCKER_TEST_SIGN" public py/cosign.key
expect_eq "public half of python's key" "$(cat py/cosign.pub)" "$out"
COSIGN_PASSWORD='py pass' sign bundle py/cosign.key "$digest" >py-bundle.json
run "sigstore's verifier accepts a bundle signed with python's key" outside py-bundle.json py/cosign.pub "$digest"
run_fails "a wrong password" env COSIGN_PASSWORD='py pasS' "$GROCKER_TEST_SIGN" public py/cosign.key
expect_eq "wrong password" \
    "grocker-test-sign: the password does not open 'py/cosign.key' (a wrong password, or a damaged file)" "$err"
run "python opens grocker's key" env COSIGN_PASSWORD=pw-a "$PY" "$fixtures/make-cosign-key.py" --public a/cosign.key
expect_eq "public half of grocker's key" "$(cat a/cosign.pub)" "$out"
run_fails "python and a wrong password" env COSIGN_PASSWORD=pw-b "$PY" "$fixtures/make-cosign-key.py" --public a/cosign.key
ok "cosign key pairs: python's opens in grocker, grocker's in python; wrong passwords refused"

echo "signature-outside: all checks passed"
