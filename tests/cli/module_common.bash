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

# random_envs DIR: three small synthetic envs for the randomized test, printed as NAME=PREFIX lines.
#   ca: conda-like; activate.d changes the user's USERVAR and creates CA_CREATED (and CA_SAVED from
#       the old USERVAR, as conda packages' scripts keep what they clobber)
#   cb: conda-like; activate.d creates CB_HOME and prepends to LD_LIBRARY_PATH (a list edit)
#   vv: a venv (pyvenv.cfg, bin/python3)
random_envs() {
  local d=$1 e
  for e in ca cb; do
    mkdir -p "$d/$e/conda-meta" "$d/$e/bin" "$d/$e/etc/conda/activate.d"
    printf '{"name": "python", "version": "3.11.7", "build": "0"}\n' > "$d/$e/conda-meta/python-3.11.7-0.json"
    : > "$d/$e/conda-meta/history"
    printf '#!/bin/sh\necho %s\n' "$e" > "$d/$e/bin/python3"; chmod +x "$d/$e/bin/python3"
  done
  cat > "$d/ca/etc/conda/activate.d/10-set.sh" <<'SH'
if [ -n "${USERVAR+x}" ]; then export CA_SAVED="$USERVAR"; fi
export USERVAR="set by ca in $CONDA_PREFIX"
SH
  printf 'export CA_CREATED=1\n' > "$d/ca/etc/conda/activate.d/20-create.sh"
  cat > "$d/cb/etc/conda/activate.d/cb.sh" <<'SH'
export CB_HOME="$CONDA_PREFIX/share"
export LD_LIBRARY_PATH="$CONDA_PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
SH
  mkdir -p "$d/vv/bin" "$d/vv/lib/python3.11/site-packages"
  printf 'home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n' > "$d/vv/pyvenv.cfg"
  printf '#!/bin/sh\necho vv\n' > "$d/vv/bin/python3"; chmod +x "$d/vv/bin/python3"
}

# module_random lmod|tcl: FERRY_RANDOM_SEQUENCES (default 150) random sequences of load / unload /
# swap / purge over ca, cb and vv (one family), from random user states (USERVAR, CONDA_PREFIX,
# VIRTUAL_ENV, PYTHONHOME, LD_LIBRARY_PATH set or not, a user PATH entry). After every step the
# loaded env's variables are checked; each sequence ends with everything unloaded (or purged) and
# the environment exactly as it started. All sequences run in one shell; Python writes the script
# (seed FERRY_RANDOM_SEED, default 5) and then checks the records it left.
module_random() {
  local sys=$1
  module_init "$sys"
  random_envs "$TEST_DIR/envs"
  local DIR=$TEST_DIR/modulefiles e
  for e in ca cb vv; do "$FERRY" module "$TEST_DIR/envs/$e" --"$sys" "$DIR" --name "$e/1.0" >/dev/null; done
  mkdir -p "$TEST_DIR/run"
  local seed=${FERRY_RANDOM_SEED:-5} count=${FERRY_RANDOM_SEQUENCES:-150}
  "$DEBIAN_PYTHON" - gen "$sys" "$seed" "$count" "$TEST_DIR" > "$TEST_DIR/run/script.bash" <<<"$MODULE_RANDOM_PY"
  in_clean_shell "set +e; module use '$DIR'; source \$TEST_DIR/run/script.bash" > "$TEST_DIR/run/shell.out" 2>&1 || {
    tail -20 "$TEST_DIR/run/shell.out"; fail "the random sequences' shell failed ($sys, seed $seed)"; }
  "$DEBIAN_PYTHON" - check "$sys" "$seed" "$count" "$TEST_DIR" <<<"$MODULE_RANDOM_PY" ||
    fail "random sequences ($sys): seed $seed; rerun with FERRY_RANDOM_SEED=$seed KEEP_TEST_DIR=1"
}

