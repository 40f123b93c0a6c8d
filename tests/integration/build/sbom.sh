#!/bin/bash
# The SBOMs and the provenance a build attaches to the runner it writes to an oci: layout, an
# oci-archive or a registry:
#   - CycloneDX 1.5, valid for CycloneDX's own validator (@cyclonedx/cyclonedx-library's strict
#     JSON schema validation, installed with npm), and SPDX 2.3 with every field the spec
#     requires (fixtures/check-spdx.py, which is shown to fail on a broken document);
#   - exact: every package dpkg's database of the image lists, with its version; every wheel of
#     the venv with its hash (the store's file) and the sdist or project it was built from;
#   - the same bytes for the same build; attached as OCI 1.1 referrers (subject, artifactType),
#     which skopeo and umoci read past; none with --no-sbom; clear errors without one;
#   - the provenance (in-toto v1, SLSA v1) with every field the specs require
#     (fixtures/check-provenance.py), naming the root, compiler and sdist by their digests;
#   - grocker attestations lists them from a layout, an archive and a registry;
#   - every package @cyclonedx/cdxgen (npm, trivy inside) finds in the image, the SBOM lists:
#     Debian binary and source packages, and the Python distributions of the venv and of the
#     Debian packages (pip's and setuptools' wheels).
# Uses the warm store of tests/integration/build/build.sh ($GROCKER_TEST_CACHE/build-store).
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${GROCKER_SOURCE_ROOT:?}"
: "${GROCKER_TEST_CACHE:?}"
need_tools tar jq node npm skopeo umoci podman docker-registry unzip "$PY"
[ "$(id -u)" = 0 ] || fail "run as root"
setup grocker-build-sbom
store=$GROCKER_TEST_CACHE/build-store
app=$GROCKER_SOURCE_ROOT/example/hello

# CycloneDX's validator, installed once into the test cache (pinned versions).
npmdir=$GROCKER_TEST_CACHE/npm-cyclonedx
"$fixtures/npm-cyclonedx.sh" "$npmdir" || fail "could not install CycloneDX's validator"
validate_cdx() { (cd "$npmdir" && node validate-cyclonedx.mjs "$1" 1.5); }

mkdir -p "$tmp/links"
tar -czf "$tmp/links/grocker-greeting-1.0.0.tar.gz" --owner=0 --group=0 --mtime=@0 --sort=name \
    -C "$GROCKER_SOURCE_ROOT/example" --transform 's,^greeting,grocker-greeting-1.0.0,' greeting
build() { # DEST [options]
    local dest=$1
    shift
    run "build into $dest" "$GROCKER" --root "$store" build "$app" -c "$app/.grocker.yml" --no-index \
        --find-links "$tmp/links" --no-push --output "oci:$dest:grocker-hello" "$@"
}
build "$tmp/out"
digest=$(tail -n1 <<<"$out")
expect_match "the build says what it described" "sbom: [0-9]+ Debian packages \(2 Python distributions in them\), 2 Python distributions in the venv \(CycloneDX 1.5, SPDX 2.3\)" "$err"
expect_match "and its provenance" "provenance: SLSA v1, 6 resolved dependencies" "$err"
run "grocker sbom" "$GROCKER" --root "$store" sbom "oci:$tmp/out:grocker-hello"
printf '%s\n' "$out" >"$tmp/bom.cdx.json"
run "grocker sbom --format spdx" "$GROCKER" --root "$store" sbom --format spdx "oci:$tmp/out:grocker-hello"
printf '%s\n' "$out" >"$tmp/bom.spdx.json"

# --- valid, for outsiders ------------------------------------------------------------------------
v=$(validate_cdx "$tmp/bom.cdx.json") || fail "CycloneDX's validator refused the SBOM: $v"
jq '.components[0].hashes[0].alg = "SHA-257"' "$tmp/bom.cdx.json" >"$tmp/broken.cdx.json"
! validate_cdx "$tmp/broken.cdx.json" >/dev/null || fail "the validator accepted a broken SBOM: it checks nothing"
ok "CycloneDX's own validator accepts the SBOM (and refuses it broken)"
v=$("$PY" "$fixtures/check-spdx.py" "$tmp/bom.spdx.json") || fail "the SPDX document lacks what the spec requires: $v"
jq '.packages[0].SPDXID = "bad id" | del(.creationInfo.created)' "$tmp/bom.spdx.json" >"$tmp/broken.spdx.json"
! "$PY" "$fixtures/check-spdx.py" "$tmp/broken.spdx.json" >/dev/null || fail "check-spdx.py accepted a broken document"
ok "the SPDX document has every field SPDX 2.3 requires (and the check refuses a broken one)"

