# A package that pip installed into a conda env keeps all of its bytecode through pack and unpack:
# conda-pack's rule leaves out only the __pycache__ of conda-managed .py files, and an unmanaged
# module's .pyc is packed whether its name sorts before or after __pycache__ (__init__, _C and Zeta
# sort before it, zeta after). Python imports the package from the unpacked env without compiling.
source "$(dirname "$0")/common.sh"
need_pyenv
ENV=$TEST_DIR/env
cp -a "$(conda_fixture small)" "$ENV"

# A pure-Python wheel, laid out as a build backend writes one, installed with the env's own pip
# (which compiles every module into __pycache__ as it installs).
mkdir wheel
"$DEBIAN_PYTHON" - wheel <<'EOF'
import base64, hashlib, sys, zipfile
modules = {
    "ferry_pipdemo/__init__.py": "from . import _C, Zeta, zeta\nNAME = 'ferry_pipdemo'\n",
    "ferry_pipdemo/_C.py": "VALUE = 'C'\n",
    "ferry_pipdemo/Zeta.py": "VALUE = 'Zeta'\n",
    "ferry_pipdemo/zeta.py": "VALUE = 'zeta'\n",
    "ferry_pipdemo-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: ferry-pipdemo\nVersion: 1.0\n",
    "ferry_pipdemo-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
with zipfile.ZipFile(sys.argv[1] + "/ferry_pipdemo-1.0-py3-none-any.whl", "w") as whl:
    for name, text in modules.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d\n" % (name, digest, len(data)))
        whl.writestr(name, data)
    record.append("ferry_pipdemo-1.0.dist-info/RECORD,,\n")
    whl.writestr("ferry_pipdemo-1.0.dist-info/RECORD", "".join(record))
EOF
env -u PYTHONDONTWRITEBYTECODE "$ENV/bin/python3" -m pip install -q --no-index --no-deps \
  --no-cache-dir --disable-pip-version-check --root-user-action=ignore wheel/ferry_pipdemo-1.0-py3-none-any.whl
sp=lib/python3.11/site-packages
pyc=()
for m in __init__ _C Zeta zeta; do pyc+=("$sp/ferry_pipdemo/__pycache__/$m.cpython-311.pyc"); done
for f in "${pyc[@]}"; do [ -f "$ENV/$f" ] || fail "fixture: pip did not compile $f"; done
# The env's own bytecode of a pip-installed package (no conda-meta record either).
[ -f "$ENV/$sp/toml/__pycache__/__init__.cpython-311.pyc" ] || fail "fixture: toml has no bytecode"
pyc+=("$sp/toml/__pycache__/__init__.cpython-311.pyc" "$sp/toml/__pycache__/tz.cpython-311.pyc")
# Bytecode that Python wrote for a conda-managed source after conda installed it (numpy ships
# plain .pyc, not these).
stray=$sp/numpy/__pycache__/version.cpython-311.opt-2.pyc
"$ENV/bin/python3" -c 'import py_compile, sys; py_compile.compile(sys.argv[1], optimize=2)' \
  "$ENV/$sp/numpy/version.py"
[ -f "$ENV/$stray" ] || fail "fixture: no $stray"
export PYTHONDONTWRITEBYTECODE=1

"$FERRY" pack "$ENV" -o env.tar.zst >/dev/null
tar --zstd -tf env.tar.zst | sed 's|^\./||' > members
for f in "${pyc[@]}"; do grep -qxF "$f" members || fail "$f is not in the archive"; done
# conda-pack's rule still holds: unmanaged bytecode of a conda-managed source is left out.
if grep -qxF "$stray" members; then fail "$stray was packed"; fi
grep -qxF "$sp/numpy/__pycache__/version.cpython-311.pyc" members  # numpy's own, managed

DEST=$TEST_DIR/somewhere/else/env
"$FERRY" unpack env.tar.zst "$DEST" >/dev/null
for f in "${pyc[@]}"; do cmp "$ENV/$f" "$DEST/$f" || fail "$f differs after unpack"; done

# Importing from the unpacked env loads every module from its .pyc and writes nothing.
before=$(find "$DEST/$sp/ferry_pipdemo" "$DEST/$sp/toml" -printf '%P %s %T@\n' | sort)
log=$(env -u PYTHONDONTWRITEBYTECODE "$DEST/bin/python3" -v -c \
  'import ferry_pipdemo, toml; print(ferry_pipdemo.Zeta.VALUE, ferry_pipdemo.zeta.VALUE)' 2>&1)
expect_contains "$log" "Zeta zeta"
for f in "${pyc[@]}"; do expect_contains "$log" "code object from '$DEST/$f'"; done
if grep -q "wrote '$DEST/" <<<"$log"; then fail "import recompiled: $(grep "wrote '" <<<"$log")"; fi
expect_eq "$(find "$DEST/$sp/ferry_pipdemo" "$DEST/$sp/toml" -printf '%P %s %T@\n' | sort)" \
  "$before" "files under the unpacked packages after import"
echo ok
