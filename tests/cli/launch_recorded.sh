# ferry launch --dry-run on recorded machines (sysfs trees in tests/fixtures/sysfs, the scheduler's
# variables as the facility sets them) against the line each facility documents, and each rank's
# GPU against the facility's own affinity script.
source "$(dirname "$0")/common.sh"
TREES="$FERRY_SOURCE/tests/fixtures/sysfs"
clean=(env -i PATH="$PATH" HOME="$TEST_DIR")
field() { /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1], {"j": j}))' "$1"; }
# The arguments ferry gives its rank wrapper: between "rank" and "--".
rank_args() { echo "$1" | sed -e 's/.* rank //' -e 's/ -- .*//'; }

# ---- Polaris (ALCF): PBS + PALS, 4 A100 in reverse NUMA order.
printf 'x3005c0s7b0n0.hsn.cm.polaris.alcf.anl.gov\nx3005c0s13b0n0.hsn.cm.polaris.alcf.anl.gov\n' > polaris.nodes
polaris=("${clean[@]}" PBS_JOBID=1191229.polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov PBS_NODEFILE="$TEST_DIR/polaris.nodes")
popts=(--sysfs-root "$TREES/polaris" --hostname x3005c0s7b0n0)
"${polaris[@]}" "$FERRY" job --json "${popts[@]}" > polaris.json
expect_eq "$(field 'j["machine"]' < polaris.json)" polaris
line=$("${polaris[@]}" "$FERRY" launch --dry-run "${popts[@]}" -- ./app)
# Docs: mpiexec -n ${NTOTRANKS} --ppn ${NRANKS_PER_NODE} --depth=${NDEPTH} --cpu-bind depth ./set_affinity_gpu_polaris.sh ./app
expect_contains "$line" "mpiexec --envall --line-buffer -n 8 --ppn 4 --hostfile $TEST_DIR/.cache/ferry/jobs/pbs-1191229.polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov/hostfile-"
expect_contains "$line" " --depth=8 --cpu-bind=depth "
hostfile=$(echo "$line" | sed 's/.* --hostfile \([^ ]*\) .*/\1/')
expect_eq "$(cat "$hostfile")" "x3005c0s7b0n0.hsn.cm.polaris.alcf.anl.gov
x3005c0s13b0n0.hsn.cm.polaris.alcf.anl.gov"
expect_contains "$line" " -- ./app"
expect_contains "$line" "--master-addr x3005c0s7b0n0.hsn.cm.polaris.alcf.anl.gov"
# set_affinity_gpu_polaris.sh: CUDA_VISIBLE_DEVICES=$((3 - PMI_LOCAL_RANK % 4)), on every node
# (the line names GPUs by position, never by one node's UUIDs).
read -ra args <<< "$(rank_args "$line")"
for r in 0 1 2 3 4 7; do
  local_rank=$((r % 4))
  got=$("${clean[@]}" PALS_RANKID=$r PALS_LOCAL_RANKID=$local_rank PMI_SIZE=8 PALS_LOCAL_SIZE=4 PALS_NODEID=$((r / 4)) \
        "$FERRY" rank "${args[@]}" --json | field 'j["CUDA_VISIBLE_DEVICES"] + " " + j["RANK"] + " " + j["LOCAL_RANK"] + " " + j["CUDA_DEVICE_ORDER"]')
  expect_eq "$got" "$((3 - local_rank)) $r $local_rank PCI_BUS_ID" "polaris rank $r"
done
case "$line" in *GPU-*) fail "a UUID in the launch line names one node's GPU only: $line";; esac
# More ranks per node than GPUs: refused with one line.
expect_failure "--ppn 5 with 1 GPU(s) per rank needs 5 GPUs per node; this node has 4" \
  "${polaris[@]}" "$FERRY" launch --dry-run --ppn 5 "${popts[@]}" -- ./app

# ---- Aurora (ALCF): PBS + PALS, 6 PVC x 2 tiles, FLAT hierarchy, reserved cores 0 and 52.
printf 'x4102c5s0b0n0\nx4102c5s1b0n0\n' > aurora.nodes
aurora=("${clean[@]}" PBS_JOBID=123.aurora-pbs-0001.hostmgmt.cm.aurora.alcf.anl.gov PBS_NODEFILE="$TEST_DIR/aurora.nodes")
aopts=(--sysfs-root "$TREES/aurora" --hostname x4102c5s0b0n0)
line=$("${aurora[@]}" "$FERRY" launch --dry-run "${aopts[@]}" -- python3 train.py)
# Docs: mpiexec -n 12 -ppn 12 --cpu-bind=list:1-8:9-16:...:93-100 gpu_tile_compact.sh ./app
expect_contains "$line" "mpiexec --envall --line-buffer -n 24 --ppn 12 --hostfile "
expect_contains "$line" " --cpu-bind=list:1-8:9-16:17-24:25-32:33-40:41-48:53-60:61-68:69-76:77-84:85-92:93-100 "
read -ra args <<< "$(rank_args "$line")"
# gpu_tile_compact.sh: card (local/2)%6, tile local%2, i.e. flat device = local rank in FLAT mode.
for r in 0 1 5 11 12 23; do
  got=$("${clean[@]}" PALS_RANKID=$r PALS_LOCAL_RANKID=$((r % 12)) PMI_SIZE=24 PALS_LOCAL_SIZE=12 PALS_NODEID=$((r / 12)) \
        "$FERRY" rank "${args[@]}" --json | field 'j["ZE_AFFINITY_MASK"] + " " + j["ZE_FLAT_DEVICE_HIERARCHY"]')
  expect_eq "$got" "$((r % 12)) FLAT" "aurora rank $r"
