#!/usr/bin/env bash
# The MPI path on Open MPI (the cluster and stage_mpi_window.sh run it on MPICH): ferry-mpi built
# against Open MPI streams into bounded windows on three nodes played by one host, fails cleanly
# when one node's disk fills, and `ferry stage` itself drives Open MPI's mpirun in a PBS-style job.
source "$(dirname "$0")/common.sh"
[ -x "$FERRY_BUILD/ferry-mpi-openmpi" ] || skip "Open MPI is not installed beside the default MPI (no ferry-mpi-openmpi)"
FERRY_MPI_PROGRAM=ferry-mpi-openmpi bash "$FERRY_SOURCE/tests/cli/stage_mpi_window.sh" >window.out 2>&1 ||
  fail "the window scenarios on Open MPI: $(tail -5 window.out)"

# ferry stage picks the ferry-mpi beside it: a ferry whose ferry-mpi is the Open MPI build.
mkdir bin
cp "$FERRY" bin/ferry
cp "$FERRY_BUILD/ferry-mpi-openmpi" bin/ferry-mpi
env=$(conda_fixture small)
"$FERRY" pack "$env" -o env.tar.zst >/dev/null
hostname >nodefile
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(PBS_JOBID=77.pbs PBS_NODEFILE=$TEST_DIR/nodefile timeout 120 bin/ferry stage env.tar.zst --to "$TEST_DIR/node/env" --via mpi --json) ||
  fail "ferry stage through Open MPI failed: $out"
"$DEBIAN_PYTHON" - "$out" <<'PY' || fail "report: $out"
import json, sys
j = json.loads(sys.argv[1])
assert j["ok"] and j["via"] == "mpi", j
assert [n["status"] for n in j["nodes"]] == ["unpacked"], j["nodes"]
assert "launch" in j["phases"] and "broadcast" in j["phases"], j["phases"]
PY
"$TEST_DIR/node/env/bin/python3" -c 'import sys; assert sys.prefix == sys.argv[1]' "$TEST_DIR/node/env" ||
  fail "the env staged through Open MPI does not run from its place"
echo ok
