#!/bin/bash
# The exact text and exit status of the errors a user meets on the command line:
#   exit 2: misuse (the command line is wrong); CLI11's own messages, or one `grocker: ` line;
#   exit 1: the command was right but failed; exactly one line, `grocker: error: …`, naming
#           the location or file and the digest at fault.
# Nothing is printed on stdout when a command fails.
#
# Run by `meson test` with GROCKER (the binary); standalone: GROCKER=build/src/grocker $0.
set -eu -o pipefail

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

: "${GROCKER:?GROCKER must name the grocker binary}"
[ -x "$GROCKER" ] || fail "GROCKER='$GROCKER' is not an executable"
for tool in jq sha256sum head od dd tar; do
    command -v "$tool" >/dev/null || fail "tool '$tool' is missing"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/grocker-cli-errors.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Relative paths from here on, so the messages (which echo the locations given) are exact.
cd "$tmp"

store=0
# expect RC EXPECTED-STDERR [grocker arguments...]: runs grocker with a fresh store.
expect() {
    local rc=$1 expected=$2 got=0
    shift 2
    store=$((store + 1))
    "$GROCKER" --root "store$store" "$@" >stdout 2>stderr || got=$?
    local what="grocker $*"
    if [ "$got" != "$rc" ]; then
        echo "--- stderr:" >&2
        cat stderr >&2
        fail "$what: exit status $got, expected $rc"
    fi
    [ ! -s stdout ] || fail "$what: printed on stdout: $(cat stdout)"
    if [ "$rc" = 1 ]; then
        [ "$(wc -l <stderr)" = 1 ] || fail "$what: stderr is not exactly one line: $(cat stderr)"
        [[ $(cat stderr) == "grocker: error: "* ]] || fail "$what: stderr does not start with 'grocker: error: ': $(cat stderr)"
    fi
    if [ "$(cat stderr)" != "$expected" ] || [ "$(tail -c1 stderr | od -An -c | tr -d ' ')" != '\n' ]; then
        echo "--- expected stderr:" >&2
        printf '%s\n' "$expected" >&2
        echo "--- got:" >&2
        cat stderr >&2
        fail "$what: wrong message"
    fi
    echo "ok: exit $rc: grocker $*"
}

cli11_hint="Run 'grocker --help' for usage."
transports='use scratch, oci:DIR[:TAG], oci-archive:FILE[:REF], docker-archive:FILE[:REF] or docker://REF'

# A small image to break in various ways: an incompressible file makes the layer the bulk of
# every archive, so cutting an archive in half cuts the layer.
mkdir -p tree/data
head -c 200000 /dev/urandom >tree/data/random
echo hello >tree/data/hello.txt
"$GROCKER" -q --root good-store append scratch oci:good:v1 --dir tree >/dev/null
"$GROCKER" -q --root good-store append scratch oci:good:v2 --dir tree --env A=B >/dev/null
"$GROCKER" -q --root good-store copy oci:good:v1 oci:single:v1 >/dev/null
"$GROCKER" -q --root good-store copy oci:good:v1 oci-archive:good.tar >/dev/null
"$GROCKER" -q --root good-store copy oci:good:v1 docker-archive:good-docker.tar >/dev/null
layer=$("$GROCKER" -q --root good-store inspect oci:single:v1 | jq -r '.manifest.layers[0].digest')
[[ $layer =~ ^sha256:[0-9a-f]{64}$ ]] || fail "no layer digest in grocker inspect: '$layer'"

# --- exit 2: misuse --------------------------------------------------------------------------
expect 2 "grocker: A subcommand is required
$cli11_hint"
expect 2 "grocker: unknown command 'frob': use one of append, copy, unpack, inspect, run, pull, push, login, logout, build (see grocker --help)" frob
expect 2 "grocker: SRC is required
$cli11_hint" append
expect 2 "grocker: DEST is required
$cli11_hint" append scratch
expect 2 "grocker: DEST is required
$cli11_hint" copy oci:single:v1
expect 2 "grocker: DIR is required
$cli11_hint" unpack oci:single:v1
expect 2 "grocker: SRC is required
$cli11_hint" inspect
expect 2 "grocker: --dir: 1 required TEXT missing
$cli11_hint" append scratch oci:out --dir
expect 2 "grocker: The following argument was not expected: --bogus
$cli11_hint" append scratch oci:out --dir tree --bogus
expect 2 "grocker: The following argument was not expected: c
$cli11_hint" copy a b c

expect 2 "grocker: unknown transport 'foo' in 'foo:bar': $transports" inspect foo:bar
expect 2 "grocker: unknown transport 'foo' in 'foo:bar': $transports" copy foo:bar oci:out
expect 2 "grocker: unknown transport 'foo' in 'foo:bar': $transports" copy oci:single:v1 foo:bar
expect 2 "grocker: unknown transport 'foo' in 'foo:bar': $transports" append foo:bar oci:out --dir tree
expect 2 "grocker: unknown transport 'foo' in 'foo:bar': $transports" unpack foo:bar rootfs
expect 2 "grocker: image location 'single' has no transport: $transports" inspect single
expect 2 "grocker: image location 'oci:' has an empty path" inspect oci:
expect 2 "grocker: unknown compression 'lz4': use gzip or zstd" append scratch oci:out --dir tree --compression lz4
expect 2 "grocker: --dir 'missing': 'missing' is not a folder" append scratch oci:out --dir missing
expect 2 "grocker: --dir 'tree/data/hello.txt': 'tree/data/hello.txt' is not a folder" \
    append scratch oci:out --dir tree/data/hello.txt
