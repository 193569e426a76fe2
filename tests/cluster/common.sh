# shellcheck shell=bash disable=SC2016
# Sourced by every tests/cluster/*_test.sh: strict mode, the running test cluster's environment
# (started by cluster.sh; skip when it is not up), a per-test directory the nodes can see, helpers.
set -euo pipefail
trap 'echo "FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

FERRY_SOURCE=${FERRY_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
FERRY_BUILD=${FERRY_BUILD:-$FERRY_SOURCE/build}
FERRY=${FERRY:-$FERRY_BUILD/ferry}
FERRY_CLUSTER_DIR=${FERRY_CLUSTER_DIR:-/dev/shm/ferry-cluster}

skip() { echo "SKIPPED: $*"; exit 77; }
# shellcheck source=tests/fixtures/conda_fixture.sh
source "$FERRY_SOURCE/tests/fixtures/conda_fixture.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_eq() { [ "$1" = "$2" ] || fail "expected '$2', got '$1'${3:+ ($3)}"; }
expect_contains() { case "$1" in *"$2"*) ;; *) fail "expected to find '$2' in: $1";; esac; }

# env.sh exists only while the cluster is up; cluster.start skipping (no root...) lands here.
# Slurm variables from the caller (a shell inside a real allocation) would redirect srun elsewhere.
for v in $(compgen -v SLURM_ || true); do unset "$v"; done
[ -f "$FERRY_CLUSTER_DIR/env.sh" ] || skip "no test cluster at $FERRY_CLUSTER_DIR (tests/cluster/cluster.sh start)"
# shellcheck source=/dev/null
. "$FERRY_CLUSTER_DIR/env.sh"

# The nodes share this machine's filesystem except /mnt, so a directory on /dev/shm is "shared
# storage" they all see at the same path. TEST_NAME also names this test's files under each node's /mnt.
TEST_NAME=$(basename "$0" .sh)-$$
TEST_DIR=$(mktemp -d "/dev/shm/ferry-ctest-$TEST_NAME-XXXXXX")
cleanup() {
  [ "${KEEP_TEST_DIR:-0}" = 1 ] && return
  rm -rf "$TEST_DIR" "$FERRY_CLUSTER_LOCAL"/node*/"$TEST_NAME"
}
trap cleanup EXIT
cd "$TEST_DIR"

# Every command that talks to the cluster gets a hard limit: a wrong address makes mpiexec and srun
# wait forever instead of failing.
on_cluster() { timeout -s KILL "${CLUSTER_TIMEOUT:-60}" "$@"; }

# each_node 'SHELL CMD': runs it once on every node (one job step); prints "nodeN <output>" per node,
# sorted by node, output joined into one line.
each_node() {
  on_cluster srun -N3 --ntasks-per-node=1 sh -c 'echo "$(hostname)" $(sh -c "$1")' sh "$1" | sort
}

# No process on any node, nor here, whose environment holds MARKER= (the variable ferry's services
# put on every process of a cluster).
no_marked_left() {  # no_marked_left MARKER
  local out
  out=$(each_node "grep -l $1= /proc/[0-9]*/environ 2>/dev/null | grep -v /proc/self/ | wc -l")
  expect_eq "$out" "node1 0
node2 0
node3 0" "$1 processes left on the nodes: $out"
  expect_eq "$(grep -l "$1=" /proc/[0-9]*/environ 2>/dev/null | wc -l)" 0 "$1 processes left here"
}

# Bad input: one line each, a non-zero exit.
one_line_error() {  # one_line_error WANT_RC WANT_TEXT CMD...
  local want_rc=$1 want=$2 out rc
  shift 2
  rc=0
  out=$("$@" 2>&1) || rc=$?
  [ "$rc" -eq "$want_rc" ] || fail "exit $rc, not $want_rc: $* -> $out"
  expect_contains "$out" "$want"
  expect_eq "$(grep -c 'ferry: error:' <<<"$out")" 1 "one error line: $out"
}

# Bad input whose one line may come from a tool ferry runs (ch-run, sbatch) rather than ferry
# itself: any non-zero exit, exactly one line of output, holding WANT_TEXT.
one_line_failure() {  # one_line_failure WANT_TEXT CMD...
  local want=$1 rc=0 out
  shift
  out=$("$@" 2>&1) || rc=$?
  [ "$rc" -ne 0 ] || fail "succeeded: $*"
  expect_contains "$out" "$want"
  expect_eq "$(wc -l <<<"$out")" 1 "one line: $out"
}

# The start line a service's --json printed (the first JSON object of a file of output), and a
# field of a JSON text (keys, or list indexes, as further arguments).
start_json() { python3 -c 'import json,sys; t=open(sys.argv[1]).read(); print(json.dumps(json.JSONDecoder().raw_decode(t[t.index("{"):])[0]))' "$1"; }
field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]); [v := v[int(k) if isinstance(v, list) else k] for k in sys.argv[2:]]; print(v)' "$@"; }
