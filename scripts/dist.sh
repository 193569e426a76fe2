#!/usr/bin/env bash
# make dist: the source tarball OUT_DIR/ferry-VERSION.tar.gz of the committed tree (HEAD), with
# a REVISION file naming the commit, so that a ferry built from it says where it came from
# (cmake/FerryRevision.cmake reads the file where there is no git checkout).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out_dir=${1:-$src/build}
version=$(sed -n 's/^project(ferry VERSION \([0-9.]*\) .*/\1/p' "$src/CMakeLists.txt")
[ -n "$version" ] || { echo "dist: no project(ferry VERSION ...) in $src/CMakeLists.txt" >&2; exit 1; }
git -C "$src" rev-parse --git-dir >/dev/null 2>&1 || { echo "dist: $src is not a git checkout" >&2; exit 1; }
[ -z "$(git -C "$src" status --porcelain --untracked-files=no)" ] ||
  echo "dist: uncommitted changes are not in the tarball (it holds HEAD)" >&2
mkdir -p "$out_dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$src" rev-parse --short HEAD >"$work/REVISION"
name=ferry-$version
git -C "$src" archive --format=tar.gz --prefix="$name/" --add-file="$work/REVISION" \
  -o "$out_dir/$name.tar.gz.tmp" HEAD
mv "$out_dir/$name.tar.gz.tmp" "$out_dir/$name.tar.gz"
echo "$out_dir/$name.tar.gz"
