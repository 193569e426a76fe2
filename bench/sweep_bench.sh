#!/usr/bin/env bash
# A 12-point sweep (3 x 4, at most 2 tasks at once) on the 3-node test cluster (bench.sh runs it
# with the cluster up), by ferry sweep and by submitit (PyPI), the tool users reach for from
# Python: the time to submit, the time until all 12 have ended, the files each writes, and what its
# status says once one point has failed. The same task for both: 1.5 s of sleep, then exit 3 for
# one point.
# Usage: bench/sweep_bench.sh FERRY WORK   (medians of SWEEP_RUNS runs)
set -euo pipefail
FERRY=$1
WORK=$2
SRC=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${SWEEP_RUNS:-3}
export FERRY_SOURCE=$SRC FERRY_BUILD=${FERRY_BUILD:-$SRC/build}
# shellcheck source=tests/fixtures/pypi_env.sh
. "$SRC/tests/fixtures/pypi_env.sh"
VENV=$(pypi_env submitit) || { echo "sweep: skipped (cannot install submitit from PyPI)"; exit 0; }
PY=$VENV/bin/python
now() { date +%s.%N; }

cat >"$WORK/task.py" <<'PYEOF'
import sys, time
def train(lr, layers):
    time.sleep(1.5)
    if (lr, layers) == ("0.3", "8"):
        sys.exit(3)
    return f"{lr}/{layers}"
if __name__ == "__main__":
    train(*sys.argv[1:3])
PYEOF
cat >"$WORK/submitit_sweep.py" <<'PYEOF'
# The same sweep with submitit: map_array over the grid, 2 at once. Prints the seconds to submit
# and to every result, then the jobs' states as submitit reports them.
import itertools, sys, time
import submitit
sys.path.insert(0, sys.argv[2])
from task import train
grid = list(itertools.product(["0.1", "0.2", "0.3"], ["1", "2", "4", "8"]))
ex = submitit.AutoExecutor(folder=sys.argv[1] + "/%j")
ex.update_parameters(slurm_array_parallelism=2, timeout_min=10)
t0 = time.time()
jobs = ex.map_array(train, [g[0] for g in grid], [g[1] for g in grid])
t1 = time.time()
for j in jobs:
    try:
        j.result()
    except Exception:
        pass
t2 = time.time()
states = {}
for j in jobs:
    states[j.state] = states.get(j.state, 0) + 1
print(f"{t1 - t0:.3f} {t2 - t0:.3f} " + ",".join(f"{k}:{v}" for k, v in sorted(states.items())))
PYEOF

ended() {  # ended DIR: how many points have a record
  "$FERRY" sweep status "$1" --json | "$PY" -c 'import json,sys; s=json.load(sys.stdin); print(s["done"] + s["failed"])'
}
ferry_run() {  # prints: submit-seconds all-ended-seconds
  local d=$WORK/ferry-sweep-$1 t0 t1
  t0=$(now)
  "$FERRY" sweep submit "$d" lr=0.1,0.2,0.3 layers=1,2,4,8 --throttle 2 --time 10 -- \
    /usr/bin/python3 "$WORK/task.py" '{lr}' '{layers}' >/dev/null
  t1=$(now)
  for _ in $(seq 1500); do [ "$(ended "$d")" = 12 ] && break; sleep 0.2; done
  echo "$(echo "$t1 - $t0" | bc) $(echo "$(now) - $t0" | bc)"
}
median() { sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"; }
: >"$WORK/sweep.times"
for i in $(seq "$RUNS"); do
  echo "ferry $(ferry_run "$i")" >>"$WORK/sweep.times"
  echo "submitit $(timeout -s KILL 300 "$PY" "$WORK/submitit_sweep.py" "$WORK/submitit-$i" "$WORK" 2>/dev/null)" >>"$WORK/sweep.times"
done
col() { grep "^$1 " "$WORK/sweep.times" | cut -d' ' -f"$2" | median; }
files() { find "$1" -type f | wc -l; }
printf '%-44s %9s %11s %7s\n' "sweep of 12 points, 2 at once, 3 nodes" "submit s" "all end s" "files"
printf '%-44s %9.2f %11.2f %7s\n' "ferry sweep (a manifest, a dir per point)" "$(col ferry 2)" "$(col ferry 3)" "$(files "$WORK/ferry-sweep-1")"
printf '%-44s %9.2f %11.2f %7s\n' "submitit map_array (pickles per task)" "$(col submitit 2)" "$(col submitit 3)" "$(files "$WORK/submitit-1")"
echo "  ferry sweep status: $("$FERRY" sweep status "$WORK/ferry-sweep-1" | head -1 | sed 's/^[^:]*: //')"
echo "  submitit's job.state: $(grep '^submitit ' "$WORK/sweep.times" | head -1 | cut -d' ' -f4-)"
