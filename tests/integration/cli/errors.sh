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
for tool in jq sha256sum head od dd tar ldd setpriv; do
    command -v "$tool" >/dev/null || fail "tool '$tool' is missing"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/grocker-cli-errors.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Relative paths from here on, so the messages (which echo the locations given) are exact.
cd "$tmp"

store=0
# expect RC EXPECTED-STDERR [grocker arguments...]: runs grocker with a fresh store
# (${store_prefix}storeN), stdin from $input (default /dev/null), as user nobody when $as_nobody
# is set; stderr must be EXPECTED-STDERR exactly.
expect() {
    local rc=$1 expected=$2
    shift 2
    run_case exact "$rc" "$expected" "" "$@"
}

# expect_around RC PREFIX SUFFIX [grocker arguments...]: as expect, for a message with a part
# that varies (a library's wording, a time): it must start with PREFIX and end with SUFFIX.
expect_around() {
    local rc=$1 prefix=$2 suffix=$3
    shift 3
    run_case around "$rc" "$prefix" "$suffix" "$@"
}

run_case() {
    local mode=$1 rc=$2 expected=$3 suffix=$4 got=0
    shift 4
    store=$((store + 1))
    local -a as=()
    [ -z "${as_nobody:-}" ] || as=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
    "${as[@]}" "$GROCKER" --root "${store_prefix:-}store$store" "$@" <"${input:-/dev/null}" >stdout 2>stderr || got=$?
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
    local message ok=1
    message=$(cat stderr)
    if [ "$mode" = exact ]; then
        [ "$message" = "$expected" ] || ok=
    else
        [[ $message == "$expected"*"$suffix" ]] || ok=
    fi
    if [ -z "$ok" ] || [ "$(tail -c1 stderr | od -An -c | tr -d ' ')" != '\n' ]; then
        echo "--- expected stderr:" >&2
        if [ "$mode" = exact ]; then printf '%s\n' "$expected" >&2; else printf '%s...%s\n' "$expected" "$suffix" >&2; fi
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
# The list of commands is grocker --help's, so that a new command changes no test; these must be in it.
commands=$("$GROCKER" --help | awk '/^Subcommands:/ { f = 1; next } f && NF { print $1 }' | paste -sd, - | sed 's/,/, /g')
for c in append copy unpack inspect run pull push login logout build fsck purge; do
    [[ ", $commands, " == *", $c, "* ]] || fail "grocker --help does not list '$c': $commands"
done
expect 2 "grocker: unknown command 'frob': use one of $commands (see grocker --help)" frob
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

# Global options go before the command; a bad value of one says what to give.
expect 2 "grocker: '-q' is an option of grocker itself, not of 'append': put it before the command (grocker -q append ...)" \
    append scratch oci:out --dir tree -q
expect 2 "grocker: '--root' is an option of grocker itself, not of 'copy': put it before the command (grocker --root other copy ...)" \
    copy oci:single:v1 oci:out --root other
expect 2 "grocker: --tls-verify: 'maybe' is not a boolean: use --tls-verify=true or --tls-verify=false
$cli11_hint" --tls-verify=maybe inspect oci:single:v1
expect 2 "grocker: --cert-dir 'tree/data/hello.txt' is not a folder" --cert-dir tree/data/hello.txt inspect docker://127.0.0.1:1/x
SOURCE_DATE_EPOCH=yesterday expect 2 \
    "grocker: SOURCE_DATE_EPOCH='yesterday' is not a number of seconds since 1970: unset it or fix it" \
    append scratch oci:out --dir tree

# Image locations: a tag that skopeo would refuse, a name that is no image name, docker without //.
tag_rule="letters and digits, separated by one of '.', '_', '-', '+', ':', '@' or '--' (and '/')"
expect 2 "grocker: image location 'oci:out:bad tag': 'bad tag' is not a valid tag: $tag_rule" copy oci:single:v1 'oci:out:bad tag'
expect 2 "grocker: image location 'oci-archive:out.tar:-x': '-x' is not a valid tag: $tag_rule" copy oci:single:v1 oci-archive:out.tar:-x
expect 2 "grocker: image location 'oci:out:Team/app:1': invalid image reference 'Team/app:1': repository names must be lowercase" \
    copy oci:single:v1 oci:out:Team/app:1
expect 2 "grocker: image location 'docker:single': docker references start with docker://" inspect docker:single
expect 2 "grocker: image location 'docker://': invalid image reference '': it is empty" inspect docker://

# unpack: into a folder that holds something.
expect 2 "grocker: 'tree' is not empty: unpack into a new or empty folder" unpack oci:single:v1 tree

# run: every option is checked before the image is read.
expect 2 "grocker: COMMAND is required
$cli11_hint" run oci:single:v1
expect 2 "grocker: --network 'bridge': use none (loopback only, the default) or host" run --network bridge oci:single:v1 -- /bin/true
expect 2 "grocker: --volume 'data' must be HOST:CONTAINER[:ro]" run --volume data oci:single:v1 -- /bin/true
expect 2 "grocker: --volume 'tree:data': the container path must be absolute" run --volume tree:data oci:single:v1 -- /bin/true
expect 2 "grocker: --volume 'missing:/data': 'missing' does not exist" run --volume missing:/data oci:single:v1 -- /bin/true
expect 2 "grocker: --volume 'tree:/data:rw2': unknown mode 'rw2': use ro or rw" run --volume tree:/data:rw2 oci:single:v1 -- /bin/true
expect 2 "grocker: --env '=x' must be KEY=VALUE" run --env =x oci:single:v1 -- /bin/true
expect 2 "grocker: --commit 'scratch': name an oci:, oci-archive: or docker-archive: location" \
    run --commit scratch oci:single:v1 -- /bin/true
expect 2 "grocker: unknown compression 'xz': use gzip or zstd" run --compression xz --commit oci:out oci:single:v1 -- /bin/true
expect 2 "grocker: the docker:// transport is not supported yet" run docker://127.0.0.1:1/x -- /bin/true

# Registries and credentials, before any connection.
expect 2 "grocker: invalid image reference 'Team/app': repository names must be lowercase" pull Team/app oci:out
expect 2 "grocker: invalid image reference '127.0.0.1:1/x@sha256:abc': malformed digest 'sha256:abc': expected 64 lowercase hex digits after 'sha256:'" \
    pull 127.0.0.1:1/x@sha256:abc oci:out
expect 2 "grocker: scratch cannot be a destination: name an image location" pull 127.0.0.1:1/x scratch
expect 2 "grocker: scratch is not an image to push" push scratch 127.0.0.1:1/x
expect 2 "grocker: invalid image reference '': it is empty" push oci:single:v1 ''
expect 2 "grocker: login: give the username with -u USER" login 127.0.0.1:1
expect 2 "grocker: no password: give it on standard input" login 127.0.0.1:1 -u me --password-stdin
echo secret >password.txt
input=password.txt expect 2 "grocker: 'bad host!' is not a registry host: give HOST[:PORT], e.g. docker.io or localhost:5000" \
    login 'bad host!' -u me --password-stdin
expect 2 "grocker: 'bad host!' is not a registry host: give HOST[:PORT], e.g. docker.io or localhost:5000" logout 'bad host!'
if [ -e out ] || [ -e out.tar ]; then fail "a misuse wrote out or out.tar"; fi

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
# Archives and layouts that are something else, or lack a piece.
expect 1 "grocker: error: oci-archive:tree: 'tree' is a folder, not an archive file; for an image layout folder, use oci:tree" \
    inspect oci-archive:tree
expect 1 "grocker: error: docker-archive:tree: 'tree' is a folder, not an archive file" unpack docker-archive:tree rootfs
expect 1 "grocker: error: while writing oci-archive:tree: 'tree' is a folder: name a file for the archive, or write the folder with oci:tree" \
    copy oci:single:v1 oci-archive:tree
expect 1 "grocker: error: while writing docker-archive:missing/out.tar: the folder 'missing' does not exist: create it first" \
    copy oci:single:v1 docker-archive:missing/out.tar
cp -r single no-layer
rm "no-layer/blobs/sha256/${layer#sha256:}"
expect 1 "grocker: error: oci:no-layer:v1 layer $layer is not in the layout (no file 'no-layer/blobs/sha256/${layer#sha256:}'): the layout is incomplete; copy the image into it again" \
    copy oci:no-layer:v1 oci:out
cp -r single no-index
rm no-index/index.json
expect 1 "grocker: error: oci:no-index: the image layout has no index.json: it is incomplete; copy the image into it again" \
    inspect oci:no-index
cp -r single bad-index
echo '{"manifests": [' >bad-index/index.json
# The rest is the JSON library's wording (line, column, what it read).
expect_around 1 "grocker: error: oci:bad-index index.json is not valid JSON: " "" inspect oci:bad-index
jq '.manifests[0] |= del(.mediaType)' single/index.json >bad-entry.json
cp -r single bad-entry
mv bad-entry.json bad-entry/index.json
expect 1 "grocker: error: oci:bad-entry index.json manifest 0: missing field 'mediaType'" inspect oci:bad-entry
cp -r single empty-layout
echo '{"schemaVersion": 2, "manifests": []}' >empty-layout/index.json
expect 1 "grocker: error: oci:empty-layout: no image in it (tags: none)" unpack oci:empty-layout rootfs
mkdir oci-only
tar -C oci-only -xf good.tar
tar -C oci-only -cf oci-only.tar oci-layout index.json blobs
expect 1 "grocker: error: docker-archive:oci-only.tar: not a docker-save archive (no manifest.json)" inspect docker-archive:oci-only.tar
echo '[{"Config": ' >docker-only/manifest.json
tar -C docker-only -cf bad-manifest.tar manifest.json blobs
expect_around 1 "grocker: error: docker-archive:bad-manifest.tar: manifest.json is not valid JSON: " "" \
    inspect docker-archive:bad-manifest.tar
expect 1 "grocker: error: docker-archive:good-docker.tar:other:v9: no image named 'other:v9'" inspect docker-archive:good-docker.tar:other:v9

# A base image whose config --env or --label cannot edit (someone else's JSON).
# with_config NAME JQ-FILTER: a copy of oci:single:v1 as oci:NAME:v1, its config run through JQ-FILTER.
with_config() {
    local name=$1 filter=$2 manifest config
    cp -r single "$name"
    manifest=$(jq -r '.manifests[0].digest' single/index.json)
    config=$(jq -r .config.digest "single/blobs/sha256/${manifest#sha256:}")
    jq -c "$filter" "single/blobs/sha256/${config#sha256:}" >config.json
    config=sha256:$(sha256sum config.json | cut -d' ' -f1)
    mv config.json "$name/blobs/sha256/${config#sha256:}"
    jq -c --arg d "$config" --argjson s "$(stat -c %s "$name/blobs/sha256/${config#sha256:}")" \
        '.config.digest = $d | .config.size = $s' "single/blobs/sha256/${manifest#sha256:}" >manifest.json
    manifest=sha256:$(sha256sum manifest.json | cut -d' ' -f1)
    jq --arg d "$manifest" --argjson s "$(stat -c %s manifest.json)" '.manifests[0].digest = $d | .manifests[0].size = $s' \
        single/index.json >"$name/index.json"
    mv manifest.json "$name/blobs/sha256/${manifest#sha256:}"
}
with_config env-number '.config.Env = [1, "A=B"]'
expect 1 "grocker: error: oci:env-number:v1: its config's Env holds 1, not a KEY=VALUE string; fix the image, or add no --env" \
    append oci:env-number:v1 oci:out --dir tree --env X=1
with_config labels-string '.config.Labels = "x"'
expect 1 "grocker: error: oci:labels-string:v1: its config's Labels is string, not an object; fix the image, or add no --label" \
    append oci:labels-string:v1 oci:out --dir tree --label a=b
with_config user-number '.config.User = 5'
expect 1 "grocker: error: oci:user-number:v1: its config's User is 5, not a string; fix the image, or give --user" \
    run oci:user-number:v1 -- /bin/true
with_config workdir-number '.config.WorkingDir = 5'
expect 1 "grocker: error: oci:workdir-number:v1: its config's WorkingDir is 5, not a string; fix the image, or give --workdir" \
    run oci:workdir-number:v1 -- /bin/true

# A layer whose digest and diff_id are right but which is no tar.
echo 'not a tar' >not-a-tar.layer
bad_layer=sha256:$(sha256sum not-a-tar.layer | cut -d' ' -f1)
with_config layer-not-a-tar ".rootfs.diff_ids = [\"$bad_layer\"]"
cp not-a-tar.layer "layer-not-a-tar/blobs/sha256/${bad_layer#sha256:}"
manifest=$(jq -r '.manifests[0].digest' layer-not-a-tar/index.json)
jq -c --arg d "$bad_layer" --argjson s "$(stat -c %s not-a-tar.layer)" \
    '.layers[0] = {mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $d, size: $s}' \
    "layer-not-a-tar/blobs/sha256/${manifest#sha256:}" >manifest.json
manifest=sha256:$(sha256sum manifest.json | cut -d' ' -f1)
mv manifest.json "layer-not-a-tar/blobs/sha256/${manifest#sha256:}"
jq --arg d "$manifest" --argjson s "$(stat -c %s "layer-not-a-tar/blobs/sha256/${manifest#sha256:}")" \
    '.manifests[0].digest = $d | .manifests[0].size = $s' single/index.json >layer-not-a-tar/index.json
expect 1 "grocker: error: while unpacking layer 1 ($bad_layer) of oci:layer-not-a-tar:v1: layer store$((store + 1))/blobs/sha256/${bad_layer#sha256:}: unable to read the archive: Unrecognized archive format" \
    unpack oci:layer-not-a-tar:v1 rootfs
[ ! -e rootfs ] || fail "grocker unpack of a layer that is no tar left 'rootfs' behind"

# unpack under a file: a folder cannot be made there.
expect 1 "grocker: error: unable to create '$(pwd -P)/tree/data/hello.txt' to unpack into 'tree/data/hello.txt/rootfs': Not a directory" \
    unpack oci:single:v1 tree/data/hello.txt/rootfs
# A store where a file is.
echo x >a-file
store_prefix=a-file/ expect 1 "grocker: error: unable to create the store at 'a-file/store$((store + 1))': Not a directory; pass --root or set GROCKER_ROOT to a writable folder" \
    inspect oci:single:v1

# Credentials files and registries that cannot be reached (nothing listens on port 1).
expect 1 "grocker: error: not logged in to 127.0.0.1:5000 (no entry in 'no-auth.json')" --authfile no-auth.json logout 127.0.0.1:5000
echo 'not json' >bad-auth.json
expect 1 "grocker: error: the credentials file 'bad-auth.json' is not a JSON object; fix or remove it" \
    --authfile bad-auth.json logout 127.0.0.1:5000
expect_around 1 "grocker: error: while pulling docker://127.0.0.1:1/x:latest: while contacting the registry 127.0.0.1:1 (http, then https): GET https://127.0.0.1:1/v2/: Failed to connect to 127.0.0.1 port 1 after " \
    " ms: Couldn't connect to server; is the registry running and reachable?" inspect docker://127.0.0.1:1/x

# A command that fails under run --commit: its status, and nothing committed. The image holds
# /bin/false and the libraries it needs, from the host.
mkdir -p falsy/bin
cp /bin/false falsy/bin/
for lib in $(ldd /bin/false | grep -o '/[^ ]*'); do
    mkdir -p "falsy$(dirname "$lib")"
    cp "$lib" "falsy$lib"
done
"$GROCKER" -q --root good-store append scratch oci:falsy:v1 --dir falsy >/dev/null
expect 1 "grocker: error: '/bin/false' exited with status 1: nothing was committed to oci:out" \
    run --commit oci:out oci:falsy:v1 -- /bin/false

# Paths this user may not read, as user nobody: the path and the system's reason, no internal error.
mkdir locked nobody-stores
chmod 0700 locked
chmod 0755 .
chmod 1777 nobody-stores
as_nobody=1 store_prefix=nobody-stores/ expect 1 "grocker: error: --dir 'locked/x': unable to read 'locked/x': Permission denied" \
    append scratch oci:nobody-stores/out --dir locked/x
as_nobody=1 store_prefix=nobody-stores/ expect 1 "grocker: error: unable to unpack into 'locked/x': Permission denied" \
    unpack oci:single:v1 locked/x
as_nobody=1 store_prefix=nobody-stores/ expect 1 "grocker: error: oci:locked/x: unable to read the folder: Permission denied" \
    inspect oci:locked/x
mkdir unreadable
echo secret >unreadable/f
chmod 0000 unreadable/f
as_nobody=1 store_prefix=nobody-stores/ expect 1 "grocker: error: while writing a layer from 'unreadable': unable to open 'unreadable/f': Permission denied" \
    append scratch oci:nobody-stores/out --dir unreadable
# Caught by main's last resort (sandbox/sandbox.cc's Volume::parse does not wrap its std::filesystem call).
as_nobody=1 store_prefix=nobody-stores/ expect 1 "grocker: error: --volume 'locked/x:/x': unable to read 'locked/x': Permission denied" \
    run --volume locked/x:/x oci:single:v1 -- /bin/true
[ -z "$(ls -A locked)" ] || fail "user nobody wrote into locked/: $(ls -A locked)"

left=$(find . -maxdepth 1 -name 'out*')
[ -z "$left" ] || fail "a failed command left behind: $left"
# No failure left a temporary file or folder beside its target, nor a blob in a store that is
# not whole (each blob's name is its content's digest), nor a temporary file in a store.
left=$(find . -maxdepth 3 \( -name '.tmp-*' -o -name '.grocker-unpack-*' \) -not -path './store*/tmp/*' -not -path './nobody-stores/store*/tmp/*')
[ -z "$left" ] || fail "a failed command left temporary files: $left"
for s in store* nobody-stores/store*; do
    [ -d "$s" ] || continue
    if [ -d "$s/tmp" ] && [ -n "$(ls -A "$s/tmp")" ]; then fail "a failed command left in $s/tmp: $(ls -A "$s/tmp")"; fi
    [ -d "$s/blobs/sha256" ] || continue
    for b in "$s"/blobs/sha256/*; do
        [ -e "$b" ] || continue
        [ "$(sha256sum "$b" | cut -d' ' -f1)" = "$(basename "$b")" ] || fail "$b is not whole: its digest is not its name"
    done
done

echo "all error checks passed"
