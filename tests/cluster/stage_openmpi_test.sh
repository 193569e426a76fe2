# The stage scenarios of stage_test.sh through Open MPI: a ferry whose ferry-mpi is the build
# against Open MPI, so ferry stage starts it with Open MPI's mpirun (whose daemons Slurm starts on
# the nodes). stage_mpi_test.sh runs the same scenarios on MPICH.
here=$(cd "$(dirname "$0")" && pwd)
build=${FERRY_BUILD:-$here/../../build}
[ -x "$build/ferry-mpi-openmpi" ] || { echo "SKIPPED: Open MPI is not installed beside the default MPI (no ferry-mpi-openmpi)"; exit 77; }
cluster_env=${FERRY_CLUSTER_DIR:-/dev/shm/ferry-cluster}/env.sh
if [ -f "$cluster_env" ]; then
  # shellcheck source=/dev/null
  . "$cluster_env"
  # Open MPI's daemons inside the node namespaces call mpirun back over the cluster's subnet (the
  # bridge has another name in there, so an interface name would not do).
  subnet=$(ip -4 -o addr show dev "$FERRY_CLUSTER_IFACE" | awk '{print $4}' |
    /usr/bin/python3 -c 'import ipaddress, sys; print(ipaddress.ip_interface(sys.stdin.read().strip()).network)')
  export OMPI_MCA_oob_tcp_if_include=$subnet OMPI_MCA_btl_tcp_if_include=$subnet
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
bin=$(mktemp -d /dev/shm/ferry-openmpi-bin-XXXXXX)
trap 'rm -rf "$bin"' EXIT
cp "$build/ferry" "$bin/ferry"
cp "$build/ferry-mpi-openmpi" "$bin/ferry-mpi"
FERRY=$bin/ferry STAGE_VIA=mpi bash "$here/stage_test.sh"
