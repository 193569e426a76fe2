#!/usr/bin/env bash
# Damaged archives (truncated, flipped bytes, tampered file data, garbage) fail with one clear line
# naming the archive, and leave nothing at DEST and no temporary tree beside it.
source "$(dirname "$0")/common.sh"
env=$(conda_fixture small)
"$FERRY" pack "$env" -o good.tar.zst --json >/dev/null
"$FERRY" pack "$env" -o good.tar.gz --format tar.gz --json >/dev/null
mkdir work
dest=$TEST_DIR/work/dest

# expect_corrupt ARCHIVE [REASON_REGEX]: exit 1, one stderr line naming the archive, DEST untouched.
expect_corrupt() {
  local archive=$TEST_DIR/$1 reason=${2:-corrupted|truncated|checksum mismatch} rc=0
  "$FERRY" unpack "$archive" "$dest" >out.txt 2>err.txt || rc=$?
  expect_eq "$rc" 1 "exit status for $1: $(cat err.txt)"
  expect_eq "$(wc -l <err.txt)" 1 "stderr lines for $1: $(cat err.txt)"
  grep -Eq "^ferry: error: $archive: .*($reason)" err.txt || fail "unclear error for $1: $(cat err.txt)"
  expect_eq "$(cat out.txt)" "" "stdout for $1"
  expect_missing "$dest"
  expect_eq "$(ls -A work)" ".dest.ferry-lock" "what is left beside DEST after $1"
}
# flip FILE OFFSET: inverts one byte in place.
flip() { "$DEBIAN_PYTHON" -c 'import sys; f = open(sys.argv[1], "r+b"); o = int(sys.argv[2]); f.seek(o); b = f.read(1)[0]; f.seek(o); f.write(bytes([b ^ 0xFF]))' "$@"; }
# first_frame_size ARCHIVE: compressed size of frame 0 (zstd seek table entry or gzip FY field).
first_frame_size() {
  "$DEBIAN_PYTHON" - "$1" <<'EOF'
import struct, sys
a = open(sys.argv[1], "rb").read()
if a.startswith(b"\x1f\x8b"):
    print(struct.unpack_from("<I", a, 16)[0])
else:
    n = struct.unpack_from("<I", a, len(a) - 9)[0]
    print(struct.unpack_from("<I", a, len(a) - (8 * n + 9))[0])
EOF
}

# damaged GOOD "CUTS" "OFFSETS": GOOD cut to each length (cut.GOOD) and with the byte at each
# offset flipped (flip.GOOD, the last one left for more checks) fails as expect_corrupt says.
damaged() {
  local good=$1 cut offset
  for cut in $2; do
    head -c "$cut" "$good" >"cut.$good"
    expect_corrupt "cut.$good"
  done
  for offset in $3; do
    cp "$good" "flip.$good"
    flip "flip.$good" "$offset"
    expect_corrupt "flip.$good"
  done
}

for good in good.tar.zst good.tar.gz; do
  size=$(stat -c %s $good)
  damaged $good "$((size / 3)) $((size / 2)) $((size - 100)) $((size - 1))" \
    "$((size / 2)) $(($(first_frame_size $good) / 2))"
  rm -f cut.$good flip.$good
done

# A foreign tar.gz (conda-pack's kind, inflated by ISA-L rather than by libarchive's zlib):
# truncated anywhere, inside the trailer too, or with a byte flipped in the data or in the CRC.
tar -C "$env" -cf - . | gzip -c >plain.tar.gz
size=$(stat -c %s plain.tar.gz)
damaged plain.tar.gz "$((size / 2)) $((size - 6)) $((size - 1))" "$((size / 2)) $((size - 6))"
expect_corrupt flip.plain.tar.gz "checksum mismatch"  # the CRC flipped: the data inflate cleanly
# Intact ones the way tools write them: several members (cat a.gz b.gz, pigz -i, bgzip), and junk
# after the last member (ignored, as gzip -d does), unpack to the same tree.
tar -C "$env" -cf whole.tar .
half=$(( $(stat -c %s whole.tar) / 2 ))
{ head -c $half whole.tar | gzip -c; tail -c +$((half + 1)) whole.tar | gzip -c; } >members.tar.gz
{ cat plain.tar.gz; printf 'junk after the stream'; } >junk.tar.gz
for good in members.tar.gz junk.tar.gz; do
  "$FERRY" unpack $good "$dest" >/dev/null
  diff -r --no-dereference -x .ferry "$env" "$dest" >/dev/null || fail "$good: the tree differs from the env"
  rm -rf "$dest"
