"""Seed 002: the blog post's per-element layer-norm backward pass, checked against autograd.

The post normalises with eps on sigma, z = a (x - mu) / (sigma + eps) + b, and
derives every dz_k/dx_i with a Kronecker delta. Here those formulas are typed
in element by element (loops, no vectorisation) and compared with what
tinygraph's autograd gets from the same forward pass built from primitive ops.

    python examples/layernorm_blog.py [--out-dir DIR]
"""

import argparse
from pathlib import Path

import numpy as np

import tinygraph as tg


def blog_gradients(dout, x, a, eps):
    """dL/dx, dL/da, dL/db from the post's summary formulas, one element at a time."""
    n = len(x)
    mu = sum(x) / n
    sigma = np.sqrt(sum((xr - mu) ** 2 for xr in x) / n)
    dmu_dx = 1.0 / n
    dx = np.zeros(n)
    for i in range(n):
        dsigma_dxi = (x[i] - mu) / (n * sigma)
        for k in range(n):
            delta = 1.0 if i == k else 0.0
            dzk_dxi = a[k] * ((delta - dmu_dx) / (sigma + eps) - (x[k] - mu) / (sigma + eps) ** 2 * dsigma_dxi)
            dx[i] += dout[k] * dzk_dxi
    da = np.array([dout[k] * (x[k] - mu) / (sigma + eps) for k in range(n)])
    db = np.array([dout[k] * 1.0 for k in range(n)])
    return dx, da, db


def main(out_dir: Path) -> None:
    rng = np.random.default_rng(2)
    n, eps = 6, 1e-5
    x, a, b, dout = rng.normal(size=n), rng.normal(1.0, 0.3, n), rng.normal(size=n), rng.normal(size=n)

    xn, an, bn = tg.Node(x, name="x"), tg.Node(a, name="a"), tg.Node(b, name="b")
    z = tg.nn.functional.layer_norm(xn, an, bn, eps=eps, eps_on_sigma=True)
    z.backward(dout)

    dx, da, db = blog_gradients(dout, x, a, eps)
    print("layer norm with eps on sigma: z = a (x - mu) / (sigma + eps) + b,  N =", n)
    for label, mine, auto in (("dL/dx", dx, xn.grad), ("dL/da", da, an.grad), ("dL/db", db, bn.grad)):
        print(f"{label}: blog formulas {np.array2string(mine, precision=6)}")
        print(f"{'':6} autograd      {np.array2string(auto, precision=6)}")
        print(f"{'':6} max |difference| = {np.abs(mine - auto).max():.1e}   rel_error = {tg.rel_error(mine, auto):.1e}")

    usual = tg.reference.layernorm_backward(dout, x, a, eps)[0]
    print(f"the usual sqrt(var + eps) layer norm gives a different dx: max |difference| = "
          f"{np.abs(usual - dx).max():.1e} (eps sits in another place)")

    picture = tg.draw(z, out_dir / "layernorm_blog.png")
    print(f"wrote {picture}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path("."), help="where to write the picture (default: .)")
    main(parser.parse_args().out_dir)
