# Shell completion from `ferry completion SHELL`, tried in the shells themselves: bash through the
# function `complete` registers (COMP_WORDS/COMP_CWORD as bash sets them, compgen inside), fish
# through `complete -C` (what fish offers at the cursor), zsh through its function with the
# completion builtins stood in for (they only run inside a completion widget). Every verb of
# `ferry --help` is offered; options' fixed values (--via, --format, --shell); file names where a
# verb takes them; hidden verbs never.
source "$(dirname "$0")/common.sh"

# The verbs `ferry --help` lists (its Subcommands section).
verbs=$("$FERRY" --help | sed -n '/^SUBCOMMANDS:/I,$p' | awk 'NR > 1 && /^  [a-z]/ {print $1}' | sort)
[ "$(wc -l <<<"$verbs")" -ge 15 ] || fail "ferry --help lists too few verbs: $verbs"
expect_contains "$verbs" "stage"

# --- bash ---
command -v bash >/dev/null
"$FERRY" completion bash >ferry.bash
cat >bash_probe.sh <<'PROBE'
source ./ferry.bash
# complete WORD...: what bash would offer with the cursor at the end of the last word.
offer() {
  COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  local fn; fn=$(complete -p ferry | sed -n 's/.* -F \([^ ]*\) ferry$/\1/p')
  "$fn" ferry "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
  printf '%s\n' "${COMPREPLY[@]}" | sort
}
PROBE
offer() { bash -c 'source ./bash_probe.sh; offer "$@"' offer "$@"; }
expect_eq "$(offer ferry '')" "$verbs" "bash: the verbs"
expect_eq "$(offer ferry st)" "stage"
expect_eq "$(offer ferry job '')" "$(printf 'load\nsave\nshow')"
expect_eq "$(offer ferry stage --v)" "--via"
expect_eq "$(offer ferry stage --via '')" "$(printf 'auto\nmpi\nsbcast')"
expect_eq "$(offer ferry stage --to /x --via m)" "mpi"
# bash splits --via=m at '=' (COMP_WORDBREAKS): the words are --via, =, m.
expect_eq "$(offer ferry stage --via = s)" "sbcast"
# Only the formats pack writes are offered (zip and squashfs are refused, with a line of their own).
expect_eq "$(offer ferry pack -o out.tar.zst --format '')" "$(printf 'infer\ntar.gz\ntar.zst\ntgz\ntzst')"
expect_eq "$(offer ferry activate --shell z)" "zsh"
expect_eq "$(offer ferry completion '')" "$(printf 'bash\nfish\nzsh')"
# The options of pack are those of `ferry pack --help`.
pack_help=$("$FERRY" pack --help | grep -oE -- '--[a-z][a-z-]+' | sort -u)
expect_eq "$(offer ferry pack --  | sort -u)" "$pack_help"
expect_contains "$(offer ferry pack -)" "--dest-prefix"
# A value that is a path, and a verb's file arguments: file names.
mkdir -p envs/alpha && touch archive-one.tar.zst
expect_eq "$(offer ferry pack -o arch)" "archive-one.tar.zst"
expect_eq "$(offer ferry inspect arch)" "archive-one.tar.zst"
expect_eq "$(offer ferry pack envs/al)" "envs/alpha"
# Options after a verb's value option are still the verb's: --jobs's 4 is not a verb.
expect_eq "$(offer ferry unpack -j 4 --js)" "--json"
# Hidden verbs (started by ferry itself) are not offered.
for hidden in stage-node dask-node ray-node write-docs; do
  case $'\n'"$(offer ferry '')"$'\n' in *$'\n'"$hidden"$'\n'*) fail "bash offers the hidden verb $hidden";; esac
done
# Installed as bash-completion finds it (tests/cli/install.sh checks the installed copy).
expect_contains "$(bash -c 'source ./ferry.bash; complete -p ferry')" "-F _ferry ferry"

# --- fish ---
if command -v fish >/dev/null; then
  "$FERRY" completion fish >ferry.fish
  fish_offer() { fish --no-config -c "source ./ferry.fish; complete -C$(printf '%q' "$1")" | cut -f1 | sort; }
  expect_eq "$(fish_offer 'ferry ')" "$verbs" "fish: the verbs"
  expect_eq "$(fish_offer 'ferry stage --via ')" "$(printf 'auto\nmpi\nsbcast')"
  expect_eq "$(fish_offer 'ferry job s')" "$(printf 'save\nshow')"
  expect_eq "$(fish_offer 'ferry pack --dest')" "--dest-prefix"
  expect_eq "$(fish_offer 'ferry pack -o out --format t')" "$(printf 'tar.gz\ntar.zst\ntgz\ntzst')"
  expect_eq "$(fish_offer 'ferry inspect arch')" "archive-one.tar.zst"
  expect_eq "$(fish_offer 'ferry completion ')" "$(printf 'bash\nfish\nzsh')"
  # A verb's description comes with it.
  expect_contains "$(fish --no-config -c 'source ./ferry.fish; complete -C"ferry st"')" $'stage\tPut an environment archive'
else
  [ -z "${CI:-}" ] || fail "fish is missing (scripts/install-deps.sh installs it)"
  echo "fish not installed: its completion not tried"
fi

# --- zsh ---
if command -v zsh >/dev/null; then
  "$FERRY" completion zsh >_ferry
  zsh -n _ferry || fail "zsh cannot parse the zsh completion"
  expect_eq "$(head -n1 _ferry)" "#compdef ferry"
  cat >zsh_probe.zsh <<'PROBE'
compdef() { :; }
source ./_ferry
compadd() { [[ $1 == -- ]] && shift; print -rl -- "$@"; }
_describe() { local entry; for entry in "${(@P)2}"; do print -r -- "${entry%%:*}"; done; }
_files() { print -r -- FILES; }
words=("$@"); CURRENT=$#
_ferry
PROBE
  zsh_offer() { zsh -f zsh_probe.zsh "$@" | sort; }
  expect_eq "$(zsh_offer ferry '')" "$verbs" "zsh: the verbs"
  expect_eq "$(zsh_offer ferry stage --via '')" "$(printf 'auto\nmpi\nsbcast')"
  expect_eq "$(zsh_offer ferry job '')" "$(printf 'load\nsave\nshow')"
  expect_eq "$(zsh_offer ferry inspect '')" "FILES"
  expect_contains "$(zsh_offer ferry launch -)" "--threads"
else
  [ -z "${CI:-}" ] || fail "zsh is missing (scripts/install-deps.sh installs it)"
  echo "zsh not installed: its completion not tried"
fi

# A shell ferry has no script for: one line.
expect_failure "SHELL" "$FERRY" completion tcsh
echo "completion: bash, fish and zsh offer ferry's verbs, options and values"