done
# One rank per card: the docs' 6-rank list, each rank both tiles of one card.
line=$("${aurora[@]}" "$FERRY" launch --dry-run --ppn 6 --gpus-per-rank 2 "${aopts[@]}" -- ./app)
expect_contains "$line" " -n 12 --ppn 6 "
expect_contains "$line" " --cpu-bind=list:1-16:17-32:33-48:53-68:69-84:85-100 "
read -ra args <<< "$(rank_args "$line")"
got=$("${clean[@]}" PALS_RANKID=3 PALS_LOCAL_RANKID=3 PMI_SIZE=12 PALS_LOCAL_SIZE=6 PALS_NODEID=0 "$FERRY" rank "${args[@]}" --json | field 'j["ZE_AFFINITY_MASK"]')
expect_eq "$got" "6,7"

# ---- Frontier (OLCF): Slurm, 8 GCDs, -S 8 leaves 56 cores; Slurm binds GPUs itself.
frontier=("${clean[@]}" SLURM_JOB_ID=1855123 'SLURM_JOB_NODELIST=frontier[00001-00002]' SLURM_JOB_NUM_NODES=2
          'SLURM_JOB_CPUS_PER_NODE=112(x2)' LMOD_SYSTEM_NAME=frontier)
fopts=(--sysfs-root "$TREES/frontier" --hostname frontier00001)
expect_eq "$("${frontier[@]}" "$FERRY" job --json "${fopts[@]}" | field 'j["machine"]')" frontier
line=$("${frontier[@]}" "$FERRY" launch --dry-run "${fopts[@]}" -- ./app)
# Docs: srun -N2 -n16 -c7 --gpus-per-task=1 --gpu-bind=closest ./app
expect_contains "$line" "srun -N 2 -n 16 --ntasks-per-node=8 -c 7 "
expect_contains "$line" " --gpus-per-task=1 --gpu-bind=closest "
expect_contains "$line" "'--nodelist=frontier[00001-00002]'"
case "$line" in *--visibility*) fail "Slurm binds Frontier's GPUs; ferry must not set ROCR_VISIBLE_DEVICES: $line";; esac

# ---- Perlmutter (NERSC): recognised by NERSC_HOST, not by its generic nid names.
perl=("${clean[@]}" SLURM_JOB_ID=99 'SLURM_JOB_NODELIST=nid[001000-001001]' SLURM_JOB_NUM_NODES=2)
expect_eq "$("${perl[@]}" "$FERRY" job --json --sysfs-root "$TREES/polaris" --hostname nid001000 | field 'j["machine"]')" generic-slurm
line=$("${perl[@]}" NERSC_HOST=perlmutter "$FERRY" launch --dry-run --sysfs-root "$TREES/polaris" --hostname nid001000 -- ./app)
# Docs: #SBATCH --ntasks-per-node=4 --gpus-per-node=4 --cpus-per-task=32; srun ...
expect_contains "$line" "srun -N 2 -n 8 --ntasks-per-node=4 -c 32 "

# ---- Recognition by FQDN domain, and a centre's own entries (FERRY_MACHINES).
expect_eq "$("${polaris[@]}" "$FERRY" job --json --sysfs-root "$TREES/polaris" --hostname x9.polaris.alcf.anl.gov | field 'j["machine"]')" polaris
cat > site.json <<'JSON'
// A centre's file: a new machine and a changed Polaris layout.
{"machines": [
  {"name": "mycluster", "match": {"hostnames": ["^mc[0-9]+$"]}, "launcher": "pals",
   "layouts": {"4": {"cpu_bind": "list:0-7:8-15:16-23:24-31"}}},
  {"name": "polaris", "match": {"hostnames": ["^x3[0-9]{3}c0s[0-9]+b[01]n0$"]}, "launcher": "pals",
   "layouts": {"4": {"cpu_bind": "list:24-31:16-23:8-15:0-7"}}}
]}
JSON
line=$("${polaris[@]}" FERRY_MACHINES="$TEST_DIR/site.json" "$FERRY" launch --dry-run --sysfs-root "$TREES/polaris" --hostname mc01 -- ./app)
expect_contains "$line" "mpiexec -n 8 --ppn 4 --hostfile "
expect_contains "$line" " --cpu-bind=list:0-7:8-15:16-23:24-31 "
line=$("${polaris[@]}" FERRY_MACHINES="$TEST_DIR/site.json" "$FERRY" launch --dry-run "${popts[@]}" -- ./app)
expect_contains "$line" " --cpu-bind=list:24-31:16-23:8-15:0-7 "
echo '{"machines": [ {"name": "x", "launcher": "teleport"} ]}' > bad.json
expect_failure "bad.json: machine 'x': unknown launcher 'teleport'" "${polaris[@]}" FERRY_MACHINES="$TEST_DIR/bad.json" "$FERRY" job "${popts[@]}"
echo '{"machines": [' > broken.json
expect_failure "broken.json: not a valid machine table" "${polaris[@]}" FERRY_MACHINES="$TEST_DIR/broken.json" "$FERRY" job "${popts[@]}"
expect_failure "--machine nosuch: unknown machine (known: " "${polaris[@]}" "$FERRY" job --machine nosuch "${popts[@]}"
echo ok
