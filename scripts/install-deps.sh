#!/usr/bin/env bash
# Installs every Debian package ferry needs to build, test, demo and benchmark, and nothing that is
# already there. Safe to run again. Needs root (or sudo) only when something is missing.
set -euo pipefail
packages=(
  build-essential cmake pkg-config git
  libzstd-dev libdeflate-dev libxxhash-dev libarchive-dev libtbb-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libgtest-dev
  clang libclang-rt-14-dev
  zstd pigz patchelf hyperfine bzip2 xz-utils zip bc
  python3 python3-numpy python3-scipy python3-torch
  # The 3-node Slurm mini-cluster that tests/cluster/ runs jobs on (network namespaces + MPICH).
  slurm-wlm slurmctld slurmd slurm-client munge mpich libmpich-dev iproute2 util-linux
  # Real module systems for ferry module's round-trip tests (both define `module`: one per shell).
  lmod environment-modules tcl
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
