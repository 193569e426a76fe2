# ferry sweep on the 3-node cluster, through real sbatch arrays. A 12-point grid (3 x 4) with
# --throttle 2 on a cluster whose MaxArraySize is 10 (cluster.sh): two arrays with continuous
# indices, the second waiting for the first, and squeue, sampled throughout, never shows more than
# 2 of its tasks running. One point fails (exit 3) by its values; status says 11 done and 1 failed;
# once the cause is gone, resubmit --failed runs that point alone and status says 12 done. Then a
# point past its --time (a timeout, not a crash), values with spaces, quotes, * and $HOME byte for
# byte in a venv packed by ferry pack and staged by ferry stage to every node's /mnt (--env), cancel,
# and bad input (one line each, nothing submitted).
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"
command -v sbatch >/dev/null || skip "no sbatch"
expect_contains "$(scontrol show config)" "MaxArraySize            = 10"
PY=/usr/bin/python3
json_get() { "$PY" -c 'import json,sys; v=json.loads(sys.argv[1]); [v := v[int(k) if isinstance(v, list) else k] for k in sys.argv[2:]]; print(v)' "$@"; }
status_json() { "$FERRY" sweep status "$1" --json; }
# Waits until nothing of the sweep is pending or running (and its records are in).
settle() {  # settle DIR SECONDS
  local s
  for _ in $(seq $(($2 * 2))); do
    s=$(status_json "$1")
    [ "$(json_get "$s" pending)" = 0 ] && [ "$(json_get "$s" running)" = 0 ] && return 0
    sleep 0.5
  done
  fail "$1 did not settle in $2 s: $("$FERRY" sweep status "$1")"
}

