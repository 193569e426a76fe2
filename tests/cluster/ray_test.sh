# ferry ray on the 3-node cluster. The whole product first: a Ray env from PyPI is packed with
# ferry pack, staged with ferry stage to every node's own /mnt, and a batch job runs ferry ray from
# the staged copy; its driver runs tasks and an actor and checks they ran on all 3 nodes and that
# Ray counts the allocation's CPUs. Then token authentication (a client and a dashboard request
# without the token are refused), status from a second shell, stop, SIGTERM, the driver's failure,
# a node whose Ray cannot start, two clusters at once, the nodes' second network (--interface), an
# older Ray without token authentication, and bad input; after each, no process of a cluster on any
# node.
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"
# shellcheck source=tests/fixtures/pypi_env.sh
. "$FERRY_SOURCE/tests/fixtures/pypi_env.sh"
VENV=$(pypi_env ray)
OLD=$(pypi_env ray251)  # minimal Ray 2.51: no token authentication, no dashboard, no Ray Client
D=/mnt/$TEST_NAME
no_ray_left() { no_marked_left FERRY_RAY_CLUSTER; }

cat >"$TEST_DIR/driver.py" <<'EOF'
# A driver as users write it: ray.init() with no arguments, tasks spread over the nodes, an actor.
# Prints "hosts=... cpus=... actor=... addresses=... omp=..." (the addresses the nodes registered;
# the OMP_NUM_THREADS its tasks saw).
import os, socket, time
import ray

ray.init()

@ray.remote(num_cpus=1)
def where():
    time.sleep(0.3)
    return socket.gethostname()

@ray.remote
class Counter:
    def __init__(self):
        self.n = 0
    def add(self, k):
        self.n += k
        return self.n

hosts = sorted(set(ray.get([where.remote() for _ in range(24)])))
# Ray sets each task's OMP_NUM_THREADS from its num_cpus; ferry's node step must leave it to Ray.
omp = ray.get(ray.remote(num_cpus=1)(lambda: os.environ.get("OMP_NUM_THREADS")).remote())
counter = Counter.remote()
for k in range(1, 5):
    total = ray.get(counter.add.remote(k))
addresses = ",".join(sorted(n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]))
print(f"hosts={','.join(hosts)} cpus={int(ray.cluster_resources().get('CPU', 0))} actor={total} "
      f"addresses={addresses} omp={omp}")
EOF
# The CPUs Slurm grants a job of 3 nodes, one task each: what Ray must count.
want_cpus=$(on_cluster salloc -N3 srun -N3 --ntasks-per-node=1 sh -c 'echo $SLURM_CPUS_ON_NODE' 2>/dev/null | paste -sd+ | bc)

