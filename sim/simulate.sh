#!/usr/bin/env bash
# make simulate: ferry stage at 3 to 10,000 nodes on SimGrid (sim/simulate.py says what runs).
# Makes the two envs' archives first, as make bench does: the conda fixture and the file-heavy
# env (from PyPI, pinned; tests/fixtures/heavy-requirements.txt). Minutes, not part of make test.
# Usage: sim/simulate.sh BUILD   (results in OUT, BUILD/simulate by default; NODES=8,100 and
# ENVS=heavy to run fewer; MERGE=results.json to add an earlier run's rows)
set -euo pipefail
BUILD=$(readlink -f "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
for program in ferry ferry-mpi-simulated recipe-simulated; do
  [ -e "$BUILD/$program" ] || { echo "simulate: no $BUILD/$program (is libsimgrid-dev installed?)" >&2; exit 1; }
done
command -v smpirun >/dev/null || { echo "simulate: no smpirun on PATH (libsimgrid-dev)" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "simulate: no gnuplot on PATH (gnuplot-nox)" >&2; exit 1; }
WORK=$(mktemp -d /dev/shm/ferry-simulate-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

export FERRY_SOURCE=$SRC FERRY_BUILD=$BUILD
# shellcheck source=tests/fixtures/pypi_env.sh
. "$SRC/tests/fixtures/pypi_env.sh"
/usr/bin/python3 "$SRC/tests/fixtures/make_conda_env.py" "$WORK/conda-full" >/dev/null
"$BUILD/ferry" pack "$WORK/conda-full/env" -o "$WORK/conda.tar.zst" >/dev/null
HEAVY=$(pypi_env heavy)
"$BUILD/ferry" pack "$HEAVY" -o "$WORK/heavy.tar.zst" >/dev/null
rm -rf "$WORK/conda-full"
/usr/bin/python3 "$SRC/sim/simulate.py" "$BUILD" "$WORK" "${OUT:-$BUILD/simulate}" "$WORK/heavy.tar.zst" \
  "$WORK/conda.tar.zst"