done
rm -f plain.tar.gz cut.plain.tar.gz flip.plain.tar.gz members.tar.gz junk.tar.gz

# A foreign tar.zst (one zstd stream, decoded on ferry's own thread): truncated anywhere (inside
# the last frame's checksum too) or with a byte flipped in its data or checksum; intact as several
# frames (cat a.zst b.zst, zstd's own multi-frame output) it unpacks to the same tree.
zstd -q --check -c whole.tar >plain.tar.zst
size=$(stat -c %s plain.tar.zst)
damaged plain.tar.zst "$((size / 2)) $((size - 2)) $((size - 1))" "$((size / 2)) $((size - 2))"
{ head -c $half whole.tar | zstd -q -c; tail -c +$((half + 1)) whole.tar | zstd -q -c; } >frames.tar.zst
{ cat plain.tar.zst; printf 'junk after the stream'; } >junk.tar.zst
"$FERRY" unpack frames.tar.zst "$dest" >/dev/null
diff -r --no-dereference -x .ferry "$env" "$dest" >/dev/null || fail "frames.tar.zst: the tree differs from the env"
rm -rf "$dest"
expect_corrupt junk.tar.zst  # zstd -d refuses what follows the last frame as well
rm -f plain.tar.zst cut.plain.tar.zst flip.plain.tar.zst frames.tar.zst junk.tar.zst whole.tar

# A frame that decompresses cleanly but carries altered file data: only the manifest's per-file
# checksums can tell. Re-compress one frame with one byte of a file changed and fix the seek table.
"$DEBIAN_PYTHON" - good.tar.zst tampered.tar.zst <<'EOF'
import io, struct, subprocess, sys, tarfile
a = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<I", a, len(a) - 9)[0]
table = len(a) - (8 * n + 9)
frames = [struct.unpack_from("<II", a, table + 8 * i) for i in range(n)]
stream = subprocess.run(["zstd", "-dcq", sys.argv[1]], stdout=subprocess.PIPE, check=True).stdout
starts = [sum(d for _, d in frames[:i]) for i in range(n + 1)]
victim = next(m for m in tarfile.open(fileobj=io.BytesIO(stream))
              if m.isfile() and m.size > 0 and m.offset_data >= starts[1])
k = max(i for i in range(n) if starts[i] <= victim.offset_data)
chunk = bytearray(stream[starts[k]:starts[k + 1]])
chunk[victim.offset_data - starts[k]] ^= 0xFF
frame = subprocess.run(["zstd", "-qc"], input=bytes(chunk), stdout=subprocess.PIPE, check=True).stdout
offset = sum(c for c, _ in frames[:k])
out = a[:offset] + frame + a[offset + frames[k][0]:table]
frames[k] = (len(frame), frames[k][1])
out += b"".join(struct.pack("<II", c, d) for c, d in frames) + a[len(a) - 9:]
open(sys.argv[2], "wb").write(out)
EOF
expect_corrupt tampered.tar.zst "member '.*': checksum mismatch"

# Not archives at all.
: >empty.tar.zst
expect_corrupt empty.tar.zst "cannot read archive: Unrecognized archive format"
head -c 1M /dev/urandom >random.tar.zst
expect_corrupt random.tar.zst "cannot read archive: Unrecognized archive format"

# The intact archives still unpack into that DEST.
for good in good.tar.zst good.tar.gz; do
  "$FERRY" unpack $good "$dest" --json >/dev/null
  [ -f "$dest/.ferry/unpacked.json" ] || fail "$good did not unpack"
  rm -rf "$dest"
done
