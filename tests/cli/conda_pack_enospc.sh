# A disk that fills up while conda-pack's records are applied (a text file grows when the env is
# unpacked at a longer path) fails with ENOSPC naming the archive and the file; DEST stays absent
# and nothing is left beside it.
source "$(dirname "$0")/common.sh"
[ "$(id -u)" = 0 ] || skip "needs root to mount a small tmpfs"
unshare -m true 2>/dev/null || skip "cannot make a mount namespace here"
# 40,000 copies of the env's path: 2.4 MB packed in, over 10 MB once relocated below.
ENV=$("$DEBIAN_PYTHON" "$FERRY_SOURCE/tests/fixtures/make_tricky_conda_env.py" "$TEST_DIR/build" \
      --big-text 40000)
"$DEBIAN_PYTHON" "$FERRY_SOURCE/tests/fixtures/make_conda_pack_archive.py" "$ENV" env.tar.gz >/dev/null
mkdir small
long=$(printf 'a-rather-long-directory-name-%s/' 1 2 3 4 5 6)
# In a mount namespace of its own: the 8 MiB tmpfs goes away with it.
rc=0
unshare -m sh -c '
  mount -t tmpfs -o size=8m tmpfs small || exit 99
  mkdir -p "small/$1"
  "$2" unpack env.tar.gz "small/$1env" >out 2>err
  echo $? >rc
  ls -A "small/$1" >left
  ls -A "small/$1env" >dest 2>/dev/null && echo present >>dest
  df -k small >df
  exit 0' sh "$long" "$FERRY" || rc=$?
[ "$rc" = 0 ] || skip "cannot mount a tmpfs here"
[ "$(cat rc)" != 0 ] || fail "unpack succeeded on a full disk: $(cat out)"
err=$(cat err)
expect_contains "$err" "No space left on device"
expect_contains "$err" "$TEST_DIR/env.tar.gz: member 'lib/python3.11/site-packages/demo_plugin/big.txt'"
expect_eq "$(grep -c 'ferry: error:' err)" 1 "error lines"
[ ! -s dest ] || fail "DEST exists after the failure: $(cat dest)"
# Nothing but the lock file (kept by design) beside DEST.
left=$(grep -v '^\.env\.ferry-lock$' left || true)
[ -z "$left" ] || fail "left beside DEST: $left"
echo ok
