#!/usr/bin/env bash
# A launcher that fails to start the ranks but does not exit must not hold `ferry stage` for its
# whole --timeout: every node's rank must start within --start-timeout, else ferry stops the
# launcher and everything it started (its process group), and says in one line what the launcher
# said. Nothing is left at DIR or beside it. Played on this host in a Slurm-style job of three
# nodes: MPICH's own mpiexec whose srun dies (it then waits forever, as on a real cluster), and a
# launcher that prints Hydra's complaint and hangs with a child of its own. Last, a stage that
# does start (a PBS-style job on this host) still succeeds.
source "$(dirname "$0")/common.sh"
[ -x "$FERRY_BUILD/ferry-mpi" ] || skip "ferry-mpi was not built (no MPI found at configure time)"

env=$(conda_fixture small)
"$FERRY" pack "$env" -o env.tar.zst >/dev/null
slurm_job=(env -u SLURM_JOB_CPUS_PER_NODE -u SLURM_TASKS_PER_NODE SLURM_JOB_ID=5150
           'SLURM_JOB_NODELIST=node[1-3]' SLURM_NNODES=3)

# alive PID: the process still runs (a zombie waiting for its reaper has ended).
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# stage_hung NAME LAUNCHER: ferry stage through LAUNCHER, bounded to 3 s of start-up; checks the
# bound, the one error line (returned in $error) and that DIR's parent holds nothing.
stage_hung() {
  local name=$1 launcher=$2 rc=0 start elapsed
  start=$(date +%s)
  FERRY_MPIEXEC=$launcher timeout -s KILL 120 "${slurm_job[@]}" "$FERRY" stage env.tar.zst \
    --to "$TEST_DIR/$name/node/env" --via mpi --timeout 600 --start-timeout 3 >"$name.out" 2>"$name.err" || rc=$?
  elapsed=$(( $(date +%s) - start ))
  [ "$rc" -ne 137 ] || fail "$name: ferry stage hung until killed: $(cat "$name.err")"
  expect_eq "$rc" 1 "$name: exit status ($(cat "$name.err"))"
  [ "$elapsed" -lt 15 ] || fail "$name: ferry stage took $elapsed s with --start-timeout 3"
  expect_eq "$(grep -c '^ferry: error:' "$name.err")" 1 "$name: one error line: $(cat "$name.err")"
  error=$(grep '^ferry: error:' "$name.err")
  expect_contains "$error" "did not start on every node within 3 s (--start-timeout)"
  expect_eq "$(ls -A "$TEST_DIR/$name/node" 2>/dev/null)" "" "$name: left beside DIR"
}

# 1. A launcher that prints Hydra's complaint and hangs, with a child of its own (as mpiexec has
#    its srun): both are stopped with it.
cat >hanging-mpiexec <<EOF
#!/bin/sh
echo \$\$ > $TEST_DIR/launcher.pids
sleep 1000 &
echo \$! >> $TEST_DIR/launcher.pids
echo "[mpiexec@login1] HYDT_dmxu_poll_wait_for_event (lib/tools/demux/demux_poll.c:76): callback returned error status" >&2
wait
EOF
chmod +x hanging-mpiexec
stage_hung fake "$TEST_DIR/hanging-mpiexec"
expect_contains "$error" "ferry: error: $TEST_DIR/hanging-mpiexec: the ranks did not start"
expect_contains "$error" "it said: [mpiexec@login1] HYDT_dmxu_poll_wait_for_event (lib/tools/demux/demux_poll.c:76): callback returned error status"
[ "$(wc -l < launcher.pids)" -eq 2 ] || fail "the launcher did not start: $(cat fake.err)"
for pid in $(cat launcher.pids); do
  alive "$pid" && fail "process $pid of the launcher's group outlived ferry stage"
done

# 2. MPICH's own mpiexec whose srun dies at once: Hydra never gives up by itself.
mpiexec=$("$FERRY_BUILD/ferry-mpi" --mpi | sed -n 2p)
if "$FERRY_BUILD/ferry-mpi" --mpi | head -1 | grep -q MPICH && [ -x "$mpiexec" ]; then
  cat >dying-srun <<'EOF'
#!/bin/sh
echo "srun: error: Unable to create step for job 5150: Job/step already completing or completed" >&2
exit 1
EOF
  cat >hydra-mpiexec <<EOF
#!/bin/sh
exec $mpiexec -launcher slurm -launcher-exec $TEST_DIR/dying-srun "\$@"
EOF
  chmod +x dying-srun hydra-mpiexec
  stage_hung hydra "$TEST_DIR/hydra-mpiexec"
  expect_contains "$error" "it said: "
  expect_contains "$error" "srun: error: Unable to create step for job 5150"
  left=$(pgrep -f "$TEST_DIR/hydra-mpiexec|$TEST_DIR/dying-srun|launcher-exec $TEST_DIR" || true)
  expect_eq "$left" "" "processes of the launcher outlived ferry stage"

  # 3. A stage whose ranks start goes through as before (one node: this host, PBS-style).
  hostname >nodefile
  out=$(PBS_JOBID=77.pbs PBS_NODEFILE=$TEST_DIR/nodefile timeout -s KILL 120 "$FERRY" stage env.tar.zst \
        --to "$TEST_DIR/ok/env" --via mpi --start-timeout 30 --json) || fail "a stage that starts failed: $out"
  expect_contains "$out" '"ok": true'
  "$TEST_DIR/ok/env/bin/python3" -c 'import sys; assert sys.prefix == sys.argv[1]' "$TEST_DIR/ok/env" ||
    fail "the staged env does not run from its place"
fi

expect_failure "--start-timeout 0: must be more than 0 seconds" \
  "${slurm_job[@]}" "$FERRY" stage env.tar.zst --to "$TEST_DIR/z/env" --via mpi --start-timeout 0
echo ok
