# Large files flow through pack and unpack without being held: a 4 GiB sparse file, a 48 MiB text
# file holding the prefix (relocated on the way), and a real shared library over 4 MiB whose
# RUNPATH names the prefix (patched in place). The peak memory of each ferry process stays under a
# fixed bound, and the unpacked tree is what it should be.
source "$(dirname "$0")/common.sh"

LIMIT_MIB=256
lib=$(find /usr/lib/x86_64-linux-gnu -maxdepth 1 -name 'lib*.so*' -type f -size +6M -size -64M | sort | head -1)
[ -n "$lib" ] || skip "no shared library between 6 and 64 MiB in /usr/lib/x86_64-linux-gnu"
command -v patchelf > /dev/null || skip "patchelf is not installed"
free_mib=$(df -m --output=avail "$TEST_DIR" | tail -1)
[ "$free_mib" -gt 10240 ] || skip "needs 10 GiB free in $TEST_DIR (has $free_mib MiB)"

bounded() {  # bounded NAME CMD...: runs CMD, fails when its peak memory passes LIMIT_MIB
  local name=$1; shift
  python3 "$FERRY_SOURCE/tests/tools/peak_rss.py" "$TEST_DIR/rss" -- "$@"
  local peak; peak=$(cat "$TEST_DIR/rss")
  echo "$name: peak memory $peak MiB"
  [ "$peak" -le "$LIMIT_MIB" ] || fail "$name: peak memory $peak MiB (limit $LIMIT_MIB)"
}

P=$TEST_DIR/a-rather-long-prefix-for-the-large-files/env
mkdir -p "$P/big" "$P/share" "$P/lib"
truncate -s 4G "$P/big/sparse.bin"
python3 - "$P" <<'PY'
import sys
prefix = sys.argv[1]
line = ("config: %s/share/data/item-%%07d.json\n" % prefix)
with open(prefix + "/share/paths.txt", "w") as f:
    for i in range(48 * 2**20 // len(line % 0)):
        f.write(line % i)
PY
cp "$lib" "$P/lib/libbig.so"
patchelf --set-rpath "$P/lib:\$ORIGIN" "$P/lib/libbig.so"
[ "$(stat -c %s "$P/lib/libbig.so")" -gt 4194304 ] || fail "the library is not over 4 MiB"
# A crafted ELF file whose dynamic section holds 4 million DT_RUNPATH entries (64 MiB): reading
# its search paths must stay bounded too, and its real one is still relocated.
python3 - "$P" <<'PY'
import struct, sys
prefix = sys.argv[1]
n = 4 << 20
strtab_at = 64 + 2 * 56
strtab = b"\0" + (prefix + "/lib").encode() + b"\0"
dyn_at = (strtab_at + len(strtab) + 15) // 16 * 16
size = dyn_at + n * 16
ehdr = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 64, 0, 0, 64, 56, 2, 64, 0, 0)
load = struct.pack("<IIQQQQQQ", 1, 5, 0, 0, 0, size, size, 4096)
dyn = struct.pack("<IIQQQQQQ", 2, 6, dyn_at, dyn_at, dyn_at, n * 16, n * 16, 8)
entries = struct.pack("<qQ", 5, strtab_at) + struct.pack("<qQ", 29, 1) * (n - 2) + struct.pack("<qQ", 0, 0)
with open(prefix + "/lib/libmany.so", "wb") as f:
    f.write(ehdr + load + dyn + strtab + b"\0" * (dyn_at - strtab_at - len(strtab)) + entries)
PY

bounded pack "$FERRY" pack "$P" -o big.tar.zst > /dev/null
"$FERRY" inspect --json big.tar.zst > inspect.json
python3 - <<'PY'
import json
j = json.load(open("inspect.json"))
assert j["text_records"] >= 1 and j["binary_records"] >= 1, j
PY
D=$TEST_DIR/elsewhere/env
bounded unpack "$FERRY" unpack big.tar.zst "$D" > /dev/null

expect_eq "$(stat -c %s "$D/big/sparse.bin")" 4294967296 "sparse file size"
cmp -s -n 4294967296 "$D/big/sparse.bin" /dev/zero || fail "the 4 GiB file is not all zeros"
sed "s#$P#$D#g" "$P/share/paths.txt" | cmp -s - "$D/share/paths.txt" || fail "the text file is not relocated exactly"
grep -q "$P" "$D/share/paths.txt" && fail "the old prefix is left in the text file"
expect_eq "$(patchelf --print-rpath "$D/lib/libbig.so")" "$D/lib:\$ORIGIN" "RUNPATH of the large library"
grep -c "$D/lib" "$D/lib/libmany.so" > /dev/null || fail "the crafted ELF's RUNPATH was not relocated"
# Only the RUNPATH string changed: same size, a handful of differing bytes.
expect_eq "$(stat -c %s "$D/lib/libbig.so")" "$(stat -c %s "$P/lib/libbig.so")" "library size"
changed=$( (cmp -l "$P/lib/libbig.so" "$D/lib/libbig.so" || true) | wc -l)
[ "$changed" -le 256 ] || fail "$changed bytes of the library changed"

# --dest-prefix relocates at pack time: the large files are relocated in pieces too.
X=$TEST_DIR/x/env
bounded "pack --dest-prefix" "$FERRY" pack "$P" -o dest.tar.zst --dest-prefix "$X" --exclude 'big/*' > /dev/null
"$FERRY" unpack dest.tar.zst "$X" > /dev/null
sed "s#$P#$X#g" "$P/share/paths.txt" | cmp -s - "$X/share/paths.txt" || fail "--dest-prefix: the text file is not relocated exactly"
expect_eq "$(patchelf --print-rpath "$X/lib/libbig.so")" "$X/lib:\$ORIGIN" "--dest-prefix: RUNPATH of the large library"
rm -rf "$TEST_DIR/x"

# A damaged large file is caught by its checksum, even though it is never held whole.
python3 - big.tar.zst <<'PY'
import sys, struct
data = bytearray(open(sys.argv[1], "rb").read())
# Flip a byte inside the last data frame before the seek table (zstd's own checksum would catch a
# flipped compressed byte too; either way unpack must refuse).
count = struct.unpack("<I", data[-9:-5])[0]
table = 8 + count * 8 + 9
data[len(data) - table - 100] ^= 0xFF
open("damaged.tar.zst", "wb").write(bytes(data))
PY
expect_failure "damaged.tar.zst" "$FERRY" unpack damaged.tar.zst "$TEST_DIR/damaged"
expect_missing "$TEST_DIR/damaged"
echo "large files: packed and unpacked within ${LIMIT_MIB} MiB, relocated exactly"
