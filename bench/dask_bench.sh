#!/usr/bin/env bash
# Dask on the 3-node test cluster (bench.sh runs it with the cluster up): the time from the start
# command to three workers connected (one per node), and from the client's end to the last
# process gone, for ferry dask against what users run today on the same allocation and env:
#   dask-mpi (PyPI, on mpi4py built against Debian's MPICH), its batch mode under mpiexec;
#   dask-jobqueue's SLURMRunner (PyPI) under srun;
#   the seed's start_daskmpi.py, written from its description (mpi4py, polls), under mpiexec.
# The others' client connects, waits for 3 workers, prints the time and exits; it starts beside
# their scheduler, so its start-up overlaps theirs.
# Usage: bench/dask_bench.sh FERRY WORK   (medians of DASK_RUNS runs)
set -euo pipefail
FERRY=$1
WORK=$2
SRC=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${DASK_RUNS:-5}
BUILD=${FERRY_BUILD:-$SRC/build}

# The Dask env of the tests, plus the contenders, pinned. mpi4py is built from source against
# MPICH (the wheel wants a libmpi.so.12 Debian does not ship): once per build tree, minutes.
VENV="$BUILD/fixtures/dask-bench-venv"
REQ="$SRC/tests/fixtures/dask-requirements.txt"
stamp="$(sha1sum "$REQ" | cut -c1-12)-mpi4py4.1.2-daskmpi2026.3.0-jobqueue0.9.0"
if [ "$(cat "$VENV/.built" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-binary mpi4py -r "$REQ" \
    mpi4py==4.1.2 dask-mpi==2026.3.0 dask-jobqueue==0.9.0 >/dev/null 2>&1 ||
    { echo "dask: skipped (cannot install dask-mpi, dask-jobqueue and mpi4py from PyPI)"; rm -rf "$VENV"; exit 0; }
  echo "$stamp" >"$VENV/.built"
fi
PY=$VENV/bin/python
IFACE=${FERRY_CLUSTER_IFACE:-ferrybr0}

cat >"$WORK/client.py" <<'EOF'
import time
from distributed import Client
with Client(timeout=120) as c:
    c.wait_for_workers(3, timeout=120)
    print("READY", time.time(), flush=True)
EOF
cat >"$WORK/daskmpi_batch.py" <<'EOF'
# dask-mpi's batch mode: rank 0 the scheduler, rank 1 this client, the others workers.
import time
from dask_mpi import initialize
initialize(nthreads=1, interface="eth0")  # its default dashboard; eth0: names resolve to loopback here
from distributed import Client
with Client() as c:
    c.wait_for_workers(3, timeout=120)
    print("READY", time.time(), flush=True)
EOF
cat >"$WORK/seed_launcher.py" <<'EOF'
# The seed's start_daskmpi.py (ThetaGPU guide) as ../shared/research/modules-containers-runtimes.md
# section 3.3 describes it, in our own words (with today's `dask scheduler` for dask-scheduler):
# rank 0 empties the log directory, starts the scheduler and polls its scheduler file; the other ranks start dask-worker --no-nanny and
# poll their log for the connection line; polls once a second (assumed), 20 at most; then rank 0's
# client, which shuts the cluster down at the end.
import os, shutil, subprocess, sys, time
from mpi4py import MPI
comm = MPI.COMM_WORLD
rank = comm.Get_rank()
logs = sys.argv[1]
sched = os.path.join(logs, "scheduler.json")
bindir = os.path.dirname(sys.executable)
if rank == 0:
    shutil.rmtree(logs, ignore_errors=True)
    os.makedirs(logs)
    with open(os.path.join(logs, "scheduler.log"), "w") as log:
        proc = subprocess.Popen([bindir + "/dask", "scheduler", "--interface", "eth0", "--scheduler-file", sched], stdout=log, stderr=log)
    for _ in range(20):
        if os.path.exists(sched) and "address" in open(sched).read():
            break
        time.sleep(1)
comm.barrier()
if rank != 0:
    path = os.path.join(logs, "worker-%d.log" % rank)
    with open(path, "w") as log:
        proc = subprocess.Popen([bindir + "/dask", "worker", "--no-nanny", "--nthreads", "1", "--interface", "eth0", "--scheduler-file", sched], stdout=log, stderr=log)
    for _ in range(20):
        if "Starting established connection" in open(path).read():
            break
        time.sleep(1)
comm.barrier()
if rank == 0:
    from distributed import Client
    with Client(scheduler_file=sched) as c:
        print("READY", time.time(), flush=True)
        c.shutdown()
proc.wait()
EOF
cat >"$WORK/runner.py" <<'EOF'
# dask-jobqueue's batch runner: SLURM_PROCID 0 the scheduler, 1 this client, the others workers.
import os, sys, time
from dask_jobqueue.slurm import SLURMRunner
from distributed import Client
# eth0: the nodes' names resolve to loopback here, the interface is what a user sets.
with SLURMRunner(scheduler_file=os.path.join(sys.argv[1], "scheduler-{job_id}.json"),
                 scheduler_options={"interface": "eth0"},
                 worker_options={"nthreads": 1, "interface": "eth0"}) as runner:
    with Client(runner) as c:
        c.wait_for_workers(3, timeout=120)
        print("READY", time.time(), flush=True)
EOF
cat >"$WORK/dask.sh" <<EOF
set -u
# One run of CMD: "<ready seconds> <teardown seconds>", from the start, the client's READY time
# and the end of the command.
run() {
  local name=\$1 s out e ready; shift
  s=\$(date +%s.%N)
  out=\$(timeout -s KILL 90 "\$@" 2>/dev/null)
  e=\$(date +%s.%N)
  ready=\$(grep -o 'READY [0-9.]*' <<<"\$out" | cut -d' ' -f2 | head -1)
  [ -n "\$ready" ] && echo "\$name \$(echo "\$ready - \$s" | bc) \$(echo "\$e - \$ready" | bc)"
}
# ferry starts its command once every worker has joined: a command that prints the time at once
# gives ferry's ready, measured from the outside as the others are. The others' client, run under
# ferry, gives the time a script's Client() sees every worker: its import of distributed starts
# only then, where the others' overlaps their start.
for i in \$(seq $RUNS); do
  run ferry $FERRY dask --env $VENV --threads-per-worker 1 -- $PY -c 'import time; print("READY", time.time(), flush=True)'
  run ferryclient $FERRY dask --env $VENV --threads-per-worker 1 -- $PY $WORK/client.py
  run daskmpi mpiexec.mpich -iface $IFACE -n 5 -hosts node1:3,node2:1,node3:1 $PY $WORK/daskmpi_batch.py
  run seed mpiexec.mpich -iface $IFACE -n 4 -hosts node1:2,node2:1,node3:1 $PY $WORK/seed_launcher.py $WORK/seed-logs
  run runner srun -O -N3 -n5 -m arbitrary -w node1,node1,node1,node2,node3 $PY $WORK/runner.py $WORK
done
EOF
timeout -s KILL 1800 salloc -N3 bash "$WORK/dask.sh" 2>/dev/null >"$WORK/dask.times" || true
median() {  # median NAME COLUMN
  { grep "^$1 " "$WORK/dask.times" || true; } | cut -d' ' -f"$2" | sort -n | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'
}
f_ready=$(median ferry 2)
f_down=$(median ferry 3)
printf '%-44s %9s %11s %14s\n' "dask on 3 nodes (3 workers, 1 thread each)" "ready s" "teardown s" "ferry faster"
row() {  # LABEL NAME
  local r d
  r=$(median "$2" 2)
  d=$(median "$2" 3)
  if [ -z "$r" ]; then
    printf '%-44s %9s\n' "$1" "failed"
    return
  fi
  printf '%-44s %9.2f %11.2f %13.2fx\n' "$1" "$r" "$d" "$(echo "scale=2; $r / $f_ready" | bc)"
}
row "the seed's start_daskmpi.py (as described)" seed
row "dask-mpi batch (mpiexec -n 5, mpi4py)" daskmpi
row "dask-jobqueue SLURMRunner (srun -n 5)" runner
if [ -n "$f_ready" ]; then
  printf '%-44s %9.2f %11.2f %14s\n' "ferry dask (TLS, one dask-node per node)" "$f_ready" "$f_down" "1.00x"
else
  printf '%-44s %9s\n' "ferry dask" "failed"
fi
c=$(median ferryclient 2)
[ -n "$c" ] && printf '%-44s %9.2f %11.2f\n' "  then a client's Client() sees 3 workers" "$c" "$(median ferryclient 3)"
true
