#!/bin/bash
# What a build shows while it runs, and what it keeps:
#   - on a terminal (a real one: tmux), the running step's line with its time and its last
#     output lines under it, redrawn in place; once it succeeds, one line saying so (its output
#     collapsed), then the summary table;
#   - without a terminal (plain), every line an event with the time since the start, or a line
#     of a step's output under its short name; a build with a cached and a failing step checked
#     line by line: the failing step's last 40 lines and the path of the whole log;
#   - the log kept in the store, with every line (more than the tail), shown by grocker log;
#     the number of logs bounded;
#   - quiet: the failure only; a bad --progress or GROCKER_PROGRESS refused.
# Uses the warm store of tests/integration/build/build.sh ($GROCKER_TEST_CACHE/build-store).
set -eu -o pipefail
. "$(dirname "$0")/../lib.sh"
: "${GROCKER:?set GROCKER to the grocker binary}"
: "${GROCKER_SOURCE_ROOT:?}"
: "${GROCKER_TEST_CACHE:?}"
need_tools tmux tar
[ "$(id -u)" = 0 ] || fail "run as root"
setup grocker-build-progress
chmod 755 "$tmp"
sock=grocker-progress-$$
trap 'rc=$?; tmux -L "$sock" kill-server 2>/dev/null || true; (exit $rc); cleanup' EXIT
store=$GROCKER_TEST_CACHE/build-store
nonce=$$-$(date +%s%N) # new projects each run: their steps run

# --- fixtures: a find-links folder (the example's dependency, an sdist whose build fails after
# 50 lines), a project whose build prints a line at a time, one that needs the broken sdist ---
mkdir -p "$tmp/links"
tar -czf "$tmp/links/grocker-greeting-1.0.0.tar.gz" --owner=0 --group=0 --mtime=@0 --sort=name \
    -C "$GROCKER_SOURCE_ROOT/example" --transform 's,^greeting,grocker-greeting-1.0.0,' greeting
mkdir -p "$tmp/gbroken-1.0"
cat >"$tmp/gbroken-1.0/setup.py" <<'PY'
import sys
from setuptools import setup
if "bdist_wheel" in sys.argv:
    for i in range(1, 51):
        print(f"gbroken line {i}", file=sys.stderr)
    sys.exit(1)
setup(name="gbroken", version="1.0")
PY
tar -czf "$tmp/links/gbroken-1.0.tar.gz" -C "$tmp" gbroken-1.0
project() { # NAME DEPENDENCIES SETUP_PY
    mkdir -p "$tmp/$1/$1"
    printf '[build-system]\nrequires = ["setuptools>=61", "wheel"]\nbuild-backend = "setuptools.build_meta"\n\n[project]\nname = "%s"\nversion = "1.0"\ndependencies = [%s]\n' \
        "$1" "$2" >"$tmp/$1/pyproject.toml"
    echo "NONCE = '$nonce'" >"$tmp/$1/$1/__init__.py"
    printf '%s\n' "$3" >"$tmp/$1/setup.py"
}
project gslowapp '"grocker-greeting"' 'import sys, time
from setuptools import setup
if "bdist_wheel" in sys.argv:
    for i in range(1, 31):
        print(f"gslowapp build line {i}", flush=True)
        time.sleep(0.2)
setup()'
project gfailapp '"grocker-greeting", "gbroken"' 'from setuptools import setup
setup()'
# pip shows a backend's output when verbose: the slow project's lines, live.
printf '[global]\nverbose = 1\n' >"$tmp/pip-verbose.conf"
chmod -R a+rX "$tmp"
build_args=(--no-index --find-links "$tmp/links" --no-push --pip-conf "$tmp/pip-verbose.conf")

# --- tty, through tmux -----------------------------------------------------------------------
# The pane runs the build (auto progress: its stderr is the terminal), then waits to be captured.
tmux -L "$sock" new-session -d -x 120 -y 50 \
    "'$GROCKER' --root '$store' build '$tmp/gslowapp' ${build_args[*]} >'$tmp/tty.out'; echo \$? >'$tmp/tty.status'; sleep 600"
