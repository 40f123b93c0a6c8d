#!/bin/bash
# grocker through fault-proxy, in front of a real docker-registry: pushes and pulls that meet
# 500s, 429s with Retry-After, connections dropped mid-body (request and response), answers
# lost after the registry did the work, truncated and corrupted bodies, must end with every
# digest intact (checked with skopeo straight at the registry, and by unpacking); a registry
# that answers garbage gets a clear error, not a crash.
#
# The registry names itself in its Location headers (http.host), so the proxy's rewriting of
# them is what keeps grocker talking through the proxy.
#
# Run by `meson test` with GROCKER (the binary); standalone: GROCKER=build/src/grocker $0.
# A missing tool is a failure, never a skip. KEEP_TMP=1 keeps the temp folder.
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"

: "${GROCKER:?GROCKER must name the grocker binary}"
[ -x "$GROCKER" ] || fail "GROCKER='$GROCKER' is not an executable"
need_tools skopeo docker-registry jq curl sha256sum cmp "$PY"

setup grocker-registry-faults
cd "$tmp"

start_registry plain reg --self-host
R=$REGISTRY
start_proxy px "$REGISTRY_URL"
P=$PROXY
ok "registry at $REGISTRY_URL, fault proxy at $PROXY_URL"

n=0
# A fresh image: a small layer and a 24 MiB layer of random bytes (chunked by grocker's pushes).
# Sets IMG (oci:DIR:v1), ID (its digest), BIG (the big layer's digest).
new_image() {
    n=$((n + 1))
    mkdir -p "src$n/small" "src$n/big"
    head -c 100000 /dev/urandom >"src$n/small/blob"
    head -c $((24 * 1024 * 1024)) /dev/urandom >"src$n/big/blob"
    IMG=oci:img$n:v1
    run "grocker append (image $n)" "$GROCKER" -q --root "$tmp/store-build" append scratch "$IMG" \
        --dir "src$n/small:/small" --dir "src$n/big:/big"
    ID=$(tail -n1 <<<"$out")
    local m
    m=$(skopeo inspect --raw "$IMG")
    BIG=$(jq -r '.layers[1].digest' <<<"$m")
}

# proxy_log_since: the proxy's requests since the last faults call.
faults_at() {
    proxy_line=$(wc -l <"$PROXY_LOG")
    faults "$@"
}
proxy_since() { tail -n +$((proxy_line + 1)) "$PROXY_LOG"; }
fired() { # KIND: how many requests met a fault of this kind
    proxy_since | jq -s --arg k "$1" 'map(select(.fault == $k)) | length'
}
expect_fired() { # KIND [MIN]
    local c
    c=$(fired "$1")
    [ "$c" -ge "${2:-1}" ] || fail "the proxy injected no '$1' fault; its log: $(proxy_since | jq -c '[.method, .target[0:70], .status, .fault]')"
}
# The pause between a 429 answer and the next request for the same target (method and path).
retry_wait() { # METHOD TARGET-REGEX
    proxy_since | jq -s -r --arg m "$1" --arg re "$2" '
        map(select(.method == $m and (.target | test($re)))) as $r
        | ($r | map(.status) | index(429)) as $i
        | if $i == null or ($i + 1) >= ($r | length) then "none" else ((($r[$i + 1].t - $r[$i].t_end) * 100 | floor) / 100) end'
}
# Checks, straight at the registry, that REPO:v1 is image $ID with every blob intact.
check_pushed() { # REPO
    run "skopeo inspect --raw $1 (registry)" skopeo inspect --raw --tls-verify=false "docker://$R/$1:v1"
    expect_eq "manifest digest of $1 in the registry" "$ID" "sha256:$(printf '%s' "$out" | sha256sum | cut -d' ' -f1)"
    run "skopeo copy $1 from the registry (digests verified)" skopeo copy -q --src-tls-verify=false \
        "docker://$R/$1:v1" "oci:check-${1//\//-}:v1"
    check_blobs "check-${1//\//-}"
}
push() { # REPO
    run "grocker push $1 through the proxy" "$GROCKER" -q --root "$tmp/store-build" copy "$IMG" "docker://$P/$1:v1"
    expect_match "push of $1 prints the digest" "$ID" "$out"
    check_pushed "$1"
}

# --- pushes ----------------------------------------------------------------------------------------
new_image
faults_at "status POST ^/v2/faults/p500/blobs/uploads/ status=500" \
    "status HEAD ^/v2/faults/p500/blobs/ status=503 nth=2" \
    "status PUT ^/v2/faults/p500/manifests/ status=500"
