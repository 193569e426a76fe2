# ferry sweep without a scheduler: submit --dry-run writes the manifest, run directories and
# scripts of a 3x4 grid; sweep run, with SLURM_ARRAY_TASK_ID set by hand, runs points with their
# values intact, records exit codes, a SIGTERM after Slurm's warning (SIGUSR1) as a timeout and
# one without it as a cancellation, keeps an earlier record in history/; the same for PBS's qsub
# lines and its time limit; bad input writes nothing.
source "$(dirname "$0")/common.sh"
command -v python3 >/dev/null || skip "no python3 to read the JSON"

tricky="it's \"q\" * \$HOME"
cmd=(sh -c 'printf %s "$1" > out; exit $2' sh '{word}' '{code}')
"$FERRY" sweep submit "$TEST_DIR/s" code=0,3,0 "word=plain,a\\,b,$tricky,{x}" --throttle 2 \
  --max-array-size 5 --dry-run -- "${cmd[@]}" > plan.txt
expect_contains "$(head -1 plan.txt)" "$TEST_DIR/s: 12 points in 3 arrays (MaxArraySize 5)"
expect_contains "$(sed -n 2p plan.txt)" "--array=0-4%2"
expect_contains "$(sed -n 4p plan.txt)" "--array=0-1%2"
# Throttled: the arrays after the first wait for the one before, so K bounds the whole sweep.
expect_contains "$(sed -n 3p plan.txt)" "--dependency=afterany:<the array before>"
expect_contains "$(sed -n 3p plan.txt)" "--signal=B:USR1@60"
expect_eq "$(ls "$TEST_DIR/s/runs" | sort -n | tr '\n' ' ')" "0 1 2 3 4 5 6 7 8 9 10 11 "
expect_contains "$(cat "$TEST_DIR/s/array-10.sbatch")" "sweep run '$TEST_DIR/s' --offset 10"
# The order: the last parameter fastest; the values byte for byte.
order=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))
print("|".join(p["code"]+":"+p["word"] for p in m["points"]))' "$TEST_DIR/s/sweep.json")
expect_eq "$order" "0:plain|0:a,b|0:$tricky|0:{x}|3:plain|3:a,b|3:$tricky|3:{x}|0:plain|0:a,b|0:$tricky|0:{x}"

# The same sweep again is fine; the task side, by hand.
"$FERRY" sweep submit "$TEST_DIR/s" code=0,3,0 "word=plain,a\\,b,$tricky,{x}" --dry-run -- "${cmd[@]}" >/dev/null
SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_JOB_ID=40 SLURM_JOB_ID=42 "$FERRY" sweep run "$TEST_DIR/s"
expect_eq "$(cat "$TEST_DIR/s/runs/2/out")" "$tricky"
rc=0; SLURM_ARRAY_TASK_ID=1 "$FERRY" sweep run "$TEST_DIR/s" --offset 5 || rc=$?
expect_eq "$rc" 3
expect_eq "$(cat "$TEST_DIR/s/runs/6/out")" "$tricky"
PBS_ARRAY_INDEX=1 "$FERRY" sweep run "$TEST_DIR/s" --offset 10
expect_eq "$(cat "$TEST_DIR/s/runs/11/out")" "{x}"
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
expect_eq "$(field "$TEST_DIR/s/runs/6/result.json" exit_code)" 3
expect_eq "$(field "$TEST_DIR/s/runs/2/result.json" job_id)" 42
expect_eq "$(field "$TEST_DIR/s/runs/2/result.json" array_job_id)" 40
expect_eq "$(field "$TEST_DIR/s/runs/2/result.json" timeout)" False
# A rerun keeps the record before it.
SLURM_ARRAY_TASK_ID=2 SLURM_JOB_ID=43 "$FERRY" sweep run "$TEST_DIR/s"
expect_eq "$(field "$TEST_DIR/s/runs/2/history/1.json" job_id)" 42
expect_eq "$(field "$TEST_DIR/s/runs/2/result.json" job_id)" 43

