#!/bin/bash
# grocker build on a registry runtime (bookworm/3.12), whose base is pulled from a registry:
#   - the base is pulled (--base-image, a mirror's copy), root and compiler are made on it with
#     the runtime's own package lists (no Debian python3 or uwsgi plugin), the app is compiled
#     with the base's pip and installed in a venv of the base's Python;
#   - a wsgi service gets uwsgi from the index in the venv, and services.json says its Python is
#     built in (uwsgi_plugin ""), since Debian's plugin is for Debian's Python.
# Two stand-ins, because neither Docker Hub nor PyPI can be reached here: the base is made by
# this test (Debian's base plus python3, pip, venv and headers, as python:3.12-slim has them,
# pushed to a docker-registry on loopback under library/python:3.12-slim-bookworm), and the
# index's `uwsgi` is a stub whose `uwsgi` console script only says what it is. What the test
# proves is the pipeline around them; a real uwsgi under nginx is build/end-to-end's (Debian's).
# Uses the warm store of tests/integration/build/build.sh ($GROCKER_TEST_CACHE/build-store) for the base.
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${GROCKER_SOURCE_ROOT:?}"
: "${GROCKER_TEST_CACHE:?}"
need_tools mmdebstrap docker-registry jq curl "$PY" tar
[ "$(id -u)" = 0 ] || fail "run as root"
setup grocker-build-registry-runtime
chmod 755 "$tmp"
cache=$GROCKER_TEST_CACHE
mkdir -p "$cache"
warm=$cache/build-store

start_registry plain reg --self-host
R=$REGISTRY
serve_example_index

# --- the stand-in base: Debian's base (made by the default runtime's first step) + Python -----------
store=$tmp/store
run "a build on the default runtime, for its Debian base" "$GROCKER" --root "$warm" build "$app" -c "$app/.grocker.yml" \
    --index-url "$index" --no-push
base_ref=$(jq -r '.manifests[].annotations["org.opencontainers.image.ref.name"] // empty' "$warm/index.json" |
    grep '^grocker-base/debian-bookworm:' | tail -n1)
[ -n "$base_ref" ] || fail "no Debian base in $warm"
run "the stand-in for python:3.12-slim-bookworm" "$GROCKER" --root "$warm" run --network host \
    --commit "oci:$tmp/python:slim" "oci:$warm:$base_ref" -- /bin/sh -ec \
    'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-pip python3-venv python3-dev >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/*'
run "push the stand-in base" "$GROCKER" --tls-verify=false --root "$warm" push "oci:$tmp/python:slim" \
    "$R/library/python:3.12-slim-bookworm"
ok "a stand-in python:3.12-slim-bookworm (Debian's base + python3, pip, venv, headers) in the registry"

# --- the stub uwsgi in the index -----------------------------------------------------------------------
u=$tmp/uwsgi-src/uwsgi-2.0.99
mkdir -p "$u"
cat >"$u/pyproject.toml" <<'EOF'
[build-system]
requires = ["setuptools>=61", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "uwsgi"
version = "2.0.99"

[project.scripts]
uwsgi = "uwsgi_stub:main"

[tool.setuptools]
py-modules = ["uwsgi_stub"]
EOF
cat >"$u/uwsgi_stub.py" <<'EOF'
def main():
    print("stub uwsgi: a stand-in for PyPI's uwsgi in grocker's tests")
EOF
mkdir -p "$tmp/index/simple/uwsgi"
tar -czf "$tmp/index/simple/uwsgi/uwsgi-2.0.99.tar.gz" --owner=0 --group=0 --mtime=@0 --sort=name -C "$tmp/uwsgi-src" uwsgi-2.0.99
printf '<html><body><a href="uwsgi-2.0.99.tar.gz">uwsgi-2.0.99.tar.gz</a></body></html>\n' >"$tmp/index/simple/uwsgi/index.html"

# --- the build -----------------------------------------------------------------------------------------
run "build on bookworm/3.12" "$GROCKER" --tls-verify=false --root "$store" build "$app" -c "$app/.grocker.yml" \
    --index-url "$index" --no-push -r bookworm/3.12 --base-image "$R/library/python:3.12-slim-bookworm" \
    --output "oci:$tmp/out:hello" --result-file "$tmp/result.json"
expect_match "the base was pulled" "base: pulling $R/library/python:3.12-slim-bookworm" "$err"
expect_match "result root_image" '^grocker-bookworm-3.12-root:' "$(jq -r .root_image "$tmp/result.json")"
G=("$GROCKER" --root "$store" -q)
in_image() { "${G[@]}" run "oci:$tmp/out:hello" -- "$@"; }
out=$(in_image /home/grocker/venv/bin/python3 -c 'import grocker_hello, grocker_greeting; print("imports")') ||
    fail "the app does not import in the runner"
expect_eq "the app in the venv" imports "$out"
out=$(in_image /home/grocker/venv/bin/uwsgi) || fail "no uwsgi in the venv"
expect_eq "the venv's uwsgi" "stub uwsgi: a stand-in for PyPI's uwsgi in grocker's tests" "$out"
plugin=$(in_image /bin/sh -c 'cat /etc/grocker/services.json' | jq -r .uwsgi_plugin) || fail "no services.json"
expect_eq "services.json's uwsgi_plugin" "" "$plugin"
in_image /bin/sh -c 'ls /usr/lib/uwsgi/plugins 2>/dev/null; dpkg -l uwsgi-core uwsgi-plugin-python3 2>/dev/null | grep ^ii' \
    >"$tmp/debian-uwsgi" || true
[ ! -s "$tmp/debian-uwsgi" ] || fail "Debian's uwsgi is in a registry runtime's runner: $(cat "$tmp/debian-uwsgi")"
for tool in gcc cc; do
    ! in_image /bin/sh -c "command -v $tool" >/dev/null 2>&1 || fail "$tool is in the runner"
done
ok "bookworm/3.12: base pulled, the app in the base Python's venv, uwsgi from the index in the venv, uwsgi_plugin \"\", no Debian uwsgi or compiler"

# A configuration with no wsgi service gets no uwsgi.
printf 'runtime: bookworm/3.12\n' >"$tmp/no-www.yml"
run "build on bookworm/3.12 with no wsgi service" "$GROCKER" --tls-verify=false --root "$store" build "$app" \
    -c "$tmp/no-www.yml" --index-url "$index" --no-push --base-image "$R/library/python:3.12-slim-bookworm" \
    --output "oci:$tmp/out:no-www"
"${G[@]}" run "oci:$tmp/out:no-www" -- /bin/sh -c 'test -x /home/grocker/venv/bin/python3 && ! test -e /home/grocker/venv/bin/uwsgi' ||
    fail "uwsgi installed with no wsgi service (or no venv)"
ok "no wsgi service, no uwsgi"
echo "all registry runtime checks passed"