expect 2 "grocker: --dir 'tree:data': the target 'data' must be an absolute path in the image" \
    append scratch oci:out --dir tree:data
expect 2 "grocker: scratch cannot be a destination: name an image location" append scratch scratch --dir tree
expect 2 "grocker: scratch is not an image to copy" copy scratch oci:out
expect 2 "grocker: image location 'docker-archive:x.tar:UPPER': invalid image reference 'UPPER': repository names must be lowercase" \
    inspect docker-archive:x.tar:UPPER
# Misuse found before any work: no layer is written for a bad --env.
expect 2 "grocker: --env 'NOEQ' must be KEY=VALUE" append scratch oci:out --dir tree --env NOEQ
[ -z "$(ls "store$store/blobs/sha256" 2>/dev/null)" ] || fail "a bad --env still wrote blobs"
[ ! -e out ] || fail "a misuse wrote oci:out"

# --- exit 1: failures, one line naming what failed ---------------------------------------------
for cmd in "inspect oci:missing" "copy oci:missing oci:out" "unpack oci:missing rootfs" \
    "append oci:missing oci:out --dir tree"; do
    # shellcheck disable=SC2086 # the words of $cmd are separate arguments
    expect 1 "grocker: error: oci:missing: no such folder; check the path" $cmd
done
mkdir not-a-layout
expect 1 "grocker: error: oci:not-a-layout: not an OCI image layout (no oci-layout file)" inspect oci:not-a-layout

# A corrupt layer: one bit flipped in the middle of the blob. Each command uses a fresh store,
# so the blob is read from the folder (a store that already holds it would not read it).
cp -r single corrupt
blob=corrupt/blobs/sha256/${layer#sha256:}
byte=$(od -An -tu1 -j100000 -N1 "$blob" | tr -d ' ')
printf '%b' "\\$(printf '%03o' $((byte ^ 1)))" | dd of="$blob" bs=1 seek=100000 conv=notrunc status=none
actual=sha256:$(sha256sum "$blob" | cut -d' ' -f1)
[ "$actual" != "$layer" ] || fail "flipping a bit of $blob did not change its digest"
corrupt_msg="grocker: error: oci:corrupt:v1 layer $layer has digest $actual but $layer was expected; the source is corrupt or was changed: fetch it again"
expect 1 "$corrupt_msg" unpack oci:corrupt:v1 rootfs
[ ! -e rootfs ] || fail "grocker unpack of a corrupt image left 'rootfs' behind"
expect 1 "$corrupt_msg" copy oci:corrupt:v1 oci:out
[ ! -e out ] || fail "grocker copy of a corrupt image wrote oci:out"
expect 1 "$corrupt_msg" copy oci:corrupt:v1 oci-archive:out.tar
[ ! -e out.tar ] || fail "grocker copy of a corrupt image wrote out.tar"
expect 1 "$corrupt_msg" inspect oci:corrupt:v1

# Several images and no tag to choose.
expect 1 "grocker: error: oci:good holds 2 images; name one with its tag (tags: v1, v2)" inspect oci:good
expect 1 "grocker: error: oci:good holds 2 images; name one with its tag (tags: v1, v2)" unpack oci:good rootfs
expect 1 "grocker: error: oci:good:v3: no image tagged 'v3' (tags: v1, v2)" copy oci:good:v3 oci:out

# A truncated archive (a download cut in the middle of the layer) and a cut header.
size=$(stat -c %s good.tar)
head -c $((size / 2)) good.tar >truncated.tar
expect 1 "grocker: error: oci-archive:truncated.tar: unable to read 'blobs/sha256/${layer#sha256:}': Truncated tar archive" \
    inspect oci-archive:truncated.tar
size=$(stat -c %s good-docker.tar)
head -c $((size / 2)) good-docker.tar >truncated-docker.tar
expect 1 "grocker: error: docker-archive:truncated-docker.tar: unable to read 'blobs/sha256/${layer#sha256:}': Truncated tar archive" \
    copy docker-archive:truncated-docker.tar oci:out
head -c 1000 good.tar >cut-header.tar
expect 1 "grocker: error: oci-archive:cut-header.tar is a damaged tar archive: Truncated tar archive" \
    inspect oci-archive:cut-header.tar

# Not a tar at all, and no file.
echo 'not a tar' >not-a-tar.tar
expect 1 "grocker: error: oci-archive:not-a-tar.tar is not a readable tar archive: Unrecognized archive format" \
    inspect oci-archive:not-a-tar.tar
expect 1 "grocker: error: docker-archive:not-a-tar.tar is not a readable tar archive: Unrecognized archive format" \
    unpack docker-archive:not-a-tar.tar rootfs
expect 1 "grocker: error: unable to open oci-archive:missing.tar: No such file or directory" \
    inspect oci-archive:missing.tar
# The other kind of archive: a docker-save tar has no index.json, an OCI tar no manifest.json.
mkdir docker-only
tar -C docker-only -xf good-docker.tar
tar -C docker-only -cf docker-only.tar manifest.json blobs
expect 1 "grocker: error: oci-archive:docker-only.tar: not an OCI archive (no index.json); it is truncated, or a docker save tar (then use docker-archive:)" \
    inspect oci-archive:docker-only.tar
left=$(find . -maxdepth 1 -name 'out*')
[ -z "$left" ] || fail "a failed command left behind: $left"

echo "all error checks passed"
