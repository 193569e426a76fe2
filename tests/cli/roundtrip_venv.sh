# A venv on the pyenv Python with Debian's numpy copied in: relocated scripts and activate, and a
# clear warning that the base interpreter lives outside the venv.
source "$(dirname "$0")/common.sh"
need_pyenv
export PYTHONDONTWRITEBYTECODE=1
"$PYENV_PREFIX/bin/python3" -m venv "$TEST_DIR/venv"
cp -a /usr/lib/python3/dist-packages/numpy "$TEST_DIR/venv/lib/python3.11/site-packages/"
"$FERRY" pack "$TEST_DIR/venv" -o venv.tar.gz --format tar.gz 2> pack.err >/dev/null
expect_contains "$(cat pack.err)" "venv is not self-contained"
expect_contains "$(cat pack.err)" "$PYENV_PREFIX/bin"
# Any gzip reader reads the multi-member gzip.
gzip -t venv.tar.gz
tar -tzf venv.tar.gz > members
grep -qx 'bin/activate' members
DEST="$TEST_DIR/moved/elsewhere/venv2"
"$FERRY" unpack venv.tar.gz "$DEST" >/dev/null
mv "$TEST_DIR/venv" "$TEST_DIR/venv.gone"   # the original must not be what makes it work
expect_eq "$("$DEST/bin/python" -c 'import sys, numpy; print(sys.prefix)')" "$DEST"
expect_contains "$("$DEST/bin/pip" --version)" "$DEST/lib/python3.11/site-packages/pip"
expect_contains "$(cat "$DEST/bin/activate")" "$DEST"
out=$(bash -c "source '$DEST/bin/activate'; echo \$VIRTUAL_ENV; command -v python")
expect_eq "$out" "$DEST
$DEST/bin/python"
echo ok
