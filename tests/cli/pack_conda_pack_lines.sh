# conda-pack's command lines work with `ferry pack` in place of `conda pack`: the Frontier guide's
# line (--format tar.gz --n-threads -1 --prefix --output), -n NAME from conda's envs directories,
# the active env and NAME.tar.gz/.tar.zst by default, -q; formats ferry does not write are one line.
source "$(dirname "$0")/common.sh"
need_pyenv
ENV=$(conda_fixture small)
export PYTHONDONTWRITEBYTECODE=1
clean=(env -i PATH="$PATH" HOME="$TEST_DIR")
runs() { "$1/bin/python3" -c 'import numpy, sys; print(sys.prefix)'; }

# The guide's line, word for word but the tool's name.
"$FERRY" pack --format tar.gz --n-threads -1 --compress-level 4 --prefix "$ENV" --output "$TEST_DIR/guide.tar.gz" >/dev/null
gzip -t guide.tar.gz
"$FERRY" unpack guide.tar.gz "$TEST_DIR/guide/env" >/dev/null
expect_eq "$(runs "$TEST_DIR/guide/env")" "$TEST_DIR/guide/env"

# -n NAME: the env "env" in a directory of CONDA_ENVS_PATH; the output defaults to NAME.tar.zst
# here, and --format tar.gz to NAME.tar.gz.
envs_dir=$(dirname "$ENV")
out=$("${clean[@]}" CONDA_ENVS_PATH="$TEST_DIR/none:$envs_dir" "$FERRY" pack -n env --json)
expect_contains "$out" "\"prefix\": \"$ENV\""
expect_contains "$out" "\"output\": \"$TEST_DIR/env.tar.zst\""
zstd -t -q env.tar.zst
"${clean[@]}" CONDA_ENVS_PATH="$envs_dir" "$FERRY" pack -n env --format tar.gz -q >quiet.out
expect_eq "$(cat quiet.out)" "" "-q prints nothing"
gzip -t env.tar.gz
expect_failure "-n nosuch: no conda environment of that name in $TEST_DIR/none, $envs_dir, $TEST_DIR/.conda/envs" \
  "${clean[@]}" CONDA_ENVS_PATH="$TEST_DIR/none:$envs_dir" "$FERRY" pack -n nosuch

# No env named: the active one (a venv on top of a conda env is the innermost, so it wins).
out=$("${clean[@]}" CONDA_PREFIX="$ENV" "$FERRY" pack -o active.tar.zst --json)
expect_contains "$out" "\"prefix\": \"$ENV\""
expect_failure "no environment to pack: name it (PREFIX, -p PATH or -n NAME), or activate it" \
  "${clean[@]}" "$FERRY" pack -o none.tar.zst
expect_failure "excludes" "$FERRY" pack "$ENV" -p "$ENV" -o twice.tar.zst
expect_failure "/: no name to give the archive: name it with -o" "$FERRY" pack /

# Formats conda-pack writes and ferry does not: one line, nothing written.
expect_failure "--format zip: ferry writes tar.zst (its default) and tar.gz" "$FERRY" pack "$ENV" -o x.zip --format zip
expect_failure "-o env.tar.bz2: ferry writes tar.zst (its default) and tar.gz" "$FERRY" pack "$ENV" -o env.tar.bz2
expect_failure "--format squashfs" "$FERRY" pack "$ENV" -o x.sqfs --format squashfs
expect_missing x.zip
expect_missing env.tar.bz2
# --format infer (conda-pack's default) reads the output's name.
"$FERRY" pack "$ENV" -o inferred.tgz -q
gzip -t inferred.tgz
echo ok
