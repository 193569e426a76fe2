#!/usr/bin/env bash
# What ferry's job commands leave to the user's processes and files:
# - the ranks of `ferry rank --spawn` (ferry launch's local launcher) die with a ferry that is
#   killed, even by kill -9: no rank keeps running with nobody to wait for it;
# - `ferry job save` and `ferry job load` agree where saved jobs are when XDG_CACHE_HOME is set but
#   empty (the XDG spec: as if unset, so ~/.cache).
source "$(dirname "$0")/common.sh"
clean=(env -i PATH="$PATH" HOME="$TEST_DIR/home")
mkdir -p "$TEST_DIR/home"

# alive PID: the process still runs (a zombie waiting for its reaper has ended).
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# Each rank writes its pid, then becomes `sleep 1000`.
"${clean[@]}" "$FERRY" rank --spawn 2 -- sh -c 'echo $$ > "$0/rank.$RANK"; exec sleep 1000' "$TEST_DIR" &
ferry_pid=$!
for _ in $(seq 500); do
  [ -s rank.0 ] && [ -s rank.1 ] && break
  sleep 0.02
done
[ -s rank.0 ] && [ -s rank.1 ] || fail "ferry rank --spawn 2 did not start its ranks"
ranks="$(cat rank.0) $(cat rank.1)"
for _ in $(seq 200); do  # until both have become sleep
  [ "$(cat /proc/"$(cat rank.0)"/comm /proc/"$(cat rank.1)"/comm 2>/dev/null | sort -u)" = sleep ] && break
  sleep 0.02
done
kill -9 "$ferry_pid"
wait "$ferry_pid" 2>/dev/null || true
left=""
for _ in $(seq 100); do
  left=""
  for pid in $ranks; do alive "$pid" && left="$left $pid"; done
  [ -z "$left" ] && break
  sleep 0.05
done
if [ -n "$left" ]; then
  kill $left 2>/dev/null || true  # the ranks this test started
  fail "ranks$left outlived the ferry rank --spawn that was killed with kill -9"
fi

# save and load with XDG_CACHE_HOME set but empty, outside any job.
out=$("${clean[@]}" XDG_CACHE_HOME= "$FERRY" job save) || fail "job save: $out"
expect_contains "$out" "saved $TEST_DIR/home/.cache/ferry/jobs/"
loaded=$("${clean[@]}" XDG_CACHE_HOME= "$FERRY" job load 2>&1) || fail "job load with an empty XDG_CACHE_HOME: $loaded"
expect_contains "$loaded" "export FERRY_"
expect_eq "$loaded" "$(cat "$TEST_DIR/home/.cache/ferry/jobs/latest")" "job load read another file"
shown=$("${clean[@]}" XDG_CACHE_HOME= "$FERRY" job show --json) || fail "job show: $shown"
expect_contains "$shown" "\"file\": \"$TEST_DIR/home/.cache/ferry/jobs/latest\""
echo ok
