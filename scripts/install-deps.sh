#!/usr/bin/env bash
# Installs every Debian package ferry needs to build, test, demo and benchmark, and nothing that is
# already there. Safe to run again. Needs root (or sudo) only when something is missing.
set -euo pipefail
packages=(
  build-essential cmake pkg-config git
  libzstd-dev libdeflate-dev libisal-dev libxxhash-dev libarchive-dev libtbb-dev
  libcli11-dev nlohmann-json3-dev libsimdjson-dev libfmt-dev libgtest-dev
  clang libclang-rt-14-dev
  clang-format  # tests/format_check.sh: the sources stay in .clang-format's style (make format applies it)
  zstd pigz patchelf hyperfine bzip2 xz-utils zip bc time
  acl  # setfacl: unpack under a default ACL keeps the archive's modes (tests/cli/file_modes.sh)
  libseccomp-dev  # tests/tools: the unpack and stage suites again with openat2 refused, as on RHEL 8
  python3 python3-numpy python3-scipy python3-torch
  # Debian's dask.distributed (2022.12) with cryptography: ferry dask's older-Dask case. The
  # recent one comes from PyPI, pinned, into a venv in the build tree (tests/fixtures/pypi_env.sh).
  python3-distributed python3-cryptography
  # ferry dask's printed tunnel run against real sshds (the login host and the head node), and
  # headless Chromium loading the dashboard and JupyterLab through it (tests/cluster/dask_tunnel_test.sh).
  openssh-server openssh-client chromium fonts-dejavu-core
  # ferry image and ferry run (tests/cluster/image_test.sh): Charliecloud's ch-run, a minimal
  # Debian base root filesystem made by mmdebstrap (tests/fixtures/rootfs.sh), mksquashfs.
  charliecloud-runtime mmdebstrap squashfs-tools
  # The 3-node Slurm mini-cluster that tests/cluster/ runs jobs on (network namespaces + MPICH).
  slurm-wlm slurmctld slurmd slurm-client munge mpich libmpich-dev iproute2 util-linux
  # Open MPI beside it: the tests also build and run ferry-mpi against it (MPICH stays the
  # default mpicc/mpiexec, pinned below, as the cluster tests use Hydra).
  openmpi-bin libopenmpi-dev
  # The stage at 10 to 10,000 nodes, simulated (make simulate, tests/cli/stage_simulated.sh):
  # SimGrid's SMPI runs ferry-mpi's choreography on simulated platforms; gnuplot draws its plot.
  libsimgrid-dev gnuplot-nox
  # Real module systems for ferry module's round-trip tests: Environment Modules from apt, and the
  # dependencies of Lmod, which Debian marks as conflicting with it (both define `module`; their files
  # do not overlap): Lmod itself is unpacked below into $lmod_root, outside dpkg's database.
  environment-modules tcl lua5.3 lua-posix lua-term lua-filesystem lua-json libtcl8.6
  # The shell completions and man pages ferry generates, tried in the shells and man they are for
  # (tests/cli/completion.sh, tests/cli/man_pages.sh, tests/cli/install.sh).
  bash-completion zsh fish man-db groff-base
  # The portable build (scripts/portable.sh): nasm for ISA-L's assembly, nettle's static archive
  # (libarchive's zip reader decrypts with it); mmdebstrap and patchelf are above.
  nasm nettle-dev
)
# Lmod's .deb unpacked (dpkg-deb -x) with its init files pointed at that root; the tests source
# $lmod_root/usr/share/lmod/lmod/init/bash (or a real /usr/share/lmod when one is installed).
lmod_root=/opt/ferry/lmod
install_lmod() {
  [ -x "$lmod_root/usr/share/lmod/lmod/libexec/lmod" ] && return 0
  [ -x /usr/share/lmod/lmod/libexec/lmod ] && return 0
  local sudo_cmd=() tmp
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq lmod 2>/dev/null) || { echo "install-deps: cannot download lmod" >&2; rm -rf "$tmp"; return 1; }
  "${sudo_cmd[@]}" rm -rf "$lmod_root.tmp"
  "${sudo_cmd[@]}" mkdir -p "$lmod_root.tmp"
  "${sudo_cmd[@]}" dpkg-deb -x "$tmp"/lmod_*.deb "$lmod_root.tmp"
  "${sudo_cmd[@]}" find "$lmod_root.tmp/usr/share/lmod" -type f \( -path '*/init/*' -o -path '*/libexec/*' \) \
    -exec sed -i "s#/usr/share/lmod#$lmod_root/usr/share/lmod#g; s#/usr/lib/lmod#$lmod_root/usr/lib/lmod#g" {} +
  "${sudo_cmd[@]}" rm -rf "$lmod_root"
  "${sudo_cmd[@]}" mv "$lmod_root.tmp" "$lmod_root"
  rm -rf "$tmp"
}
# Installing Open MPI makes it the default MPI through Debian's alternatives: keep MPICH.
pin_mpich() {
  local sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  [ -x /usr/bin/mpicc.mpich ] || return 0
  "${sudo_cmd[@]}" update-alternatives --set mpi /usr/bin/mpicc.mpich >/dev/null
  "${sudo_cmd[@]}" update-alternatives --set mpirun /usr/bin/mpirun.mpich >/dev/null
  "${sudo_cmd[@]}" update-alternatives --set mpi-x86_64-linux-gnu /usr/include/x86_64-linux-gnu/mpich >/dev/null
}
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then install_lmod; pin_mpich; exit 0; fi
echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_lmod
pin_mpich
