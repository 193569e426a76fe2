# Where conda-pack has a quirk, ferry decided on purpose (README, "Decisions on conda-pack's
# quirks"): each decision on a small conda env built to show it.
source "$(dirname "$0")/common.sh"
PH=/opt/anaconda1anaconda2anaconda3
ENV="$TEST_DIR/quirks/env"
PKGS="$TEST_DIR/quirks/pkgs"
"$DEBIAN_PYTHON" - "$ENV" "$PKGS" "$PH" <<'PY'
import json, os, sys
env, pkgs, ph = sys.argv[1:]
def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").write(text)
def package(name, files, paths=None, legacy=None, has_prefix=None, installed=None, version="1.0"):
    src = os.path.join(pkgs, "%s-%s-0" % (name, version))
    for rel, text in files.items():
        write(os.path.join(src, rel), text)
        write(os.path.join(env, rel), (installed or {}).get(rel, text.replace(ph, env)))
    if paths is not None:
        write(os.path.join(src, "info/paths.json"), json.dumps({"paths": paths, "paths_version": 1}))
    if legacy is not None:
        write(os.path.join(src, "info/files"), legacy)
    if has_prefix is not None:
        write(os.path.join(src, "info/has_prefix"), has_prefix)
    os.makedirs(os.path.join(src, "info"), exist_ok=True)
    write(os.path.join(env, "conda-meta", "%s-%s-0.json" % (name, version)), json.dumps({
        "name": name, "version": version, "build": "0", "files": list(files),
        "link": {"source": src, "type": 1}}))
# CEP 34: a placeholder without file_mode is text (conda-pack: "no prefix").
package("modeless", {"share/modeless.txt": "root=%s\n" % ph},
        paths=[{"_path": "share/modeless.txt", "prefix_placeholder": ph}])
# Legacy package: info/files and info/has_prefix with blank lines (conda-pack: an error).
package("legacy", {"share/legacy.txt": "root=%s\n" % ph},
        legacy="share/legacy.txt\n\n", has_prefix="\n%s text share/legacy.txt\n\n" % ph)
# A directory entry whose directory is not empty (conda-pack: "missing").
package("dirent", {"share/dirent/data.txt": "data\n"},
        paths=[{"_path": "share/dirent", "path_type": "directory"}, {"_path": "share/dirent/data.txt"}])
# Two packages claim one path; the env holds b's copy (conda-pack: whichever listdir gives last).
package("clobber-a", {"share/clobbered.txt": "from a\n"}, paths=[{"_path": "share/clobbered.txt"}],
        installed={"share/clobbered.txt": "from b\n"})
package("clobber-b", {"share/clobbered.txt": "from b\n"}, paths=[{"_path": "share/clobbered.txt"}])
# A python record (no files needed): it tells where site-packages is.
package("python", {}, paths=[], version="3.11.7")
write(os.path.join(env, "conda-meta/history"), "==> 2023-11-14 22:13:20 <==\n")
# Unmanaged files: one names the prefix, one does not; macOS litter at the top.
write(os.path.join(env, "etc/unmanaged-with-prefix.cfg"), "home=%s\n" % env)
write(os.path.join(env, "etc/unmanaged-plain.cfg"), "nothing here\n")
write(os.path.join(env, ".DS_Store"), "\0\0\0\1Bud1")
PY

# The package cache's paths in the records, as conda writes them and as it should not: escaped
# text, a number, and an object (each blanked; the rest of each record kept as it was).
"$DEBIAN_PYTHON" - "$ENV" <<'PY'
import glob, json, os, sys
env = sys.argv[1]
def edit(name, **fields):
    path = glob.glob(os.path.join(env, "conda-meta", name + "-*.json"))[0]
    record = json.load(open(path))
    record.update(fields)
    open(path, "w").write(json.dumps(record, indent=2, ensure_ascii=False))
edit("modeless", extracted_package_dir="/pkgs/caf\u00e9 \"quoted\" \\ dir", channel="caf\u00e9")
edit("legacy", package_tarball_full_path=12, extracted_package_dir={"nested": ["x"]})
PY
out=$("$FERRY" pack "$ENV" -o q.tar.zst --json 2>warnings)
expect_contains "$(cat warnings)" "claimed by more than one package"
tar --zstd -tf q.tar.zst > members
grep -qx 'share/dirent/data.txt' members
grep -qix '.ds_store' members && fail ".DS_Store was packed"
grep -qx 'bin/conda-unpack' members && fail "ferry adds no conda-unpack script"
# Only the unmanaged file that names the prefix gets a record (conda-pack: every UTF-8 file).
inspect=$("$FERRY" inspect q.tar.zst --json)
expect_contains "$inspect" '"text_records": 3'

DEST="$TEST_DIR/elsewhere/deeper/env"
"$FERRY" unpack q.tar.zst "$DEST" >/dev/null
expect_eq "$("$DEBIAN_PYTHON" - "$ENV" "$DEST" <<'PY'
import glob, json, os, sys
env, dest = sys.argv[1:]
for path in sorted(glob.glob(os.path.join(env, "conda-meta", "*.json"))):
    before = json.load(open(path))
    after = json.load(open(os.path.join(dest, "conda-meta", os.path.basename(path))))
    for key in ("extracted_package_dir", "package_tarball_full_path"):
        if key in before:
            before[key] = ""
    before["link"]["source"] = ""
    if after != before:
        print(os.path.basename(path), after)
print("records", len(glob.glob(os.path.join(dest, "conda-meta", "*.json"))))
PY
)" "records 6"
expect_eq "$(cat "$DEST/share/modeless.txt")" "root=$DEST"
expect_eq "$(cat "$DEST/share/legacy.txt")" "root=$DEST"
expect_eq "$(cat "$DEST/etc/unmanaged-with-prefix.cfg")" "home=$DEST"
expect_eq "$(cat "$DEST/share/clobbered.txt")" "from b"
expect_eq "$(cat "$DEST/share/dirent/data.txt")" "data"

# Editable installs, PEP 610 and legacy egg-link alike, are refused unless asked for.
mkdir -p "$ENV/lib/python3.11/site-packages"
echo /home/user/src/mypkg > "$ENV/lib/python3.11/site-packages/mypkg.egg-link"
expect_failure "editable" "$FERRY" pack "$ENV" -o e.tar.zst
expect_missing e.tar.zst
"$FERRY" pack "$ENV" -o e.tar.zst --ignore-editable-packages 2>/dev/null >/dev/null

# Broken metadata: one line naming the file, nothing written. A record cut short (a full disk
# while conda wrote it), then a cache entry's paths.json whose entry has no _path.
record=$(ls "$ENV"/conda-meta/modeless-*.json)
cp "$record" record.saved
head -c 40 record.saved > "$record"
expect_failure "$record: invalid JSON" "$FERRY" pack "$ENV" -o bad.tar.zst --ignore-editable-packages
expect_missing bad.tar.zst
cp record.saved "$record"
paths=$(ls -d "$PKGS"/legacy-*)/info/paths.json
echo '{"paths": [{"path_type": "hardlink"}], "paths_version": 1}' > "$paths"
expect_failure "$paths: an entry of \"paths\" has no \"_path\"" \
  "$FERRY" pack "$ENV" -o bad.tar.zst --ignore-editable-packages
expect_missing bad.tar.zst
echo ok
