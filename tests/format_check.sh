#!/usr/bin/env bash
# Every C++ source git tracks is in .clang-format's style (clang-format 14, as Debian 12 ships it).
# Lists the files that are not, with the command that fixes them.
set -euo pipefail
root=${1:?usage: format_check.sh SOURCE_DIR}
cd "$root"
command -v clang-format >/dev/null || { echo "skipped: clang-format is not installed (scripts/install-deps.sh adds it)"; exit 77; }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
else
  mapfile -t files < <(find src tests fuzz -name '*.cpp' -o -name '*.hpp')
fi
bad=()
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  clang-format --style=file --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  printf '%s: not in .clang-format style\n' "${bad[@]}"
  echo "fix: clang-format -i ${bad[*]}   (or: make format)"
  exit 1
fi
echo "format: ${#files[@]} files in .clang-format style"
