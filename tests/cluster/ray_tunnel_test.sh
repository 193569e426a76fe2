# ferry ray's printed tunnel, run as printed through two real sshds (tunnel.sh): the login host and
# the head node, on whose loopback Ray's dashboard listens. Through the tunnel the dashboard's API
# refuses a request without the cluster's token and answers one with it; in headless Chromium the
# dashboard asks for the token, a wrong one is refused, and with the right one, typed into its
# form as a user would, its Cluster page lists the 3 nodes alive. The screenshots are kept in the
# build tree (test-artifacts/ray/).
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"
# shellcheck source=tests/fixtures/pypi_env.sh
. "$FERRY_SOURCE/tests/fixtures/pypi_env.sh"
# shellcheck source=tests/cluster/tunnel.sh
. "$FERRY_SOURCE/tests/cluster/tunnel.sh"
VENV=$(pypi_env ray)
BROWSER_PY=$(pypi_env dask)/bin/python  # browse.py needs tornado, which the Dask env has
stop_all() {  # every step on its own: one that fails must not skip the others
  set +e
  [ -n "${dir:-}" ] && "$FERRY" ray stop "$dir" 2>/dev/null
  stop_sshds
  cleanup
}
trap stop_all EXIT
start_sshds

CLUSTER_TIMEOUT=240 on_cluster salloc -N3 "$FERRY" ray --env "$VENV" --json >"$TEST_DIR/held.out" 2>&1 &
held=$!
for _ in $(seq 600); do grep -q '"nodes"' "$TEST_DIR/held.out" 2>/dev/null && break; sleep 0.2; done
j=$(start_json "$TEST_DIR/held.out")
dir=$(field "$j" dir)
dashboard=$(field "$j" dashboard)
token=$(cat "$dir/token")
open_tunnel "$(field "$j" tunnel)"

status() {  # status URL [CURL ARGS]: the HTTP status through the tunnel
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@"
}
for _ in $(seq 100); do [ "$(status "$dashboard/api/version")" != 000 ] && break; sleep 0.2; done
expect_eq "$(curl -s --max-time 10 "$dashboard/api/authentication_mode")" '{"authentication_mode": "token"}' \
  "the dashboard through the tunnel ($(cat "$TEST_DIR/ssh.log"))"
expect_eq "$(status "$dashboard/api/version")" 401 "the API without the token"
expect_eq "$(status "$dashboard/api/jobs/" -X POST -H 'Content-Type: application/json' -d '{"entrypoint": "id"}')" 401 "a job submitted without the token"
expect_eq "$(status "$dashboard/api/version" -H "Authorization: Bearer 0123456789abcdef")" 403 "the API with a wrong token"
expect_eq "$(status "$dashboard/api/version" -H "Authorization: Bearer $token")" 200 "the API with the token"

# Chromium through the tunnel, driven over DevTools: the dashboard's token form, a wrong token,
# then the right one; the Cluster page must list every node, alive.
ART="$FERRY_BUILD/test-artifacts/ray"
mkdir -p "$ART"
browse() {  # browse PROFILE PNG WAIT REPORT TIMEOUT [FIELD TEXT BUTTON]
  local profile=$1
  shift
  timeout -s KILL 150 "$BROWSER_PY" "$FERRY_SOURCE/tests/cluster/browse.py" "$CHROMIUM" "$TEST_DIR/$profile" \
    "$dashboard/#/cluster" "$@"
}
field_css='[role=dialog] input[type=password]'
button_css='[role=dialog] button.MuiButton-contained'
nodes_alive="['10.77.0.11', '10.77.0.12', '10.77.0.13'].every(a => document.body.innerText.includes(a)) && !document.querySelector('[role=dialog]')"
report="[document.querySelectorAll('[role=dialog]').length, (document.body.innerText.match(/ALIVE/g) || []).length]"
page=$(browse asked "$ART/asks-for-token.png" "document.querySelector('$field_css') !== null" "document.body.innerText.includes('Authentication Token Required')" 30)
expect_contains "$page" '"report": true'
refused="[document.querySelectorAll('[role=dialog]').length, (document.body.innerText.match(/ALIVE/g) || []).length, document.body.innerText.includes('Invalid authentication token')]"
page=$(browse wrong "$ART/wrong-token.png" "$nodes_alive" "$refused" 10 "$field_css" 0123456789abcdef "$button_css")
expect_contains "$page" '"report": [1, 0, true]'  # the form stays and says why; no node is shown
page=$(browse right "$ART/cluster.png" "$nodes_alive" "$report" 40 "$field_css" "$token" "$button_css")
expect_contains "$page" '"title": "Cluster | Ray Dashboard"'
expect_contains "$page" '"report": [0, 4]'  # the node statistics' ALIVE, and one per node
expect_screenshots "$ART" asks-for-token wrong-token cluster

stop_sshds
"$FERRY" ray stop "$dir"
dir=
wait "$held"
no_marked_left FERRY_RAY_CLUSTER
echo "ray tunnel: all good"
