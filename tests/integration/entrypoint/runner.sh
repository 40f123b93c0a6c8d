#!/bin/bash
# grocker-entrypoint as the entrypoint of a real runner-like image, made without `grocker build`:
# Debian from mmdebstrap + nginx, uwsgi, cron and msmtp (the root image, cached in
# $GROCKER_TEST_CACHE) + a virtualenv holding a tiny WSGI app + /etc/grocker/services.json + the
# entrypoint. Each instance runs with `grocker run --network host`: the www service answers on
# 8080 through nginx and uwsgi, statics and X-Accel-Redirect media included; SIGTERM stops it
# all; a command service logs to a /dev/log of the test's; scripts and commands run; the cron
# instance installs the crontab, and a job's output is mailed through msmtp to an SMTP sink on
# loopback. Needs root (mmdebstrap, the image's owners); it fails, never skips.
set -eu -o pipefail
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${GROCKER_ENTRYPOINT:?set GROCKER_ENTRYPOINT to the grocker-entrypoint binary}"
: "${GROCKER_TEST_CACHE:?set GROCKER_TEST_CACHE to a cache folder}"
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
for tool in mmdebstrap curl python3 flock jq sha256sum pgrep; do
    command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/install-deps"
done
[ "$(id -u)" = 0 ] || fail "this test needs root (mmdebstrap, and the image's file owners)"
if curl -s -o /dev/null --max-time 2 http://127.0.0.1:8080/; then
    fail "something already answers on port 8080 of this machine: the www service needs that port (host network)"
fi

