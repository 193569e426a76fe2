#!/usr/bin/env bash
# Modes as a user would check them: unpack restores the archive's modes whatever the umask and
# under a directory with a default ACL (where the umask does not apply to new files); job files
# follow the user's umask.
source "$(dirname "$0")/common.sh"

# A prefix with the modes that matter: executables, group-writable, private, read-only.
src=$TEST_DIR/src
mkdir -p "$src/bin" "$src/share"
printf '#!/bin/sh\necho hi\n' >"$src/bin/tool"
echo shared >"$src/share/group-writable"
echo private >"$src/share/private"
echo frozen >"$src/share/read-only"
chmod 0755 "$src/bin/tool"; chmod 0775 "$src/share/group-writable"
chmod 0600 "$src/share/private"; chmod 0444 "$src/share/read-only"
"$FERRY" pack "$src" -o modes.tar.zst >/dev/null
modes() { (cd "$1" && find bin share -type f -printf '%p %m\n' | sort); }
want=$(modes "$src")

(umask 077 && "$FERRY" unpack modes.tar.zst "$TEST_DIR/tight" >/dev/null)
expect_eq "$(modes "$TEST_DIR/tight")" "$want" "under umask 077"
(umask 002 && "$FERRY" unpack modes.tar.zst "$TEST_DIR/loose" >/dev/null)
expect_eq "$(modes "$TEST_DIR/loose")" "$want" "under umask 002"

if command -v setfacl >/dev/null && mkdir "$TEST_DIR/acl" && setfacl -d -m u::rwx,g::r-x,o::--- "$TEST_DIR/acl" 2>/dev/null; then
  "$FERRY" unpack modes.tar.zst "$TEST_DIR/acl/env" >/dev/null
  expect_eq "$(modes "$TEST_DIR/acl/env")" "$want" "under a default ACL that gives others nothing"
else
  echo "SKIPPED part: no setfacl, or this file system has no ACLs"
fi

# Job files: readable as the umask allows (a private umask keeps the hostfile private).
(umask 077 && HOME=$TEST_DIR/home "$FERRY" job save >/dev/null)
for f in "$TEST_DIR"/home/.cache/ferry/jobs/*/{env.sh,hostfile}; do
  expect_eq "$(stat -c %a "$f")" 600 "$f under umask 077"
done
echo ok
