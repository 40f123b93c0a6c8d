#!/bin/bash
# grocker against docker-registry with token auth, its tokens (JWT RS256, x5c chain) made by the
# test's token server: anonymous pull of a public repository, authenticated push, the scopes
# asked for (the token server's log), a cross-repository mount with a token for both
# repositories, a pull-only user refused a push, an identity token (OAuth2 refresh token), and
# skopeo interop both ways with the same digests.
#
# Run by `meson test` with GROCKER (the binary); standalone: GROCKER=build/src/grocker $0.
# A missing tool is a failure, never a skip. KEEP_TMP=1 keeps the temp folder.
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"

: "${GROCKER:?GROCKER must name the grocker binary}"
[ -x "$GROCKER" ] || fail "GROCKER='$GROCKER' is not an executable"
need_tools skopeo docker-registry openssl jq curl sha256sum base64 "$PY"
"$PY" -c 'import jwt, cryptography' 2>/dev/null || fail "python3-jwt or python3-cryptography is missing: run scripts/install-deps"

setup grocker-registry-token
cd "$tmp"
g() { "$GROCKER" -q --root "$tmp/store" "$@"; }

user=pusher
password="tok-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
rpassword="rd-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
start_registry token reg --user "$user:$password" --reader "reader:$rpassword" --public 'public/*'
R=$REGISTRY
ok "registry at $REGISTRY_URL, token server at $TOKEN_URL"

sk_digest() { # REF [skopeo options]: sha256 of the manifest bytes the registry serves
    local ref=$1
    shift
    run "skopeo inspect --raw $ref" skopeo inspect --raw --tls-verify=false "$@" "docker://$ref"
    echo "sha256:$(printf '%s' "$out" | sha256sum | cut -d' ' -f1)"
}
write_auth() { # FILE JSON-ENTRY
    jq -n --arg r "$R" --argjson e "$2" '{auths: {($r): $e}}' >"$1"
}
# token_log_since MARK-LINE: the token server's requests after line MARK-LINE, compact JSON.
token_mark() { sleep 0.1; token_line=$(wc -l <"$TOKEN_LOG"); }
token_since() { tail -n +$((token_line + 1)) "$TOKEN_LOG"; }

mkdir -p app base
printf 'token\n' >app/name
head -c 300000 /dev/urandom >app/blob
head -c 200000 /dev/urandom >base/blob
run "grocker append (app)" g append scratch oci:img:v1 --dir app
D=$(tail -n1 <<<"$out")
layers=$(skopeo inspect --raw oci:img:v1 | jq -r '.layers[].digest')
run "grocker append (base)" g append scratch oci:base:v1 --dir base

# --- anonymous pull of a public repository (pushed by skopeo) -----------------------------------------
run "skopeo push to public/base" skopeo copy -q --dest-tls-verify=false --dest-creds "$user:$password" \
    oci:base:v1 "docker://$R/public/base:v1"
S=$(sk_digest "$R/public/base:v1")
token_mark
run "anonymous grocker pull of public/base" g pull "$R/public/base:v1" oci:pub:v1
expect_eq "digest of the anonymous pull of skopeo's push" "$S" "$(oci_digest pub v1)"
check_blobs pub
asked=$(token_since | jq -c 'select(.user == null and .status == 200)')
[ -n "$asked" ] || fail "grocker asked the token server for no anonymous token: $(token_since)"
jq -e -s 'map(.scopes[]) | any(test("^repository:public/base:pull$"))' <<<"$asked" >/dev/null ||
    fail "no anonymous token asked with scope repository:public/base:pull: $asked"
ok "anonymous pull of public/base ($S), scope repository:public/base:pull"

run_fails "anonymous push" g copy oci:img:v1 "docker://$R/public/mine:v1"
expect_eq "exit status of an anonymous push" 1 "$rc"
expect_match "anonymous push: refused" '401|403|[Uu]nauthori[sz]ed|UNAUTHORIZED|DENIED|[Dd]enied|insufficient' "$err"
expect_match "anonymous push: names the registry" "$R" "$err"
expect_match "anonymous push: hints at login" '[Ll]ogin|[Cc]redential' "$err"
ok "anonymous push refused: $(head -n1 <<<"$err")"

# --- authenticated push; skopeo reads it ------------------------------------------------------------------
write_auth auth.json "$(jq -n --arg a "$(printf '%s:%s' "$user" "$password" | base64 -w0)" '{auth: $a}')"
token_mark
run "authenticated push to team/app" g --authfile auth.json copy oci:img:v1 "docker://$R/team/app:v1"
expect_match "push prints the digest" "$D" "$out"
expect_eq "digest of grocker's push (skopeo)" "$D" "$(sk_digest "$R/team/app:v1" --creds "$user:$password")"
asked=$(token_since)
jq -e -s --arg u "$user" 'map(select(.user == $u and .status == 200) | .scopes[]) |
    any(test("^repository:team/app:(.*,)?push(,.*)?$"))' <<<"$asked" >/dev/null ||
    fail "no token asked for push on team/app as $user: $asked"
run "skopeo copy back" skopeo copy -q --src-tls-verify=false --src-creds "$user:$password" "docker://$R/team/app:v1" oci:back:v1
expect_eq "digest of skopeo's copy of grocker's push" "$D" "$(oci_digest back v1)"
ok "authenticated push $D; scopes asked: $(jq -r -s '[.[] | select(.user != null) | .scopes[]] | unique | join(" ")' <<<"$asked")"

