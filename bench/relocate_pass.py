"""What users run after `tar -x` today: conda-unpack's rules applied file by file in Python.

Reads the record list (path, placeholder, mode) from the unpacked tree's .ferry/manifest.json so that
it does exactly the work conda-unpack would do with the same records, then rewrites in place.
"""
import json
import os
import re
import sys


def binary_replace(data, ph, new):
    pattern = re.compile(re.escape(ph) + b"([^\0]*?)\0")

    def repl(m):
        n = m.group().count(ph)
        pad = (len(ph) - len(new)) * n
        if pad < 0:
            raise ValueError("negative padding")
        return m.group().replace(ph, new) + b"\0" * pad

    return pattern.sub(repl, data)


def main(root):
    with open(os.path.join(root, ".ferry/manifest.json")) as f:
        manifest = json.load(f)
    new = os.path.abspath(root).encode()
    for path, _size, _hash, index, mode in manifest["files"]:
        if index < 0:
            continue
        ph = manifest["placeholders"][index].encode()
        full = os.path.join(root, path)
        with open(full, "rb+") as f:
            data = f.read()
            out = data.replace(ph, new) if mode == "text" else binary_replace(data, ph, new)
            if out != data:
                f.seek(0)
                f.write(out)
                f.truncate()


if __name__ == "__main__":
    main(sys.argv[1])