push faults/p500
expect_fired status 3
ok "push through 500 (upload POST), 503 (HEAD), 500 (manifest PUT)"

new_image
faults_at "status POST ^/v2/faults/p429/blobs/uploads/ status=429 retry-after=1" \
    "status PUT ^/v2/faults/p429/manifests/ status=429 retry-after=1"
push faults/p429
expect_fired status 2
wait=$(retry_wait PUT '^/v2/faults/p429/manifests/')
[ "$wait" != none ] || fail "the manifest PUT was not tried again after its 429"
awk -v w="$wait" 'BEGIN { exit !(w >= 0.95) }' || fail "the manifest PUT was tried again ${wait}s after a 429 with Retry-After: 1"
ok "push through 429 + Retry-After: 1 (manifest PUT tried again after ${wait}s)"

new_image
faults_at "drop-request PATCH|PUT ^/v2/faults/pdrop/blobs/uploads/ at=1048576"
push faults/pdrop
expect_fired drop-request
ok "push through a connection dropped 1 MiB into an upload body (the registry got those bytes)"

new_image
faults_at "drop-request PATCH|PUT ^/v2/faults/pdrop0/blobs/uploads/ at=1048576 forward=0"
push faults/pdrop0
expect_fired drop-request
ok "push through a connection dropped 1 MiB into an upload body (the registry saw nothing)"

new_image
faults_at "drop-answer PATCH ^/v2/faults/plost/blobs/uploads/" \
    "drop-answer PUT ^/v2/faults/plost/blobs/uploads/" \
    "drop-answer PUT ^/v2/faults/plost/manifests/"
push faults/plost
expect_fired drop-answer 3
ok "push through answers lost after the registry took a chunk (PATCH), a blob (PUT) and the manifest"

new_image
faults_at "reset POST ^/v2/faults/preset/blobs/uploads/" "reset HEAD ^/v2/faults/preset/blobs/"
push faults/preset
expect_fired reset 2
ok "push through connections reset on arrival"

# Distribution's filesystem storage rewrites a blob's link in place when another client sends the
# same blob: a manifest put at that instant is refused for a blob it names. Tried again, 3 times.
faults_at "status PUT ^/v2/faults/pblob/manifests/ status=400 code=MANIFEST_BLOB_UNKNOWN times=2"
push faults/pblob
expect_fired status 2
faults_at "status PUT ^/v2/faults/pblob2/manifests/ status=400 code=MANIFEST_BLOB_UNKNOWN times=0"
run_fails "a manifest refused for its blobs every time" "$GROCKER" -q --root "$tmp/store-build" copy "$IMG" "docker://$P/faults/pblob2:v1"
expect_eq "its tries" 4 "$(fired status)"
expect_match "its message" "400 .*PUT /v2/faults/pblob2/manifests/v1: MANIFEST_BLOB_UNKNOWN" "$err"
ok "push through a manifest refused twice for a blob it names (as when another client sends it again); refused 4 times, the error"

# --- pulls (of an image skopeo pushed straight to the registry) ---------------------------------------------
new_image
run "skopeo push for the pulls" skopeo copy -q --dest-tls-verify=false "$IMG" "docker://$R/faults/pull:v1"
PULL_ID=$ID
PULL_BIG=$BIG
PULL_SRC=src$n
pulls=0
pull() { # NAME: grocker pull into a fresh store and oci: folder, then checks everything
    pulls=$((pulls + 1))
    run "grocker pull ($1) through the proxy" "$GROCKER" -q --root "$tmp/store-pull$pulls" pull "$P/faults/pull:v1" "oci:pull$pulls:v1"
    expect_eq "digest pulled ($1)" "$PULL_ID" "$(oci_digest "pull$pulls" v1)"
    check_blobs "pull$pulls"
    # The store keeps what was pulled: no blob in it may differ from its name either.
    [ ! -d "$tmp/store-pull$pulls/blobs" ] || check_blobs "$tmp/store-pull$pulls"
    run "grocker unpack ($1)" "$GROCKER" -q --root "$tmp/store-pull$pulls" unpack "oci:pull$pulls:v1" "unpacked$pulls"
    cmp -s "$PULL_SRC/big/blob" "unpacked$pulls/big/blob" || fail "unpacked big file differs ($1)"
    cmp -s "$PULL_SRC/small/blob" "unpacked$pulls/small/blob" || fail "unpacked small file differs ($1)"
}