MODULE_RANDOM_PY=$(cat <<'PY'
import os, random, sys, json
mode, system, seed, count, tdir = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
envs = {m: os.path.join(tdir, "envs", m) for m in ("ca", "cb", "vv")}
run = os.path.join(tdir, "run")
UNSET = "<unset>"
USER_VARS = {  # each sequence picks, per variable, unset or one of these values
    "USERVAR": ["plain", "with: colon and 'quote'", "", "~~~ base64 -_"],
    "CONDA_PREFIX": ["/user/conda", "/user/other conda", "", "/~~~"],
    "VIRTUAL_ENV": ["/user/venv"],
    "PYTHONHOME": ["/user/home:with colon"],
    "LD_LIBRARY_PATH": ["/user/lib", "/user/lib:/user/lib2"],
}
WATCH = ["CONDA_PREFIX", "VIRTUAL_ENV", "USERVAR", "CA_CREATED", "CB_HOME", "PYTHONHOME"]

def sequences():
    rng = random.Random(seed)
    out = []
    for i in range(count):
        # Lmod's pushenv stack cannot hold an empty value: one set empty comes back unset (README).
        user = {k: rng.choice([None] + [x for x in v if x or system == "tcl"]) for k, v in USER_VARS.items()}
        ops, loaded = [], None
        for _ in range(rng.randint(1, 8)):
            choices = ["load", "load", "unload", "purge"] + (["swap", "swap"] if loaded else [])
            op = rng.choice(choices)
            if op == "load":
                m = rng.choice(list(envs))
                ok = loaded is None or loaded == m or system == "lmod"  # Modules refuses a family conflict
                ops.append(("load", m, ok)); loaded = m if ok else loaded
            elif op == "unload":
                m = loaded if loaded and rng.random() < 0.7 else rng.choice(list(envs))
                ops.append(("unload", m, True)); loaded = None if m == loaded else loaded
            elif op == "swap":
                m = rng.choice([e for e in envs if e != loaded])
                ops.append(("swap", loaded + " " + m, True)); loaded = m
            else:
                ops.append(("purge", "", True)); loaded = None
        if loaded:
            ops.append(("purge", "", True) if rng.random() < 0.5 else ("unload", loaded, True))
            loaded = None
        out.append((user, ops))
    return out

def q(s):
    return "'" + s.replace("'", "'\\''") + "'"

def expected(user, loaded):
    exp = {k: user.get(k) for k in WATCH}
    exp["CA_CREATED"] = exp["CB_HOME"] = None
    if loaded:
        p = envs[loaded]
        if loaded == "vv":
            exp["VIRTUAL_ENV"] = p
        else:
            exp["CONDA_PREFIX"] = p
        exp["PYTHONHOME"] = None
        if loaded == "ca":
            exp["USERVAR"] = "set by ca in " + p
            exp["CA_CREATED"] = "1"
        if loaded == "cb":
            exp["CB_HOME"] = p + "/share"
    return exp

seqs = sequences()
if mode == "gen":
    verb = {"lmod": {"swap": "swap"}, "tcl": {"swap": "switch"}}[system]
    w = sys.stdout.write
    w('step() { local rc=$1 v; printf "%s" "$rc"; for v in ' + " ".join(WATCH) +
      '; do if [ -n "${!v+x}" ]; then printf "\\t%s" "${!v}"; else printf "\\t' + UNSET +
      '"; fi; done; printf "\\t%s\\n" "$(command -v python3)"; }\n')
    for i, (user, ops) in enumerate(seqs):
        w(f"# sequence {i}\n")
        for k, v in user.items():
            w(f"export {k}={q(v)}\n" if v is not None else f"unset {k}\n")
        w("export PATH=/usr/bin:/bin:/opt/user/bin\n")
        w(f"snap {run}/before.{i}\n")
        w(f"exec 3>{run}/steps.{i}\n")
        for op, arg, _ in ops:
            cmd = {"load": f"module load {arg}", "unload": f"module unload {arg}",
                   "swap": f"module {verb['swap']} {arg}", "purge": "module purge"}[op]
            w(f"{cmd} >>{run}/module.log 2>&1; step $? >&3\n")
        w("exec 3>&-\n")
        w(f"snap {run}/after.{i}\n")
    sys.exit(0)

# check
def show(i, user, ops):
    print(f"module_random ({system}): seed {seed}, sequence {i} failed", file=sys.stderr)
    print("  user state: " + json.dumps(user), file=sys.stderr)
    print("  steps: " + "; ".join(f"{op} {arg}".strip() for op, arg, _ in ops), file=sys.stderr)

for i, (user, ops) in enumerate(seqs):
    try:
        lines = open(f"{run}/steps.{i}").read().splitlines()
    except OSError:
        show(i, user, ops); print("  the shell did not get this far", file=sys.stderr); sys.exit(1)
    loaded = None
    for n, ((op, arg, ok), line) in enumerate(zip(ops, lines)):
        rc, *vals = line.split("\t")
        python = vals.pop()
        if ok:
            loaded = {"load": arg, "unload": None if arg == loaded else loaded,
                      "swap": (arg.split() or [None])[-1], "purge": None}[op]
        if (rc == "0") != ok:
            show(i, user, ops); print(f"  step {n} ({op} {arg}): exit status {rc}", file=sys.stderr); sys.exit(1)
        exp = expected(user, loaded)
        got = {k: (None if v == UNSET else v) for k, v in zip(WATCH, vals)}
        if got != exp:
            show(i, user, ops)
            for k in WATCH:
                if got[k] != exp[k]:
                    print(f"  after step {n} ({op} {arg}; loaded: {loaded}): {k}={got[k]!r}, expected {exp[k]!r}", file=sys.stderr)
            sys.exit(1)
        want_py = os.path.join(envs[loaded], "bin/python3") if loaded else ""
        if loaded and python != want_py:
            show(i, user, ops); print(f"  after step {n}: python3 is {python!r}, expected {want_py!r}", file=sys.stderr); sys.exit(1)
    if len(lines) != len(ops):
        show(i, user, ops); print("  steps missing", file=sys.stderr); sys.exit(1)
    b = open(f"{run}/before.{i}", "rb").read().split(b"\0")
    a = open(f"{run}/after.{i}", "rb").read().split(b"\0")
    if a != b:
        show(i, user, ops)
        for x in sorted(set(b) - set(a)): print("  lost:    " + x.decode(errors="replace"), file=sys.stderr)
        for x in sorted(set(a) - set(b)): print("  gained:  " + x.decode(errors="replace"), file=sys.stderr)
        sys.exit(1)
print(f"module_random ({system}): {count} sequences, seed {seed}: every step and every end state as expected")
PY
)

