#!/usr/bin/env bash
# The test cluster behaves like a real one in the ways ferry relies on: three named nodes, node-local
# /mnt per node, hostlist expansion, MPICH across nodes, sbcast to node-local storage.
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"

# Three nodes, each with its own hostname.
expect_eq "$(on_cluster srun -N3 hostname | sort | tr '\n' ' ')" "node1 node2 node3 " "srun -N3 hostname"

# scontrol expands hostlist expressions (an oracle for ferry's own parser).
expect_eq "$(on_cluster scontrol show hostnames 'node[1-3]' | tr '\n' ' ')" "node1 node2 node3 "
expect_eq "$(on_cluster scontrol show hostnames 'node[1,3]' | tr '\n' ' ')" "node1 node3 "

# Node-local /mnt: what a job writes there on nodeN is seen only on nodeN, and not on this machine.
root_mnt_before=$(ls -A /mnt)
each_node "mkdir -p /mnt/$TEST_NAME && hostname > /mnt/$TEST_NAME/who" >/dev/null
expect_eq "$(each_node "cat /mnt/$TEST_NAME/who" | tr '\n' ' ')" "node1 node1 node2 node2 node3 node3 " "each node reads back its own /mnt"
for n in node1 node2 node3; do
  expect_eq "$(cat "$FERRY_CLUSTER_LOCAL/$n/$TEST_NAME/who")" "$n" "$n's /mnt seen from the host"
done
[ ! -e "/mnt/$TEST_NAME" ] || fail "a node wrote into this machine's /mnt"
expect_eq "$(ls -A /mnt)" "$root_mnt_before" "this machine's /mnt is untouched"

# MPICH across the nodes: 6 ranks, 2 per node, and MPI's own idea of "same node" agrees.
cat >ranks.c <<'EOF'
#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
  int rank, size, local, len, one = 1, sum = 0;
  char name[MPI_MAX_PROCESSOR_NAME];
  MPI_Comm node;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  MPI_Comm_size(node, &local);
  MPI_Get_processor_name(name, &len);
  MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD); /* real cross-node traffic */
  printf("%s ranks-on-node=%d allreduce=%d\n", name, local, sum);
  MPI_Finalize();
  return 0;
}
EOF
mpicc -o ranks ranks.c
out=$(on_cluster salloc -N3 mpiexec.mpich -iface "$FERRY_CLUSTER_IFACE" -n 6 -ppn 2 ./ranks 2>/dev/null | sort | uniq -c | awk '{print $1, $2, $3, $4}')
expect_eq "$out" "$(printf '2 %s ranks-on-node=2 allreduce=6\n' node1 node2 node3)" "mpiexec -n 6 -ppn 2 on 3 nodes"

# sbcast a 20 MB file into every node's /mnt; same bytes everywhere.
head -c 20000000 /dev/urandom >payload
want=$(md5sum <payload | cut -d' ' -f1)
# (The /mnt of a node outlives the job, like node-local NVMe within one allocation on Frontier.)
on_cluster salloc -N3 sbcast payload "/mnt/$TEST_NAME/payload" 2>/dev/null
out=$(each_node "md5sum < /mnt/$TEST_NAME/payload | cut -d' ' -f1")
expect_eq "$out" "$(printf 'node1 %s\nnode2 %s\nnode3 %s' "$want" "$want" "$want")" "sbcast to /mnt"

echo "PASS"
