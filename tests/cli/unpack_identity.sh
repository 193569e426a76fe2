# "DEST already holds this archive" means the whole tree: an archive that differs only in a
# symlink target or a file mode is not mistaken for the one unpacked there, and --force repairs a
# DEST that carries the marker but was damaged since.
source "$(dirname "$0")/common.sh"

mkdir -p env/bin env/lib
printf '#!/bin/sh\necho tool\n' > env/bin/tool && chmod 755 env/bin/tool
head -c 100000 /dev/urandom > env/lib/libdata.so
ln -s tool env/bin/alias
"$FERRY" pack env -o a.tar.zst > /dev/null
"$FERRY" unpack a.tar.zst dest > /dev/null

# Only a symlink target changes.
ln -sfn ../lib/libdata.so env/bin/alias
"$FERRY" pack env -o b.tar.zst > /dev/null
expect_failure "already exists and holds something else" "$FERRY" unpack b.tar.zst dest
expect_eq "$(readlink dest/bin/alias)" tool "the old tree is kept without --force"
"$FERRY" unpack --force b.tar.zst dest > /dev/null
expect_eq "$(readlink dest/bin/alias)" ../lib/libdata.so "symlink target after --force"

# Only a file mode changes.
chmod 700 env/bin/tool
"$FERRY" pack env -o c.tar.zst > /dev/null
expect_failure "already exists and holds something else" "$FERRY" unpack c.tar.zst dest
"$FERRY" unpack --force c.tar.zst dest > /dev/null
expect_eq "$(stat -c %a dest/bin/tool)" 700 "mode after --force"

# The same archive again is a no-op; --force redoes it, repairing what was damaged.
out=$("$FERRY" unpack --json c.tar.zst dest)
expect_contains "$out" '"already_present": true'
rm dest/lib/libdata.so && echo changed > dest/bin/tool
"$FERRY" unpack --force c.tar.zst dest > /dev/null
cmp -s env/lib/libdata.so dest/lib/libdata.so || fail "--force did not restore the removed file"
cmp -s env/bin/tool dest/bin/tool || fail "--force did not restore the changed file"
echo "identity: symlink targets and modes count, --force repairs"
