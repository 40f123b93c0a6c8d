#!/bin/bash
# The sandbox, checked from outside and inside, as root (MODE=root) or as an unprivileged user
# with a subordinate id range (MODE=rootless; the set-up creates user grocker-test and its
# range when missing). Needs namespaces: when they are missing this fails, it never skips.
# MODE=root-copy and MODE=rootless-copy run every check over the copy fallback of the root
# filesystem (GROCKER_SANDBOX_ROOTFS=copy) instead of overlay, which the others force.
set -eu -o pipefail
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${ESCAPE_HELPER:?set ESCAPE_HELPER to the escape helper binary}"
: "${GROCKER_TEST_CACHE:?set GROCKER_TEST_CACHE to a cache folder}"
MODE=${MODE:-root}
case "$MODE" in
root | rootless) rootfs=overlay ;;
root-copy | rootless-copy) rootfs=copy ;;
*) echo "MODE=$MODE: use root, rootless, root-copy or rootless-copy" >&2; exit 1 ;;
esac
users=${MODE%-copy}
export GROCKER_SANDBOX_ROOTFS=$rootfs
fail() { echo "FAIL ($MODE): $*" >&2; exit 1; }
pass() { echo "ok ($MODE): $*"; }
for tool in mmdebstrap umoci jq busybox newuidmap runuser gzip; do
    command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/install-deps"
done
[ "$(id -u)" = 0 ] || fail "the test set-up needs root (it makes the test user and the base image)"

tmp=$(mktemp -d /tmp/grocker-sandbox-XXXXXX)
hostpid=
cleanup() {
    [ -z "$hostpid" ] || kill "$hostpid" 2>/dev/null || true
    mountpoint -q "$tmp/ovl/merged" 2>/dev/null && umount "$tmp/ovl/merged"
    mountpoint -q "$tmp/small" 2>/dev/null && umount "$tmp/small"
    rm -rf "$tmp" 2>/dev/null || true
    rm -f /grocker-escape-marker
}
trap cleanup EXIT
chmod 755 "$tmp"

# --- the user ---------------------------------------------------------------------------------
user=root
if [ "$users" = rootless ]; then
    user=grocker-test
    id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"
    grep -q "^$user:" /etc/subuid || usermod --add-subuids 300000-365535 "$user"
    grep -q "^$user:" /etc/subgid || usermod --add-subgids 300000-365535 "$user"
fi
# The binaries are copied where the test user can run them, whatever the checkout's modes.
install -m 755 "$GROCKER" "$tmp/grocker"
install -m 755 "$ESCAPE_HELPER" "$tmp/escape"
as_user() { if [ "$user" = root ]; then "$@"; else runuser -u "$user" -- "$@"; fi; }
g() { as_user "$tmp/grocker" --root "$tmp/store" -q "$@"; }

# --- the images: a static busybox, and Debian made with mmdebstrap from the host's sources --
mkdir -p "$tmp/bb/bin" "$tmp/bb/etc" "$tmp/bb/data/dir" "$tmp/bb/data/emptied" "$tmp/bb/usr/bin"
cp /bin/busybox "$tmp/bb/bin/busybox"
for a in sh echo id cat ls rm mkdir hostname touch ps grep wc sleep chown stat test head; do
    ln -s busybox "$tmp/bb/bin/$a"
done
cp "$tmp/escape" "$tmp/bb/usr/bin/escape"
cp "$tmp/escape" "$tmp/bb/usr/bin/suid-escape"
chmod 4755 "$tmp/bb/usr/bin/suid-escape"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\nci:x:1000:1000::/:/bin/sh\n' >"$tmp/bb/etc/passwd"
printf 'root:x:0:\nci:x:1000:\n' >"$tmp/bb/etc/group"
echo delete-me >"$tmp/bb/data/dir/gone"
echo kept >"$tmp/bb/data/dir/kept"
echo a >"$tmp/bb/data/emptied/a"
echo b >"$tmp/bb/data/emptied/b"
"$GROCKER" --root "$tmp/root-store" -q append scratch "oci:$tmp/images:busybox" --dir "$tmp/bb" --keep-owners \
    --env PATH=/bin:/usr/bin >/dev/null

