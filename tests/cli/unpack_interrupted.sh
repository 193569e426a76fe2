#!/usr/bin/env bash
# SIGTERM (a batch system ending a job) or SIGINT (Ctrl-C) in the middle of an unpack or a pack:
# ferry removes its temporary tree or output before it ends, and ends by that signal (exit status
# 128 + signal, as a shell expects): nothing beside DEST or OUT but the lock file. A signal that
# was ignored when ferry started (nohup) stays ignored.
source "$(dirname "$0")/common.sh"
env=$(conda_fixture full)
"$FERRY" pack "$env" -o env.tar.zst --json >/dev/null
# Backgrounded commands of a script start with SIGINT ignored: give ferry the default back (exec:
# $! is then ferry itself).
with_default_sigint() {
  exec "$DEBIAN_PYTHON" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' "$@"
}
# wait_for DIR PATTERN: until an entry of DIR matches (ferry has started its temporary).
wait_for() {
  for _ in $(seq 2000); do
    compgen -G "$1/$2" >/dev/null && return 0
    sleep 0.005
  done
  fail "nothing like $2 appeared in $1"
}
beside() { (cd "$1" && ls -A | sort | tr '\n' ' '); }

# ---- unpack, SIGTERM and SIGINT.
for sig in TERM INT; do
  rm -rf w && mkdir w
  with_default_sigint "$FERRY" unpack env.tar.zst w/dest -j 1 >/dev/null 2>err.txt & pid=$!
  wait_for w '.dest.ferry-tmp-*'
  kill -s $sig $pid
  rc=0 && wait $pid || rc=$?
  want=$((128 + $(kill -l $sig)))
  expect_eq "$rc" "$want" "exit status of unpack after SIG$sig ($(cat err.txt))"
  expect_missing w/dest
  expect_eq "$(beside w)" ".dest.ferry-lock " "left beside DEST after SIG$sig"
  expect_eq "$(grep -c 'ferry: error' err.txt || true)" 0 "error lines after SIG$sig: $(cat err.txt)"
  # The next unpack simply works.
  "$FERRY" unpack env.tar.zst w/dest >/dev/null
  [ -f w/dest/.ferry/unpacked.json ] || fail "no complete DEST after the rerun"
done

# ---- pack, SIGINT and SIGTERM.
for sig in INT TERM; do
  rm -rf out && mkdir out
  with_default_sigint "$FERRY" pack "$env" -o out/env.tar.zst -j 1 >/dev/null 2>err.txt & pid=$!
  wait_for out '.env.tar.zst.ferry-tmp-*'
  # Some bytes written: the archive is under way, not only its name.
  sleep 0.3
  kill -s $sig $pid
  rc=0 && wait $pid || rc=$?
  expect_eq "$rc" "$((128 + $(kill -l $sig)))" "exit status of pack after SIG$sig ($(cat err.txt))"
  expect_missing out/env.tar.zst
  expect_eq "$(beside out)" ".env.tar.zst.ferry-lock " "left beside OUT after SIG$sig"
done

# ---- SIGHUP ignored at the start (nohup): the unpack goes on and completes.
rm -rf w && mkdir w
(trap '' HUP && exec "$FERRY" unpack env.tar.zst w/dest -j 1 >/dev/null) & pid=$!
wait_for w '.dest.ferry-tmp-*'
kill -s HUP $pid
wait $pid || fail "unpack under nohup ended by SIGHUP"
[ -f w/dest/.ferry/unpacked.json ] || fail "no complete DEST under nohup"
echo "interrupted unpacks and packs left nothing behind"