# The record says timeout or cancelled as soon as the stop comes, before the command has ended:
# give the command's group ferry's grace (10 s) and Slurm's KillWait (5 s), and more on a busy
# machine, to be gone from every node (the nodes share this machine's processes).
gone_from_nodes() {  # gone_from_nodes SECONDS_SLEPT WHAT [SWEEP_DIR]
  local left end=$((SECONDS + 30))
  while [ "$SECONDS" -lt "$end" ]; do
    left=$(each_node "pgrep -cf '^sleep $1\$' || true")
    [ "$left" = "node1 0
node2 0
node3 0" ] && return 0
    sleep 0.2
  done
  fail "$2 is left after 30 s: $(ps -eo pid,ppid,pgid,stat,etime,args | grep "[s]leep $1"); its record: $(cat "${3:-$TEST_DIR/slow}/runs/0/result.json"); squeue: $(squeue --noheader --array 2>&1 | head -5)"
}

# The task: a "training run" that records its values and its index, takes a moment, and fails
# with exit 3 for the values named in fail-when (a bug, fixed by emptying the file).
cat >"$TEST_DIR/train.py" <<'PYEOF'
import json, os, sys, time
lr, layers, index = sys.argv[1:4]
time.sleep(1.5)
with open("metrics.json", "w") as f:
    json.dump({"lr": lr, "layers": layers, "index": int(index), "cwd": os.getcwd()}, f)
if open(os.environ["FAIL_WHEN"]).read().strip() == f"{lr}/{layers}":
    sys.exit(3)
PYEOF
# An env for some points below, packed and staged to every node's own /mnt first.
"$PY" -m venv "$TEST_DIR/venv"
"$FERRY" pack "$TEST_DIR/venv" -o "$TEST_DIR/venv.tar.zst" >/dev/null
ENV=/mnt/$TEST_NAME/env
CLUSTER_TIMEOUT=120 on_cluster salloc -N3 "$FERRY" stage "$TEST_DIR/venv.tar.zst" --to "$ENV" --via sbcast >/dev/null 2>&1
echo "0.3/8" >"$TEST_DIR/fail-when"
export FAIL_WHEN=$TEST_DIR/fail-when  # sbatch passes the environment on
S=$TEST_DIR/grid
out=$("$FERRY" sweep submit "$S" lr=0.1,0.2,0.3 layers=1,2,4,8 --throttle 2 -- \
  "$PY" "$TEST_DIR/train.py" '{lr}' '{layers}' '{index}')
expect_eq "$(grep -c ': job ' <<<"$out")" 2 "two arrays for 12 points past MaxArraySize 10: $out"
expect_contains "$out" "points 0+[0-9]: job "
expect_contains "$out" "points 10+[0-1]: job "
m=$(cat "$S/sweep.json")
jobs=$(json_get "$m" submissions 0 arrays | grep -o "'job_id': '[0-9]*'" | grep -o '[0-9]*' | paste -sd,)

# A point that runs past its time limit, and points whose values a shell would mangle, beside it,
# in an env staged to every node's own /mnt: the whole product.
tricky="it's \"q\" * \$HOME  two spaces"
# Each long command sleeps a number of its own, so that a check for what one left counts only it.
"$FERRY" sweep submit "$TEST_DIR/slow" n=1 --time 1 -- sh -c 'echo started; sleep 297' >/dev/null
"$FERRY" sweep submit "$TEST_DIR/words" "w=plain,$tricky" --env "$ENV" -- python3 -c \
  'import sys; open("got", "wb").write(sys.argv[1].encode()); open("prefix", "w").write(sys.prefix)' '{w}' >/dev/null

# Sample squeue while the grid runs: never more than 2 of its tasks running at once.
most=0
for _ in $(seq 480); do
  running=$(squeue --noheader --array --jobs="$jobs" --states=RUNNING --format=%i 2>/dev/null | wc -l)
  [ "$running" -gt "$most" ] && most=$running
  s=$(status_json "$S")
  [ "$(json_get "$s" pending)" = 0 ] && [ "$(json_get "$s" running)" = 0 ] && break
  sleep 0.25
done
echo "squeue: at most $most tasks of the grid running at once"
[ "$most" -le 2 ] || fail "$most tasks of a sweep throttled to 2 ran at once"
[ "$most" -ge 1 ] || fail "squeue never showed a task of the sweep running"
settle "$S" 60
status=$("$FERRY" sweep status "$S")
expect_contains "$status" "12 points: 11 done, 1 failed, 0 timeout, 0 cancelled, 0 running, 0 pending, 0 never ran"
expect_contains "$status" "11 failed (exit code 3)"
# The documented order (the last parameter fastest), each point in its own directory with its log.
for i in $(seq 0 11); do
  lrs=(0.1 0.2 0.3) layers=(1 2 4 8)
  got=$(cat "$S/runs/$i/metrics.json")
  expect_eq "$(json_get "$got" lr)/$(json_get "$got" layers)/$(json_get "$got" index)" \
    "${lrs[$((i / 4))]}/${layers[$((i % 4))]}/$i" "point $i"
  expect_eq "$(json_get "$got" cwd)" "$S/runs/$i"
  [ -f "$S/runs/$i/log" ] && [ -f "$S/runs/$i/result.json" ] || fail "point $i has no log or record"
done
expect_eq "$(ls "$S/logs" | wc -l)" 12 "one ferry log per array task"
before=$(stat -c %Y "$S/runs/3/result.json")

# The bug fixed: resubmit --failed runs point 11 alone (task 1 of the array at offset 10).
: >"$TEST_DIR/fail-when"
out=$("$FERRY" sweep resubmit "$S" --failed)
expect_eq "$(grep -c ': job ' <<<"$out")" 1 "one array: $out"
expect_contains "$out" "points 10+[1]: job "
expect_contains "$("$FERRY" sweep resubmit "$S" --failed --dry-run)" "nothing to resubmit"  # queued now
settle "$S" 60
expect_contains "$("$FERRY" sweep status "$S")" "12 points: 12 done, 0 failed"
expect_eq "$(json_get "$(cat "$S/runs/11/history/1.json")" exit_code)" 3 "the failed run is kept"
expect_eq "$(stat -c %Y "$S/runs/3/result.json")" "$before" "a done point was run again"
expect_eq "$(json_get "$(cat "$S/sweep.json")" submissions | grep -o "'job_id'" | wc -l)" 3 "the history of submissions"

# The words arrived byte for byte; the slow point is a timeout, not a crash.
settle "$TEST_DIR/words" 30
expect_eq "$(cat "$TEST_DIR/words/runs/1/got")" "$tricky"
expect_eq "$(cat "$TEST_DIR/words/runs/0/got")" "plain"
expect_eq "$(cat "$TEST_DIR/words/runs/1/prefix")" "$ENV" "the points ran in the staged env"
settle "$TEST_DIR/slow" 150
status=$("$FERRY" sweep status "$TEST_DIR/slow")
expect_contains "$status" "1 points: 0 done, 0 failed, 1 timeout"
expect_eq "$(json_get "$(cat "$TEST_DIR/slow/runs/0/result.json")" timeout)" True
# Past its limit, the point's shell and the sleep it started are ended with it.
gone_from_nodes 297 "the timed-out point's command"


# Cancel: one task running, three pending behind the throttle; all four end cancelled, nothing left.
C=$TEST_DIR/cancel
"$FERRY" sweep submit "$C" n=1,2,3,4 --throttle 1 -- sh -c 'echo started; exec sleep 298' >/dev/null
for _ in $(seq 200); do grep -q started "$C/runs/0/log" 2>/dev/null && break; sleep 0.2; done
expect_contains "$("$FERRY" sweep status "$C")" "1 running, 3 pending"
expect_contains "$("$FERRY" sweep cancel "$C")" "cancelled job "
settle "$C" 30
expect_contains "$("$FERRY" sweep status "$C")" "4 points: 0 done, 0 failed, 0 timeout, 4 cancelled"
expect_eq "$(json_get "$(cat "$C/runs/0/result.json")" cancelled)" True
gone_from_nodes 298 "a cancelled point's command" "$C"
out=$("$FERRY" sweep resubmit "$C" --missing --dry-run)
expect_contains "$out" "nothing to resubmit"  # cancelled, not missing: --failed takes them
expect_contains "$("$FERRY" sweep resubmit "$C" --failed --dry-run)" "--array=0-3%1"

# Bad input: one line each, a non-zero exit, nothing submitted.
queued=$(squeue --noheader | wc -l)
one_line_failure "unknown parameter {nope}" "$FERRY" sweep submit "$TEST_DIR/bad1" a=1,2 -- echo '{nope}'
one_line_failure "the sweep has no points" "$FERRY" sweep submit "$TEST_DIR/bad2" -- echo
one_line_failure "holds another sweep" "$FERRY" sweep submit "$S" lr=9 -- echo '{lr}'
one_line_failure "no sbatch on PATH" env PATH=/nonexistent "$FERRY" sweep submit "$TEST_DIR/bad3" a=1 -- echo '{a}'
# A scheduler that does not answer: the manifest is written first (by design), nothing queued.
one_line_failure "nothing was submitted" env -u SLURM_CONF "$FERRY" sweep submit "$TEST_DIR/bad4" a=1 -- echo '{a}'
expect_eq "$(squeue --noheader | wc -l)" "$queued" "bad input submitted something"
for d in bad1 bad2 bad3; do [ ! -e "$TEST_DIR/$d" ] || fail "bad input left $d"; done
echo "sweep: all good"
