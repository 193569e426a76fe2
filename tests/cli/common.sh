# Sourced by every tests/cli/*.sh scenario: strict mode, a per-test directory on tmpfs, helpers.
set -euo pipefail
trap 'echo "FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

FERRY=${FERRY:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/ferry}
FERRY_SOURCE=${FERRY_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
FERRY_BUILD=${FERRY_BUILD:-$FERRY_SOURCE/build}
PYENV_PREFIX=$(python3 -c 'import sys; print(sys.prefix)' 2>/dev/null || true)
DEBIAN_PYTHON=/usr/bin/python3

# tmpfs when there is room: file creation on the virtual disk is slow and noisy.
base=/dev/shm
[ -d "$base" ] && [ -w "$base" ] || base=${TMPDIR:-/tmp}
TEST_DIR=$(mktemp -d "$base/ferry-test-$(basename "$0" .sh)-XXXXXX")
cleanup() { [ "${KEEP_TEST_DIR:-0}" = 1 ] || rm -rf "$TEST_DIR"; }
trap cleanup EXIT
cd "$TEST_DIR"
# The *.no_openat2 and *.openat2_eperm entries (tests/CMakeLists.txt): $FERRY runs under a seccomp
# filter that answers openat2 with that error, as old kernels and some container runtimes do.
if [ -n "${FERRY_OPENAT2:-}" ]; then
  mkdir "$TEST_DIR/.seccomp"
  printf '#!/bin/sh\nexec %q --openat2=%s -- %q "$@"\n' "$FERRY_SECCOMP" "$FERRY_OPENAT2" "$FERRY" \
    >"$TEST_DIR/.seccomp/ferry"
  chmod +x "$TEST_DIR/.seccomp/ferry"
  FERRY=$TEST_DIR/.seccomp/ferry
fi

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_eq() { [ "$1" = "$2" ] || fail "expected '$2', got '$1'${3:+ ($3)}"; }
expect_contains() { case "$1" in *"$2"*) ;; *) fail "expected to find '$2' in: $1";; esac; }
expect_missing() { [ ! -e "$1" ] && [ ! -L "$1" ] || fail "$1 should not exist"; }
# expect_failure "substring of the error" cmd args... : non-zero exit and a one-line message.
expect_failure() {
  local want=$1; shift
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  [ "$rc" -ne 0 ] || fail "expected failure of: $* (got exit 0, output: $out)"
  expect_contains "$out" "$want"
  [ "$(printf '%s\n' "$out" | grep -c 'ferry: error:')" -eq 1 ] || fail "expected exactly one error line, got: $out"
}

# conda_fixture [full|small]: the realistic conda env, built once per build tree.
source "$FERRY_SOURCE/tests/fixtures/conda_fixture.sh"

# The version CMakeLists.txt's project() line gives (what ferry --version and the file names say).
project_version() {
  local v
  v=$(sed -n 's/^project(ferry VERSION \([0-9.]*\) .*/\1/p' "$FERRY_SOURCE/CMakeLists.txt")
  [ -n "$v" ] || fail "no project(ferry VERSION ...) in $FERRY_SOURCE/CMakeLists.txt"
  echo "$v"
}
need_pyenv() { [ -n "$PYENV_PREFIX" ] && [ -x "$PYENV_PREFIX/bin/python3" ] || skip "no pyenv Python prefix on this machine"; }
