"""Seed 003: batch norm's "triangle of death": x -> mu -> xc and x -> xc.

Applying the chain rule to the triangle gives 1 - 1 = 0 and the learner concludes
that the gradient dies. 1 - 1 = 0 is the sum of the partial derivatives; the
gradient is different: each path carries the upstream gradient, and the
contributions of the two paths add up entry by entry, weighted by it.

    python examples/batchnorm_triangle.py [--out-dir DIR]
"""

import argparse
from pathlib import Path

import numpy as np

import tinygraph as tg


def triangle(x):
    """xc = x - mean(x): the first two steps of batch norm (one feature, a batch of len(x))."""
    x = tg.Node(x, name="x")
    mu = x.mean()
    mu.name = "mu"
    xc = x - mu
    xc.name = "xc"
    return x, xc


def main(out_dir: Path) -> None:
    x_values = np.array([1.0, 2.0, 6.0, 3.0])
    n = len(x_values)
    dout = np.array([1.0, -2.0, 0.5, 3.0])  # dL/dxc, from the rest of the network

    jac = tg.jacobian(lambda v: v - v.mean(), x_values)
    print("dxc_i/dx_j = delta_ij - 1/N:")
    print(jac)
    print(f"sum of all partials: {jac.sum():.3g}  (the '1 - 1 = 0': per column, 1 - N * (1/N))")

    x, xc = triangle(x_values)
    print(f"\nupstream gradient dL/dxc = {dout}")
    for path in tg.paths(xc, x, grad=dout):
        print(f"  path {path}")
    xc.backward(dout)
    print(f"dL/dx = sum of the paths = {x.grad}   (not zero)")
    print(f"      = dout - mean(dout) = {dout - dout.mean()}")

    x_ones, xc_ones = triangle(x_values)
    xc_ones.backward(np.ones(n))
    print(f"\nonly for dL/dxc = ones (L = sum(xc), which is always 0) is the gradient zero: {x_ones.grad}")

    picture = tg.draw(xc, out_dir / "batchnorm_triangle.png", items=4)
    print(f"wrote {picture}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path("."), help="where to write the picture (default: .)")
    main(parser.parse_args().out_dir)
