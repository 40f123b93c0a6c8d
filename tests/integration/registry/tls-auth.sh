#!/bin/bash
# grocker against docker-registry over TLS (a CA made by the test) with htpasswd basic auth:
# --cert-dir, the TLS error without it, --tls-verify=false, a wrong password (401, a hint, the
# password nowhere in the output), login/logout (auth.json, mode 0600), and credentials from a
# docker config.json (auths), a credential helper (credHelpers) and a credsStore.
#
# Run by `meson test` with GROCKER (the binary); standalone: GROCKER=build/src/grocker $0.
# A missing tool is a failure, never a skip. KEEP_TMP=1 keeps the temp folder.
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"

: "${GROCKER:?GROCKER must name the grocker binary}"
[ -x "$GROCKER" ] || fail "GROCKER='$GROCKER' is not an executable"
need_tools skopeo docker-registry openssl jq curl sha256sum base64 stat "$PY"

setup grocker-registry-tls
cd "$tmp"
g() { "$GROCKER" -q --root "$tmp/store" "$@"; }

# A password with characters that need care in Basic auth and JSON (':' after the first, '@', '"').
user=tester
password="pa:ss@$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')\"w0rd"
start_registry tls-htpasswd reg --user "$user:$password"
R=$REGISTRY
CERTS=$REGISTRY_CERT_DIR
auth_b64=$(printf '%s:%s' "$user" "$password" | base64 -w0)
ok "registry at $REGISTRY_URL, CA in $CERTS"

# skopeo's view of the registry, to check what grocker did.
sk_digest() { # REF: sha256 of the manifest bytes the registry serves
    run "skopeo inspect --raw $1" skopeo inspect --raw --cert-dir "$CERTS" --creds "$user:$password" "docker://$1"
    echo "sha256:$(printf '%s' "$out" | sha256sum | cut -d' ' -f1)"
}
write_auth() { # FILE BASE64
    mkdir -p "$(dirname "$1")"
    jq -n --arg r "$R" --arg a "$2" '{auths: {($r): {auth: $a}}}' >"$1"
}

mkdir -p app
printf 'tls\n' >app/name
head -c 200000 /dev/urandom >app/blob
run "grocker append" g append scratch oci:img:v1 --dir app
D=$(tail -n1 <<<"$out")
write_auth auth.json "$auth_b64"

# --- --cert-dir ----------------------------------------------------------------------------------
run "push with --cert-dir and --authfile" g --cert-dir "$CERTS" --authfile auth.json copy oci:img:v1 "docker://$R/test/app:v1"
expect_match "push prints the digest" "$D" "$out"
expect_eq "digest in the registry" "$D" "$(sk_digest "$R/test/app:v1")"
run "pull with --cert-dir and --authfile" g --cert-dir "$CERTS" --authfile auth.json pull "$R/test/app:v1" oci:pulled:v1
expect_eq "digest pulled over TLS" "$D" "$(oci_digest pulled v1)"
ok "TLS with --cert-dir: push and pull"

# --- no --cert-dir: a clear TLS error (not the 400 of a fallback to plain HTTP) ---------------------------
run_fails "inspect without the CA" g --authfile auth.json inspect "docker://$R/test/app:v1"
expect_eq "exit status without the CA" 1 "$rc"
expect_match "the error is about the certificate" '[Cc]ertificate|TLS|SSL' "$err"
expect_match "the error names the registry" "$R" "$err"
expect_match "the error hints at --cert-dir or --tls-verify" 'cert-dir|tls-verify' "$err"
expect_no_match "no fallback to plain HTTP" 'HTTP request to an HTTPS server|(^|[^0-9:])400([^0-9]|$)' "$err"
ok "without the CA: $(head -n1 <<<"$err")"

# --- --tls-verify=false ------------------------------------------------------------------------------
run "inspect with --tls-verify=false" g --tls-verify=false --authfile auth.json inspect "docker://$R/test/app:v1"
expect_eq "digest with --tls-verify=false" "$D" "$(jq -r .digest <<<"$out")"
run "push with --tls-verify=false" g --tls-verify=false --authfile auth.json copy oci:img:v1 "docker://$R/test/noverify:v1"
expect_eq "digest pushed with --tls-verify=false" "$D" "$(sk_digest "$R/test/noverify:v1")"
ok "--tls-verify=false"

