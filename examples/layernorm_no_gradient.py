"""Seeds 000/001: "my manual derivative of layer norm implies no gradient flow".

The learner summed dy_i/dx_j over j and got 0. That sum is a row sum of the
Jacobian, and it is 0 for a good reason: adding the same number to every x
changes nothing after normalisation. The Jacobian itself is not zero, and
backprop never sums its rows: it multiplies by the upstream gradient.

    python examples/layernorm_no_gradient.py [--out-dir DIR]
"""

import argparse
from pathlib import Path

import numpy as np

import tinygraph as tg

np.set_printoptions(precision=4, suppress=True)


def main(out_dir: Path) -> None:
    rng = np.random.default_rng(0)
    n = 5
    x = rng.normal(2.0, 3.0, n)
    eps = 1e-5

    jac = tg.jacobian(lambda v: tg.nn.functional.layer_norm(v, eps=eps), x)  # J[i, j] = dy_i / dx_j
    print(f"x = {x}")
    print("Jacobian dy_i/dx_j of layer norm (computed by tinygraph):")
    print(jac)
    print(f"largest |J[i, j]| = {np.abs(jac).max():.4f}   (not zero)")

    row_sums = jac.sum(axis=1)
    print(f"row sums sum_j dy_i/dx_j = {row_sums}   max |row sum| = {np.abs(row_sums).max():.1e}")
    print("  -> the learner's 0: shifting every x by the same amount leaves y unchanged")

    sigma = np.sqrt(x.var() + eps)
    y = (x - x.mean()) / sigma
    analytic = (n * np.eye(n) - 1.0 - np.outer(y, y)) / (n * sigma)
    print(f"analytic (1/(N sigma)) (N I - 1 - y y^T) vs tinygraph: rel_error = {tg.rel_error(jac, analytic):.1e}")

    dout = rng.normal(size=n)
    xn = tg.Node(x, name="x")
    out = tg.nn.functional.layer_norm(xn, eps=eps)
    out.backward(dout)
    print(f"upstream gradient dL/dy = {dout}")
    print(f"dL/dx = dout @ J = {xn.grad}   |dL/dx| = {np.linalg.norm(xn.grad):.4f}   (not zero)")
    print(f"dout @ J vs backward(): rel_error = {tg.rel_error(dout @ jac, xn.grad):.1e}")
    print(f"sum of dL/dx = {xn.grad.sum():.1e}   (the gradient has no component along 'shift everything')")

    picture = tg.draw(out, out_dir / "layernorm_no_gradient.png")
    print(f"wrote {picture}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path("."), help="where to write the picture (default: .)")
    main(parser.parse_args().out_dir)
