#!/bin/bash
# Checks from outside that what `grocker append` and `grocker copy` write is read, validated,
# unpacked, loaded and run by the real OCI tools: skopeo, oci-image-tool, umoci, podman (with
# runc), and that grocker reads back what skopeo writes.
#
# Run by `meson test` with GROCKER (the binary); standalone: GROCKER=build/src/grocker $0.
# A missing peer tool is a failure, never a skip: a green run must mean every check ran.
set -eu -o pipefail

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
ok() { echo "ok: $*"; }

# Runs "$@" and fails with its output when it fails; its stdout is kept in $out.
run() {
    local what=$1
    shift
    if ! out=$("$@" 2>"$tmp/stderr"); then
        echo "--- command: $*" >&2
        echo "--- stdout:" >&2
        printf '%s\n' "$out" >&2
        echo "--- stderr:" >&2
        cat "$tmp/stderr" >&2
        fail "$what"
    fi
}

expect_eq() { # what expected actual
    [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}

: "${GROCKER:?GROCKER must name the grocker binary}"
[ -x "$GROCKER" ] || fail "GROCKER='$GROCKER' is not an executable"
for tool in skopeo umoci oci-image-tool podman runc jq zstd tar sha256sum cmp find sort diff; do
    command -v "$tool" >/dev/null || fail "peer tool '$tool' is missing: install it (Debian package skopeo, umoci, oci-image-tool, podman, runc, jq, zstd)"
done
# The image's only program: a static busybox runs in an empty rootfs.
busybox=/bin/busybox
[ -x "$busybox" ] || fail "$busybox is missing: install Debian's busybox-static"
file_type=$(LC_ALL=C od -An -c -N4 "$busybox" | tr -d ' ')
expect_eq "$busybox is an ELF file" '177ELF' "$file_type"
if LC_ALL=C ldd "$busybox" 2>&1 | grep -q '=>'; then fail "$busybox is dynamically linked: install busybox-static"; fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/grocker-oci-tools.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# skopeo and podman unpack archives under TMPDIR: keep that inside the test's folder.
mkdir "$tmp/tmp"
export TMPDIR=$tmp/tmp
cd "$tmp"

g() { "$GROCKER" -q --root "$tmp/store" "$@"; }

# podman with its own storage in the temp dir; `run` needs the extra flags of DESIGN.md §4
# (hybrid cgroups, which crun refuses; podman's default rlimits exceed the machine's hard ones).
pod() {
    local name=$1
    shift
    podman --root "$tmp/podman-$name/root" --runroot "$tmp/podman-$name/runroot" --storage-driver vfs "$@"
}
pod_run() {
    local name=$1
    shift
    pod "$name" --cgroup-manager cgroupfs --runtime runc run --rm --ulimit nofile=1024:1024 \
        --ulimit nproc=1024:1024 --network none "$@"
}

name=grocker-test/busybox
hello='hello from grocker'

# --- build ---------------------------------------------------------------------------------
mkdir -p folder/bin
cp "$busybox" folder/bin/busybox
ln -s busybox folder/bin/sh
ln -s busybox folder/bin/echo

build() { # DEST [extra append options]
    local dest=$1
    shift
    run "grocker append scratch $dest" g append scratch "$dest" --dir folder --entrypoint /bin/busybox \
        --cmd echo --cmd "$hello" "$@"
    printf '%s' "$out"
}
digest=$(build oci:oci-out:v1)
[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || fail "grocker append printed '$digest', not a digest"
digest_oa=$(build "oci-archive:oa.tar:$name:v1")
digest_da=$(build "docker-archive:da.tar:$name:v1")
expect_eq "same image in oci-archive" "$digest" "$digest_oa"
expect_eq "same image in docker-archive" "$digest" "$digest_da"
ok "grocker append wrote $digest to oci:, oci-archive:, docker-archive:"

run "grocker inspect" g inspect oci:oci-out:v1
config_digest=$(jq -r .manifest.config.digest <<<"$out")
diff_ids=$(jq -c .config.rootfs.diff_ids <<<"$out")
config_json=$(jq -S .config <<<"$out")
expect_eq "grocker inspect digest" "$digest" "$(jq -r .digest <<<"$out")"
expect_eq "one layer" 1 "$(jq '.manifest.layers | length' <<<"$out")"

# --- skopeo inspect ------------------------------------------------------------------------
for loc in oci:oci-out:v1 "oci-archive:oa.tar:$name:v1" oci-archive:oa.tar "docker-archive:da.tar:$name:v1" \
    docker-archive:da.tar; do
    run "skopeo inspect --raw $loc" skopeo inspect --raw "$loc"
    raw=$out
    run "skopeo inspect --config --raw $loc" skopeo inspect --config --raw "$loc"
    expect_eq "skopeo config digest of $loc" "$config_digest" "sha256:$(printf '%s' "$out" | sha256sum | cut -d' ' -f1)"
    run "skopeo inspect --config $loc" skopeo inspect --config "$loc"
    expect_eq "skopeo config of $loc" "$config_json" "$(jq -S . <<<"$out")"
    expect_eq "skopeo Cmd of $loc" '["echo","hello from grocker"]' "$(jq -c .config.Cmd <<<"$out")"
    run "skopeo inspect $loc" skopeo inspect "$loc"
    info=$out
    expect_eq "skopeo Architecture of $loc" "$(jq -r .architecture <<<"$config_json")" "$(jq -r .Architecture <<<"$info")"
    case $loc in
    docker-archive:*)
        # skopeo synthesises a docker manifest whose layers are the uncompressed diff_ids.
        expect_eq "skopeo manifest type of $loc" application/vnd.docker.distribution.manifest.v2+json \
            "$(jq -r .mediaType <<<"$raw")"
        expect_eq "skopeo manifest config of $loc" "$config_digest" "$(jq -r .config.digest <<<"$raw")"
        expect_eq "skopeo layers of $loc are the diff_ids" "$diff_ids" "$(jq -c '[.layers[].digest]' <<<"$raw")"
        expect_eq "skopeo inspect Layers of $loc" "$diff_ids" "$(jq -c .Layers <<<"$info")"
        ;;
    *)
        expect_eq "skopeo manifest digest of $loc" "$digest" "sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)"
        expect_eq "skopeo inspect Digest of $loc" "$digest" "$(jq -r .Digest <<<"$info")"
        ;;
    esac
    ok "skopeo inspect (--raw, --config) of $loc"
