# shellcheck shell=bash
# Sourced by the tests that run a service's printed tunnel as printed (after common.sh): a real
# sshd on this machine stands for the login host (the job's submit host) and another in node1's
# network namespace for the head node, whose loopback is where the dashboards listen. Keys and
# configs are the test's own: nothing in /etc/ssh or ~/.ssh is read or changed.
#   start_sshds          both sshds, and $TEST_DIR/ssh_config (the user's ssh settings)
#   open_tunnel LINE     runs the printed `ssh -N ...` line in the background; sets $tunnel
#   stop_sshds           the tunnel and both sshds (safe to call twice)
#   expect_screenshots DIR NAME...   DIR/NAME.png are PNGs with something drawn; says where
SSHD=/usr/sbin/sshd
CHROMIUM=$(command -v chromium || true)
[ -x "$SSHD" ] && [ -n "$CHROMIUM" ] || skip "needs openssh-server and chromium (scripts/install-deps.sh)"

start_sshds() {
  # A port free here and in node1's namespace (a stale sshd of a killed run may hold one).
  SSH_PORT=2622
  while ss -Hltn "sport = :$SSH_PORT" | grep -q . || ip netns exec ferry-node1 ss -Hltn "sport = :$SSH_PORT" | grep -q .; do
    SSH_PORT=$((SSH_PORT + 1))
  done
  ssh-keygen -q -t ed25519 -N '' -f "$TEST_DIR/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$TEST_DIR/user_key"
  cp "$TEST_DIR/user_key.pub" "$TEST_DIR/authorized_keys"
  mkdir -p /run/sshd
  local name listen
  for name in login head; do
    listen=0.0.0.0
    [ "$name" = head ] && listen=$(scontrol show node node1 -o | grep -o 'NodeAddr=[^ ]*' | cut -d= -f2)
    cat >"$TEST_DIR/sshd_$name.conf" <<CONF
ListenAddress $listen:$SSH_PORT
HostKey $TEST_DIR/host_key
AuthorizedKeysFile $TEST_DIR/authorized_keys
PidFile $TEST_DIR/sshd_$name.pid
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
AllowTcpForwarding yes
CONF
  done
  "$SSHD" -f "$TEST_DIR/sshd_login.conf" -E "$TEST_DIR/sshd_login.log"
  ip netns exec "ferry-node1" "$SSHD" -f "$TEST_DIR/sshd_head.conf" -E "$TEST_DIR/sshd_head.log"
  # The user's ssh settings (their ~/.ssh/config): the key, the port, no host-key prompts.
  cat >"$TEST_DIR/ssh_config" <<CONF
Host *
  Port $SSH_PORT
  IdentityFile $TEST_DIR/user_key
  IdentitiesOnly yes
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  LogLevel ERROR
  ExitOnForwardFailure yes
CONF
}

open_tunnel() {
  expect_contains "$1" "ssh -N -L "
  expect_contains "$1" " -J "  # through the submit host, to the head node
  local words
  read -r -a words <<<"$1"
  ssh -F "$TEST_DIR/ssh_config" "${words[@]:1}" 2>"$TEST_DIR/ssh.log" &
  tunnel=$!
}

stop_sshds() {
  [ -n "${tunnel:-}" ] && kill "$tunnel" 2>/dev/null
  tunnel=
  local f
  for f in "$TEST_DIR"/sshd_*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  return 0
}

expect_screenshots() {
  local dir=$1 png list=()
  shift
  for png in "$@"; do
    list+=("$dir/$png.png")
    [ "$(head -c 8 "$dir/$png.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "$png.png is not a PNG"
    [ "$(stat -c %s "$dir/$png.png")" -gt 20000 ] || fail "$png.png is nearly empty (nothing rendered)"
  done
  echo "screenshots: ${list[*]}"
}
