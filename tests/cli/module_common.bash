# Sourced by tests/cli/module_lmod.sh and module_tcl.sh (not a scenario itself: CMake takes *.sh).
# module_init lmod|tcl: sets MODULE_INIT to the module system's bash init file, or skips.
module_init() {
  case $1 in
    lmod)
      for f in /usr/share/lmod/lmod/init/bash /opt/ferry/lmod/usr/share/lmod/lmod/init/bash; do
        [ -r "$f" ] && { MODULE_INIT=$f; return 0; }
      done
      skip "Lmod is not installed (scripts/install-deps.sh unpacks it into /opt/ferry/lmod)";;
    tcl)
      [ -r /usr/share/modules/init/bash ] || skip "Environment Modules is not installed (apt-get install environment-modules)"
      MODULE_INIT=/usr/share/modules/init/bash;;
  esac
}

# in_clean_shell 'commands': a new bash with nothing inherited but HOME and a minimal PATH, the
# module system initialised, and `snap FILE`, which writes the sorted environment without the
# module system's own bookkeeping (see the README's "Modules" section for that list).
in_clean_shell() {
  mkdir -p "$TEST_DIR/home"
  env -i HOME="$TEST_DIR/home" PATH=/usr/bin:/bin LANG=C.UTF-8 TEST_DIR="$TEST_DIR" \
    bash --noprofile --norc -c "
set -euo pipefail
source '$MODULE_INIT'
snap() { env -0 | grep -zv -E '^(_ModuleTable[0-9_]*_|__LMOD_REF_COUNT_[A-Za-z0-9_]*|__LMOD_STACK_[A-Za-z0-9_]*|__MODULES_[A-Za-z0-9_]*|LOADEDMODULES|_LMFILES_|_)=' | sort -z > \"\$1\"; }
same() { cmp -s \"\$1\" \"\$2\" || { echo \"environment differs (\$1 vs \$2):\"; diff <(tr '\\0' '\\n' < \"\$1\") <(tr '\\0' '\\n' < \"\$2\"); exit 1; }; }
$1"
}

# module_scenario lmod|tcl: the round trip on a conda env (with an activate.d script) and a venv,
# the family swap, the listings, and bad input.
module_scenario() {
  local sys=$1 ext=""
  [ "$sys" = lmod ] && ext=.lua
  module_init "$sys"
  CONDA=$(conda_fixture small)
  [ -f "$CONDA/etc/conda/activate.d/ferry-fixture.sh" ] || fail "the fixture lost its activate.d script"
  VENV=$TEST_DIR/envs/myvenv
  "$DEBIAN_PYTHON" -m venv --without-pip "$VENV"
  SP=$(echo "$VENV"/lib/python3*/site-packages)
  mkdir -p "$SP/ferry_tiny-1.0.dist-info"
  printf 'Metadata-Version: 2.1\nName: ferry-tiny\nVersion: 1.0\n\n' > "$SP/ferry_tiny-1.0.dist-info/METADATA"
  DIR=$TEST_DIR/modulefiles

  out=$("$FERRY" module "$CONDA" --"$sys" "$DIR" --name cenv/1.0)
  expect_contains "$out" "written cenv/1.0 -> $DIR/cenv/1.0$ext"
  out=$("$FERRY" module "$VENV" --"$sys" "$DIR")
  pyv=$("$DEBIAN_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  expect_contains "$out" "written myvenv/$pyv -> $DIR/myvenv/$pyv$ext"
  # The same again: unchanged, not rewritten.
  expect_contains "$("$FERRY" module "$VENV" --"$sys" "$DIR")" "unchanged myvenv/$pyv"

  # The family: Lmod swaps on load; Environment Modules 5.2 refuses the load (conflict, nothing
  # changed) and swaps with `module switch`.
  local swap="module load myvenv 2>\$TEST_DIR/swap.err || { cat \$TEST_DIR/swap.err; exit 1; }"
  [ "$sys" = tcl ] && swap="snap \$TEST_DIR/pre; ! module load myvenv 2>\$TEST_DIR/swap.err; grep -q conflict \$TEST_DIR/swap.err; snap \$TEST_DIR/post; same \$TEST_DIR/pre \$TEST_DIR/post; module switch cenv myvenv"
  # Load, check, unload: the environment comes back exactly, user values included.
  in_clean_shell "
module use '$DIR'
export CONDA_PREFIX=/somewhere/else PYTHONHOME='/user/home:with colon' PATH=/usr/bin:/bin:/opt/user/bin
snap \$TEST_DIR/before
module load cenv
[ \"\$(command -v python3)\" = '$CONDA/bin/python3' ] || { echo \"python3 is \$(command -v python3)\"; exit 1; }
[ \"\$CONDA_PREFIX\" = '$CONDA' ] && [ \"\$CONDA_DEFAULT_ENV\" = '$CONDA' ]
[ -z \"\${PYTHONHOME+x}\" ] || { echo PYTHONHOME still set; exit 1; }
[ \"\$FERRY_FIXTURE_ACTIVATED\" = 1 ] || { echo activate.d script not sourced; exit 1; }
python3 -c 'import numpy' 
module unload cenv
snap \$TEST_DIR/after
same \$TEST_DIR/before \$TEST_DIR/after
# The user changes a variable between two loads: the new value is the one restored.
export CONDA_PREFIX=/changed
snap \$TEST_DIR/before2
module load cenv; module unload cenv
snap \$TEST_DIR/after2
same \$TEST_DIR/before2 \$TEST_DIR/after2
# The same family: the second env replaces the first; unloading it restores the start.
unset PYTHONHOME
snap \$TEST_DIR/before3
module load cenv
$swap
[ \"\$VIRTUAL_ENV\" = '$VENV' ] && [ \"\$(command -v python3)\" = '$VENV/bin/python3' ]
[ \"\$CONDA_PREFIX\" = /changed ] || { echo \"CONDA_PREFIX=\$CONDA_PREFIX after the swap\"; exit 1; }
[ -z \"\${FERRY_FIXTURE_ACTIVATED+x}\" ]
module list 2>&1 | grep -q cenv && { echo cenv still loaded after the swap; module list; exit 1; }
module unload myvenv
snap \$TEST_DIR/after3
same \$TEST_DIR/before3 \$TEST_DIR/after3
# purge
module load cenv; module purge
snap \$TEST_DIR/after4
same \$TEST_DIR/before3 \$TEST_DIR/after4
" || fail "round trip in $sys"

  # The listings: names, package lists, how to extend.
  listings=$(in_clean_shell "
module use '$DIR'
module avail 2>&1; module whatis cenv 2>&1; module help cenv 2>&1; module whatis myvenv 2>&1
")
  expect_contains "$listings" "cenv/1.0"
  expect_contains "$listings" "myvenv/$pyv"
  expect_contains "$listings" "Packages: python 3.11.7, numpy 1.24.2, pip 23.2.1"
  expect_contains "$listings" "pip install --user PACKAGE"
  expect_contains "$listings" "conda create --prefix \$SCRATCH/myclone --clone $CONDA"
  expect_contains "$listings" "Description: venv environment $VENV (Python $pyv"

  # Bad input: one error line, nothing written.
  mkdir -p "$TEST_DIR/notenv/bin"
  expect_failure "$TEST_DIR/notenv: not an environment" "$FERRY" module "$TEST_DIR/notenv" --"$sys" "$TEST_DIR/bad1"
  expect_missing "$TEST_DIR/bad1"
  expect_failure "$TEST_DIR/missing" "$FERRY" module "$TEST_DIR/missing" --"$sys" "$TEST_DIR/bad1"
  expect_failure "a different modulefile exists (--force replaces it)" "$FERRY" module "$VENV" --"$sys" "$DIR" --name cenv/1.0
  expect_contains "$(cat "$DIR/cenv/1.0$ext")" "$CONDA"
  # Several environments: one bad one and nothing at all is written.
  expect_failure "$TEST_DIR/notenv" "$FERRY" module "$VENV" "$TEST_DIR/notenv" --"$sys" "$TEST_DIR/bad2"
  expect_missing "$TEST_DIR/bad2"
  # An unwritable directory (root writes anywhere, except in /proc).
  if [ "$(id -u)" -eq 0 ]; then bad=/proc/self/ferry-modules; else mkdir -p ro; chmod 555 ro; bad=$TEST_DIR/ro/m; fi
  expect_failure "$bad" "$FERRY" module "$VENV" --"$sys" "$bad"
  expect_failure "--name" "$FERRY" module "$VENV" --"$sys" "$DIR" --name ../x
  [ -z "$(find "$DIR" -name '.*ferry-tmp*')" ] || fail "temporary files left in $DIR"
  # --force replaces, atomically.
  expect_contains "$("$FERRY" module "$VENV" --"$sys" "$DIR" --name cenv/1.0 --force)" "replaced cenv/1.0"
  expect_contains "$(cat "$DIR/cenv/1.0$ext")" "$VENV"
}
