# An archive truncated while ferry reads it (another job rewriting it on shared storage): the
# memory-mapped reader must end with the usual one-line error, never SIGBUS, and DEST stays absent.
source "$(dirname "$0")/common.sh"

mkdir -p env/lib
for i in $(seq 1 48); do head -c $((6 << 20)) /dev/urandom > env/lib/blob$i.bin; done
"$FERRY" pack env -o env.tar.zst > /dev/null
hits=0
for try in $(seq 1 12); do
  cp env.tar.zst a.tar.zst
  rm -rf dest
  "$FERRY" unpack -j 1 a.tar.zst dest > out.txt 2>&1 & pid=$!
  sleep 0.0$((try % 9 + 1))
  truncate -s $(( $(stat -c %s env.tar.zst) / 3 )) a.tar.zst
  rc=0; wait $pid || rc=$?
  [ "$rc" -lt 128 ] || fail "try $try: ferry died of signal $((rc - 128)): $(cat out.txt)"
  if [ "$rc" -ne 0 ]; then
    [ "$(grep -c . out.txt)" -eq 1 ] || fail "try $try: expected one line, got: $(cat out.txt)"
    grep -q "ferry: error: .*a.tar.zst" out.txt || fail "try $try: the error does not name the archive: $(cat out.txt)"
    grep -q "shrank while ferry was reading it" out.txt && hits=$((hits + 1))
    expect_missing dest
  fi
done
[ "$hits" -gt 0 ] || skip "no try truncated the archive while it was read (the machine is too fast or too slow)"
echo "shrinking archive: $hits of 12 tries truncated mid-read, each one clean error"
