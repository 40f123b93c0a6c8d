#!/bin/sh
# A kill -9 in the middle of a large append leaves the store readable (every blob under
# blobs/sha256 hashes to its name, index.json parses) and the next append succeeds.
set -eu
: "${GROCKER:?set GROCKER to the grocker binary}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
store=$tmp/store
mkdir -p "$tmp/tree"
# ~160 MB, half incompressible, so an append takes long enough to be killed in the middle.
for i in 1 2 3 4; do
  head -c 20000000 /dev/urandom > "$tmp/tree/random$i"
  yes "grocker kill test line $i" | head -c 20000000 > "$tmp/tree/text$i"
done

check_store() {
  for f in "$store"/blobs/sha256/*; do
    [ -e "$f" ] || continue
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    if [ "$sum" != "$(basename "$f")" ]; then
      echo "FAIL: blob $(basename "$f") in the store has content $sum after kill -9" >&2
      exit 1
    fi
  done
  python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$store/index.json" || {
    echo "FAIL: index.json is not readable after kill -9" >&2; exit 1; }
}

killed=0
for delay in 0.2 0.5 0.9 1.4; do
  "$GROCKER" --root "$store" -q append scratch "oci:$tmp/out$delay" --dir "$tmp/tree" >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  if kill -9 "$pid" 2>/dev/null; then killed=$((killed + 1)); fi
  wait "$pid" 2>/dev/null || true
  check_store
done
[ "$killed" -ge 2 ] || { echo "FAIL: append finished too fast to be killed ($killed kills); make the tree bigger" >&2; exit 1; }

digest=$("$GROCKER" --root "$store" -q append scratch "oci:$tmp/final:v1" --dir "$tmp/tree")
check_store
"$GROCKER" --root "$store" -q unpack "oci:$tmp/final:v1" "$tmp/rootfs"
cmp "$tmp/tree/random3" "$tmp/rootfs/random3"
echo "ok: $killed kills left the store consistent; the next append gave $digest"