# --- wrong password, no credentials --------------------------------------------------------------------
wrong="wrong-$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')"
wrong_b64=$(printf '%s:%s' "$user" "$wrong" | base64 -w0)
write_auth bad.json "$wrong_b64"
run_fails "push with a wrong password" g --cert-dir "$CERTS" --authfile bad.json copy oci:img:v1 "docker://$R/test/app:v2"
expect_eq "exit status for a wrong password" 1 "$rc"
expect_match "a wrong password is a 401" '401|[Uu]nauthori[sz]ed|UNAUTHORIZED' "$err"
expect_match "the error hints at the credentials" '[Ll]ogin|[Cc]redential|[Pp]assword|authfile' "$err"
expect_match "the error names the registry" "$R" "$err"
for secret in "$wrong" "$wrong_b64"; do
    expect_no_match "the wrong password in the output" "$secret" "$out$err"
done
ok "wrong password: $(head -n1 <<<"$err")"
run_fails "push with no credentials" g --cert-dir "$CERTS" copy oci:img:v1 "docker://$R/test/app:v2"
expect_eq "exit status without credentials" 1 "$rc"
expect_match "no credentials is a 401" '401|[Uu]nauthori[sz]ed|UNAUTHORIZED' "$err"
expect_match "the error hints at grocker login" '[Ll]ogin' "$err"
ok "no credentials: $(head -n1 <<<"$err")"

# --- login / logout with --authfile ----------------------------------------------------------------------
# shellcheck disable=SC2016 # expanded by the inner bash
run_fails "login with a wrong password" bash -c 'printf "%s\n" "$1" | "$GROCKER" -q --root "$2" --cert-dir "$3" --authfile "$4" login "$5" -u "$6" --password-stdin' \
    _ "$wrong" "$tmp/store" "$CERTS" "$tmp/login.json" "$R" "$user"
expect_eq "exit status of a refused login" 1 "$rc"
expect_match "a refused login says 401" '401|[Uu]nauthori[sz]ed|UNAUTHORIZED' "$err"
if [ -f login.json ] && [ "$(jq --arg r "$R" '.auths[$r] != null' login.json)" = true ]; then
    fail "a refused login wrote credentials: $(cat login.json)"
fi
# shellcheck disable=SC2016
run "login" bash -c 'printf "%s\n" "$1" | "$GROCKER" -q --root "$2" --cert-dir "$3" --authfile "$4" login "$5" -u "$6" --password-stdin' \
    _ "$password" "$tmp/store" "$CERTS" "$tmp/login.json" "$R" "$user"
[ -f login.json ] || fail "grocker login wrote no login.json"
expect_eq "mode of the auth file written by login" 600 "$(stat -c %a login.json)"
expect_eq "login.json auths[$R].auth" "$auth_b64" "$(jq -r --arg r "$R" '.auths[$r].auth' login.json)"
run "push after login" g --cert-dir "$CERTS" --authfile login.json copy oci:img:v1 "docker://$R/test/login:v1"
expect_eq "digest pushed after login" "$D" "$(sk_digest "$R/test/login:v1")"
run "logout" g --authfile login.json logout "$R"
if [ -f login.json ] && [ "$(jq --arg r "$R" '.auths[$r] != null' login.json)" = true ]; then
    fail "grocker logout left the credentials: $(cat login.json)"
fi
run_fails "push after logout" g --cert-dir "$CERTS" --authfile login.json copy oci:img:v1 "docker://$R/test/login:v2"
expect_match "push after logout is a 401" '401|[Uu]nauthori[sz]ed|UNAUTHORIZED' "$err"
ok "login --password-stdin wrote auth.json (0600), push worked, logout removed it"

# --- login / logout in the default place -------------------------------------------------------------------
# shellcheck disable=SC2016
run "login (default auth file)" bash -c 'printf "%s" "$1" | "$GROCKER" -q --root "$2" --cert-dir "$3" login "$4" -u "$5" --password-stdin' \
    _ "$password" "$tmp/store" "$CERTS" "$R" "$user"
