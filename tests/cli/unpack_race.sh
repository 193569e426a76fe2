#!/usr/bin/env bash
# Several ranks on one node unpack the same archive into the same DEST at once: all succeed, one
# does the work, the others wait for it and find DEST done; a later run is a no-op.
source "$(dirname "$0")/common.sh"
env=$(conda_fixture small)
"$FERRY" pack "$env" -o env.tar.zst --json >/dev/null
dest=$TEST_DIR/work/dest   # work/ does not exist yet: the ranks also race to create it
ranks=4 rounds=${FERRY_RACE_ROUNDS:-5}

listing() {
  (
    cd "$1"
    find . ! -path ./.ferry/unpacked.json \( -type l -printf '%p l %l\n' -o -printf '%p %y %m\n' \) | sort
    find . -type f ! -path ./.ferry/unpacked.json -print0 | sort -z | xargs -0 b2sum
  )
}
already_present() { "$DEBIAN_PYTHON" -c 'import json,sys; print(str(json.load(open(sys.argv[1]))["already_present"]).lower())' "$1"; }

"$FERRY" unpack env.tar.zst "$dest" --json >/dev/null
reference=$(listing "$dest")
rm -rf "$TEST_DIR/work"

for ((round = 0; round < rounds; round++)); do
  pids=()
  for ((r = 0; r < ranks; r++)); do
    "$FERRY" unpack env.tar.zst "$dest" --json >rank$r.json 2>rank$r.err &
    pids+=($!)
  done
  for r in "${!pids[@]}"; do
    wait "${pids[$r]}" || fail "round $round: rank $r failed: $(cat rank$r.err)"
    expect_eq "$(cat rank$r.err)" "" "stderr of rank $r"
  done
  workers=0
  for ((r = 0; r < ranks; r++)); do
    [ "$(already_present rank$r.json)" = true ] || workers=$((workers + 1))
  done
  expect_eq "$workers" 1 "ranks that unpacked in round $round (the others must find DEST present)"
  [ "$(listing "$dest")" = "$reference" ] || fail "round $round: DEST differs from an undisturbed unpack"
  expect_eq "$(ls -A "$TEST_DIR/work")" "$(printf '%s\n' .dest.ferry-lock dest)" "beside DEST after round $round"
  [ "$round" -eq $((rounds - 1)) ] || rm -rf "$TEST_DIR/work"
done

# A rerun finds DEST done and leaves it alone.
marker_before=$(stat -c '%i %Y' "$dest/.ferry/unpacked.json")
start=$(date +%s%N)
"$FERRY" unpack env.tar.zst "$dest" --json >rerun.json
rerun_ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "$(already_present rerun.json)" true "rerun"
[ "$rerun_ms" -lt 5000 ] || fail "the no-op rerun took ${rerun_ms} ms"
expect_eq "$(stat -c '%i %Y' "$dest/.ferry/unpacked.json")" "$marker_before" "marker after the rerun"
[ "$(listing "$dest")" = "$reference" ] || fail "the rerun changed DEST"
echo "$rounds rounds of $ranks concurrent unpacks; no-op rerun: ${rerun_ms} ms"
