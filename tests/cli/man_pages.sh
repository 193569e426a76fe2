# The man pages the build writes from ferry's command-line definition (build/share/man/man1):
# ferry(1) and one per verb and sub-verb, each read by man itself (man -l, with groff's warnings
# on), each listing the options `ferry VERB --help` lists, and found by name through MANPATH.
source "$(dirname "$0")/common.sh"
command -v man >/dev/null || { [ -z "${CI:-}" ] || fail "man is missing"; skip "man-db is not installed"; }
pages=$FERRY_BUILD/share/man/man1
[ -f "$pages/ferry.1" ] || fail "no $pages/ferry.1 (the build's ferry_docs target writes it)"

render() { MANWIDTH=100 LC_ALL=C.UTF-8 man --warnings -l "$1" 2>render.err; }

# Every verb of ferry --help has its page, and the root page names it.
verbs=$("$FERRY" --help | sed -n '/^SUBCOMMANDS:/I,$p' | awk 'NR > 1 && /^  [a-z]/ {print $1}')
root=$(render "$pages/ferry.1")
[ ! -s render.err ] || fail "man warns about ferry.1: $(cat render.err)"
expect_contains "$root" "ferry - get Python environments onto HPC allocations"
for verb in $verbs; do
  [ -f "$pages/ferry-$verb.1" ] || fail "no man page for ferry $verb"
  expect_contains "$root" "ferry-$verb(1)"
done
# Sub-verbs too: ferry-job-save(1), ferry-sweep-submit(1)...
for sub in job-save job-load job-show sweep-submit dask-stop ray-status image-build hostlist-expand; do
  [ -f "$pages/ferry-$sub.1" ] || fail "no man page for ferry ${sub/-/ }"
done
# No page for what is hidden from --help.
for hidden in stage-node dask-node ray-node write-docs; do expect_missing "$pages/ferry-$hidden.1"; done

# Each page renders without a warning and holds every option its verb's --help lists.
count=0
for page in "$pages"/ferry-*.1; do
  name=$(basename "$page" .1)
  text=$(render "$page")
  [ ! -s render.err ] || fail "man warns about $name: $(cat render.err)"
  # The command the page is of, from its synopsis: ferry-job-save is `ferry job save`.
  read -r -a args < <(sed -n '/^\.SH SYNOPSIS/{n;s/^\.B ferry //p;}' "$page")
  expect_eq "ferry-$(IFS=-; echo "${args[*]}")" "$name" "the synopsis of $name"
  help=$("$FERRY" "${args[@]}" --help) || fail "ferry ${args[*]} --help failed (page $name)"
  expect_contains "$text" "NAME"
  while read -r opt; do
    grep -qF -- "$opt" <<<"$text" || fail "$name(1) lacks $opt, which ferry ${args[*]} --help lists"
  done < <(grep -oE -- '--[a-z][a-z0-9-]+' <<<"$help" | sort -u | grep -vx -- '--help' || true)
  count=$((count + 1))
done
[ "$count" -ge 25 ] || fail "only $count verb pages"

# What the pages say of values: stage's --via names its three, pack's synopsis its argument.
stage=$(render "$pages/ferry-stage.1")
expect_contains "$stage" "--via auto|mpi|sbcast"
expect_contains "$stage" "ferry stage --to TEXT [OPTIONS] ARCHIVE"
expect_contains "$(render "$pages/ferry-job-save.1")" "ferry-job(1)"

# man finds them by name through MANPATH, as after make install.
expect_contains "$(MANPATH=$FERRY_BUILD/share/man MANWIDTH=100 man ferry-pack 2>&1)" "--dest-prefix"
echo "man pages: $count verb pages and ferry(1), all rendered by man"
