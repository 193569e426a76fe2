# `ferry hostlist` against the real oracle: Slurm's own `scontrol show hostnames|hostlist`
# (no controller needed, only a config file).
source "$(dirname "$0")/common.sh"
command -v scontrol >/dev/null || skip "scontrol (slurm-client) is not installed"
printf 'ClusterName=oracle\nSlurmctldHost=localhost\nNodeName=localhost\nPartitionName=p Nodes=localhost\n' > slurm.conf
export SLURM_CONF=$TEST_DIR/slurm.conf
oracle() { timeout -s KILL 10 scontrol show "$1" "$2" 2>&1; }

exprs=(
  'nid[00001-00004,00010]' 'rack[1-2]-node[01-02]' 'n[8-10]' 'n[08-10]' 'n[1-010]' 'n[001-1000]'
  'tux[0-5,12,20-25],login1 login2' 'n[1-2][3-4]' 'tux0-5' 'frontier[00001,00003-00004]'
  'a[1-2]b[1-2]c[1-2]' 'x[1-3]y[4-5]z[6-7]' ',,b2,,a1,, a1' 'n[1-]' 'n[+2]' 'n[ 2]' 'a]1'
  'node[1,3],node2' 'n[0-65535]'
  'n[5-3]' 'n[1--3]' 'n[a-b]' 'n[1x3]' 'n[]' 'n[1,,2]' 'a[[1-2]]' 'a[1-2]]' 'n[0-65536]' 'x[1-2]{a}'
)
for e in "${exprs[@]}"; do
  want=$(oracle hostnames "$e")
  rc=0
  got=$("$FERRY" hostlist expand "$e" 2>&1) || rc=$?
  case "$want" in
    *"Invalid hostlist"*|*error*)
      [ "$rc" -ne 0 ] || fail "scontrol rejects '$e' but ferry expanded it to: $got"
      expect_contains "$got" "ferry: error: hostlist '$e'" ;;
    *) expect_eq "$got" "$want" "expand '$e'" ;;
  esac
done

# Where ferry departs on purpose (README): a suffix after the last group is newer Slurm's grammar
# (22.05 refuses it), and an unclosed '[' is an error rather than 22.05's garbage ("n[1-2" -> "n]").
expect_eq "$("$FERRY" hostlist expand 'gpu-[1-3]x' | tr '\n' ' ')" "gpu-1x gpu-2x gpu-3x "
expect_eq "$("$FERRY" hostlist expand 'x3001c0s[1-2]b0n0' | tr '\n' ' ')" "x3001c0s1b0n0 x3001c0s2b0n0 "
expect_contains "$(oracle hostnames 'n[1-2')" "n]"
expect_failure "without a closing" "$FERRY" hostlist expand 'n[1-2'

# compress agrees with `scontrol show hostlist` on random host lists (order and duplicates kept).
RANDOM=42
for round in $(seq 60); do
  hosts=()
  for i in $(seq $((RANDOM % 12 + 1))); do
    case $((RANDOM % 4)) in
      0) hosts+=("nid$(printf '%05d' $((RANDOM % 40)))") ;;
      1) hosts+=("node$((RANDOM % 20))") ;;
      2) hosts+=("x3001c0s$((RANDOM % 9))b0n0") ;;
      3) hosts+=("login$((RANDOM % 3))") ;;
    esac
  done
  list=$(IFS=,; echo "${hosts[*]}")
  expect_eq "$("$FERRY" hostlist compress "${hosts[@]}")" "$(oracle hostlist "$list")" "compress $list"
  expect_eq "$("$FERRY" hostlist expand "$("$FERRY" hostlist compress "${hosts[@]}")")" "$(printf '%s\n' "${hosts[@]}")"
done
echo ok
