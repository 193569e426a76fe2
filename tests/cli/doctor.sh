# ferry doctor outside a job, in a clean environment (env -i, as a support ticket's shell might
# be): ferry and its ferry-mpi, no job, the launchers on PATH with the MPI each is, the node-local
# candidates with $TMPDIR first, the kernel's openat2 (and its absence under a filter that refuses
# it, as on RHEL 8), Lmod and Environment Modules each found with its version, ch-run, the Python
# on PATH and the active env. Text and --json tell the same.
source "$(dirname "$0")/common.sh"
f() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); [v := v[int(k) if isinstance(v, list) else k] for k in sys.argv[2:]]; print(v)' "$@"; }
mkdir -p tmp home
clean=(env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$TEST_DIR/home" TMPDIR="$TEST_DIR/tmp")

free_before=$(( $(stat -f -c '%a * %S' "$TEST_DIR/tmp") ))
"${clean[@]}" "$FERRY" doctor --json >d.json
free_after=$(( $(stat -f -c '%a * %S' "$TEST_DIR/tmp") ))
expect_eq "$(f d.json ferry)" "$("$FERRY" --version)"
expect_eq "$(f d.json ferry_path)" "$(realpath "$FERRY")"
expect_eq "$(f d.json job scheduler)" "none"
expect_eq "$(f d.json job machine)" "local"
expect_eq "$(f d.json job cpus)" "$(nproc)"
if [ -x "$FERRY_BUILD/ferry-mpi" ]; then
  expect_eq "$(f d.json ferry_mpi found)" "True"
  expect_eq "$(f d.json ferry_mpi path)" "$FERRY_BUILD/ferry-mpi"
  expect_eq "$(f d.json ferry_mpi mpi)" "$("$FERRY_BUILD/ferry-mpi" --mpi | head -n1 | tr -s ' \t' '  ')"
fi
# mpiexec is what Debian's alternatives point at (MPICH here), and its version is its own.
if command -v mpiexec.mpich >/dev/null && [ "$(readlink -f /usr/bin/mpiexec)" = "$(readlink -f /usr/bin/mpiexec.mpich)" ]; then
  names=$(python3 -c 'import json,sys; print(" ".join(p["name"] for p in json.load(open("d.json"))["launchers"]))')
  expect_contains " $names " " mpiexec "
  i=$(python3 -c 'import json; print([p["name"] for p in json.load(open("d.json"))["launchers"]].index("mpiexec"))')
  expect_eq "$(f d.json launchers "$i" kind)" "MPICH (Hydra)"
  expect_eq "$(f d.json launchers "$i" version)" "$(mpiexec.mpich --version | sed -n 's/^ *Version: *//p')"
fi
# Without a slurm.conf, srun cannot even tell its version: doctor says what it said.
if command -v srun >/dev/null; then
  i=$(python3 -c 'import json; print([p["name"] for p in json.load(open("d.json"))["launchers"]].index("srun"))')
  expect_contains "$(f d.json launchers "$i" error)" "configuration"
fi

# Node-local candidates: $TMPDIR first (tmpfs here: node-local), then the table's others.
expect_eq "$(f d.json node_local 0 place)" '$TMPDIR'
expect_eq "$(f d.json node_local 0 path)" "$TEST_DIR/tmp"
expect_eq "$(f d.json node_local 0 writable)" "True"
expect_eq "$(f d.json node_local 0 node_local)" "True"
expect_eq "$(f d.json node_local 0 file_system)" "$(stat -f -c %T "$TEST_DIR/tmp" | sed 's/^ext2\/ext3$/ext4/')"
# What df said just before and just after, give or take what the tests beside this one write
# meanwhile (one writes 200 MB): /dev/shm's and / 's free space differ by gigabytes.
got=$(f d.json node_local 0 free_bytes)
low=$(( (free_before < free_after ? free_before : free_after) - (512 << 20) ))
high=$(( (free_before > free_after ? free_before : free_after) + (512 << 20) ))
[ "$got" -ge "$low" ] && [ "$got" -le "$high" ] ||
  fail "free bytes $got, df says $free_before before and $free_after after"
expect_eq "$(f d.json suggested_dir)" "$TEST_DIR/tmp"
# /mnt/bb/$USER: USER from the password database when the shell has none.
expect_eq "$(f d.json node_local 1 path)" "/mnt/bb/$(id -un)"
# An unwritable TMPDIR is not suggested.
mkdir ro && chmod 555 ro
if [ "$(id -u)" -ne 0 ]; then
  env -i PATH=/usr/bin:/bin HOME="$TEST_DIR/home" TMPDIR="$TEST_DIR/ro" "$FERRY" doctor --json >ro.json
  expect_eq "$(f ro.json node_local 0 writable)" "False"
  [ "$(f ro.json suggested_dir)" != "$TEST_DIR/ro" ] || fail "an unwritable TMPDIR was suggested"
fi

# The kernel: openat2 as the kernel answers it; under a filter that answers ENOSYS, the walk.
expect_eq "$(f d.json kernel release)" "$(uname -r)"
expect_eq "$(f d.json kernel glibc)" "$(getconf GNU_LIBC_VERSION | awk '{print $2}')"
if [ -n "${FERRY_OPENAT2:-}" ]; then
  expect_eq "$(f d.json kernel openat2)" "False"
elif [ -x "$FERRY_BUILD/tests/ferry-test-seccomp" ]; then
  expect_eq "$(f d.json kernel openat2)" "True"
  "${clean[@]}" "$FERRY_BUILD/tests/ferry-test-seccomp" --openat2=enosys -- "$FERRY" doctor --json >old.json
  expect_eq "$(f old.json kernel openat2)" "False"
  expect_eq "$(f old.json kernel openat2_answer)" "ENOSYS"
  expect_contains "$("${clean[@]}" "$FERRY_BUILD/tests/ferry-test-seccomp" --openat2=enosys -- "$FERRY" doctor)" \
    "openat2 no (ENOSYS: the slower safe walk)"
fi

# Modules: none in a clean shell; Lmod and Environment Modules, each with its version.
expect_eq "$(f d.json modules system)" "none"
lmod_init=""
for i in /usr/share/lmod/lmod/init/bash /opt/ferry/lmod/usr/share/lmod/lmod/init/bash; do [ -r "$i" ] && lmod_init=$i && break; done
if [ -n "$lmod_init" ]; then
  "${clean[@]}" bash -c "source $lmod_init && $(printf '%q' "$FERRY") doctor --json" >lmod.json
  expect_eq "$(f lmod.json modules system)" "lmod"
  lmod_version=$("${clean[@]}" bash -c "source $lmod_init && \$LMOD_CMD --version 2>&1" | sed -n 's/.*Version \([0-9.]*\).*/\1/p')
  expect_eq "$(f lmod.json modules version)" "$lmod_version"
fi
if [ -r /usr/share/modules/init/bash ]; then
  "${clean[@]}" bash -c "source /usr/share/modules/init/bash && $(printf '%q' "$FERRY") doctor --json" >tcl.json
  expect_eq "$(f tcl.json modules system)" "environment-modules"
  expect_eq "$(f tcl.json modules version)" "$(bash -c 'source /usr/share/modules/init/bash && module --version 2>&1' | sed -n 's/^Modules Release \([0-9.]*\).*/\1/p')"
fi

# Charliecloud: ch-run's own version (it needs USER, which doctor gives it).
if command -v ch-run >/dev/null; then
  expect_eq "$(f d.json charliecloud path)" "$(command -v ch-run)"
  expect_eq "$(f d.json charliecloud version)" "$(USER=$(id -un) ch-run --version 2>&1)"
fi

# Python: the python3 on PATH; the active env, venv first (as pack takes it).
expect_eq "$(f d.json python python path)" "$(PATH=/usr/local/bin:/usr/bin:/bin command -v python3)"
expect_eq "$(f d.json python python version)" "$(PATH=/usr/local/bin:/usr/bin:/bin python3 -c 'import sys; print(sys.version.split()[0])')"
expect_eq "$(f d.json python active_kind)" "none"
"${clean[@]}" CONDA_PREFIX=/opt/envs/torch CONDA_DEFAULT_ENV=torch "$FERRY" doctor --json >conda.json
expect_eq "$(f conda.json python active_kind)" "conda"
expect_eq "$(f conda.json python active_name)" "torch"
"${clean[@]}" CONDA_PREFIX=/opt/envs/torch VIRTUAL_ENV="$TEST_DIR/venv" "$FERRY" doctor --json >venv.json
expect_eq "$(f venv.json python active_kind)" "venv"
expect_eq "$(f venv.json python active_prefix)" "$TEST_DIR/venv"

# The text: one labelled line per fact, the same facts.
text=$("${clean[@]}" "$FERRY" doctor)
for label in ferry ferry-mpi job schedulers launchers node-local kernel modules charliecloud python "active env"; do
  grep -q "^$label " <<<"$text" || fail "no '$label' line in: $text"
done
expect_contains "$text" "job          none (machine local"
expect_contains "$text" "\$TMPDIR        $TEST_DIR/tmp: "
expect_contains "$text" "stage to: ferry stage --to $TEST_DIR/tmp/ENV"

# A job that is not there: one line (doctor does not guess when told).
expect_failure "999999" "${clean[@]}" "$FERRY" doctor --job 999999
echo "doctor: every fact checked against the tool that knows it"
