# ferry image build and ferry run on the 3-node cluster, with Debian's Charliecloud. The whole
# product: the realistic conda fixture (numpy and scipy, real ELF files, an activate.d script) is
# packed by ferry pack, built into an image on a minimal Debian root filesystem (mmdebstrap), and
# run under srun on all 3 nodes: each prints the image's env prefix and imports numpy and scipy;
# the activate.d script's variable is set inside, the host's PYTHONPATH and CONDA_PREFIX are not;
# the job's working directory is bound and writable, and so is $TMPDIR; the exit status passes
# through. The same as
# one SquashFS file, run through ch-run's SquashFUSE on every node; a sweep whose points run in
# the image; the SquashFS image staged to every node's own storage (sbcast and MPI) and run from
# there; ferry launch --image of 6 ranks on 3 nodes, ranks of a node joined in one container; an
# image built on a SquashFS base. Then bad input: no ch-run, a
# base that is not a root filesystem, an image without /ch/environment, a bind whose source is
# missing, a bind target missing in the read-only SquashFS image: one line each, nothing
# half-built.
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"
# shellcheck source=tests/fixtures/rootfs.sh
. "$FERRY_SOURCE/tests/fixtures/rootfs.sh"
command -v ch-run >/dev/null || skip "no ch-run (Debian: charliecloud-runtime; scripts/install-deps.sh)"
BASE=$(base_rootfs)
ENV=$(conda_fixture full)

"$FERRY" pack "$ENV" -o "$TEST_DIR/env.tar.zst" >/dev/null
IMAGE=$TEST_DIR/image
out=$("$FERRY" image build "$TEST_DIR/env.tar.zst" --base "$BASE" -o "$IMAGE" --json)
expect_contains "$out" '"at": "/opt/env"'
expect_contains "$(cat "$IMAGE/ch/environment")" "PATH=/opt/env/bin:"
expect_contains "$(cat "$IMAGE/ch/environment")" "CONDA_PREFIX=/opt/env"
# The activate.d script's export, found by running it in the image (the seed's config.env case).
expect_contains "$(cat "$IMAGE/ch/environment")" "FERRY_FIXTURE_ACTIVATED=1"
[ ! -e "$IMAGE/.ferry-env.tar.zst" ] || fail "the packed env was left in the image"

cat >"$TEST_DIR/check.py" <<'PYEOF'
import os, socket, sys
import numpy, scipy.linalg
a = numpy.arange(9.0).reshape(3, 3) + numpy.eye(3)
det = round(float(scipy.linalg.det(a)), 6)
with open(f"from-{socket.gethostname()}", "w") as f:  # the job's directory, bound
    f.write(sys.prefix)
print(socket.gethostname(), sys.prefix, numpy.__version__, det,
      os.environ.get("FERRY_FIXTURE_ACTIVATED"), os.environ.get("PYTHONPATH"),
      os.environ.get("CONDA_PREFIX"), open("/etc/debian_version").read().strip()[:2])
PYEOF
want_det=$(/usr/bin/python3 -c 'import numpy; print(round(float(numpy.linalg.det(numpy.arange(9.0).reshape(3, 3) + numpy.eye(3))), 6))')
out=$(PYTHONPATH=/host/lib CONDA_PREFIX=/host/conda on_cluster srun -N3 --ntasks-per-node=1 \
  "$FERRY" run "$IMAGE" -- python "$TEST_DIR/check.py" | sort)
for n in 1 2 3; do
  expect_contains "$out" "node$n /opt/env 1.24.2 $want_det 1 None /opt/env 12"
  expect_eq "$(cat "$TEST_DIR/from-node$n")" /opt/env "node$n wrote into the bound job directory"
done
rc=0
on_cluster srun -N1 "$FERRY" run "$IMAGE" -- sh -c 'exit 7' || rc=$?
expect_eq "$rc" 7 "the command's exit status"
# The same image as one SquashFS file (read-only: nothing is bound into it but what ch-run binds),
# run through ch-run's SquashFUSE on every node.
"$FERRY" image build "$TEST_DIR/env.tar.zst" --base "$BASE" -o "$TEST_DIR/image.sqfs" >/dev/null
[ "$(head -c 4 "$TEST_DIR/image.sqfs")" = hsqs ] || fail "image.sqfs is not SquashFS"
fuse=1
[ -c /dev/fuse ] || { fuse=0; echo "the SquashFS runs are skipped: no /dev/fuse here for SquashFUSE"; }
if [ "$fuse" = 1 ]; then
  out=$(PYTHONPATH=/host/lib on_cluster srun -N3 --ntasks-per-node=1 "$FERRY" run "$TEST_DIR/image.sqfs" -- \
    python -c 'import os, socket, sys, numpy; print(socket.gethostname(), sys.prefix, numpy.__version__, os.environ.get("FERRY_FIXTURE_ACTIVATED"), os.environ.get("PYTHONPATH"), os.getcwd())' | sort)
  for n in 1 2 3; do expect_contains "$out" "node$n /opt/env 1.24.2 1 None /"; done
