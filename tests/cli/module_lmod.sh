# ferry module --lmod: Lua modulefiles for real Lmod; load sets what activation sets, unload gives
# back the environment exactly (user values included), a second python env swaps, listings work.
source "$(dirname "$0")/common.sh"
source "$FERRY_SOURCE/tests/cli/module_common.bash"
module_scenario lmod
# Lmod's spider finds the modules and their whatis lines.
out=$(in_clean_shell "module use '$DIR'; module spider cenv/1.0 2>&1")
expect_contains "$out" "cenv: cenv/1.0"
echo "module_lmod: ok"
