# The job from a shell outside it: a shell entered into node2's namespaces with no Slurm variable
# (as after ssh to a compute node) finds the user's one job there and says so, lists two and asks
# for --job, and `ferry launch`/`ferry stage --job ID` from this machine (the login node) run on
# the job's nodes, beside a step of the job's own that holds every CPU it has.
# shellcheck source=tests/cluster/common.sh
source "$(dirname "$0")/common.sh"
command -v nsenter >/dev/null || skip "nsenter (util-linux) is needed to enter node2"

jobs=()
finish() {
  [ ${#jobs[@]} -gt 0 ] && scancel "${jobs[@]}" 2>/dev/null
  cleanup
}
trap finish EXIT

# A shell on node2 (its host name, network and /mnt) with nothing of the job in its environment.
on_node2() {
  local pid
  pid=$(cat "$FERRY_CLUSTER_DIR/run/slurmd-node2.pid")
  on_cluster nsenter -t "$pid" -u -m -n env -i PATH="$PATH" SLURM_CONF="$SLURM_CONF" \
    HOME="$TEST_DIR/home" "$@"
}
running() {  # running JOBID [STEP]: waits until the job (and its step) runs
  local _
  for _ in $(seq 150); do
    if [ "$(squeue -h -j "$1" -o %T 2>/dev/null)" = RUNNING ]; then
      [ -z "${2:-}" ] && return 0
      squeue -h -s -j "$1" -o %i 2>/dev/null | grep -qx "$1.$2" && return 0
    fi
    sleep 0.2
  done
  fail "job $1${2:+ step $2} is not running: $(squeue 2>&1)"
}
mkdir -p "$TEST_DIR/home"

# ---- No job: ferry job on node2 says "none", quietly.
out=$(on_node2 "$FERRY" job --json 2>"$TEST_DIR/err")
expect_eq "$(field "$out" scheduler)" none
expect_eq "$(cat "$TEST_DIR/err")" ""

# ---- One job on node[1-3], whose own step holds every CPU it has (an interactive srun --pty
#      does): node2's shell finds it; a launch from there runs on its 3 nodes beside that step.
a=$(sbatch --parsable -N3 --ntasks-per-node=1 -J "train llm" -o /dev/null --wrap 'srun sleep 300')
jobs+=("$a")
running "$a" 0
out=$(on_node2 "$FERRY" job --json 2>"$TEST_DIR/err")
expect_eq "$(field "$out" scheduler) $(field "$out" job_id) $(field "$out" hostlist)" "slurm $a node[1-3]"
expect_eq "$(field "$out" cpus_per_host)" "[1, 1, 1]"
expect_contains "$(cat "$TEST_DIR/err")" "job $a (train llm) on node[1-3], the only running job of yours on node2"
expect_eq "$(wc -l <"$TEST_DIR/err")" 1 "one line says which job: $(cat "$TEST_DIR/err")"
out=$(on_node2 "$FERRY" launch -- sh -c 'echo $(hostname) $SLURM_JOB_ID $RANK $WORLD_SIZE' 2>/dev/null | sort)
expect_eq "$out" "node1 $a 0 3
node2 $a 1 3
node3 $a 2 3"

# ---- From this machine, outside the job: --job ID launches into it and stages onto its nodes.
out=$(on_cluster "$FERRY" launch --job "$a" -- hostname 2>/dev/null | sort)
expect_eq "$out" "node1
node2
node3"
ENV=$(conda_fixture small)
"$FERRY" pack "$ENV" -o "$TEST_DIR/env.tar.zst" >/dev/null
D=/mnt/$TEST_NAME/env
out=$(CLUSTER_TIMEOUT=120 on_cluster "$FERRY" stage "$TEST_DIR/env.tar.zst" --to "$D" --via sbcast --job "$a" --json 2>&1)
/usr/bin/python3 - "$out" <<'PY'
import json, sys
j = json.loads(sys.argv[1][sys.argv[1].index("{"):sys.argv[1].rindex("}") + 1])
assert j["ok"], j
assert sorted(n["host"] for n in j["nodes"]) == ["node1", "node2", "node3"], j["nodes"]
PY
expect_eq "$(on_node2 "$D/bin/python3" -c 'import sys; print(sys.prefix)')" "$D"

# ---- A second job on node2: both listed, --job asked for; --job picks either.
b=$(sbatch --parsable -N1 -w node2 -J second -o /dev/null --wrap 'sleep 300')
jobs+=("$b")
running "$b"
rc=0
out=$(on_node2 "$FERRY" job 2>&1) || rc=$?
expect_eq "$rc" 2 "two jobs: a usage error ($out)"
expect_contains "$out" "this host (node2) is in 2 running jobs of yours: "
expect_contains "$out" "$a (train llm) on node[1-3]"
expect_contains "$out" "$b (second) on node2"
expect_contains "$out" "choose one with --job ID"
expect_eq "$(wc -l <<<"$out")" 1 "one line: $out"
out=$(on_node2 "$FERRY" job --job "$b" --json 2>"$TEST_DIR/err")
expect_eq "$(field "$out" job_id) $(field "$out" hostlist)" "$b node2"
expect_eq "$(cat "$TEST_DIR/err")" "" "--job says nothing more"
# job save --job: a file that a third shell sources to be in that job.
saved=$(on_node2 "$FERRY" job save --job "$b" --json)
expect_contains "$(field "$saved" file)" "$TEST_DIR/home/.cache/ferry/jobs/slurm-$b/env.sh"
expect_contains "$(cat "$(field "$saved" file)")" "SLURM_JOB_ID='$b'"
out=$(on_node2 "$FERRY" launch --job "$a" -- hostname 2>/dev/null | sort | tr '\n' ' ')
expect_eq "$out" "node1 node2 node3 "

# ---- Jobs that are not there, or not running: one line naming the job.
one_line_error 2 "--job 999999: no such job" "$FERRY" job --job 999999
c=$(sbatch --parsable -N3 --ntasks-per-node=2 -J waits -o /dev/null --wrap 'sleep 300')
jobs+=("$c")
one_line_error 2 "--job $c: the job is PENDING, not running" "$FERRY" job --job "$c"
echo ok
