# ferry dask on the 3-node cluster. The whole product first: a Dask env from PyPI is packed with
# ferry pack, staged with ferry stage to every node's own /mnt, and a batch job runs ferry dask from
# the staged copy; a dask.array result computed by workers on all 3 nodes is checked. Then worker
# counts, the exit status, TLS (a client without the job's key is refused; key files are private),
# teardown after success, failure, SIGTERM, `ferry dask stop` and a killed worker (no Dask process
# left on any node), two clusters at once, Debian's older distributed, --per-gpu on recorded GPU
# trees, and bad input.
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"
# shellcheck source=tests/fixtures/pypi_env.sh
. "$FERRY_SOURCE/tests/fixtures/pypi_env.sh"
VENV=$(pypi_env dask)
D=/mnt/$TEST_NAME

# No process of any ferry dask cluster on any node, nor here.
no_dask_left() { no_marked_left FERRY_DASK_CLUSTER; }

cat >"$TEST_DIR/compute.py" <<'EOF'
# A client as users write it: Client() with no arguments, a dask.array computation, and where it
# ran. Prints "hosts=... sum=... workers=... threads=... omp=..." (the workers' OMP_NUM_THREADS).
import os, socket
import dask.array as da
from distributed import Client

client = Client()
hosts = sorted(set(client.run(socket.gethostname).values()))
x = da.arange(3_000_000, chunks=100_000)
total = int((x % 7).sum().compute())
info = client.scheduler_info(**({"n_workers": -1} if "n_workers" in client.scheduler_info.__code__.co_varnames else {}))
threads = sorted({w["nthreads"] for w in info["workers"].values()})
omp = sorted({str(v) for v in client.run(lambda: os.environ.get("OMP_NUM_THREADS")).values()})
print(f"hosts={','.join(hosts)} sum={total} workers={len(info['workers'])} threads={threads} omp={','.join(omp)}")
EOF
want_sum=$("$VENV/bin/python" -c 'print(sum(i % 7 for i in range(3_000_000)))')

# ---- The whole product: pack, stage to every node, ferry dask in a batch job from the staged env.
"$FERRY" pack "$VENV" -o "$TEST_DIR/dask.tar.zst" >/dev/null
CLUSTER_TIMEOUT=180 on_cluster salloc -N3 "$FERRY" stage "$TEST_DIR/dask.tar.zst" --to "$D/env" --via sbcast >/dev/null 2>&1
cat >"$TEST_DIR/job.sh" <<EOF
#!/bin/bash
exec "$FERRY" dask --env "$D/env" --local-directory "$D/scratch" --json -- "$D/env/bin/python" "$TEST_DIR/compute.py"
EOF
mkdir -p "$TEST_DIR/out"
rc=0
CLUSTER_TIMEOUT=120 on_cluster sbatch --wait -N3 -o "$TEST_DIR/out/job.out" "$TEST_DIR/job.sh" >/dev/null || rc=$?
out=$(cat "$TEST_DIR/out/job.out")
expect_eq "$rc" 0 "the batch job: $out"
expect_contains "$out" "hosts=node1,node2,node3 sum=$want_sum workers=3"
# Each worker's BLAS and OpenMP get its share of its node's CPUs (1 here), not the node's count.
expect_contains "$out" " omp=1"
j=$(start_json "$TEST_DIR/out/job.out")
expect_eq "$(field "$j" workers)" 3
expect_eq "$(field "$j" tls)" True
expect_eq "$(field "$j" head)" node1
expect_eq "$(field "$j" nodes 1 local_directory)" "$D/scratch/ferry-dask-$(field "$j" id)"
expect_contains "$(field "$j" scheduler_address)" "tls://"
expect_contains "$out" "no process left on any node"
no_dask_left
# The workers' node-local directories went with them.
expect_eq "$(each_node "ls -A $D/scratch | wc -l")" "node1 0
node2 0
node3 0"

# ---- Interactive allocation (ferry on the submit host, the scheduler on the first node), two
#      workers of one thread per node; the client's exit status is ferry's.
cat >"$TEST_DIR/fail.py" <<'EOF'
import sys
from distributed import Client
Client().submit(sum, [1, 2]).result()
sys.exit(7)
EOF
rc=0
out=$(on_cluster salloc -N3 "$FERRY" dask --env "$VENV" --workers-per-node 2 --threads-per-worker 1 -- "$VENV/bin/python" "$TEST_DIR/compute.py" 2>&1) || rc=$?
expect_eq "$rc" 0 "$out"
expect_contains "$out" "hosts=node1,node2,node3 sum=$want_sum workers=6 threads=[1]"
expect_contains "$out" "6 workers on 3 nodes, 6 threads"
rc=0
out=$(on_cluster salloc -N3 "$FERRY" dask --env "$VENV" -- "$VENV/bin/python" "$TEST_DIR/fail.py" 2>&1) || rc=$?
expect_eq "$rc" 7 "the client's exit status passes through: $out"
no_dask_left

