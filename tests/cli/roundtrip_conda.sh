# A realistic conda env (Debian's numpy/scipy, pyenv's Python, ELF files with the placeholder)
# packed, unpacked at a longer path, and used from there.
source "$(dirname "$0")/common.sh"
need_pyenv
ENV=$(conda_fixture full)
export PYTHONDONTWRITEBYTECODE=1

"$FERRY" pack "$ENV" -o env.tar.zst --json > pack.json
expect_contains "$(cat pack.json)" '"kind": "conda"'
# Where the time went, phase by phase, in order; together they are the whole pack.
expect_eq "$(python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
p = j["phases"]
print(list(p), all(v >= 0 for v in p.values()), abs(sum(p.values()) - j["seconds"]) < 0.05 * j["seconds"] + 0.01)' pack.json)" \
  "['collect', 'classify', 'files', 'manifest', 'finish'] True True"
files=$(find "$ENV" -type f | wc -l)
[ "$files" -gt 5000 ] || fail "fixture too small: $files files"

# Plain tar reads it; the manifest is the first member.
tar --zstd -tf env.tar.zst > members
expect_eq "$(sed -n 2p members)" ".ferry/manifest.json"
grep -qx 'lib/python3.11/site-packages/numpy/__init__.py' members

DEST="$TEST_DIR/a/path/that/is/much/longer/than/the/original/one/env"
"$FERRY" unpack env.tar.zst "$DEST" --json > unpack.json
expect_contains "$(cat unpack.json)" '"already_present": false'

# Python runs from the new place and finds its packages there.
out=$("$DEST/bin/python3" -c 'import numpy, scipy, sqlite3, ssl, sys, sysconfig; print(sys.prefix); print(sysconfig.get_paths()["purelib"]); print(numpy.__file__)')
expect_eq "$(echo "$out" | sed -n 1p)" "$DEST"
expect_eq "$(echo "$out" | sed -n 2p)" "$DEST/lib/python3.11/site-packages"
expect_contains "$(echo "$out" | sed -n 3p)" "$DEST/lib/python3.11/site-packages/numpy/"
# Console scripts through their shebangs: pip (noarch entry point), f2py, a pip-installed tool.
expect_contains "$("$DEST/bin/pip" --version)" "$DEST/lib/python3.11/site-packages/pip"
"$DEST/bin/f2py" -v >/dev/null
expect_contains "$("$DEST/bin/ferry-fixture-cli")" "prefix = \"$DEST\""
# Real ELF files: the binary placeholder became the new prefix (NUL padded).
expect_eq "$("$DEST/bin/ferry-fixture-prefix" | head -1)" "$DEST"
expect_contains "$(readelf -d "$DEST/bin/python3.11" | grep RUNPATH)" "[$DEST/lib]"
expect_contains "$(ldd "$DEST/bin/python3.11" | grep libpython)" "$DEST/lib/libpython3.11"
cmp <(stat -c %s "$ENV/bin/ferry-fixture-prefix") <(stat -c %s "$DEST/bin/ferry-fixture-prefix")

# No text file names the old prefix or the placeholder (conda-meta records name placeholders by design).
left=$(grep -rIl --exclude-dir=conda-meta --exclude-dir=.ferry -e "$ENV" -e "_h_env_placehold" "$DEST" || true)
[ -z "$left" ] || fail "files still name the old prefix: $left"
# conda-meta lost its package-cache paths, as conda-pack does.
grep -q '"extracted_package_dir": ""' "$DEST"/conda-meta/numpy-*.json

# mtimes and modes survive (a .py and its .pyc must agree or every import recompiles).
for f in lib/python3.11/os.py lib/python3.11/site-packages/numpy/__init__.py bin/python3.11; do
  expect_eq "$(stat -c '%Y %a' "$DEST/$f")" "$(stat -c '%Y %a' "$ENV/$f")" "$f"
done
[ -L "$DEST/bin/python3" ] && expect_eq "$(readlink "$DEST/bin/python3")" "$(readlink "$ENV/bin/python3")"

# Unpacking the same archive again is a no-op; something else at DEST is refused without --force.
expect_contains "$("$FERRY" unpack env.tar.zst "$DEST" --json)" '"already_present": true'
mkdir other && echo keep > other/file
expect_failure "already exists and holds something else" "$FERRY" unpack env.tar.zst "$TEST_DIR/other"
expect_eq "$(cat other/file)" keep
"$FERRY" unpack env.tar.zst "$TEST_DIR/other" --force >/dev/null
[ -x other/bin/python3.11 ] && expect_missing other/file

# activate: PATH and CONDA_PREFIX point at the unpacked env, activate.d scripts run.
out=$(env -i PATH=/usr/bin:/bin bash -c "eval \"\$('$FERRY' activate '$DEST')\"; command -v python3; echo \$CONDA_PREFIX; echo \$FERRY_FIXTURE_ACTIVATED")
expect_eq "$out" "$DEST/bin/python3
$DEST
1"

# inspect agrees with the environment.
inspect=$("$FERRY" inspect env.tar.zst --json)
expect_contains "$inspect" "\"source_prefix\": \"$ENV\""
expect_contains "$inspect" '"python_version": "3.11.7"'
echo ok
