"""Drawing: how long `tg.draw` takes to write PNG and SVG, and where the time goes, in one run.

    python benchmarks/render.py

Cases: a tensor LayerNorm graph (`tg.nn.functional.layer_norm`, 4x8 input), a random
scalar graph of about 400 nodes (see benchmarks/scalar.py) and a LayerNorm built from
scalar Nodes (n = 20 and 60 entries: 144 and 424 nodes). All after backward.

Columns, wall-clock medians (Graphviz runs in a child process):
- `to_dot`: the DOT text;
- `layout`: Graphviz laying the picture out as SVG, in the automatic direction;
- `draw .svg`, `draw .png`: `tg.draw` end to end; a png is at most 8,000 pixels long (Graphviz
  shrinks a bigger picture to fit, a lower dpi);
- `png before`: what `tg.draw` did before that limit, as the reference measured in the same run:
  `-Tpng` at 144 dpi up to 150 nodes and 72 dpi above, at full size.
A layout that takes Graphviz over 2 minutes stops with tinygraph's time limit and says so.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np
from _bench import machine, table
from scalar import build_random, random_plan

import tinygraph as tg
from tinygraph import render
from tinygraph.drawing import picture


def wall(fn, repeat: int) -> float:
    """Median wall seconds of `fn()` over `repeat` runs, after one warm-up run when repeat > 1."""
    if repeat > 1:
        fn()
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


def random_graph(n_nodes: int) -> tg.Node:
    """A random scalar graph with about `n_nodes` nodes (see benchmarks/scalar.py)."""
    root = build_random(tg.Node, random_plan(max(1, int(n_nodes / 1.07) - 400)))
    root.backward()
    return root


def scalar_layer_norm(n: int) -> tg.Node:
    """sum(LayerNorm(x)) of n entries, every entry its own scalar Node: long edges from x to xc and y."""
    xs = [tg.Node(float(v), name=f"x{i}") for i, v in enumerate(np.random.default_rng(0).normal(size=n))]
    mu = sum(xs[1:], xs[0]) * (1.0 / n)
    xc = [x - mu for x in xs]
    var = sum((c * c for c in xc[1:]), xc[0] * xc[0]) * (1.0 / n)
    std = (var + 1e-5) ** 0.5
    y = [c / std for c in xc]
    loss = sum(y[1:], y[0])
    loss.backward()
    return loss


def measure(label: str, root: tg.Node, repeat: int, tmp: str) -> list[str]:
    """One table row: the case's figures."""
    pic = picture(root)
    n = len(pic.boxes)
    row = [label, f"{n:,}", pic.rankdir, f"{wall(lambda: tg.to_dot(root), 5) * 1e3:.0f} ms"]
    source = render.dot_source(pic)
    try:
        row.append(f"{wall(lambda: render.render(source, 'svg'), repeat):.2f} s")
    except RuntimeError as exc:
        return row + [f"stopped: {str(exc)[:40]}", "", "", ""]
    svg_path, png_path = os.path.join(tmp, "g.svg"), os.path.join(tmp, "g.png")
    row.append(f"{wall(lambda: tg.draw(root, svg_path), repeat):.2f} s")
    png = wall(lambda: tg.draw(root, png_path), repeat)
    width, height = render.png_size(open(png_path, "rb").read())
    old = render.png_size(render.render(source, "png", 144 if n <= 150 else 72))
    before = wall(lambda: render.render(source, "png", 144 if n <= 150 else 72), repeat)
    return row + [f"{png:.2f} s ({width}x{height})", f"{before:.2f} s ({old[0]}x{old[1]})", f"{before / png:.1f}x"]


def main() -> None:
    print(machine())
    cases = [("LayerNorm 4x8 (tensor)", layer_norm_graph, 5), ("random scalar", lambda: random_graph(400), 3),
             ("scalar LayerNorm, n=20", lambda: scalar_layer_norm(20), 3),
             ("scalar LayerNorm, n=60", lambda: scalar_layer_norm(60), 1)]
    if "--quick" in sys.argv:
        cases = cases[:2]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 8,000-pixel warning of the big ones
        for label, build, repeat in cases:
            rows.append(measure(label, build(), repeat, tmp))
            print(rows[-1], flush=True)
    print()
    print(table(["graph", "nodes", "rankdir", "to_dot", "layout", "draw .svg", "draw .png", "png before",
                 "png speed-up"], rows))


if __name__ == "__main__":
    main()