# --- a second push uploads nothing; a push to a second repository mounts ----------------------------------------
mark
run "second push" g --authfile auth.json copy oci:img:v1 "docker://$R/team/app:v1"
uploads=$(requests_since | awk '$1 ~ /^(POST|PATCH|PUT)$/ && $2 ~ /\/blobs\/uploads\//')
[ -z "$uploads" ] || fail "the second push uploaded blobs: $uploads"
mark
token_mark
run "push to team/app2" g --authfile auth.json copy oci:img:v1 "docker://$R/team/app2:v1"
for b in $layers; do
    mounts=$(requests_since | grep -E "^POST /v2/team/app2/blobs/uploads/[?].*mount=${b//:/(:|%3A)}.* 201$" || true)
    [ -n "$mounts" ] || fail "layer $b was not mounted into team/app2 (201): $(requests_since)"
done
expect_eq "PATCH requests on team/app2" 0 "$(count_since PATCH '^/v2/team/app2/blobs/uploads/')"
jq -e -s --arg u "$user" 'map(select(.user == $u and .status == 200 and
    (.scopes | any(test("^repository:team/app2:.*push"))) and (.scopes | any(test("^repository:team/app:.*pull"))))) | length > 0' \
    <<<"$(token_since)" >/dev/null || fail "no token asked for push on team/app2 and pull on team/app together: $(token_since)"
expect_eq "digest in team/app2" "$D" "$(sk_digest "$R/team/app2:v1" --creds "$user:$password")"
ok "re-push sent no blob; push to team/app2 mounted from team/app with one token for both"

# --- a pull-only user ---------------------------------------------------------------------------------------
write_auth reader.json "$(jq -n --arg a "$(printf 'reader:%s' "$rpassword" | base64 -w0)" '{auth: $a}')"
run "pull as the reader" g --authfile reader.json pull "$R/team/app:v1" oci:reader:v1
expect_eq "digest pulled by the reader" "$D" "$(oci_digest reader v1)"
run_fails "push as the reader" g --authfile reader.json copy oci:img:v1 "docker://$R/team/reader:v1"
expect_eq "exit status of a refused push" 1 "$rc"
expect_match "refused push: why" '401|403|[Uu]nauthori[sz]ed|UNAUTHORIZED|DENIED|[Dd]enied|insufficient' "$err"
expect_match "refused push: names the repository" 'team/reader' "$err"
# The token server accepted the reader's password and granted pull only: the registry's 401
# carries error="insufficient_scope". Telling the user to log in again would send them the
# wrong way: the message must say the access was not granted.
expect_match "refused push: says push was not granted (insufficient_scope)" \
    'insufficient[_ ]scope|not (allowed|granted|permitted)|do(es)? not allow|no (push )?(access|permission)|lack|permission' "$err"
expect_no_match "refused push: does not call valid credentials refused" 'were refused|log in again' "$err"
ok "pull-only user: pull works, push refused: $(head -n1 <<<"$err")"

# --- an identity token (OAuth2 refresh token, as docker login stores for token servers) --------------------------
refresh=$(curl -sf -X POST --data-urlencode grant_type=password --data-urlencode "username=$user" \
    --data-urlencode "password=$password" --data-urlencode "service=$TOKEN_SERVICE" \
    --data-urlencode client_id=grocker-test --data-urlencode access_type=offline "$TOKEN_URL" | jq -r .refresh_token)
if [ -z "$refresh" ] || [ "$refresh" = null ]; then fail "the token server gave no refresh token"; fi
write_auth identity.json "$(jq -n --arg t "$refresh" '{identitytoken: $t}')"
token_mark
run "push with an identity token" g --authfile identity.json copy oci:img:v1 "docker://$R/team/identity:v1"
expect_eq "digest pushed with an identity token" "$D" "$(sk_digest "$R/team/identity:v1" --creds "$user:$password")"
jq -e -s --arg u "$user" 'any(.grant_type == "refresh_token" and .user == $u and .status == 200)' <<<"$(token_since)" >/dev/null ||
    fail "grocker did not use the OAuth2 refresh_token grant: $(token_since)"
ok "identity token: OAuth2 POST with grant_type=refresh_token"

# --- skopeo pushes with credentials, grocker pulls with credentials ----------------------------------------------
run "skopeo push to team/base" skopeo copy -q --dest-tls-verify=false --dest-creds "$user:$password" \
    oci:base:v1 "docker://$R/team/base:v1"
S2=$(sk_digest "$R/team/base:v1" --creds "$user:$password")
run "grocker pull of skopeo's push" g --authfile auth.json pull "$R/team/base:v1" oci:team-base:v1
expect_eq "digest of grocker's pull of skopeo's authenticated push" "$S2" "$(oci_digest team-base v1)"
ok "skopeo push / grocker pull with token auth: $S2"

if grep -qE 'eyJ[A-Za-z0-9_-]{8,}\.eyJ' "$tmp/transcript"; then
    fail "a JWT appears in the output: $(grep -oE 'eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{0,20}' "$tmp/transcript" | head -3)"
fi
for secret in "$password" "$rpassword" "$refresh"; do
    if grep -qF -- "$secret" "$tmp/transcript"; then
        fail "a secret appears in the output: $(grep -F -- "$secret" "$tmp/transcript" | head -3)"
    fi
done
ok "no password or token in any output"

echo "token: all checks passed"