# ---- The whole product: pack, stage to every node, ferry ray in a batch job from the staged env.
"$FERRY" pack "$VENV" -o "$TEST_DIR/ray.tar.zst" >/dev/null
CLUSTER_TIMEOUT=240 on_cluster salloc -N3 "$FERRY" stage "$TEST_DIR/ray.tar.zst" --to "$D/env" --via sbcast >/dev/null 2>&1
cat >"$TEST_DIR/job.sh" <<EOF
#!/bin/bash
exec "$FERRY" ray --env "$D/env" --json -- "$D/env/bin/python" "$TEST_DIR/driver.py"
EOF
mkdir -p "$TEST_DIR/out"
rc=0
CLUSTER_TIMEOUT=240 on_cluster sbatch --wait -N3 -o "$TEST_DIR/out/job.out" "$TEST_DIR/job.sh" >/dev/null || rc=$?
out=$(cat "$TEST_DIR/out/job.out")
expect_eq "$rc" 0 "the batch job: $out"
# Without --interface, each node's address is the one on the route to the head: Slurm's network.
expect_contains "$out" "hosts=node1,node2,node3 cpus=$want_cpus actor=10 addresses=10.77.0.11,10.77.0.12,10.77.0.13 omp=1"
j=$(start_json "$TEST_DIR/out/job.out")
expect_eq "$(field "$j" token)" True "token authentication is on: $j"
expect_eq "$(field "$j" nodes | grep -o "'role': 'head'" | wc -l)" 1 "one head: $j"
expect_eq "$(field "$j" cpus)" "$want_cpus"
# Ray's directory on each node is short, node-local, and gone afterwards.
expect_contains "$(field "$j" nodes 1 temp_dir)" "/ferry-ray-"
expect_contains "$out" "no process left on any node"
no_ray_left
[ "$(each_node "ls -d /tmp/ferry-ray-$(field "$j" gcs_port)-* 2>/dev/null | wc -l")" = "node1 0
node2 0
node3 0" ] || fail "Ray's directories are left on the nodes"

# ---- A held cluster: the token keeps out who lacks it; status from a second shell; stop.
CLUSTER_TIMEOUT=240 on_cluster salloc -N3 "$FERRY" ray --env "$VENV" --json >"$TEST_DIR/held.out" 2>&1 &
held=$!
# A failed check below must not leave the held cluster running for the next test.
trap 'pkill -TERM -f "^$FERRY ray --env $VENV --json" 2>/dev/null; wait; cleanup' EXIT
for _ in $(seq 600); do grep -q '"nodes"' "$TEST_DIR/held.out" 2>/dev/null && break; sleep 0.2; done
j=$(start_json "$TEST_DIR/held.out")
dir=$(field "$j" dir)
address=$(field "$j" address)
expect_eq "$(stat -c %a "$dir")" 700 "the cluster's directory is private"
expect_eq "$(stat -c %a "$dir/token")" 600 "the token file is private"
status=$("$FERRY" ray status "$dir" --json)
expect_eq "$(field "$status" nodes | grep -o "'alive': True" | wc -l)" 3 "status lists 3 live nodes: $status"
expect_contains "$("$FERRY" ray status)" "node3"
# The GCS refuses a client without the token, and takes one with it.
rc=0
RAY_AUTH_MODE=disabled timeout 60 "$VENV/bin/python" "$dir/ferry_ray_watch.py" "$address" once >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a client without the token reached the GCS"
echo "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" >"$TEST_DIR/other-token"
rc=0
RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$TEST_DIR/other-token" timeout 60 "$VENV/bin/python" "$dir/ferry_ray_watch.py" "$address" once >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a client with another token reached the GCS"
# The dashboard, on the head's loopback: 401 without the token, 200 with it.
port=$(field "$j" dashboard_port)
code() { ip netns exec ferry-node1 curl -s -o /dev/null -w '%{http_code}' "$@"; }
expect_eq "$(code "http://127.0.0.1:$port/api/jobs/")" 401 "the job API without the token"
expect_eq "$(code -H "Authorization: Bearer $(cat "$dir/token")" "http://127.0.0.1:$port/api/version")" 200 "the dashboard with the token"
expect_contains "$(field "$j" tunnel)" "-L $port:127.0.0.1:$port"
# Every port a process of the cluster listens on, on every node, is in the cluster's block.
cat >"$TEST_DIR/ports.sh" <<'EOF'
# ports.sh ID LOW HIGH: the TCP ports this node's processes of cluster ID listen on outside LOW-HIGH.
ss -Hltnp | while read -r _ _ _ local _ users; do
  port=${local##*:}
  for pid in $(grep -o 'pid=[0-9]*' <<<"$users" | cut -d= -f2); do
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "FERRY_RAY_CLUSTER=$1" || continue
    [ "$port" -ge "$2" ] && [ "$port" -le "$3" ] || echo "$port($(cat /proc/$pid/comm))"
  done
done | sort -u | tr '\n' ' '
EOF
base=$(field "$j" gcs_port)
listening=$(each_node "bash $TEST_DIR/ports.sh $(field "$j" id) $base $((base + 511))")
expect_eq "$listening" "node1
node2
node3" "ports outside the cluster's block $base-$((base + 511))"
"$FERRY" ray stop "$dir"
rc=0
wait "$held" || rc=$?
expect_eq "$rc" 0 "a held cluster told to stop ends well: $(cat "$TEST_DIR/held.out")"
trap cleanup EXIT
no_ray_left
[ ! -e "$dir" ] || fail "the cluster's directory is left: $dir"

# ---- The driver's failure passes through; SIGTERM to ferry tears down.
rc=0
out=$(CLUSTER_TIMEOUT=240 on_cluster salloc -N3 "$FERRY" ray --env "$VENV" --no-dashboard -- "$VENV/bin/python" -c 'import ray; ray.init(); raise SystemExit(7)' 2>&1) || rc=$?
expect_eq "$rc" 7 "the driver's exit status passes through: $out"
no_ray_left
CLUSTER_TIMEOUT=240 on_cluster salloc -N3 "$FERRY" ray --env "$VENV" --no-dashboard -- "$VENV/bin/python" -c 'import time; time.sleep(300)' >"$TEST_DIR/term.out" 2>&1 &
for _ in $(seq 600); do grep -q "ready in" "$TEST_DIR/term.out" 2>/dev/null && break; sleep 0.2; done
pkill -TERM -f "^$FERRY ray --env $VENV --no-dashboard -- " || fail "no ferry ray to signal"
wait $! || true
expect_contains "$(cat "$TEST_DIR/term.out")" "no process left on any node"
no_ray_left

# ---- A node whose Ray cannot start (the staged env is gone from node3): named, all torn down.
on_cluster srun -N1 -w node3 rm -rf "$D/env"
cat >"$TEST_DIR/broken.sh" <<EOF
#!/bin/bash
exec "$FERRY" ray --env "$D/env" -- "$D/env/bin/python" "$TEST_DIR/driver.py"
EOF
rc=0
CLUSTER_TIMEOUT=240 on_cluster sbatch --wait -N3 -o "$TEST_DIR/out/broken.out" "$TEST_DIR/broken.sh" >/dev/null || rc=$?
out=$(cat "$TEST_DIR/out/broken.out")
[ "$rc" -ne 0 ] || fail "a node without the env, and the job succeeded: $out"
expect_contains "$out" "ferry: error: node3: --env $D/env: not on this host"
no_ray_left

# ---- Two clusters at once in one job, on the same nodes: disjoint ports, both work. The second
# is on the nodes' other network (ib0, which the login host is not on), as --interface asks.
CLUSTER_TIMEOUT=300 on_cluster salloc -N3 bash -c "
  '$FERRY' ray --env '$VENV' --no-dashboard --json -- '$VENV/bin/python' '$TEST_DIR/driver.py' >'$TEST_DIR/a.out' 2>&1 &
  '$FERRY' ray --env '$VENV' --no-dashboard --json --interface ib0 -- '$VENV/bin/python' '$TEST_DIR/driver.py' >'$TEST_DIR/b.out' 2>&1 &
  wait" >/dev/null 2>&1
expect_contains "$(cat "$TEST_DIR/a.out")" "hosts=node1,node2,node3 cpus=$want_cpus actor=10 addresses=10.77.0.11,10.77.0.12,10.77.0.13"
expect_contains "$(cat "$TEST_DIR/b.out")" "hosts=node1,node2,node3 cpus=$want_cpus actor=10 addresses=10.78.0.11,10.78.0.12,10.78.0.13"
pa=$(field "$(start_json "$TEST_DIR/a.out")" gcs_port)
pb=$(field "$(start_json "$TEST_DIR/b.out")" gcs_port)
[ $((pa > pb ? pa - pb : pb - pa)) -ge 512 ] || fail "the clusters' port blocks overlap: $pa and $pb"
no_ray_left

# ---- GPUs: each node offers Ray the GPUs the job sees there (a recorded Polaris node: 4 A100s).
out=$(CLUSTER_TIMEOUT=240 on_cluster salloc -N3 "$FERRY" ray --env "$VENV" --no-dashboard --json \
  --sysfs-root "$FERRY_SOURCE/tests/fixtures/sysfs/polaris" -- \
  "$VENV/bin/python" -c 'import ray; ray.init(); print("gpus=%d" % ray.cluster_resources().get("GPU", 0))' 2>&1)
expect_contains "$out" "gpus=12"
expect_eq "$(field "$(start_json <(echo "$out"))" gpus)" 12 "the start line counts them: $out"
no_ray_left

# ---- An older Ray (2.51, minimal): no token authentication, so ferry says the cluster is open, and
# runs it. Its workers put their files at the head's path: on the test nodes' shared /tmp, ferry
# refuses, naming the node; on node-local /mnt it works. ferry on the head this time (a batch
# job), every node on ib0.
cat >"$TEST_DIR/old.sh" <<EOF
#!/bin/bash
exec "$FERRY" ray --env "$OLD" --json --interface ib0 --temp-dir "\$1" -- "$OLD/bin/python" "$TEST_DIR/driver.py"
EOF
rc=0
CLUSTER_TIMEOUT=240 on_cluster sbatch --wait -N3 -o "$TEST_DIR/out/old.out" "$TEST_DIR/old.sh" /mnt >/dev/null || rc=$?
out=$(cat "$TEST_DIR/out/old.out")
expect_eq "$rc" 0 "a cluster of Ray 2.51: $out"
expect_contains "$out" "ferry: ray: ray 2.51.2 has no token authentication (2.52 and later have): this cluster is open to anyone who can reach its ports"
expect_contains "$out" "hosts=node1,node2,node3 cpus=$want_cpus actor=10 addresses=10.78.0.11,10.78.0.12,10.78.0.13"
expect_eq "$(field "$(start_json "$TEST_DIR/out/old.out")" token)" False "the start line says so: $out"
no_ray_left
rc=0
CLUSTER_TIMEOUT=240 on_cluster sbatch --wait -N3 -o "$TEST_DIR/out/old-tmp.out" "$TEST_DIR/old.sh" /tmp >/dev/null || rc=$?
out=$(cat "$TEST_DIR/out/old-tmp.out")
[ "$rc" -ne 0 ] || fail "Ray 2.51 on a /tmp the nodes share, and the job succeeded: $out"
expect_eq "$(grep -c 'ferry: error:' <<<"$out")" 1 "one error line: $out"
expect_contains "$out" "is shared with the head node1: this Ray puts every node's files at the head's path"
no_ray_left

# ---- Bad input: one line each, a non-zero exit, nothing left.
one_line_error 2 "not in an allocation" "$FERRY" ray --env "$VENV" -- true
python3 -m venv "$TEST_DIR/bare"
one_line_error 2 "no ray in this env" on_cluster salloc -N3 "$FERRY" ray --env "$TEST_DIR/bare" -- true
long=$TEST_DIR/$(printf 'x%.0s' $(seq 60))
one_line_error 2 "Ray's socket paths there would be" on_cluster salloc -N3 "$FERRY" ray --env "$VENV" --temp-dir "$long" -- true
one_line_error 1 "--interface nosuch0: no such interface with an address on node" on_cluster salloc -N3 "$FERRY" ray --env "$VENV" --interface nosuch0 -- true
no_ray_left
echo "ray: all good"