done

# --- skopeo copy out of grocker's outputs and back into grocker ------------------------------
for src in oci:oci-out:v1 "oci-archive:oa.tar:$name:v1" docker-archive:da.tar; do
    n=$((${n:-0} + 1))
    run "skopeo copy $src oci:copy$n:copied" skopeo copy -q "$src" "oci:copy$n:copied"
    run "grocker inspect of skopeo's copy of $src" g inspect "oci:copy$n:copied"
    case $src in
    docker-archive:*)
        # Converting a docker manifest to OCI, skopeo re-serialises the config (its own key
        # order), so only its content and the diff_ids are kept; with --format v2s2 there is no
        # conversion and the config digest is kept.
        expect_eq "config of skopeo's OCI copy of $src" "$config_json" "$(jq -S .config <<<"$out")"
        expect_eq "diff_ids of skopeo's OCI copy of $src" "$diff_ids" "$(jq -c .config.rootfs.diff_ids <<<"$out")"
        run "skopeo copy --format v2s2 $src" skopeo copy -q --format v2s2 "$src" oci:copy-v2s2:copied
        run "grocker inspect of a docker v2s2 manifest in an OCI layout" g inspect oci:copy-v2s2:copied
        expect_eq "config digest of skopeo's v2s2 copy of $src" "$config_digest" "$(jq -r .manifest.config.digest <<<"$out")"
        ;;
    *)
        expect_eq "manifest digest of skopeo's copy of $src" "$digest" "$(jq -r .digest <<<"$out")"
        expect_eq "config digest of skopeo's copy of $src" "$config_digest" "$(jq -r .manifest.config.digest <<<"$out")"
        ;;
    esac
    run "grocker copy of skopeo's copy of $src" g copy "oci:copy$n:copied" "oci-archive:back$n.tar"
    run "grocker inspect oci-archive:back$n.tar" g inspect "oci-archive:back$n.tar"
    [ "$src" = docker-archive:da.tar ] ||
        expect_eq "config digest after skopeo and grocker copies of $src" "$config_digest" "$(jq -r .manifest.config.digest <<<"$out")"
    expect_eq "diff_ids after skopeo and grocker copies of $src" "$diff_ids" "$(jq -c .config.rootfs.diff_ids <<<"$out")"
    ok "skopeo copy $src → oci: → grocker copy/inspect keeps the image"
