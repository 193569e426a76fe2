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
