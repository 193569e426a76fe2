# The easyconfig (packaging/easybuild/ferry-VERSION.eb) as a centre's staff would use it: EasyBuild
# from PyPI (pinned, in a venv under the build tree) with Lmod as its modules tool builds ferry
# from make dist's tarball into a fresh prefix and writes its module; then, in a clean login
# shell, `module load ferry` puts a working ferry on PATH (its --version, a pack/unpack round trip
# of a real env, its man pages and completions), and `module unload ferry` takes it all away.
source "$(dirname "$0")/common.sh"
source "$FERRY_SOURCE/tests/fixtures/pypi_env.sh"
need_pyenv
lmod_init=""
for i in /usr/share/lmod/lmod/init/bash /opt/ferry/lmod/usr/share/lmod/lmod/init/bash; do [ -r "$i" ] && lmod_init=$i && break; done
[ -n "$lmod_init" ] || skip "Lmod is not installed (scripts/install-deps.sh)"
top=$(git -C "$FERRY_SOURCE" rev-parse --show-toplevel 2>/dev/null || true)
[ -n "$top" ] && [ "$(realpath "$top")" = "$(realpath "$FERRY_SOURCE")" ] ||
  skip "not a git checkout: make dist (the easyconfig's source) needs one"
version=$(project_version)
easyconfig=$FERRY_SOURCE/packaging/easybuild/ferry-$version.eb
[ -f "$easyconfig" ] || fail "no easyconfig for version $version: $easyconfig"
venv=$(pypi_env easybuild)

mkdir -p sources/f/ferry home
bash "$FERRY_SOURCE/scripts/dist.sh" "$TEST_DIR/sources/f/ferry" >/dev/null 2>&1
prefix=$TEST_DIR/eb
# A clean login shell with Lmod: env -i, then Lmod's init, as /etc/profile.d does.
login() {
  env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$TEST_DIR/home" TERM=dumb \
    bash --noprofile --norc -c "source $lmod_init; $1"
}
# EasyBuild runs as the CI's root: it refuses that unless told. A Release build of ferry takes 7
# minutes on this 2-core machine; the suite has eb build it unoptimised and without debug info
# (5 minutes) unless FERRY_EB_RELEASE=1, through eb's own --try-amend: the easyconfig's file and
# every other step are as a site runs them.
amend=(--try-amend=build_type=Debug "--try-amend=configopts=-DFERRY_TESTS=OFF -DCMAKE_CXX_FLAGS_DEBUG=-O0 -DCMAKE_C_FLAGS_DEBUG=-O0")
[ "${FERRY_EB_RELEASE:-0}" = 1 ] && amend=()
as_root=()
[ "$(id -u)" -ne 0 ] || as_root=(--allow-use-as-root-and-accept-consequences)
# eb finds its Python by EB_PYTHON (the venv's: the clean shell's python3 has no easybuild).
login "$(printf '%q ' env EB_PYTHON="$venv/bin/python" "$venv/bin/eb" "$easyconfig" --prefix="$prefix" \
  --sourcepath="$TEST_DIR/sources" --installpath="$prefix" --buildpath="$TEST_DIR/ebbuild" \
  --modules-tool=Lmod --module-syntax=Lua --parallel="$(nproc)" --detect-loaded-modules=ignore \
  "${amend[@]}" "${as_root[@]}")" >eb.log 2>&1 || { tail -30 eb.log; fail "eb failed (log above)"; }
grep -q "COMPLETED: Installation ended successfully" eb.log || fail "eb did not say it completed: $(tail -5 eb.log)"
module_file=$prefix/modules/all/ferry/$version.lua
[ -f "$module_file" ] || fail "no module file $module_file"

# module load ferry, in a shell that never saw ferry.
ENV=$(conda_fixture small)
out=$(login "module use $prefix/modules/all && module load ferry && command -v ferry && ferry --version")
expect_eq "$(sed -n 1p <<<"$out")" "$prefix/software/ferry/$version/bin/ferry"
expect_eq "$(sed -n 2p <<<"$out")" "ferry $version (git $(git -C "$FERRY_SOURCE" rev-parse --short HEAD))"
login "module use $prefix/modules/all && module load ferry && ferry pack $ENV -o $TEST_DIR/env.tar.zst -q && ferry unpack $TEST_DIR/env.tar.zst $TEST_DIR/out/env >/dev/null"
expect_eq "$(PYTHONDONTWRITEBYTECODE=1 "$TEST_DIR/out/env/bin/python3" -c 'import numpy, sys; print(sys.prefix)')" "$TEST_DIR/out/env"
# Its man pages and bash completion, through the paths the module sets.
expect_contains "$(login "module use $prefix/modules/all && module load ferry && MANWIDTH=100 man ferry-stage 2>&1")" "--via auto|mpi|sbcast"
if [ -r /usr/share/bash-completion/bash_completion ]; then
  expect_contains "$(login "module use $prefix/modules/all && module load ferry && source /usr/share/bash-completion/bash_completion && __load_completion ferry && complete -p ferry")" "-F _ferry ferry"
fi
# ferry-mpi came along, where ferry finds it.
if [ -x "$FERRY_BUILD/ferry-mpi" ]; then
  doctor=$(login "module use $prefix/modules/all && module load ferry && ferry doctor --json")
  expect_contains "$doctor" "\"path\": \"$prefix/software/ferry/$version/libexec/ferry/ferry-mpi\""
  expect_contains "$doctor" "\"found\": true"
fi
# module unload: ferry is gone from PATH and MANPATH again.
expect_eq "$(login "module use $prefix/modules/all && module load ferry && module unload ferry && command -v ferry || echo gone")" "gone"
echo "easybuild: eb built ferry $version from its tarball; module load ferry works in a clean shell"
