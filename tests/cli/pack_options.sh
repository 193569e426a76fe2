# pack's options as a user would combine them: --format tar.gz, --exclude, --dest-prefix.
source "$(dirname "$0")/common.sh"
need_pyenv
ENV=$(conda_fixture small)
export PYTHONDONTWRITEBYTECODE=1

run_python() { "$1/bin/python3" -c 'import numpy, sys; print(sys.prefix)'; }

# --format tar.gz: gzip members that gzip and tar read, that ferry inflates in parallel and relocates.
"$FERRY" pack "$ENV" -o env.tar.gz --format tar.gz --level 1 >/dev/null
gzip -t env.tar.gz
expect_eq "$(tar -tzf env.tar.gz | sed -n 2p)" ".ferry/manifest.json"
out=$("$FERRY" unpack env.tar.gz "$TEST_DIR/gz/env" --json)
expect_contains "$out" '"format": "ferry tar.gz"'
frames=$(echo "$out" | sed -n 's/.*"frames": \([0-9]*\).*/\1/p')
[ "$frames" -gt 10 ] || fail "expected many independent gzip members, got $frames"
expect_eq "$(run_python "$TEST_DIR/gz/env")" "$TEST_DIR/gz/env"
expect_contains "$(readelf -d "$TEST_DIR/gz/env/bin/python3.11" | grep RUNPATH)" "[$TEST_DIR/gz/env/lib]"

# --exclude: conda-pack's globs ('*' crosses '/'); what is left out is absent, the rest still works.
"$FERRY" pack "$ENV" -o slim.tar.zst --exclude '*.pyc' --exclude 'lib/python3.11/site-packages/numpy/*/tests/*' >/dev/null
tar --zstd -tf slim.tar.zst > members
grep -q '\.pyc$' members && fail "--exclude '*.pyc' left .pyc files in"
grep -q 'numpy/core/tests/' members && fail "--exclude left numpy's tests in"
grep -qx 'lib/python3.11/site-packages/numpy/core/__init__.py' members
expect_contains "$("$FERRY" inspect slim.tar.zst --json)" '"files"'
"$FERRY" unpack slim.tar.zst "$TEST_DIR/slim/env" >/dev/null
expect_eq "$(run_python "$TEST_DIR/slim/env")" "$TEST_DIR/slim/env"

# --dest-prefix: relocated at pack time; unpacking at that path changes nothing, elsewhere still works.
FINAL="$TEST_DIR/final/place/env"
"$FERRY" pack "$ENV" -o dest.tar.zst --dest-prefix "$FINAL" >/dev/null
expect_eq "$(tar --zstd -xOf dest.tar.zst bin/ferry-fixture-cli | head -1)" "#!$FINAL/bin/python3.11"
out=$("$FERRY" unpack dest.tar.zst "$FINAL" --json)
expect_contains "$out" '"relocated_files": 0'
expect_eq "$(run_python "$FINAL")" "$FINAL"
expect_eq "$("$FINAL/bin/ferry-fixture-prefix" | head -1)" "$FINAL"
"$FERRY" unpack dest.tar.zst "$TEST_DIR/moved/env" >/dev/null
expect_eq "$(run_python "$TEST_DIR/moved/env")" "$TEST_DIR/moved/env"
left=$(grep -rIl --exclude-dir=conda-meta --exclude-dir=.ferry -e "$FINAL" -e "$ENV" "$TEST_DIR/moved/env" || true)
[ -z "$left" ] || fail "files still name an old prefix: $left"

expect_failure "--dest-prefix relative/env: must be an absolute path" "$FERRY" pack "$ENV" -o x.tar.zst --dest-prefix relative/env
expect_missing x.tar.zst
long=/$(printf 'x%.0s' $(seq 300))
expect_failure "is longer than the" "$FERRY" pack "$ENV" -o y.tar.zst --dest-prefix "$long"
expect_missing y.tar.zst
# -j above the core count: more writers, and no warning from the thread pool on the terminal.
out=$("$FERRY" unpack env.tar.gz "$TEST_DIR/j8/env" -j 8 2>&1)
case "$out" in *arning*) fail "unexpected warning with -j 8: $out";; esac
"$FERRY" pack "$ENV" -o j8.tar.zst -j 8 2>&1 | { ! grep -i warning; }
echo ok
