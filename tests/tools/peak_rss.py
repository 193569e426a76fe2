#!/usr/bin/env python3
"""peak_rss.py OUT -- CMD ARGS...: runs CMD (its output and exit status passed through) and writes
the peak resident memory of CMD and its children, in MiB, to OUT (getrusage of the waited-for
children: a resource limit a test can assert, not a timing)."""
import resource
import subprocess
import sys

if len(sys.argv) < 4 or sys.argv[2] != "--":
    sys.exit("usage: peak_rss.py OUT -- CMD ARGS...")
rc = subprocess.call(sys.argv[3:])
with open(sys.argv[1], "w") as out:
    out.write("%d\n" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024))
sys.exit(rc if rc >= 0 else 128 - rc)
