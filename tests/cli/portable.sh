# The portable build (scripts/portable.sh, `make portable`) as an RHEL 8 login node would get it:
# neither program asks for a glibc symbol newer than 2.28 (RHEL 8's), nor for libstdc++, nor for a
# library an old system lacks; ferry-mpi asks for the MPICH ABI's libmpi.so.12. Then, in the old
# Debian root the build used (bullseye, glibc 2.31: the oldest Debian the mirror serves), with
# nothing of this machine's: the archive (a venv holding numpy's real ELF files, packed, unpacked
# elsewhere and run from there), the job (a Slurm allocation read from its variables, the launch
# line it makes), ferry-mpi with the root's own MPICH, and a module (that root's Environment Modules 4.6, and
# Lmod 8.6 run by its Lua: load gives the env, unload gives back the environment exactly).
source "$(dirname "$0")/common.sh"
[ "$(id -u)" = 0 ] || skip "the old root is made by mmdebstrap and entered by chroot: needs root"
command -v mmdebstrap >/dev/null || skip "mmdebstrap is not installed (scripts/install-deps.sh)"
work=$FERRY_BUILD/portable
version=$(project_version)
tree=$work/ferry-$version-linux-x86_64
if [ ! -f "$work/root/.ferry-root" ] && ! curl -fsS -m 20 -o /dev/null http://deb.debian.org/debian/dists/bullseye/Release; then
  [ -n "${CI:-}" ] && fail "deb.debian.org cannot be reached: the old root cannot be made"
  skip "deb.debian.org cannot be reached: the old root cannot be made"
fi
bash "$FERRY_SOURCE/scripts/portable.sh" "$work" >"$TEST_DIR/portable.log" 2>&1 ||
  fail "scripts/portable.sh failed: $(tail -5 "$TEST_DIR/portable.log")"
root=$work/root

# What the dynamic linker of an old system will be asked for.
newest() { objdump -T "$1" | grep -o "$2[0-9.]*" | sed "s/^$2//" | sort -V | tail -1; }
listing=$(tar -tzf "$tree.tar.gz")
for f in bin/ferry libexec/ferry/ferry-mpi; do
  grep -qx "ferry-$version-linux-x86_64/$f" <<<"$listing" || fail "$tree.tar.gz lacks $f"
done
for p in bin/ferry libexec/ferry/ferry-mpi; do
  bin=$tree/$p p=${p##*/}
  [ -x "$bin" ] || fail "$bin was not built"
  g=$(newest "$bin" GLIBC_)
  [ "$(printf '%s\n2.28\n' "$g" | sort -V | tail -1)" = 2.28 ] ||
    fail "$p needs GLIBC_$g: $(objdump -T "$bin" | grep -E 'GLIBC_2\.(29|[3-9])' | awk '{print $NF}' | head -5 | tr '\n' ' ')"
  gcc=$(newest "$bin" GCC_)
  [ "$(printf '%s\n7.0.0\n' "$gcc" | sort -V | tail -1)" = 7.0.0 ] || fail "$p needs libgcc_s's GCC_$gcc (RHEL 8 has 7.0.0)"
  if objdump -T "$bin" | grep -qE "GLIBCXX_|CXXABI_"; then fail "$p asks for the system's libstdc++"; fi
  needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
  want="ld-linux-x86-64.so.2 libc.so.6 libdl.so.2 libgcc_s.so.1 libpthread.so.0 "
  [ "$p" = ferry-mpi ] && want="ld-linux-x86-64.so.2 libc.so.6 libgcc_s.so.1 libmpi.so.12 libpthread.so.0 "
  for lib in $needed; do
    case " $want " in *" $lib "*) ;; *) fail "$p needs $lib, which an old system may not have (all: $needed)";; esac
  done
  echo "portable: $p needs GLIBC_$g, GCC_$gcc: $needed"
done

# The old root, entered with nothing of this machine's but the kernel, /proc, /sys and /dev.
rm -rf "$root/opt/ferry/bin" "$root/opt/ferry/libexec" "$root/opt/ferry/share"
mkdir -p "$root/opt/ferry"
tar -C "$root/opt/ferry" --strip-components=1 -xzf "$tree.tar.gz"
# The site's MPICH under the MPICH ABI's name (Debian names its library libmpich.so.12).
ln -sfn libmpich.so.12 "$root/usr/lib/x86_64-linux-gnu/libmpi.so.12"
# Lmod is Lua: this machine's tree is lent to the old root at its own path (see the module below).
lmod=/opt/ferry/lmod/usr/share/lmod
[ -d /usr/share/lmod/lmod ] && lmod=/usr/share/lmod
[ -r "$lmod/lmod/init/sh" ] || fail "no Lmod on this machine (scripts/install-deps.sh installs it)"
mkdir -p "$root$lmod"
old() {  # old SCRIPT: run by sh in the old root, as a login node's user shell would
  unshare --mount --fork sh -c 'for d in proc dev sys; do mount --rbind "/$d" "$1/$d" || exit; done
    mount --bind "$2" "$1$2" || exit
    exec chroot "$1" env -i PATH=/opt/ferry/bin:/usr/bin:/bin HOME=/root TERM=dumb sh -c "$3"' sh "$root" "$lmod" "$1"
}
expect_contains "$(old 'ldd --version | head -1')" "GLIBC 2.31"
expect_contains "$(old 'ferry --version')" "ferry $version"
for f in share/man/man1/ferry.1 share/man/man1/ferry-pack.1 share/bash-completion/completions/ferry; do
  [ -s "$root/opt/ferry/$f" ] || fail "the portable tree lacks $f"
done

