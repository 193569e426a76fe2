# Hand-built hostile archives, one per class (tests/fixtures/make_hostile_archives.py): each is
# refused with one line or extracted correctly, DEST is absent after a refusal, and the peak memory
# of the ferry process stays under a fixed bound whatever the archive claims.
source "$(dirname "$0")/common.sh"

LIMIT_MIB=256
python3 "$FERRY_SOURCE/tests/fixtures/make_hostile_archives.py" hostile > /dev/null
H=$TEST_DIR/hostile
peak() { cat "$TEST_DIR/rss"; }
# run_bounded CMD...: runs it under the memory probe; sets rc and out; fails past LIMIT_MIB.
run_bounded() {
  rc=0
  out=$(python3 "$FERRY_SOURCE/tests/tools/peak_rss.py" "$TEST_DIR/rss" -- "$@" 2>&1) || rc=$?
  [ "$(peak)" -le "$LIMIT_MIB" ] || fail "$*: peak memory $(peak) MiB (limit $LIMIT_MIB)"
}
# refused ARCHIVE "message": non-zero exit, exactly one error line, DEST absent, nothing beside it.
refused() {
  rm -rf "$TEST_DIR/out" && mkdir "$TEST_DIR/out"
  run_bounded "$FERRY" unpack "$H/$1" "$TEST_DIR/out/dest"
  [ "$rc" -eq 1 ] || fail "$1: expected exit 1, got $rc: $out"
  expect_contains "$out" "$2"
  [ "$(printf '%s\n' "$out" | grep -c .)" -eq 1 ] || fail "$1: expected one line, got: $out"
  expect_missing "$TEST_DIR/out/dest"
  [ -z "$(ls -A "$TEST_DIR/out" | grep -v '\.ferry-lock$' || true)" ] || fail "$1: left $(ls -A "$TEST_DIR/out")"
}
extracted() {
  rm -rf "$TEST_DIR/out"
  run_bounded "$FERRY" unpack "$H/$1" "$TEST_DIR/out/dest"
  [ "$rc" -eq 0 ] || fail "$1: expected success, got $rc: $out"
}

# 1. Claims that would make ferry allocate before checking: refused, in a few MiB.
refused frame_claim_huge.ferry.tar.zst "claims 4294967295 bytes"
refused gzip_isize_huge.ferry.tar.gz "claims 4294967295 bytes"
run_bounded "$FERRY" inspect "$H/frame_claim_huge.ferry.tar.zst"
[ "$rc" -eq 1 ] || fail "inspect of a 4 GiB claim: exit $rc"
refused huge_manifest.ferry.tar.zst "the manifest is larger than ferry reads"
run_bounded "$FERRY" inspect "$H/huge_manifest.ferry.tar.zst"
[ "$rc" -eq 1 ] || fail "inspect of a huge manifest: exit $rc"

# Members far larger than the bound stream to their files: a 10 GiB sparse member (GNU and pax
# sparse), a zip member that inflates to 1 GiB, 1,000 repeats of a 4 MiB member.
for a in sparse_huge_hole.tar sparse_pax_huge_hole.tar; do
  extracted $a
  expect_eq "$(stat -c %s out/dest/big/sparse.bin)" 10737418240 "$a: declared size"
  [ "$(du -k out/dest/big/sparse.bin | cut -f1)" -lt 1024 ] || fail "$a: holes were written out"
  [ "$(tail -c 512 out/dest/big/sparse.bin | tr -d '\0' | wc -c)" -gt 0 ] || fail "$a: data at the end lost"
done
# 2. A sparse member that is all hole keeps its declared size (as GNU tar makes it).
extracted sparse_all_hole.tar
expect_eq "$(stat -c %s out/dest/hole/all-hole.bin)" 1048576 "all-hole sparse member"
extracted zip_bomb.zip
expect_eq "$(stat -c %s out/dest/bomb/zeros.bin)" 1073741824 "zip member size"
cmp -s -n 1073741824 out/dest/bomb/zeros.bin /dev/zero || fail "zip member content"
for a in repeated_names.ferry.tar.zst repeated_names.tar.zst; do
  extracted $a
  # The last member of a name wins (as with tar), and no temporary copy is left in the tree.
  expect_eq "$(cd out/dest && find . -path ./.ferry -prune -o -print | sort | tr '\n' ' ')" ". ./data ./data/same " "$a: tree"
done

# Verification covers every member, and only a first member is a manifest.
refused manifest_not_first.ferry.tar.zst "a manifest that is not the archive's first member"
refused unlisted_symlink.ferry.tar.zst "member 'bin/python': symlink not listed in the manifest"
refused unlisted_directory.ferry.tar.zst "member 'extra': directory not listed in the manifest"
refused symlink_target_differs.ferry.tar.zst "symlink target differs from the manifest"
refused directory_mode_differs.ferry.tar.zst "mode differs from the manifest"

refused empty_placeholder.ferry.tar.zst "an empty placeholder"
refused second_manifest.ferry.tar.zst "a manifest that is not the archive's first member"
# A member cannot take the name under which ferry keeps a repeated member's data.
extracted repeat_name_collision.tar
expect_eq "$(cat out/dest/x)" "BBBB last" "the last x wins"
expect_eq "$(cat out/dest/.x.ferry-repeat-1)" "AAAA first" "the hardlink keeps the x it named"
# A ferry archive never holds sparse members: one in a verified archive is refused.
if tar --version 2>/dev/null | grep -q GNU; then
  mkdir -p sp/env && truncate -s 64M sp/env/big && echo end >> sp/env/big
  "$FERRY" pack sp/env -o sp/plain.tar.zst > /dev/null
  (cd sp && zstd -dqc plain.tar.zst | tar -x .ferry/manifest.json && tar -cSf "$H/sparse_in_ferry.tar" .ferry/manifest.json -C env big)
  refused sparse_in_ferry.tar "a sparse member where the manifest lists a plain file"
fi

# 4. A bad pax mtime record does not drop the header's path record.
for a in pax_bad_mtime_before_path.tar pax_bad_mtime_before_path.ferry.tar.zst; do
  extracted $a
  [ -f out/dest/pax/the-pax-path.txt ] || fail "$a: the pax path was dropped: $(cd out/dest && find .)"
done

# Names are printed escaped: a newline cannot forge a second line, escapes never reach a terminal.
for a in name_newline.tar name_newline.ferry.tar.zst; do
  refused $a "member 'ok\\nferry: error: a forged second line/../escape'"
done
for a in name_escape.tar name_escape.ferry.tar.zst; do
  refused $a "member '\\x1b[2J\\x1b]0;pwned\\x07"
  case "$out" in *$'\e'*|*$'\a'*) fail "$a: raw control characters printed: $out";; esac
done
echo "hostile archives: every class refused or extracted correctly within ${LIMIT_MIB} MiB"