tmp=$(mktemp -d /tmp/grocker-entrypoint-XXXXXX)
chmod 755 "$tmp"
bg_pids=()
cleanup() {
    for p in "${bg_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
# Private copies: a rebuild running at the same time must not swap them under the test.
install -m 755 "$GROCKER" "$tmp/grocker"
G=("$tmp/grocker" --root "$tmp/store" -q)
g() { "${G[@]}" "$@"; }
runner="oci:$tmp/images:runner"
ep=/usr/local/bin/grocker-entrypoint
# Waits up to $1 tenths of a second for the command that follows to succeed.
wait_for() {
    local n=$1
    shift
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

# --- the root image: Debian + the run-time packages + user grocker (cached) ------------------
root_setup='apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light uwsgi uwsgi-plugin-python3 python3 python3-venv cron msmtp-mta >/dev/null && useradd -m grocker'
root_tag=root-$(echo "$root_setup" | sha256sum | cut -c1-12)
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
    if ! jq -e --arg t "$root_tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t)' \
        "$GROCKER_TEST_CACHE/entrypoint-root/index.json" >/dev/null 2>&1; then
        "$GROCKER" --root "$GROCKER_TEST_CACHE/store" -q run --network host "oci:$GROCKER_TEST_CACHE/debian:bookworm" \
            --commit "oci:$GROCKER_TEST_CACHE/entrypoint-root:$root_tag" -- sh -c "$root_setup" >/dev/null \
            || fail "could not install nginx, uwsgi, cron and msmtp over Debian (apt-get through the host's network)"
        rm -rf "$GROCKER_TEST_CACHE/store"
    fi
) 9>"$GROCKER_TEST_CACHE/lock"
g copy "oci:$GROCKER_TEST_CACHE/entrypoint-root:$root_tag" "oci:$tmp/images:root" >/dev/null
pass "root image: Debian 12 + nginx-light, uwsgi + python3 plugin, cron, msmtp-mta, user grocker"

# --- the runner: a virtualenv with the app, services.json, statics, the entrypoint ----------
mkdir -p "$tmp/src" "$tmp/layer/usr/local/bin" "$tmp/layer/etc/grocker" "$tmp/layer/app/static"
cat >"$tmp/src/testapp.py" <<'EOF'
import os
import subprocess


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    headers = [("Content-Type", "text/plain")]
    if path == "/":
        body = "hello from the test app\n"
    elif path == "/env":
        body = "GREETING=%s\n" % os.environ.get("GREETING", "")
    elif path == "/whoami":
        body = "uid=%d\n" % os.getuid()
    elif path == "/report":
        # nginx sends /media/report.txt in place of this empty answer.
        start_response("200 OK", headers + [("X-Accel-Redirect", "/media-internal/report.txt")])
        return [b""]
    elif path == "/mail":
        message = b"To: app@example.com\nSubject: from the app\n\nmail body from the app\n"
        done = subprocess.run(["sendmail", "-t"], input=message, capture_output=True)
        body = "sendmail exited with %d %s\n" % (done.returncode, done.stderr.decode().strip())
    else:
        start_response("404 Not Found", headers)
        return [b"no such page\n"]
    start_response("200 OK", headers)
    return [body.encode()]
EOF
g run "oci:$tmp/images:root" --volume "$tmp/src:/src:ro" --commit "oci:$tmp/images:venv" -- sh -c \
    'python3 -m venv --without-pip /home/grocker/venv &&
     cp /src/testapp.py "$(/home/grocker/venv/bin/python -c "import site; print(site.getsitepackages()[0])")/" &&
     chown -R grocker:grocker /home/grocker/venv' >/dev/null || fail "could not make the virtualenv"
install -m 755 "$GROCKER_ENTRYPOINT" "$tmp/layer$ep"
echo "static file served by nginx" >"$tmp/layer/app/static/hello.txt"
cat >"$tmp/layer/etc/grocker/services.json" <<'EOF'
{
  "app": "testapp", "version": "1.0", "venv": "/home/grocker/venv",
  "services": {
    "www": {"kind": "wsgi", "wsgi": "testapp:application", "static": {"/static/": "/app/static"},
            "media": "/media", "processes": 2},
    "worker": {"kind": "command", "command": ["sh", "-c", "echo worker-out; echo worker-err >&2; exec sleep 1000"]}
  },
  "crontab": ["* * * * * echo cron-job-ran-as-$(id -un) \"$GREETING\" \"[$SPACED]\""]
}
EOF
chmod -R u=rwX,go=rX "$tmp/layer"
g append "oci:$tmp/images:venv" "$runner" --dir "$tmp/layer" --keep-owners >/dev/null
pass "runner image: the venv with testapp, /etc/grocker/services.json, /app/static, $ep"

# --- what the instances are given: /config, a media volume, /scripts, the sinks -------------
mkdir -p "$tmp/config" "$tmp/media" "$tmp/scripts"
printf 'GREETING=hello from config\nMAILTO=ops@example.com\nEMPTY=\nSPACED=  padded  \n' >"$tmp/config/env"
echo "media file sent by X-Accel-Redirect" >"$tmp/media/report.txt"
printf '#!/bin/sh\necho "script x: $* as $(id -un)"\n' >"$tmp/scripts/x"
chmod 755 "$tmp/scripts/x"

# An SMTP server that takes every message and appends it to a file (no smtpd/aiosmtpd here).
cat >"$tmp/smtp-sink.py" <<'EOF'
import socketserver, sys

class Handler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 sink ESMTP")
        envelope, data = [], None
        for raw in self.rfile:
            line = raw.decode(errors="replace").rstrip("\r\n")
            if data is not None:
                if line == ".":
                    with open(sys.argv[2], "a") as out:
                        out.write("".join(envelope) + "\n".join(data) + "\n.\n")
                    envelope, data = [], None
                    self.reply("250 queued")
                else:
                    data.append(line[1:] if line.startswith("..") else line)
                continue
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 sink")
            elif verb in ("MAIL", "RCPT"):
                envelope.append(line + "\n")
                self.reply("250 ok")
            elif verb == "DATA":
                data = []
                self.reply("354 go on")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")

socketserver.TCPServer.allow_reuse_address = True
with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler) as server:
    with open(sys.argv[1], "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()
EOF
python3 "$tmp/smtp-sink.py" "$tmp/smtp-port" "$tmp/mail" &
bg_pids+=($!)
wait_for 50 test -s "$tmp/smtp-port" || fail "the SMTP sink did not start"
smtp_port=$(cat "$tmp/smtp-port")
echo "127.0.0.1:$smtp_port" >"$tmp/config/smtp"
touch "$tmp/mail"

# A syslog daemon's /dev/log: every datagram becomes one line of a file.
cat >"$tmp/syslog-sink.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(65536).decode(errors="replace").rstrip("\n") + "\n")
EOF
python3 "$tmp/syslog-sink.py" "$tmp/log.sock" "$tmp/syslog" &
bg_pids+=($!)
wait_for 50 test -S "$tmp/log.sock" || fail "the syslog sink did not start"
chmod 666 "$tmp/log.sock"

volumes=(--volume "$tmp/config:/config:ro" --volume "$tmp/media:/media:ro" --volume "$tmp/scripts:/scripts:ro")
run() { g run --network host "${volumes[@]}" "$runner" -- "$ep" "$@"; }
# In the background, not through a function: $! must be grocker itself, where the signals go.
RUN=("${G[@]}" run --network host "${volumes[@]}" "$runner" -- "$ep")

# --- no argument: the help --------------------------------------------------------------------
status=0
help=$(run 2>"$tmp/err") || status=$?
[ "$status" = 0 ] || fail "with no argument the entrypoint exited with $status: $(cat "$tmp/err")"
for want in "the entrypoint of testapp 1.0" "  www     nginx on port 8080, uwsgi running testapp:application; static /static/; media /media" \
    "  worker  sh -c 'echo worker-out; echo worker-err >&2; exec sleep 1000'" "  cron    the cron daemon with the application's crontab (1 job)" \
    "Scripts in /scripts:"$'\n'"  x"$'\n'; do
    [[ "$help" == *"$want"* ]] || fail "the help lacks '$want':
$help"
done
[ ! -s "$tmp/err" ] || fail "the help wrote to stderr: $(cat "$tmp/err")"
pass "no argument: the help lists the services, cron and the scripts, exit status 0"

# --- scripts and commands ---------------------------------------------------------------------
[ "$(run x a b)" = "script x: a b as grocker" ] || fail "'x' did not run /scripts/x as grocker: $(run x a b 2>&1)"
[ "$(run /scripts/x c)" = "script x: c as grocker" ] || fail "'/scripts/x' did not run"
pass "a script of /scripts runs by its name or its path, with its arguments, as user grocker"
[ "$(run id -un)" = grocker ] || fail "a command does not run as grocker"
[ "$(run sh -c 'echo "$GREETING|$HOME|$EMPTY|$SPACED|$VIRTUAL_ENV"')" = "hello from config|/home/grocker||  padded  |/home/grocker/venv" ] \
    || fail "the environment of a command: $(run sh -c 'echo "$GREETING|$HOME|$EMPTY|$SPACED|$VIRTUAL_ENV"')"
[ "$(run python -c 'import sys, testapp; print(sys.prefix)')" = /home/grocker/venv ] \
    || fail "python is not the virtualenv's, or testapp is not in it"
status=0
run sh -c 'exit 5' || status=$?
[ "$status" = 5 ] || fail "a command's exit status 5 came back as $status"
status=0
run sh -c 'kill -KILL $$' || status=$?
[ "$status" = 137 ] || fail "a command killed by SIGKILL gave $status, not 137"
status=0
out=$(run no-such-command 2>&1) || status=$?
[ "$status" = 127 ] || fail "an unknown command gave status $status, not 127"
[ "$out" = "grocker-entrypoint: error: unable to run 'no-such-command': no such command in PATH (/home/grocker/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)" ] \
    || fail "an unknown command: '$out'"
orphans=$(run sh -c '(sleep 0.2 &); sleep 1; grep -l "^State:.*Z" /proc/[0-9]*/status | wc -l')
[ "$orphans" = 0 ] || fail "$orphans zombie(s): the entrypoint does not reap orphans"
pass "any command runs as grocker with /config/env and the venv first in PATH; statuses 5, 137 and 127 come back; orphans reaped"

# The relay: /config/smtp, else SMTP_HOST, else the default gateway.
grep -q "^host 127.0.0.1$" <(run cat /etc/msmtprc) && grep -q "^port $smtp_port$" <(run cat /etc/msmtprc) \
    || fail "/etc/msmtprc does not name the relay of /config/smtp: $(run cat /etc/msmtprc)"
rc=$(g run --network host --env SMTP_HOST=relay.example:2525 "$runner" -- "$ep" cat /etc/msmtprc)
grep -q "^host relay.example$" <<<"$rc" && grep -q "^port 2525$" <<<"$rc" || fail "SMTP_HOST is not the relay: $rc"
gateway=$(awk '$2 == "00000000" && $8 == "00000000" { print $3; exit }' /proc/net/route)
if [ -n "$gateway" ]; then
    gw=$(printf '%d.%d.%d.%d' "0x${gateway:6:2}" "0x${gateway:4:2}" "0x${gateway:2:2}" "0x${gateway:0:2}")
    rc=$(g run --network host "$runner" -- "$ep" cat /etc/msmtprc)
    grep -q "^host $gw$" <<<"$rc" || fail "with no /config/smtp the relay is not the default gateway $gw: $rc"
    pass "mail relay: /config/smtp, else SMTP_HOST, else the default gateway ($gw)"
else
    pass "mail relay: /config/smtp, else SMTP_HOST (this machine has no default route to check the gateway with)"
fi
mkdir -p "$tmp/bad-config" && printf 'OK=1\nNOT VALID=2\n' >"$tmp/bad-config/env"
status=0
out=$(g run --network host --volume "$tmp/bad-config:/config:ro" "$runner" -- "$ep" true 2>&1) || status=$?
[ "$status" = 1 ] && [ "$out" = "grocker-entrypoint: error: /config/env:2: what comes before '=' is not a variable name (letters, digits and _, not starting with a digit)" ] \
    || fail "a bad /config/env: status $status, '$out'"
pass "a bad /config/env stops the start with one line naming the file, the line and the fix"

# --- www: nginx on 8080 in front of uwsgi ----------------------------------------------------
"${RUN[@]}" www >"$tmp/www.out" 2>"$tmp/www.err" &
www=$!
bg_pids+=($www)
wait_for 300 curl -sf http://127.0.0.1:8080/ || fail "www does not answer on 8080:
$(cat "$tmp/www.err")"
[ "$(curl -s http://127.0.0.1:8080/)" = "hello from the test app" ] || fail "/ is not the app's answer"
[ "$(curl -s http://127.0.0.1:8080/static/hello.txt)" = "static file served by nginx" ] || fail "the static file is not served"
[ "$(curl -s http://127.0.0.1:8080/report)" = "media file sent by X-Accel-Redirect" ] || fail "X-Accel-Redirect did not send the media file"
[ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/media-internal/report.txt)" = 404 ] \
    || fail "the internal media location answers from outside"
[ "$(curl -s http://127.0.0.1:8080/env)" = "GREETING=hello from config" ] || fail "the app lacks /config/env"
[ "$(curl -s http://127.0.0.1:8080/whoami)" = "uid=1000" ] || fail "uwsgi does not run as grocker: $(curl -s http://127.0.0.1:8080/whoami)"
curl -sI http://127.0.0.1:8080/static/hello.txt | grep -qi '^server: nginx' || fail "the static file does not come from nginx"
pass "www: the app through nginx and uwsgi, a static file, media by X-Accel-Redirect (internal only), /config/env"
nginx_master=$(pgrep -f "nginx -e stderr -c /tmp/grocker/nginx.conf" | head -1)
# grocker (1000) as the host sees it: as root, 1000 up from the start of root's own subordinate
# range when it has 65536 ids, else from 2^31 (no host account's).
grocker_host=$(awk -F: '$1 == "root" && $3 >= 65536 { print $2 + 1000; f = 1; exit } END { if (!f) print "2147484648" }' /etc/subuid)
[ -n "$nginx_master" ] && [ "$(stat -c %u "/proc/$nginx_master")" = "$grocker_host" ] \
    || fail "nginx's master does not run as grocker (uid 1000, host uid $grocker_host): $(stat -c %u "/proc/$nginx_master")"
pass "nginx and uwsgi run as grocker (uid 1000)"
[ "$(curl -s http://127.0.0.1:8080/mail)" = "sendmail exited with 0 " ] || fail "the app could not send mail: $(curl -s http://127.0.0.1:8080/mail)"
wait_for 50 grep -q "mail body from the app" "$tmp/mail" || fail "the app's mail did not reach the SMTP sink"
grep -q "^RCPT TO:<app@example.com>" "$tmp/mail" || fail "the app's mail went to the wrong recipient: $(cat "$tmp/mail")"
pass "the app's sendmail reaches the relay of /config/smtp (an SMTP sink on 127.0.0.1:$smtp_port)"
grep -q '"GET /static/hello.txt HTTP/1.1" 200' "$tmp/www.out" || fail "nginx's access log is not on stdout: $(cat "$tmp/www.out")"
grep -q "service www: nginx on port 8080 in front of uwsgi running testapp:application" "$tmp/www.err" || fail "no start line on stderr"
grep -q "spawned uWSGI master process" "$tmp/www.err" || fail "uwsgi's log is not on stderr"
pass "logs: nginx's access log on stdout, uwsgi's and the entrypoint's lines on stderr"

kill -TERM "$www"
status=0
wait "$www" || status=$?
# nginx ends with 0 on SIGTERM, and uwsgi with die-on-term too: the service ends with 0.
[ "$status" = 0 ] || fail "after SIGTERM www exited with $status, not 0: $(tail -5 "$tmp/www.err")"
! pgrep -f "nginx -e stderr -c /tmp/grocker/nginx.conf" >/dev/null || fail "nginx is still running after SIGTERM"
! pgrep -f "uwsgi --ini /tmp/grocker/uwsgi.ini" >/dev/null || fail "uwsgi is still running after SIGTERM"
grep -q "passing SIGTERM on to uwsgi and nginx" "$tmp/www.err" || fail "no line about SIGTERM: $(cat "$tmp/www.err")"
pass "SIGTERM stops nginx and uwsgi; the service exits with 0"

# Started as grocker (an image whose config says User grocker), www works the same.
"${G[@]}" run --network host --user grocker "${volumes[@]}" "$runner" -- "$ep" www >"$tmp/www-user.out" 2>"$tmp/www-user.err" &
www=$!
bg_pids+=($www)
wait_for 300 curl -sf http://127.0.0.1:8080/ || fail "www started as grocker does not answer on 8080:
$(cat "$tmp/www-user.err")"
[ "$(curl -s http://127.0.0.1:8080/whoami)" = "uid=1000" ] || fail "www started as grocker: not uid 1000"
kill -TERM "$www"
status=0
wait "$www" || status=$?
[ "$status" = 0 ] || fail "www started as grocker exited with $status after SIGTERM: $(tail -5 "$tmp/www-user.err")"
rc=$(g run --user grocker "${volumes[@]}" "$runner" -- "$ep" cat /home/grocker/.msmtprc)
grep -q "^port $smtp_port$" <<<"$rc" || fail "started as grocker, ~/.msmtprc does not name the relay: $rc"
pass "started as grocker instead of root: www works, SIGTERM → 0; the relay is in ~grocker/.msmtprc"

# When one of the two dies, the other is stopped and the service ends with the first's status.
"${RUN[@]}" www >"$tmp/www2.out" 2>"$tmp/www2.err" &
www=$!
bg_pids+=($www)
wait_for 300 curl -sf http://127.0.0.1:8080/ || fail "www does not answer on 8080 the second time"
uwsgi_master=$(pgrep -f "uwsgi --ini /tmp/grocker/uwsgi.ini" | sort -n | head -1)
kill -KILL "$uwsgi_master"
status=0
wait "$www" || status=$?
[ "$status" = 137 ] || fail "with uwsgi killed, www exited with $status, not 137: $(tail -5 "$tmp/www2.err")"
grep -q "uwsgi ended: stopping nginx" "$tmp/www2.err" || fail "no line about stopping nginx: $(cat "$tmp/www2.err")"
! pgrep -f "nginx -e stderr -c /tmp/grocker/nginx.conf" >/dev/null || fail "nginx outlived uwsgi"
pass "uwsgi killed: nginx is stopped, the service exits with uwsgi's 137"

# --- a command service, logging to /dev/log ---------------------------------------------------
"${G[@]}" run --network host "${volumes[@]}" --volume "$tmp/log.sock:/dev/log" "$runner" -- "$ep" worker \
    >"$tmp/worker.out" 2>"$tmp/worker.err" &
worker=$!
bg_pids+=($worker)
wait_for 100 grep -q "worker-err" "$tmp/syslog" || fail "the worker's output did not reach /dev/log: $(cat "$tmp/worker.err")"
wait_for 20 grep -q "worker-out" "$tmp/syslog" || fail "the worker's stdout did not reach /dev/log"
kill -TERM "$worker"
status=0
wait "$worker" || status=$?
[ "$status" = 143 ] || fail "after SIGTERM the worker service exited with $status, not 143 (sleep killed by SIGTERM)"
grep -q '^<30>.* worker\[[0-9]*\]: worker-out$' "$tmp/syslog" || fail "stdout is not at info level, tagged worker: $(cat "$tmp/syslog")"
grep -q '^<29>.* worker\[[0-9]*\]: worker-err$' "$tmp/syslog" || fail "stderr is not at notice level, tagged worker"
grep -q '^<30>.* grocker-entrypoint\[[0-9]*\]: service worker: sh started$' "$tmp/syslog" || fail "the entrypoint's own lines are not in syslog"
[ ! -s "$tmp/worker.out" ] && [ ! -s "$tmp/worker.err" ] || fail "with /dev/log, lines still went to stdout/stderr: $(cat "$tmp/worker.out" "$tmp/worker.err")"
grep -q "^syslog LOG_MAIL$" <(g run --volume "$tmp/log.sock:/dev/log" --volume "$tmp/config:/config:ro" "$runner" -- "$ep" cat /etc/msmtprc) \
    || fail "with /dev/log mounted msmtp does not log to syslog"
pass "a command service: its output and the entrypoint's lines go to /dev/log when mounted (tagged, info/notice), SIGTERM → 143"

# --- cron -------------------------------------------------------------------------------------
# Inside one sandbox: the entrypoint in the background, then what it installed, then SIGTERM.
out=$(g run --network host "${volumes[@]}" "$runner" -- sh -c "$ep cron >/tmp/cron.log 2>&1 &
    for i in \$(seq 100); do crontab -l -u grocker >/dev/null 2>&1 && break; sleep 0.1; done
    sleep 0.5; crontab -l -u grocker; echo ---; cat /etc/msmtprc; echo ---; cat /proc/[0-9]*/comm | grep -qx cron && echo cron-running
    kill -TERM \$!; wait \$!; echo status=\$?; cat /tmp/cron.log")
echo "$out" >"$tmp/cron-inside"
grep -q '^\* \* \* \* \* echo cron-job-ran-as-$(id -un) "$GREETING" "\[$SPACED\]"$' <<<"$out" || fail "the job is not in grocker's crontab:
$out"
grep -q '^GREETING=hello from config$' <<<"$out" && grep -q '^MAILTO=ops@example.com$' <<<"$out" \
    && grep -q '^PATH=/home/grocker/venv/bin:' <<<"$out" || fail "the crontab lacks the environment:
$out"
grep -q "^host 127.0.0.1$" <<<"$out" || fail "msmtprc does not point at /config/smtp's relay"
grep -q "^cron-running$" <<<"$out" || fail "cron is not running"
grep -q "installed the crontab of user grocker (1 job)" <<<"$out" || fail "no line about the crontab:
$out"
grep -q "^status=143$" <<<"$out" || fail "after SIGTERM the cron instance did not exit with 143 (cron killed by SIGTERM):
$out"
pass "cron: the crontab is installed for grocker (crontab -l -u grocker) with the environment, cron runs, SIGTERM → 143"

# And a job's output mailed by cron through msmtp to the sink: up to a minute's wait.
"${RUN[@]}" cron >"$tmp/cron.out" 2>"$tmp/cron.err" &
cron_pid=$!
bg_pids+=($cron_pid)
# Debian's cron drops the spaces that end a variable (the entrypoint warns), not those that start it.
wait_for 750 grep -q "cron-job-ran-as-grocker hello from config \[  padded\]" "$tmp/mail" \
    || fail "no mail from the cron job reached the SMTP sink in 75 s:
$(cat "$tmp/cron.err")
$(cat "$tmp/mail")"
grep -q "^RCPT TO:<ops@example.com>" "$tmp/mail" || fail "cron's mail did not go to MAILTO: $(cat "$tmp/mail")"
grep -q "CRON\[[0-9]*\]: (grocker) CMD" "$tmp/cron.err" || fail "cron's syslog lines are not on stderr: $(cat "$tmp/cron.err")"
grep -q "warning: the variable SPACED ends with spaces, which cron drops" "$tmp/cron.err" || fail "no warning about SPACED"
kill -TERM "$cron_pid"
status=0
wait "$cron_pid" || status=$?
[ "$status" = 143 ] || fail "the cron instance exited with $status after SIGTERM"
pass "cron runs the job as grocker with /config/env, mails its output to MAILTO through msmtp; its log is on stderr"

# Started as another user, the cron instance refuses with one line.
status=0
out=$(g run --user grocker "${volumes[@]}" "$runner" -- "$ep" cron 2>&1) || status=$?
[ "$status" = 1 ] && [ "$out" = "grocker-entrypoint: error: the cron instance must start as root (cron runs the jobs as user grocker itself): start the container as root, as with docker run --user root" ] \
    || fail "cron as grocker: status $status, '$out'"
pass "cron started as grocker: one clear error line, status 1"
echo "all entrypoint checks passed"
