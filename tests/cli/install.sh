# make install's tree, used as a user would use it: PREFIX/bin/ferry runs and finds
# PREFIX/libexec/ferry/ferry-mpi (nothing beside it), packs and unpacks a real env, its man pages
# are found through MANPATH, and bash-completion, zsh's compinit and fish load its completions
# from PREFIX/share with no line of setup. make dist's tarball holds the committed tree and its
# revision.
source "$(dirname "$0")/common.sh"
need_pyenv
prefix=$TEST_DIR/prefix
cmake --install "$FERRY_BUILD" --prefix "$prefix" >install.log
ferry=$prefix/bin/ferry
[ -x "$ferry" ] || fail "no $ferry after cmake --install"
expect_eq "$("$ferry" --version)" "$("$FERRY" --version)"
expect_missing "$prefix/bin/ferry-mpi"
expect_missing "$prefix/bin/ferry-test-seccomp"
expect_missing "$prefix/bin/ferry-mpi-openmpi"

# ferry-mpi where ferry looks for it, and found there by the installed ferry.
if [ -x "$FERRY_BUILD/ferry-mpi" ]; then
  [ -x "$prefix/libexec/ferry/ferry-mpi" ] || fail "no libexec/ferry/ferry-mpi"
  "$ferry" doctor --json >d.json
  expect_eq "$(python3 -c 'import json; d=json.load(open("d.json"))["ferry_mpi"]; print(d["path"], d["found"], d["error"] or "-")')" \
    "$prefix/libexec/ferry/ferry-mpi True -"
fi

# A pack and unpack round trip with the installed binary, on the conda fixture.
ENV=$(conda_fixture small)
"$ferry" pack "$ENV" -o env.tar.zst -q
"$ferry" unpack env.tar.zst "$TEST_DIR/out/env" >/dev/null
expect_eq "$(PYTHONDONTWRITEBYTECODE=1 "$TEST_DIR/out/env/bin/python3" -c 'import numpy, sys; print(sys.prefix)')" "$TEST_DIR/out/env"

# Man pages, found by name.
command -v man >/dev/null && expect_contains "$(MANPATH=$prefix/share/man MANWIDTH=100 man ferry-unpack 2>&1)" "ferry unpack"

# Completions where each shell's loader looks under PREFIX/share (XDG_DATA_DIRS, fpath).
if [ -r /usr/share/bash-completion/bash_completion ]; then
  out=$(XDG_DATA_DIRS=$prefix/share:/usr/share bash -c 'source /usr/share/bash-completion/bash_completion
    __load_completion ferry && complete -p ferry
    COMP_WORDS=(ferry stage --via ""); COMP_CWORD=3; _ferry; echo "${COMPREPLY[*]}"')
  expect_contains "$out" "complete -o bashdefault -o filenames -F _ferry ferry"
  expect_contains "$out" "auto mpi sbcast"
else
  [ -z "${CI:-}" ] || fail "bash-completion is missing"
fi
if command -v fish >/dev/null; then
  expect_contains "$(PATH=$prefix/bin:$PATH XDG_DATA_DIRS=$prefix/share HOME=$TEST_DIR fish -c 'complete -C"ferry sta"')" "stage"
fi
if command -v zsh >/dev/null; then
  expect_eq "$(HOME=$TEST_DIR zsh -f -c "fpath=($prefix/share/zsh/site-functions \$fpath); autoload -U compinit; compinit -u -d $TEST_DIR/zcompdump; print \$_comps[ferry]")" "_ferry"
fi

# make dist: the committed tree and REVISION under ferry-VERSION/.
if git -C "$FERRY_SOURCE" rev-parse --show-toplevel >/dev/null 2>&1 &&
   [ "$(realpath "$(git -C "$FERRY_SOURCE" rev-parse --show-toplevel)")" = "$(realpath "$FERRY_SOURCE")" ]; then
  version=$(project_version)
  tarball=$(bash "$FERRY_SOURCE/scripts/dist.sh" "$TEST_DIR/dist" 2>/dev/null)
  expect_eq "$tarball" "$TEST_DIR/dist/ferry-$version.tar.gz"
  tar -tzf "$tarball" | sed "s|^ferry-$version/||" | grep -v '/$' | grep -v '^$' | sort >listed
  { git -C "$FERRY_SOURCE" ls-tree -r --name-only HEAD; echo REVISION; } | sort >wanted
  diff wanted listed >/dev/null || fail "the tarball is not HEAD's tree: $(diff wanted listed | head -5)"
  expect_eq "$(tar -xzOf "$tarball" "ferry-$version/REVISION")" "$(git -C "$FERRY_SOURCE" rev-parse --short HEAD)"
  # Its tree configures into a build whose ferry names that revision (cmake/FerryRevision.cmake).
  mkdir src && tar -xzf "$tarball" -C src
  cmake -DSOURCE_DIR="$TEST_DIR/src/ferry-$version" -DOUT="$TEST_DIR/revision.cpp" \
    -P "$TEST_DIR/src/ferry-$version/cmake/FerryRevision.cmake"
  expect_contains "$(cat revision.cpp)" "\"git $(git -C "$FERRY_SOURCE" rev-parse --short HEAD)\""
else
  echo "not a git checkout: make dist not tried"
fi
echo "install: the installed ferry runs, finds ferry-mpi, its man pages and completions load"