pane() { tmux -L "$sock" capture-pane -p -J -t 0; }
running=
for _ in $(seq 300); do
    p=$(pane)
    if grep -qE "^● compile: $tmp/gslowapp  [0-9]+\.[0-9]s$" <<<"$p" && grep -qE '^  │ gslowapp build line (1[0-9]|2[0-5])$' <<<"$p"; then
        running=$p
        break
    fi
    [ ! -e "$tmp/tty.status" ] || break
    sleep 0.1
done
[ -n "$running" ] || fail "the running step and its live output never showed in the terminal: $(pane)"
# At most 4 output lines under it, the newest last, in order.
lines=$(grep -E '^  │ gslowapp build line' <<<"$running" | sed 's/.* //')
[ "$(wc -l <<<"$lines")" -le 4 ] || fail "more than 4 live lines of the step: $running"
[ "$(sort -n <<<"$lines")" = "$lines" ] || fail "the live lines are not in order: $running"
t1=$(grep -E "^● compile: $tmp/gslowapp" <<<"$running" | sed -E 's/.*  ([0-9.]+)s$/\1/')
sleep 1
t2=$(pane | grep -E "^● compile: $tmp/gslowapp" | sed -E 's/.*  ([0-9.]+)s$/\1/' || true)
[ -z "$t2" ] || "$PY" -c "import sys; sys.exit(0 if float('$t2') > float('$t1') else 1)" ||
    fail "the step's time did not move on in a second ($t1 s, then $t2 s)"
ok "tty: the running step's line with its time ($t1 s, then ${t2:-done}), its last lines live under it"
for _ in $(seq 600); do [ -e "$tmp/tty.status" ] && break; sleep 0.1; done
expect_eq "status of the tty build" 0 "$(cat "$tmp/tty.status" 2>/dev/null)"
sleep 0.2
final=$(pane | grep -v '^$')
expect_match "the step done, with its time" "^✔ compile: $tmp/gslowapp  [0-9]+\.[0-9]s$" "$final"
expect_no_match "its output collapsed" 'gslowapp build line' "$final"
expect_no_match "no step left running" '^●' "$final"
expect_match "the summary" "^steps: [0-9]+ ran, [0-9]+ cached, in [0-9.]+s$" "$final"
expect_match "the step in the summary" "^  ran +[0-9.]+s  compile: $tmp/gslowapp$" "$final"
expect_match "the image in the summary" "^image: gslowapp:1.0 sha256:[0-9a-f]{64}$" "$final"
expect_match "the log in the summary" "^log: $store/logs/[0-9]{8}-[0-9]{6}-[0-9]+-_.*gslowapp\.log \(grocker log\)$" "$final"
ok "tty: the step collapsed to one line once done, then the summary"
run "grocker log of the tty build" "$GROCKER" --root "$store" log gslowapp
expect_match "the log has every line" "\] compile gslowapp \| gslowapp build line 1$" "$out"
expect_match "the log has every line" "\] compile gslowapp \| gslowapp build line 30$" "$out"
ok "grocker log shows every line of the collapsed step"

# --- plain, a cached and a failing step, line by line -----------------------------------------
# Old logs beyond the bound, to see them go.
for i in $(seq 10 34); do : >"$store/logs/20000101-0000$i-1-old.log"; done
run_fails "a build with a failing dependency" "$GROCKER" --root "$store" build "$tmp/gfailapp" "${build_args[@]}"
expect_eq "status of the failed build" 1 "$rc"
expect_eq "nothing on stdout" "" "$out"
# Every line: an event with its time, a step's output line, the failure's tail, or the error.
bad=$(grep -vE "$EV.+|^  \| .*|^  the build's whole log: .+ \(grocker log\)$|^grocker: error: .+" <<<"$err" || true)
[ -z "$bad" ] || fail "lines of plain output of no known form: $bad"
expect_match "the cached step" "${EV}compile: grocker-greeting 1.0.0: cached$" "$err"
expect_match "the failing step started" "${EV}compile: gbroken 1.0: running$" "$err"
expect_match "its output under its short name" "${EV}compile gbroken \| .*gbroken line 1$" "$err"
head=$(grep -nE "${EV}compile: gbroken 1.0: failed after [0-9.]+s: exited with status [0-9]+; its last 40 lines:$" <<<"$err" | cut -d: -f1)
[ -n "$head" ] || fail "no failure head for gbroken: $err"
tail_lines=$(tail -n +"$((head + 1))" <<<"$err" | sed -n '/^  | /p')
expect_eq "lines of the failure's tail" 40 "$(wc -l <<<"$tail_lines")"
expect_no_match "the tail is the last lines only" "gbroken line 1$" "$tail_lines"
log=$(sed -nE "s/^  the build's whole log: (.+) \(grocker log\)$/\1/p" <<<"$err")
[ -f "$log" ] || fail "the log named by the failure is not there: '$log'"
# (The log has the step's lines in full: the tail's last 40 are its last 40.)
expect_eq "the tail is the step's last 40 lines" \
    "$(sed -n 's/^\[ *[0-9.]*s\] compile gbroken | /  | /p' "$log" | tail -n 40)" "$tail_lines"