done

run "skopeo copy to oci-archive" skopeo copy -q oci:oci-out:v1 oci-archive:skopeo.tar
run "grocker inspect of skopeo's oci-archive" g inspect oci-archive:skopeo.tar
expect_eq "digest of skopeo's oci-archive" "$digest" "$(jq -r .digest <<<"$out")"
run "skopeo copy to docker-archive" skopeo copy -q oci:oci-out:v1 "docker-archive:skopeo-d.tar:$name:v1"
run "grocker inspect of skopeo's docker-archive" g inspect docker-archive:skopeo-d.tar
expect_eq "config of skopeo's docker-archive" "$config_json" "$(jq -S .config <<<"$out")"
ok "grocker reads skopeo's oci-archive and docker-archive"

# --- oci-image-tool --------------------------------------------------------------------------
# 1.0.0-rc1 has no --type imageLayout ("unimplemented"): a layout folder is --type image, and
# its tar reading fails on every archive (skopeo's too: "unable to walk: end of walk"), so the
# archive is checked as an extracted folder.
run "oci-image-tool validate oci:oci-out" oci-image-tool validate --type image --ref name=v1 oci-out
mkdir oa-extracted
tar -C oa-extracted -xf oa.tar
run "oci-image-tool validate of the extracted oci-archive" oci-image-tool validate --type image \
    --ref "name=$name:v1" oa-extracted
ok "oci-image-tool validate --type image (oci: folder and extracted oci-archive)"

# --- umoci unpack, compared with grocker unpack ----------------------------------------------
listing() { # type, mode, owner, size of files, link target; the root itself left out
    (cd "$1" && find . -mindepth 1 -printf '%y %#m %U:%G %P' \( -type f -printf ' %s' -o -true \) \( -type l -printf ' -> %l' -o -true \) -printf '\n' | LC_ALL=C sort)
}
run "umoci unpack" umoci unpack --rootless --image oci-out:v1 bundle
[ -x bundle/rootfs/bin/busybox ] || fail "umoci unpack: no executable bin/busybox in bundle/rootfs"
cmp -s "$busybox" bundle/rootfs/bin/busybox || fail "umoci unpack: bin/busybox differs from $busybox"
for l in sh echo; do
    expect_eq "umoci unpack: bin/$l" busybox "$(readlink bundle/rootfs/bin/$l)"
done
run "grocker unpack" g unpack oci:oci-out:v1 grocker-rootfs
cmp -s "$busybox" grocker-rootfs/bin/busybox || fail "grocker unpack: bin/busybox differs from $busybox"
if ! diff -u <(listing bundle/rootfs) <(listing grocker-rootfs) >listing.diff; then
    cat listing.diff >&2
    fail "umoci unpack and grocker unpack give different trees (- umoci, + grocker)"
fi
ok "umoci unpack --rootless has bin/busybox and its symlinks; grocker unpack gives the same tree"

# --- podman load and run ---------------------------------------------------------------------
podman_id() { # STORE NAME → image ID
    pod "$1" images --noheading --format '{{.Repository}}:{{.Tag}} {{.ID}}' | awk -v n="$2" '$1 == n { print $2 }'
}
# Grocker's archives are both layouts; podman takes the OCI side first, naming the image
# from io.containerd.image.name.
for archive in oa.tar da.tar; do
    store=${archive%.tar}
    run "podman load -i $archive" pod "$store" load -i "$archive"
    id=$(podman_id "$store" "docker.io/$name:v1")
    [ -n "$id" ] || fail "podman images after loading $archive does not show docker.io/$name:v1: $(pod "$store" images)"
    expect_eq "podman image ID of $archive" "${config_digest:7:12}" "$id"
    ok "podman load -i $archive; podman images shows docker.io/$name:v1"
