# ferry stage on the 3-node cluster: the realistic env lands on every node's own /mnt, relocated,
# identical everywhere, usable from srun; every failure leaves no node with a partial env and names
# the host; a rerun redoes only what is missing.
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"
[ -x /usr/bin/python3 ] || skip "Debian's python3 is needed for the fixture"
ENV=$(conda_fixture full)
"$FERRY" pack "$ENV" -o "$TEST_DIR/env.tar.zst" >/dev/null
VIA=${STAGE_VIA:-sbcast}
# mpiexec on this machine must be told the bridge (its hostname resolves to 127.0.0.1).
[ "$VIA" = mpi ] && export HYDRA_IFACE=$FERRY_CLUSTER_IFACE
D=/mnt/$TEST_NAME

stage() { CLUSTER_TIMEOUT=${STAGE_TIMEOUT:-120} on_cluster salloc -N3 "$FERRY" stage "$@" --via "$VIA" 2>&1; }
# No node holds anything at DIR, a temporary tree, or an archive copy: "clean" per node.
leftovers() { each_node "ls -A $(dirname "$1") 2>/dev/null | grep -v -e '^$(basename "$1").ferry-lock\$' -e '\\.ferry-lock\$' | tr '\\n' ' ' || true"; }
expect_clean() {
  local out; out=$(leftovers "$1")
  expect_eq "$out" "node1
node2
node3" "nothing left beside $1: $out"
}

# ---- Success: every node gets the env at D/env, relocated there, identical, runnable.
out=$(stage "$TEST_DIR/env.tar.zst" --to "$D/env")
expect_contains "$out" "staged $D/env on 3 nodes"
for n in node1 node2 node3; do expect_contains "$out" "$n"; done
runs=$(each_node "$D/env/bin/python3 -c 'import numpy, scipy, sys; print(sys.prefix)'")
expect_eq "$runs" "node1 $D/env
node2 $D/env
node3 $D/env"
sums=$(each_node "cd $D/env && find . -type f ! -path ./.ferry/unpacked.json -print0 | sort -z | xargs -0 sha1sum | sha1sum | cut -c1-12" | cut -d' ' -f2 | sort -u)
expect_eq "$(echo "$sums" | wc -l)" 1 "the trees differ between nodes"
expect_eq "$(each_node "grep -c '$ENV' $D/env/bin/pip || true" | cut -d' ' -f2 | sort -u)" 0
expect_eq "$(leftovers "$D/env")" "node1 env
node2 env
node3 env" "only the env beside it (no copy, no temporary tree)"

# ---- A rerun with the env in place on two nodes only redoes the third.
on_cluster srun -N1 -w node2 rm -rf "$D/env"
out=$(stage "$TEST_DIR/env.tar.zst" --to "$D/env" --json)
/usr/bin/python3 - "$out" <<'PY'
import json, sys
j = json.loads(sys.argv[1][sys.argv[1].index("{"):sys.argv[1].rindex("}") + 1])
st = {n["host"]: n["status"] for n in j["nodes"]}
assert j["ok"] and st == {"node1": "present", "node2": "unpacked", "node3": "present"}, st
# Each node says what its part took of the node's memory: real (a process's resident set is
# megabytes at least) and bounded by the stage's window, not by the archive's size.
peaks = {n["host"]: n["peak_bytes"] for n in j["nodes"]}
assert all(1 << 20 < p < 512 << 20 for p in peaks.values()), peaks
PY
expect_eq "$(each_node "$D/env/bin/python3 -c 'import numpy; print(1)'" | cut -d' ' -f2 | tr '\n' ' ')" "1 1 1 "

# ---- The MPI path draws a progress bar on a terminal (script(1) gives it one) and stays quiet in
#      logs: the runs above had no terminal, and their output has no bar.
if [ "$VIA" = mpi ]; then
  case "$out" in *$'\r'*|*"stage ["*) fail "no terminal, yet a progress bar: $out" ;; esac
  tty_out=$(CLUSTER_TIMEOUT=120 on_cluster salloc -N3 script -qec "$FERRY stage $TEST_DIR/env.tar.zst --to $D/bar/env --via mpi" /dev/null 2>&1)
  expect_contains "$tty_out" "staged $D/bar/env on 3 nodes"
  expect_contains "$tty_out" "stage ["
  expect_contains "$tty_out" "100%"
fi

# ---- One node's disk fills up: every node aborts, the error names that node. With sbcast the
#      node's copy of the archive needs room too: a disk too small even for that fails earlier.
full_disk() {  # SIZE: node2's $D/full becomes a tmpfs of that size
  on_cluster srun -N1 -w node2 sh -c "mkdir -p $D/full && (umount $D/full 2>/dev/null; mount -t tmpfs -o size=$1 tmpfs $D/full)"
  on_cluster srun -N3 mkdir -p "$D/full"
  rc=0; out=$(stage "$TEST_DIR/env.tar.zst" --to "$D/full/env") || rc=$?
  [ "$rc" -ne 0 ] || fail "a full disk on node2 must fail the stage: $out"
  expect_contains "$out" "ferry: error: node2: "
  expect_eq "$(echo "$out" | grep -c 'ferry: error:')" 1 "only node2 failed: $out"
  expect_clean "$D/full/env"
}
full_disk 120m
expect_contains "$out" "No space left on device"
if [ "$VIA" = sbcast ]; then
  full_disk 40m
  expect_contains "$out" "could not write the archive copy"
fi

