"""Scalar graphs: tinygraph beside micrograd 0.1.0 (when installed), in one run.

    python benchmarks/scalar.py            # about a minute on 2 cores
    python benchmarks/scalar.py --quick    # smaller graphs, for a smoke test

Cases, each built by the same code for both libraries:
* random: a layered random graph, 40% mul, 40% add, 20% (a * 0.5).relu(), operands
  drawn from the 200 newest values (micrograd 0.1.0 has no tanh, so relu stands in);
* mlp: micrograd's demo, MLP(2, [16, 16, 1]) with its max-margin loss and L2 penalty
  on 100 points;
* chain: y = y * 1.0 + 1.0 repeated until one million ops deep (plus a constant leaf
  per op): build, backward, free.

Build and backward times are medians per node (all nodes of the graph, constants
included) with Python's default cycle collector on; "gc off" builds are shown for
comparison. micrograd's backward is recursive, so its recursion limit is raised for
the random and mlp cases (they are a few thousand nodes deep).
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
import tracemalloc
import weakref
from collections.abc import Callable
from typing import Any

from _bench import machine, median_time, table, timed

import tinygraph as tg

try:
    from micrograd.engine import Value
except ImportError:
    Value = None


def random_plan(n_ops: int, seed: int = 0) -> list[tuple[int, int, int]]:
    rnd = random.Random(seed)
    plan = []
    for k in range(n_ops):
        r = rnd.random()
        kind = 0 if r < 0.4 else 1 if r < 0.8 else 2
        plan.append((kind, 200 + k - 1 - rnd.randrange(200), 200 + k - 1 - rnd.randrange(200)))
    return plan


def build_random(V: Callable, plan: list) -> Any:
    rnd = random.Random(1)
    vals = [V(rnd.uniform(-1, 1)) for _ in range(200)]
    for kind, i, j in plan:
        a = vals[i]
        if kind == 0:
            vals.append(a * vals[j])
        elif kind == 1:
            vals.append(a + vals[j])
        else:
            vals.append((a * 0.5).relu())
    root = vals[-1]
    for v in vals[-200:-1]:  # make sure the newest values all reach the root
        root = root + v
    return root


def build_mlp(V: Callable, n_points: int = 100) -> Any:
    """micrograd's demo: loss of MLP(2, [16, 16, 1]) on `n_points` 2-D points."""
    rnd = random.Random(2)
    sizes = [2, 16, 16, 1]
    layers = [[([V(rnd.uniform(-1, 1)) for _ in range(n_in)], V(0.0)) for _ in range(n_out)]
              for n_in, n_out in zip(sizes, sizes[1:])]
    params = [p for layer in layers for w, b in layer for p in w + [b]]
    points = [(rnd.gauss(0, 1), rnd.gauss(0, 1)) for _ in range(n_points)]
    labels = [1.0 if x0 * x1 > 0 else -1.0 for x0, x1 in points]

    def model(x: list) -> Any:
        for depth, layer in enumerate(layers):
            out = []
            for w, b in layer:
                act = sum((wi * xi for wi, xi in zip(w, x)), b)
                out.append(act.relu() if depth < len(layers) - 1 else act)
            x = out
        return x[0]

    scores = [model([V(x0), V(x1)]) for x0, x1 in points]
    losses = [(1 + -yi * s).relu() for yi, s in zip(labels, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = 1e-4 * sum(p * p for p in params)
    return data_loss + reg_loss


def build_chain(V: Callable, depth: int) -> tuple[Any, Any]:
    x = V(0.5)
    y = x
    for _ in range(depth // 2):
        y = y * 1.0 + 1.0  # two ops deeper
    return x, y


def count_nodes(root: Any) -> int:
    """Nodes in the graph (either library), walked without recursion."""
    children = (lambda v: v.parents) if isinstance(root, tg.Node) else (lambda v: v._prev)
    seen, stack = {id(root)}, [root]
    while stack:
        for p in children(stack.pop()):
            if id(p) not in seen:
                seen.add(id(p))
                stack.append(p)
    return len(seen)


def bytes_per_node(build: Callable[[], Any], n_nodes: int) -> float:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    root = build()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del root
    return used / n_nodes


def measure(lib: str, build: Callable[[], Any], repeat: int) -> dict:
    """Per-node build (gc on and off) and backward times, and bytes per node."""
    root = build()
    n = count_nodes(root)
    del root
    build_on = median_time(build, repeat)
    gc.disable()
    try:
        build_off = median_time(build, repeat)
    finally:
        gc.enable()
    backward = median_time(lambda root: root.backward(), repeat, setup=build)
    return {"lib": lib, "nodes": n, "build": build_on / n * 1e6, "build_off": build_off / n * 1e6,
            "backward": backward / n * 1e6, "bytes": bytes_per_node(build, n)}


def chain_case(lib: str, V: Callable, depth: int) -> list:
    gc.collect()
    t_build, (x, y) = timed(lambda: build_chain(V, depth))
    try:
        t_back, _ = timed(y.backward)
        back = f"{t_back:.2f} s"
        ok = abs(float(x.grad) - 1.0) < 1e-12
    except RecursionError:
        back, ok = "RecursionError", False
    ref = weakref.ref(x) if lib == "tinygraph" else None
    t0 = time.process_time()
    del x, y
    freed = "by refcount" if ref is not None and ref() is None else "by gc.collect()"
    if ref is None or ref() is not None:
        gc.collect()
    t_free = time.process_time() - t0
    return [lib, f"{depth:,}", f"{t_build:.2f} s", back, "yes" if ok else "no", f"{t_free:.2f} s ({freed})"]


def graph_cases(n_ops: int, points: int) -> list[tuple[str, Callable[[Callable], Callable[[], Any]]]]:
    """(case name, make) for the random and mlp cases: make(V)() builds the graph with value class V."""
    plan = random_plan(n_ops)
    return [(f"random {n_ops:,} ops", lambda V: lambda: build_random(V, plan)),
            (f"mlp {points} points", lambda V: lambda: build_mlp(V, points))]


def deep_recursion(lib: str) -> int:
    """The recursion limit to measure `lib` with: micrograd's backward is recursive."""
    return max(sys.getrecursionlimit(), 100_000) if lib == "micrograd" else sys.getrecursionlimit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small graphs, few repeats")
    args = parser.parse_args()
    n_ops, points, depth, repeat = (10_000, 20, 100_000, 3) if args.quick else (100_000, 100, 1_000_000, 5)
    libs = [("tinygraph", tg.Node)] + ([("micrograd", Value)] if Value else [])
    print(machine())
    if not Value:
        print("micrograd not installed: pip install -e '.[bench]' to compare")

    rows = []
    limit = sys.getrecursionlimit()
    for case, make in graph_cases(n_ops, points):
        results = []
        for lib, V in libs:
            sys.setrecursionlimit(deep_recursion(lib))
            try:
                results.append(measure(lib, make(V), repeat))
            finally:
                sys.setrecursionlimit(limit)
        ref = results[-1]
        for r in results:
            rows.append([case, r["lib"], f"{r['nodes']:,}", f"{r['build']:.2f}", f"{r['build_off']:.2f}",
                         f"{r['backward']:.2f}", f"{r['bytes']:.0f}",
                         f"{r['build'] / ref['build']:.2f}", f"{r['backward'] / ref['backward']:.2f}"])
    print()
    print(table(["case", "library", "nodes", "build us/node", "build gc off", "backward us/node", "bytes/node",
                 "build ratio", "backward ratio"], rows))
    print("(ratios: this library / micrograd; below 1 is faster)" if Value else "")
    print()
    print(table(["chain y = y * 1.0 + 1.0", "ops deep", "build", "backward", "grad ok", "free"],
                [chain_case(lib, V, depth) for lib, V in libs]))


if __name__ == "__main__":
    main()
