"""Scalar backward pass in CPU instructions per node, tinygraph beside micrograd, under valgrind.

    python benchmarks/instructions.py            # ~2 min; needs valgrind on PATH

Wall and CPU time on a shared machine move by 10-30% between identical runs;
instruction counts (valgrind's callgrind) do not depend on what else the machine
is doing and repeat within ~2% (memory addresses still change a little between
runs), so they are the way to compare two versions of the engine. Each figure is
the difference of two runs under callgrind, one that builds the graphs and one
that builds them and runs backward on each, divided by the number of nodes: what
the backward pass costs per node, freeing what it made included.

Cases (smaller than benchmarks/scalar.py's, because valgrind is ~50x slower):
micrograd's MLP(2, [16, 16, 1]) demo on 20 points, and a 5,000-op random graph;
three graphs of each.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import subprocess
import sys

from _bench import machine, table
from scalar import build_mlp, build_random, count_nodes, random_plan

CASES = {"mlp 20 points": lambda V: build_mlp(V, 20), "random 5,000 ops": lambda V: build_random(V, random_plan(5000))}


def library(name: str):
    if name == "tinygraph":
        import tinygraph
        return tinygraph.Node
    from micrograd.engine import Value
    sys.setrecursionlimit(100_000)  # micrograd's backward is recursive
    return Value


def child(lib: str, case: str, backward: bool) -> None:
    """What runs under valgrind: build three graphs, then (maybe) run backward on each."""
    V = library(lib)
    gc.disable()
    roots = [CASES[case](V) for _ in range(3)]
    if backward:
        for root in roots:
            root.backward()


def instructions(lib: str, case: str, backward: bool) -> int:
    args = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
            sys.executable, __file__, "--child", lib, case, "1" if backward else "0"]
    env = dict(os.environ, PYTHONHASHSEED="0")  # the same string hashes in every run
    done = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4] == "1")
        return
    if not shutil.which("valgrind"):
        sys.exit("valgrind not found: install it (Debian: apt-get install valgrind) to count instructions")
    libs = ["tinygraph"]
    try:
        library("micrograd")
        libs.append("micrograd")
    except ImportError:
        print("micrograd not installed: pip install -e '.[bench]' to compare")
    print(machine())
    rows = []
    for case in CASES:
        per_node = {}
        for lib in libs:
            n = sum(count_nodes(CASES[case](library(lib))) for _ in range(3))
            cost = instructions(lib, case, True) - instructions(lib, case, False)
            per_node[lib] = cost / n
            rows.append([case, lib, f"{n:,}", f"{per_node[lib]:,.0f}"])
        if "micrograd" in per_node:
            rows[-2].append(f"{per_node['tinygraph'] / per_node['micrograd']:.2f}")
            rows[-1].append("1.00")
        print(rows[-1], flush=True)
    header = ["case", "library", "nodes", "backward instructions/node"]
    if len(libs) > 1:
        header.append("ratio")
    print()
    print(table(header, rows))
    version = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"({version}, Python {sys.version.split()[0]}, PYTHONHASHSEED=0)")


if __name__ == "__main__":
    main()
