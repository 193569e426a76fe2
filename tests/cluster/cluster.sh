#!/usr/bin/env bash
# shellcheck disable=SC2016  # single-quoted sh -c scripts get their arguments as $1...
# A real 3-node Slurm cluster on one machine, for tests: slurmctld in the root network namespace,
# one slurmd per network namespace (ferry-node1..3, joined by the bridge ferrybr0), each with its
# own hostname and its own node-local /mnt, plus a private munged. Needs root. Like a cluster's
# nodes, each has a second network that the login host is not on: ib0, joined by ferrybr1, which
# tests pick with --interface.
#
#   cluster.sh start    (exit 77 + "SKIPPED: why" when this machine cannot host it)
#   cluster.sh stop     (safe when nothing runs)
#   cluster.sh status
#
# Everything lives in $FERRY_CLUSTER_DIR (default /dev/shm/ferry-cluster, tmpfs): configs, munge key
# and socket, logs, spool dirs and the per-node /mnt contents. Nothing under /etc is read or written;
# clients find the cluster through SLURM_CONF, exported by $FERRY_CLUSTER_DIR/env.sh, which exists
# only while the cluster is up. The names of the namespaces, bridge and veths are fixed, so there is
# one such cluster per machine.
set -euo pipefail

# Absolute: the daemons are recognised by this path on their command lines.
STATE=$(realpath -m "${FERRY_CLUSTER_DIR:-/dev/shm/ferry-cluster}")
BRIDGE=ferrybr0
NET=10.77.0          # bridge .1, nodeN .1N
FABRIC=ferrybr1
FABRIC_NET=10.78.0   # nodeN .1N on ib0; the host has no address there
NODES=(node1 node2 node3)
# Not Slurm's default ports, so a real Slurm installation on the same machine is not disturbed.
CTLD_PORT=16817
SLURMD_PORT=16818
CONF=$STATE/etc/slurm.conf
MUNGE_SOCKET=$STATE/munge/munge.socket
MARKER=$STATE/.ferry-cluster   # proves a directory is ours before stop removes it
WAIT_NODES_S=${FERRY_CLUSTER_WAIT:-30}