mkdir -p "$GROCKER_TEST_CACHE"
(
    flock 9
    if [ ! -f "$GROCKER_TEST_CACHE/debian/index.json" ]; then
        rm -rf "$GROCKER_TEST_CACHE/debian-rootfs" "$GROCKER_TEST_CACHE/debian"
        mmdebstrap --quiet --variant=apt bookworm "$GROCKER_TEST_CACHE/debian-rootfs" \
            || fail "mmdebstrap could not make a Debian root filesystem from the host's apt sources"
        "$GROCKER" --root "$GROCKER_TEST_CACHE/store" -q append scratch "oci:$GROCKER_TEST_CACHE/debian:bookworm" \
            --dir "$GROCKER_TEST_CACHE/debian-rootfs" --keep-owners >/dev/null
        rm -rf "$GROCKER_TEST_CACHE/debian-rootfs" "$GROCKER_TEST_CACHE/store"
    fi
) 9>"$GROCKER_TEST_CACHE/lock"
"$GROCKER" --root "$tmp/root-store" -q copy "oci:$GROCKER_TEST_CACHE/debian:bookworm" "oci:$tmp/images:debian" >/dev/null
rm -rf "$tmp/root-store"
chown -R "$user" "$tmp"
mkdir -p "$tmp/ro" "$tmp/rw"
echo read-only >"$tmp/ro/file"
chown -R "$user" "$tmp/ro"
# The host ids of the sandbox's root and uid 1000: as root, the start of root's own subordinate
# range when it holds 65536 ids (else 2^31) and 1000 more; rootless, the caller itself and its
# subordinate range's start + 999.
if [ "$users" = root ]; then
    # Root's own range when /etc/subuid and /etc/subgid give it 65536 ids, else 2^31.
    start() { awk -F: '$1 == "root" && $3 >= 65536 { print $2; f = 1; exit } END { if (!f) print "2147483648" }' "$1"; }
    su=$(start /etc/subuid) sg=$(start /etc/subgid)
    root_host=$su:$sg ci_host=$((su + 1000)):$((sg + 1000))
    # A volume the sandbox's root writes must be its own: no host account's, not even root's.
    chown "$root_host" "$tmp/rw"
    # shellcheck disable=SC2016
    g run --volume "$tmp/ro:/ro" "oci:$tmp/images:busybox" -- sh -c 'echo x > /ro/new' 2>/dev/null \
        && fail "the sandbox's root (host $root_host) wrote into a folder of host root"
else
    chown "$user" "$tmp/rw"
    sub() { awk -F: -v u="$user" '$1 == u { print $2 + 999; exit }' "$1"; }
    root_host=$(id -u "$user"):$(id -g "$user") ci_host=$(sub /etc/subuid):$(sub /etc/subgid)
fi

# --- inside -----------------------------------------------------------------------------------
fstype=$(g run "oci:$tmp/images:busybox" -- sh -c 'grep " / " /proc/mounts | cut -d" " -f3')
if [ "$rootfs" = overlay ]; then want_fs=overlay; else want_fs=$(stat -f -c %T "$tmp" | sed 's|ext2/ext3|ext4|'); fi
[ "$fstype" = "$want_fs" ] || fail "the root inside is on '$fstype', expected '$want_fs' (GROCKER_SANDBOX_ROOTFS=$rootfs)"
pass "the root is made by $rootfs ($fstype)"

out=$(g run "oci:$tmp/images:busybox" -- sh -c 'echo "pid=$$ uid=$(id -u) host=$(hostname)"')
# PID 1 is the sandbox's init (it reaps orphans and passes signals on), so the command is 2.
[ "$out" = "pid=2 uid=0 host=grocker" ] || fail "inside: got '$out'"
pass "a fresh pid namespace (the command is pid 2 under the sandbox's init), uid 0, hostname grocker"

# PID 1 shows nothing of the host: not grocker's command line (its --env values, host paths),
# not its environment. The command (pid 2) has its own --env, as it should.
secret=host-secret-$$-$RANDOM
as_user env "GROCKER_TEST_SECRET=$secret" "$tmp/grocker" --root "$tmp/store" -q run --env "SECRET=$secret" \
    --volume "$tmp/ro:/ro-$secret:ro" "oci:$tmp/images:busybox" -- sh -c '
        echo "cmdline=$(tr "\0" "|" </proc/1/cmdline)"
        echo "environ=$(tr "\0" "|" </proc/1/environ 2>/dev/null)"
        echo "comm=$(cat /proc/1/comm)"
        cat /proc/1/status /proc/1/stat
        echo "own=$SECRET"' >"$tmp/pid1" 2>&1 || fail "reading /proc/1 failed: $(cat "$tmp/pid1")"
