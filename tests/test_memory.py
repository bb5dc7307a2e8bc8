"""Graphs hold no reference cycles: they are freed by reference counting alone (issue 8)."""

import gc
import weakref

import numpy as np

import tinygraph as tg


def _no_cycles_left(build):
    """Build, backward and drop a graph with the cycle collector off; return what survived."""
    gc.collect()
    gc.disable()
    try:
        x, root = build()
        root.backward() if root.size == 1 else root.backward(np.ones(root.shape))
        grad = float(np.sum(x.grad))
        refs = [weakref.ref(x), weakref.ref(root)]
        del x, root
        alive = [r for r in refs if r() is not None]
        garbage = gc.collect()  # what the cycle collector would have had to free
    finally:
        gc.enable()
    return grad, alive, garbage


def test_million_deep_chain_builds_runs_backward_and_frees_without_the_collector():
    def chain():
        x = tg.Node(0.5, name="x")
        y = x
        for _ in range(500_000):
            y = y * 1.0 + 1.0  # one million op nodes deep
        return x, y
    grad, alive, garbage = _no_cycles_left(chain)
    assert grad == 1.0
    assert alive == []
    assert garbage == 0


def test_tensor_graph_with_shared_inputs_leaves_no_garbage():
    def layer():
        x = tg.Node(np.arange(12.0).reshape(3, 4), name="x")
        y = tg.nn.functional.layer_norm(x, np.ones(4), np.zeros(4))
        return x, (y * y).sum() + x.mean()
    grad, alive, garbage = _no_cycles_left(layer)
    assert np.isfinite(grad)
    assert alive == []
    assert garbage == 0


def test_contributions_outlive_their_consumers():
    x = tg.Node([1.0, 2.0], name="x")
    (x * 3.0 + x).sum().backward()  # the consumers are dropped at once
    gc.collect()
    consumers = [c for c, _ in x.contributions]
    assert len(consumers) == 2 and all(c is None for c in consumers)
    np.testing.assert_allclose(sum(g for _, g in x.contributions), x.grad)