# The archive: a venv with numpy's own files (ELF extension modules, ~1k files), packed, unpacked
# under another path, run from there.
out=$(old 'set -e; rm -rf /tmp/t && mkdir /tmp/t && cd /tmp/t
  python3 -m venv env
  cp -r /usr/lib/python3/dist-packages/numpy env/lib/python3.9/site-packages/
  ferry pack env -o env.tar.zst -q
  ferry unpack env.tar.zst /tmp/t/moved >/dev/null
  /tmp/t/moved/bin/python -c "import sys, numpy; print(sys.prefix, numpy.__file__, numpy.arange(10).sum())"
  find /tmp/t/moved -type f | wc -l') || fail "pack/unpack in the old root: $out"
expect_contains "$out" "/tmp/t/moved /tmp/t/moved/lib/python3.9/site-packages/numpy/__init__.py 45"
[ "$(echo "$out" | tail -1)" -gt 500 ] || fail "the unpacked env holds only $(echo "$out" | tail -1) files"
expect_eq "$(old 'grep -rl /tmp/t/env /tmp/t/moved/bin | head -3')" "" "the old prefix is left in the moved env's scripts"

# The job: a Slurm allocation of two nodes as its variables give it, and the line launch makes.
job='SLURM_JOB_ID=42 SLURM_JOB_NODELIST=cn[07-08] SLURM_JOB_NUM_NODES=2 SLURM_CPUS_ON_NODE=4 SLURM_JOB_CPUS_PER_NODE="4(x2)"'
out=$(old "$job ferry job --json") || fail "ferry job in the old root: $out"
expect_contains "$out" '"cn07"'
expect_contains "$out" '"cn08"'
out=$(old "$job ferry launch --dry-run -- python3 train.py") || fail "ferry launch --dry-run: $out"
expect_contains "$out" "srun"
expect_contains "$out" "train.py"

# ferry-mpi starts with the root's MPICH, as a site's own library, and ferry finds it in its tree.
out=$(old '/opt/ferry/libexec/ferry/ferry-mpi --mpi') || fail "ferry-mpi --mpi in the old root: $out"
expect_contains "$out" "MPICH Version:"
out=$(old 'ferry doctor') || fail "ferry doctor in the old root: $out"
expect_contains "$out" "/opt/ferry/libexec/ferry/ferry-mpi: MPICH Version: 3.4.1, launched with mpiexec"
expect_contains "$out" "glibc 2.31"

# module_round_trip INIT SETUP WHILE_LOADED KEEP: in the old root, INIT (the module system's) and
# SETUP, then the environment before `module load moved`, WHILE_LOADED, and the environment after
# `module unload moved`, the same but for KEEP (the module system's own bookkeeping): "restored".
module_round_trip() {
  old "set -e; $1
  $2
  env | sort > /tmp/t/before
  module load moved
  $3
  module unload moved
  env | sort | grep -vE '$4' > /tmp/t/after
  grep -vE '$4' /tmp/t/before | diff - /tmp/t/after && echo restored"
}

# A module, with Lmod 8.6 (this machine's Lmod, which is Lua, run by the old root's Lua 5.3,
# without its compiled Tcl reader; the root's own Lmod is 6.6, older than any RHEL 8 has): load
# gives the env, unload gives back the environment exactly.
out=$(module_round_trip "export LMOD_FAST_TCL_INTERP=no; . $lmod/lmod/init/sh" \
  'ferry module /tmp/t/moved --lmod /tmp/t/modules >/dev/null
  module use /tmp/t/modules' \
  'command -v python; python -c "import numpy; print(numpy.__file__)"' \
  "^(_ModuleTable[0-9_]*_|__LMOD_REF_COUNT_[A-Za-z0-9_]*|__LMOD_STACK_[A-Za-z0-9_]*|LOADEDMODULES|_LMFILES_|_)=") ||
  fail "the module in the old root: $out"
expect_contains "$out" "/tmp/t/moved/bin/python"
expect_contains "$out" "/tmp/t/moved/lib/python3.9/site-packages/numpy/__init__.py"
expect_contains "$out" "restored"
# And with the root's own Environment Modules, 4.6 (RHEL 8's is 4.5): the same round trip with
# the user's own values in the variables the module sets and unsets, and the family: a second
# python env is refused while the first is loaded.
out=$(module_round_trip ". /usr/share/modules/init/sh" \
  'module --version 2>&1 | head -1
  ferry module /tmp/t/moved --tcl /tmp/t/tcl >/dev/null
  python3 -m venv /tmp/t/other && ferry module /tmp/t/other --tcl /tmp/t/tcl >/dev/null
  module use /tmp/t/tcl
  export VIRTUAL_ENV="mine: two words" PYTHONHOME=/my/home' \
  'echo "loaded: $(command -v python) VIRTUAL_ENV=$VIRTUAL_ENV PYTHONHOME=${PYTHONHOME-unset}"
  if module load other 2>/tmp/t/refused; then echo "other loaded too"; fi
  cat /tmp/t/refused' \
  "^(LOADEDMODULES|_LMFILES_|__MODULES_[A-Za-z0-9_]*|[A-Z_]*_modshare|_)=") ||
  fail "the Tcl module in the old root: $out"
expect_contains "$out" "Modules Release 4.6"
expect_contains "$out" "loaded: /tmp/t/moved/bin/python VIRTUAL_ENV=/tmp/t/moved PYTHONHOME=unset"
expect_contains "$out" "cannot be loaded beside moved/3.9 (family python)"
[[ "$out" != *"other loaded too"* ]] || fail "a second python env loaded beside the first: $out"
expect_contains "$out" "restored"
echo "portable: ok"
