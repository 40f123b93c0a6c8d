#!/bin/bash
# grocker build's bad input: every mistake in RELEASE, in the -c files or ./.grocker.yml and in
# the options is reported with its exact text and exit status 2, before any build step runs, in
# well under a second, and the store is left exactly as it was (its index.json, its blobs, every
# file's size and mtime).
#
# A build step can hide nowhere: the first step of a build with this store (which holds no Debian
# base) runs mmdebstrap, and the mmdebstrap found first in PATH here is a fake that only records
# that it ran. So these checks need no network and no namespaces.
#
# Run by `meson test` with GROCKER (the binary); standalone: GROCKER=build/src/grocker $0.
set -eu -o pipefail

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

: "${GROCKER:?GROCKER must name the grocker binary}"
[ -x "$GROCKER" ] || fail "GROCKER='$GROCKER' is not an executable"
GROCKER=$(realpath "$GROCKER")
for tool in sha256sum find sort timeout date od; do
    command -v "$tool" >/dev/null || fail "tool '$tool' is missing"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/grocker-bad-build-input.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
here=$(pwd -P) # the messages name absolute paths as the system resolves them

mkdir bin
cat >bin/mmdebstrap <<EOF
#!/bin/sh
echo "\$*" >>"$tmp/mmdebstrap-ran"
exit 1
EOF
chmod +x bin/mmdebstrap
export PATH="$tmp/bin:$PATH"

