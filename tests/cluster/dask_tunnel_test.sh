# ferry dask's printed tunnel, run as printed through two real sshds (tunnel.sh): the login host
# and the head node, whose loopback is where the dashboard and JupyterLab listen. Through the
# tunnel the dashboard's status page and JupyterLab (with its token) answer, and headless Chromium
# draws both (the dashboard's Bokeh plots, JupyterLab's launcher); the screenshots are kept in the
# build tree (test-artifacts/dask/).
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"
# shellcheck source=tests/fixtures/pypi_env.sh
. "$FERRY_SOURCE/tests/fixtures/pypi_env.sh"
# shellcheck source=tests/cluster/tunnel.sh
. "$FERRY_SOURCE/tests/cluster/tunnel.sh"
VENV=$(pypi_env dask)
stop_all() {  # every step on its own: one that fails must not skip the others
  set +e
  [ -n "${dir:-}" ] && "$FERRY" dask stop "$dir" 2>/dev/null
  stop_sshds
  cleanup
}
trap stop_all EXIT
start_sshds

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
# The line as printed, with the user's ssh config.
open_tunnel "$line"
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
expect_screenshots "$ART" dashboard-status jupyterlab

stop_sshds
"$FERRY" dask stop "$dir"
dir=
wait "$held"
echo "dask tunnel: all good"
