# Shared by tests/build/*.sh (bash, after tests/registry/fixtures/lib.sh's setup): the example
# app copied into $tmp/example (so a test can change it), and its dependency served as an sdist
# from a PEP 503 index on loopback, stopped with the test.
#
#   serve_example_index        # sets app (the hello project folder) and index (the index URL)

serve_example_index() {
    cp -r "$GROCKER_SOURCE_ROOT/example" "$tmp/example"
    chmod -R a+rX "$tmp/example"
    mkdir -p "$tmp/index/simple/grocker-greeting"
    tar -czf "$tmp/index/simple/grocker-greeting/grocker-greeting-1.0.0.tar.gz" --owner=0 --group=0 --mtime=@0 \
        --sort=name -C "$tmp/example" --transform 's,^greeting,grocker-greeting-1.0.0,' greeting
    printf '<html><body><a href="grocker-greeting-1.0.0.tar.gz">grocker-greeting-1.0.0.tar.gz</a></body></html>\n' \
        >"$tmp/index/simple/grocker-greeting/index.html"
    local port
    port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$PY" -m http.server --bind 127.0.0.1 --directory "$tmp/index" "$port" >"$tmp/index.log" 2>&1 &
    # stop-registry stops what DIR/pids lists whose command line names DIR: the server's does.
    echo "$! index" >>"$tmp/index/pids"
    stopped_dirs+=("$tmp/index")
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/simple/" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -sf "http://127.0.0.1:$port/simple/" >/dev/null || fail "the test's package index did not start"
    index="http://127.0.0.1:$port/simple/"
    app=$tmp/example/hello
}

# The steps a build ran, from its stderr ("steps run: N" then one indented line a step).
steps_ran() { sed -n '/^steps run:/,$p' <<<"$1" | tail -n +2 | sed 's/^  //'; }