# A store with content to compare: an image's blobs, and its index.json.
mkdir -p tree/app
echo hello >tree/app/hello.txt
"$GROCKER" -q --root store append scratch oci:img:v1 --dir tree >/dev/null
[ -f store/index.json ] || fail "the store has no index.json"
[ -n "$(ls store/blobs/sha256)" ] || fail "the store holds no blob"
snapshot() (
    cd "$tmp"
    find store -printf '%P %y %m %s %T@\n' | LC_ALL=C sort
    sha256sum store/index.json store/blobs/sha256/*
)
before=$(snapshot)

cli11_hint="Run 'grocker --help' for usage."
release_forms="is not NAME[EXTRAS]==VERSION, a .whl file or a project folder"

# expect RC EXPECTED-STDERR [grocker build arguments...]
expect() {
    local rc=$1 expected=$2 got=0
    shift 2
    local what="grocker build $*" start end
    start=$(date +%s%N)
    timeout 60 "$GROCKER" --root "$tmp/store" build "$@" </dev/null >"$tmp/stdout" 2>"$tmp/stderr" || got=$?
    end=$(date +%s%N)
    if [ -e "$tmp/mmdebstrap-ran" ]; then
        fail "$what: a build step ran (mmdebstrap $(cat "$tmp/mmdebstrap-ran")) before the mistake was reported: $(cat "$tmp/stderr")"
    fi
    if [ "$got" != "$rc" ]; then
        echo "--- stderr:" >&2
        cat "$tmp/stderr" >&2
        fail "$what: exit status $got, expected $rc"
    fi
    [ ! -s "$tmp/stdout" ] || fail "$what: printed on stdout: $(cat "$tmp/stdout")"
    if [ "$(cat "$tmp/stderr")" != "$expected" ] || [ "$(tail -c1 "$tmp/stderr" | od -An -c | tr -d ' ')" != '\n' ]; then
        echo "--- expected stderr:" >&2
        printf '%s\n' "$expected" >&2
        echo "--- got:" >&2
        cat "$tmp/stderr" >&2
        fail "$what: wrong message"
    fi
    [ "$(snapshot)" = "$before" ] || fail "$what: the store changed: $(diff <(echo "$before") <(snapshot) || true)"
    # Fast: no step, no network; a second leaves room for a loaded machine.
    [ $(((end - start) / 1000000)) -lt 1000 ] || fail "$what: took $(((end - start) / 1000000)) ms"
    echo "ok: exit $rc in $(((end - start) / 1000000)) ms: $what"
}

# --- RELEASE ------------------------------------------------------------------------------------
expect 2 "grocker: RELEASE is required
$cli11_hint"
expect 2 "grocker: RELEASE 'my app' $release_forms" 'my app'
expect 2 "grocker: RELEASE 'myapp==' $release_forms" 'myapp=='
expect 2 "grocker: RELEASE 'myapp[extra==1.0' $release_forms" 'myapp[extra==1.0'
expect 2 "grocker: RELEASE 'myapp==1.0 2' $release_forms" 'myapp==1.0 2'
expect 2 "grocker: RELEASE 'myapp-1.0.tar.gz' $release_forms" myapp-1.0.tar.gz
# Names and versions that are not PEP 508 / PEP 440 (they would end up in image references).
expect 2 "grocker: RELEASE '../../Trick==1.0' $release_forms" '../../Trick==1.0'
expect 2 "grocker: RELEASE 'myapp==latest' $release_forms" 'myapp==latest'
# A FIFO in a project folder: refused before anything is built (reading it would block).
mkdir -p fifo-project && touch fifo-project/setup.py && mkfifo fifo-project/pipe
expect 2 "grocker: the project folder '$tmp/fifo-project' holds 'pipe', which is a FIFO, not a file, folder or symlink: remove it from the project" fifo-project
expect 2 "grocker: RELEASE 'missing-1.0-py3-none-any.whl': no wheel file '$here/missing-1.0-py3-none-any.whl'" \
    missing-1.0-py3-none-any.whl
expect 2 "grocker: RELEASE 'missing-1.0-py3-none-any.whl[pg]': no wheel file '$here/missing-1.0-py3-none-any.whl'" \
    'missing-1.0-py3-none-any.whl[pg]'
mkdir not-a-project
echo 'print("hi")' >not-a-project/app.py
expect 2 "grocker: RELEASE 'not-a-project': the folder has no pyproject.toml or setup.py" not-a-project

# --- -c files and ./.grocker.yml ------------------------------------------------------------------
expect 2 "grocker: the configuration has 1 mistake:
missing.yml: cannot read the configuration file: No such file or directory" myapp==1.0 -c missing.yml
expect 2 "grocker: the configuration has 1 mistake:
tree: cannot read the configuration file: Is a directory" myapp==1.0 -c tree
printf 'ports: [80\nruntime: bookworm/3.11\n' >broken.yml
expect 2 "grocker: the configuration has 1 mistake:
broken.yml:2:8: invalid YAML: end of sequence flow not found" myapp==1.0 -c broken.yml
printf 'prots: [80]\nflavour: mint\n' >unknown-keys.yml
expect 2 "grocker: the configuration has 2 mistakes:
unknown-keys.yml:1:1: key 'prots': unknown key (did you mean 'ports'?)
unknown-keys.yml:2:1: key 'flavour': unknown key (known keys: runtime, pip_constraint, volumes, ports, envs, repositories, dependencies, docker_image_prefix, image_base_name, entrypoint_name, services, platforms)" \
    myapp==1.0 -c unknown-keys.yml
printf 'runtime: bookworm/3.13\ndependencies: [LibPQ]\nservices:\n  www:\n    wsgi: app\n' >bad-values.yml
expect 2 "grocker: the configuration has 3 mistakes:
bad-values.yml:1:10: key 'runtime': unknown runtime 'bookworm/3.13' (known runtimes: bookworm/3.11, bookworm/3.12, bullseye/3.9)
bad-values.yml:2:16: key 'dependencies': 'LibPQ' is not a Debian package name (like libpq5, libpq5=15.5-0+deb12u1 or libpq5/bookworm-backports)
bad-values.yml:5:11: key 'services.www.wsgi': 'app' is not 'module:callable' (like myapp.wsgi:application)" \
    myapp==1.0 -c bad-values.yml
printf 'envs:\n  A: ok\n  B: caf\xe9\n' >latin1.yml
expect 2 "grocker: the configuration has 1 mistake:
latin1.yml:3:6: text that is not UTF-8; save the file as UTF-8" myapp==1.0 -c latin1.yml
printf 'pip_constraint: constraints.txt\n' >relative.yml
expect 2 "grocker: the configuration has 1 mistake:
relative.yml:1:17: key 'pip_constraint': cannot read '$here/constraints.txt': No such file or directory" \
    myapp==1.0 -c relative.yml
# ./.grocker.yml, read when no -c is given, and named in its messages.
mkdir with-dot-grocker
printf 'volumes: [data]\n' >with-dot-grocker/.grocker.yml
(cd with-dot-grocker && expect 2 "grocker: the configuration has 1 mistake:
.grocker.yml:1:11: key 'volumes': 'data' is not an absolute path" myapp==1.0)
# Every mistake at once: two files, then the command line.
printf 'ports: [0]\n' >a.yml
printf 'envs: {1X: y}\n' >b.yml
expect 2 "grocker: the configuration has 4 mistakes:
a.yml:1:9: key 'ports': '0' is not a port number (1 to 65535)
b.yml:1:8: key 'envs': '1X' is not an environment variable name (letters, digits and '_', not starting with a digit)
command line: option '--port': 'http' is not a port number (1 to 65535)
command line: option '--env': 'NOEQUAL' must be KEY=VALUE" \
    myapp==1.0 -c a.yml -c b.yml --port http --env NOEQUAL

# Values that would break the image config or the runner's entrypoint (which refused to start on
# them): refused here, before anything is built, each with its place, all at once.
cat >breaks-image.yml <<'EOF'
volumes: ["/my data", "/a:b"]
envs:
  TOKEN: "line1\nline2"
services:
  www:
    wsgi: myapp.wsgi:application
    static: {"/my static/": /app/static, /s/: "/app/a;b", /: /app/static}
    media: /
  cron:
    - "61 * * * * myapp-cleanup"
    - "0 9-5 * * mon-fri myapp-report"
    - "* * * 13 * myapp-yearly"
    - "* * * * * myapp\rrm -rf /"
EOF
expect 2 "grocker: the configuration has 12 mistakes:
breaks-image.yml:1:11: key 'volumes': '/my data' holds a space, a control character or ':', which a volume's path cannot hold (docker run -v HOST:PATH splits at ':')
breaks-image.yml:1:23: key 'volumes': '/a:b' holds a space, a control character or ':', which a volume's path cannot hold (docker run -v HOST:PATH splits at ':')
breaks-image.yml:3:10: key 'envs.TOKEN': the value holds a line break (\n or \r), which crontabs and env files cannot carry: write it on one line
breaks-image.yml:7:14: key 'services.www.static./my static/': the URL prefix holds a character nginx would misread (space, quote, ;{}\$#\)
breaks-image.yml:7:47: key 'services.www.static': folder '/app/a;b' holds a character nginx would misread (space, quote, ;{}\$#\): rename the folder
breaks-image.yml:7:59: key 'services.www.static./': the URL prefix '/' would hide the application: use a prefix such as /static/
breaks-image.yml:8:12: key 'services.www.media': '/' is the root folder, which cannot be the media folder: nginx would reach every file of the image (/config/env included)
breaks-image.yml:10:7: key 'services.cron': '61 * * * * myapp-cleanup': minute '61' is out of range (0 to 59)
breaks-image.yml:11:7: key 'services.cron': '0 9-5 * * mon-fri myapp-report': hour '9-5' runs backwards: cron would match nothing with it
breaks-image.yml:12:7: key 'services.cron': '* * * 13 * myapp-yearly': month '13' is out of range (1 to 12, or jan to dec)
breaks-image.yml:13:7: key 'services.cron': '* * * * * myapp\rrm -rf /' holds a line break or another control character: give each job its own item
command line: option '--env': the value of 'A' holds a line break (\n or \r), which crontabs and env files cannot carry: write it on one line" \
    myapp==1.0 -c breaks-image.yml --env $'A=x\ny'
# A file too large to be a configuration (a log, an image given by mistake): not read whole.
head -c 1048577 /dev/zero | tr '\0' '#' >big.yml
expect 2 "grocker: the configuration has 1 mistake:
big.yml: the file is larger than 1 MiB, the limit of a configuration file: is it the right file?" myapp==1.0 -c big.yml

# --- options ----------------------------------------------------------------------------------------
expect 2 "grocker: the configuration has 1 mistake:
command line: option '--runtime': unknown runtime 'python3' (known runtimes: bookworm/3.11, bookworm/3.12, bullseye/3.9)" \
    myapp==1.0 -r python3
expect 2 "grocker: the configuration has 1 mistake:
command line: option '--pip-constraint': cannot read '$here/constraints.txt': No such file or directory" \
    myapp==1.0 --pip-constraint constraints.txt
expect 2 "grocker: the configuration has 1 mistake:
command line: option '--pip-constraint': '$here/tree' is a folder, not a file" myapp==1.0 --pip-constraint tree
expect 2 "grocker: the configuration has 9 mistakes:
command line: option '--volume': 'data' is not an absolute path
command line: option '--volume': the root folder cannot be a volume
command line: option '--volume': '/my data' holds a space, a control character or ':', which a volume's path cannot hold (docker run -v HOST:PATH splits at ':')
command line: option '--port': '65536' is not a port number (1 to 65535)
command line: option '--env': 'GROCKER_APP' is reserved: Grocker sets the GROCKER_* variables itself
command line: option '--entrypoint': 'bin/run' is not a console script name (letters, digits, '.', '_' and '-')
command line: option '--image-prefix': 'registry.example.com/Team' is not a registry/namespace prefix (like registry.example.com/team: lowercase names, no tag)
command line: option '--image-base-name': 'My App' is not an image name (lowercase letters and digits, separated by '.', '_', '-' or '/')
command line: option '--image-name': invalid image reference 'MyApp:1.0': repository names must be lowercase" \
    myapp==1.0 --volume data --volume / --volume '/my data' --port 65536 --env GROCKER_APP=x -e bin/run \
    --image-prefix registry.example.com/Team --image-base-name 'My App' -n MyApp:1.0
expect 2 "grocker: unknown transport 'tar' in 'tar:out.tar': use scratch, oci:DIR[:TAG], oci-archive:FILE[:REF], docker-archive:FILE[:REF] or docker://REF" \
    myapp==1.0 --output tar:out.tar
expect 2 "grocker: image location 'oci:out:bad tag': 'bad tag' is not a valid tag: letters and digits, separated by one of '.', '_', '-', '+', ':', '@' or '--' (and '/')" \
    myapp==1.0 --output 'oci:out:bad tag'
expect 2 "grocker: unknown compression 'lz4': use gzip or zstd" myapp==1.0 --compression lz4
expect 2 "grocker: The following argument was not expected: --pip-config=pip.conf
$cli11_hint" myapp==1.0 --pip-config=pip.conf
expect 2 "grocker: '-q' is an option of grocker itself, not of 'build': put it before the command (grocker -q build ...)" \
    myapp==1.0 -q

# Command-line paths and URLs checked up front (the build used to run its steps first).
expect 2 "grocker: --pip-conf 'missing.conf': No such file or directory" myapp==1.0 --pip-conf missing.conf
expect 2 "grocker: --pip-conf 'tree': a folder, not a file" myapp==1.0 --pip-conf tree
expect 2 "grocker: --find-links 'missing-links': No such file or directory" myapp==1.0 --find-links missing-links
expect 2 "grocker: --output scratch: scratch is not a place to write an image; name an image location" \
    myapp==1.0 --output scratch
expect 2 "grocker: --result-file 'tree' is a folder: name a file" myapp==1.0 --result-file tree
expect 2 "grocker: --result-file 'nowhere/result.json': the folder '$here/nowhere' does not exist" \
    myapp==1.0 --result-file nowhere/result.json
expect 2 "grocker: --export-wheels 'tree/app/hello.txt' is not a folder: name a folder" myapp==1.0 \
    --export-wheels tree/app/hello.txt
expect 2 "grocker: --export-wheels 'nowhere/wheels': the folder '$here/nowhere' does not exist" \
    myapp==1.0 --export-wheels nowhere/wheels
expect 2 "grocker: --index-url 'ftp://ci:***@127.0.0.1/simple' is not an http://, https:// or file:// URL" \
    myapp==1.0 --index-url ftp://ci:hunter2@127.0.0.1/simple
# A bad RELEASE and configuration mistakes: all in one run.
expect 2 "grocker: the configuration has 2 mistakes:
command line: option '--runtime': unknown runtime 'python3' (known runtimes: bookworm/3.11, bookworm/3.12, bullseye/3.9)
RELEASE 'my app' $release_forms" 'my app' -r python3

[ ! -e out ] || fail "a refused build wrote 'out'"
echo "all bad build input checks passed"
