#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each of them for its share of
# SECONDS (60 in all by default, as CI runs it), from the seeds in fuzz/seeds/<target>/.
# Usage: fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
# Crashes land in BUILD_DIR/fuzz-crashes/<target>/; the grown corpora in BUILD_DIR/fuzz-corpus/.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-fuzz}
seconds=${2:-60}
shift $(($# < 2 ? $# : 2))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(tar_reader frame_index manifest conda_unpack_records)
CC=clang CXX=clang++ cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_FUZZ=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target $(printf 'ferry_%s_fuzz ' "${targets[@]}")
share=$((seconds / ${#targets[@]}))
[ "$share" -ge 1 ] || share=1
# Inputs as large as a few frames' headers and a small manifest; a longer input finds nothing the
# shorter ones do not, and slows every run.
declare -A max_len=([tar_reader]=65536 [frame_index]=65536 [manifest]=16384 [conda_unpack_records]=16384)
status=0
for t in "${targets[@]}"; do
  corpus=$build/fuzz-corpus/$t crashes=$build/fuzz-crashes/$t
  mkdir -p "$corpus" "$crashes"
  echo "fuzz: $t for ${share}s"
  "$build/ferry_${t}_fuzz" -max_total_time="$share" -max_len="${max_len[$t]}" -rss_limit_mb=2048 \
    -artifact_prefix="$crashes/" -print_final_stats=1 ${FUZZ_FLAGS:-} "$corpus" "$src/fuzz/seeds/$t" ||
    status=$?
done
exit "$status"
