#!/bin/bash
# Builds ferry and ferry-mpi to run on old Linux systems (RHEL/Rocky 8: glibc 2.28, kernel 4.18):
# this machine's GCC against the C library of an old Debian root, libstdc++ and every codec static,
# ferry-mpi linked to the MPICH ABI (libmpi.so.12) that the site provides.
#
#   scripts/portable.sh [WORK_DIR]      (default build/portable; `make portable`)
#
# The old root is Debian 11 "bullseye" (glibc 2.31), the oldest Debian deb.debian.org still serves
# (buster, glibc 2.28, is gone from it). Linking against 2.31 could bind a few symbols newer than
# 2.28; tests/cli/portable.sh fails when one is, and runs ferry in that root.
# Made here and reused on the next run: WORK_DIR/root (the old root, made by mmdebstrap, as root),
# WORK_DIR/deps (oneTBB and ISA-L built from Debian's sources, this machine's static codecs).
# The result: WORK_DIR/ferry-VERSION-linux-x86_64/ (bin/ferry, libexec/ferry/ferry-mpi, share/: man
# pages and completions, as make install lays them out) and that tree as a .tar.gz.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(realpath -m "${1:-$here/build/portable}")
suite=bullseye
mirror=${FERRY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
build_type=${FERRY_PORTABLE_BUILD_TYPE:-Release}
jobs=${JOBS:-$(nproc)}
root=$work/root deps=$work/deps src=$work/src
triple=x86_64-linux-gnu
say() { echo "portable: $*" >&2; }
die() { say "$*"; exit 1; }

# The packages the old root holds: its C library and MPICH to build against, lz4's static
# archive (libarchive's filter), and what tests/cli/portable.sh runs there.
root_packages=libc6-dev,libmpich-dev,mpich,liblz4-dev,python3,python3-venv,python3-numpy,environment-modules,lua5.3,lua-posix,lua-filesystem,lua-term,lua-json

make_root() {
  [ -f "$root/.ferry-root" ] && [ "$(cat "$root/.ferry-root")" = "$suite $root_packages" ] && return 0
  [ "$(id -u)" = 0 ] || die "making the old root ($root) needs root (mmdebstrap); run as root once"
  command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (scripts/install-deps.sh)"
  say "making a $suite root in $root (mmdebstrap, a few minutes)"
  rm -rf "$root" "$root.tmp"
  mkdir -p "$work"
  mmdebstrap --quiet --variant=minbase --include="$root_packages" "$suite" "$root.tmp" "$mirror" >&2
  # The linker reads the root from outside it: an absolute link (libpthread.so ->
  # /lib/.../libpthread.so.0) would reach this machine's library. Each becomes relative to its
  # target as the root itself resolves it.
  local link target
  for dir in "$root.tmp/lib64" "$root.tmp/lib/$triple" "$root.tmp/usr/lib/$triple"; do
    find "$dir" -maxdepth 1 -type l -lname '/*' -print0 | while IFS= read -r -d '' link; do
      target=$(chroot "$root.tmp" readlink -f "${link#"$root.tmp"}")
      ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$root.tmp$target")" "$link"
    done
  done
  echo "$suite $root_packages" >"$root.tmp/.ferry-root"
  mv "$root.tmp" "$root"
}

# Debian's own source of a library whose static archive Debian does not ship.
fetch_source() {  # fetch_source POOL_PATH SHA256
  local file=$src/${1##*/}
  mkdir -p "$src"
  if ! { [ -f "$file" ] && echo "$2  $file" | sha256sum -c --quiet 2>/dev/null; }; then
    say "fetching $1"
    curl -fsSL --retry 3 -o "$file.part" "$mirror/pool/main/$1" || die "cannot fetch $mirror/pool/main/$1"
    echo "$2  $file.part" | sha256sum -c --quiet || die "$file: not the checksum pinned here"
    mv "$file.part" "$file"
  fi
  echo "$file"
}

export FERRY_SYSROOT=$root FERRY_DEPS=$deps
toolchain=$here/cmake/portable-toolchain.cmake

make_deps() {
  local stamp="onetbb-2021.8.0 isa-l-2.30.0 simdjson-3.0.1 $(dpkg-query -W -f '${Version} ' libzstd-dev libdeflate-dev libxxhash-dev libarchive-dev nettle-dev libfmt-dev nlohmann-json3-dev libcli11-dev)"
  [ -f "$deps/.ferry-deps" ] && [ "$(cat "$deps/.ferry-deps")" = "$stamp" ] && return 0
  rm -rf "$deps" "$work/deps-build"
  mkdir -p "$deps/include" "$deps/lib" "$work/deps-build"
  local b=$work/deps-build tbb isal simdjson
  # oneTBB (Debian ships it shared only), static, without its allocator.
  tbb=$(fetch_source o/onetbb/onetbb_2021.8.0.orig.tar.xz 7e9111b8bb59c8800bf6d0b06afe7b0891937443d2dae1ee1101c8e2ede6a7ef)
  tar -C "$b" -xf "$tbb"
  say "building oneTBB 2021.8.0 (static)"
  cmake -S "$b/oneTBB-2021.8.0" -B "$b/tbb" -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF -DTBB_TEST=OFF -DTBB_EXAMPLES=OFF -DTBBMALLOC_BUILD=OFF -DTBB_STRICT=OFF \
    -DCMAKE_INSTALL_PREFIX="$deps" -DCMAKE_INSTALL_LIBDIR=lib >"$b/tbb.log" 2>&1 ||
    { tail -20 "$b/tbb.log" >&2; die "oneTBB: configure failed"; }
  { cmake --build "$b/tbb" -j "$jobs" && cmake --install "$b/tbb"; } >>"$b/tbb.log" 2>&1 ||
    { tail -20 "$b/tbb.log" >&2; die "oneTBB: build failed"; }
  # ISA-L (shared only in Debian too): its own makefile, nasm for the assembly.
  isal=$(fetch_source libi/libisal/libisal_2.30.0.orig.tar.xz f363f1be3d657d5676cef5253ee2233e60116e2fa9c9de86881185bf81e0e4b8)
  tar -C "$b" -xf "$isal"
  say "building ISA-L 2.30.0 (static)"
  make -C "$b/libisal-2.30.0" -f Makefile.unx -j "$jobs" lib CC="gcc --sysroot=$root" >"$b/isal.log" 2>&1 ||
    { tail -20 "$b/isal.log" >&2; die "ISA-L: build failed"; }
  cp "$b/libisal-2.30.0/bin/isa-l.a" "$deps/lib/libisal.a"
  mkdir -p "$deps/include/isa-l"
  cp "$b/libisal-2.30.0/include/"*.h "$deps/include/isa-l/"
  # simdjson (Debian ships it shared only): its one amalgamated source file.
  simdjson=$(fetch_source s/simdjson/simdjson_3.0.1.orig.tar.gz 156b1bc5eb0561b2bd166b46d191fd3d95a3e709cc63761477d3b7aec2b6e9ed)
  tar -C "$b" -xf "$simdjson"
  say "building simdjson 3.0.1 (static)"
  { g++ --sysroot="$root" -std=c++20 -O2 -ffunction-sections -fdata-sections -c \
      "$b/simdjson-3.0.1/singleheader/simdjson.cpp" -o "$b/simdjson.o" &&
    ar rcs "$deps/lib/libsimdjson.a" "$b/simdjson.o"; } >"$b/simdjson.log" 2>&1 ||
    { tail -20 "$b/simdjson.log" >&2; die "simdjson: build failed"; }
  cp "$b/simdjson-3.0.1/singleheader/simdjson.h" "$deps/include/"
  # The rest as this machine's Debian has them: static archives and headers (fmt header-only).
  # libxxhash.a has no x86 dispatch (only the shared library does): XXH3 runs its SSE2 code.
  local inc=/usr/include lib=/usr/lib/$triple
  cp "$inc"/{zstd.h,zstd_errors.h,zdict.h,libdeflate.h,xxhash.h,xxh3.h,archive.h,archive_entry.h} "$deps/include/"
  cp -r "$inc"/{fmt,nlohmann,CLI} "$deps/include/"
  cp "$lib"/{libzstd.a,libdeflate.a,libxxhash.a,libarchive.a,liblzma.a,libbz2.a,libz.a,libnettle.a} "$deps/lib/"
  cp "$root/usr/lib/$triple/liblz4.a" "$deps/lib/"
  echo "$stamp" >"$deps/.ferry-deps"
}

version=$(sed -n 's/^project(ferry VERSION \([0-9.]*\) .*/\1/p' "$here/CMakeLists.txt")
release=ferry-$version-linux-x86_64

# Release at -O2, as the tested builds are: GCC 12's -O3 warns falsely (-Wrestrict,
# -Wmaybe-uninitialized) in libstdc++'s string code, and CI builds with -Werror.
build_ferry() {
  say "building ferry ($build_type) against $suite's glibc"
  local b=$work/build
  rm -f "$b/CMakeCache.txt"  # the toolchain's flags are read into a new cache each time
  cmake -S "$here" -B "$b" -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DFERRY_PORTABLE=ON -DFERRY_TESTS=OFF \
    -DCMAKE_BUILD_TYPE="$build_type" -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" \
    >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; die "ferry: configure failed"; }
  cmake --build "$b" -j "$jobs" --target ferry ferry-mpi ferry_docs >>"$work/build.log" 2>&1 ||
    { grep -E "error|undefined" "$work/build.log" | head -30 >&2; die "ferry: build failed (all of it: $work/build.log)"; }
  # What make install puts in a prefix (bin/ferry, libexec/ferry/ferry-mpi, man pages,
  # completions), as a tree and a tarball to unpack anywhere.
  rm -rf "${work:?}/$release"
  cmake --install "$b" --prefix "$work/$release" >>"$work/build.log" 2>&1 || die "ferry: install failed ($work/build.log)"
  # ferry-mpi asks for the MPICH ABI's name of the library, which MPICH, Cray MPICH, Intel MPI and
  # MVAPICH all install; Debian names it libmpich.so.12.
  patchelf --replace-needed libmpich.so.12 libmpi.so.12 "$work/$release/libexec/ferry/ferry-mpi"
  tar -C "$work" -czf "$work/$release.tar.gz" "$release"
}

make_root
make_deps
build_ferry
say "done: $work/$release (bin/ferry, libexec/ferry/ferry-mpi) and $work/$release.tar.gz"
