#!/usr/bin/env bash
# Builds the libFuzzer target with clang (ASan + UBSan) and runs it for N seconds.
# Usage: fuzz/run.sh BUILD_DIR SECONDS
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-fuzz}
seconds=${2:-60}
CC=clang CXX=clang++ cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_FUZZ=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target ferry_tar_reader_fuzz
corpus="$build/fuzz-corpus"
mkdir -p "$corpus"
# Seeds: small real archives in every layout ferry reads.
seed=$(mktemp -d)
trap 'rm -rf "$seed"' EXIT
mkdir -p "$seed/env/bin" && printf '#!/opt/prefix/bin/python\n' > "$seed/env/bin/tool" && ln -s tool "$seed/env/bin/link"
tar -C "$seed/env" -cf "$corpus/seed.tar" .
"$build/ferry" pack "$seed/env" -o "$corpus/seed.tar.zst" -f >/dev/null 2>&1 || true
"$build/ferry" pack "$seed/env" -o "$corpus/seed.tar.gz" --format tar.gz -f >/dev/null 2>&1 || true
"$build/ferry_tar_reader_fuzz" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 "$corpus"
