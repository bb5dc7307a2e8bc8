"""Seed 004: cs231n's batch-norm backward pass, staged along the graph and in closed form.

The staged solution walks the numbered graph x -> mu -> xc -> sq -> var -> std ->
istd -> xhat -> y backwards, one edge at a time; the compact formula does it in
three reductions. Both agree with autograd to rounding. The seed's puzzle, "the
two differ by 1e-10 vs 5e-13, and the answer without the dv/dmu term is the
better one", has two parts: dv/dmu is 0 (the x - mu sum to zero; in floats it is
~1e-15), and such gaps are rounding noise, far below what a missing term gives.

    python examples/batchnorm_cs231n.py [--out-dir DIR]
"""

import argparse
from pathlib import Path

import numpy as np

import tinygraph as tg

ref = tg.reference


def main(out_dir: Path) -> None:
    rng = np.random.default_rng(231)
    n, d, eps = 4, 5, 1e-5
    x = 5 * rng.normal(size=(n, d)) + 12  # the assignment's test input: a large mean
    gamma, beta = rng.normal(1.0, 0.2, d), rng.normal(size=d)
    dout = rng.normal(size=(n, d))

    xn, gn, bn = tg.Node(x, name="x"), tg.Node(gamma, name="weight"), tg.Node(beta, name="bias")
    y = tg.nn.functional.batch_norm(xn, gn, bn, eps=eps)
    y.backward(dout)
    auto = (xn.grad, gn.grad, bn.grad)

    staged = ref.batchnorm_backward_staged(dout, x, gamma, eps)
    compact = ref.batchnorm_backward(dout, x, gamma, eps)
    with_dvdmu = ref.batchnorm_backward_terms(dout, x, gamma, eps, dv_dmu=True)
    without = ref.batchnorm_backward_terms(dout, x, gamma, eps, dv_dmu=False)

    print(f"batch norm, x of shape {x.shape}; rel_error against tinygraph's autograd:")
    print(f"{'':28}{'dx':>10}{'dgamma':>10}{'dbeta':>10}")
    for label, grads in (("staged (numbered graph)", staged), ("compact formula", compact),
                         ("terms with dv/dmu", with_dvdmu), ("terms without dv/dmu", without)):
        print(f"{label:<28}" + "".join(f"{tg.rel_error(g, a):>10.1e}" for g, a in zip(grads, auto)))
    print(f"staged vs compact dx: rel_error = {tg.rel_error(staged[0], compact[0]):.1e}")

    xc = x - x.mean(axis=0)
    dv_dmu = -2.0 / n * xc.sum(axis=0)
    print(f"\ndv/dmu = -2/N * sum(x - mu): largest |entry| = {np.abs(dv_dmu).max():.1e}"
          "   (zero in exact arithmetic: the x - mu sum to 0)")
    print(f"dropping the dv/dmu term changes dx by at most {np.abs(with_dvdmu[0] - without[0]).max():.1e}")

    def loss(v):
        return float(np.sum(ref.batchnorm_forward(v, gamma, beta, eps) * dout))
    numerical = tg.numerical_grad(loss, x)
    no_mu = with_dvdmu[0] - (-np.sum(dout * gamma, axis=0) / np.sqrt(x.var(axis=0) + eps)) / n
    print(f"\nfor scale: central differences vs autograd {tg.rel_error(numerical, auto[0]):.1e}; "
          f"a dx missing the path through mu {tg.rel_error(no_mu, auto[0]):.1e}")
    print("  -> every form agrees with autograd to rounding; gaps such as 1e-10 against 5e-13 are rounding")
    print("     (or finite-difference) noise on particular entries, while a missing term shows up as ~1")

    picture = tg.draw(y, out_dir / "batchnorm_cs231n.png")
    print(f"wrote {picture}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path("."), help="where to write the picture (default: .)")
    main(parser.parse_args().out_dir)