# ---- Leftovers: a client that leaves processes behind, here and on every node (detached, in
#      sessions of their own): ferry's check finds them by the cluster's marker, kills and names them.
cat >"$TEST_DIR/leave.py" <<'EOF'
import subprocess
from distributed import Client
c = Client()
c.run(lambda: subprocess.Popen(["sleep", "301"], start_new_session=True).pid)
subprocess.Popen(["sleep", "302"], start_new_session=True)
EOF
rc=0
out=$(on_cluster salloc -N3 "$FERRY" dask --env "$VENV" -- "$VENV/bin/python" "$TEST_DIR/leave.py" 2>&1) || rc=$?
expect_eq "$rc" 0 "$out"
# The test nodes share this machine's PID namespace (they are network namespaces), so the first
# node's check sees every node's leftovers (and two checks may both kill one): count distinct
# processes, not where they are reported.
killed() { grep -o "had to kill a leftover process on [a-z0-9]*: [0-9]* sleep $1" <<<"$out" | awk '{print $(NF-2)}' | sort -u | wc -l; }
expect_eq "$(killed 301)" 3 "one per node: $out"
expect_eq "$(killed 302)" 1 "the client's own: $out"
no_dask_left

# ---- Security: a client without the job's key cannot connect (no certificate, or plain TCP);
#      the key and its directory are the owner's alone.
cat >"$TEST_DIR/intruder.py" <<'EOF'
# Run as the job's client (it has the credentials in its DASK_* config); the intruders run in a
# fresh Python without them, as another user's process on the cluster would.
import os, stat, subprocess, sys
from distributed import Client
address = os.environ["DASK_SCHEDULER_ADDRESS"]
d = os.environ["FERRY_DASK_DIR"]
for path, want in [(d, 0o700), (d + "/tls", 0o700), (d + "/tls/cluster.pem", 0o600), (d + "/tls/ca.pem", 0o600)]:
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == want, (path, oct(mode))
clean = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
intruders = {
    "its own certificate": "Client(A, security=Security.temporary(), timeout=5)",
    "no client certificate": "Client(A, security=Security(tls_ca_file=CA, require_encryption=True), timeout=5)",
    "plain tcp": "Client(A.replace('tls://', 'tcp://'), timeout=5)",
}
for name, attempt in intruders.items():
    code = f"from distributed import Client, Security\nA = {address!r}\nCA = {d + '/tls/ca.pem'!r}\n{attempt}\nprint('CONNECTED')"
    r = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True)
    if "CONNECTED" in r.stdout:
        sys.exit(f"an intruder connected ({name})")
    print(f"refused ({name})")
# The same harness with the job's key connects: the refusals above are the scheduler's doing.
code = f"from distributed import Client, Security\nK = {d + '/tls/cluster.pem'!r}\nClient({address!r}, security=Security(tls_ca_file={d + '/tls/ca.pem'!r}, tls_client_cert=K, tls_client_key=K, require_encryption=True), timeout=10)\nprint('CONNECTED')"
r = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True)
assert "CONNECTED" in r.stdout, r.stderr[-500:]
Client().close()  # and so does Client() with no arguments
print("owner connected")
EOF
out=$(on_cluster salloc -N3 "$FERRY" dask --env "$VENV" -- "$VENV/bin/python" "$TEST_DIR/intruder.py" 2>&1)
expect_contains "$out" "refused (its own certificate)"
expect_contains "$out" "refused (no client certificate)"
expect_contains "$out" "refused (plain tcp)"
expect_contains "$out" "owner connected"