fi
# ferry launch --image: 6 ranks on 3 nodes, each in the image with its own rank variables; the two
# ranks of a node in one container (ch-run --join: one mount namespace, not the host's), each
# node's its own.
cat >"$TEST_DIR/ranks.py" <<'PYEOF'
import os, socket, sys
import numpy
v = [os.environ.get(k) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")]
print("rank", socket.gethostname(), *v, sys.prefix, numpy.__version__, os.readlink("/proc/self/ns/mnt"))
PYEOF
out=$(on_cluster salloc -N3 -n6 "$FERRY" launch --ppn 2 --image "$IMAGE" -- python "$TEST_DIR/ranks.py" 2>&1)
ranks=$(grep '^rank ' <<<"$out" | sort -k3,3n)
expect_eq "$(cut -d' ' -f2-8 <<<"$ranks")" "node1 0 0 6 2 /opt/env 1.24.2
node1 1 1 6 2 /opt/env 1.24.2
node2 2 0 6 2 /opt/env 1.24.2
node2 3 1 6 2 /opt/env 1.24.2
node3 4 0 6 2 /opt/env 1.24.2
node3 5 1 6 2 /opt/env 1.24.2" "every rank in the image with its variables: $out"
expect_eq "$(cut -d' ' -f2,9 <<<"$ranks" | sort -u | wc -l)" 3 "one container per node: $ranks"
expect_eq "$(cut -d' ' -f9 <<<"$ranks" | sort -u | wc -l)" 3 "each node's container its own: $ranks"
host_ns=$(on_cluster srun -N1 -w node1 readlink /proc/self/ns/mnt)
grep -qF "$host_ns" <<<"$ranks" && fail "a rank ran in the host's mount namespace: $ranks"
one_line_error 2 "nosuch: not an image" on_cluster salloc -N3 "$FERRY" launch --image "$TEST_DIR/nosuch" -- true

# ferry stage of the SquashFS image: one file copied whole to every node's own /mnt (sbcast, then
# the MPI path), the same bytes everywhere, nothing beside it; run from there on every node. A
# rerun finds it present; one node without it gets it again; a node whose disk is too small fails
# the stage, is named, and no node keeps a partial or temporary copy.
D=/mnt/$TEST_NAME
stage_image() { CLUSTER_TIMEOUT=120 on_cluster salloc -N3 "$FERRY" stage "$TEST_DIR/image.sqfs" "$@" 2>&1; }
beside() { each_node "ls -A $1 2>/dev/null | grep -v '\.ferry-lock\$' | tr '\n' ' ' || true"; }
# The way and every node's status, from a --json report among salloc's lines.
statuses() { python3 -c 'import json,sys; t=sys.argv[1]; j=json.JSONDecoder().raw_decode(t[t.index("{"):])[0]; print(j["kind"], j["via"], " ".join(n["status"] for n in j["nodes"]))' "$1"; }
want_sum=$(sha1sum <"$TEST_DIR/image.sqfs" | cut -c1-40)
out=$(stage_image --to "$D/sb/" --via sbcast)
expect_contains "$out" "staged $D/sb/image.sqfs on 3 nodes"
expect_contains "$out" "ferry run $D/sb/image.sqfs"
expect_eq "$(each_node "sha1sum <$D/sb/image.sqfs | cut -c1-40" | cut -d' ' -f2 | sort -u)" "$want_sum" "the same image on every node"
expect_eq "$(beside "$D/sb")" "node1 image.sqfs
node2 image.sqfs
node3 image.sqfs" "only the image in $D/sb"
if [ "$fuse" = 1 ]; then
  out=$(on_cluster srun -N3 --ntasks-per-node=1 "$FERRY" run "$D/sb/image.sqfs" -- \
    python -c 'import socket, sys, numpy; print(socket.gethostname(), sys.prefix, numpy.__version__)' | sort)
  for n in 1 2 3; do expect_contains "$out" "node$n /opt/env 1.24.2"; done
fi
out=$(stage_image --to "$D/sb/image.sqfs" --via sbcast --json)
expect_eq "$(statuses "$out")" "image sbcast present present present" "a rerun finds the image on every node"
if [ -x "$FERRY_BUILD/ferry-mpi" ]; then
  export HYDRA_IFACE=$FERRY_CLUSTER_IFACE
  out=$(stage_image --to "$D/mpi/torch.sqfs" --via mpi)
  expect_contains "$out" "staged $D/mpi/torch.sqfs on 3 nodes in"
  expect_contains "$out" "via mpi"
  expect_eq "$(each_node "sha1sum <$D/mpi/torch.sqfs | cut -c1-40" | cut -d' ' -f2 | sort -u)" "$want_sum" "the same image on every node (MPI)"
  on_cluster srun -N1 -w node2 rm "$D/mpi/torch.sqfs"
  out=$(stage_image --to "$D/mpi/torch.sqfs" --json)  # auto: the MPI path
  expect_eq "$(statuses "$out")" "image mpi present unpacked present" "only node2 gets it again"
  expect_eq "$(each_node "sha1sum <$D/mpi/torch.sqfs | cut -c1-40" | cut -d' ' -f2 | sort -u)" "$want_sum" "node2's new copy"
  expect_eq "$(beside "$D/mpi")" "node1 torch.sqfs
node2 torch.sqfs
node3 torch.sqfs" "only the image in $D/mpi"
fi
# A directory where node2 would put the image: refused before anything moves, on every node.
on_cluster srun -N1 -w node2 mkdir -p "$D/dirt/image.sqfs"
for via in sbcast $([ -x "$FERRY_BUILD/ferry-mpi" ] && echo mpi); do
  rc=0; out=$(stage_image --to "$D/dirt/" --via "$via") || rc=$?
  [ "$rc" -ne 0 ] || fail "a directory at the target on node2 must fail the stage ($via): $out"
  expect_contains "$out" "ferry: error: node2: $D/dirt/image.sqfs: is there and is not a file"
  expect_eq "$(each_node "[ -f $D/dirt/image.sqfs ] && echo staged || echo none")" "node1 none
node2 none
node3 none" "no node kept the image ($via)"
done
small=$(( $(stat -c %s "$TEST_DIR/image.sqfs") / 2 / 1048576 ))m
on_cluster srun -N1 -w node2 sh -c "mkdir -p $D/full && mount -t tmpfs -o size=$small tmpfs $D/full"
for via in sbcast $([ -x "$FERRY_BUILD/ferry-mpi" ] && echo mpi); do
  rc=0; out=$(stage_image --to "$D/full/image.sqfs" --via "$via") || rc=$?
  [ "$rc" -ne 0 ] || fail "a disk too small on node2 must fail the stage ($via): $out"
  expect_contains "$out" "ferry: error: node2: "
  expect_eq "$(echo "$out" | grep -c 'ferry: error:')" 1 "only node2 failed ($via): $out"
  expect_eq "$(beside "$D/full")" "node1
node2
node3" "no copy of the image left on any node ($via)"
done
# Lazily: after a failed sbcast, node2's slurmd keeps its (removed) copy open for a while.
on_cluster srun -N1 -w node2 umount -l "$D/full"

# A SquashFS base (what centres keep on parallel file systems): extracted, then the same image.
mksquashfs "$BASE" "$TEST_DIR/base.sqfs" -quiet -no-progress -comp zstd >/dev/null
"$FERRY" image build "$TEST_DIR/env.tar.zst" --base "$TEST_DIR/base.sqfs" -o "$TEST_DIR/from-sqfs" >/dev/null
expect_contains "$(cat "$TEST_DIR/from-sqfs/ch/environment")" "FERRY_FIXTURE_ACTIVATED=1"
expect_eq "$("$FERRY" run "$TEST_DIR/from-sqfs" -- python -c 'import sys, numpy; print(sys.prefix, numpy.__version__)')" \
  "/opt/env 1.24.2" "an image built on a SquashFS base"
# --bind and --cd.
mkdir "$TEST_DIR/data" && echo hello >"$TEST_DIR/data/in.txt"
expect_eq "$("$FERRY" run "$IMAGE" --bind "$TEST_DIR/data:/data" --cd /data -- cat in.txt)" hello

# The job's $TMPDIR: the command inherits TMPDIR, and it names a directory inside too (bound at
# its own path in a directory image; /tmp, where ch-run binds it, in a SquashFS one). A file made
# there lands in the host's $TMPDIR.
mkdir "$TEST_DIR/jobtmp"
tmpfile='import os, tempfile; f = tempfile.NamedTemporaryFile(dir=os.environ["TMPDIR"], prefix="in-image-", delete=False); print(os.path.dirname(f.name))'
expect_eq "$(TMPDIR=$TEST_DIR/jobtmp "$FERRY" run "$IMAGE" -- python -c "$tmpfile")" "$TEST_DIR/jobtmp" "TMPDIR inside a directory image"
if [ "$fuse" = 1 ]; then
  expect_eq "$(TMPDIR=$TEST_DIR/jobtmp "$FERRY" run "$TEST_DIR/image.sqfs" -- python -c "$tmpfile")" /tmp "TMPDIR inside a SquashFS image"
fi
expect_eq "$(find "$TEST_DIR/jobtmp" -name 'in-image-*' | wc -l)" $((1 + fuse)) "the files made in TMPDIR are in the host's"
# Under /tmp (LSF's and Torque's default) it is inside ch-run's own bind of it at /tmp.
jobtmp=$(mktemp -d /tmp/ferry-image-test-jobtmp-XXXXXX)
expect_eq "$(TMPDIR=$jobtmp "$FERRY" run "$IMAGE" -- python -c "$tmpfile")" /tmp "TMPDIR under /tmp"
expect_eq "$(find "$jobtmp" -name 'in-image-*' | wc -l)" 1 "the file made in TMPDIR (under /tmp) is in the host's"
rm -rf "$jobtmp"

# A sweep whose points run in the image (ferry sweep --image): each in its own directory, bound.
S=$TEST_DIR/sweep
"$FERRY" sweep submit "$S" x=1,2 --image "$IMAGE" -- \
  python -c 'import sys, numpy; open("out", "w").write(sys.prefix + " " + sys.argv[1])' '{x}' >/dev/null
for _ in $(seq 300); do [ -f "$S/runs/0/result.json" ] && [ -f "$S/runs/1/result.json" ] && break; sleep 0.2; done
expect_contains "$("$FERRY" sweep status "$S")" "2 points: 2 done, 0 failed"
expect_eq "$(cat "$S/runs/1/out")" "/opt/env 2" "the point ran in the image"

# Bad input: one line each, a non-zero exit, nothing made.
one_line_failure "ch-run: not found: ferry run needs Charliecloud" env PATH=/nonexistent "$FERRY" run "$IMAGE" -- true
mkdir "$TEST_DIR/not-a-root"
one_line_failure "not a root filesystem (no etc/ and bin/sh)" "$FERRY" image build "$ENV" --base "$TEST_DIR/not-a-root" -o "$TEST_DIR/bad"
[ ! -e "$TEST_DIR/bad" ] || fail "a refused build left $TEST_DIR/bad"
ls -a "$TEST_DIR" | grep -q 'bad\.' && fail "a refused build left a temporary beside $TEST_DIR/bad"
mksquashfs "$TEST_DIR/not-a-root" "$TEST_DIR/not-a-root.sqfs" -quiet -no-progress >/dev/null
one_line_failure "not-a-root.sqfs: not a root filesystem (no etc/ and bin/sh)" "$FERRY" image build "$ENV" --base "$TEST_DIR/not-a-root.sqfs" -o "$TEST_DIR/bad"
[ ! -e "$TEST_DIR/bad" ] || fail "a refused build from a SquashFS base left $TEST_DIR/bad"
ls -a "$TEST_DIR" | grep -q 'bad\.ferry-tmp' && fail "a refused build from a SquashFS base left a temporary"
one_line_failure "--env and --image" "$FERRY" sweep submit "$TEST_DIR/bad-sweep" x=1 --env "$ENV" --image "$IMAGE" -- true
one_line_failure "already exists" "$FERRY" image build "$ENV" --base "$BASE" -o "$IMAGE"
one_line_failure "no /ch/environment" "$FERRY" run "$BASE" -- true
one_line_failure "does not exist here" "$FERRY" run "$IMAGE" --bind /nonexistent/dir -- true
[ "$fuse" = 0 ] || one_line_failure "Read-only file system" "$FERRY" run "$TEST_DIR/image.sqfs" --bind "$TEST_DIR:/no-such-dir" -- true
echo "image: all good"
