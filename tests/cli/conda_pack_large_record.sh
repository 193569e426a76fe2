# A conda-pack archive whose records name a file far larger than ferry's memory bound (a 250 MB
# text file holding the env's path 4 million times): relocated in pieces, exactly, within the bound.
source "$(dirname "$0")/common.sh"

LIMIT_MIB=256
N=4000000
ENV=$("$DEBIAN_PYTHON" "$FERRY_SOURCE/tests/fixtures/make_tricky_conda_env.py" "$TEST_DIR/build" --big-text $N)
"$DEBIAN_PYTHON" "$FERRY_SOURCE/tests/fixtures/make_conda_pack_archive.py" "$ENV" env.tar.gz > /dev/null
D=$TEST_DIR/somewhere/else/env
python3 "$FERRY_SOURCE/tests/tools/peak_rss.py" rss -- "$FERRY" unpack env.tar.gz "$D" > /dev/null
echo "peak memory: $(cat rss) MiB"
[ "$(cat rss)" -le "$LIMIT_MIB" ] || fail "unpack peaked at $(cat rss) MiB (limit $LIMIT_MIB)"
big=$(find "$D" -name big.txt)
[ -n "$big" ] || fail "big.txt is missing"
expect_eq "$(stat -c %s "$big")" $(( N * (${#D} + 5) + 1 )) "size of the relocated file"
grep -q "$ENV" "$big" && fail "the old prefix is left in big.txt"
expect_eq "$(head -c $(( ${#D} + 5 )) "$big")" "$D/lib:" "start of the relocated file"
echo "large recorded file: relocated exactly in $(cat rss) MiB"