# ---- Held cluster: ferry dask status from a second shell, then ferry dask stop tears it down.
on_cluster salloc -N3 "$FERRY" dask --env "$VENV" --workers-per-node 2 --json >"$TEST_DIR/held.out" 2>&1 &
held=$!
for _ in $(seq 100); do grep -q '"workers"' "$TEST_DIR/held.out" 2>/dev/null && break; sleep 0.2; done
j=$(start_json "$TEST_DIR/held.out")
dir=$(field "$j" dir)
# A second shell's client, connected with the start line's own "connect" code, keeps 3 tasks
# running and 4 results in memory: status counts both.
cat >"$TEST_DIR/busy.py" <<'EOF'
import sys, time
exec(sys.argv[1])
running = [client.submit(time.sleep, 120, pure=False) for _ in range(3)]
held = client.scatter(list(range(4)))
print("BUSY", flush=True)
time.sleep(120)
EOF
: >"$TEST_DIR/busy.out"
"$VENV/bin/python" "$TEST_DIR/busy.py" "$(field "$j" connect)" >"$TEST_DIR/busy.out" 2>&1 &
busy=$!
tasks_in() { "$VENV/bin/python" -c 'import json,sys; w=json.loads(sys.argv[1])["workers"]; print(sum(x["processing"] for x in w), sum(x["in_memory"] for x in w))' "$1"; }
status=
tasks=
for _ in $(seq 100); do
  if grep -q BUSY "$TEST_DIR/busy.out"; then
    status=$("$FERRY" dask status "$dir" --json)
    tasks=$(tasks_in "$status")
    [ "$tasks" = "3 4" ] && break
  fi
  sleep 0.2
done
expect_eq "$(field "$status" workers | grep -o "'host'" | wc -l)" 6 "status lists 6 workers: $status"
expect_eq "$tasks" "3 4" "status counts the second shell's 3 running tasks and 4 held results: $status ($(cat "$TEST_DIR/busy.out"))"
text=$("$FERRY" dask status "$dir")
expect_contains "$text" "node3-1"
expect_contains "$text" "running"
kill "$busy" 2>/dev/null || true
wait "$busy" 2>/dev/null || true
"$FERRY" dask stop "$dir"
rc=0
wait "$held" || rc=$?
expect_eq "$rc" 0 "a held cluster told to stop ends well: $(cat "$TEST_DIR/held.out")"
no_dask_left
[ ! -e "$dir" ] || fail "the cluster's directory is left: $dir"

# ---- SIGTERM to ferry while the client runs: the client, the workers and the scheduler go.
on_cluster salloc -N3 "$FERRY" dask --env "$VENV" -- "$VENV/bin/python" -c 'import time; time.sleep(300)' >"$TEST_DIR/term.out" 2>&1 &
for _ in $(seq 100); do grep -q "ready in" "$TEST_DIR/term.out" 2>/dev/null && break; sleep 0.2; done
pkill -TERM -f "^$FERRY dask --env $VENV -- " || fail "no ferry dask to signal"
wait $! || true
expect_contains "$(cat "$TEST_DIR/term.out")" "no process left on any node"
no_dask_left

# ---- A worker killed mid-run: ferry names its node, tears down, fails.
cat >"$TEST_DIR/kill_worker.py" <<'EOF'
import os, signal, time
from distributed import Client
c = Client()
victim = [a for a, w in c.scheduler_info()["workers"].items() if w["name"] == "node2-0"]
c.submit(lambda: os.kill(os.getpid(), signal.SIGKILL), workers=victim, pure=False)
time.sleep(120)
EOF
rc=0
out=$(on_cluster salloc -N3 "$FERRY" dask --env "$VENV" -- "$VENV/bin/python" "$TEST_DIR/kill_worker.py" 2>&1) || rc=$?
expect_eq "$rc" 1 "$out"
expect_contains "$out" "node2"
expect_contains "$out" "node2-0"
no_dask_left