grep -qx 'cmdline=grocker-init|' "$tmp/pid1" || fail "/proc/1/cmdline is not 'grocker-init': $(grep ^cmdline= "$tmp/pid1")"
grep -qx 'environ=' "$tmp/pid1" || fail "/proc/1/environ is not empty: $(grep ^environ= "$tmp/pid1")"
grep -qx 'comm=grocker-init' "$tmp/pid1" || fail "/proc/1/comm is not 'grocker-init': $(grep ^comm= "$tmp/pid1")"
grep -qx "own=$secret" "$tmp/pid1" || fail "the command lost its own --env: $(cat "$tmp/pid1")"
grep -v "^own=" "$tmp/pid1" | grep -q -e "$secret" -e "$tmp" -e "--root" \
    && fail "/proc/1 shows the host's command line or environment: $(grep -v "^own=" "$tmp/pid1" | grep -e "$secret" -e "$tmp" -e "--root")"
pass "PID 1 shows nothing of the host (/proc/1/cmdline is grocker-init, its environment empty)"

procs=$(g run "oci:$tmp/images:busybox" -- sh -c 'echo /proc/[0-9]*')
[ "$procs" = "/proc/1 /proc/2" ] || fail "other processes are visible: $procs"
pass "no host process visible (only /proc/1, the init, and /proc/2, the command)"

ifaces=$(g run "oci:$tmp/images:busybox" -- sh -c 'grep : /proc/net/dev | cut -d: -f1 | tr -d " "')
[ "$ifaces" = lo ] || fail "network interfaces other than lo: $ifaces"
pass "no network but loopback by default"
host_ifaces=$(g run --network host "oci:$tmp/images:busybox" -- sh -c 'grep -c : /proc/net/dev')
[ "$host_ifaces" -gt 1 ] || fail "--network host does not show the host's interfaces"
pass "--network host shares the host's network"

echo host-secret >"$tmp/host-secret"
chmod 644 "$tmp/host-secret"
if g run "oci:$tmp/images:busybox" -- cat "$tmp/host-secret" 2>/dev/null; then fail "a host file is readable inside"; fi
pass "host files outside the volumes are unreachable"

if g run --volume "$tmp/ro:/ro:ro" "oci:$tmp/images:busybox" -- sh -c 'echo x > /ro/new' 2>/dev/null; then
    fail "writing to a :ro volume worked"
fi
[ ! -e "$tmp/ro/new" ] || fail "a file appeared in the :ro volume"
[ "$(g run --volume "$tmp/ro:/ro:ro" "oci:$tmp/images:busybox" -- cat /ro/file)" = read-only ] \
    || fail "a :ro volume is not readable"
g run --volume "$tmp/rw:/rw" "oci:$tmp/images:busybox" -- sh -c 'echo written > /rw/new'
[ "$(cat "$tmp/rw/new")" = written ] || fail "a read-write volume did not keep the write"
pass "a :ro volume refuses writes, a read-write one keeps them"
# The sandbox's users as the host sees them: files made in a volume by its root and by uid 1000.
g run --volume "$tmp/rw:/rw" "oci:$tmp/images:busybox" -- sh -c 'mkdir /rw/ci && chown 1000:1000 /rw/ci'
g run --user ci --volume "$tmp/rw:/rw" "oci:$tmp/images:busybox" -- sh -c 'echo ci > /rw/ci/file'
owners="$(stat -c %u:%g "$tmp/rw/new") $(stat -c %u:%g "$tmp/rw/ci/file")"
[ "$owners" = "$root_host $ci_host" ] \
    || fail "files made inside by root and uid 1000 are $owners on the host, expected $root_host and $ci_host"
pass "the sandbox's root and uid 1000 are $root_host and $ci_host on the host"
# Ids past the range do not exist inside (as root, the init's namespace also maps host root's
# low ids for the store's folders: never the command's).
g run "oci:$tmp/images:busybox" -- sh -c 'touch /tmp/x && chown 65536 /tmp/x' 2>/dev/null \
    && fail "uid 65536 exists inside the sandbox"
