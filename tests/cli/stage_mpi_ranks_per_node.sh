#!/usr/bin/env bash
# ferry-mpi started with several ranks on one node (a hand-made mpiexec line, not ferry stage's
# one-per-node): only the node's first rank extracts, one report comes back for the node, the tree
# is complete and relocated; a second run finds it present. The cluster tests cover one rank per
# node on three nodes.
source "$(dirname "$0")/common.sh"
[ -x "$FERRY_BUILD/ferry-mpi" ] || skip "ferry-mpi was not built (no MPI found at configure time)"
mpiexec=$("$FERRY_BUILD/ferry-mpi" --mpi | sed -n 2p)
[ -x "$mpiexec" ] || skip "no mpiexec for ferry-mpi's MPI"
env=$(conda_fixture small)
"$FERRY" pack "$env" -o env.tar.zst >/dev/null
dest=$TEST_DIR/node/env
mkdir -p "$TEST_DIR/node"

reports() { grep '"status"' "$1" | "$DEBIAN_PYTHON" -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
print(len(rows), " ".join(sorted(r["status"] for r in rows)), rows[0]["files"])'; }

timeout 120 "$mpiexec" -n 3 "$FERRY_BUILD/ferry-mpi" stage "$TEST_DIR/env.tar.zst" "$dest" >first.out 2>first.err ||
  fail "ferry-mpi with 3 ranks on one node failed: $(cat first.err)"
files=$("$FERRY" unpack env.tar.zst "$TEST_DIR/ref" --json | "$DEBIAN_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["files"])')
expect_eq "$(reports first.out)" "1 unpacked $files" "one node, one report"
"$dest/bin/python3" -c 'import sys; assert sys.prefix == sys.argv[1], sys.prefix' "$dest" ||
  fail "the staged python does not run from $dest"
grep -rlF "$env" "$dest/bin" && fail "files under $dest/bin still name the packed prefix"
expect_eq "$(ls -A "$TEST_DIR/node" | grep -v '\.ferry-lock$')" "env" "nothing but the env (and its lock) beside it"

timeout 120 "$mpiexec" -n 2 "$FERRY_BUILD/ferry-mpi" stage "$TEST_DIR/env.tar.zst" "$dest" >second.out 2>second.err ||
  fail "the second run failed: $(cat second.err)"
expect_eq "$(reports second.out | cut -d' ' -f1-2)" "1 present"
echo ok
