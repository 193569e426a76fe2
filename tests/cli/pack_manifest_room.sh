# pack (zstd) writes the files' frames after room kept for the manifest's, estimated before the
# manifest is known. Whatever the estimate, the archive is the same to every reader: a room too
# small (the files' frames move up), one with less than a padding frame's 8 bytes left over, and
# one so large that the padding would make a frame larger than readers accept (they move down).
source "$(dirname "$0")/common.sh"
ENV=$(conda_fixture small)

"$FERRY" pack "$ENV" -o ref.tar.zst >/dev/null
# Unpacked at the path every archive below is unpacked at, so that the relocated files match.
"$FERRY" unpack ref.tar.zst d >/dev/null
rm d/.ferry/unpacked.json
mv d ref
tar --zstd -tvf ref.tar.zst | awk '{print $1, $3, $6}' | sort > ref.list
# The compressed size of the manifest's frames (with the .ferry directory): its seek-table entry.
first_frame=$(python3 -c '
import struct, sys
a = open(sys.argv[1], "rb").read()
n = struct.unpack("<I", a[-9:-5])[0]
table = a[len(a) - 9 - 8 * n:len(a) - 9]
print(struct.unpack("<I", table[:4])[0])' ref.tar.zst)
[ "$first_frame" -gt 1000 ] || fail "the manifest's frame is only $first_frame bytes"

for room in 0 $((first_frame - 1)) $((first_frame + 3)) $((64 << 20)); do
  rm -rf out.tar.zst d
  FERRY_TEST_MANIFEST_ROOM=$room "$FERRY" pack "$ENV" -o out.tar.zst --json >pack.json
  expect_eq "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["bytes_out"])' pack.json)" \
    "$(stat -c %s out.tar.zst)" "room $room: bytes_out"
  zstd -tq out.tar.zst || fail "room $room: zstd -t refuses the archive"
  tar --zstd -tvf out.tar.zst | awk '{print $1, $3, $6}' | sort > out.list
  diff -q ref.list out.list >/dev/null || fail "room $room: tar lists other members"
  "$FERRY" inspect out.tar.zst --json > inspect.json || fail "room $room: inspect refuses it"
  "$FERRY" unpack out.tar.zst d >/dev/null || fail "room $room: unpack refuses it"
  rm d/.ferry/unpacked.json
  diff -r ref d >/dev/null || fail "room $room: unpacks to another tree"
  # No more than 8 bytes between the manifest's frames and the files' (the padding frame at least).
  size=$(stat -c %s out.tar.zst) ref_size=$(stat -c %s ref.tar.zst)
  [ $((size - ref_size)) -le $((first_frame)) ] || fail "room $room: $size bytes against $ref_size"
done
echo ok
