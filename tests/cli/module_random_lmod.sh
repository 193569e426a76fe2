# ferry module --lmod, randomized: seeded random sequences of load / unload / swap / purge over three
# generated envs, from random user states; every step sets what the loaded env sets, and every
# sequence ends with the environment exactly as it started (module_common.bash: module_random).
source "$(dirname "$0")/common.sh"
source "$FERRY_SOURCE/tests/cli/module_common.bash"
module_random lmod
