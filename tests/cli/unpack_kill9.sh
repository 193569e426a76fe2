#!/usr/bin/env bash
# kill -9 at any moment of an unpack leaves DEST either absent or complete, never partial; the next
# unpack sweeps the dead run's temporary tree and produces the same tree as an undisturbed one.
source "$(dirname "$0")/common.sh"
env=$(conda_fixture small)
"$FERRY" pack "$env" -o env.tar.zst --json >/dev/null
dest=$TEST_DIR/work/dest
rounds=${FERRY_KILL9_ROUNDS:-24}

# listing DIR: every entry with its type and mode, symlink targets, file checksums (relative to DIR;
# the marker holds a timestamp and is checked separately).
listing() {
  (
    cd "$1"
    find . ! -path ./.ferry/unpacked.json \( -type l -printf '%p l %l\n' -o -printf '%p %y %m\n' \) | sort
    find . -type f ! -path ./.ferry/unpacked.json -print0 | sort -z | xargs -0 b2sum
  )
}
temp_trees() { find "$TEST_DIR/work" -maxdepth 1 -name '.dest.ferry-tmp-*' | wc -l; }

# The reference: an undisturbed unpack into the same DEST (relocation depends on the path); a
# second one, with the archive in the page cache, gives the time the kills spread over.
"$FERRY" unpack env.tar.zst "$dest" --json >/dev/null
reference=$(listing "$dest")
# every regular file in the listing got a checksum line
expect_eq "$(grep -c ' f ' <<<"$reference")" "$(grep -c '^[0-9a-f]\{128\} ' <<<"$reference")"
rm -rf "$dest"
start=$(date +%s%N)
"$FERRY" unpack env.tar.zst "$dest" --json >/dev/null
normal_ms=$((($(date +%s%N) - start) / 1000000))
rm -rf "$dest"

absent=0 complete=0 swept=0
for ((i = 0; i < rounds; i++)); do
  # Delays from 0 to 1.3x the undisturbed unpack time (process start included).
  delay_ms=$((i * normal_ms * 13 / 10 / (rounds - 1)))
  "$FERRY" unpack env.tar.zst "$dest" >/dev/null 2>&1 &
  pid=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true

  if [ -e "$dest" ] || [ -L "$dest" ]; then
    [ -f "$dest/.ferry/unpacked.json" ] || fail "round $i (${delay_ms} ms): DEST exists without the marker"
    [ "$(listing "$dest")" = "$reference" ] || fail "round $i (${delay_ms} ms): DEST is partial or wrong"
    complete=$((complete + 1))
    want_present=true
  else
    absent=$((absent + 1))
    want_present=false
  fi
  [ "$(temp_trees)" -eq 0 ] || swept=$((swept + 1))

  "$FERRY" unpack env.tar.zst "$dest" --json >rerun.json ||
    fail "round $i (${delay_ms} ms): the unpack after kill -9 failed"
  present=$("$DEBIAN_PYTHON" -c 'import json,sys; print(str(json.load(open(sys.argv[1]))["already_present"]).lower())' rerun.json)
  expect_eq "$present" "$want_present" "already_present after round $i"
  [ "$(listing "$dest")" = "$reference" ] || fail "round $i (${delay_ms} ms): rerun gave a different tree"
  expect_eq "$(temp_trees)" 0 "temporary trees left after the rerun of round $i"
  rm -rf "$dest"
done
echo "undisturbed unpack: ${normal_ms} ms; after kill -9: $absent absent, $complete complete," \
  "$swept left a temporary tree that the next run swept"
