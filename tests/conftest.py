"""Shared test helpers: an independent central-difference gradient and seeded generators."""

import numpy as np
import pytest

import tinygraph as tg


def central_diff(f, x, eps=1e-6):
    """d f(x) / dx by central differences; f maps an ndarray to a float. Independent of tinygraph."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        hi = f(x)
        x[i] = old - eps
        lo = f(x)
        x[i] = old
        grad[i] = (hi - lo) / (2 * eps)
    return grad


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def triangle(values=(1.0, 2.0, 4.0)):
    """xc = x - mean(x), the graph whose two paths from x learners miss: returns (x, mu, xc)."""
    x = tg.Node(list(values), name="x")
    mu = x.mean()
    mu.name = "mu"
    xc = x - mu
    xc.name = "xc"
    return x, mu, xc


def run_cli(capsys, *argv):
    """main(argv) -> (exit status, stdout, stderr); argparse errors exit through SystemExit."""
    try:
        from tinygraph.cli import main

        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err