# --- exact -----------------------------------------------------------------------------------------
run "unpack the runner" "$GROCKER" --root "$store" unpack "oci:$tmp/out:grocker-hello" "$tmp/rootfs"
expected=$("$PY" - "$tmp/rootfs/var/lib/dpkg/status" <<'PY'
import sys
for para in open(sys.argv[1]).read().split("\n\n"):
    f = dict(l.split(": ", 1) for l in para.splitlines() if ": " in l and not l.startswith(" "))
    if f.get("Status", "").endswith(" installed"):
        print(f["Package"], f["Version"])
PY
)
expected=$(sort <<<"$expected")
listed=$(jq -r '.components[] | select(.purl | startswith("pkg:deb/")) | "\(.name) \(.version)"' "$tmp/bom.cdx.json" | sort)
expect_eq "the Debian packages of the SBOM (name version)" "$expected" "$listed"
n=$(wc -l <<<"$expected")
spdx_debs=$(jq -r '.packages[] | select(.externalRefs[0].referenceLocator | startswith("pkg:deb/")) | "\(.name) \(.versionInfo)"' "$tmp/bom.spdx.json" | sort)
expect_eq "the Debian packages of the SPDX document" "$expected" "$spdx_debs"
expect_match "a purl with its version encoded" '"pkg:deb/debian/libc6@2\.36-9%2Bdeb12u[0-9]+\?arch=amd64&distro=debian-12"' "$(cat "$tmp/bom.cdx.json")"
expect_eq "the app is the subject" "grocker-hello 1.0.0 application" "$(jq -r '.metadata.component | "\(.name) \(.version) \(.type)"' "$tmp/bom.cdx.json")"
wheel_hash() { jq -r --arg n "$1" '(.metadata.component, .components[]) | select(.name == $n) | .hashes[0].content' "$tmp/bom.cdx.json"; }
for w in grocker_hello-1.0.0-py3-none-any.whl grocker_greeting-1.0.0-py3-none-any.whl; do
    name=$(cut -d- -f1 <<<"$w" | tr _ -)
    installed=$(find "$tmp/rootfs/home/grocker/venv" -path "*/${w%-py3-none-any.whl}.dist-info" | head -n1)
    [ -n "$installed" ] || fail "no $w in the venv"
    hash=$(wheel_hash "$name")
    [ -f "$store/cache/files/sha256/$hash" ] || fail "the hash of $name's wheel ($hash) is no wheel file of the store"
    # The wheel with that hash is the one installed: its module and metadata, byte for byte.
    for f in METADATA WHEEL; do
        unzip -p "$store/cache/files/sha256/$hash" "*.dist-info/$f" | cmp -s - "$installed/$f" ||
            fail "the wheel of $name with the SBOM's hash is not the one installed ($f differs)"
    done
done
sdist_hash=$(sha256sum "$tmp/links/grocker-greeting-1.0.0.tar.gz" | cut -d' ' -f1)
expect_eq "the dependency's sdist" "grocker-greeting-1.0.0.tar.gz sha256:$sdist_hash" \
    "$(jq -r '.components[] | select(.name == "grocker-greeting") | .properties[] | select(.name == "grocker:built-from-sdist") | .value' "$tmp/bom.cdx.json")"
expect_eq "the app depends on its dependency" "true" \
    "$(jq '[.dependencies[] | select(.ref == "pkg:pypi/grocker-hello@1.0.0") | .dependsOn[]] | index("pkg:pypi/grocker-greeting@1.0.0") != null' "$tmp/bom.cdx.json")"
expect_eq "python3 depends on its interpreter" "true" \
    "$(jq '[.dependencies[] | select(.ref | startswith("pkg:deb/debian/python3@")) | .dependsOn[] | select(startswith("pkg:deb/debian/python3.11@"))] | length == 1' "$tmp/bom.cdx.json")"
expect_match "licences from machine-readable copyright files" '"expression": "GPL-2.0-or-later"' "$(jq '.components[] | select(.name == "adduser")' "$tmp/bom.cdx.json")"
ok "exact: the $n packages of the image's dpkg database, the wheels installed (hashes, sdist), dependencies, licences"

