# ferry job / launch / rank on the 3-node Slurm cluster: the allocation is read exactly, ranks
# start on every node with correct torch.distributed variables, a gloo all-reduce works across
# nodes through ferry launch alone, and MPICH's mpiexec with a PBS nodefile takes the PBS path.
# shellcheck source=tests/cluster/common.sh
source "$(dirname "$0")/common.sh"

# job --json inside salloc -N3: scheduler, job id, hosts in order, the generic Slurm machine.
on_cluster salloc -N3 "$FERRY" job --json > job.json 2>/dev/null
/usr/bin/python3 - job.json <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["scheduler"] == "slurm", j
assert j["job_id"].isdigit(), j
assert j["hosts"] == ["node1", "node2", "node3"], j["hosts"]
assert j["hostlist"] == "node[1-3]", j
assert j["machine"] == "generic-slurm" and j["launcher"] == "srun", j
assert j["launch"]["ranks"] == 3 and j["launch"]["nodes"] == 3, j["launch"]
PY

ranks() { sort | grep '^node' || true; }
probe='echo $(hostname) $RANK $LOCAL_RANK $WORLD_SIZE $LOCAL_WORLD_SIZE $NODE_RANK $MASTER_ADDR $MASTER_PORT'

# Defaults fill the allocation: one rank per node without GPUs.
out=$(on_cluster salloc -N3 "$FERRY" launch -- sh -c "$probe" 2>/dev/null | ranks)
expect_eq "$(echo "$out" | cut -d' ' -f1-6)" "node1 0 0 3 1 0
node2 1 0 3 1 1
node3 2 0 3 1 2"
# Every rank agrees on the master: the first host, by the address Slurm knows it by, and one port.
expect_eq "$(echo "$out" | cut -d' ' -f7-8 | sort -u | wc -l)" 1
expect_eq "$(echo "$out" | cut -d' ' -f7 | sort -u)" "10.77.0.11"

# Two ranks per node: local ranks 0 and 1 on each node, block placement.
out=$(on_cluster salloc -N3 -n6 "$FERRY" launch --ppn 2 -- sh -c "$probe" 2>/dev/null | ranks)
expect_eq "$(echo "$out" | cut -d' ' -f1-6)" "node1 0 0 6 2 0
node1 1 1 6 2 0
node2 2 0 6 2 1
node2 3 1 6 2 1
node3 4 0 6 2 2
node3 5 1 6 2 2"

# -n 2 uses the first two hosts only.
out=$(on_cluster salloc -N3 "$FERRY" launch -n 2 -- sh -c "$probe" 2>/dev/null | ranks)
expect_eq "$(echo "$out" | cut -d' ' -f1-2)" "node1 0
node2 1"

# Exit status passes through (the launcher replaces ferry).
rc=0
on_cluster salloc -N2 "$FERRY" launch -- sh -c 'exit 7' >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a failing rank must fail the launch"

# Too many ranks for the allocation: one clear line, nothing started.
out=$(on_cluster salloc -N2 "$FERRY" launch -n 5 --ppn 2 -- true 2>&1 || true)
expect_contains "$out" "ferry: error: -n 5 at 2 per node needs 3 nodes; the allocation has 2"

# A plain salloc -N3 holds one core per node here (CR_Core, SLURM_JOB_CPUS_PER_NODE=1(x3)): srun
# would refuse two ranks per node ("More processors requested than permitted"). ferry says so
# first, in one line with the numbers and the fix; the fix works.
out=$(on_cluster salloc -N3 "$FERRY" launch --ppn 2 -- sh -c "$probe" 2>&1 || true)
expect_contains "$out" "ferry: error: 2 ranks per node at 1 CPU each need 2 CPUs per node, but the job holds 1 on node1"
expect_contains "$out" "allocate with \`salloc --ntasks-per-node=2\` (or --exclusive)"
expect_eq "$(grep -c 'ferry: error:' <<<"$out")" 1 "one line: $out"
case "$out" in *"More processors"*|*node1\ 0\ 0*) fail "the launch was attempted: $out" ;; esac
out=$(on_cluster salloc -N3 --ntasks-per-node=2 "$FERRY" launch --ppn 2 -- sh -c "$probe" 2>/dev/null | ranks)
expect_eq "$(echo "$out" | cut -d' ' -f1 | uniq -c | tr -s ' ')" " 2 node1
 2 node2
 2 node3" "salloc --ntasks-per-node=2 then --ppn 2"

# Threads: 6 ranks on 3 nodes of 2 CPUs: each rank is told 1 thread (OpenMP, MKL, OpenBLAS) and
# Debian's torch runs 1, not one per CPU of the node; a user's own OMP_NUM_THREADS=3 is kept.
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  threads='import os, socket, torch; print(socket.gethostname(), os.environ["OMP_NUM_THREADS"], os.environ["MKL_NUM_THREADS"], os.environ["OPENBLAS_NUM_THREADS"], torch.get_num_threads())'
  out=$(CLUSTER_TIMEOUT=120 on_cluster salloc -N3 --ntasks-per-node=2 "$FERRY" launch --ppn 2 -- /usr/bin/python3 -c "$threads" 2>/dev/null | ranks)
  expect_eq "$out" "node1 1 1 1 1
