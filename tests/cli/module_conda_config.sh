# ferry conda-config ROOT: .condarc and conda-meta/pinned merged into what is there (comments and
# other keys kept), idempotent reruns, pins appended once, bad input refused with nothing written.
source "$(dirname "$0")/common.sh"
source "$FERRY_SOURCE/tests/cli/module_common.bash"
ROOT=$TEST_DIR/conda
conda_root_fixture "$ROOT"
cat > "$ROOT/.condarc" <<'RC'
# site settings
ssl_verify: true
channels:
  - conda-forge
  - defaults
default_threads: 1
proxy_servers:
  http: http://proxy:3128
RC
printf 'numpy <2' > "$ROOT/conda-meta/pinned"   # no final newline
URL=https://public.dhe.ibm.com/ibmdl/export/pub/software/server/ibm-ai/conda/
out=$("$FERRY" conda-config "$ROOT" --threads 4 --channel "$URL" --strict-priority --no-auto-update \
  --pin 'cudatoolkit <10.3' --pin 'numpy <2' --pin 'cudatoolkit <10.3')
expect_contains "$out" "written $ROOT/.condarc"
expect_contains "$out" "written $ROOT/conda-meta/pinned"
expect_eq "$(cat "$ROOT/.condarc")" "# site settings
ssl_verify: true
channels:
  - $URL
  - conda-forge
  - defaults
default_threads: 4
proxy_servers:
  http: http://proxy:3128
channel_priority: strict
auto_update_conda: false"
expect_eq "$(cat "$ROOT/conda-meta/pinned")" "numpy <2
cudatoolkit <10.3"
# conda's own reader agrees, where Python has yaml.
if "$DEBIAN_PYTHON" -c 'import yaml' 2>/dev/null; then
  expect_eq "$("$DEBIAN_PYTHON" -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); print(d["channels"][0], d["default_threads"], d["auto_update_conda"], d["proxy_servers"]["http"])' "$ROOT/.condarc")" \
    "$URL 4 False http://proxy:3128"
fi
# The same again: nothing changes, not even the files' inodes.
ino=$(stat -c %i "$ROOT/.condarc" "$ROOT/conda-meta/pinned")
out=$("$FERRY" conda-config "$ROOT" --threads 4 --channel "$URL" --strict-priority --no-auto-update --pin 'cudatoolkit <10.3')
expect_eq "$out" "unchanged $ROOT/.condarc
unchanged $ROOT/conda-meta/pinned"
expect_eq "$(stat -c %i "$ROOT/.condarc" "$ROOT/conda-meta/pinned")" "$ino"
# Channels named again go first, in the order given; none is dropped or doubled.
"$FERRY" conda-config "$ROOT" --channel conda-forge --channel "$URL" >/dev/null
expect_eq "$(sed -n '/^channels:/,/^[a-z]/p' "$ROOT/.condarc" | grep -c -- '- ')" 3
expect_eq "$(grep -A1 '^channels:' "$ROOT/.condarc" | tail -1)" "  - conda-forge"

# A root without either file: both created, readable by all; channels get conda's implicit defaults.
ROOT2=$TEST_DIR/conda2
conda_root_fixture "$ROOT2"
"$FERRY" conda-config "$ROOT2" --channel "$URL" --pin 'cudatoolkit <10.3' >/dev/null
expect_eq "$(cat "$ROOT2/.condarc")" "channels:
  - $URL
  - defaults"
expect_eq "$(stat -c %a "$ROOT2/.condarc" "$ROOT2/conda-meta/pinned" | tr '\n' ' ')" "644 644 "

# Bad input: one error line, nothing written.
before=$(cat "$ROOT/.condarc" "$ROOT/conda-meta/pinned" | sha256sum)
printf 'channels: [conda-forge, defaults]\n' > "$TEST_DIR/flow"
ROOT3=$TEST_DIR/conda3; conda_root_fixture "$ROOT3"; cp "$TEST_DIR/flow" "$ROOT3/.condarc"
expect_failure "$ROOT3/.condarc:1: 'channels' is not a '  - item' list" "$FERRY" conda-config "$ROOT3" --channel x --pin 'a <1'
expect_missing "$ROOT3/conda-meta/pinned"
expect_eq "$(cat "$ROOT3/.condarc")" "channels: [conda-forge, defaults]"
# ... a flow list it need not touch is kept.
"$FERRY" conda-config "$ROOT3" --threads 2 >/dev/null
expect_eq "$(cat "$ROOT3/.condarc")" "channels: [conda-forge, defaults]
default_threads: 2"
printf -- '---\nchannels:\n  - a\n' > "$ROOT3/.condarc"
expect_failure "$ROOT3/.condarc:1: cannot read '---'" "$FERRY" conda-config "$ROOT3" --threads 2
printf 'auto_update_conda:\n  value: false\n' > "$ROOT3/.condarc"
expect_failure "$ROOT3/.condarc:1: 'auto_update_conda' is not a plain value" "$FERRY" conda-config "$ROOT3" --no-auto-update
mkdir -p "$TEST_DIR/notroot/bin"
expect_failure "not a conda root" "$FERRY" conda-config "$TEST_DIR/notroot" --threads 2
expect_missing "$TEST_DIR/notroot/.condarc"
expect_failure "--threads" "$FERRY" conda-config "$ROOT" --threads 0
expect_failure "nothing to set" "$FERRY" conda-config "$ROOT"
expect_failure "--channel" "$FERRY" conda-config "$ROOT" --channel 'a b'
expect_failure "--pin" "$FERRY" conda-config "$ROOT" --pin ''
expect_eq "$(cat "$ROOT/.condarc" "$ROOT/conda-meta/pinned" | sha256sum)" "$before"
[ -z "$(find "$ROOT" "$ROOT3" -name '.*ferry-tmp*')" ] || fail "temporary files left"
echo "module_conda_config: ok"
