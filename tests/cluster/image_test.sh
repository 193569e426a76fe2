# ferry image build and ferry run on the 3-node cluster, with Debian's Charliecloud. The whole
# product: the realistic conda fixture (numpy and scipy, real ELF files, an activate.d script) is
# packed by ferry pack, built into an image on a minimal Debian root filesystem (mmdebstrap), and
# run under srun on all 3 nodes: each prints the image's env prefix and imports numpy and scipy;
# the activate.d script's variable is set inside, the host's PYTHONPATH and CONDA_PREFIX are not;
# the job's working directory is bound and writable; the exit status passes through. The same as
# one SquashFS file, run through ch-run's SquashFUSE on every node; a sweep whose points run in
# the image. Then bad input: no ch-run, a
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
# --bind and --cd.
mkdir "$TEST_DIR/data" && echo hello >"$TEST_DIR/data/in.txt"
expect_eq "$("$FERRY" run "$IMAGE" --bind "$TEST_DIR/data:/data" --cd /data -- cat in.txt)" hello

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
one_line_failure "--env and --image" "$FERRY" sweep submit "$TEST_DIR/bad-sweep" x=1 --env "$ENV" --image "$IMAGE" -- true
one_line_failure "already exists" "$FERRY" image build "$ENV" --base "$BASE" -o "$IMAGE"
one_line_failure "no /ch/environment" "$FERRY" run "$BASE" -- true
one_line_failure "does not exist here" "$FERRY" run "$IMAGE" --bind /nonexistent/dir -- true
[ "$fuse" = 0 ] || one_line_failure "Read-only file system" "$FERRY" run "$TEST_DIR/image.sqfs" --bind "$TEST_DIR:/no-such-dir" -- true
echo "image: all good"
