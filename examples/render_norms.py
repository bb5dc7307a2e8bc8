"""Draw LayerNorm, BatchNorm and the mean's "triangle" after a backward pass.

Forward values are black, gradients red; every edge carries the gradient that
flowed back along it. Fan-outs (a node used along two or more paths) are blue,
and their boxes list each incoming gradient above the sum: the triangle of
seed 003 (x -> mu -> xc and x -> xc) answers itself.

    python examples/render_norms.py [--out-dir DIR]    # DIR: . by default
    python examples/render_norms.py --out-dir docs/images   # the README's figures

Writes layernorm.png, batchnorm.png and triangle.png, each in the direction that keeps
it within 1:3..3:1, with the bundled graphviz-pure, no system Graphviz needed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import tinygraph as tg


def triangle() -> tg.Node:
    """xc = x - mean(x), with a loss that weights each entry differently."""
    x = tg.Node([1.0, 2.0, 6.0], name="x")
    mu = x.mean()
    mu.name = "mu"
    xc = x - mu
    xc.name = "xc"
    loss = (xc * np.array([1.0, 2.0, 3.0])).sum()
    loss.name = "loss"
    loss.backward()
    return loss


def layernorm() -> tg.Node:
    """tg.nn.LayerNorm(4) on one row, seeded with a fixed upstream gradient."""
    layer = tg.nn.LayerNorm(4)
    layer.weight.data[...] = [1.0, 0.5, 2.0, 1.0]
    y = layer(tg.Node([1.0, 2.0, 4.0, 7.0], name="x"))
    y.backward(np.array([0.5, -1.0, 0.25, 1.0]))
    return y


def batchnorm() -> tg.Node:
    """tg.nn.BatchNorm1d(2) on a batch of 3, seeded with a fixed upstream gradient."""
    layer = tg.nn.BatchNorm1d(2)
    layer.weight.data[...] = [1.0, 2.0]
    y = layer(tg.Node([[1.0, -2.0], [3.0, 0.0], [8.0, 1.0]], name="x"))
    y.backward(np.array([[0.5, -1.0], [1.0, 0.25], [-0.5, 2.0]]))
    return y


def main(out_dir: Path) -> None:
    for name, build in (("layernorm", layernorm), ("batchnorm", batchnorm), ("triangle", triangle)):
        path = tg.draw(build(), out_dir / f"{name}.png", highlight_fanout=True)
        print("wrote", path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path("."), help="where to write the pictures (default: .)")
    main(parser.parse_args().out_dir)
