"""Drawing: how long tinygraph takes to render graphs to PNG and SVG, in one run.

    python benchmarks/render.py

Cases: a tensor LayerNorm graph (`tg.nn.functional.layer_norm`, 4x8 input, after
backward), a 400-node and a 1,000-node random scalar graph. Rendering runs Graphviz
(the bundled graphviz-pure, or a system `dot`) in a child process, so these are
wall-clock medians, not CPU time. Graphs over `max_nodes` (500 by default) are
refused with a message that says how to draw less, and a png or jpg of over 150 nodes
warns that it is slow; the table shows both.
Dense random graphs are slow to lay out: at 1,000 nodes both PNG and SVG ran into
tinygraph's 2-minute Graphviz limit in a trial, so above 500 nodes only `to_dot` and
the refusal are timed.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import warnings

import numpy as np
from _bench import machine, table
from scalar import build_random, random_plan

import tinygraph as tg


def wall_median(fn, repeat: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def layer_norm_graph() -> tg.Node:
    rng = np.random.default_rng(0)
    x = tg.Node(rng.standard_normal((4, 8)), name="x")
    w, b = tg.Node(np.ones(8), name="weight"), tg.Node(np.zeros(8), name="bias")
    y = tg.nn.functional.layer_norm(x, w, b)
    y.backward(rng.standard_normal((4, 8)))
    return y


def scalar_graph(n_nodes: int) -> tg.Node:
    """A random scalar graph with about `n_nodes` nodes (see benchmarks/scalar.py)."""
    root = build_random(tg.Node, random_plan(max(1, int(n_nodes / 1.07) - 400)))
    root.backward()
    return root


def main() -> None:
    print(machine())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, root in [("LayerNorm 4x8 (tensor)", layer_norm_graph()),
                            ("random scalar", scalar_graph(400)),
                            ("random scalar", scalar_graph(1000))]:
            n = len(tg.topological(root))
            limit = {"max_nodes": None} if n > 500 else {}
            dot = wall_median(lambda root=root, limit=limit: tg.to_dot(root, **limit))
            row = [label, f"{n:,}", f"{dot * 1e3:.0f} ms"]
            said = []
            for ext in ("png", "svg"):
                if n > 500:
                    row.append("not timed")
                    continue
                path = os.path.join(tmp, f"graph.{ext}")
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    t = wall_median(lambda root=root, path=path, limit=limit: tg.draw(root, path, **limit), repeat=3)
                row.append(f"{t:.2f} s")
                said += [f"{ext} warns: \"{str(caught[0].message)[:50]}...\""] if caught else []
            if n > 500:
                t0 = time.perf_counter()
                try:
                    tg.draw(root, os.path.join(tmp, "refused.png"))
                    row.append("not refused")
                except ValueError as exc:
                    row.append(f"refused in {(time.perf_counter() - t0) * 1e3:.0f} ms: \"{str(exc)[:60]}...\"")
            else:
                row.append("; ".join(said))
            rows.append(row)
            print(rows[-1], flush=True)
    print()
    print(table(["graph", "nodes", "to_dot", "draw .png", "draw .svg", "default draw (max_nodes=500)"], rows))


if __name__ == "__main__":
    main()
