#!/usr/bin/env bash
# Writes the seed corpora fuzz/seeds/<target>/ from real archives: a small prefix and a conda env
# packed by ferry, the conda-pack archive of that env (tests/fixtures/make_conda_pack_archive.py)
# and the small files of tests/fixtures/make_hostile_archives.py. Seeds are kept under a few KB:
# libFuzzer cuts longer ones to -max_len anyway.
# Usage: fuzz/make_seeds.sh FERRY [CONDA_ENV]   (CONDA_ENV: a fixture env, else one is built)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
ferry=$(realpath "$1")
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=$src/fuzz/seeds
rm -rf "$out"
mkdir -p "$out"/{tar_reader,frame_index,manifest,conda_unpack_records}
conda_env=${2:-}
if [ -z "$conda_env" ]; then
  "$py" "$src/tests/fixtures/make_conda_env.py" "$work/fx" --small >/dev/null
  conda_env=$work/fx/env
fi

# A small prefix: a script naming the prefix, a symlink, a hardlink, an empty directory.
p=$work/opt/prefix
mkdir -p "$p/bin" "$p/lib" "$p/share/empty"
printf '#!%s/bin/python\nprint("hello")\n' "$p" >"$p/bin/tool"
chmod 755 "$p/bin/tool"
ln -s tool "$p/bin/link"
printf 'prefix=%s\nlibdir=${prefix}/lib\n' "$p" >"$p/lib/conf.pc"
ln "$p/lib/conf.pc" "$p/lib/hard.pc"
"$ferry" pack "$p" -o "$work/prefix.tar.zst" >/dev/null
"$ferry" pack "$p" -o "$work/prefix.tar.gz" --format tar.gz >/dev/null
tar -C "$p" -cf "$work/prefix.tar" .
for f in prefix.tar.zst prefix.tar.gz prefix.tar; do cp "$work/$f" "$out/tar_reader/"; done
cp "$work/prefix.tar.zst" "$work/prefix.tar.gz" "$out/frame_index/"
tar --zstd -xOf "$work/prefix.tar.zst" .ferry/manifest.json >"$out/manifest/prefix.json"

# The conda env's manifest (placeholders, text/binary/rpath modes), cut to its first 40 files.
"$ferry" pack "$conda_env" -o "$work/conda.tar.zst" >/dev/null
tar --zstd -xOf "$work/conda.tar.zst" .ferry/manifest.json >"$work/conda.json"
"$py" - "$work/conda.json" "$out/manifest/conda.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
rows = m["files"]
m["files"] = [r for r in rows if r[4] != "none"][:30] + [r for r in rows if r[4] == "none"][:10]
open(sys.argv[2], "w").write(json.dumps(m, indent=0) + "\n")
PY

# conda-unpack's records: the start of a real list, and the hostile names' escapes.
"$py" "$src/tests/fixtures/make_conda_pack_archive.py" "$conda_env" "$work/cp.tar.gz" >/dev/null
tar -xzOf "$work/cp.tar.gz" bin/conda-unpack >"$work/conda-unpack"
"$py" - "$work/conda-unpack" "$out/conda_unpack_records/conda-unpack" <<'PY'
import sys
lines = open(sys.argv[1], encoding="utf-8", errors="surrogateescape").read().split("\n")
start = next(i for i, l in enumerate(lines) if l.startswith("_prefix_records = ["))
end = lines.index("]", start)
keep = lines[:start + 1] + [l for l in lines[start + 1:end]][:12]
keep[-1] = keep[-1].rstrip(",")
out = "\n".join(keep + lines[end:])
open(sys.argv[2], "w", encoding="utf-8", errors="surrogateescape").write(out)
PY
"$py" "$src/tests/fixtures/make_hostile_archives.py" "$work/hostile" >/dev/null
tar -xzOf "$work/hostile/conda_pack_escaped_names.tar.gz" bin/conda-unpack \
  >"$out/conda_unpack_records/escaped-names"
for f in "$work"/hostile/*; do
  [ "$(stat -c %s "$f")" -le 4096 ] || continue
  cp "$f" "$out/tar_reader/"
  case $f in *.ferry.tar.*) cp "$f" "$out/frame_index/" ;; esac
done
du -sh "$out"/* | sed "s|$src/||"
