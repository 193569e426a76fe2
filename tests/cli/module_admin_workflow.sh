# The centre's workflow of the README, end to end, with both module engines: a shared conda install
# configured with ferry conda-config, a realistic env placed in it with ferry unpack (so a
# ferry-unpacked env too), the whole install exposed with ferry module --conda-root, then a user
# who loads it, runs numpy from it, sees conda point at their scratch first, and unloads.
source "$(dirname "$0")/common.sh"
source "$FERRY_SOURCE/tests/cli/module_common.bash"
need_pyenv
ROOT=$TEST_DIR/apps/conda
conda_root_fixture "$ROOT"
ENV=$(conda_fixture small)
"$FERRY" pack "$ENV" -o sci.tar.zst >/dev/null
"$FERRY" unpack sci.tar.zst "$ROOT/envs/sci" >/dev/null
# `conda env config vars set` writes conda-meta/state; conda sets them on activation, so does the module.
printf '%s\n' '{"env_vars": {"OMP_NUM_THREADS": "8", "SCI_NOTE": "it'"'"'s \"quoted\" $HOME [x]"}}' > "$ROOT/envs/sci/conda-meta/state"

# 1. The admin's settings for the shared install (the seed's steps).
"$FERRY" conda-config "$ROOT" --threads 4 --channel conda-forge --strict-priority --no-auto-update --pin 'python 3.11.*' >/dev/null
grep -qx 'channel_priority: strict' "$ROOT/.condarc"
grep -qx 'python 3.11.\*' "$ROOT/conda-meta/pinned"

for sys in lmod tcl; do
  ( module_init "$sys"
    DIR=$TEST_DIR/modulefiles-$sys
    # 2. Every env of the install as a module, users' scratch first.
    "$FERRY" module --conda-root "$ROOT" --"$sys" "$DIR" --user-dirs '$SCRATCH/conda' >/dev/null
    # 3. A user, in a clean login-like shell.
    out=$(in_clean_shell "
export SCRATCH=\$TEST_DIR/scratch/user CONDA_PKGS_DIRS=/home/user/pkgs OMP_NUM_THREADS=2
module use '$DIR'
snap before
module avail 2>&1 | tr -s ' ' '\n' | grep -x 'conda-envs/sci/3.11'
module load conda-envs/sci/3.11
command -v python3
python3 -c 'import numpy, sys; print(sys.prefix, numpy.__version__)'
echo \"envs=\$CONDA_ENVS_PATH\"
echo \"pkgs=\$CONDA_PKGS_DIRS\"
echo \"omp=\$OMP_NUM_THREADS note=\$SCI_NOTE\"
module unload conda-envs/sci/3.11
snap after
same before after
echo restored")
    expect_contains "$out" "$ROOT/envs/sci/bin/python3"
    expect_contains "$out" "$ROOT/envs/sci 1.24"
    expect_contains "$out" "envs=$TEST_DIR/scratch/user/conda/envs:$ROOT/envs"
    expect_contains "$out" "pkgs=$TEST_DIR/scratch/user/conda/pkgs,$ROOT/pkgs,/home/user/pkgs"
    expect_contains "$out" "omp=8 note=it's \"quoted\" \$HOME [x]"
    expect_contains "$out" "restored"
  ) || exit $?
done
# An env_vars entry a module cannot own: one line, nothing written.
printf '{"env_vars": {"PATH": "/evil"}}\n' > "$ROOT/envs/sci/conda-meta/state"
expect_failure "conda-meta/state: env_vars: cannot set 'PATH' from a module" "$FERRY" module "$ROOT/envs/sci" --lmod "$TEST_DIR/bad-modules"
expect_missing "$TEST_DIR/bad-modules"
echo ok
