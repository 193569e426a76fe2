#!/usr/bin/env bash
# The simulated stage (make simulate) on small platforms, so that it keeps building and keeps
# meaning what it says: ferry-mpi-simulated, the choreography of ferry-mpi on SimGrid's SMPI with
# each node's extraction a modelled delay, stages a real archive of the conda fixture to the
# 3-node test platform: every node reports it unpacked with the archive's file count, in the
# simulated time the node model gives for it; a node failing mid-stage leaves every node aborted;
# a bad model is refused in one line. The recipe's program (sbcast's tree) runs beside it.
source "$(dirname "$0")/common.sh"

SIM=$FERRY_BUILD/ferry-mpi-simulated
RECIPE=$FERRY_BUILD/recipe-simulated
[ -e "$SIM" ] && [ -e "$RECIPE" ] || skip "no ferry-mpi-simulated in $FERRY_BUILD (SimGrid's libsimgrid-dev is not installed)"
command -v smpirun >/dev/null || skip "no smpirun on PATH (SimGrid's libsimgrid-dev)"

env_prefix=$(conda_fixture small)
"$FERRY" pack "$env_prefix" -o fixture.tar.zst >/dev/null
"$FERRY" inspect fixture.tar.zst --json >inspect.json
read -r files bytes archive_bytes < <(python3 -c '
import json; i = json.load(open("inspect.json")); print(i["files"], i["bytes"], i["archive_bytes"])')
[ "$files" -gt 1000 ] || fail "the fixture's archive holds only $files files"

printf 'node1\nnode2\nnode3\n' >hosts3
# simulate HOSTFILE PLATFORM PROGRAM ARGS...: rank 0's output; its exit status is smpirun's.
simulate() {
  local hosts=$1 platform=$2
  shift 2
  smpirun -np "$(wc -l <"$hosts")" -platform "$platform" -hostfile "$hosts" -no-privatize \
    --cfg=smpi/simulate-computation:no --cfg=smpi/shared-malloc:local \
    --cfg=smpi/coll-selector:mpich --cfg=smpi/allreduce:rdb --cfg=smpi/bcast:binomial_tree \
    --cfg=smpi/barrier:ompi_tree \
    --log=root.thres:critical "$@" 2>simulate.err
}

# 1. A stage of the real archive to 3 nodes of 1 core each: every node unpacked, the archive's
#    file count in each report, and the time the model gives (its terms over the node's cores).
export FERRY_SIM_NODE=cores=1,file_us=30,mib_ms=2,recv_mib_ms=0.5,open_file_us=1,commit_ms=1
simulate hosts3 "$FERRY_SOURCE/sim/platforms/test-cluster-3.xml" "$SIM" stage fixture.tar.zst \
  "$TEST_DIR/dest" >out.jsonl || fail "the simulated stage failed: $(tail -3 simulate.err)"
expect_eq "$(grep -c '"status":"unpacked"' out.jsonl)" 3 "nodes unpacked: $(cat out.jsonl)"
expect_eq "$(grep -c "\"files\":$files," out.jsonl)" 3 "reports with the archive's $files files"
expect_missing "$TEST_DIR/dest"  # a simulation writes nothing
python3 - "$files" "$bytes" "$archive_bytes" <<'PY' || fail "simulated time is not the model's"
import json, sys
files, data, archive = (int(a) for a in sys.argv[1:])
lines = [json.loads(l) for l in open("out.jsonl")]
phases = dict(next(l for l in lines if "phases" in l)["phases"])
# What a receiving node does, by the model: reads the manifest (per file), extracts (per file,
# per MiB decoded: a little more than the files' bytes, for the tar headers; per MiB received)
# on its one core, and commits.
node = files * 1e-6 + files * 30e-6 + data / 2**20 * 2e-3 + archive / 2**20 * 0.5e-3 + 1e-3
slowest = max(l["seconds"] for l in lines if "host" in l)
print(f"model {node:.3f} s, simulated slowest node {slowest:.3f} s")
assert 0.98 * node <= slowest <= 1.2 * node, (node, slowest)
assert abs(phases["open"] - files * 1e-6) < 0.002, phases
PY

