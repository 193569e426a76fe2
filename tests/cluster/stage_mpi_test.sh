# The stage scenarios of stage_test.sh through the MPI path: ferry-mpi started by MPICH's mpiexec
# on every node, the archive streamed by pipelined broadcasts and extracted as it arrives.
here=$(cd "$(dirname "$0")" && pwd)
build=${FERRY_BUILD:-$here/../../build}
[ -x "$build/ferry-mpi" ] || { echo "SKIPPED: ferry-mpi was not built (no MPI found at configure time)"; exit 77; }
export STAGE_VIA=mpi
exec bash "$here/stage_test.sh"