# ---- Two clusters at once in one job, on the same nodes: different ports, both compute.
out=$(CLUSTER_TIMEOUT=120 on_cluster salloc -N3 bash -c "
  '$FERRY' dask --env '$VENV' --json -- '$VENV/bin/python' '$TEST_DIR/compute.py' >'$TEST_DIR/a.out' 2>&1 &
  '$FERRY' dask --env '$VENV' --json -- '$VENV/bin/python' '$TEST_DIR/compute.py' >'$TEST_DIR/b.out' 2>&1 &
  wait" 2>&1)
for f in a b; do expect_contains "$(cat "$TEST_DIR/$f.out")" "hosts=node1,node2,node3 sum=$want_sum"; done
pa=$(field "$(start_json "$TEST_DIR/a.out")" scheduler_port)
pb=$(field "$(start_json "$TEST_DIR/b.out")" scheduler_port)
[ "$pa" != "$pb" ] || fail "both clusters on port $pa"
no_dask_left

# ---- Debian's distributed 2022.12 (no env: python3 on PATH is Debian's), scheduler here.
if /usr/bin/python3 -c 'import distributed' 2>/dev/null; then
  out=$(PATH=/usr/bin:$PATH on_cluster salloc -N3 "$FERRY" dask --scheduler-on here -- /usr/bin/python3 "$TEST_DIR/compute.py" 2>&1)
  expect_contains "$out" "hosts=node1,node2,node3 sum=$want_sum workers=3"
  expect_contains "$out" "distributed 2022.12"
  no_dask_left
else
  echo "note: Debian's python3-distributed is not installed; the 2022.12 case is left out"
fi

# ---- --per-gpu on a recorded Polaris node (4 A100s): each worker sees only its own GPU.
cat >"$TEST_DIR/gpus.py" <<'EOF'
import os
from distributed import Client
seen = Client().run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES", ""))
by_host = {}
for address, gpu in seen.items():
    by_host.setdefault(address.split("//")[1].rsplit(":", 1)[0], []).append(gpu)
print("per-node", sorted(len(set(g)) for g in by_host.values()), "workers", len(seen))
EOF
out=$(on_cluster salloc -N3 "$FERRY" dask --env "$VENV" --per-gpu --sysfs-root "$FERRY_SOURCE/tests/fixtures/sysfs/polaris" -- "$VENV/bin/python" "$TEST_DIR/gpus.py" 2>&1)
expect_contains "$out" "per-node [4, 4, 4] workers 12"

# ---- --jupyter: JupyterLab on the head node's loopback with a token: with it 200, without it
#      refused; the tunnel line forwards both the dashboard and JupyterLab.
cat >"$TEST_DIR/jupyter_check.sh" <<'EOF'
set -e
token=$(cat "$FERRY_DASK_DIR/jupyter_token")
port=$(( $(python3 -c 'import json,os; print(json.load(open(os.environ["FERRY_DASK_DIR"] + "/scheduler.json"))["address"].rsplit(":", 1)[1])') + 2 ))
# On the head node (node1), where JupyterLab listens on loopback only.
srun -N1 -w node1 --overlap "$1" -c '
import sys, urllib.request, urllib.error
port, token = sys.argv[1:3]
for name, url in [("with", f"http://127.0.0.1:{port}/api/status?token={token}"), ("without", f"http://127.0.0.1:{port}/api/status")]:
    try:
        print(name, "token:", urllib.request.urlopen(url, timeout=10).status)
    except urllib.error.HTTPError as e:
        print(name, "token:", e.code)
' "$port" "$token"
EOF
out=$(CLUSTER_TIMEOUT=120 on_cluster salloc -N3 "$FERRY" dask --env "$VENV" --jupyter -- bash "$TEST_DIR/jupyter_check.sh" "$VENV/bin/python" 2>&1)
expect_contains "$out" "with token: 200"
expect_contains "$out" "without token: 403"
expect_contains "$out" "/lab?token="
port=$(grep -o 'JupyterLab http://127.0.0.1:[0-9]*' <<<"$out" | grep -o '[0-9]*$')
expect_contains "$out" "-L $port:127.0.0.1:$port"
no_dask_left

# ---- Bad input: one line each, a non-zero exit, nothing left.
one_line_error 2 "not in an allocation" "$FERRY" dask --env "$VENV" -- true
python3 -m venv "$TEST_DIR/bare"
one_line_error 2 "no dask.distributed in this env" on_cluster salloc -N3 "$FERRY" dask --env "$TEST_DIR/bare" -- true
if /usr/bin/python3 -c 'import distributed' 2>/dev/null && ! /usr/bin/python3 -c 'import jupyterlab' 2>/dev/null && ! /usr/bin/python3 -c 'import notebook' 2>/dev/null; then
  PATH=/usr/bin:$PATH one_line_error 2 "--jupyter: neither JupyterLab nor Jupyter Notebook" on_cluster salloc -N3 "$FERRY" dask --jupyter -- true
fi
one_line_error 1 "--per-gpu: this node has no GPU" on_cluster salloc -N3 "$FERRY" dask --env "$VENV" --per-gpu -- true
# Three consecutive ports held by a listener: the listener picks them itself
# (a fixed number can be taken by any other connection on a busy machine) and
# writes the first one once all three are bound.
"$VENV/bin/python" -c '
import random, socket, sys, time
while True:
    base = random.randrange(20000, 30000)
    held = []
    try:
        for i in range(3):
            s = socket.socket()
            s.bind(("", base + i))
            s.listen()
            held.append(s)
        break
    except OSError:
        for s in held:
            s.close()
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(base))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
' "$TEST_DIR/held_ports" &
listener=$!
for _ in $(seq 100); do [ -e "$TEST_DIR/held_ports" ] && break; sleep 0.1; done
base=$(cat "$TEST_DIR/held_ports")
one_line_error 1 "--ports $base-$((base + 2)): no three free ports" on_cluster salloc -N3 "$FERRY" dask --env "$VENV" --scheduler-on here --ports "$base-$((base + 2))" -- true
kill $listener
no_dask_left
echo "dask: all good"