# 2. Twice the cores: about half the time (the per-node work dominates on this platform).
FERRY_SIM_NODE=cores=2,file_us=30,mib_ms=2,recv_mib_ms=0.5 simulate hosts3 \
  "$FERRY_SOURCE/sim/platforms/test-cluster-3.xml" "$SIM" stage fixture.tar.zst "$TEST_DIR/dest" \
  >two.jsonl || fail "the simulated stage on 2 cores failed: $(tail -3 simulate.err)"
python3 - <<'PY' || fail "2 cores per node did not halve the simulated stage"
import json
def moved(f):
    return max(json.loads(l)["seconds"] for l in open(f) if '"host"' in l)
one, two = moved("out.jsonl"), moved("two.jsonl")
print(f"1 core {one:.3f} s, 2 cores {two:.3f} s")
assert 0.45 <= two / one <= 0.6, (one, two)
PY

# 3. Leader 1 fails half-way: it reports the failure, the others abort, the exit status says so.
rc=0
FERRY_SIM_FAIL=1:0.5 simulate hosts3 "$FERRY_SOURCE/sim/platforms/test-cluster-3.xml" "$SIM" \
  stage fixture.tar.zst "$TEST_DIR/dest" >failed.jsonl || rc=$?
[ "$rc" -ne 0 ] || fail "a stage with a failed node exited 0"
expect_eq "$(grep -c '"status":"aborted"' failed.jsonl)" 2 "aborted nodes: $(cat failed.jsonl)"
expect_contains "$(grep '"host":"node2"' failed.jsonl)" "simulated failure"

# 4. A model it cannot read: refused, naming the setting.
rc=0
FERRY_SIM_NODE=cores=2,speed=9 simulate hosts3 "$FERRY_SOURCE/sim/platforms/test-cluster-3.xml" \
  "$SIM" stage fixture.tar.zst "$TEST_DIR/dest" >bad.out || rc=$?
[ "$rc" -ne 0 ] || fail "an unknown model setting was accepted"
expect_contains "$(cat bad.out simulate.err)" "FERRY_SIM_NODE: 'speed=9'"

# 5. The recipe on fat trees of 8 and 20 nodes: sbcast's tree is one level deep on 8 (the client
#    sends to every node) and two on 20 (8 spans of 2-3 nodes), so there each block costs one
#    more RPC in a row, and the blocks go one at a time.
export FERRY_SIM_RECIPE=rpc_ms=2,pigz_mibs=350,tar_file_us=27,unpack_s=0.2
for n in 8 20; do
  python3 "$FERRY_SOURCE/sim/make_platform.py" $n ft$n
  simulate ft$n.hosts ft$n.xml "$RECIPE" "$archive_bytes" "$bytes" "$files" >recipe$n.json ||
    fail "the simulated recipe on $n nodes failed: $(tail -3 simulate.err)"
done
python3 - "$archive_bytes" "$bytes" "$files" <<'PY' || fail "the recipe's times are not sbcast's tree and the untar"
import json, math, sys
archive, data, files = (int(a) for a in sys.argv[1:])
blocks = math.ceil(archive / (8 << 20))
eight, twenty = json.load(open("recipe8.json")), json.load(open("recipe20.json"))
print(f"{blocks} blocks: 8 nodes {eight['broadcast']:.3f} s, 20 nodes {twenty['broadcast']:.3f} s")
assert eight["broadcast"] >= blocks * 2e-3, eight
assert twenty["broadcast"] >= eight["broadcast"] + 0.9 * blocks * 2e-3, (eight, twenty)
untar = max(data / 2**20 / 350, files * 27e-6)
for r in (eight, twenty):
    assert abs(r["untar"] - untar) < 1e-3 and r["relocate"] == 0.2, r
    assert abs(r["total"] - (r["broadcast"] + r["untar"] + r["relocate"])) < 1e-3, r
PY
echo "ok"
