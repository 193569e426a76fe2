# An ordinary user unpacking a conda-pack archive gets its read-only recorded files relocated too
# (a 0444 text file, a 0555 script, a 0555 shared library), with their modes and times kept.
source "$(dirname "$0")/common.sh"
[ "$(id -u)" = 0 ] || skip "needs root to run ferry as another user (nobody)"
command -v setpriv >/dev/null || skip "no setpriv"
as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
"${as_nobody[@]}" true 2>/dev/null || skip "setpriv cannot switch to uid 65534 here"
chmod 755 "$TEST_DIR"
ENV=$("$DEBIAN_PYTHON" "$FERRY_SOURCE/tests/fixtures/make_tricky_conda_env.py" "$TEST_DIR/build")
"$DEBIAN_PYTHON" "$FERRY_SOURCE/tests/fixtures/make_conda_pack_archive.py" "$ENV" env.tar.gz >/dev/null
mkdir user && chown 65534:65534 user
"${as_nobody[@]}" test -x "$FERRY" || skip "$FERRY is not executable by nobody"

DEST="$TEST_DIR/user/envs/demo"
"${as_nobody[@]}" "$FERRY" unpack env.tar.gz "$DEST" >/dev/null
expect_eq "$(stat -c %U "$DEST/share/demo/config.txt")" nobody
expect_eq "$(cat "$DEST/share/demo/config.txt")" "data_dir = $DEST/share/demo"
expect_eq "$("$DEST/bin/demo-tool")" demo
grep -qaF "$DEST/lib" "$DEST/lib/libdemo.so.1" || fail "libdemo.so.1 keeps its placeholder"
for f in share/demo/config.txt:444 bin/demo-tool:555 lib/libdemo.so.1:555; do
  expect_eq "$(stat -c '%a %Y' "$DEST/${f%:*}")" "${f#*:} 1700000000" "${f%:*}"
done
# The binary kept its size (the prefix is padded with NULs, as conda-unpack does).
expect_eq "$(stat -c %s "$DEST/lib/libdemo.so.1")" "$(stat -c %s "$ENV/lib/libdemo.so.1")"
left=$(grep -rlaF --exclude-dir=conda-meta --exclude-dir=.ferry --exclude=conda-unpack \
       -e "$ENV" -e _h_env_placehold "$DEST" || true)
[ -z "$left" ] || fail "files still name the placeholder: $left"
echo ok