faults_at "drop-response GET ^/v2/faults/pull/blobs/$PULL_BIG"
pull "dropped mid-body"
expect_fired drop-response
resumed=$(proxy_since | jq -s -r --arg b "$PULL_BIG" 'map(select(.method == "GET" and (.target | endswith($b)) and .fault == null)) | .[0].range')
expect_match "the blob GET after the cut resumes with Range" '^bytes=[1-9][0-9]*-' "$resumed"
ok "pull through a blob response reset mid-body (resumed with Range: $resumed)"

faults_at "truncate GET ^/v2/faults/pull/blobs/$PULL_BIG"
pull "truncated"
expect_fired truncate
ok "pull through a blob response cut short (Content-Length kept)"

faults_at "status GET ^/v2/faults/pull/manifests/ status=500" \
    "status GET ^/v2/faults/pull/blobs/$PULL_BIG status=429 retry-after=1" \
    "reset GET ^/v2/$"
pull "500, 429, reset"
expect_fired status 2
expect_fired reset
wait=$(retry_wait GET "^/v2/faults/pull/blobs/$PULL_BIG")
[ "$wait" != none ] || fail "the blob GET was not tried again after its 429"
awk -v w="$wait" 'BEGIN { exit !(w >= 0.95) }' || fail "the blob GET was tried again ${wait}s after a 429 with Retry-After: 1"
ok "pull through 500 (manifest), 429 + Retry-After: 1 (blob GET tried again after ${wait}s), a reset /v2/"

# A corrupted blob must never be kept: either grocker fetches it again, or it fails naming the digest.
faults_at "corrupt GET ^/v2/faults/pull/blobs/$PULL_BIG"
pulls=$((pulls + 1))
rc=0
out=$("$GROCKER" -q --root "$tmp/store-pull$pulls" pull "$P/faults/pull:v1" "oci:pull$pulls:v1" 2>"$tmp/stderr") || rc=$?
err=$(cat "$tmp/stderr")
expect_fired corrupt
if [ $rc -eq 0 ]; then
    expect_eq "digest pulled (corrupted once)" "$PULL_ID" "$(oci_digest "pull$pulls" v1)"
    check_blobs "pull$pulls"
    ok "pull through a corrupted blob body: fetched again, digests intact"
else
    [ $rc -lt 128 ] || fail "grocker crashed (status $rc) on a corrupted blob: $err"
    expect_eq "exit status for a corrupted blob" 1 "$rc"
    expect_match "the error names the digest" "${PULL_BIG#sha256:}|digest" "$err"
    ok "pull through a corrupted blob body: refused ($(head -n1 <<<"$err"))"
fi
[ ! -d "$tmp/store-pull$pulls/blobs" ] || check_blobs "$tmp/store-pull$pulls"

# --- garbage --------------------------------------------------------------------------------------------------
# garbage_case WHAT RULE-OPTIONS...: every manifest GET answered with garbage; a clear error, not a crash.
garbage_case() {
    local what=$1
    shift
    faults_at "garbage GET ^/v2/faults/pull/manifests/ times=0 $*"
    run_fails "pull of $what" "$GROCKER" -q --root "$tmp/store-garbage" pull "$P/faults/pull:v1" oci:garbage:v1
    expect_fired garbage
    expect_eq "exit status for $what" 1 "$rc"
    expect_one_line "error for $what" "$err"
    expect_match "the error for $what names the registry" "$P" "$err"
    expect_match "the error for $what names the repository" 'faults/pull' "$err"
    expect_match "the error for $what says what is wrong" '[Mm]anifest|JSON|json|digest' "$err"
    ok "$what: $(head -n1 <<<"$err")"
    faults_at "garbage GET ^/v2/faults/pull/manifests/ times=0 $*"
    run_fails "inspect of $what" "$GROCKER" -q --root "$tmp/store-garbage" inspect "docker://$P/faults/pull:v1"
    expect_eq "inspect exit status for $what" 1 "$rc"
    expect_one_line "inspect error for $what" "$err"
}
# With the registry's Docker-Content-Digest kept, the bytes do not match it...
garbage_case "an HTML page as the manifest"
# ... without it, the body itself must be judged.
garbage_case "an HTML page as the manifest, no Docker-Content-Digest" strip=Docker-Content-Digest
garbage_case "a wrong-shaped manifest, no Docker-Content-Digest" strip=Docker-Content-Digest \
    'body={"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":7}'
garbage_case "a truncated JSON manifest, no Docker-Content-Digest" strip=Docker-Content-Digest \
    'body={"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"dig'
faults_at

echo "faults: all checks passed"
