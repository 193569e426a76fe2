#!/usr/bin/env bash
# Nothing outside DEST, nothing of the user's removed, when DEST's parent is a directory others
# write to (a group-shared project directory) or the path itself plays tricks: a planted lock
# file, the user's own files named like ferry's temporaries, ".." after a symlink, a last part
# "." or "..", paths that are not UTF-8; and pack's temporary output is hidden and swept.
source "$(dirname "$0")/common.sh"

mkdir -p prefix/bin prefix/lib
printf '#!/bin/sh\necho hello\n' > prefix/bin/hello && chmod +x prefix/bin/hello
echo 'data' > prefix/lib/data.txt
"$FERRY" pack prefix -o env.tar.zst --json >/dev/null
unpacked_ok() { [ -x "$1/bin/hello" ] && [ -f "$1/.ferry/unpacked.json" ] || fail "$1 is not the unpacked env"; }

# ---- A lock file planted as a symlink is not followed: one line, nothing made where it points,
#      the symlink left for its owner to see. A FIFO or directory there is refused the same way.
mkdir -p shared outside
ln -s "$TEST_DIR/outside/planted" shared/.dest.ferry-lock
expect_failure "shared/.dest.ferry-lock: is a symlink" "$FERRY" unpack env.tar.zst shared/dest
expect_missing outside/planted
expect_missing shared/dest
[ -L shared/.dest.ferry-lock ] || fail "the planted symlink was removed"
mkfifo shared/.fifo.ferry-lock
expect_failure "shared/.fifo.ferry-lock: is not a regular file" timeout 20 "$FERRY" unpack env.tar.zst shared/fifo
[ -p shared/.fifo.ferry-lock ] || fail "the planted FIFO was removed"
expect_missing shared/fifo
# A lock file someone else made, that this user cannot write: still a lock (read-only is enough).
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  mkdir -m 1777 sticky
  touch sticky/.env.ferry-lock && chmod 0644 sticky/.env.ferry-lock
  chmod 0755 "$TEST_DIR" && chmod 0644 env.tar.zst
  runuser -u nobody -- "$FERRY" unpack env.tar.zst sticky/env >/dev/null ||
    fail "unpack as another user beside a lock file it cannot write failed"
  unpacked_ok sticky/env
fi

# ---- The sweep of dead runs' temporaries removes what ferry made and nothing else: the user's
#      own file and directory named like them stay, with their contents.
mkdir -p work
echo "my notes" > work/.dest.ferry-tmp-notes.txt
echo "my file" > work/.dest.ferry-tmp-ABC123
mkdir work/.dest.ferry-tmp-mydata && echo precious > work/.dest.ferry-tmp-mydata/results.csv
mkdir marked && touch marked/.ferry-tmp
ln -s ../marked work/.dest.ferry-tmp-linkxx
# What a run killed with -9 leaves (ferry's layout: the marker beside the half-made tree).
mkdir -p work/.dest.ferry-tmp-Dead01/tree/bin && touch work/.dest.ferry-tmp-Dead01/.ferry-tmp
"$FERRY" unpack env.tar.zst work/dest >/dev/null
unpacked_ok work/dest
expect_missing work/.dest.ferry-tmp-Dead01
expect_eq "$(cat work/.dest.ferry-tmp-notes.txt)" "my notes"
expect_eq "$(cat work/.dest.ferry-tmp-ABC123)" "my file"
expect_eq "$(cat work/.dest.ferry-tmp-mydata/results.csv)" precious
[ -L work/.dest.ferry-tmp-linkxx ] && [ -f marked/.ferry-tmp ] || fail "the sweep followed or removed a symlink"
# The marker is ferry's, outside the tree: DEST does not hold it.
expect_missing work/dest/.ferry-tmp
expect_missing work/dest/tree