[ "$(g run "oci:$tmp/images:busybox" -- sh -c 'tr -s " " <\/proc/self/uid_map')" = " 0 0 65536" ] || [ "$users" != root ] \
    || fail "the command's uid map is not 0-65535 only: $(g run "oci:$tmp/images:busybox" -- cat /proc/self/uid_map)"
pass "no id past 65535 inside"
# Mount points the sandbox made, parents included, are not the step's changes.
g run --volume "$tmp/rw:/srv/new/vol" "oci:$tmp/images:busybox" --commit "oci:$tmp/images:mounts" -- sh -c : >/dev/null
mlayer=$(g inspect "oci:$tmp/images:mounts" | jq -r '.manifest.layers[-1].digest')
[ -z "$(tar -tzf "$tmp/images/blobs/sha256/${mlayer#sha256:}")" ] \
    || fail "the layer of a step that changed nothing holds: $(tar -tzf "$tmp/images/blobs/sha256/${mlayer#sha256:}")"
pass "mount points made for volumes (and their parents) stay out of the layer"

euid=$(g run --user ci "oci:$tmp/images:busybox" -- /usr/bin/suid-escape euid)
[ "$euid" = 1000 ] || fail "a setuid-root binary run by uid 1000 got euid $euid"
pass "a setuid binary gains nothing (euid stays 1000)"

# PID 1 reaps orphans: a grandchild left behind and finished is not left a zombie.
zombies=$(g run "oci:$tmp/images:busybox" -- sh -c '(sleep 0.2 &) ; sleep 1; grep -l "^State:.*Z" /proc/[0-9]*/status | wc -l')
[ "$zombies" = 0 ] || fail "$zombies zombie(s) left: PID 1 does not reap orphans"
pass "PID 1 reaps orphans"
# SIGTERM to grocker reaches the command, and grocker exits with the command's status.
as_user "$tmp/grocker" --root "$tmp/store" -q run "oci:$tmp/images:busybox" -- \
    sh -c 'trap "exit 7" TERM; echo ready > /dev/stderr; while :; do sleep 0.1; done' 2>"$tmp/ready" &
runner=$!
for _ in $(seq 100); do grep -q ready "$tmp/ready" 2>/dev/null && break; sleep 0.1; done
kill -TERM "$(pgrep -n -f "grocker --root $tmp/store -q run" || echo "$runner")" 2>/dev/null || true
status=0
wait "$runner" || status=$?
[ "$status" = 7 ] || fail "after SIGTERM grocker exited with $status, not the command's 7"
pass "SIGTERM is passed on to the command and its status comes back"

# --- escapes ---------------------------------------------------------------------------------
touch "/grocker-escape-marker"
if g run "oci:$tmp/images:busybox" -- /usr/bin/escape chroot /grocker-escape-marker; then fail "chroot breakout reached the host root"; fi
pass "chroot breakout fails"
if g run "oci:$tmp/images:busybox" -- /usr/bin/escape mount; then fail "mount worked inside"; fi
pass "mount fails"
sleep 300 &
hostpid=$!
if g run "oci:$tmp/images:busybox" -- /usr/bin/escape ptrace "$hostpid"; then fail "ptrace of host pid $hostpid worked"; fi
pass "ptrace of a host process fails"
rm -f /grocker-escape-marker
g run "oci:$tmp/images:busybox" -- sh -c 'echo x > /proc/1/root/grocker-escape-marker' 2>/dev/null || true
[ ! -e /grocker-escape-marker ] || fail "writing through /proc/1/root reached the host root"
pass "writing through /proc/1/root stays inside"

# --- changes become a layer ----------------------------------------------------------------
step='rm /data/dir/gone && rm -rf /data/emptied && mkdir /data/emptied && echo new > /data/new'
d1=$(g run "oci:$tmp/images:busybox" --commit "oci:$tmp/images:changed" -- sh -c "$step")
d2=$(g run "oci:$tmp/images:busybox" --commit "oci:$tmp/images:changed2" -- sh -c "$step")
[ "$d1" = "$d2" ] || fail "the same step gave two digests: $d1 and $d2"
pass "the same step on the same base gives the same digest twice ($d1)"
# The other way of making the root gives the same layer. (On this kernel overlay does not mark
# data/ opaque when a folder in it is remade; the listing check below allows either.)
other=overlay
[ "$rootfs" = overlay ] && other=copy
d3=$(GROCKER_SANDBOX_ROOTFS=$other g run "oci:$tmp/images:busybox" --commit "oci:$tmp/images:changed-$other" -- sh -c "$step")
[ "$d1" = "$d3" ] || fail "$rootfs gave $d1 but $other gave $d3 for the same step"
pass "$rootfs and $other give the same digest for the same step"
layer=$(g inspect "oci:$tmp/images:changed" | jq -r '.manifest.layers[-1].digest')
listing=$(tar -tzf "$tmp/images/blobs/sha256/${layer#sha256:}")
expected=$'data/\ndata/.wh..wh..opq\ndata/dir/\ndata/dir/.wh.gone\ndata/emptied/\ndata/emptied/.wh..wh..opq\ndata/new'
# data/ itself may be opaque or not depending on the kernel's overlay; the rest is fixed.
got=$(echo "$listing" | grep -v '^data/\.wh\.\.wh\.\.opq$')
want=$(echo "$expected" | grep -v '^data/\.wh\.\.wh\.\.opq$')
[ "$got" = "$want" ] || fail "the committed layer holds:
$listing"
echo "$listing" | grep -q '^bin/\|^proc/\|^dev/\|^tmp/' && fail "the layer holds files the step only read or mount points"
pass "a deleted file gives a whiteout, an emptied folder an opaque dir, and nothing else is in the layer"
as_user umoci unpack --rootless --image "$tmp/images:changed" "$tmp/unpacked" >/dev/null
[ ! -e "$tmp/unpacked/rootfs/data/dir/gone" ] || fail "umoci still shows the deleted file"
[ -e "$tmp/unpacked/rootfs/data/dir/kept" ] || fail "umoci lost a kept file"
[ -z "$(ls -A "$tmp/unpacked/rootfs/data/emptied")" ] || fail "umoci shows files in the emptied folder"
[ "$(cat "$tmp/unpacked/rootfs/data/new")" = new ] || fail "umoci lost the new file"
pass "umoci unpack of the committed image shows them gone"

# --- errors from inside come back as one line naming the step ---------------------------------
expect_error() { # expected-stderr, arguments...
    local want=$1 rc=0
    shift
    g run "oci:$tmp/images:busybox" "$@" 2>"$tmp/stderr" >/dev/null || rc=$?
    [ "$rc" = 1 ] || fail "grocker run $*: exit status $rc, expected 1"
    [ "$(cat "$tmp/stderr")" = "$want" ] || fail "grocker run $*: stderr was '$(cat "$tmp/stderr")', expected '$want'"
}
expect_error "grocker: error: sandbox: while starting 'no-such-command': unable to run 'no-such-command' (not found in the image): No such file or directory" \
    -- no-such-command
expect_error "grocker: error: sandbox: while switching to user 'nobody2': user 'nobody2' is not in the image's /etc/passwd" \
    --user nobody2 -- true
pass "setup failures inside come back as one message with the step and the cause"

if [ "$users" = rootless ]; then
    # A user with no subordinate range: only root is mapped, with a warning saying what fails.
    nosub=grocker-nosub
    id "$nosub" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$nosub"
    sed -i "/^$nosub:/d" /etc/subuid /etc/subgid
    mkdir -p "$tmp/nosub" && cp -r "$tmp/images" "$tmp/nosub/images" && chown -R "$nosub" "$tmp/nosub"
    out=$(runuser -u "$nosub" -- "$tmp/grocker" --root "$tmp/nosub/store" run "oci:$tmp/nosub/images:busybox" -- \
        sh -c 'id -u; chown 5 /tmp 2>/dev/null && echo chown-worked || echo chown-failed' 2>"$tmp/nosub/stderr")
    [ "$out" = $'0\nchown-failed' ] || fail "with no subordinate range: got '$out'"
    grep -q "^grocker: warning: no subordinate uids for user $nosub in /etc/subuid: only root is mapped inside, so installing packages (dpkg, apt-get) and chown to other users will fail" "$tmp/nosub/stderr" \
        || fail "no clear warning without a subordinate range: $(cat "$tmp/nosub/stderr")"
    pass "without a subordinate range: a single mapped id, and a warning naming what will not work"
fi

if [ "$rootfs" = copy ]; then
    # Where overlay is refused (here: a store on an overlay, which overlay cannot use as an upper
    # dir), the layers are copied, with one warning saying why.
    mkdir -p "$tmp/ovl/lower" "$tmp/ovl/upper" "$tmp/ovl/work" "$tmp/ovl/merged"
    mount -t overlay overlay -o "lowerdir=$tmp/ovl/lower,upperdir=$tmp/ovl/upper,workdir=$tmp/ovl/work" "$tmp/ovl/merged"
    cp -r "$tmp/images" "$tmp/ovl/merged/images" && chown -R "$user" "$tmp/ovl/merged"
    out=$(GROCKER_SANDBOX_ROOTFS= as_user "$tmp/grocker" --root "$tmp/ovl/merged/store" run \
        "oci:$tmp/ovl/merged/images:busybox" --commit "oci:$tmp/ovl/merged/images:changed" -- sh -c "$step" 2>"$tmp/stderr")
    [ "$out" = "$d1" ] || fail "over a store on an overlay: got '$out', expected the digest $d1"
    [ "$(cat "$tmp/stderr")" = "grocker: warning: overlay mounts are not allowed in this user namespace (Invalid argument: overlay cannot use the store's filesystem, as with an overlay or NFS): copying the image's layers instead, which is slower" ] \
        || fail "no clear warning when falling back to copying: $(cat "$tmp/stderr")"
    if GROCKER_SANDBOX_ROOTFS=overlay as_user "$tmp/grocker" --root "$tmp/ovl/merged/store" -q run \
        "oci:$tmp/ovl/merged/images:busybox" -- true 2>/dev/null; then
        fail "GROCKER_SANDBOX_ROOTFS=overlay fell back to copying"
    fi
    umount "$tmp/ovl/merged"
    pass "where overlay is refused the layers are copied, with a warning; GROCKER_SANDBOX_ROOTFS=overlay refuses"

    # Writing the changes comes after the command: its failure (here the store's filesystem
    # full, the copy needing the space twice) is still one clear error, and nothing is committed.
    mkdir -p "$tmp/small"
    mount -t tmpfs -o size=32m,mode=755 tmpfs "$tmp/small"
    chown "$user" "$tmp/small"
    rc=0
    as_user "$tmp/grocker" --root "$tmp/small/store" -q run "oci:$tmp/images:busybox" \
        --commit "oci:$tmp/images:big" -- sh -c 'head -c $(( $(stat -f -c "%a * %S" /) * 2 / 3 )) /dev/zero > /big' \
        >/dev/null 2>"$tmp/stderr" || rc=$?
    [ "$rc" = 1 ] || fail "a full filesystem while writing the changes: exit status $rc, expected 1"
    [ "$(cat "$tmp/stderr")" = "grocker: error: sandbox: while writing the step's changes into the upper dir (copy mode): unable to copy '/big': No space left on device" ] \
        || fail "a full filesystem while writing the changes: stderr was '$(cat "$tmp/stderr")'"
    ! grep -q '"big"' "$tmp/images/index.json" || fail "a step whose changes could not be written was committed"
    umount "$tmp/small"
    pass "an error while writing the changes after the command comes back as one message naming the step"
fi

# --- apt-get over a Debian base ----------------------------------------------------------------
g run --network host "oci:$tmp/images:debian" --commit "oci:$tmp/images:sl" -- sh -c \
    'apt-get update -qq && apt-get install -y -qq --no-install-recommends sl >/dev/null 2>&1 && chown _apt:root /usr/games/sl' >/dev/null
layer=$(g inspect "oci:$tmp/images:sl" | jq -r '.manifest.layers[-1].digest')
tar -tvzf "$tmp/images/blobs/sha256/${layer#sha256:}" >"$tmp/sl-layer"
grep -q ' 42/0 .* usr/games/sl$' "$tmp/sl-layer" || fail "usr/games/sl is not owned by _apt (42) in the layer: $(grep games/sl "$tmp/sl-layer")"
grep -q ' 0/0 .* usr/share/doc/sl/copyright$' "$tmp/sl-layer" || fail "the package's files are not owned by root in the layer"
if grep -q ' 0/0 .* etc/passwd$' "$tmp/sl-layer"; then fail "a file the step only read is in the layer"; fi
pass "apt-get install works over Debian with --network host; owners are the container's (sl owned by _apt = 42)"
echo "all sandbox checks passed ($MODE)"
