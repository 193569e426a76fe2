# conda-pack archives whose recorded file names are escaped by Python's repr() (a no-break space
# is '\xa0', a byte that is not UTF-8 is '\udce9') are relocated under exactly those names; a
# record ferry cannot apply (its file missing, or a symlink) fails the unpack and leaves no DEST.
source "$(dirname "$0")/common.sh"
ENV=$("$DEBIAN_PYTHON" "$FERRY_SOURCE/tests/fixtures/make_tricky_conda_env.py" "$TEST_DIR/build")
"$DEBIAN_PYTHON" "$FERRY_SOURCE/tests/fixtures/make_conda_pack_archive.py" "$ENV" env.tar.gz >/dev/null
tar -xzOf env.tar.gz bin/conda-unpack > records.py 2>/dev/null
# The records really hold the escapes this test is about.
for escaped in '\xa0' '\x85' '\u2028' '\xad' '\u200b' '\x01' '\udce9' "it\\'s" '\\'; do
  grep -qF -- "$escaped" records.py || fail "no $escaped in the records"
done

# Every file the records name now names DEST, under its own name, and keeps its mode.
check_relocated() {
  local dest=$1
  local names=0
  while IFS= read -r -d '' f; do
    expect_eq "$(cat "$f")" "prefix = $dest" "$f"
    names=$((names + 1))
  done < <(find "$dest/share/demo/names" -type f -print0)
  expect_eq "$names" 12 "files in share/demo/names"
  while IFS= read -r -d '' f; do
    expect_eq "$(cat "$f")" "HOME = '$dest'" "$f"
  done < <(find "$dest/lib/python3.11/site-packages/demo_plugin" -type f -print0)
  expect_eq "$(cat "$dest/share/demo/config.txt")" "data_dir = $dest/share/demo"
  expect_eq "$(stat -c %a "$dest/share/demo/config.txt")" 444
  expect_eq "$(stat -c %a "$dest/lib/libdemo.so.1")" 555
  grep -qaF "$dest/lib" "$dest/lib/libdemo.so.1" || fail "libdemo.so.1 keeps its placeholder"
  local left
  left=$(grep -rlaF --exclude-dir=conda-meta --exclude-dir=.ferry --exclude=conda-unpack \
         -e "$ENV" -e _h_env_placehold "$dest" || true)
  [ -z "$left" ] || fail "files still name the placeholder: $left"
}

DEST="$TEST_DIR/unpacked/env"
"$FERRY" unpack env.tar.gz "$DEST" >/dev/null
check_relocated "$DEST"

# The same tree as a zip (conda-pack's other container).
mkdir ziptree && tar -xzf env.tar.gz -C ziptree 2>/dev/null && (cd ziptree && zip -q -r -y ../env.zip .)
"$FERRY" unpack env.zip "$TEST_DIR/zip/env" >/dev/null
check_relocated "$TEST_DIR/zip/env"

# Tampered archives: one more record, naming a file the archive lacks, or a symlink it holds.
tamper() {  # OUT RECORD [SYMLINK_NAME TARGET]
  "$DEBIAN_PYTHON" - "$@" <<'PY'
import io, sys, tarfile
out, record = sys.argv[1], eval(sys.argv[2])
with tarfile.open("env.tar.gz") as src, tarfile.open(out, "w:gz") as dst:
    for m in src.getmembers():
        data = src.extractfile(m).read() if m.isfile() else None
        if m.name == "bin/conda-unpack":
            data = data.replace(b"_prefix_records = [\n", b"_prefix_records = [\n" +
                                repr(record).encode() + b",\n")
            m.size = len(data)
        dst.addfile(m, io.BytesIO(data) if data is not None else None)
    if len(sys.argv) > 3:
        link = tarfile.TarInfo(sys.argv[3])
        link.type, link.linkname = tarfile.SYMTYPE, sys.argv[4]
        dst.addfile(link)
PY
}
tamper missing.tar.gz "('share/demo/names/gone\xa0file.txt', '/opt/anaconda1anaconda2anaconda3', 'text')"
expect_failure "missing.tar.gz: member 'share/demo/names/gone" "$FERRY" unpack missing.tar.gz "$TEST_DIR/m/env"
expect_failure "not in the archive" "$FERRY" unpack missing.tar.gz "$TEST_DIR/m/env"
expect_missing "$TEST_DIR/m/env"
tamper link.tar.gz "('share/demo/link.txt', '/opt/anaconda1anaconda2anaconda3', 'text')" \
  share/demo/link.txt config.txt
expect_failure "link.tar.gz: member 'share/demo/link.txt': named by bin/conda-unpack's relocation records but is a symlink" \
  "$FERRY" unpack link.tar.gz "$TEST_DIR/l/env"
expect_missing "$TEST_DIR/l/env"
# Nothing but the lock file (kept by design) beside DEST.
left=$(ls -A "$TEST_DIR/m" "$TEST_DIR/l" | grep -v -e '^\.env\.ferry-lock$' -e '^$' -e ':$' || true)
[ -z "$left" ] || fail "failed unpacks left: $left"
echo ok
