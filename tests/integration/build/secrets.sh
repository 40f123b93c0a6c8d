#!/bin/bash
# Secrets never leave the step that needs them. The test plants distinct secrets in:
#   S_REG    the registry password (TLS + htpasswd registry, grocker login),
#   S_INDEX  the pip index URL's user info (--index-url),
#   S_CONF   a pip.conf's extra index URL (--pip-conf),
#   S_CFG    the runner's /config/env (read by the entrypoint at start),
#   S_WRONG  a wrong registry password (a failing push),
# builds and pushes the example with a prefix, runs the runner's entrypoint with /config, makes
# a build fail on a bad index and a push fail on a bad password, then searches every layer
# (decompressed), config, manifest, history entry, the registry's whole storage, the store,
# the result file, and every line grocker printed: no secret appears anywhere.
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${GROCKER_SOURCE_ROOT:?}"
: "${GROCKER_TEST_CACHE:?}"
need_tools docker-registry openssl jq curl "$PY" tar gzip zstd
[ "$(id -u)" = 0 ] || fail "run as root"
setup grocker-build-secrets
chmod 755 "$tmp"
serve_example_index
store=$GROCKER_TEST_CACHE/build-store
: >"$tmp/started" # the build logs kept in the store from here on are this test's

rnd() { head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
S_REG="reg-$(rnd)"
S_INDEX="index-$(rnd)"
S_CONF="conf-$(rnd)"
S_CFG="cfg-$(rnd)"
S_WRONG="wrong-$(rnd)"
S_REG_B64=$(printf 'ci:%s' "$S_REG" | base64 -w0)
secrets=("$S_REG" "$S_REG_B64" "$S_INDEX" "$S_CONF" "$S_CFG" "$S_WRONG")

start_registry tls-htpasswd reg --user "ci:$S_REG"
R=$REGISTRY
CERTS=$REGISTRY_CERT_DIR
log=$tmp/all-output
g() { "$GROCKER" --root "$store" --cert-dir "$CERTS" "$@"; }
logged() { # WHAT CMD...: run, keeping every output line in $log
    local what=$1
    shift
    run "$what" "$@"
    printf '%s\n%s\n' "$out" "$err" >>"$log"
}
logged_fails() {
    local what=$1
    shift
    run_fails "$what" "$@"
    printf '%s\n%s\n' "$out" "$err" >>"$log"
}

logged "grocker login" bash -c 'printf "%s\n" "$1" | "$2" --root "$3" --cert-dir "$4" login "$5" -u ci --password-stdin' \
    _ "$S_REG" "$GROCKER" "$store" "$CERTS" "$R"
index_with_secret=${index/http:\/\//http://ci:$S_INDEX@}
printf '[global]\nextra-index-url = http://ci:%s@127.0.0.1:9/simple/\ntimeout = 5\nretries = 0\n' "$S_CONF" >"$tmp/pip.conf"
logged "build and push" g build "$app" -c "$app/.grocker.yml" --index-url "$index_with_secret" --pip-conf "$tmp/pip.conf" \
    --image-prefix "$R/team" --output "oci:$tmp/layout:hello" --result-file "$tmp/result.json"
digest=$(tail -n1 <<<"$out")
grep -q "GET /simple/grocker-greeting/ " "$tmp/index.log" || fail "the index was not asked for the dependency"
# The pip.conf's extra index (nothing listens there) is a warning, its password hidden; pip skips it.
expect_match "the unreachable extra index" "grocker: warning: the extra package index http://ci:\*\*\*@127.0.0.1:9/simple/ cannot be reached" "$err"
ok "built and pushed $digest with the secrets in use"
# The provenance (searched below with every blob) names both indexes, without their user info.
logged "the provenance" g attestations --print provenance "oci:$tmp/layout:hello"
expect_eq "the indexes it names" "$index http://127.0.0.1:9/simple/" \
    "$(jq -r '[.predicate.buildDefinition.resolvedDependencies[] | select(.name == "index") | .uri] | join(" ")' <<<"$out")"

# The runner's entrypoint with /config/env holding a secret: the command sees it, no log does.
mkdir -p "$tmp/config"
printf 'APP_SECRET=%s\n' "$S_CFG" >"$tmp/config/env"
logged "the entrypoint with /config" g run "oci:$tmp/layout:hello" --volume "$tmp/config:/config:ro" -- \
    /usr/local/bin/grocker-entrypoint sh -c 'test "$APP_SECRET" = "$0" && echo seen' "$S_CFG"
[ "$(tail -n1 <<<"$out")" = seen ] || fail "the command did not get APP_SECRET from /config/env: $out"
printf 'NOT VALID=%s\n' "$S_CFG" >"$tmp/config/env"
logged_fails "the entrypoint with a bad /config/env" g run "oci:$tmp/layout:hello" --volume "$tmp/config:/config:ro" -- \
    /usr/local/bin/grocker-entrypoint true
expect_match "the bad /config/env error" "/config/env:1" "$err"
ok "the entrypoint reads /config/env; a bad line is named without its value"

# Failures that handle the secrets: a build whose index refuses (the URL with its user info in
# pip's messages), a push with a wrong password.
mkdir -p "$tmp/app2" && cp -r "$app/." "$tmp/app2/"
sed -i 's/^dependencies = .*/dependencies = ["grocker-no-such-package"]/' "$tmp/app2/pyproject.toml"
logged_fails "a build with a missing dependency" g build "$tmp/app2" -c "$app/.grocker.yml" \
    --index-url "$index_with_secret" --pip-conf "$tmp/pip.conf" --no-push
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$R" "$(printf 'ci:%s' "$S_WRONG" | base64 -w0)" >"$tmp/wrong.json"
logged_fails "a push with a wrong password" "$GROCKER" --root "$store" --cert-dir "$CERTS" --authfile "$tmp/wrong.json" \
    push "oci:$tmp/layout:hello" "docker://$R/team/other:1"
expect_match "the wrong password's error" '401|[Uu]nauthori' "$err"
ok "failures with secrets in hand give errors without them"

# --- the search ----------------------------------------------------------------------------------
# Every blob of the oci: output, the registry's storage and the store's blobs used by this
# image, decompressed when they are layers; the result file; every output line.
mkdir -p "$tmp/search"
found=""
search_file() { # FILE
    local f=$1 s
    for s in "${secrets[@]}"; do
        if grep -a -q -F -- "$s" "$f"; then found+="$s in $f"$'\n'; fi
    done
}
search_blob() { # FILE: searched as it is and decompressed
    search_file "$1"
    if gzip -t "$1" 2>/dev/null; then
        gzip -dc "$1" >"$tmp/search/plain"
        search_file "$tmp/search/plain"
    elif zstd -t -q "$1" 2>/dev/null; then
        zstd -dc -q "$1" >"$tmp/search/plain"
        search_file "$tmp/search/plain"
    fi
}
n=0
for b in "$tmp"/layout/blobs/sha256/* $(find "$tmp/reg/storage" -type f -name data); do
    search_blob "$b"
    n=$((n + 1))
done
for d in $(jq -r '.manifests[].digest' "$tmp/layout/index.json"); do search_blob "$store/blobs/sha256/${d#sha256:}"; done
search_file "$tmp/result.json"
search_file "$log"
kept=0
for l in $(find "$store/logs" -name '*.log' -newer "$tmp/started"); do
    search_file "$l"
    kept=$((kept + 1))
done
[ "$kept" -gt 0 ] || fail "no build log kept in the store by this test's builds"
[ -z "$found" ] || fail "secrets found: $found"
# And the checks can fail: each secret is where it should be, in the files meant to hold it.
grep -q -F "$S_CFG" "$tmp/config/env" || fail "the search's own check: S_CFG not in /config/env"
authfile=$(ls "$XDG_RUNTIME_DIR/containers/auth.json" "$XDG_CONFIG_HOME/containers/auth.json" 2>/dev/null | head -n1 || true)
[ -n "$authfile" ] && jq -e --arg r "$R" --arg a "$S_REG_B64" '.auths[$r].auth == $a' "$authfile" >/dev/null ||
    fail "the search's own check: grocker login saved no credentials for $R"
ok "no secret in $n blobs (layers decompressed, configs, manifests, history), the store's image, the result file, $(wc -l <"$log") output lines or $kept kept build logs"
echo "all secrets checks passed"
