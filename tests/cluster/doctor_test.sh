# ferry doctor on the 3-node cluster: inside an allocation it names the Slurm job, its three
# hosts, the machine entry and launcher, and srun's and sbatch's versions (what `srun --version`
# says); on a node, the node's own /mnt as $TMPDIR is node-local and is what it suggests. And the
# installed tree (make install) stages through the MPI path with the ferry-mpi it finds in
# PREFIX/libexec/ferry, nothing beside the ferry binary.
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"
in_job() { CLUSTER_TIMEOUT=90 on_cluster salloc -N3 "$@"; }

out=$(in_job "$FERRY" doctor --json 2>/dev/null)
expect_eq "$(field "$out" job scheduler)" slurm
expect_eq "$(field "$out" job hosts)" "['node1', 'node2', 'node3']"
expect_eq "$(field "$out" job machine)" generic-slurm
expect_eq "$(field "$out" job launcher)" srun
[ -n "$(field "$out" job job_id)" ] || fail "no job id: $out"
srun_version=$(srun --version | awk '{print $2}')
expect_eq "$(python3 -c 'import json,sys; print([p["version"] for p in json.loads(sys.argv[1])["launchers"] if p["name"] == "srun"][0])' "$out")" "$srun_version"
expect_eq "$(python3 -c 'import json,sys; print([p["version"] for p in json.loads(sys.argv[1])["schedulers"] if p["name"] == "sbatch"][0])' "$out")" "$srun_version"
text=$(in_job "$FERRY" doctor 2>/dev/null)
expect_contains "$text" "slurm job "
expect_contains "$text" ": 3 hosts (node[1-3]), machine generic-slurm, launcher srun"

# On node2, in a step, with TMPDIR on its own /mnt.
on_cluster srun -N1 -w node2 mkdir -p "/mnt/$TEST_NAME/tmp"
node=$(in_job srun -N1 -w node2 env TMPDIR="/mnt/$TEST_NAME/tmp" "$FERRY" doctor --json 2>/dev/null)
expect_eq "$(field "$node" node_local 0 path)" "/mnt/$TEST_NAME/tmp"
expect_eq "$(field "$node" node_local 0 node_local)" True
expect_eq "$(field "$node" suggested_dir)" "/mnt/$TEST_NAME/tmp"
expect_eq "$(field "$node" job scheduler)" slurm

# The installed tree stages through MPI: its ferry finds PREFIX/libexec/ferry/ferry-mpi.
if [ -x "$FERRY_BUILD/ferry-mpi" ] && [ -x /usr/bin/python3 ]; then
  prefix=$TEST_DIR/prefix
  cmake --install "$FERRY_BUILD" --prefix "$prefix" >/dev/null
  ENV=$(conda_fixture small)
  "$prefix/bin/ferry" pack "$ENV" -o "$TEST_DIR/env.tar.zst" -q
  export HYDRA_IFACE=$FERRY_CLUSTER_IFACE
  out="$(CLUSTER_TIMEOUT=120 in_job "$prefix/bin/ferry" stage "$TEST_DIR/env.tar.zst" --to "/mnt/$TEST_NAME/env" --via mpi --json 2>stage.err)" ||
    fail "installed ferry stage failed: $(cat stage.err)"
  expect_eq "$(field "$out" via)" mpi
  expect_eq "$(field "$out" ok)" True
  runs=$(each_node "/mnt/$TEST_NAME/env/bin/python3 -c 'import numpy, sys; print(sys.prefix)'")
  expect_eq "$runs" "node1 /mnt/$TEST_NAME/env
node2 /mnt/$TEST_NAME/env
node3 /mnt/$TEST_NAME/env"
fi
echo "doctor: the job, its launchers and a node's own storage, as the cluster has them"
