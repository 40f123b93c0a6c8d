#!/bin/bash
# grocker diff: two images made with `grocker append` over folders that differ in one file's
# content, one file's mode and one added file, in two transports (oci: and oci-archive:), compared
# as text, as JSON (read with jq) and with --quiet; exit 0 when identical, 1 when they differ,
# 2 for misuse, 1 with one `grocker: error:` line when a location cannot be read. The same image
# through docker-archive: is identical; an extra layer, another compression. Last, two images in
# a plain-HTTP docker-registry on loopback: only the layers that differ are downloaded.
#
# Run by `meson test` with GROCKER (the binary); standalone: GROCKER=build/src/grocker $0.
# A missing tool is a failure, never a skip. KEEP_TMP=1 keeps the temp folder.
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"

: "${GROCKER:?GROCKER must name the grocker binary}"
[ -x "$GROCKER" ] || fail "GROCKER='$GROCKER' is not an executable"
need_tools jq sha256sum docker-registry "$PY"

setup grocker-cli-diff
cd "$tmp"
g() { "$GROCKER" -q --root "$tmp/store" "$@"; }

# diff_status WHAT EXPECTED-STATUS [diff arguments...]: runs grocker diff; stdout in $out,
# stderr in $err; the status must be EXPECTED-STATUS.
diff_status() {
    local what=$1 expected=$2
    shift 2
    rc=0
    out=$(g diff "$@" 2>"$tmp/stderr") || rc=$?
    err=$(cat "$tmp/stderr")
    if [ "$rc" != "$expected" ]; then
        show_failure "$rc" grocker diff "$@"
        fail "$what: exit status $rc, expected $expected"
    fi
}
sha() { printf '%s' "$1" | sha256sum | cut -c1-12; }

# --- two images that differ --------------------------------------------------------------------
mkdir -p one/app two/app extra
printf 'hello\n' >one/app/hello.txt
printf 'hello, world\n' >two/app/hello.txt
printf '#!/bin/sh\necho hi\n' >one/app/run.sh
cp one/app/run.sh two/app/run.sh
chmod 0644 one/app/run.sh
chmod 0755 two/app/run.sh
printf 'same\n' >one/app/same.txt
cp one/app/same.txt two/app/same.txt
printf 'new\n' >two/app/new.txt
printf 'x\n' >extra/x
run "append one" g append scratch oci:layout:one --dir one:/srv --env MODE=one
one=$out
run "append two" g append scratch oci-archive:two.tar:two --dir two:/srv --env MODE=two
two=$out

diff_status "diff one two" 1 oci:layout:one oci-archive:two.tar:two
expect_eq "diff's stderr" "" "$err"
text=$out
expect_eq "first line" "--- oci:layout:one $one (1 layer)" "$(sed -n 1p <<<"$text")"
expect_eq "second line" "+++ oci-archive:two.tar:two $two (1 layer)" "$(sed -n 2p <<<"$text")"
expect_match "the Env change" '^  config\.Env\["MODE"\]: "one" -> "two"$' "$text"
layer_section=$(sed -n '/^layer 1:/,/^$/p' <<<"$text")
expected="  ~ /srv/app/hello.txt  content 6 bytes sha256:$(sha $'hello\n') -> 13 bytes sha256:$(sha $'hello, world\n')
  + /srv/app/new.txt  file 0644 0:0, 4 bytes sha256:$(sha $'new\n')
  ~ /srv/app/run.sh  mode 0644 -> 0755"
expect_eq "the layer's files" "$expected" "$(sed -e 1d -e '/^$/d' <<<"$layer_section")"
expect_match "the layer's heading" '^layer 1: sha256:[0-9a-f]{12} -> sha256:[0-9a-f]{12}: 1 added, 0 removed, 2 changed \(5 -> 6 entries\)$' "$layer_section"
expect_no_match "same.txt is the same" 'same\.txt' "$text"
expect_eq "summary line" "1 layer differs, 1 file added, 0 removed, 2 changed" "$(tail -n1 <<<"$text")"
ok "diff oci: against oci-archive: shows the content, the mode, the added file and the Env"

diff_status "diff --json" 1 --json oci:layout:one oci-archive:two.tar:two
json=$out
expect_eq "json: identical" false "$(jq -r .identical <<<"$json")"
expect_eq "json: digests" "$one $two" "$(jq -r '"\(.old.digest) \(.new.digest)"' <<<"$json")"
expect_eq "json: summary" '{"layers":1,"added":1,"removed":0,"changed":2}' \
    "$(jq -c '.summary | {layers, added, removed, changed}' <<<"$json")"
