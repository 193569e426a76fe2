# Bad input: one clear line naming the file or option, a non-zero exit, nothing written.
source "$(dirname "$0")/common.sh"
mkdir -p env/bin && echo '#!/bin/sh' > env/bin/tool
expect_failure "$TEST_DIR/nope: environment not found" "$FERRY" pack "$TEST_DIR/nope" -o x.tar.zst
expect_missing x.tar.zst
touch existing.tar.zst
expect_failure "existing.tar.zst: already exists (use --force to overwrite)" "$FERRY" pack env -o existing.tar.zst
expect_failure "output directory does not exist" "$FERRY" pack env -o "$TEST_DIR/no/such/dir/x.tar.zst"
expect_failure "must not be inside the environment" "$FERRY" pack env -o env/self.tar.zst
expect_failure "--level 42: out of range" "$FERRY" pack env -o y.tar.zst --level 42
expect_failure "--dest-prefix relative: must be an absolute path" "$FERRY" pack env -o y.tar.zst --dest-prefix relative
expect_missing y.tar.zst
expect_failure "--format" "$FERRY" pack env -o y.tar.zst --format rar
expect_failure "cannot open archive" "$FERRY" unpack "$TEST_DIR/missing.tar.zst" dest
expect_missing dest
rc=0; "$FERRY" pack env -o y.tar.zst --bogus 2>/dev/null || rc=$?
expect_eq "$rc" 2 "usage errors exit 2"
expect_failure "not an unpacked environment" "$FERRY" activate "$TEST_DIR/nowhere"
# conda env with files deleted behind conda's back, and an editable install.
mkdir -p conda/conda-meta conda/lib/python3.11/site-packages/demo-1.0.dist-info
cat > conda/conda-meta/demo-1.0-0.json <<'JSON'
{"name": "demo", "version": "1.0", "build": "0", "files": ["lib/demo.txt"], "link": null}
JSON
expect_failure "files managed by conda are missing" "$FERRY" pack conda -o c.tar.zst
"$FERRY" pack conda -o c.tar.zst --ignore-missing-files 2>/dev/null >/dev/null
echo '{"url": "file:///src/demo", "dir_info": {"editable": true}}' > conda/lib/python3.11/site-packages/demo-1.0.dist-info/direct_url.json
cat > conda/conda-meta/python-3.11.0-0.json <<'JSON'
{"name": "python", "version": "3.11.0", "build": "0", "files": [], "link": null}
JSON
expect_failure "editable packages" "$FERRY" pack conda -o d.tar.zst --ignore-missing-files
expect_missing d.tar.zst
echo ok
