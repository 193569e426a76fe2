#!/usr/bin/env bash
# The layer order (README "Layout"): a file of src/LAYER, and a unit test tests/unit/LAYER_*_test.cpp,
# may include its own layer's headers and the public header (X/X.hpp) of a layer below it, nothing
# else. Prints every include that breaks the order, with file and line, and fails.
set -euo pipefail
root=${1:?usage: layering.sh SOURCE_DIR}
cd "$root"
declare -A below=(
  [util]=""
  [format]="util"
  [env]="format util"
  [job]="util"
  [stage]="env format job util"
  [module]="env format util"
  [runtime]="env format job util"
  [sweep]="env format job util"
  [container]="env format util"
  [doctor]="stage env format job util"
  [cli]="doctor stage module runtime sweep container env format job util"
)
bad=0
check() {  # check FILE LAYER
  local file=$1 layer=$2 line number target header
  while IFS=: read -r number line; do
    target=$(sed -E 's/^#include "([a-z_]+)\/([a-z_]+\.hpp)".*/\1/' <<<"$line")
    header=$(sed -E 's/^#include "([a-z_]+)\/([a-z_]+\.hpp)".*/\2/' <<<"$line")
    [ "$target" = "$layer" ] && continue
    if [[ " ${below[$layer]} " == *" $target "* ]]; then
      [ "$header" = "$target.hpp" ] && continue
      echo "$file:$number: includes $target/$header, a private header of $target (use $target/$target.hpp)"
    elif [ -n "${below[$target]+x}" ]; then
      echo "$file:$number: $layer includes $target/$header, from a layer that is not below it"
    else
      continue  # not a ferry layer (a generated or third-party header)
    fi
    bad=1
  done < <(grep -nE '^#include "[a-z_]+/[a-z_]+\.hpp"' "$file" || true)
}
for layer in "${!below[@]}"; do
  [ -d "src/$layer" ] || { echo "layering.sh: src/$layer is missing (update the table)"; exit 1; }
  while IFS= read -r f; do check "$f" "$layer"; done < <(find "src/$layer" -name '*.[ch]pp' -o -name '*.cpp.in')
done
for f in tests/unit/*_test.cpp; do
  layer=$(basename "$f"); layer=${layer%%_*}
  if [ -z "${below[$layer]+x}" ]; then
    echo "$f: a unit test is named LAYER_*_test.cpp (its layer's executable links only that layer)"
    bad=1
    continue
  fi
  check "$f" "$layer"
done
# Every layer's library links only layers below it.
for layer in "${!below[@]}"; do
  [ "$layer" = cli ] && continue
  for lib in $(grep -ohE 'ferry_(util|format|env|job|stage|module|runtime|sweep|container)\b' "src/$layer/CMakeLists.txt" | sort -u); do
    dep=${lib#ferry_}
    [ "$dep" = "$layer" ] && continue
    [[ " ${below[$layer]} " == *" $dep "* ]] && continue
    echo "src/$layer/CMakeLists.txt: ferry_$layer links $lib, a layer that is not below it"
    bad=1
  done
done
[ $bad -eq 0 ] && echo "layering: every include and link follows util < format < env < stage/module, job < stage < cli"
exit $bad
