# ferry venv: a venv with --system-site-packages on a base Python (a conda env, the pyenv prefix),
# as ezpz's setup makes one; reused when it matches, refused when it does not, never half-made.
source "$(dirname "$0")/common.sh"
need_pyenv
export PYTHONDONTWRITEBYTECODE=1 PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1
unset CONDA_PREFIX VIRTUAL_ENV PYTHONHOME PYTHONPATH
CONDA=$(conda_fixture small)
SITE=lib/python3.11/site-packages
no_temp_left() { local left; left=$(ls -a "$1" | grep 'ferry-tmp' || true); [ -z "$left" ] || fail "temporary tree left in $1: $left (line ${BASH_LINENO[0]})"; }

# On a conda env: its own prefix, numpy and pip from the base, activation both ways.
V=$TEST_DIR/venvs/polaris/v
out=$("$FERRY" venv "$V" --base "$CONDA")
expect_contains "$out" "created venv $V"
expect_contains "$out" "source $V/bin/activate"
expect_eq "$("$V/bin/python" -c 'import sys; print(sys.prefix)')" "$V"
expect_eq "$("$V/bin/python" -c 'import numpy; print(numpy.__file__)')" "$CONDA/$SITE/numpy/__init__.py"
expect_contains "$("$V/bin/python" -m pip --version)" "$CONDA/$SITE/pip"
! grep -rq 'ferry-tmp' "$V/bin" "$V/pyvenv.cfg" || fail "the temporary name leaked into $V"
no_temp_left "$TEST_DIR/venvs/polaris"
expect_eq "$(bash -c "source '$V/bin/activate'; command -v python; echo \$VIRTUAL_ENV_PROMPT")" "$V/bin/python
(v)"
expect_eq "$(bash -c "eval \"\$('$FERRY' activate '$V')\"; python -c 'import sys; print(sys.prefix)'")" "$V"

# The venv comes first: a module dropped into it shadows the base's.
echo '__version__ = "from the venv"' > "$V/$SITE/numpy.py"
expect_eq "$("$V/bin/python" -c 'import numpy; print(numpy.__version__)')" "from the venv"
rm "$V/$SITE/numpy.py"

