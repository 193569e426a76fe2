#!/usr/bin/env bash
# Dask on the 3-node test cluster (bench.sh runs it with the cluster up): the time from the start
# command to three workers connected (one per node), and from the client's end to the last
# process gone, for ferry dask against what users run today on the same allocation and env:
#   dask-mpi (PyPI, on mpi4py built against Debian's MPICH), its batch mode under mpiexec;
#   dask-jobqueue's SLURMRunner (PyPI) under srun.
# The others' client is the same: connect, wait_for_workers(3), print the time, exit; it starts
# beside their scheduler, so its start-up overlaps theirs.
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

cat >"$WORK/ready.py" <<'EOF'
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
initialize(nthreads=1, interface="eth0")  # its default dashboard, as ferry; eth0: names resolve to loopback here
from distributed import Client
with Client() as c:
    c.wait_for_workers(3, timeout=120)
    print("READY", time.time(), flush=True)
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
# ferry says itself when every worker has joined (the start line's seconds, from its start) and
# how long its teardown took; its client starts only then, so the client's own start-up is not
# ferry's.
ferry_run() {
  local out
  out=\$(timeout -s KILL 90 $FERRY dask --env $VENV --threads-per-worker 1 --json -- $PY $WORK/ready.py 2>&1)
  echo "ferry \$(grep -o '"seconds": [0-9.]*' <<<"\$out" | grep -o '[0-9.]*\$') \$(grep -o 'stopped in [0-9.]*' <<<"\$out" | grep -o '[0-9.]*\$')"
}
for i in \$(seq $RUNS); do
  ferry_run
  run daskmpi mpiexec.mpich -iface $IFACE -n 5 -hosts node1:3,node2:1,node3:1 $PY $WORK/daskmpi_batch.py
  run runner srun -O -N3 -n5 -m arbitrary -w node1,node1,node1,node2,node3 $PY $WORK/runner.py $WORK
done
EOF
timeout -s KILL 1800 salloc -N3 bash "$WORK/dask.sh" 2>/dev/null >"$WORK/dask.times" || true
median() {  # median NAME COLUMN
  grep "^$1 " "$WORK/dask.times" | cut -d' ' -f"$2" | sort -n | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'
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
row "dask-mpi batch (mpiexec -n 5, mpi4py)" daskmpi
row "dask-jobqueue SLURMRunner (srun -n 5)" runner
if [ -n "$f_ready" ]; then
  printf '%-44s %9.2f %11.2f %14s\n' "ferry dask (TLS, one dask-node per node)" "$f_ready" "$f_down" "1.00x"
else
  printf '%-44s %9s\n' "ferry dask" "failed"
fi
