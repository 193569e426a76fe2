# ferry dask's printed tunnel, run as printed: a real sshd on this machine stands for the login
# host (the job's submit host) and another in node1's network namespace for the head node, whose
# loopback is where the dashboard and JupyterLab listen. Through the tunnel the dashboard's status
# page and JupyterLab (with its token) answer, and headless Chromium draws both (the dashboard's
# Bokeh plots, JupyterLab's launcher); the screenshots are kept in the build tree
# (test-artifacts/dask/).
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"
# shellcheck source=tests/fixtures/pypi_env.sh
. "$FERRY_SOURCE/tests/fixtures/pypi_env.sh"
SSHD=/usr/sbin/sshd
CHROMIUM=$(command -v chromium || true)
[ -x "$SSHD" ] && [ -n "$CHROMIUM" ] || skip "needs openssh-server and chromium (scripts/install-deps.sh)"
VENV=$(pypi_env dask)
# A port free here and in node1's namespace (a stale sshd of a killed run may hold one).
listening() { ss -Hltn "sport = :$1" | grep -q .; }
PORT=2622
while listening "$PORT" || ip netns exec ferry-node1 ss -Hltn "sport = :$PORT" | grep -q .; do PORT=$((PORT + 1)); done

# Keys and configs of this test alone: nothing in /etc/ssh or ~/.ssh is read or changed.
ssh-keygen -q -t ed25519 -N '' -f "$TEST_DIR/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$TEST_DIR/user_key"
cp "$TEST_DIR/user_key.pub" "$TEST_DIR/authorized_keys"
mkdir -p /run/sshd
sshd_config() {  # sshd_config NAME LISTEN
  cat >"$TEST_DIR/sshd_$1.conf" <<EOF
ListenAddress $2:$PORT
HostKey $TEST_DIR/host_key
AuthorizedKeysFile $TEST_DIR/authorized_keys
PidFile $TEST_DIR/sshd_$1.pid
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
AllowTcpForwarding yes
EOF
}
sshd_config login 0.0.0.0
head_addr=$(scontrol show node node1 -o | grep -o 'NodeAddr=[^ ]*' | cut -d= -f2)
sshd_config head "$head_addr"
"$SSHD" -f "$TEST_DIR/sshd_login.conf" -E "$TEST_DIR/sshd_login.log"
ip netns exec "ferry-node1" "$SSHD" -f "$TEST_DIR/sshd_head.conf" -E "$TEST_DIR/sshd_head.log"
# The user's ssh settings (their ~/.ssh/config): the key, the port, no host-key prompts.
cat >"$TEST_DIR/ssh_config" <<EOF
Host *
  Port $PORT
  IdentityFile $TEST_DIR/user_key
  IdentitiesOnly yes
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  LogLevel ERROR
  ExitOnForwardFailure yes
EOF
stop_all() {  # every step on its own: one that fails must not skip the others
  set +e
  [ -n "${tunnel:-}" ] && kill "$tunnel" 2>/dev/null
  [ -n "${dir:-}" ] && "$FERRY" dask stop "$dir" 2>/dev/null
  for f in "$TEST_DIR"/sshd_*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  cleanup
}
trap stop_all EXIT

# A held cluster with JupyterLab; its start line names the tunnel.
CLUSTER_TIMEOUT=180 on_cluster salloc -N3 "$FERRY" dask --env "$VENV" --jupyter --json >"$TEST_DIR/held.out" 2>&1 &
held=$!
for _ in $(seq 150); do grep -q '"workers"' "$TEST_DIR/held.out" 2>/dev/null && break; sleep 0.2; done
json=$("$VENV/bin/python" -c 'import json,sys; t=open(sys.argv[1]).read(); print(json.dumps(json.JSONDecoder().raw_decode(t[t.index("{"):])[0]))' "$TEST_DIR/held.out")
get() { "$VENV/bin/python" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$json" "$1"; }
dir=$(get dir)
line=$(get tunnel)
dashboard=$(get dashboard)
jupyter=$(get jupyter)
expect_contains "$line" "ssh -N -L "
expect_contains "$line" " -J "  # through the submit host, to the head node
# The line as printed, with the user's ssh config.
read -r -a words <<<"$line"
ssh -F "$TEST_DIR/ssh_config" "${words[@]:1}" 2>"$TEST_DIR/ssh.log" &
tunnel=$!
fetch() { "$VENV/bin/python" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).status)' "$1" 2>/dev/null; }
for _ in $(seq 100); do [ "$(fetch "$dashboard")" = 200 ] && break; sleep 0.2; done
expect_eq "$(fetch "$dashboard")" 200 "the dashboard through the tunnel ($(cat "$TEST_DIR/ssh.log"))"
expect_eq "$(fetch "$jupyter")" 200 "JupyterLab through the tunnel"
# Without the token JupyterLab's API refuses.
api=${jupyter%%/lab*}/api/status
expect_eq "$("$VENV/bin/python" -c 'import sys, urllib.request, urllib.error
try: print(urllib.request.urlopen(sys.argv[1], timeout=10).status)
except urllib.error.HTTPError as e: print(e.code)' "$api")" 403

# Headless Chromium through the tunnel, driven over DevTools until the pages have drawn: the
# dashboard's status page with its Bokeh plots (they come over a websocket after the page loads),
# and JupyterLab with its launcher. The screenshots are kept.
ART="$FERRY_BUILD/test-artifacts/dask"
mkdir -p "$ART"
browse() {  # browse URL PNG WAIT REPORT
  timeout -s KILL 120 "$VENV/bin/python" "$FERRY_SOURCE/tests/cluster/browse.py" "$CHROMIUM" "$TEST_DIR/chromium" "$@" 30
}
plots="document.querySelectorAll('.bk-Figure, .bk-Plot').length"
page=$(browse "$dashboard" "$ART/dashboard-status.png" "$plots >= 4" "$plots")
expect_contains "$page" '"title": "Dask: Status"'
expect_contains "$page" '"report": '
[ "$("$VENV/bin/python" -c 'import json,sys; print(json.loads(sys.argv[1])["report"])' "$page")" -ge 4 ] ||
  fail "the dashboard drew fewer than 4 plots through the tunnel: $page"
launcher="document.querySelectorAll('.jp-Launcher').length"
page=$(browse "$jupyter" "$ART/jupyterlab.png" "$launcher > 0" "$launcher")
expect_contains "$page" '"title": "'
expect_contains "$page" '"report": 1'
for png in dashboard-status jupyterlab; do
  [ "$(head -c 8 "$ART/$png.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "$png.png is not a PNG"
  [ "$(stat -c %s "$ART/$png.png")" -gt 20000 ] || fail "$png.png is nearly empty (nothing rendered)"
done
echo "screenshots: $ART/dashboard-status.png $ART/jupyterlab.png"

kill "$tunnel"
tunnel=
"$FERRY" dask stop "$dir"
dir=
wait "$held"
echo "dask tunnel: all good"
