# Malformed or inconsistent scheduler variables, missing nodefiles, bad options: one clear line
# naming the variable, file or option, and a non-zero exit.
source "$(dirname "$0")/common.sh"
clean=(env -i PATH="$PATH" HOME="$TEST_DIR")

expect_failure "hostlist 'node[1-': '[' without a closing ']'" "${clean[@]}" SLURM_JOB_ID=5 'SLURM_JOB_NODELIST=node[1-' "$FERRY" job
expect_failure "SLURM_JOB_ID=5 is set but SLURM_JOB_NODELIST is not" "${clean[@]}" SLURM_JOB_ID=5 "$FERRY" job
expect_failure "SLURM_NNODES=4 disagrees with SLURM_JOB_NODELIST=node[1-3] (3 hosts)" \
  "${clean[@]}" SLURM_JOB_ID=5 'SLURM_JOB_NODELIST=node[1-3]' SLURM_NNODES=4 "$FERRY" job
expect_failure "SLURM_JOB_NUM_NODES=2 disagrees" \
  "${clean[@]}" SLURM_JOB_ID=5 'SLURM_JOB_NODELIST=node[1-3]' SLURM_JOB_NUM_NODES=2 "$FERRY" launch --dry-run -- true
expect_failure "SLURM_JOB_CPUS_PER_NODE=2(x2) lists 2 hosts, SLURM_JOB_NODELIST has 3" \
  "${clean[@]}" SLURM_JOB_ID=5 'SLURM_JOB_NODELIST=node[1-3]' 'SLURM_JOB_CPUS_PER_NODE=2(x2)' "$FERRY" job
expect_failure "SLURM_JOB_CPUS_PER_NODE='2(x': expected counts" \
  "${clean[@]}" SLURM_JOB_ID=5 'SLURM_JOB_NODELIST=node[1-3]' 'SLURM_JOB_CPUS_PER_NODE=2(x' "$FERRY" job

expect_failure "PBS_JOBID=7.pbs is set but PBS_NODEFILE is not" "${clean[@]}" PBS_JOBID=7.pbs "$FERRY" job
expect_failure "PBS_NODEFILE=$TEST_DIR/missing: cannot read the nodefile" \
  "${clean[@]}" PBS_JOBID=7.pbs PBS_NODEFILE="$TEST_DIR/missing" "$FERRY" job
printf '\n# no hosts\n' > empty.nodes
expect_failure "PBS_NODEFILE=$TEST_DIR/empty.nodes: the nodefile is empty" \
  "${clean[@]}" PBS_JOBID=7.pbs PBS_NODEFILE="$TEST_DIR/empty.nodes" "$FERRY" job --json
expect_failure "LSB_MCPU_HOSTS='h1 42 h2': expected 'host slots' pairs" \
  "${clean[@]}" LSB_JOBID=3 'LSB_MCPU_HOSTS=h1 42 h2' "$FERRY" job
expect_failure "COBALT_JOBSIZE=4 disagrees with COBALT_NODEFILE (1 hosts)" \
  "${clean[@]}" COBALT_JOBID=3 COBALT_JOBSIZE=4 COBALT_NODEFILE=<(echo thetagpu01) "$FERRY" job

# Rank variables that contradict each other.
expect_failure "PALS_RANKID=9 is not below PMI_SIZE=4" \
  "${clean[@]}" PALS_RANKID=9 PALS_LOCAL_RANKID=0 PMI_SIZE=4 PALS_LOCAL_SIZE=2 PALS_NODEID=0 "$FERRY" rank --json
expect_failure "SLURM_PROCID='x': expected a number" \
  "${clean[@]}" SLURM_STEP_NUM_TASKS=2 SLURM_PROCID=x SLURM_LOCALID=0 SLURM_NODEID=0 'SLURM_STEP_TASKS_PER_NODE=2' "$FERRY" rank --json

# Options that do not fit the node or the allocation.
expect_failure "--gpus-per-rank 1: this node has no GPU the job can use" \
  "${clean[@]}" "$FERRY" launch --dry-run --gpus-per-rank 1 --sysfs-root "$FERRY_SOURCE/tests/fixtures/sysfs/none" -- true
expect_failure "--nodes 3: the allocation has 1 hosts" "${clean[@]}" "$FERRY" launch --dry-run -N 3 -- true
expect_failure "COMMAND is required" "${clean[@]}" "$FERRY" launch --dry-run
expect_failure "--env novalue: expected KEY=VALUE" "${clean[@]}" "$FERRY" rank --env novalue -- true
expect_failure "hostlist 'n[5-3]': range 5-3 goes backwards" "$FERRY" hostlist expand 'n[5-3]'

# ferry stage: outside a job, bad options, the wrong way for the scheduler.
ARCHIVE="$TEST_DIR/a.tar.zst"
mkdir -p tiny/bin && echo hi > tiny/bin/x && "$FERRY" pack tiny -o "$ARCHIVE" >/dev/null
expect_failure "ferry stage runs inside a job" "${clean[@]}" "$FERRY" stage "$ARCHIVE" --to /mnt/env
expect_failure "--to rel/env: must be an absolute path" "${clean[@]}" SLURM_JOB_ID=5 SLURM_JOB_NODELIST=n1 "$FERRY" stage "$ARCHIVE" --to rel/env
expect_failure "--timeout 0: must be more than 0 seconds" "${clean[@]}" SLURM_JOB_ID=5 SLURM_JOB_NODELIST=n1 "$FERRY" stage "$ARCHIVE" --to /mnt/env --timeout 0
expect_failure "$TEST_DIR/missing.tar.zst: cannot open archive" "${clean[@]}" SLURM_JOB_ID=5 SLURM_JOB_NODELIST=n1 "$FERRY" stage "$TEST_DIR/missing.tar.zst" --to /mnt/env
printf 'n1\n' > pbs.nodes
expect_failure "--via sbcast needs Slurm (this is a pbs job)" "${clean[@]}" PBS_JOBID=1 PBS_NODEFILE="$TEST_DIR/pbs.nodes" "$FERRY" stage "$ARCHIVE" --to /mnt/env --via sbcast

# A missing launcher is named, not a hang.
expect_failure "flux getattr hostlist" "${clean[@]}" FLUX_URI=local:///nonexistent PATH=/nonexistent "$FERRY" job
echo ok