# bin/pip (the base's pip run by the venv's python) installs into the venv, not the base.
"$DEBIAN_PYTHON" - <<'EOF'
import base64, hashlib, zipfile
files = {"ferry_tiny.py": "WHERE = 'venv'\n",
         "ferry_tiny-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: ferry-tiny\nVersion: 1.0\n",
         "ferry_tiny-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
digest = lambda s: base64.urlsafe_b64encode(hashlib.sha256(s.encode()).digest()).rstrip(b"=").decode()
record = "".join(f"{n},sha256={digest(c)},{len(c)}\n" for n, c in files.items())
with zipfile.ZipFile("ferry_tiny-1.0-py3-none-any.whl", "w") as z:
    for n, c in files.items(): z.writestr(n, c)
    z.writestr("ferry_tiny-1.0.dist-info/RECORD", record + "ferry_tiny-1.0.dist-info/RECORD,,\n")
EOF
"$V/bin/pip" install -q --no-deps ferry_tiny-1.0-py3-none-any.whl
expect_eq "$("$V/bin/python" -c 'import ferry_tiny; print(ferry_tiny.__file__)')" "$V/$SITE/ferry_tiny.py"
expect_missing "$CONDA/$SITE/ferry_tiny.py"

# Run again: reused, untouched, quick.
cp "$V/pyvenv.cfg" cfg.before
t0=$(date +%s%N)
expect_contains "$("$FERRY" venv "$V" --base "$CONDA")" "reusing venv $V"
[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 2000 ] || fail "reuse took over 2 s"
expect_eq "$("$FERRY" venv "$V" --base "$CONDA" --json | "$DEBIAN_PYTHON" -c 'import json, sys; j = json.load(sys.stdin); print(j["action"], j["base"], j["python_version"])')" "reused $CONDA 3.11.7"
cmp -s cfg.before "$V/pyvenv.cfg" || fail "reuse changed pyvenv.cfg"

# Another base at the same path: refused, naming both; the venv is left as it was.
expect_failure "was made on $CONDA, not on $PYENV_PREFIX" "$FERRY" venv "$V" --base "$PYENV_PREFIX"
cmp -s cfg.before "$V/pyvenv.cfg" || fail "a refused run changed $V"
"$V/bin/python" -c 'import ferry_tiny'
# --force replaces it, in one rename.
expect_contains "$("$FERRY" venv "$V" --base "$PYENV_PREFIX" --force)" "replaced venv $V"
expect_contains "$(cat "$V/pyvenv.cfg")" "home = $PYENV_PREFIX/bin"
! "$V/bin/python" -c 'import ferry_tiny' 2>/dev/null || fail "--force kept the old venv's packages"
no_temp_left "$TEST_DIR/venvs/polaris"

# The default base is the active env: $CONDA_PREFIX, then $VIRTUAL_ENV's base, then python3 on PATH.
base_of() { "$DEBIAN_PYTHON" -c 'import json, sys; j = json.load(sys.stdin); print(j["base"], j["base_from"])'; }
expect_eq "$(CONDA_PREFIX=$CONDA "$FERRY" venv d1 --json | base_of)" "$CONDA \$CONDA_PREFIX"
expect_eq "$(VIRTUAL_ENV=$V "$FERRY" venv d2 --json 2>d2.err | base_of)" "$PYENV_PREFIX \$VIRTUAL_ENV"
expect_contains "$(cat d2.err)" "ferry: warning: \$VIRTUAL_ENV=$V is a venv"
expect_eq "$("$FERRY" venv d3 --json | base_of)" "$PYENV_PREFIX python3 on PATH"

# Bad bases: one error line, nothing made (not even PATH's parent).
expect_failure "$TEST_DIR/nope: base Python prefix not found" "$FERRY" venv new/b1 --base nope
mkdir -p notpy/lib broken/bin
expect_failure "$TEST_DIR/notpy: not a Python prefix: no bin/python3" "$FERRY" venv new/b2 --base notpy
printf '#!/bin/sh\necho "boom: no stdlib" >&2; exit 3\n' > broken/bin/python3 && chmod +x broken/bin/python3
expect_failure "broken/bin/python3: does not run: boom: no stdlib" "$FERRY" venv new/b3 --base broken
expect_failure "$V: is a venv itself" "$FERRY" venv new/b4 --base "$V"
expect_failure "(the base from \$CONDA_PREFIX; pass --base)" env CONDA_PREFIX=/gone "$FERRY" venv new/b5
expect_missing new

# A venv of another kind is not reused either.
"$PYENV_PREFIX/bin/python3" -m venv --without-pip plain
expect_failure "plain: a venv that was made without --system-site-packages" "$FERRY" venv plain --base "$PYENV_PREFIX"

# Not a venv: refused even with --force. An empty directory is fine.
mkdir proj && echo data > proj/notes
expect_failure "$TEST_DIR/proj: exists and is not a venv" "$FERRY" venv proj --base "$PYENV_PREFIX" --force
expect_eq "$(cat proj/notes)" data
mkdir empty && "$FERRY" venv empty --base "$PYENV_PREFIX" >/dev/null && [ -f empty/pyvenv.cfg ]

# A run killed mid-way leaves nothing or a working venv; the next run sweeps its temporary tree.
"$FERRY" venv k --base "$CONDA" >/dev/null & pid=$!
sleep 0.05; kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
[ ! -e k ] || k/bin/python -c 'import numpy'
# (what a dead run leaves: its marker beside the half-made tree)
mkdir -p .k.ferry-tmp-dead01/tree && touch .k.ferry-tmp-dead01/.ferry-tmp .k.ferry-tmp-dead01/tree/half-made
"$FERRY" venv k --base "$CONDA" >/dev/null
k/bin/python -c 'import numpy'
no_temp_left .
# A dead run's tree is swept even when the venv turns out to be there already (reused).
mkdir .k.ferry-tmp-dead02 && touch .k.ferry-tmp-dead02/.ferry-tmp
expect_contains "$("$FERRY" venv k --base "$CONDA")" "reusing"
no_temp_left .

# Ranks running the same setup line at once: one makes it, the others wait and reuse it.
for i in 1 2 3 4; do "$FERRY" venv shared --base "$CONDA" --json > "rank$i.json" & done
wait
expect_eq "$(cat rank*.json | grep -c '"action": "created"')" 1
expect_eq "$(cat rank*.json | grep -c '"action": "reused"')" 3

# A parent directory the user cannot write to (as root: run as nobody, on Debian's python).
mkdir ro && chmod 555 ro
as_user=()
if [ "$(id -u)" = 0 ]; then chmod 755 "$TEST_DIR"; as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups); fi
expect_failure "$TEST_DIR/ro: cannot make the venv v here: Permission denied" \
  "${as_user[@]}" "$FERRY" venv ro/v --base /usr
expect_missing ro/v
echo ok
