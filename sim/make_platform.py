#!/usr/bin/env python3
"""A Frontier-like platform for SimGrid: N nodes on a non-blocking fat tree (each node's link 25 GB/s;
about 2 us between two nodes: four hops of 0.5 us on two levels), written as NAME.xml and a
hostfile NAME.hosts with one line per node.

Usage: make_platform.py N NAME
"""
import math
import sys


def fat_tree(n):
    # One level up to 64 nodes; else two, leaves of m1 nodes under m2 leaf switches, every leaf
    # switch wired to every top switch (full bisection): "levels;down;up;parallel links".
    if n <= 64:
        return f"1;{n};1;1"
    m1 = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    if m1 < 4:
        sys.exit(f"make_platform.py: {n} nodes do not make a two-level fat tree (no divisor near its root)")
    return f"2;{m1},{n // m1};1,{m1};1,1"


def main():
    if len(sys.argv) != 3 or not sys.argv[1].isdigit() or int(sys.argv[1]) < 1:
        sys.exit("usage: make_platform.py N NAME")
    n, name = int(sys.argv[1]), sys.argv[2]
    with open(f"{name}.xml", "w") as f:
        f.write(
            "<?xml version='1.0'?>\n"
            '<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">\n'
            '<platform version="4.1">\n'
            f'  <cluster id="frontier-like" prefix="node" suffix="" radical="0-{n - 1}" speed="1Gf"\n'
            f'           bw="25GBps" lat="0.5us" topology="FAT_TREE" topo_parameters="{fat_tree(n)}"/>\n'
            "</platform>\n"
        )
    with open(f"{name}.hosts", "w") as f:
        f.write("".join(f"node{i}\n" for i in range(n)))


main()