# conda_root_fixture ROOT: a small conda installation: conda 24.1.2 and Python 3.11 in the base,
# envs alpha (Python 3.10) and beta (3.12), and two entries under envs/ that are not envs.
conda_root_fixture() {
  local root=$1 e n v
  mkdir -p "$root"/{conda-meta,bin,condabin,pkgs,envs}
  printf '{"name": "conda", "version": "24.1.2", "build": "py311_0"}\n' > "$root/conda-meta/conda-24.1.2-py311_0.json"
  printf '{"name": "python", "version": "3.11.7", "build": "0"}\n' > "$root/conda-meta/python-3.11.7-0.json"
  ln -s /usr/bin/python3 "$root/bin/python3"
  for e in alpha:3.10.4 beta:3.12.1; do
    n=${e%%:*} v=${e#*:}
    mkdir -p "$root/envs/$n/conda-meta" "$root/envs/$n/bin"
    printf '{"name": "python", "version": "%s", "build": "0"}\n' "$v" > "$root/envs/$n/conda-meta/python-$v-0.json"
    ln -s /usr/bin/python3 "$root/envs/$n/bin/python3"
  done
  mkdir -p "$root/envs/.conda_envs_dir_test" "$root/envs/notenv/bin"
}

# conda_root_scenario lmod|tcl: ferry module --conda-root with --user-dirs: the base and each env as
# modules, CONDA_ENVS_PATH (':') and CONDA_PKGS_DIRS (',') with the user's scratch first, ROOT's
# second, the user's own after; unload gives the shell back exactly; bad input writes nothing.
conda_root_scenario() {
  local sys=$1 ext="" swap
  [ "$sys" = lmod ] && ext=.lua
  module_init "$sys"
  ROOT=$TEST_DIR/apps/conda
  conda_root_fixture "$ROOT"
  DIR=$TEST_DIR/modulefiles DIR2=$TEST_DIR/modulefiles2
  # The pattern is expanded by the modulefile when loaded, never by ferry.
  out=$(SCRATCH=/wrong/at/write "$FERRY" module --conda-root "$ROOT" --"$sys" "$DIR" --user-dirs '$SCRATCH/conda/')
  expect_contains "$out" "written conda/24.1.2 -> $DIR/conda/24.1.2$ext"
  expect_contains "$out" "written conda-envs/alpha/3.10 -> $DIR/conda-envs/alpha/3.10$ext"
  expect_contains "$out" "written conda-envs/beta/3.12 -> $DIR/conda-envs/beta/3.12$ext"
  expect_eq "$(grep -c '^written' <<<"$out")" 3 "the base and two envs, nothing for envs/.conda_envs_dir_test or envs/notenv"
  ! grep -rq /wrong/at/write "$DIR" || fail "--user-dirs was expanded when writing"
  expect_eq "$("$FERRY" module --conda-root "$ROOT" --"$sys" "$DIR" --user-dirs '$SCRATCH/conda/' | grep -c '^unchanged')" 3
  "$FERRY" module --conda-root "$ROOT/" --"$sys" "$DIR2" --user-dirs '/scratch/${USER}/conda' >/dev/null

  swap="module load conda-envs/beta"
  [ "$sys" = tcl ] && swap="module switch conda conda-envs/beta"
  in_clean_shell "
module use '$DIR'
module -t avail 2>&1 | grep -x 'conda/24.1.2' >/dev/null || { module -t avail; exit 1; }
module -t avail 2>&1 | grep -x 'conda-envs/alpha/3.10' >/dev/null || { module -t avail; exit 1; }
module -t avail 2>&1 | grep -x 'conda-envs/beta/3.12' >/dev/null || { module -t avail; exit 1; }
export SCRATCH=/scratch/u1 CONDA_PKGS_DIRS=/mine/pkgs
unset CONDA_ENVS_PATH
snap \$TEST_DIR/before
module load conda-envs/alpha
[ \"\$CONDA_ENVS_PATH\" = '/scratch/u1/conda/envs:$ROOT/envs' ] || { echo \"CONDA_ENVS_PATH=\$CONDA_ENVS_PATH\"; exit 1; }
[ \"\$CONDA_PKGS_DIRS\" = '/scratch/u1/conda/pkgs,$ROOT/pkgs,/mine/pkgs' ] || { echo \"CONDA_PKGS_DIRS=\$CONDA_PKGS_DIRS\"; exit 1; }
[ \"\$CONDA_PREFIX\" = '$ROOT/envs/alpha' ] && [ \"\$(command -v python3)\" = '$ROOT/envs/alpha/bin/python3' ]
# The pattern's variable changes while the module is loaded: unload still restores exactly.
export SCRATCH=/scratch/elsewhere
module unload conda-envs/alpha
export SCRATCH=/scratch/u1
snap \$TEST_DIR/after
same \$TEST_DIR/before \$TEST_DIR/after
# The base, then an env of the same family in its place: the lists are not doubled.
module load conda
[ \"\$CONDA_PREFIX\" = '$ROOT' ] && [ \"\$CONDA_ENVS_PATH\" = '/scratch/u1/conda/envs:$ROOT/envs' ]
$swap
[ \"\$CONDA_PREFIX\" = '$ROOT/envs/beta' ] || { echo \"CONDA_PREFIX=\$CONDA_PREFIX after the swap\"; exit 1; }
[ \"\$CONDA_ENVS_PATH\" = '/scratch/u1/conda/envs:$ROOT/envs' ] || { echo \"CONDA_ENVS_PATH=\$CONDA_ENVS_PATH after the swap\"; exit 1; }
[ \"\$CONDA_PKGS_DIRS\" = '/scratch/u1/conda/pkgs,$ROOT/pkgs,/mine/pkgs' ] || { echo \"CONDA_PKGS_DIRS=\$CONDA_PKGS_DIRS after the swap\"; exit 1; }
module unload conda-envs/beta
snap \$TEST_DIR/after2
same \$TEST_DIR/before \$TEST_DIR/after2
# SCRATCH unset: a message, ROOT's directories in front of the user's own list.
unset SCRATCH
export CONDA_ENVS_PATH=/a/envs:/b/envs
snap \$TEST_DIR/before3
module load conda-envs/beta 2>\$TEST_DIR/load.err
grep -q 'SCRATCH is not set' \$TEST_DIR/load.err || { cat \$TEST_DIR/load.err; exit 1; }
[ \"\$CONDA_ENVS_PATH\" = '$ROOT/envs:/a/envs:/b/envs' ] || { echo \"CONDA_ENVS_PATH=\$CONDA_ENVS_PATH\"; exit 1; }
[ \"\$CONDA_PKGS_DIRS\" = '$ROOT/pkgs,/mine/pkgs' ] || { echo \"CONDA_PKGS_DIRS=\$CONDA_PKGS_DIRS\"; exit 1; }
module purge
snap \$TEST_DIR/after3
same \$TEST_DIR/before3 \$TEST_DIR/after3
# A pattern naming \${USER}, in another tree.
module use '$DIR2'
export USER=u2
unset CONDA_PKGS_DIRS CONDA_ENVS_PATH
snap \$TEST_DIR/before4
module load conda/24.1.2
[ \"\$CONDA_PKGS_DIRS\" = '/scratch/u2/conda/pkgs,$ROOT/pkgs' ] || { echo \"CONDA_PKGS_DIRS=\$CONDA_PKGS_DIRS\"; exit 1; }
[ \"\$CONDA_ENVS_PATH\" = '/scratch/u2/conda/envs:$ROOT/envs' ] || { echo \"CONDA_ENVS_PATH=\$CONDA_ENVS_PATH\"; exit 1; }
module unload conda
snap \$TEST_DIR/after4
same \$TEST_DIR/before4 \$TEST_DIR/after4
" || fail "conda root round trip in $sys"
  expect_contains "$(in_clean_shell "module use '$DIR'; module help conda-envs/alpha 2>&1")" "conda create -n NAME"

  # Bad input: one error line, nothing written.
  mkdir -p "$TEST_DIR/notroot/bin"
  expect_failure "$TEST_DIR/notroot: not a conda root" "$FERRY" module --conda-root "$TEST_DIR/notroot" --"$sys" "$TEST_DIR/bad"
  mkdir -p "$TEST_DIR/plainenv/conda-meta" "$TEST_DIR/plainenv/bin"
  expect_failure "$TEST_DIR/plainenv: not a conda root" "$FERRY" module --conda-root "$TEST_DIR/plainenv" --"$sys" "$TEST_DIR/bad"
  expect_failure "$TEST_DIR/missing: not a conda root" "$FERRY" module --conda-root "$TEST_DIR/missing" --"$sys" "$TEST_DIR/bad"
  expect_failure "not both" "$FERRY" module "$ROOT/envs/alpha" --conda-root "$ROOT" --"$sys" "$TEST_DIR/bad"
  expect_failure "--user-dirs: only with --conda-root" "$FERRY" module "$ROOT/envs/alpha" --user-dirs /x --"$sys" "$TEST_DIR/bad"
  local p
  for p in 'scratch/conda' '$SCRATCH/a:b' '$SCRATCH/a,b' '$/x' '${SCRATCH/x'; do
    expect_failure "--user-dirs '$p'" "$FERRY" module --conda-root "$ROOT" --"$sys" "$TEST_DIR/bad" --user-dirs "$p"
  done
  expect_missing "$TEST_DIR/bad"
}