say() { echo "cluster: $*"; }
die() { echo "cluster: error: $*" >&2; exit 1; }
skip() { echo "SKIPPED: $*"; exit 77; }
netns_of() { echo "ferry-$1"; }
veth_of() { echo "ferry-v${1#node}"; }   # host end; the node end is eth0 inside the namespace
fabric_veth_of() { echo "ferry-i${1#node}"; }  # host end; ib0 inside
alive() { [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# A daemon that wrote PIDFILE and is gone: fail now rather than at the end of a wait.
daemon_died() { [ -f "$1" ] && ! alive "$(cat "$1" 2>/dev/null)"; }

# Polls CMD every 0.2 s until it succeeds (0), SECONDS_ pass (1) or a daemon of PIDFILES dies (2).
# CMD must bound its own run time.
wait_for() {
  local seconds=$1 f; shift
  local pidfiles=()
  while [ "$1" != -- ]; do pidfiles+=("$1"); shift; done
  shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    for f in "${pidfiles[@]}"; do daemon_died "$f" && return 2; done
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

check_prerequisites() {
  [ "$(id -u)" -eq 0 ] || skip "the Slurm mini-cluster needs root (network namespaces, bridge, daemons)"
  local b
  for b in ip unshare munged munge unmunge slurmctld slurmd sinfo srun scontrol timeout; do
    command -v "$b" >/dev/null || skip "$b not found (run scripts/install-deps.sh)"
  done
  # Containers without CAP_NET_ADMIN/CAP_SYS_ADMIN fail here rather than halfway through start.
  local probe="ferry-probe-$$"
  if ! { ip netns add "$probe" && ip netns exec "$probe" unshare --uts --mount true; } >/dev/null 2>&1; then
    ip netns del "$probe" >/dev/null 2>&1 || true
    skip "cannot create network/UTS/mount namespaces here"
  fi
  ip netns del "$probe"
}

# Pids of processes that belong to this harness: the daemons, recognised by a path inside $STATE on
# their command lines (the same pids as their pid files, but found even when a previous run's state
# dir is gone), and anything at all inside the nodes' namespaces (slurmstepd, job tasks).
harness_pids() {
  local n f pid comm
  {
    for n in "${NODES[@]}"; do
      ip netns pids "$(netns_of "$n")" 2>/dev/null || true
    done
    for f in /proc/[0-9]*; do
      pid=${f#/proc/}
      comm=$(cat "$f/comm" 2>/dev/null) || continue
      case $comm in munged|slurmctld|slurmd|slurmstepd) ;; *) continue ;; esac
      if tr '\0' ' ' <"$f/cmdline" 2>/dev/null | grep -qF "$STATE/"; then echo "$pid"; fi
    done
  } | sort -un
}

kill_harness_processes() {
  local pids pid deadline
  pids=$(harness_pids)
  [ -n "$pids" ] || return 0
  say "stopping $(echo "$pids" | wc -w) process(es)"
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  deadline=$((SECONDS + 10))
  for pid in $pids; do
    while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  done
  for pid in $pids; do
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  deadline=$((SECONDS + 5))
  for pid in $pids; do
    while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    alive "$pid" && echo "cluster: warning: pid $pid survived SIGKILL" >&2
  done
  return 0
}

teardown() {
  kill_harness_processes
  local n
  for n in "${NODES[@]}"; do
    ip netns del "$(netns_of "$n")" 2>/dev/null || true
    # Deleting the namespace destroys the veth pair; delete explicitly in case it was left alone.
    ip link del "$(veth_of "$n")" 2>/dev/null || true
    ip link del "$(fabric_veth_of "$n")" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  ip link del "$FABRIC" 2>/dev/null || true
  if [ -e "$STATE" ]; then
    [ -f "$MARKER" ] || die "$STATE exists but was not made by this harness; not removing it"
    # The /mnt bind mounts lived only in the slurmds' mount namespaces, gone with them. Anything
    # still mounted below $STATE in this namespace is unmounted, and rm never crosses filesystems.
    local m
    { findmnt -rn -o TARGET | grep -F "$STATE/" || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$STATE"
  fi
}

write_configs() {
  local host
  host=$(hostname -s)
  cat >"$CONF" <<EOF
# Generated by tests/cluster/cluster.sh; lives and dies with the cluster.
ClusterName=ferry
# This machine's hostname resolves to 127.0.0.1, which the nodes cannot reach: give the bridge address.
SlurmctldHost=$host($NET.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/ctld
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdPidFile=$STATE/run/slurmd-%n.pid
SlurmdLogFile=$STATE/log/slurmd-%n.log
SlurmdSpoolDir=$STATE/spool/%n
# No cgroups: inside 'ip netns exec' the cgroup tree is not mounted.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=5
# Small, so that a sweep of 12 points needs two arrays (Slurm's default is 1001).
MaxArraySize=10
MailProg=/bin/true
InactiveLimit=0
NodeName=node[1-3] NodeAddr=$NET.1[1-3] CPUs=2 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=node[1-3] Default=YES MaxTime=INFINITE State=UP
EOF
  # Slurm reads cgroup.conf next to slurm.conf; autodetection makes slurmd exit inside a netns.
  echo "CgroupPlugin=cgroup/v1" >"$STATE/etc/cgroup.conf"
}

setup_network() {
  ! ip -4 -o addr show | grep -qF " $NET." || die "$NET.0/24 is already in use on this machine"
  ip link add "$BRIDGE" type bridge
  ip addr add "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  ip link add "$FABRIC" type bridge
  ip link set "$FABRIC" up
  local i n ns
  for i in "${!NODES[@]}"; do
    n=${NODES[$i]}
    ns=$(netns_of "$n")
    ip netns add "$ns"
    ip link add "$(veth_of "$n")" type veth peer name eth0 netns "$ns"
    ip link set "$(veth_of "$n")" master "$BRIDGE" up
    ip -n "$ns" addr add "$NET.1$((i + 1))/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip link add "$(fabric_veth_of "$n")" type veth peer name ib0 netns "$ns"
    ip link set "$(fabric_veth_of "$n")" master "$FABRIC" up
    ip -n "$ns" addr add "$FABRIC_NET.1$((i + 1))/24" dev ib0
    ip -n "$ns" link set ib0 up
    ip -n "$ns" link set lo up
  done
}

start_munged() {
  # A private key and socket: the machine's /etc/munge (if any) is left alone. munged refuses to
  # run as root without --force.
  dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
  chmod 600 "$STATE/munge/munge.key"
  munged --force --key-file="$STATE/munge/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$STATE/run/munged.pid" --log-file="$STATE/log/munged.log" \
    --seed-file="$STATE/munge/munged.seed" </dev/null >"$STATE/log/munged.out" 2>&1 \
    || { tail -n 20 "$STATE/log/munged.out" "$STATE/log/munged.log" 2>/dev/null >&2; die "munged did not start"; }
  wait_for 10 "$STATE/run/munged.pid" -- timeout -k 1 5 sh -c 'munge -S "$1" -n | unmunge -S "$1"' sh "$MUNGE_SOCKET" || die "munge does not answer on $MUNGE_SOCKET"
}

start_slurm() {
  # The daemons fork into the background and close stdio (which also matters to ctest, which waits
  # for its pipe to close); the .out files keep what they print before their logs open.
  SLURM_CONF=$CONF slurmctld -f "$CONF" </dev/null >"$STATE/log/slurmctld.out" 2>&1
  wait_for 15 "$STATE/run/slurmctld.pid" -- timeout -k 1 5 scontrol ping || { show_logs; die "slurmctld does not answer"; }
  local n
  for n in "${NODES[@]}"; do
    # Own UTS namespace: `hostname` on nodeN says nodeN. Own mount namespace: nodeN's /mnt is
    # $STATE/local/nodeN, like node-local NVMe, seen by every process slurmd starts there.
    ip netns exec "$(netns_of "$n")" unshare --uts --mount --propagation private \
      sh -c 'hostname "$1" && mount --bind "$2" /mnt && SLURM_CONF="$3" exec slurmd -f "$3" -N "$1"' \
      sh "$n" "$STATE/local/$n" "$CONF" </dev/null >"$STATE/log/slurmd-$n.out" 2>&1 \
      || { show_logs; die "slurmd for $n did not start"; }
  done
}

idle_nodes() { timeout -k 1 5 sinfo -h -N -o '%N %t' 2>/dev/null | awk '$2 == "idle"' | wc -l; }
all_nodes_idle() { [ "$(idle_nodes)" -eq "${#NODES[@]}" ]; }

show_logs() {
  local f
  for f in "$STATE"/log/*; do
    [ -s "$f" ] || continue
    echo "---- $f" >&2
    tail -n 15 "$f" >&2
  done
  echo "---- sinfo" >&2
  timeout -k 1 5 sinfo -N 2>&1 >&2 || true
}

start() {
  check_prerequisites
  local t0
  t0=$(date +%s%N)
  teardown   # whatever a previous run left behind
  mkdir -p "$STATE"
  touch "$MARKER"
  mkdir -p "$STATE"/{etc,munge,run,log,ctld}
  local n
  for n in "${NODES[@]}"; do mkdir -p "$STATE/spool/$n" "$STATE/local/$n"; done
  export SLURM_CONF=$CONF
  write_configs
  setup_network
  start_munged
  start_slurm
  local pidfiles=()
  for n in "${NODES[@]}"; do pidfiles+=("$STATE/run/slurmd-$n.pid"); done
  if ! wait_for "$WAIT_NODES_S" "$STATE/run/slurmctld.pid" "${pidfiles[@]}" -- all_nodes_idle; then
    show_logs
    die "nodes not idle after ${WAIT_NODES_S}s or a daemon died (run '$0 stop' to clean up)"
  fi
  # Written last: its existence means "the cluster is up" to the tests.
  cat >"$STATE/env.sh.tmp" <<EOF
# Source this to use the ferry test cluster (written by tests/cluster/cluster.sh).
export FERRY_CLUSTER_DIR='$STATE'
export SLURM_CONF='$CONF'
# The interface on which the nodes reach this machine: mpiexec.mpich -iface \$FERRY_CLUSTER_IFACE
# (this machine's hostname resolves to 127.0.0.1 and mpiexec would hang without it).
export FERRY_CLUSTER_IFACE=$BRIDGE
export FERRY_CLUSTER_NODES='node[1-3]'
# nodeN's /mnt, seen from here.
export FERRY_CLUSTER_LOCAL='$STATE/local'
EOF
  mv "$STATE/env.sh.tmp" "$STATE/env.sh"
  say "up in $(( ($(date +%s%N) - t0) / 1000000 )) ms: ${NODES[*]} idle; source $STATE/env.sh"
}

status() {
  if [ ! -f "$STATE/env.sh" ]; then
    echo "cluster: not running ($STATE/env.sh missing)"
    harness_pids | grep -q . && echo "cluster: but harness processes exist: $(harness_pids | tr '\n' ' ')"
    return 3
  fi
  export SLURM_CONF=$CONF
  timeout -k 1 5 sinfo -N || return 1
  [ "$(idle_nodes)" -gt 0 ] || return 1
}

# Slurm variables from the caller (a shell inside a real allocation) would redirect our clients.
for v in $(compgen -v SLURM_ || true); do unset "$v"; done

case ${1:-} in
  start) start ;;
  stop)
    if [ "$(id -u)" -ne 0 ]; then
      [ -e "$STATE" ] && die "stop needs root"
      exit 0   # nothing a non-root start could have made
    fi
    teardown
    say "stopped"
    ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