# Slurm's warning (SIGUSR1) is only noted: the command goes on. A SIGTERM after it is the time
# limit: a timeout. A SIGTERM without it (scancel): a cancellation. Either stops the command and
# what it started (its process group).
"$FERRY" sweep submit "$TEST_DIR/t" n=1,2,3 --dry-run -- sh -c 'sleep 600 & echo started; wait' >/dev/null
stop_point() {  # stop_point INDEX SIGNAL...: runs the point, sends the signals in turn
  local index=$1 pid sig
  shift
  SLURM_ARRAY_TASK_ID=$index "$FERRY" sweep run "$TEST_DIR/t" &
  pid=$!
  for _ in $(seq 100); do grep -q started "$TEST_DIR/t/runs/$index/log" 2>/dev/null && break; sleep 0.05; done
  for sig in "$@"; do kill "-$sig" $pid; sleep 0.3; done
  rc=0; wait $pid || rc=$?
}
stop_point 0 USR1 TERM
expect_eq "$rc" 143
expect_eq "$(field "$TEST_DIR/t/runs/0/result.json" timeout)" True
expect_eq "$(field "$TEST_DIR/t/runs/0/result.json" cancelled)" False
expect_eq "$(field "$TEST_DIR/t/runs/0/result.json" signal)" 15
stop_point 1 TERM
expect_eq "$(field "$TEST_DIR/t/runs/1/result.json" timeout)" False
expect_eq "$(field "$TEST_DIR/t/runs/1/result.json" cancelled)" True
# As Slurm does at the limit: SIGTERM to every process at once, the command's seen dead first.
SLURM_ARRAY_TASK_ID=2 "$FERRY" sweep run "$TEST_DIR/t" 2>"$TEST_DIR/t2.err" &
pid=$!
for _ in $(seq 100); do grep -q started "$TEST_DIR/t/runs/2/log" 2>/dev/null && break; sleep 0.05; done
kill -USR1 $pid
sleep 0.3
kill -TERM -- "-$(pgrep -P $pid)" && kill -TERM $pid
wait $pid || true
expect_eq "$(field "$TEST_DIR/t/runs/2/result.json" timeout)" True
expect_contains "$(cat "$TEST_DIR/t2.err")" "Slurm's warning (SIGUSR1): the time limit is near"
pgrep -f "^sleep 600$" >/dev/null && fail "the command's background sleep outlived its point"
status=$("$FERRY" sweep status "$TEST_DIR/s")
expect_contains "$status" "12 points: 2 done, 1 failed, 0 timeout, 0 cancelled, 0 running, 0 pending, 9 never ran"
expect_contains "$("$FERRY" sweep status "$TEST_DIR/t")" "0 timeout (signal 15)"
expect_contains "$("$FERRY" sweep status "$TEST_DIR/t")" "1 cancelled (signal 15)"
# Resubmission chooses from the records; without a scheduler, --dry-run shows the plan.
expect_contains "$("$FERRY" sweep resubmit "$TEST_DIR/s" --failed --dry-run)" "--array=6 "
expect_contains "$("$FERRY" sweep resubmit "$TEST_DIR/s" --index 0-1 --failed --dry-run)" "--array=0-1,6 "
expect_contains "$("$FERRY" sweep resubmit "$TEST_DIR/t" --failed --dry-run)" "--array=0-2 "
expect_failure "say which points: --failed, --missing or --index LIST" "$FERRY" sweep resubmit "$TEST_DIR/s"
expect_failure "--index 12: the sweep has points 0-11" "$FERRY" sweep resubmit "$TEST_DIR/s" --index 12

# PBS: the plan as qsub lines (ranges, a plain job for a lone task); the task side reads
# PBS_ARRAY_INDEX, or --task for a plain job; with no warning signal, a SIGTERM within the last
# 15 s of the script's --time-limit is the walltime's (a timeout), an earlier one a cancellation.
"$FERRY" sweep submit "$TEST_DIR/p" n=1,2,3,4,5 --scheduler pbs --throttle 2 --time 2:00 \
  --max-array-size 4 --dry-run -- sh -c 'sleep 600 & echo started; wait' > pbs.txt
expect_contains "$(head -1 pbs.txt)" "$TEST_DIR/p: 5 points in 2 PBS jobs (max_array_size 4)"
expect_contains "$(sed -n 2p pbs.txt)" "-J 0-3 -W max_run_subjobs=2 -l walltime=00:02:00"
expect_contains "$(sed -n 3p pbs.txt)" "depend=afterany:<the job before>"
expect_contains "$(cat "$TEST_DIR/p/array-4-0.pbs")" "--offset 4 --task 0 --time-limit 120"
pbs_stop() {  # pbs_stop INDEX LIMIT: runs the point with that limit, SIGTERM once it has started
  local pid
  "$FERRY" sweep run "$TEST_DIR/p" --task "$1" --time-limit "$2" &
  pid=$!
  for _ in $(seq 100); do grep -q started "$TEST_DIR/p/runs/$1/log" 2>/dev/null && break; sleep 0.05; done
  kill -TERM $pid
  wait $pid || true
}
pbs_stop 0 10
expect_eq "$(field "$TEST_DIR/p/runs/0/result.json" timeout)" True
pbs_stop 1 600
expect_eq "$(field "$TEST_DIR/p/runs/1/result.json" timeout)" False
expect_eq "$(field "$TEST_DIR/p/runs/1/result.json" cancelled)" True
"$FERRY" sweep submit "$TEST_DIR/p2" n=a,b --scheduler pbs --dry-run -- sh -c 'echo "$1"' sh '{n}' >/dev/null
PBS_ARRAY_INDEX=1 PBS_JOBID='7[1].server' "$FERRY" sweep run "$TEST_DIR/p2"
expect_eq "$(cat "$TEST_DIR/p2/runs/1/log")" "b"
expect_eq "$(field "$TEST_DIR/p2/runs/1/result.json" job_id)" "7[1].server"
expect_contains "$("$FERRY" sweep resubmit "$TEST_DIR/p" --failed --dry-run)" "-J 0-1 -W max_run_subjobs=2"
expect_failure "--scheduler 'lsf': expected slurm or pbs" \
  "$FERRY" sweep submit "$TEST_DIR/bad" a=1 --scheduler lsf --dry-run -- echo
