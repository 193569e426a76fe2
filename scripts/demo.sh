#!/usr/bin/env bash
# make demo: ferry's main job on a built-in sample. Builds a realistic conda environment from
# Debian's numpy/scipy and this machine's Python, packs it, unpacks it at another path, runs Python
# from there, and times it against tar + pigz (+ the relocation pass conda-unpack would do).
set -euo pipefail
FERRY=$(readlink -f "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
FIX="$SRC/build/fixtures/conda-full"
if [ ! -f "$FIX/.built" ]; then
  echo "building the sample conda environment (numpy, scipy, Python 3.11) ..."
  /usr/bin/python3 "$SRC/tests/fixtures/make_conda_env.py" "$FIX" | tail -1
  touch "$FIX/.built"
fi
WORK=$(mktemp -d /dev/shm/ferry-demo-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
echo
echo "\$ ferry pack $FIX/env -o $WORK/env.tar.zst"
"$FERRY" pack "$FIX/env" -o "$WORK/env.tar.zst"
DEST="$WORK/somewhere/else/on/a/node/env"
echo
echo "\$ ferry unpack $WORK/env.tar.zst $DEST"
"$FERRY" unpack "$WORK/env.tar.zst" "$DEST"
echo
echo "\$ $DEST/bin/python -c 'import numpy, scipy, sys; ...'"
PYTHONDONTWRITEBYTECODE=1 "$DEST/bin/python" -c 'import numpy, scipy, sys; print("python", sys.version.split()[0], "at", sys.prefix); print("numpy", numpy.__version__, "scipy", scipy.__version__); print(numpy.linalg.eigvalsh(numpy.diag([3.0, 1.0, 2.0])))'
echo
RUNS=1 BENCH_CLUSTER=0 bash "$SRC/bench/bench.sh" "$FERRY" "$FIX/env"
