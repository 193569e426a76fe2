# A disk that fills up while pack writes (the files' frames wait in a spill file beside OUT until
# the manifest is written, so the disk briefly holds the archive twice) fails with one line naming
# OUT and ENOSPC; OUT stays absent and nothing but the lock is left beside it.
source "$(dirname "$0")/common.sh"
[ "$(id -u)" = 0 ] || skip "needs root to mount a small tmpfs"
unshare -m true 2>/dev/null || skip "cannot make a mount namespace here"
# 12 MiB that do not compress, in 3 files (one past 4 MiB, read in pieces), and a script.
mkdir -p prefix/bin prefix/share
head -c $((6 << 20)) /dev/urandom > prefix/share/blob
head -c $((3 << 20)) /dev/urandom > prefix/share/a
head -c $((3 << 20)) /dev/urandom > prefix/share/b
printf '#!%s/bin/python\n' "$TEST_DIR/prefix" > prefix/bin/tool
mkdir small
rc=0
# In a mount namespace of its own: the 8 MiB tmpfs goes away with it.
unshare -m sh -c '
  mount -t tmpfs -o size=8m tmpfs small || exit 99
  "$1" pack prefix -o small/env.tar.zst >out 2>err
  echo $? >rc
  ls -A small >left
  exit 0' sh "$FERRY" || rc=$?
[ "$rc" = 0 ] || skip "cannot mount a tmpfs here"
[ "$(cat rc)" != 0 ] || fail "pack succeeded on a full disk: $(cat out)"
err=$(cat err)
expect_contains "$err" "No space left on device"
expect_contains "$err" "$TEST_DIR/small/env.tar.zst"
expect_eq "$(grep -c 'ferry: error:' err)" 1 "error lines"
left=$(grep -v '^\.env\.tar\.zst\.ferry-lock$' left || true)
[ -z "$left" ] || fail "left beside OUT: $left"
# With room for it, the same pack works and unpacks to the same bytes.
"$FERRY" pack prefix -o env.tar.zst >/dev/null
"$FERRY" unpack env.tar.zst "$TEST_DIR/back" >/dev/null
cmp prefix/share/blob "$TEST_DIR/back/share/blob" || fail "the streamed file changed"
echo ok