expect_failure "--time '1h': expected minutes" \
  "$FERRY" sweep submit "$TEST_DIR/bad" a=1 --time 1h --dry-run -- echo
expect_failure "no qsub and qstat on PATH" \
  env PATH=/nonexistent "$FERRY" sweep submit "$TEST_DIR/bad" a=1 --scheduler pbs -- echo
expect_missing "$TEST_DIR/bad"

# --env: each point runs with the env activated (bin/ first, VIRTUAL_ENV), as ferry activate would.
python3 -m venv "$TEST_DIR/venv"
"$FERRY" sweep submit "$TEST_DIR/e" n=1 --env "$TEST_DIR/venv" --dry-run -- \
  sh -c 'echo "$VIRTUAL_ENV|$(command -v python3)"' >/dev/null
PYTHONHOME=/nowhere SLURM_ARRAY_TASK_ID=0 "$FERRY" sweep run "$TEST_DIR/e"
expect_eq "$(cat "$TEST_DIR/e/runs/0/log")" "$TEST_DIR/venv|$TEST_DIR/venv/bin/python3"
# The command itself is found on the env's PATH, not ferry's (python3 is also on ferry's).
"$FERRY" sweep submit "$TEST_DIR/e2" n=1 --env "$TEST_DIR/venv" --dry-run -- \
  python3 -c 'import sys; print(sys.prefix)' >/dev/null
SLURM_ARRAY_TASK_ID=0 "$FERRY" sweep run "$TEST_DIR/e2"
expect_eq "$(cat "$TEST_DIR/e2/runs/0/log")" "$TEST_DIR/venv"
mv "$TEST_DIR/venv" "$TEST_DIR/venv-gone"
expect_failure "--env $TEST_DIR/venv: not on this host" env SLURM_ARRAY_TASK_ID=0 "$FERRY" sweep run "$TEST_DIR/e"

# Points from a file.
printf 'lr,name\n0.1,"a, b"\n0.2,c\n' > points.csv
"$FERRY" sweep submit "$TEST_DIR/f" --from points.csv --dry-run --json -- echo '{name}' > f.json
expect_eq "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["points"])' f.json)" 2
SLURM_ARRAY_TASK_ID=0 "$FERRY" sweep run "$TEST_DIR/f"
expect_eq "$(cat "$TEST_DIR/f/runs/0/log")" "a, b"

# Bad input: one line each, nothing written.
expect_failure "command word '{nope}': unknown parameter {nope} (known: {a}, {index}, {dir})" \
  "$FERRY" sweep submit "$TEST_DIR/bad" a=1 --dry-run -- echo '{nope}'
expect_failure "the sweep has no points" "$FERRY" sweep submit "$TEST_DIR/bad" --dry-run -- echo
expect_failure "--zip: the lists differ in length: a has 2, b has 3" \
  "$FERRY" sweep submit "$TEST_DIR/bad" a=1,2 b=1,2,3 --zip --dry-run -- echo
expect_missing "$TEST_DIR/bad"
before=$(cat "$TEST_DIR/s/sweep.json")
expect_failure "$TEST_DIR/s: holds another sweep" \
  "$FERRY" sweep submit "$TEST_DIR/s" code=1 --dry-run -- echo '{code}'
expect_eq "$(cat "$TEST_DIR/s/sweep.json")" "$before"
expect_failure "neither SLURM_ARRAY_TASK_ID nor PBS_ARRAY_INDEX is set, and no --task" \
  env -u SLURM_ARRAY_TASK_ID -u PBS_ARRAY_INDEX "$FERRY" sweep run "$TEST_DIR/s"
expect_failure "SLURM_ARRAY_TASK_ID 12 with --offset 0 is point 12; the sweep has 12 points" \
  env SLURM_ARRAY_TASK_ID=12 "$FERRY" sweep run "$TEST_DIR/s"
echo "sweep: ok"
