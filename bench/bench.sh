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
  # Made on tmpfs for each run (5 s), package cache and all (ferry reads the files the env was
  # linked from): the build tree's disk pages are paged out when cold (this VM runs DAMON's
  # reclaim), which put disk reads into some runs and not others.
  /usr/bin/python3 "$SRC/tests/fixtures/make_conda_env.py" "$WORK/conda-full" >/dev/null
  ENV="$WORK/conda-full/env"
fi
ENV=$(readlink -f "$ENV")

# bench_set NAME PREPARE CMD [NAME PREPARE CMD]...: one warm-up round, discarded (this VM's first
# touches of memory are slow: an unwarmed first run is 1.5-2x slower), then RUNS rounds in which
# each CMD runs once in turn (A, B, C, A, B, C...), each after its PREPARE. `t NAME` prints the
# median wall time in s, `peak NAME` the peak memory in MiB: the largest resident set of any one
# process in CMD over the rounds, as wait4 reports it (GNU time's %M).
bench_set() {
  local args=("$@") n=$(( $# / 3 )) round k name prep cmd t0 t1
  for k in $(seq 0 $((n - 1))); do rm -f "$WORK/times.${args[$((3 * k))]}" "$WORK/peaks.${args[$((3 * k))]}"; done
  for round in $(seq 0 "$RUNS"); do
    for k in $(seq 0 $((n - 1))); do
      name=${args[$((3 * k))]} prep=${args[$((3 * k + 1))]} cmd=${args[$((3 * k + 2))]}
      [ -n "$prep" ] && eval "$prep"
      sync
      t0=$(date +%s.%N)
      /usr/bin/time -f '%M' -o "$WORK/rss.txt" bash -c "$cmd" >/dev/null 2>&1 || true
      t1=$(date +%s.%N)
      [ "$round" = 0 ] && continue
      echo "$t1 - $t0" | bc >> "$WORK/times.$name"
      tail -1 "$WORK/rss.txt" >> "$WORK/peaks.$name"
    done
  done
}
t() { sort -n "$WORK/times.$1" | sed -n "$(( (RUNS + 1) / 2 ))p"; }
peak() { echo "$(sort -n "$WORK/peaks.$1" | tail -1) / 1024" | bc; }
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
# median_producer_cpu CMD...: the same for CMD alone, its stdout a pipe that cat empties.
median_producer_cpu() {
  local cpus=()
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f '%U %S' -o "$WORK/cpu.txt" bash -c "$*" 2>/dev/null | cat > /dev/null
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
  bench_set ferry_pack 'rm -f e.tar.zst' "'$FERRY' pack '$ENV' -o e.tar.zst -j $JOBS" \
    pigz_pack 'rm -f e.tar.gz' "tar -C '$ENV' -cf - . | pigz -p $JOBS > e.tar.gz" \
    zstd_pack 'rm -f z.tar.zst' "tar -C '$ENV' -I 'zstd -T0 -3' -cf z.tar.zst ."
  t_ferry_pack=$(t ferry_pack)
  "$FERRY" pack "$ENV" -o ef.tar.gz --format tar.gz -j "$JOBS" >/dev/null 2>&1
  # The compute floor of a level-3 pack: zstd's own CPU on the tar stream, already in memory, plus
  # the CPU of reading the files into that stream (tar's own, writing into a pipe), over the cores.
  tar -C "$ENV" -cf stream.tar .
  c_compress=$(median_cpu "zstd -T$JOBS -3 -q -c stream.tar")
  rm -f stream.tar
  c_read=$(median_producer_cpu "tar -C '$ENV' -cf - .")
  row3() { printf '%-44s %9.2f %10s %9s %13.2fx\n' "$1" "$(t "$2")" "$(mib "$(size "$3")")" "$(peak "$2")" "$(ratio "$(t "$2")" "$t_ferry_pack")"; }
  printf '%-44s %9s %10s %9s %14s\n' "pack" "seconds" "size MiB" "peak MiB" "ferry faster"
  row3 "ferry pack (tar.zst, level 3)" ferry_pack e.tar.zst
  row3 "tar -cf - | pigz" pigz_pack e.tar.gz
  row3 "tar -I 'zstd -T0 -3'" zstd_pack z.tar.zst
  f_pack=$(echo "scale=3; $c_compress / $JOBS" | bc)
  f_pack_read=$(echo "scale=3; ($c_compress + $c_read) / $JOBS" | bc)
  printf '%-44s %9.2f %10s %9s %13.2fx\n' "floor: zstd -3 CPU on the tar / $JOBS cores" "$f_pack" "" "" "$(ratio "$f_pack" "$t_ferry_pack")"
  printf '%-44s %9.2f %10s %9s %13.2fx\n' "floor: (zstd -3 + reading files CPU) / $JOBS" "$f_pack_read" "" "" "$(ratio "$f_pack_read" "$t_ferry_pack")"
  echo

  # ---- unpack ----
  # Reference archives for the baselines hold the same tree as ferry's (its manifest included), so the
  # relocation pass can read the same record list that conda-unpack would hold.
  mkdir ref && "$FERRY" unpack e.tar.zst ref/env >/dev/null 2>&1 && rm -f ref/env/.ferry/unpacked.json
  tar -C ref/env -cf - . | pigz -p "$JOBS" > base.tar.gz
  tar -C ref/env -I 'zstd -T0 -3' -cf base.tar.zst .
  local fresh='rm -rf d .d.ferry-*' empty='rm -rf d; mkdir d'
  bench_set ferry_unpack "$fresh" "'$FERRY' unpack e.tar.zst d -j $JOBS" \
    ferry_unpack_gz "$fresh" "'$FERRY' unpack ef.tar.gz d -j $JOBS" \
    pigz_reloc "$empty" "pigz -dc base.tar.gz | tar -C d -xf - && /usr/bin/python3 '$SRC/bench/relocate_pass.py' d" \
    pigz_only "$empty" "pigz -dc base.tar.gz | tar -C d -xf -" \
    zstd_only "$empty" "zstd -dc base.tar.zst | tar -C d -xf -" \
    cp_tree 'rm -rf d' "cp -a ref/env d"
  t_ferry=$(t ferry_unpack)
  # The compute floor of an unpack: decoding the frames plus creating the files (tar -x of the
  # uncompressed stream from memory), in CPU seconds, over the cores.
  zstd -dcq e.tar.zst >stream.tar
  c_decode=$(median_cpu "zstd -dcq e.tar.zst")
  PREPARE='rm -rf d; mkdir d'
  c_create=$(median_cpu "tar -C d -xf stream.tar")
  unset PREPARE
  rm -f stream.tar
  f_unpack=$(echo "scale=3; ($c_decode + $c_create) / $JOBS" | bc)
  row2() { printf '%-44s %9.2f %9s %13.2fx\n' "$1" "$(t "$2")" "$(peak "$2")" "$(ratio "$(t "$2")" "$t_ferry")"; }
  printf '%-44s %9s %9s %14s\n' "unpack (relocated, ready to run)" "seconds" "peak MiB" "ferry faster"
  row2 "ferry unpack (tar.zst)" ferry_unpack
  row2 "ferry unpack (tar.gz)" ferry_unpack_gz
  row2 "pigz -dc | tar -x + relocation pass (python)" pigz_reloc
  row2 "pigz -dc | tar -x (no relocation)" pigz_only
  row2 "zstd -dc | tar -x (no relocation)" zstd_only
  row2 "cp -a of the unpacked tree (copy floor)" cp_tree
  printf '%-44s %9.2f %9s %13.2fx\n' "floor: (zstd -d + tar -x CPU) / $JOBS cores" "$f_unpack" "" "$(ratio "$f_unpack" "$t_ferry")"
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
    bench_set cp_pack 'rm -f cp.tar.gz' "'$CP_VENV/bin/conda-pack' -p '$ENV' -o cp.tar.gz -j $JOBS -q" \
      ferry_pack_gz 'rm -f fg.tar.gz' "'$FERRY' pack '$ENV' -o fg.tar.gz --format tar.gz -j $JOBS"
    [ -s cp.tar.gz ] || { echo "conda-pack: it made no archive of $ENV"; exit 1; }
    printf '%-44s %9s %10s %9s %14s\n' "pack (the real conda-pack 0.8.1)" "seconds" "size MiB" "peak MiB" "ferry faster"
    row3 "ferry pack (tar.zst, level 3)" ferry_pack e.tar.zst
    row3 "ferry pack --format tar.gz" ferry_pack_gz fg.tar.gz
    row3 "conda-pack -j $JOBS (tar.gz)" cp_pack cp.tar.gz
    echo
    bench_set ferry_cp "$fresh" "'$FERRY' unpack cp.tar.gz d -j $JOBS" \
      cp_pigz "$empty" "pigz -dc cp.tar.gz | tar -C d -xf - && d/bin/python d/bin/conda-unpack" \
      cp_tar "$empty" "tar -C d -xzf cp.tar.gz && d/bin/python d/bin/conda-unpack"
    t_ferry_cp=$(t ferry_cp)
    printf '%-44s %9s %9s %14s\n' "unpack conda-pack's tar.gz (relocated)" "seconds" "peak MiB" "ferry faster"
    printf '%-44s %9.2f %9s %14s\n' "ferry unpack cp.tar.gz" "$t_ferry_cp" "$(peak ferry_cp)" "1.00x"
    printf '%-44s %9.2f %9s %13.2fx\n' "pigz -dc | tar -x + conda-unpack" "$(t cp_pigz)" "$(peak cp_pigz)" "$(ratio "$(t cp_pigz)" "$t_ferry_cp")"
    printf '%-44s %9.2f %9s %13.2fx\n' "tar -xzf + conda-unpack" "$(t cp_tar)" "$(peak cp_tar)" "$(ratio "$(t cp_tar)" "$t_ferry_cp")"
    echo
    # The same archive as tar.zst (conda-pack writes that format too; recompressed here).
    pigz -dc cp.tar.gz | zstd -q -T0 -3 -o cp.tar.zst
    bench_set ferry_cpz "$fresh" "'$FERRY' unpack cp.tar.zst d -j $JOBS" \
      cpz_zstd "$empty" "zstd -dc cp.tar.zst | tar -C d -xf - && d/bin/python d/bin/conda-unpack"
    printf '%-44s %9s %9s %14s\n' "unpack conda-pack's tar.zst (relocated)" "seconds" "peak MiB" "ferry faster"
    printf '%-44s %9.2f %9s %14s\n' "ferry unpack cp.tar.zst" "$(t ferry_cpz)" "$(peak ferry_cpz)" "1.00x"
    printf '%-44s %9.2f %9s %13.2fx\n' "zstd -dc | tar -x + conda-unpack" "$(t cpz_zstd)" "$(peak cpz_zstd)" "$(ratio "$(t cpz_zstd)" "$(t ferry_cpz)")"
  fi
  echo

}

# The file-heavy env first (about 60k files: tests/fixtures/heavy-requirements.txt, from PyPI), in
# a directory of its own; then the conda fixture, whose archives the stage part below uses.
if [ -z "${2:-}" ]; then
  if HEAVY=$(pypi_env heavy); then
    mkdir "$WORK/heavy"
    # On tmpfs, like everything measured: the build tree's disk pages are paged out when cold
    # (this VM runs DAMON's reclaim), which made its runs 1.5-2x apart. ferry itself moves it
    # there, relocated, so the copy is a working venv at its new path.
    "$FERRY" pack "$HEAVY" -o "$WORK/heavy-src.tar.zst" >/dev/null 2>&1
    "$FERRY" unpack "$WORK/heavy-src.tar.zst" "$WORK/heavy-env" >/dev/null
    rm -rf "$WORK/heavy-env/.ferry" "$WORK/heavy-src.tar.zst"
    (cd "$WORK/heavy" && ENV="$WORK/heavy-env" && archive_tables)
    rm -rf "$WORK/heavy/d"  # its archives and ref/env stay for the stage part
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
    done
    /usr/bin/time -f "srun_peak %M" srun -N3 -n3 true 2>&1 >/dev/null | grep "^srun_peak "
    /usr/bin/time -f "ferry_peak %M" '"'$FERRY'"' launch -- true 2>&1 >/dev/null | grep "^ferry_peak "' 2>/dev/null > launch.times
  med() { grep "^$1 " launch.times | cut -d' ' -f2 | sort -n | sed -n "$(( (LAUNCH_RUNS + 1) / 2 ))p"; }
  t_srun=$(med srun)
  t_launch=$(med ferry)
  # Peak memory where the command runs (the login or batch node): the largest process, srun or
  # ferry (its srun child is counted).
  p_srun=$(( $(grep '^srun_peak ' launch.times | cut -d' ' -f2) / 1024 ))
  p_launch=$(( $(grep '^ferry_peak ' launch.times | cut -d' ' -f2) / 1024 ))
  printf '%-44s %9s %14s %9s\n' "launch on 3 nodes (1 rank each, 'true')" "ms" "vs srun" "peak MiB"
  printf '%-44s %9.1f %14s %9s\n' "srun -N3 -n3 true" "$(echo "scale=1; $t_srun / 1000" | bc)" "1.00x" "$p_srun"
  printf '%-44s %9.1f %13.2fx %9s\n' "ferry launch -- true" "$(echo "scale=1; $t_launch / 1000" | bc)" "$(ratio "$t_launch" "$t_srun")" "$p_launch"
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
N=\$1 A=\$2  # nodes, the directory of the archives
t() { local s e; s=\$(date +%s%N); "\$@" >/dev/null 2>&1; e=\$(date +%s%N); echo \$(( (e - s) / 1000 )); }
# The share of this machine's core time left idle while CMD ran (per mille; idle + iowait of
# /proc/stat's cpu line): the nodes share its cores, so idle here is idle on every node.
busy() { awk '/^cpu /{print \$5 + \$6, \$2 + \$3 + \$4 + \$5 + \$6 + \$7 + \$8 + \$9}' /proc/stat; }
idle() {
  local b a
  b=\$(busy); "\$@" >/dev/null 2>&1; a=\$(busy)
  echo "\$b \$a" | awk '{printf "%d\\n", 1000 * (\$3 - \$1) / (\$4 - \$2)}'
}
clean() { srun -N\$N --ntasks-per-node=1 rm -rf /mnt/ferry-bench; }
# Each node's work under /usr/bin/time: its peak memory (the largest resident set of tar, pigz or
# the relocation pass) appended to \$A/peak-recipe-\$N, one line per node and run.
rm -f \$A/peak-recipe-\$N
recipe() {
  srun -N\$N --ntasks-per-node=1 mkdir -p /mnt/ferry-bench/env
  sbcast --force \$A/base.tar.gz /mnt/ferry-bench/env.tar.gz
  srun -N\$N --ntasks-per-node=1 /usr/bin/time -a -o \$A/peak-recipe-\$N -f %M sh -c 'tar -I pigz -xf /mnt/ferry-bench/env.tar.gz -C /mnt/ferry-bench/env && rm /mnt/ferry-bench/env.tar.gz'
}
reloc() { srun -N\$N --ntasks-per-node=1 /usr/bin/time -a -o \$A/peak-recipe-\$N -f %M /usr/bin/python3 $SRC/bench/relocate_pass.py /mnt/ferry-bench/env; }
for i in \$(seq $STAGE_RUNS); do
  clean; echo "recipe_copy_untar \$(t recipe)"; echo "recipe_relocate \$(t reloc)"
  clean; echo "sbcast \$(t $FERRY stage \$A/e.tar.zst --to /mnt/ferry-bench/env --via sbcast)"
  clean; echo "mpi \$(t $FERRY stage \$A/e.tar.zst --to /mnt/ferry-bench/env --via mpi)"
done
clean
for i in 1 2 3; do
  echo "mpi_idle \$(idle $FERRY stage \$A/e.tar.zst --to /mnt/ferry-bench/env --via mpi)"; clean
done
# The --json runs give each node's peak memory; /usr/bin/time gives ferry stage's own.
/usr/bin/time -o \$A/peak-coordinator-mpi-\$N -f %M $FERRY stage \$A/e.tar.zst --to /mnt/ferry-bench/env --via mpi --json > \$A/stage-mpi-\$N.json
clean
/usr/bin/time -o \$A/peak-coordinator-sbcast-\$N -f %M $FERRY stage \$A/e.tar.zst --to /mnt/ferry-bench/env --via sbcast --json > \$A/stage-sbcast-\$N.json
clean
SH
  secs() { echo "scale=2; $1 / 1000000" | bc; }
  stage_table() {  # N A LABEL: nodes, the archives' directory, what they hold
    local n=$1 a=$2 unpacked
    unpacked=$(du -sb "$a/ref/env" | cut -f1)
    timeout -s KILL 900 salloc -N"$n" bash stage.sh "$n" "$a" 2>/dev/null > "$a/stage-$n.times" || true
    smed() { grep "^$1 " "$a/stage-$n.times" | cut -d' ' -f2 | sort -n | sed -n "$(( (STAGE_RUNS + 1) / 2 ))p"; }
    local t_copy t_reloc t_recipe t_sb t_mpi
    t_copy=$(smed recipe_copy_untar); t_reloc=$(smed recipe_relocate)
    t_recipe=$((t_copy + t_reloc)); t_sb=$(smed sbcast); t_mpi=$(smed mpi)
    # Peak memory on a node, MiB: the recipe's largest tar, pigz or relocation process; ferry's
    # node-side process (ferry-mpi or ferry stage-node), from its report.
    local p_recipe p_mpi p_sb
    p_recipe=$(echo "$(sort -n "$a/peak-recipe-$n" | tail -1) / 1024" | bc)
    node_peak() { /usr/bin/python3 -c 'import json,sys; print(max(n["peak_bytes"] for n in json.load(open(sys.argv[1]))["nodes"]) >> 20)' "$a/stage-$1-$n.json"; }
    p_mpi=$(node_peak mpi); p_sb=$(node_peak sbcast)
    printf '%-44s %9s %14s %14s %14s\n' "stage to $n node(s), $3" "seconds" "ferry faster" "MiB/s/node" "peak MiB/node"
    printf '%-44s %9.2f %13.2fx %14s %14s\n' "recipe: sbcast + srun tar -I pigz + reloc" "$(secs "$t_recipe")" "$(ratio "$t_recipe" "$t_mpi")" "$(echo "scale=0; $unpacked / 1048576 * 1000000 / $t_recipe" | bc)" "$p_recipe"
    printf '%-44s %9.2f %14s\n' "  of which sbcast + untar" "$(secs "$t_copy")" ""
    printf '%-44s %9.2f %14s\n' "  of which relocation pass" "$(secs "$t_reloc")" ""
    printf '%-44s %9.2f %13.2fx %14s %14s\n' "ferry stage --via mpi" "$(secs "$t_mpi")" "1.00" "$(echo "scale=0; $unpacked / 1048576 * 1000000 / $t_mpi" | bc)" "$p_mpi"
    printf '%-44s %9.2f %13.2fx %14s %14s\n' "ferry stage --via sbcast" "$(secs "$t_sb")" "$(ratio "$t_sb" "$t_mpi")" "$(echo "scale=0; $unpacked / 1048576 * 1000000 / $t_sb" | bc)" "$p_sb"
    echo "  ferry stage itself (the coordinator, not on a node): $(( $(cat "$a/peak-coordinator-mpi-$n") / 1024 )) MiB (mpi), $(( $(cat "$a/peak-coordinator-sbcast-$n") / 1024 )) MiB (sbcast)"
    for via in mpi sbcast; do
      echo "  phases ($via): $(/usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(", ".join(f"{k} {v:.2f} s" for k, v in j["phases"].items()))' "$a/stage-$via-$n.json")"
    done
    echo "  core time idle during ferry stage --via mpi (/proc/stat, 3 runs): $(grep '^mpi_idle ' "$a/stage-$n.times" | cut -d' ' -f2 | awk '{printf "%s%.1f%%", (NR > 1 ? ", " : ""), $1 / 10}')"
  }
  stage_table 3 "$WORK" "the conda fixture (node-local, relocated)"
  echo
  stage_table 1 "$WORK" "the conda fixture (node-local, relocated)"
  if [ -f "$WORK/heavy/e.tar.zst" ]; then
    echo
    stage_table 3 "$WORK/heavy" "the file-heavy env (node-local, relocated)"
    echo
    stage_table 1 "$WORK/heavy" "the file-heavy env (node-local, relocated)"
  fi
else
  if [ "${BENCH_CLUSTER:-1}" = 1 ]; then echo "launch and stage: skipped (the test cluster needs root and network namespaces)"; fi
fi
