#!/usr/bin/env bash
# Sweeps on the 3-node test cluster (bench.sh runs it with the cluster up; its MaxArraySize is 10)
# by ferry sweep and by submitit (PyPI), the tool users reach for from Python: 12 points (3 x 4),
# past MaxArraySize, and 9 (3 x 3), which fit one array; at most 2 tasks at once. The time to
# submit, the time until every point has ended, the files each writes, and what its status says
# once one point has failed. The same task for both: 1.5 s of sleep, then exit 3 for one point.
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
    if (lr, layers) == ("0.3", "4"):
        sys.exit(3)
    return f"{lr}/{layers}"
if __name__ == "__main__":
    train(*sys.argv[1:3])
PYEOF
cat >"$WORK/submitit_sweep.py" <<'PYEOF'
# The same sweep with submitit: map_array over the grid (layers: argv[3]), 2 at once. Prints the
# seconds to submit and to every result, then the jobs' states as submitit reports them; or why
# it could not submit.
import itertools, sys, time
import submitit
sys.path.insert(0, sys.argv[2])
from task import train
grid = list(itertools.product(["0.1", "0.2", "0.3"], sys.argv[3].split(",")))
ex = submitit.AutoExecutor(folder=sys.argv[1] + "/%j")
ex.update_parameters(slurm_array_parallelism=2, timeout_min=10)
t0 = time.time()
try:
    jobs = ex.map_array(train, [g[0] for g in grid], [g[1] for g in grid])
except Exception as e:
    print("refused:", str(e).strip().splitlines()[-1])
    sys.exit(0)
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
ferry_run() {  # ferry_run DIR LAYERS POINTS; prints: submit-seconds all-ended-seconds
  local t0 t1
  t0=$(now)
  "$FERRY" sweep submit "$1" lr=0.1,0.2,0.3 "layers=$2" --throttle 2 --time 10 -- \
    /usr/bin/python3 "$WORK/task.py" '{lr}' '{layers}' >/dev/null
  t1=$(now)
  for _ in $(seq 1500); do [ "$(ended "$1")" = "$3" ] && break; sleep 0.2; done
  echo "$(echo "$t1 - $t0" | bc) $(echo "$(now) - $t0" | bc)"
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
# Only the runs that finished (a run that hit the 300 s bound wrote no times).
col() { grep -E "^$1 [0-9.]+ [0-9.]+" "$WORK/sweep.times" | cut -d' ' -f"$2" | median; }
files() { find "$1" -type f 2>/dev/null | wc -l; }
for layers in 1,2,4,8 1,2,4; do
  n=$((3 * $(tr ',' '\n' <<<"$layers" | wc -l)))
  : >"$WORK/sweep.times"
  for i in $(seq "$RUNS"); do
    echo "ferry $(ferry_run "$WORK/ferry-$n-$i" "$layers" "$n")" >>"$WORK/sweep.times"
    echo "submitit $(timeout -s KILL 300 "$PY" "$WORK/submitit_sweep.py" "$WORK/submitit-$n-$i" "$WORK" "$layers" 2>/dev/null | tail -1)" >>"$WORK/sweep.times"
  done
  printf '%-44s %9s %11s %7s\n' "sweep of $n points, 2 at once, 3 nodes" "submit s" "all end s" "files"
  printf '%-44s %9.2f %11.2f %7s\n' "ferry sweep (a manifest, a dir per point)" "$(col ferry 2)" "$(col ferry 3)" "$(files "$WORK/ferry-$n-1")"
  if grep -q '^submitit refused' "$WORK/sweep.times"; then
    echo "submitit map_array: $(grep -m1 '^submitit refused' "$WORK/sweep.times" | cut -d' ' -f2-)"
  elif [ -z "$(col submitit 2)" ]; then
    echo "submitit map_array: no run finished within 300 s"
  else
    printf '%-44s %9.2f %11.2f %7s\n' "submitit map_array (pickles per task)" "$(col submitit 2)" "$(col submitit 3)" "$(files "$WORK/submitit-$n-1")"
    echo "  submitit's job.state: $(grep -m1 '^submitit ' "$WORK/sweep.times" | cut -d' ' -f4-)"
  fi
  echo "  ferry sweep status: $("$FERRY" sweep status "$WORK/ferry-$n-1" | head -1 | sed 's/^[^:]*: //')"
done
