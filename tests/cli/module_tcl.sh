# ferry module --tcl: Tcl modulefiles for real Environment Modules; load sets what activation
# sets, unload gives back the environment exactly (user values included), the family swaps.
source "$(dirname "$0")/common.sh"
source "$FERRY_SOURCE/tests/cli/module_common.bash"
module_scenario tcl
echo "module_tcl: ok"
