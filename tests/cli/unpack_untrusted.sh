#!/usr/bin/env bash
# Hostile archives: every escape attempt fails with one precise error line, leaves nothing at DEST
# or beside it, and touches nothing outside; setuid/setgid bits are stripped. Each case runs both
# through libarchive (plain .tar) and through ferry's own tar parser (a seekable-zstd frame stream).
source "$(dirname "$0")/common.sh"
command -v zstd >/dev/null || skip "no zstd CLI"

outside=$TEST_DIR/outside   # the canary: absolute members and symlinks aim here
work=$TEST_DIR/work         # DEST's parent
dest=$work/dest
mkdir -p "$outside/linkdir" "$work"
echo "canary" >"$outside/victim"
"$DEBIAN_PYTHON" "$FERRY_SOURCE/tests/fixtures/make_hostile_archives.py" archives "$outside"

# Everything but the archives and the lock file ferry leaves beside DEST (expected); directory
# sizes are left out since the lock file's entry changes that of work/.
snapshot() {
  find "$TEST_DIR" -path "$TEST_DIR/archives" -prune -o ! -name .dest.ferry-lock \
    \( -type d -printf '%p %y %m\n' -o -printf '%p %y %m %s %n %l\n' \) | sort
  sha256sum /etc/passwd
  stat -c '%a %u %g %h %s' /etc/passwd
}
before=$(snapshot)

# hostile CASE MEMBER REASON [REASON_VIA_LIBARCHIVE]
hostile() {
  local case=$1 member=$2 reason=$3 foreign_reason=${4:-$3}
  local archive want err rc
  for archive in "$TEST_DIR/archives/$case.ferry.tar.zst" "$TEST_DIR/archives/$case.tar"; do
    want=$reason
    [[ $archive == *.ferry.tar.zst ]] || want=$foreign_reason
    rc=0
    "$FERRY" unpack "$archive" "$dest" >out.txt 2>err.txt || rc=$?
    err=$(cat err.txt)
    expect_eq "$rc" 1 "exit status for $archive"
    expect_eq "$err" "ferry: error: $archive: member '$member': $want" "error for $archive"
    expect_eq "$(wc -l <err.txt)" 1 "stderr lines for $archive"
    expect_eq "$(cat out.txt)" "" "stdout for $archive"
    rm out.txt err.txt
    expect_missing "$dest"
    expect_eq "$(find "$work" -name '.dest.ferry-tmp-*')" "" "temp dir left by $archive"
    expect_eq "$(snapshot)" "$before" "something changed outside DEST after $archive"
  done
}

hostile absolute "$outside/abs-evil" "absolute paths are not allowed"
hostile dotdot "../escape" "'..' in paths is not allowed"
hostile dotdot_nested "a/../../escape" "'..' in paths is not allowed"
hostile symlink_dir "link/pwned" "path goes through the symlink member 'link'"
hostile symlink_parent "up/escape" "path goes through the symlink member 'up'"
# A link target that is absolute or climbs out is rejected like a member name; the message names
# the target, not the link member.
hostile hardlink_etc_passwd "/etc/passwd" "absolute paths are not allowed"
hostile hardlink_outside_overwrite "$outside/victim" "absolute paths are not allowed"
hostile hardlink_dotdot "../outside" "'..' in paths is not allowed"
hostile hardlink_later "early" "hardlink to 'later', which is not an earlier regular file"
hostile hardlink_to_symlink "h" "hardlink to 's', which is not an earlier regular file"
hostile symlink_replaces_dir "a" "a member replaces a directory of the same name"
hostile chardev cdev "device files are not allowed" "device files and sockets are not allowed"
hostile blockdev bdev "device files are not allowed" "device files and sockets are not allowed"
hostile fifo fifo "FIFOs are not allowed"
expect_eq "$(cat "$outside/victim")" "canary"

# setuid/setgid: extracted, with the bits stripped from files and directories.
for archive in archives/setuid.ferry.tar.zst archives/setuid.tar; do
  format=$("$FERRY" unpack "$archive" "$dest" --json | "$DEBIAN_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["format"])')
  case $archive in
    *.ferry.tar.zst) expect_eq "$format" "ferry tar.zst" "the frame wrapper must reach ferry's own parser" ;;
    *) [[ $format != ferry* ]] || fail "$archive should be read through libarchive, got format '$format'" ;;
  esac
  expect_eq "$(stat -c %a "$dest/bin/suid")" 755 "mode of bin/suid from $archive"
  expect_eq "$(stat -c %a "$dest/bin")" 755 "mode of bin/ from $archive"
  expect_eq "$(cat "$dest/ok/readme.txt")" "a harmless first member"
  rm -rf "$dest"
done
expect_eq "$(snapshot)" "$before"
