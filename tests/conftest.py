"""Shared test helpers: an independent central-difference gradient and seeded generators."""

import numpy as np
import pytest


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
