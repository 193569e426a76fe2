#!/usr/bin/env bash
# Ray on the 3-node test cluster (bench.sh runs it with the cluster up): the time from the start
# command to a driver that sees all three nodes, and from the driver's end to the last process
# gone, for ferry ray against what users run today on the same allocation and env:
#   the seed's submit_multinode.sh recipe: srun the head, sleep 10, srun each worker, sleep 5
#   after each (its sleeps as written), then the driver;
#   ray symmetric-run (Ray >= 2.49) under srun, the same command on every node.
# Their driver calls ray.init() and waits for 3 live nodes, then prints the time. ferry starts its
# driver once the GCS lists every node; a driver that prints the time at once gives ferry's ready,
# and the others' driver under ferry gives the time a script's ray.init() sees every node.
# Usage: bench/ray_bench.sh FERRY WORK   (medians of RAY_RUNS runs)
set -euo pipefail
FERRY=$1
WORK=$2
SRC=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RAY_RUNS:-3}
export FERRY_SOURCE=$SRC FERRY_BUILD=${FERRY_BUILD:-$SRC/build}
# shellcheck source=tests/fixtures/pypi_env.sh
. "$SRC/tests/fixtures/pypi_env.sh"
VENV=$(pypi_env ray) || { echo "ray: skipped (cannot install ray from PyPI)"; exit 0; }
PY=$VENV/bin/python
RAY=$VENV/bin/ray

# The test nodes share /tmp (Ray's default directory); on a real cluster it is each node's own.
# The contenders get a node-local one, /mnt, as they would there (ferry makes its own per node).
LOCAL="env RAY_TMPDIR=/mnt/ray-bench"
cat >"$WORK/ray_driver.py" <<'EOF'
import time
import ray
ray.init()
deadline = time.time() + 120
while sum(n["Alive"] for n in ray.nodes()) < 3:
    if time.time() > deadline:
        raise SystemExit("3 nodes never joined")
    time.sleep(0.1)
print("READY", time.time(), flush=True)
EOF
# The seed's recipe, with the head's address from Slurm (NodeAddr: the names do not resolve here).
cat >"$WORK/seed.sh" <<EOF
nodes=(\$(scontrol show hostnames "\$SLURM_JOB_NODELIST"))
head=\${nodes[0]}
ip=\$(scontrol show node "\$head" | grep -o 'NodeAddr=[^ ]*' | cut -d= -f2)
srun --nodes=1 --ntasks=1 -w "\$head" $LOCAL $RAY start --head --node-ip-address="\$ip" --port=6379 --num-cpus 1 --block >/dev/null 2>&1 &
sleep 10
for node in "\${nodes[@]:1}"; do
  srun --nodes=1 --ntasks=1 -w "\$node" $LOCAL $RAY start --address "\$ip:6379" --num-cpus 1 --block >/dev/null 2>&1 &
  sleep 5
done
srun --overlap --nodes=1 --ntasks=1 -w "\$head" $LOCAL $PY -u $WORK/ray_driver.py
EOF
cat >"$WORK/symmetric.sh" <<EOF
export PATH=$VENV/bin:\$PATH  # the env active, as its docs assume (it runs "ray" itself)
head=\$(scontrol show hostnames "\$SLURM_JOB_NODELIST" | head -1)
ip=\$(scontrol show node "\$head" | grep -o 'NodeAddr=[^ ]*' | cut -d= -f2)
srun --nodes=3 --ntasks=3 $LOCAL $RAY symmetric-run --address "\$ip:6379" --min-nodes 3 --num-cpus=1 -- $PY -u $WORK/ray_driver.py
EOF
cat >"$WORK/ray.sh" <<EOF
set -u
export RAY_USAGE_STATS_ENABLED=0
run() {  # NAME CMD...: "<name> <ready seconds> <teardown seconds>"
  local name=\$1 s out e ready; shift
  s=\$(date +%s.%N)
  # To a file, not \$(...): a step left running after its salloc is killed keeps a pipe open.
  timeout -s KILL 240 "\$@" >$WORK/run.out 2>/dev/null
  e=\$(date +%s.%N)
  ready=\$(grep -o 'READY [0-9.]*' $WORK/run.out | cut -d' ' -f2 | head -1)
  [ -n "\$ready" ] && echo "\$name \$(echo "\$ready - \$s" | bc) \$(echo "\$e - \$ready" | bc)"
}
# What a contender leaves (symmetric-run's workers wait on; see below) must not hold the next
# run's ports or nodes: every process of this env's Ray killed, and the allocation drained.
clean() {
  scancel --user "\$(id -un)" 2>/dev/null
  pkill -KILL -f "$VENV/(bin/ray|bin/python|lib/python[0-9.]*/site-packages/ray/)" 2>/dev/null
  while squeue -h | grep -q .; do sleep 0.5; done
}
for i in \$(seq $RUNS); do
  clean
  run ferry salloc -N3 $FERRY ray --env $VENV -- $PY -c 'import time; print("READY", time.time(), flush=True)'
  clean
  run ferrydriver salloc -N3 $FERRY ray --env $VENV -- $PY -u $WORK/ray_driver.py
  # The others as their docs run them: no token.
  clean
  run seed env RAY_AUTH_MODE=disabled salloc -N3 bash $WORK/seed.sh
  clean
  run symmetric env RAY_AUTH_MODE=disabled timeout -s KILL 60 salloc -N3 bash $WORK/symmetric.sh
done
clean
EOF
timeout -s KILL 3600 bash "$WORK/ray.sh" >"$WORK/ray.times" 2>/dev/null || true
median() {  # median NAME COLUMN
  { grep "^$1 " "$WORK/ray.times" || true; } | cut -d' ' -f"$2" | sort -n | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'
}
f_ready=$(median ferry 2)
printf '%-44s %9s %11s %14s\n' "ray on 3 nodes (1 CPU each)" "ready s" "teardown s" "ferry faster"
row() {  # LABEL NAME
  local r d
  r=$(median "$2" 2)
  d=$(median "$2" 3)
  if [ -z "$r" ] || [ -z "$f_ready" ]; then
    printf '%-44s %9s\n' "$1" "failed"
    return
  fi
  [ "$2" = symmetric ] && d=0  # see below
  printf '%-44s %9.2f %11.2f %13.2fx\n' "$1" "$r" "$d" "$(echo "scale=2; $r / $f_ready" | bc)" |
    sed 's/ 0.00 \( *[0-9.]*x\)$/  n\/a \1/'
}
row "the seed's recipe (srun + sleep 10, 5, 5)" seed
row "ray symmetric-run (srun -n 3)" symmetric
row "ferry ray (token auth, one ray-node per node)" ferry
c=$(median ferrydriver 2)
# symmetric-run's teardown is `ray stop` on the head, which stops every Ray process of the user on
# that node; the test nodes share one PID namespace, so it stops every node's, and its workers
# then wait for the allocation to end. No number for it here.
echo "  (symmetric-run's teardown: not measurable on the test cluster, see bench/ray_bench.sh)"
[ -n "$c" ] && printf '%-44s %9.2f %11.2f\n' "  then a driver's ray.init() sees 3 nodes" "$c" "$(median ferrydriver 3)"
true