# ---- A read-only directory on one node: refused before anything moves.
on_cluster srun -N1 -w node3 sh -c "mkdir -p $D/ro && mount -t tmpfs -o ro,size=1m tmpfs $D/ro"
rc=0; out=$(stage "$TEST_DIR/env.tar.zst" --to "$D/ro/env") || rc=$?
[ "$rc" -ne 0 ] || fail "a read-only directory on node3 must fail the stage"
expect_contains "$out" "ferry: error: node3: $D/ro"
expect_contains "$out" "Read-only file system"
expect_eq "$(echo "$out" | grep -c 'ferry: error:')" 1 "only node3 failed: $out"
expect_clean "$D/ro/env"

# ---- A corrupted archive: checksum errors, nothing anywhere.
cp "$TEST_DIR/env.tar.zst" bad.tar.zst
size=$(stat -c %s bad.tar.zst)
printf 'corrupt!' | dd of=bad.tar.zst bs=1 seek=$((size / 2)) conv=notrunc status=none
rc=0; out=$(stage "$TEST_DIR/bad.tar.zst" --to "$D/bad/env") || rc=$?
[ "$rc" -ne 0 ] || fail "a corrupted archive must fail the stage"
# (the first node to find it fails; the others may be stopped before they do, and abort)
expect_contains "$out" "ferry: error: node"
expect_contains "$out" "corrupt"
expect_clean "$D/bad/env"

# ---- A foreign archive (plain tar.gz, as conda-pack writes): the MPI path streams only ferry's
#      frames and says so on every host; --via auto takes sbcast for it and succeeds.
if [ "$VIA" = mpi ]; then
  mkdir -p tiny/bin && echo hello > tiny/bin/greeting && tar -C tiny -czf tiny.tar.gz .
  rc=0; out=$(stage "$TEST_DIR/tiny.tar.gz" --to "$D/tiny") || rc=$?
  [ "$rc" -ne 0 ] || fail "--via mpi must refuse a foreign archive"
  expect_eq "$(echo "$out" | grep -c 'ferry: error: node.: .*not a ferry archive')" 3 "$out"
  out=$(CLUSTER_TIMEOUT=60 on_cluster salloc -N3 "$FERRY" stage "$TEST_DIR/tiny.tar.gz" --to "$D/tiny" --json 2>/dev/null)
  expect_contains "$out" '"via": "sbcast"'
  expect_contains "$out" '"ok": true'
  expect_eq "$(each_node "cat $D/tiny/bin/greeting" | cut -d' ' -f2 | tr '\n' ' ')" "hello hello hello "
fi

# ---- The launcher fails to start the ranks and does not exit: MPICH's mpiexec once the srun it
#      started has died waits forever. ferry stops it (and all it started) after --start-timeout,
#      prints what it said in one line, and no node holds anything.
if [ "$VIA" = mpi ]; then
  mpiexec=$("$FERRY_BUILD/ferry-mpi" --mpi | sed -n 2p)
  printf '#!/bin/sh\nexec srun --ferry-test-no-such-option "$@"\n' > dying-srun
  printf '#!/bin/sh\nexec %s -launcher-exec %s "$@"\n' "$mpiexec" "$TEST_DIR/dying-srun" > hydra
  chmod +x dying-srun hydra
  start=$(date +%s); rc=0
  out=$(FERRY_MPIEXEC=$TEST_DIR/hydra STAGE_TIMEOUT=100 stage "$TEST_DIR/env.tar.zst" --to "$D/hung/env" \
        --start-timeout 5) || rc=$?
  [ $(( $(date +%s) - start )) -lt 40 ] || fail "ferry stage waited past --start-timeout 5: $out"
  expect_eq "$rc" 1 "$out"
  expect_eq "$(grep -c 'ferry: error:' <<<"$out")" 1 "one line: $out"
  expect_contains "$out" "ferry: error: $TEST_DIR/hydra: the ranks did not start on every node within 5 s (--start-timeout); it said: Try \"srun --help\" for more information"
  expect_eq "$(pgrep -f "$TEST_DIR/(hydra|dying-srun)|-launcher-exec $TEST_DIR" || true)" "" "the launcher outlived ferry stage"
  expect_clean "$D/hung/env"
fi

# ---- A node dies mid-stage (its slurmd and every process on it killed): ferry does not hang,
#      names the node, and the other nodes keep nothing. Last: the cluster is restarted after.
( rc=0; STAGE_TIMEOUT=100 stage "$TEST_DIR/env.tar.zst" --to "$D/dead/env" --timeout 20 > dead.out || rc=$?; echo $rc > dead.rc ) &
for _ in $(seq 500); do
  ls -A "$FERRY_CLUSTER_LOCAL/node2/$TEST_NAME/dead" 2>/dev/null | grep -q 'ferry-tmp' && break
  sleep 0.02
done
# Whatever happens next, the next test gets a whole cluster again.
trap 'bash "$FERRY_SOURCE/tests/cluster/cluster.sh" start >/dev/null 2>&1; cleanup' EXIT
ip netns pids ferry-node2 | xargs -r kill -9
start=$(date +%s)
wait
[ $(( $(date +%s) - start )) -lt 60 ] || fail "ferry stage hung after node2 died"
expect_eq "$(cat dead.rc)" 1 "$(cat dead.out)"
expect_contains "$(cat dead.out)" "ferry: error: node2: "
expect_eq "$(grep -c 'ferry: error:' dead.out)" 1 "only node2 is named: $(cat dead.out)"
[ "$VIA" = sbcast ] && expect_contains "$(cat dead.out)" "ferry: error: node2: no report within 20 s"
for n in node1 node3; do
  left=$(ls -A "$FERRY_CLUSTER_LOCAL/$n/$TEST_NAME/dead" 2>/dev/null | grep -v 'ferry-lock' || true)
  expect_eq "$left" "" "$n keeps $left after node2 died"
done
echo ok
