#!/usr/bin/env bash
# ferry-mpi's broadcast into a bounded window, without the cluster: three ranks on this host play
# three nodes (each its own node name and its own DIR, through an MPMD mpiexec line). A window of
# one or two units makes every receiver reuse its buffers many times; each tree must match ferry
# unpack's. A node that fails mid-extraction (its disk fills up) must not hang the others: every
# node aborts, nothing is left, the report names the node.
source "$(dirname "$0")/common.sh"
# FERRY_MPI_PROGRAM: ferry-mpi (built against the default MPI) or ferry-mpi-openmpi.
program=$FERRY_BUILD/${FERRY_MPI_PROGRAM:-ferry-mpi}
[ -x "$program" ] || skip "$(basename "$program") was not built (no such MPI found at configure time)"
mpiexec=$("$program" --mpi | sed -n 2p)
[ -x "$mpiexec" ] || skip "no mpiexec for $(basename "$program")'s MPI"
# context VAR NAME DIR [WRAPPER...]: VAR becomes the MPMD context of one node. Open MPI also wants
# to be allowed as root and to run more ranks than cores.
openmpi=0
if "$program" --mpi | head -1 | grep -q "Open MPI"; then
  openmpi=1
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
context() {
  local -n into=$1
  local name=$2 dir=$3
  shift 3
  if [ "$openmpi" = 1 ]; then
    into=(-np 1 -x "SLURMD_NODENAME=$name" "$@" "$program" stage "$archive" "$dir")
  else
    into=(-n 1 -env SLURMD_NODENAME "$name" "$@" "$program" stage "$archive" "$dir")
  fi
}
env=$(conda_fixture full)
"$FERRY" pack "$env" -o env.tar.zst >/dev/null
archive=$TEST_DIR/env.tar.zst

# The tree with DIR written as @DIR@, so trees relocated to different DIRs compare.
tree_sum() {
  "$DEBIAN_PYTHON" - "$1" <<'PY'
import hashlib, os, sys
root = sys.argv[1]
h = hashlib.sha1()
for d, dirs, files in sorted(os.walk(root)):
    dirs.sort()
    for f in sorted(files):
        p = os.path.join(d, f)
        rel = os.path.relpath(p, root)
        if rel == ".ferry/unpacked.json":
            continue
        data = os.readlink(p).encode() if os.path.islink(p) else open(p, "rb").read()
        h.update(rel.encode() + b"\0" + data.replace(root.encode(), b"@DIR@"))
print(h.hexdigest())
PY
}
# Every node's DIR has the same length, so relocated binaries compare after the substitution.
"$FERRY" unpack env.tar.zst "$TEST_DIR/r/env" >/dev/null
want=$(tree_sum "$TEST_DIR/r/env")

stage3() {  # WINDOW [wrapper for node b...]: stage to $TEST_DIR/{a,b,c}/env
  local window=$1; shift
  local a b c start=()
  context a a "$TEST_DIR/a/env"
  a+=(${RANK0_FLAGS:-})
  context b b "$TEST_DIR/b/env" "$@"
  context c c "$TEST_DIR/c/env"
  [ "$openmpi" = 1 ] && start=(--oversubscribe)
  FERRY_MPI_WINDOW=$window timeout 120 "$mpiexec" "${start[@]}" "${a[@]}" : "${b[@]}" : "${c[@]}"
}
statuses() { grep '"status"' "$1" | "$DEBIAN_PYTHON" -c '
import json, sys
print(" ".join(r["host"] + ":" + r["status"] for r in map(json.loads, sys.stdin)))'; }

for window in 1 2; do
  rm -rf "$TEST_DIR"/{a,b,c}
  RANK0_FLAGS=--progress stage3 "$window" >out 2>err || fail "window $window: $(cat err)"
  expect_eq "$(statuses out)" "a:unpacked b:unpacked c:unpacked" "window $window"
  for n in a b c; do
    expect_eq "$(tree_sum "$TEST_DIR/$n/env")" "$want" "window $window: node $n's tree differs from ferry unpack's"
  done
done
"$TEST_DIR/b/env/bin/python3" -c 'import numpy, scipy' || fail "the staged env does not import numpy and scipy"

# --progress (ferry stage asks for it when it draws a bar): rank 0 reports the bytes sent, unit
# by unit, rising to every frame's bytes (the archive without its seek table).
frames_bytes=$("$DEBIAN_PYTHON" - "$archive" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
count = struct.unpack("<I", data[-9:-5])[0]
print(len(data) - (count * 8 + 9 + 8))
PY
)
grep '^{"progress"' out | "$DEBIAN_PYTHON" -c '
import json, sys
seen = [json.loads(l)["progress"] for l in sys.stdin]
assert len(seen) >= 10, seen
assert all(a < b for a, b in zip(seen, seen[1:])), seen
assert seen[-1] == int(sys.argv[1]), (seen[-1], sys.argv[1])
' "$frames_bytes" || fail "progress lines: $(grep -c progress out) lines, want rising to $frames_bytes"

# Node b's disk fills up mid-extraction (a 20 MB tmpfs in its own mount namespace): the others
# must not hang on its window, every node aborts, nothing is left, the report names node b.
if [ "$(id -u)" != 0 ] || ! unshare -m true 2>/dev/null; then
  echo "SKIPPED part: a full disk on one node needs root (mount namespaces)"
  echo ok
  exit 0
fi
rm -rf "$TEST_DIR"/{a,b,c}
mkdir -p "$TEST_DIR/b"
rc=0
stage3 1 unshare -m sh -c 'mount -t tmpfs -o size=20m tmpfs "$0" && exec "$@"' "$TEST_DIR/b" >out 2>err || rc=$?
[ "$rc" -ne 0 ] || fail "a node whose disk fills up must fail the stage"
st=$(statuses out)
expect_contains "$st" "b:failed"
expect_contains "$st" "a:aborted"
expect_contains "$st" "c:aborted"
expect_contains "$(cat out)" "No space left on device"
for n in a b c; do
  left=$(ls -A "$TEST_DIR/$n" 2>/dev/null | grep -v '\.ferry-lock$' || true)
  expect_eq "$left" "" "node $n keeps nothing"
done
echo ok