expect_match "then the error" "^grocker: error: .*gbroken" "$(tail -n1 <<<"$err")"
# The cached step came before the failing one; the error is the last line.
[ "$(grep -nE 'compile: grocker-greeting 1.0.0: cached$' <<<"$err" | cut -d: -f1)" -lt "$head" ] ||
    fail "the cached step is not before the failure: $err"
ok "plain: every line an event or a step's line, the cached step, the failing step's last 40 lines and its log"
run "grocker log" "$GROCKER" --root "$store" log
expect_match "the newest log is the failed build's" "compile gbroken \| .*gbroken line 1$" "$out"
for i in 1 25 50; do expect_match "line $i of the failing build in the log" "compile gbroken \| .*gbroken line $i$" "$out"; done
expect_match "the error in the log" "\] grocker: error: .*gbroken" "$out"
expect_eq "the log grocker log shows is the one named" "$(cat "$log")" "$out"
run "grocker log --list" "$GROCKER" --root "$store" log --list
n=$(grep -c '\.log  ' <<<"$out")
[ "$n" -le 20 ] || fail "more than 20 logs kept: $n"
expect_no_match "the oldest logs removed" "20000101-000010-1-old" "$out"
ok "grocker log shows the whole log; $n logs kept (at most 20)"
run_fails "grocker log of no such build" "$GROCKER" --root "$store" log no-such-build
expect_eq "its status" 2 "$rc"
expect_match "it lists the logs there are" "^grocker: no build log named 'no-such-build' in the store '$store'; there are:$" "$err"
expect_match "one line a log" "^  [0-9]{8}-[0-9]{6}-[0-9]+-.*gfailapp\.log$" "$err"
mkdir "$tmp/empty-store"
run_fails "grocker log on a store with no log" "$GROCKER" --root "$tmp/empty-store" log
expect_eq "its message" "grocker: no build log in the store '$tmp/empty-store': grocker build keeps one there for each build" "$err"
ok "grocker log of a build not kept, or on a store with none: what there is, exit 2"

# --- quiet, and bad values ----------------------------------------------------------------------
run_fails "a failing build, quiet" "$GROCKER" --root "$store" build "$tmp/gfailapp" "${build_args[@]}" --progress quiet
expect_no_match "quiet: no event lines" "$EV" "$err"
expect_match "quiet: still the failure's tail" "^compile: gbroken 1.0: failed after .*; its last 40 lines:$" "$err"
expect_match "quiet: and the error" "^grocker: error: " "$err"
GROCKER_PROGRESS=quiet run "a build, quiet from the environment" "$GROCKER" --root "$store" build "$tmp/gslowapp" "${build_args[@]}"
expect_eq "quiet: nothing on stderr" "" "$err"
expect_match "quiet: the digest" "^sha256:[0-9a-f]{64}$" "$out"
run_fails "--progress bogus" "$GROCKER" --root "$store" build "$tmp/gslowapp" "${build_args[@]}" --progress bogus
expect_eq "status of --progress bogus" 2 "$rc"
expect_eq "its message" "grocker: --progress is 'bogus': use auto, tty, plain or quiet" "$err"
GROCKER_PROGRESS=fancy run_fails "GROCKER_PROGRESS=fancy" "$GROCKER" --root "$store" build "$tmp/gslowapp" "${build_args[@]}"
expect_eq "its message" "grocker: GROCKER_PROGRESS is 'fancy': use auto, tty, plain or quiet" "$err"
ok "quiet shows only the failure; bad progress modes are refused"
echo "all progress checks passed"