expect_eq "json: files" '["changed /srv/app/hello.txt content","added /srv/app/new.txt ","changed /srv/app/run.sh mode"]' \
    "$(jq -c '[.layers[0].files[] | "\(.change) \(.path) \((.attributes // []) | join(","))"]' <<<"$json")"
expect_eq "json: mode" '"0644" "0755"' \
    "$(jq -r '.layers[0].files[] | select(.path == "/srv/app/run.sh") | "\"\(.old.mode)\" \"\(.new.mode)\""' <<<"$json")"
expect_eq "json: content" "6 13 sha256:$(printf 'hello, world\n' | sha256sum | cut -d' ' -f1)" \
    "$(jq -r '.layers[0].files[0] | "\(.old.size) \(.new.size) \(.new.sha256)"' <<<"$json")"
expect_eq "json: Env" '{"path":"config.Env[\"MODE\"]","old":"one","new":"two"}' \
    "$(jq -c '.config[] | select(.path | startswith("config.Env")) | {path, old, new}' <<<"$json")"
expect_eq "json: verdict" files-differ "$(jq -r '.layers[0].verdict' <<<"$json")"
ok "diff --json says the same for jq"

diff_status "diff --quiet (different)" 1 --quiet oci:layout:one oci-archive:two.tar:two
expect_eq "--quiet prints nothing" "" "$out$err"
diff_status "diff -q (identical)" 0 -q oci:layout:one oci:layout:one
expect_eq "-q prints nothing" "" "$out$err"
ok "--quiet: only the exit status"

# --- identical images, any transport -----------------------------------------------------------
diff_status "diff one one" 0 oci:layout:one oci:layout:one
expect_eq "identical" "oci:layout:one and oci:layout:one are identical ($one, 1 layer)" "$out"
run "copy two to docker-archive:" g copy oci-archive:two.tar:two docker-archive:two-docker.tar:two:v1
diff_status "diff docker-archive: oci-archive:" 0 docker-archive:two-docker.tar oci-archive:two.tar:two
expect_match "identical through docker-archive:" ' are identical \(' "$out"
diff_status "diff --json (identical)" 0 --json oci:layout:one oci:layout:one
expect_eq "json: identical" "true 0" "$(jq -r '"\(.identical) \(.layers | length)"' <<<"$out")"
ok "an image is identical to itself, and to its copy in a docker-archive:"

# --- an extra layer, another compression, --max-files ---------------------------------------------
run "append three (one + a layer)" g append oci:layout:one oci:layout:three --dir extra:/opt/extra
diff_status "diff one three" 1 oci:layout:one oci:layout:three
expect_match "the extra layer" '^layer 2: only in the second image: sha256:[0-9a-f]{12} \(3 entries\)$' "$out"
expect_match "its file" '^  \+ /opt/extra/x  file 0644 0:0, 2 bytes ' "$out"
expect_eq "three's summary" "1 layer differs, 3 files added, 0 removed, 0 changed" "$(tail -n1 <<<"$out")"
diff_status "diff --max-files 1" 1 --max-files 1 oci:layout:one oci:layout:three
expect_match "capped" '^  \.\.\. and 2 more \(--max-files\)$' "$out"
run "append one as zstd" g append scratch oci:layout:zstd --dir one:/srv --env MODE=one --compression zstd
diff_status "diff gzip zstd" 1 oci:layout:one oci:layout:zstd
expect_match "same files" '^layer 1: sha256:[0-9a-f]{12} -> sha256:[0-9a-f]{12}: same files, different archive bytes \(compression' "$out"
expect_match "the media type" '^  mediaType: ".*tar\+gzip" -> ".*tar\+zstd"$' "$out"
# A folder's .wh. files are whiteouts in a layer (the layer writer keeps them as they are).
mkdir -p wh/etc
touch wh/etc/.wh.gone wh/etc/.wh..wh..opq
run "append whiteouts" g append oci:layout:one oci:layout:wh --dir wh:/srv
diff_status "diff one wh" 1 oci:layout:one oci:layout:wh
expect_match "a whiteout" '^  \+ /srv/etc/\.wh\.gone  whiteout: removes /srv/etc/gone of the layers below$' "$out"
expect_match "an opaque marker" '^  \+ /srv/etc/\.wh\.\.wh\.\.opq  opaque marker: hides what the layers below have in /srv/etc$' "$out"
ok "an extra layer lists its files, whiteouts as such; another compression is said so; --max-files caps"

# --- misuse and failures ---------------------------------------------------------------------
diff_status "one image" 2 oci:layout:one
expect_match "IMAGE2 is required" 'IMAGE2 is required' "$err"
expect_eq "no stdout on misuse" "" "$out"
diff_status "a bad --max-files" 2 --max-files -3 oci:layout:one oci:layout:one
expect_eq "--max-files -3" "grocker: --max-files: '-3' is not a number of files: give 0 (all of them) or more
Run 'grocker --help' for usage." "$err"
diff_status "a missing location" 1 oci:layout:one oci:nowhere:v1
expect_eq "a missing location" "grocker: error: oci:nowhere:v1: no such folder; check the path" "$err"
expect_eq "no stdout on failure" "" "$out"
ok "misuse exits 2; a failure exits 1 with one line and nothing on stdout"

# --- from a registry: only the layers that differ are downloaded ----------------------------------
start_registry plain reg
run "append four (one + another layer)" g append oci:layout:one oci:layout:four --dir two:/opt/extra
run "push three" g copy oci:layout:three "docker://$REGISTRY/test/diff:three"
run "push four" g copy oci:layout:four "docker://$REGISTRY/test/diff:four"
layer() { g inspect "oci:layout:$1" | jq -r ".manifest.layers[$2].digest"; }
shared=$(layer three 0)
expect_eq "three and four share their first layer" "$shared" "$(layer four 0)"
mark
rc=0
"$GROCKER" -q --root "$tmp/fresh-store" diff "docker://$REGISTRY/test/diff:three" \
    "docker://$REGISTRY/test/diff:four" >registry-diff.txt 2>"$tmp/stderr" || rc=$?
expect_eq "registry diff status" 1 "$rc"
expect_match "layer 2 compared" '^layer 2: sha256:[0-9a-f]{12} -> sha256:[0-9a-f]{12}: 5 added, 1 removed, 0 changed' "$(cat registry-diff.txt)"
expect_eq "GETs of the layer both images share" 0 "$(count_since GET "/blobs/$shared\$")"
expect_eq "GETs of three's second layer" 1 "$(count_since GET "/blobs/$(layer three 1)\$")"
expect_eq "GETs of four's second layer" 1 "$(count_since GET "/blobs/$(layer four 1)\$")"
ok "diff docker:// docker:// fetched only the layers that differ"