default_auth=$XDG_RUNTIME_DIR/containers/auth.json
[ -f "$default_auth" ] || fail "grocker login wrote no \$XDG_RUNTIME_DIR/containers/auth.json; files: $(find "$HOME" "$XDG_RUNTIME_DIR" -type f)"
expect_eq "mode of the default auth file" 600 "$(stat -c %a "$default_auth")"
run "push with the default auth file" g --cert-dir "$CERTS" copy oci:img:v1 "docker://$R/test/default:v1"
expect_eq "digest pushed with the default auth file" "$D" "$(sk_digest "$R/test/default:v1")"
run "skopeo reads grocker's auth file" skopeo inspect --raw --cert-dir "$CERTS" --authfile "$default_auth" "docker://$R/test/default:v1"
run "logout (default auth file)" g logout "$R"
expect_eq "default auth file after logout" false "$(jq --arg r "$R" '.auths[$r] != null' "$default_auth")"
ok "login/logout in \$XDG_RUNTIME_DIR/containers/auth.json, which skopeo reads too"

# --- a docker config.json ------------------------------------------------------------------------------------
export DOCKER_CONFIG=$tmp/docker
write_auth "$DOCKER_CONFIG/config.json" "$auth_b64"
run "push with DOCKER_CONFIG auths" g --cert-dir "$CERTS" copy oci:img:v1 "docker://$R/test/docker-config:v1"
expect_eq "digest pushed with config.json" "$D" "$(sk_digest "$R/test/docker-config:v1")"
unset DOCKER_CONFIG
mkdir -p "$HOME/.docker"
write_auth "$HOME/.docker/config.json" "$auth_b64"
run "inspect with ~/.docker/config.json" g --cert-dir "$CERTS" inspect "docker://$R/test/docker-config:v1"
expect_eq "digest read with ~/.docker/config.json" "$D" "$(jq -r .digest <<<"$out")"
rm "$HOME/.docker/config.json"
ok "credentials from \$DOCKER_CONFIG/config.json and ~/.docker/config.json (auths)"

# --- a credential helper (credHelpers, then credsStore) ----------------------------------------------------------
mkdir -p bin
cat >bin/docker-credential-test <<EOF
#!/bin/sh
# docker-credential-* protocol: "get" reads the server on stdin, answers JSON or "not found".
server=\$(cat)
echo "\$1 \$server" >>"$tmp/helper.log"
[ "\$1" = get ] || exit 1
case \$server in
$R | https://$R | http://$R)
    jq -n --arg s "\$server" --arg u '$user' --arg p "\$(cat '$tmp/helper-secret')" '{ServerURL: \$s, Username: \$u, Secret: \$p}' ;;
*)
    echo "credentials not found in native keychain"
    exit 1 ;;
esac
EOF
chmod +x bin/docker-credential-test
printf '%s' "$password" >helper-secret
export PATH=$tmp/bin:$PATH DOCKER_CONFIG=$tmp/docker-helper
mkdir -p "$DOCKER_CONFIG"
jq -n --arg r "$R" '{credHelpers: {($r): "test"}}' >"$DOCKER_CONFIG/config.json"
run "push with a credential helper" g --cert-dir "$CERTS" copy oci:img:v1 "docker://$R/test/helper:v1"
expect_eq "digest pushed with credHelpers" "$D" "$(sk_digest "$R/test/helper:v1")"
expect_match "the helper was asked for the registry" "^get (https?://)?$R\$" "$(cat helper.log)"
: >helper.log
jq -n '{credsStore: "test"}' >"$DOCKER_CONFIG/config.json"
run "push with a credsStore" g --cert-dir "$CERTS" copy oci:img:v1 "docker://$R/test/store:v1"
expect_eq "digest pushed with credsStore" "$D" "$(sk_digest "$R/test/store:v1")"
expect_match "the credsStore helper was asked for the registry" "^get (https?://)?$R\$" "$(cat helper.log)"
unset DOCKER_CONFIG
ok "credentials from a docker-credential-test helper (credHelpers and credsStore)"

# --- no secret in anything grocker or skopeo printed -------------------------------------------------------------
for secret in "$password" "$auth_b64" "$wrong" "$wrong_b64"; do
    if grep -qF -- "$secret" "$tmp/transcript"; then
        fail "a secret appears in the output: $(grep -F -- "$secret" "$tmp/transcript" | head -3)"
    fi
done
ok "no password or auth string in any output"

echo "tls-auth: all checks passed"