# --- reproducible, attached, optional --------------------------------------------------------------
build "$tmp/again"
run "grocker sbom again" "$GROCKER" --root "$store" sbom "oci:$tmp/again:grocker-hello"
printf '%s\n' "$out" | cmp -s - "$tmp/bom.cdx.json" || fail "the second build's SBOM differs"
cmp -s "$tmp/out/index.json" "$tmp/again/index.json" || fail "the second build's layout index differs"
ok "the same build gives the same SBOM bytes and the same layout"
# The root's package list is kept per root: a broken one is fsck's to report, and made again.
# The runner's root, by the label its config carries, and its digest in the store's index.
m=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "grocker-hello") | .digest' "$tmp/out/index.json")
cfg=$(jq -r .config.digest "$tmp/out/blobs/sha256/${m#sha256:}")
root_name=$(jq -r '.config.Labels["grocker.root.image"]' "$tmp/out/blobs/sha256/${cfg#sha256:}")
root_digest=$(jq -r --arg n "$root_name" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $n) | .digest' "$store/index.json")
entry=$store/cache/packages/${root_digest#sha256:}.json
[ -f "$entry" ] || fail "no package list kept in the store for $root_name"
cp "$entry" "$tmp/entry.json"
echo '{"root": "sha256:0"}' >"$entry"
run_fails "fsck with a broken package list" "$GROCKER" --root "$store" fsck
expect_match "fsck names it" "^$entry: broken package list: " "$out"
build "$tmp/healed"
run "grocker sbom after the heal" "$GROCKER" --root "$store" sbom "oci:$tmp/healed:grocker-hello"
printf '%s\n' "$out" | cmp -s - "$tmp/bom.cdx.json" || fail "the SBOM made after the broken list differs"
cmp -s "$entry" "$tmp/entry.json" || fail "the package list made again differs"
ok "the root's package list kept in the store: fsck reports a broken one, the build makes it again"
expect_eq "the layout lists the image and its three referrers" "grocker-hello application/vnd.cyclonedx+json application/spdx+json application/vnd.in-toto+json" \
    "$(jq -r '[.manifests[] | .annotations["org.opencontainers.image.ref.name"] // .artifactType] | join(" ")' "$tmp/out/index.json")"
for type in application/vnd.cyclonedx+json application/spdx+json application/vnd.in-toto+json; do
    m=$(jq -r --arg t "$type" '.manifests[] | select(.artifactType == $t) | .digest' "$tmp/out/index.json")
    expect_eq "the $type referrer's subject" "$digest" "$(jq -r .subject.digest "$tmp/out/blobs/sha256/${m#sha256:}")"
    expect_eq "its config" "application/vnd.oci.empty.v1+json 2" "$(jq -r '.config | "\(.mediaType) \(.size)"' "$tmp/out/blobs/sha256/${m#sha256:}")"
done
run "skopeo reads the image past its referrers" skopeo inspect "oci:$tmp/out:grocker-hello"
expect_eq "skopeo's digest" "$digest" "$(jq -r .Digest <<<"$out")"
run "umoci lists the tag" umoci ls --layout "$tmp/out"
expect_eq "umoci's tags" "grocker-hello" "$out"
run "grocker reads the untagged layout as its image" "$GROCKER" --root "$store" copy "oci:$tmp/out" "oci:$tmp/copied:x"
expect_eq "the image of the untagged layout" "$digest" "$(tail -n1 <<<"$out")"
build "$tmp/none" --no-sbom --no-provenance
expect_eq "--no-sbom --no-provenance: the image alone" 1 "$(jq '.manifests | length' "$tmp/none/index.json")"
run_fails "grocker sbom without one" "$GROCKER" --root "$store" sbom "oci:$tmp/none:grocker-hello"
expect_eq "its status" 1 "$rc"
expect_match "its message" "^grocker: error: oci:$tmp/none:grocker-hello: no CycloneDX SBOM is attached to its image $digest; grocker build attaches one to the runners it pushes or writes to oci: and oci-archive: outputs \(unless --no-sbom\)$" "$err"
run_fails "grocker sbom --format xml" "$GROCKER" --root "$store" sbom --format xml "oci:$tmp/out:grocker-hello"
expect_eq "its message" "grocker: --format is 'xml': use cyclonedx or spdx" "$err"
ok "attached as OCI referrers that skopeo and umoci read past; none with --no-sbom; clear errors"

# --- provenance ------------------------------------------------------------------------------------
run "grocker attestations" "$GROCKER" --root "$store" attestations "oci:$tmp/out:grocker-hello"
expect_eq "the list's first line" "oci:$tmp/out:grocker-hello ($digest): 3 attachments" "$(sed -n 1p <<<"$out")"
expect_match "the provenance listed with its predicate type" "^  sha256:[0-9a-f]{64}  application/vnd.in-toto\+json \(https://slsa.dev/provenance/v1\)  [0-9]+ B$" "$out"
run "grocker attestations --print provenance" "$GROCKER" --root "$store" attestations --print provenance "oci:$tmp/out:grocker-hello"
printf '%s\n' "$out" >"$tmp/provenance.json"
v=$("$PY" "$fixtures/check-provenance.py" "$tmp/provenance.json") || fail "the provenance lacks what in-toto and SLSA require: $v"
jq 'del(.predicate.runDetails.builder.id) | .subject[0].digest.sha256 = "ABC"' "$tmp/provenance.json" >"$tmp/broken.json"
! "$PY" "$fixtures/check-provenance.py" "$tmp/broken.json" >/dev/null || fail "check-provenance.py accepted a broken statement"
expect_eq "its subject is the runner" "grocker-hello:1.0.0 ${digest#sha256:}" "$(jq -r '.subject[0] | "\(.name) \(.digest.sha256)"' "$tmp/provenance.json")"
dep() { jq -r --arg n "$1" '.predicate.buildDefinition.resolvedDependencies[] | select(.name == $n) | "\(.uri // "") \(.digest.sha256 // "")"' "$tmp/provenance.json"; }
# The store is a layout: its index names the root and compiler images.
for role in root compiler; do
    name=$(dep $role | cut -d' ' -f1)
    expect_eq "the $role's digest" "$(jq -r --arg n "$name" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $n) | .digest' "$store/index.json")" \
        "sha256:$(dep $role | cut -d' ' -f2)"
done
expect_eq "the dependency's sdist by its hash" "pkg:pypi/grocker-greeting@1.0.0 $sdist_hash" "$(dep grocker-greeting-1.0.0.tar.gz)"
expect_match "the base by digest" " [0-9a-f]{64}$" "$(dep base)"
expect_eq "the configuration file's digest" "$(sha256sum "$app/.grocker.yml" | cut -d' ' -f1)" \
    "$(jq -r '.predicate.buildDefinition.externalParameters.configuration[0].digest.sha256' "$tmp/provenance.json")"
run "grocker attestations --print (a digest's start)" "$GROCKER" --root "$store" attestations \
    --print "$(jq -r '.manifests[] | select(.artifactType == "application/vnd.in-toto+json") | .digest' "$tmp/out/index.json" | cut -c1-16)" "oci:$tmp/out:grocker-hello"
printf '%s\n' "$out" | cmp -s - "$tmp/provenance.json" || fail "the provenance by digest differs"
run_fails "grocker attestations --print nothing-there" "$GROCKER" --root "$store" attestations --print sigstore "oci:$tmp/out:grocker-hello"
expect_match "its message" "^grocker: error: oci:$tmp/out:grocker-hello: no attachment is 'sigstore' \(3 attachments; use cyclonedx, spdx, provenance, sigstore, or a digest that grocker attestations lists\)$" "$err"
build "$tmp/sbom-only" --no-provenance
expect_eq "--no-provenance: the image and its SBOMs" "application/spdx+json application/vnd.cyclonedx+json" \
    "$(jq -r '[.manifests[] | .artifactType // empty] | sort | join(" ")' "$tmp/sbom-only/index.json")"
ok "the provenance: in-toto v1 and SLSA v1 fields, the root, compiler, base and sdist by digest; listed and printed"

# --- oci-archive ---------------------------------------------------------------------------------
build "$tmp/unused" --output "oci-archive:$tmp/out.tar:grocker-hello"
run "grocker attestations oci-archive:" "$GROCKER" --root "$tmp/fresh-archive" attestations "oci-archive:$tmp/out.tar"
expect_eq "the archive's attachments" "3 attachments" "$(sed -n 1p <<<"$out" | sed 's/.*: //')"
run "grocker sbom oci-archive:" "$GROCKER" --root "$tmp/fresh-archive" sbom "oci-archive:$tmp/out.tar"
printf '%s\n' "$out" | cmp -s - "$tmp/bom.cdx.json" || fail "the archive's SBOM differs from the layout's"
run "podman loads the archive" podman --root "$tmp/podman" --runroot "$tmp/podman-run" load -i "$tmp/out.tar"
expect_match "under its name" "Loaded image: localhost/grocker-hello:latest" "$out"
run "skopeo reads it by name" skopeo inspect "oci-archive:$tmp/out.tar:grocker-hello"
expect_eq "skopeo's digest of the archive" "$digest" "$(jq -r .Digest <<<"$out")"
ok "an oci-archive output carries the attachments; podman loads it under its name"

# --- against cdxgen --------------------------------------------------------------------------------
# CycloneDX's own generator (trivy inside, for the OS packages) scans the same image: every
# package it finds, grocker's SBOM lists.
"$fixtures/npm-cdxgen.sh" "$GROCKER_TEST_CACHE/npm-cdxgen" || fail "could not install cdxgen"
run "cdxgen on the image" env CDXGEN_NO_BANNER=1 FETCH_LICENSE=false \
    node "$GROCKER_TEST_CACHE/npm-cdxgen/node_modules/@cyclonedx/cdxgen/bin/cdxgen.js" -t docker "$tmp/out.tar" -o "$tmp/cdxgen.json"
run "grocker's SBOM covers what cdxgen found" "$PY" "$fixtures/compare-cdxgen.py" "$tmp/bom.cdx.json" "$tmp/cdxgen.json"
expect_match "cdxgen found the Debian packages" "^cdxgen: 1[0-9][0-9] Debian packages, [0-9]+ Debian source packages, 4 Python distributions" "$out"
cdxgen_counts=$out
jq 'del(.components[] | select(.name == "libc6" or .name == "pip"))' "$tmp/bom.cdx.json" >"$tmp/short.cdx.json"
run_fails "the comparison without libc6 and pip" "$PY" "$fixtures/compare-cdxgen.py" "$tmp/short.cdx.json" "$tmp/cdxgen.json"
expect_match "it names them" "missing from grocker's SBOM: Debian package libc6 .*missing from grocker's SBOM: Python distribution pip 23.0.1" "$(tr '\n' ' ' <<<"$out")"
ok "every package cdxgen finds in the image is in grocker's SBOM ($cdxgen_counts)"
# --- pushed: referrers in a registry without a referrers API (distribution 2.8) ------------------
start_registry plain reg
R=$REGISTRY
run "build and push to $R/team" "$GROCKER" --root "$store" --tls-verify=false build "$app" -c "$app/.grocker.yml" \
    --no-index --find-links "$tmp/links" --image-prefix "$R/team"
pushed=$(tail -n1 <<<"$out")
expect_match "the build says where it attached them" "attestations: attached to $R/team/grocker-hello:1.0.0 \(3 referrers\)" "$err"
expect_eq "the digest pushed is the one written" "$digest" "$pushed"
run "the referrers index of the tag schema" skopeo inspect --tls-verify=false --raw "docker://$R/team/grocker-hello:sha256-${digest#sha256:}"
expect_eq "its entries" "application/vnd.cyclonedx+json application/spdx+json application/vnd.in-toto+json" "$(jq -r '[.manifests[].artifactType] | join(" ")' <<<"$out")"
expect_eq "its media type" "application/vnd.oci.image.index.v1+json" "$(jq -r .mediaType <<<"$out")"
run "grocker sbom docker://" "$GROCKER" --root "$tmp/fresh" --tls-verify=false sbom "docker://$R/team/grocker-hello:1.0.0"
printf '%s\n' "$out" >"$tmp/pushed.cdx.json"
v=$(validate_cdx "$tmp/pushed.cdx.json") || fail "CycloneDX's validator refused the pushed SBOM: $v"
expect_eq "the pushed SBOM's packages are the written one's" \
    "$(jq -c '[.components[].purl]' "$tmp/bom.cdx.json")" "$(jq -c '[.components[].purl]' "$tmp/pushed.cdx.json")"
run "grocker sbom --format spdx docker://" "$GROCKER" --root "$tmp/fresh" --tls-verify=false sbom --format spdx "docker://$R/team/grocker-hello:1.0.0"
printf '%s\n' "$out" >"$tmp/pushed.spdx.json"
v=$("$PY" "$fixtures/check-spdx.py" "$tmp/pushed.spdx.json") || fail "the pushed SPDX document: $v"
# Pushed again: the index keeps one entry each, and the attachments are not sent again.
mark
run "build and push again" "$GROCKER" --root "$store" --tls-verify=false build "$app" -c "$app/.grocker.yml" \
    --no-index --find-links "$tmp/links" --image-prefix "$R/team"
expect_match "the build says they were there" "attestations: already attached to $R/team/grocker-hello:1.0.0 \(3 referrers\)" "$err"
expect_eq "uploads by the second push" 0 "$(count_since POST '/blobs/uploads/')"
run "the referrers index after a second push" skopeo inspect --tls-verify=false --raw "docker://$R/team/grocker-hello:sha256-${digest#sha256:}"
expect_eq "still three entries" 3 "$(jq '.manifests | length' <<<"$out")"
run "grocker attestations docker://" "$GROCKER" --root "$tmp/fresh" --tls-verify=false attestations --print provenance "docker://$R/team/grocker-hello:1.0.0"
printf '%s\n' "$out" >"$tmp/pushed-provenance.json"
v=$("$PY" "$fixtures/check-provenance.py" "$tmp/pushed-provenance.json") || fail "the pushed provenance: $v"
expect_eq "the pushed provenance names the pushed runner" "$R/team/grocker-hello:1.0.0" "$(jq -r '.subject[0].name' "$tmp/pushed-provenance.json")"
expect_eq "and the root as pushed" "$R/team/" "$(jq -r '.predicate.buildDefinition.resolvedDependencies[] | select(.name == "root") | .uri' "$tmp/pushed-provenance.json" | grep -o "^$R/team/")"
ok "pushed: both SBOMs and the provenance in the registry's referrers tag schema, read back from a fresh store"
# grocker copy, pull and push take the attachments along (a docker-archive has no place for them).
run "grocker copy to another repository" "$GROCKER" --root "$tmp/copier" --tls-verify=false copy "oci:$tmp/out:grocker-hello" "docker://$R/other/hello:1"
expect_match "it says so" "with 3 attachments \(grocker attestations docker://$R/other/hello:1\)" "$err"
run "grocker pull into an oci-archive" "$GROCKER" --root "$tmp/puller" --tls-verify=false pull "$R/other/hello:1" "oci-archive:$tmp/pulled.tar:hello"
run "grocker push from it" "$GROCKER" --root "$tmp/pusher" --tls-verify=false push "oci-archive:$tmp/pulled.tar:hello" "$R/third/hello:1"
run "the attachments after copy, pull and push" "$GROCKER" --root "$tmp/reader" --tls-verify=false attestations "docker://$R/third/hello:1"
expect_eq "all three" "3 attachments" "$(sed -n 1p <<<"$out" | sed 's/.*: //')"
run "grocker sbom after them" "$GROCKER" --root "$tmp/reader" --tls-verify=false sbom "docker://$R/third/hello:1"
printf '%s\n' "$out" | cmp -s - "$tmp/bom.cdx.json" || fail "the SBOM copied differs"
ok "grocker copy, pull and push carry the attachments: the same SBOM three copies later"
# A registry that refuses the referrers index: the image is pushed, the SBOMs are not, and a
# warning says so.
start_proxy px "$REGISTRY_URL"
faults "status PUT /manifests/sha256- status=400 times=0"
run "a push whose referrers index is refused" "$GROCKER" --root "$store" --tls-verify=false build "$app" \
    -c "$app/.grocker.yml" --no-index --find-links "$tmp/links" --image-prefix "$PROXY/refused"
expect_eq "the image is pushed all the same" "$digest" "$(tail -n1 <<<"$out")"
expect_match "a warning says what was not attached" "^grocker: warning: the attestations could not be attached to $PROXY/refused/grocker-hello:1.0.0: .*400.*; the image is pushed without them \(--no-sbom and --no-provenance skip them\)$" "$err"
expect_match "and one for the root's package list" "^grocker: warning: the package list of grocker-bookworm-3.11-root:[^ ]* could not be attached to it: .*400.*; runners built over it without its layers will have no SBOM$" "$err"
expect_match "and one for the compiler's SBOMs" "^grocker: warning: the SBOMs of grocker-bookworm-3.11-compiler:[^ ]* could not be attached to it: .*400" "$err"
run "the image in the registry" skopeo inspect --tls-verify=false "docker://$PROXY/refused/grocker-hello:1.0.0"
expect_eq "its digest" "$digest" "$(jq -r .Digest <<<"$out")"
ok "a registry refusing the referrers index costs the SBOMs, with a warning, not the push"
echo "all sbom checks passed"
