# ferry --version: "ferry X.Y.Z (git REV)", the revision of the source tree it was built from
# (cmake/FerryRevision.cmake); the first two words are what every manifest's `tool` field holds.
source "$(dirname "$0")/common.sh"

out=$("$FERRY" --version)
expect_eq "$(wc -l <<<"$out")" 1
version=$(project_version)
expect_eq "${out%% (*}" "ferry $version"

top=$(git -C "$FERRY_SOURCE" rev-parse --show-toplevel 2>/dev/null || true)
if [ -n "$top" ] && [ "$(realpath "$top")" = "$(realpath "$FERRY_SOURCE")" ]; then
  expect_eq "$out" "ferry $version (git $(git -C "$FERRY_SOURCE" rev-parse --short HEAD))"
elif [ -f "$FERRY_SOURCE/REVISION" ]; then  # a tree from make dist's tarball
  expect_eq "$out" "ferry $version (git $(head -n1 "$FERRY_SOURCE/REVISION"))"
else
  expect_eq "$out" "ferry $version (unknown revision)"
fi

# The manifest's tool field: the same words.
mkdir -p env/bin && echo '#!/bin/sh' > env/bin/tool
"$FERRY" pack env -o env.tar.zst >/dev/null
expect_contains "$("$FERRY" inspect env.tar.zst --json)" "\"tool\": \"ferry $version\""
