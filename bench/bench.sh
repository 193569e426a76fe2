#!/usr/bin/env bash
# make bench: ferry against what users run today, on tmpfs (the disk is too noisy for ratios, see
# ../shared/notes/benchmarking.md), medians of RUNS runs, all in one run of this script.
# Usage: bench/bench.sh FERRY [ENV_PREFIX]   (default env: the realistic conda fixture)
set -euo pipefail
FERRY=$(readlink -f "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-5}
JOBS=${JOBS:-$(nproc)}
WORK=$(mktemp -d /dev/shm/ferry-bench-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

ENV=${2:-}
if [ -z "$ENV" ]; then
  FIX="$SRC/build/fixtures/conda-full"
  if [ ! -f "$FIX/.built" ]; then
    /usr/bin/python3 "$SRC/tests/fixtures/make_conda_env.py" "$FIX" >/dev/null && touch "$FIX/.built"
  fi
  ENV="$FIX/env"
fi
ENV=$(readlink -f "$ENV")

# median_time CMD...: runs `prepare` (if set) before each run, prints the median wall time in s.
median_time() {
  local times=()
  for _ in $(seq "$RUNS"); do
    [ -n "${PREPARE:-}" ] && eval "$PREPARE"
    sync
    local t0 t1
    t0=$(date +%s.%N)
    eval "$@" >/dev/null 2>&1
    t1=$(date +%s.%N)
    times+=("$(echo "$t1 - $t0" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"
}
# median_cpu CMD...: the median CPU seconds (user + system, children included) of RUNS runs.
median_cpu() {
  local cpus=()
  for _ in $(seq "$RUNS"); do
    [ -n "${PREPARE:-}" ] && eval "$PREPARE"
    /usr/bin/time -f '%U %S' -o "$WORK/cpu.txt" bash -c "$*" >/dev/null 2>&1
    cpus+=("$(awk '{print $1 + $2}' "$WORK/cpu.txt")")
  done
  printf '%s\n' "${cpus[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"
}
size() { stat -c %s "$1"; }
mib() { echo "scale=1; $1 / 1048576" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }

export FERRY_SOURCE=$SRC FERRY_BUILD=${FERRY_BUILD:-$SRC/build}
# shellcheck source=tests/fixtures/pypi_env.sh
. "$SRC/tests/fixtures/pypi_env.sh"

# archive_tables: the pack and unpack tables of $ENV, in the working directory.
archive_tables() {
  files=$(find "$ENV" -type f | wc -l)
  bytes=$(du -sb "$ENV" | cut -f1)
  echo "environment: $ENV ($files files, $(mib "$bytes") MiB); $JOBS threads; $RUNS runs each, medians; tmpfs"
  echo

  # ---- pack ----
  t_ferry_pack=$(PREPARE='rm -f e.tar.zst' median_time "'$FERRY' pack '$ENV' -o e.tar.zst -j $JOBS")
  t_pigz_pack=$(PREPARE='rm -f e.tar.gz' median_time "tar -C '$ENV' -cf - . | pigz -p $JOBS > e.tar.gz")
  t_zstd_pack=$(PREPARE='rm -f z.tar.zst' median_time "tar -C '$ENV' -I 'zstd -T0 -3' -cf z.tar.zst .")
  "$FERRY" pack "$ENV" -o ef.tar.gz --format tar.gz -j "$JOBS" >/dev/null 2>&1
  # The compute floor of a level-3 pack: zstd's own CPU on the tar stream, already in memory, over
  # the cores (reading the files and writing the tar come on top, for every tool).
  tar -C "$ENV" -cf stream.tar .
  c_compress=$(median_cpu "zstd -T$JOBS -3 -q -c stream.tar")
  rm -f stream.tar
  printf '%-44s %9s %10s %14s\n' "pack" "seconds" "size MiB" "ferry faster"
  printf '%-44s %9.2f %10s %14s\n' "ferry pack (tar.zst, level 3)" "$t_ferry_pack" "$(mib "$(size e.tar.zst)")" "1.00x"
  printf '%-44s %9.2f %10s %13.2fx\n' "tar -cf - | pigz" "$t_pigz_pack" "$(mib "$(size e.tar.gz)")" "$(ratio "$t_pigz_pack" "$t_ferry_pack")"
  printf '%-44s %9.2f %10s %13.2fx\n' "tar -I 'zstd -T0 -3'" "$t_zstd_pack" "$(mib "$(size z.tar.zst)")" "$(ratio "$t_zstd_pack" "$t_ferry_pack")"
  f_pack=$(echo "scale=3; $c_compress / $JOBS" | bc)
  printf '%-44s %9.2f %10s %13.2fx\n' "floor: zstd -3 CPU on the tar / $JOBS cores" "$f_pack" "" "$(ratio "$f_pack" "$t_ferry_pack")"
  echo

  # ---- unpack ----
  # Reference archives for the baselines hold the same tree as ferry's (its manifest included), so the
  # relocation pass can read the same record list that conda-unpack would hold.
  mkdir ref && "$FERRY" unpack e.tar.zst ref/env >/dev/null 2>&1 && rm -f ref/env/.ferry/unpacked.json
  tar -C ref/env -cf - . | pigz -p "$JOBS" > base.tar.gz
  tar -C ref/env -I 'zstd -T0 -3' -cf base.tar.zst .
  PREPARE='rm -rf d .d.ferry-*'
  t_ferry=$(median_time "'$FERRY' unpack e.tar.zst d -j $JOBS")
  t_ferry_gz=$(median_time "'$FERRY' unpack ef.tar.gz d -j $JOBS")
  PREPARE='rm -rf d; mkdir d'
  t_pigz=$(median_time "pigz -dc base.tar.gz | tar -C d -xf - && /usr/bin/python3 '$SRC/bench/relocate_pass.py' d")
  t_pigz_only=$(median_time "pigz -dc base.tar.gz | tar -C d -xf -")
  t_zstd=$(median_time "zstd -dc base.tar.zst | tar -C d -xf -")
  PREPARE='rm -rf d'
  t_cp=$(median_time "cp -a ref/env d")
  # The compute floor of an unpack: decoding the frames plus creating the files (tar -x of the
  # uncompressed stream from memory), in CPU seconds, over the cores.
  zstd -dcq e.tar.zst >stream.tar
  c_decode=$(median_cpu "zstd -dcq e.tar.zst")
  PREPARE='rm -rf d; mkdir d'
  c_create=$(median_cpu "tar -C d -xf stream.tar")
  rm -f stream.tar
  f_unpack=$(echo "scale=3; ($c_decode + $c_create) / $JOBS" | bc)
  printf '%-44s %9s %14s\n' "unpack (relocated, ready to run)" "seconds" "ferry faster"
  printf '%-44s %9.2f %14s\n' "ferry unpack (tar.zst)" "$t_ferry" "1.00x"
  printf '%-44s %9.2f %13.2fx\n' "ferry unpack (tar.gz)" "$t_ferry_gz" "$(ratio "$t_ferry_gz" "$t_ferry")"
  printf '%-44s %9.2f %13.2fx\n' "pigz -dc | tar -x + relocation pass (python)" "$t_pigz" "$(ratio "$t_pigz" "$t_ferry")"
  printf '%-44s %9.2f %13.2fx\n' "pigz -dc | tar -x (no relocation)" "$t_pigz_only" "$(ratio "$t_pigz_only" "$t_ferry")"
  printf '%-44s %9.2f %13.2fx\n' "zstd -dc | tar -x (no relocation)" "$t_zstd" "$(ratio "$t_zstd" "$t_ferry")"
  printf '%-44s %9.2f %13.2fx\n' "cp -a of the unpacked tree (copy floor)" "$t_cp" "$(ratio "$t_cp" "$t_ferry")"
  printf '%-44s %9.2f %13.2fx\n' "floor: (zstd -d + tar -x CPU) / $JOBS cores" "$f_unpack" "$(ratio "$f_unpack" "$t_ferry")"
  echo

  # ---- the real conda-pack (PyPI, pinned, in a venv under the build tree) on the same env ----
  # Pack against conda-pack -j; unpack of conda-pack's own tar.gz, as users have them today:
  # ferry unpack (inflated by ISA-L, relocated from the records in bin/conda-unpack) against
  # pigz -dc | tar -x (or tar -xzf) followed by conda-unpack, run by the env's python.
  if [ ! -d "$ENV/conda-meta" ]; then
    echo "conda-pack: skipped ($ENV is not a conda env)"
  elif ! CP_VENV=$(pypi_env conda-pack); then
    echo "conda-pack: skipped (cannot install conda-pack from PyPI)"
  else
    t_cp_pack=$(PREPARE='rm -f cp.tar.gz' median_time "'$CP_VENV/bin/conda-pack' -p '$ENV' -o cp.tar.gz -j $JOBS -q")
    t_ferry_pack_gz=$(PREPARE='rm -f fg.tar.gz' median_time "'$FERRY' pack '$ENV' -o fg.tar.gz --format tar.gz -j $JOBS")
    [ -s cp.tar.gz ] || { echo "conda-pack: it made no archive of $ENV"; exit 1; }
    printf '%-44s %9s %10s %14s\n' "pack (the real conda-pack 0.8.1)" "seconds" "size MiB" "ferry faster"
    printf '%-44s %9.2f %10s %14s\n' "ferry pack (tar.zst, level 3)" "$t_ferry_pack" "$(mib "$(size e.tar.zst)")" "1.00x"
    printf '%-44s %9.2f %10s %13.2fx\n' "ferry pack --format tar.gz" "$t_ferry_pack_gz" "$(mib "$(size fg.tar.gz)")" "$(ratio "$t_ferry_pack_gz" "$t_ferry_pack")"
    printf '%-44s %9.2f %10s %13.2fx\n' "conda-pack -j $JOBS (tar.gz)" "$t_cp_pack" "$(mib "$(size cp.tar.gz)")" "$(ratio "$t_cp_pack" "$t_ferry_pack")"
    echo
    PREPARE='rm -rf d .d.ferry-*'
    t_ferry_cp=$(median_time "'$FERRY' unpack cp.tar.gz d -j $JOBS")
    PREPARE='rm -rf d; mkdir d'
    t_cp_pigz=$(median_time "pigz -dc cp.tar.gz | tar -C d -xf - && d/bin/python d/bin/conda-unpack")
    t_cp_tar=$(median_time "tar -C d -xzf cp.tar.gz && d/bin/python d/bin/conda-unpack")
    printf '%-44s %9s %14s\n' "unpack conda-pack's tar.gz (relocated)" "seconds" "ferry faster"
    printf '%-44s %9.2f %14s\n' "ferry unpack cp.tar.gz" "$t_ferry_cp" "1.00x"
    printf '%-44s %9.2f %13.2fx\n' "pigz -dc | tar -x + conda-unpack" "$t_cp_pigz" "$(ratio "$t_cp_pigz" "$t_ferry_cp")"
    printf '%-44s %9.2f %13.2fx\n' "tar -xzf + conda-unpack" "$t_cp_tar" "$(ratio "$t_cp_tar" "$t_ferry_cp")"
  fi
  echo

}

# The file-heavy env first (about 60k files: tests/fixtures/heavy-requirements.txt, from PyPI), in
# a directory of its own; then the conda fixture, whose archives the stage part below uses.
if [ -z "${2:-}" ]; then
  if HEAVY=$(pypi_env heavy); then
    mkdir "$WORK/heavy"
    (cd "$WORK/heavy" && ENV=$(readlink -f "$HEAVY") && archive_tables)
    rm -rf "$WORK/heavy"
  else
    echo "the file-heavy env: skipped (cannot install it from PyPI)"
    echo
  fi
fi
cd "$WORK"
archive_tables

# ---- launch and stage (on the 3-node test cluster; needs root for its namespaces) ----
# ferry launch against srun of the same command, inside one allocation, so both pay the same
# step start-up and ferry's share (discovery, planning, the rank wrapper's exec) is the difference.
CLUSTER="$SRC/tests/cluster/cluster.sh"
if [ "${BENCH_CLUSTER:-1}" = 1 ] && bash "$CLUSTER" start >/dev/null 2>&1; then
  trap 'bash "$CLUSTER" stop >/dev/null 2>&1; rm -rf "$WORK"' EXIT
  # shellcheck source=/dev/null
  . "${FERRY_CLUSTER_DIR:-/dev/shm/ferry-cluster}/env.sh"
  LAUNCH_RUNS=${LAUNCH_RUNS:-15}
  timeout -s KILL 300 salloc -N3 bash -c '
    t() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
    for i in $(seq '"$LAUNCH_RUNS"'); do
      echo "srun $(t srun -N3 -n3 true)"
      echo "ferry $(t '"'$FERRY'"' launch -- true)"
    done' 2>/dev/null > launch.times
  med() { grep "^$1 " launch.times | cut -d' ' -f2 | sort -n | sed -n "$(( (LAUNCH_RUNS + 1) / 2 ))p"; }
  t_srun=$(med srun)
  t_launch=$(med ferry)
  printf '%-44s %9s %14s\n' "launch on 3 nodes (1 rank each, 'true')" "ms" "vs srun"
  printf '%-44s %9.1f %14s\n' "srun -N3 -n3 true" "$(echo "scale=1; $t_srun / 1000" | bc)" "1.00x"
  printf '%-44s %9.1f %13.2fx\n' "ferry launch -- true" "$(echo "scale=1; $t_launch / 1000" | bc)" "$(ratio "$t_launch" "$t_srun")"
  printf '%-44s %9.1f\n' "ferry's added time (median difference)" "$(echo "scale=1; ($t_launch - $t_srun) / 1000" | bc)"
  echo

  # ---- dask: time to every worker connected, and teardown, against dask-mpi and SLURMRunner ----
  bash "$SRC/bench/dask_bench.sh" "$FERRY" "$WORK"
  echo

  # ---- ray: time to a driver that sees every node, and teardown, against the seed's recipe and
  # ray symmetric-run ----
  bash "$SRC/bench/ray_bench.sh" "$FERRY" "$WORK"
  echo

  # ---- sweep: a 12-point job-array sweep against submitit ----
  bash "$SRC/bench/sweep_bench.sh" "$FERRY" "$WORK"
  echo

  # ---- stage: the Frontier recipe against ferry stage, node-local /mnt (tmpfs) ----
  # Recipe: sbcast the tar.gz, srun tar -I pigz -xf on every node, then the relocation pass
  # (conda-unpack's work, in Python) on every node. The archive holds the same tree as ferry's.
  # On 3 nodes the nodes share this machine's 2 cores; on 1 node each tool has both, as on a real
  # node.
  STAGE_RUNS=${STAGE_RUNS:-5}
  export HYDRA_IFACE=${FERRY_CLUSTER_IFACE:-ferrybr0}
  cat > stage.sh <<SH
set -e
N=\$1
t() { local s e; s=\$(date +%s%N); "\$@" >/dev/null 2>&1; e=\$(date +%s%N); echo \$(( (e - s) / 1000 )); }
clean() { srun -N\$N --ntasks-per-node=1 rm -rf /mnt/ferry-bench; }
recipe() {
  srun -N\$N --ntasks-per-node=1 mkdir -p /mnt/ferry-bench/env
  sbcast --force $WORK/base.tar.gz /mnt/ferry-bench/env.tar.gz
  srun -N\$N --ntasks-per-node=1 sh -c 'tar -I pigz -xf /mnt/ferry-bench/env.tar.gz -C /mnt/ferry-bench/env && rm /mnt/ferry-bench/env.tar.gz'
}
reloc() { srun -N\$N --ntasks-per-node=1 /usr/bin/python3 $SRC/bench/relocate_pass.py /mnt/ferry-bench/env; }
for i in \$(seq $STAGE_RUNS); do
  clean; echo "recipe_copy_untar \$(t recipe)"; echo "recipe_relocate \$(t reloc)"
  clean; echo "sbcast \$(t $FERRY stage $WORK/e.tar.zst --to /mnt/ferry-bench/env --via sbcast)"
  clean; echo "mpi \$(t $FERRY stage $WORK/e.tar.zst --to /mnt/ferry-bench/env --via mpi)"
done
clean
$FERRY stage $WORK/e.tar.zst --to /mnt/ferry-bench/env --via mpi --json > $WORK/stage-mpi-\$N.json
clean
$FERRY stage $WORK/e.tar.zst --to /mnt/ferry-bench/env --via sbcast --json > $WORK/stage-sbcast-\$N.json
clean
SH
  secs() { echo "scale=2; $1 / 1000000" | bc; }
  unpacked=$(du -sb "$WORK/ref/env" | cut -f1)
  stage_table() {  # N: nodes
    local n=$1
    timeout -s KILL 900 salloc -N"$n" bash stage.sh "$n" 2>/dev/null > "stage-$n.times" || true
    smed() { grep "^$1 " "stage-$n.times" | cut -d' ' -f2 | sort -n | sed -n "$(( (STAGE_RUNS + 1) / 2 ))p"; }
    local t_copy t_reloc t_recipe t_sb t_mpi
    t_copy=$(smed recipe_copy_untar); t_reloc=$(smed recipe_relocate)
    t_recipe=$((t_copy + t_reloc)); t_sb=$(smed sbcast); t_mpi=$(smed mpi)
    printf '%-44s %9s %14s %14s\n' "stage to $n node(s) (node-local, relocated)" "seconds" "ferry faster" "MiB/s/node"
    printf '%-44s %9.2f %13.2fx %14s\n' "recipe: sbcast + srun tar -I pigz + reloc" "$(secs "$t_recipe")" "$(ratio "$t_recipe" "$t_mpi")" "$(echo "scale=0; $unpacked / 1048576 * 1000000 / $t_recipe" | bc)"
    printf '%-44s %9.2f %14s\n' "  of which sbcast + untar" "$(secs "$t_copy")" ""
    printf '%-44s %9.2f %14s\n' "  of which relocation pass" "$(secs "$t_reloc")" ""
    printf '%-44s %9.2f %13.2fx %14s\n' "ferry stage --via mpi" "$(secs "$t_mpi")" "1.00" "$(echo "scale=0; $unpacked / 1048576 * 1000000 / $t_mpi" | bc)"
    printf '%-44s %9.2f %13.2fx %14s\n' "ferry stage --via sbcast" "$(secs "$t_sb")" "$(ratio "$t_sb" "$t_mpi")" "$(echo "scale=0; $unpacked / 1048576 * 1000000 / $t_sb" | bc)"
    for via in mpi sbcast; do
      echo "  phases ($via): $(/usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(", ".join(f"{k} {v:.2f} s" for k, v in j["phases"].items()))' "$WORK/stage-$via-$n.json")"
    done
  }
  stage_table 3
  echo
  stage_table 1
else
  if [ "${BENCH_CLUSTER:-1}" = 1 ]; then echo "launch and stage: skipped (the test cluster needs root and network namespaces)"; fi
fi
