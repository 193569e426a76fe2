# ferry module --conda-root --tcl: a conda installation's base and envs as modules for real
# Environment Modules, with the user's scratch first in CONDA_ENVS_PATH and CONDA_PKGS_DIRS.
source "$(dirname "$0")/common.sh"
source "$FERRY_SOURCE/tests/cli/module_common.bash"
conda_root_scenario tcl
echo "module_conda_root_tcl: ok"