node1 1 1 1 1
node2 1 1 1 1
node2 1 1 1 1
node3 1 1 1 1
node3 1 1 1 1" "one thread per rank of one CPU"
  out=$(OMP_NUM_THREADS=3 CLUSTER_TIMEOUT=120 on_cluster salloc -N3 --ntasks-per-node=2 "$FERRY" launch --ppn 2 -- /usr/bin/python3 -c "$threads" 2>/dev/null | ranks | cut -d' ' -f2- | sort -u)
  expect_eq "$out" "3 3 3 3" "the user's OMP_NUM_THREADS, kept"
  # ferry job shows its default plan's count: one rank per node, with both of its CPUs.
  job_out=$(on_cluster salloc -N3 --ntasks-per-node=2 "$FERRY" job 2>/dev/null)
  expect_contains "$job_out" "threads     2 per rank"
  expect_contains "$job_out" " -c 2 "
fi

# torch.distributed with gloo across two nodes, with no setup but ferry launch.
if /usr/bin/python3 -c 'import torch.distributed' 2>/dev/null; then
  cat > allreduce.py <<'PY'
import socket, torch, torch.distributed as dist
dist.init_process_group("gloo")
t = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(t)
print(socket.gethostname(), dist.get_rank(), dist.get_world_size(), int(t.item()), flush=True)
dist.destroy_process_group()
PY
  out=$(CLUSTER_TIMEOUT=120 on_cluster salloc -N2 "$FERRY" launch -- /usr/bin/python3 "$TEST_DIR/allreduce.py" 2>/dev/null | ranks)
  expect_eq "$out" "node1 0 2 3
node2 1 2 3"
else
  echo "note: Debian's python3-torch is not installed; the all-reduce step did not run"
  [ -n "${CI:-}" ] && fail "python3-torch must be installed in CI (scripts/install-deps.sh)"
fi

# The PBS path: a nodefile with one line per slot (mpiprocs=2), MPICH's mpiexec (Hydra) starting
# the proxies through Slurm, no SLURM_* variables in ferry's view.
printf 'node1\nnode1\nnode2\nnode2\nnode3\nnode3\n' > nodefile
pbs_env=(env PBS_JOBID=4242.pbs-server PBS_NODEFILE="$TEST_DIR/nodefile" HYDRA_BOOTSTRAP=slurm
         HYDRA_IFACE="$FERRY_CLUSTER_IFACE" HOME="$TEST_DIR")
"${pbs_env[@]}" "$FERRY" job --json > pbs.json
/usr/bin/python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["scheduler"] == "pbs" and j["job_id"] == "4242.pbs-server", j
assert j["hosts"] == ["node1", "node2", "node3"] and j["slots_per_host"] == [2, 2, 2], j
assert j["machine"] == "generic-pbs" and j["launcher"] == "mpich", j
' pbs.json
line=$("${pbs_env[@]}" "$FERRY" launch --dry-run -- hostname)
expect_contains "$line" "mpiexec -n 3 -ppn 1 -f $TEST_DIR/.cache/ferry/jobs/pbs-4242.pbs-server/hostfile-"
hostfile=$(echo "$line" | sed 's/.* -f \([^ ]*\) .*/\1/')
expect_eq "$(cat "$hostfile")" "node1
node2
node3"
probe_pmi='echo $(hostname) $RANK $LOCAL_RANK $WORLD_SIZE $LOCAL_WORLD_SIZE $PMI_RANK'
out=$("${pbs_env[@]}" timeout -s KILL 60 "$FERRY" launch --ppn 2 -- sh -c "$probe_pmi" 2>/dev/null | ranks)
expect_eq "$out" "node1 0 0 6 2 0
node1 1 1 6 2 1
node2 2 0 6 2 2
node2 3 1 6 2 3
node3 4 0 6 2 4
node3 5 1 6 2 5"

# job save in the job, then a second shell (no Slurm variables) sources it and sees the same job.
on_cluster salloc -N3 env HOME="$TEST_DIR" "$FERRY" job save --json > saved.json 2>/dev/null
file=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["file"])' saved.json)
expect_contains "$file" "$TEST_DIR/.cache/ferry/jobs/slurm-"
out=$(env -i PATH="$PATH" HOME="$TEST_DIR" bash -c 'eval "$("$0" job load)"; echo "$FERRY_NHOSTS $SLURM_JOB_NODELIST"; "$0" job --json' "$FERRY")
expect_contains "$out" "3 node[1-3]"
expect_contains "$out" '"hostlist": "node[1-3]"'
show=$(env -i PATH="$PATH" HOME="$TEST_DIR" "$FERRY" job show --json)
expect_contains "$show" '"FERRY_JOB_SCHEDULER": "slurm"'
expect_contains "$show" '"FERRY_LAUNCH": "srun -N 3 -n 3'
echo ok
