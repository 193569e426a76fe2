# The machine's own pyenv Python, an install prefix (no conda-meta): every file holding the prefix
# is found and relocated; unpacked at a shorter path so its ELF RUNPATH can be rewritten.
source "$(dirname "$0")/common.sh"
need_pyenv
export PYTHONDONTWRITEBYTECODE=1
"$FERRY" pack "$PYENV_PREFIX" -o py.tar.zst --json > pack.json
expect_contains "$(cat pack.json)" '"kind": "prefix"'
# A path shorter than the original, so the RUNPATH strings have room.
DEST="/dev/shm/fp$$"
[ -w /dev/shm ] || DEST="/tmp/fp$$"
trap 'rm -rf "$DEST" "$(dirname "$DEST")/.$(basename "$DEST").ferry-lock"; cleanup' EXIT
[ ${#DEST} -lt ${#PYENV_PREFIX} ] || skip "no writable path shorter than $PYENV_PREFIX"
"$FERRY" unpack py.tar.zst "$DEST" >/dev/null
out=$("$DEST/bin/python3" -c 'import sqlite3, ssl, sys, sysconfig; print(sys.prefix); print(sysconfig.get_config_var("prefix"))')
expect_eq "$out" "$DEST
$DEST"
expect_contains "$("$DEST/bin/pip" --version)" "$DEST/lib/python3.11/site-packages/pip"
expect_contains "$(ldd "$DEST/bin/python3.11" | grep libpython)" "$DEST/lib/libpython3.11"
expect_eq "$(head -1 "$DEST/bin/pip")" "#!$DEST/bin/python3.11"
# Python's version string survives: linkers share it with the tail of the built-in prefix string.
expect_eq "$("$DEST/bin/python3" -c 'import platform; print(platform.python_version())')" "$("$PYENV_PREFIX/bin/python3" -c 'import platform; print(platform.python_version())')"
left=$(grep -rIl --exclude-dir=.ferry -e "$PYENV_PREFIX" "$DEST" | head -5 || true)
[ -z "$left" ] || fail "text files still name the old prefix: $left"
# Same tree: every path of the original exists in the copy.
diff <(cd "$PYENV_PREFIX" && find . | sort) <(cd "$DEST" && find . ! -path './.ferry*' | sort)
echo ok
