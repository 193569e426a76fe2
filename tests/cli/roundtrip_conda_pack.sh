# Archives made by conda-pack (tar.gz with records in bin/conda-unpack) unpack with conda-unpack's
# relocation applied natively, in every container format conda-pack writes.
source "$(dirname "$0")/common.sh"
need_pyenv
ENV=$(conda_fixture small)
export PYTHONDONTWRITEBYTECODE=1

"$DEBIAN_PYTHON" "$FERRY_SOURCE/tests/fixtures/make_conda_pack_archive.py" "$ENV" env.tar.gz >/dev/null
# (grep reads everything: with pipefail, an early exit would kill tar with SIGPIPE)
tar -xzOf env.tar.gz bin/conda-unpack | grep -c '^_prefix_records = \[' >/dev/null
tar -tzf env.tar.gz | grep -c '^\.ferry' >/dev/null && fail "a conda-pack archive has no ferry manifest"

check_env() {  # DEST: python runs there and nothing names the build placeholder or the old env.
  local dest=$1
  out=$("$dest/bin/python3" -c 'import numpy, sqlite3, ssl, sys; print(sys.prefix); print(numpy.__file__)')
  expect_eq "$(echo "$out" | sed -n 1p)" "$dest"
  expect_contains "$(echo "$out" | sed -n 2p)" "$dest/lib/python3.11/site-packages/numpy/"
  # conda-pack drops bin/python* from its records; ferry relocates them anyway (see README).
  expect_contains "$(readelf -d "$dest/bin/python3.11" | grep RUNPATH)" "[$dest/lib]"
  expect_contains "$("$dest/bin/python3.11-config" --prefix)" "$dest"
  # Shebangs conda-pack rewrote to /usr/bin/env work once the env is on PATH; pip runs.
  expect_eq "$(head -1 "$dest/bin/pip")" "#!/usr/bin/env python3.11"
  expect_contains "$(PATH="$dest/bin:$PATH" "$dest/bin/pip" --version)" "$dest/lib/python3.11/site-packages/pip"
  expect_eq "$("$dest/bin/ferry-fixture-prefix" | head -1)" "$dest"
  local left
  left=$(grep -rIl --exclude-dir=conda-meta --exclude=conda-unpack -e "$ENV" -e "_h_env_placehold" "$dest" || true)
  [ -z "$left" ] || fail "files still name the old prefix: $left"
  # mtimes come through (a .py and its .pyc must agree).
  expect_eq "$(stat -c %Y "$dest/lib/python3.11/os.py")" "$(stat -c %Y "$ENV/lib/python3.11/os.py")"
}

DEST="$TEST_DIR/unpacked/at/a/longer/path/env"
"$FERRY" unpack env.tar.gz "$DEST" --json > unpack.json
expect_contains "$(cat unpack.json)" '"kind": "conda (conda-pack)"'
check_env "$DEST"
# A second run is a no-op, as for ferry's own archives.
expect_contains "$("$FERRY" unpack env.tar.gz "$DEST" --json)" '"already_present": true'

# The same archive recompressed as conda-pack's other formats.
gzip -dc env.tar.gz | zstd -q -T0 -o env.tar.zst
mkdir ziptree && tar -xzf env.tar.gz -C ziptree && (cd ziptree && zip -q -1 -r -y ../env.zip .)
for fmt in tar.zst zip; do
  "$FERRY" unpack "env.$fmt" "$TEST_DIR/$fmt/env" >/dev/null
  check_env "$TEST_DIR/$fmt/env"
done
echo ok