done
# The docker-save side alone, as a docker-only tool sees it. (Re-tarred with GNU tar:
# `tar --delete` truncates archives not padded to a 10 KiB record, such as these.)
mkdir da-extracted
tar -C da-extracted -xf da.tar
tar -C da-extracted -cf docker-save.tar manifest.json blobs
run "podman load of the docker-save part" pod ds load -i docker-save.tar
grep -q "Loaded image: .*$name:v1" <<<"$out" || fail "podman load of the docker-save part: $out"
id=$(pod ds images --noheading --format '{{.Repository}}:{{.Tag}} {{.ID}}' | awk -v n="$name:v1" 'index($1, n) { print $2 }')
expect_eq "podman image ID of the docker-save part" "${config_digest:7:12}" "$id"
ok "podman load of the docker-save part alone (manifest.json): $(grep -o 'Loaded image: .*' <<<"$out")"

for store in oa da; do
    run "podman run from the $store.tar load" pod_run "$store" "docker.io/$name:v1"
    expect_eq "podman run output ($store.tar)" "$hello" "$out"
    ok "podman run of the image loaded from $store.tar prints '$hello'"
done

# --- zstd layers -----------------------------------------------------------------------------
digest_z=$(build oci:zstd-out:v1 --compression zstd)
run "skopeo inspect --raw of the zstd image" skopeo inspect --raw oci:zstd-out:v1
raw=$out
expect_eq "skopeo manifest digest (zstd)" "$digest_z" "sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)"
expect_eq "zstd layer media type" application/vnd.oci.image.layer.v1.tar+zstd "$(jq -r '.layers[0].mediaType' <<<"$raw")"
expect_eq "zstd image config" "$config_digest" "$(jq -r .config.digest <<<"$raw")"
run "skopeo inspect of the zstd image" skopeo inspect oci:zstd-out:v1
expect_eq "skopeo inspect Digest (zstd)" "$digest_z" "$(jq -r .Digest <<<"$out")"
layer_z=$(jq -r '.layers[0].digest' <<<"$raw")
expect_eq "zstd layer decompresses to the diff_id" "$diff_ids" \
    "[\"sha256:$(zstd -dc "zstd-out/blobs/sha256/${layer_z#sha256:}" | sha256sum | cut -d' ' -f1)\"]"
ok "skopeo inspect of the zstd image; the layer is a zstd frame of the same tar"

# Debian 12's umoci (0.4.7) and oci-image-tool (1.0.0-rc1) predate zstd layers: umoci says "blob
# is not correct mediatype". So umoci unpacks skopeo's gzip re-compression of the zstd image
# (skopeo decompresses the zstd layers itself), and podman, which reads zstd, runs it as is.
if umoci unpack --rootless --image zstd-out:v1 bundle-zstd-direct >umoci-zstd.log 2>&1; then
    cmp -s "$busybox" bundle-zstd-direct/rootfs/bin/busybox || fail "umoci unpack of the zstd image: wrong bin/busybox"
    ok "umoci unpack of the zstd image"
else
    grep -q 'not correct mediatype: application/vnd.oci.image.layer.v1.tar+zstd' umoci-zstd.log ||
        { cat umoci-zstd.log >&2; fail "umoci unpack of the zstd image failed for another reason than zstd support"; }
    run "skopeo copy of the zstd image to gzip" skopeo copy -q --dest-compress --dest-compress-format gzip \
        oci:zstd-out:v1 oci:zstd-as-gzip:v1
    run "umoci unpack of the gzip copy of the zstd image" umoci unpack --rootless --image zstd-as-gzip:v1 bundle-zstd
    cmp -s "$busybox" bundle-zstd/rootfs/bin/busybox || fail "umoci unpack of the zstd image's copy: wrong bin/busybox"
    run "grocker unpack of the zstd image" g unpack oci:zstd-out:v1 grocker-rootfs-zstd
    if ! diff -u <(listing bundle-zstd/rootfs) <(listing grocker-rootfs-zstd) >listing-zstd.diff; then
        cat listing-zstd.diff >&2
        fail "umoci unpack (via skopeo) and grocker unpack of the zstd image differ (- umoci, + grocker)"
    fi
    ok "umoci 0.4.7 refuses zstd; umoci unpack of skopeo's decompression and grocker unpack of the zstd image agree"
fi
run "grocker copy of the zstd image to oci-archive" g copy oci:zstd-out:v1 "oci-archive:zstd.tar:$name:zstd"
run "podman load of the zstd archive" pod zstd load -i zstd.tar
run "podman run of the zstd image" pod_run zstd "docker.io/$name:zstd"
expect_eq "podman run output (zstd)" "$hello" "$out"
ok "podman load and run of the zstd image prints '$hello'"

echo "all OCI tool checks passed"