# ---- ".." after a symlink is resolved as the kernel does: W/link/../dest is the dest beside the
#      link's target, so --force replaces that one, never W/dest.
mkdir -p w/elsewhere/sub w/dest
echo mine > w/dest/precious
ln -s elsewhere/sub w/link
"$FERRY" unpack env.tar.zst w/link/../dest --force --json > dotdot.json
expect_eq "$(cat w/dest/precious)" mine "W/dest replaced through W/link/../dest"
unpacked_ok w/elsewhere/dest
expect_contains "$(cat dotdot.json)" "\"dest\": \"$TEST_DIR/w/elsewhere/dest\""
# ... and found again there: the same path is already unpacked.
expect_contains "$("$FERRY" unpack env.tar.zst w/link/../dest)" "already holds this archive"
# A last part "." or ".." names no entry of its own: refused, the directory it reaches untouched.
mkdir -p s/inner && echo keep > s/inner/file
expect_failure "ends in '..'" "$FERRY" unpack env.tar.zst s/inner/.. --force
expect_failure "ends in '.'" "$FERRY" unpack env.tar.zst s/inner/. --force
expect_eq "$(cat s/inner/file)" keep
expect_eq "$(ls -A s)" inner

# ---- Paths that are not UTF-8 are refused first, with one line, before anything is written.
bad=$(printf 'caf\xe9')
mkdir -p u
expect_failure "is not valid UTF-8" "$FERRY" unpack env.tar.zst "u/$bad"
cp env.tar.zst "u/$bad.tar.zst"
expect_failure "is not valid UTF-8" "$FERRY" unpack "u/$bad.tar.zst" u/dest
expect_eq "$(ls -A u)" "$bad.tar.zst" "something was made for a refused path"
# ... and printed escaped, as every name ferry did not choose.
out=$("$FERRY" unpack env.tar.zst "u/$bad" 2>&1 || true)
expect_contains "$out" 'u/caf\xe9: the path is not valid UTF-8'
cp -a prefix "$bad"
expect_failure "is not valid UTF-8" "$FERRY" pack "$bad" -o u/other.tar.zst
expect_missing u/other.tar.zst
# A name inside the env, and a link target, each named in the one line; --exclude packs the rest.
mkdir -p named/lib && echo data > "named/lib/$bad.txt"
expect_failure 'named/lib/caf\xe9.txt: the name is not valid UTF-8' "$FERRY" pack named -o u/named.tar.zst
expect_missing u/named.tar.zst
"$FERRY" pack named -o u/named.tar.zst --exclude "lib/caf*" >/dev/null
rm -f "named/lib/$bad.txt" u/named.tar.zst && ln -s "$bad" named/lib/link
expect_failure 'named/lib/link: its link target is not valid UTF-8' "$FERRY" pack named -o u/named.tar.zst
expect_missing u/named.tar.zst

# ---- pack writes a hidden sibling of OUT and sweeps what a killed pack left: a pack killed with -9
#      as soon as its output appears leaves a hidden temporary, which the next pack removes.
mkdir -p big/lib out
head -c 200000000 /dev/urandom > big/lib/blob.bin
"$FERRY" pack big -o out/big.tar.zst -j 1 >/dev/null 2>&1 & pid=$!
left=
for _ in $(seq 1000); do
  left=$(cd out && ls -A | grep 'ferry-tmp' || true)
  [ -n "$left" ] && break
  sleep 0.01
done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
[ -n "$left" ] || fail "no temporary output appeared while packing"
expect_missing out/big.tar.zst
case $left in .big.tar.zst.ferry-tmp-*) ;; *) fail "pack's temporary output is not hidden: $left" ;; esac
"$FERRY" pack big -o out/big.tar.zst -j 1 >/dev/null
expect_eq "$(cd out && ls -A | sort | tr '\n' ' ')" ".big.tar.zst.ferry-lock big.tar.zst " "beside OUT after the next pack"
echo "hostile file-system cases: all refused or kept"
