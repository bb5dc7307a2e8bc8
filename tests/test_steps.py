"""tg.backward_steps: the backward pass one node at a time."""

import numpy as np
import pytest
from conftest import triangle
from hypothesis import given
from test_random_graphs import SETTINGS, build, graphs

import tinygraph as tg


def layer_graph():
    """A small graph with fan-out, a repeated parent, a constant and a scalar root."""
    x = tg.Node([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]], name="x")
    w = tg.Node([0.3, -0.2, 0.7], name="w")
    h = (x * w).tanh()
    sq = h * h
    loss = (sq.mean() + 2 * h.sum()) / 3
    return loss


def consumers(nodes):
    out = {id(n): [] for n in nodes}
    for n in nodes:
        for p in n.parents:
            out[id(p)].append(n)
    return out


def test_str_reads_as_equation_gradient_and_contributions():
    x, mu, xc = triangle()
    steps = [str(s) for s in tg.backward_steps(xc, np.array([1.0, 2.0, 6.0]))]
    assert steps == [
        "step 0  xc = x - mu   grad=[1, 2, 6]   -> x += [1, 2, 6], mu += -9",
        "step 1  mu = mean(x)   grad=-9   -> x += [-3, -3, -3]",
        "step 2  x   grad=[-2, -1, 3]   (leaf)",
    ]


def test_steps_come_in_reverse_topological_order():
    loss = layer_graph()
    steps = list(tg.backward_steps(loss))
    assert [s.index for s in steps] == list(range(len(steps)))
    position = {id(s.node): s.index for s in steps}
    nodes = [n for n in tg.topological(loss) if not n.is_constant]
    assert len(position) == len(nodes)  # every node but the constants, leaves included, exactly once
    for node in nodes:
        for p in node.parents:
            assert p.is_constant or position[id(p)] > position[id(node)]


def test_exhausting_the_steps_equals_backward():
    a, b = layer_graph(), layer_graph()
    a.backward()
    for _ in tg.backward_steps(b):
        pass
    for na, nb in zip(tg.topological(a), tg.topological(b)):
        np.testing.assert_array_equal(na.grad, nb.grad)
        assert [(c.op, g.tolist()) for c, g in na.contributions] == [(c.op, g.tolist()) for c, g in nb.contributions]


def test_step_grad_and_contributions_match_the_nodes():
    loss = layer_graph()
    steps = list(tg.backward_steps(loss))
    received = {id(n): [] for n in tg.topological(loss)}
    for step in steps:
        np.testing.assert_array_equal(step.grad, step.node.grad)  # one pass from zero
        assert [p for p, _ in step.contributions] == list(step.node.parents)
        for p, g in step.contributions:
            received[id(p)].append((step.node, g))
    for node in tg.topological(loss):
        got = node.contributions
        assert [c for c, _ in got] == [c for c, _ in received[id(node)]]
        for (_, g1), (_, g2) in zip(got, received[id(node)]):
            np.testing.assert_array_equal(g1, g2)


def test_repeated_parent_sends_two_contributions():
    a = tg.Node(3.0, name="a")
    y = a * a
    y.name = "y"
    (step, leaf) = tg.backward_steps(y)
    assert [(p.name, float(g)) for p, g in step.contributions] == [("a", 3.0), ("a", 3.0)]
    assert str(step) == "step 0  y = a * a   grad=1   -> a += 3, a += 3"
    assert float(leaf.grad) == 6.0 and str(leaf) == "step 1  a   grad=6   (leaf)"


def test_grad_between_steps_is_earlier_passes_plus_what_has_arrived():
    loss = layer_graph()
    loss.backward()  # start from non-zero grads: each step must add exactly its own gradient
    nodes = tg.topological(loss)
    before = {id(n): n.grad.copy() for n in nodes}
    arrived = {id(n): np.zeros(n.shape) for n in nodes}
    arrived[id(loss)] = np.ones(loss.shape)  # the seed is there from the start
    for step in tg.backward_steps(loss):
        for p, g in step.contributions:
            arrived[id(p)] = arrived[id(p)] + g
        for n in nodes:
            np.testing.assert_allclose(n.grad, before[id(n)] + arrived[id(n)], rtol=1e-14, err_msg=f"after {step}")
    for n in nodes:  # the pass has counted once: exactly twice one pass
        np.testing.assert_allclose(n.grad, 2 * before[id(n)], rtol=1e-14)


def test_readme_example_x_grad_changes_where_the_step_says_so():
    x, mu, xc = triangle()
    w = tg.Node([1.0, 2.0, 6.0], name="w")
    loss = (xc * w).sum()
    seen = [(str(step), x.grad.tolist()) for step in tg.backward_steps(loss)]
    assert "x += [1, 2, 6]" in seen[3][0] and seen[3][1] == [1.0, 2.0, 6.0]
    assert seen[2][1] == [0.0, 0.0, 0.0] and seen[4][1] == [-2.0, -1.0, 3.0]


def test_generator_is_lazy_and_an_abandoned_pass_leaves_nothing_behind():
    x, mu, xc = triangle()
    steps = tg.backward_steps(xc, np.ones(3))
    np.testing.assert_array_equal(x.grad, 0)  # nothing runs before the first next()
    next(steps)
    steps.close()  # abandon after one step
    np.testing.assert_array_equal(x.grad, 0)
    xc.zero_grad()
    xc.backward(np.array([1.0, 2.0, 6.0]))
    np.testing.assert_allclose(x.grad, [-2.0, -1.0, 3.0])


def test_bad_seed_raises_before_any_step():
    _, _, xc = triangle()
    with pytest.raises(ValueError, match="shape"):
        next(tg.backward_steps(xc))
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        next(tg.backward_steps(xc, np.ones(2)))


@SETTINGS
@given(graphs(max_ops=12))
def test_random_graphs_steps_equal_backward(graph):
    _, values = build(graph)
    _, again = build(graph)
    values[-1].backward()
    steps = list(tg.backward_steps(again[-1]))
    for a, b in zip(values, again):
        np.testing.assert_array_equal(a.grad, b.grad)
    position = {id(s.node): s.index for s in steps}
    for node in again:
        for p in node.parents:
            assert p.is_constant or position[id(p)] > position[id(node)]


def test_a_skipped_slot_does_not_shift_the_edges():
    """For op(x, x) whose vjp sends nothing along slot 0, the gradient belongs to slot 1."""
    @tg.op
    def second(a, b):
        return b * 1, lambda g: (None, g)

    x = tg.Node([1.0, 2.0], name="x")
    y = second(x, x)
    steps = list(tg.backward_steps(y, np.ones(2)))
    assert [(k, p) for k, p, _ in tg.core.sent_along(y)] == [(1, x)]
    assert [p for p, _ in steps[0].contributions] == [x]
    assert list(tg.render.edge_grads([y])) == [(y, 1)]
    assert steps[0].caption().startswith("second1 = second(x, x): grad [1, 1] -> x += [1, 1]")


def test_steps_are_numbered_without_gaps_when_some_nodes_get_no_gradient():
    @tg.op
    def stop(a):
        return a.copy(), lambda g: (None,)

    x = tg.Node([1.0, 2.0], name="x")
    hidden = stop(x * 3.0)  # x * 3.0 and its inputs receive nothing
    y = (hidden + x).sum()
    steps = list(tg.backward_steps(y))
    assert [s.index for s in steps] == list(range(len(steps)))
    assert [s.node.op or s.node.name for s in steps] == ["sum", "add", "stop", "x"]
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])
    assert [c.op for c, _ in x.contributions] == ["add"]


def test_a_pass_run_while_the_steps_are_paused_counts_once_and_so_do_the_steps():
    x, mu, xc = triangle()
    seed = np.array([1.0, 2.0, 6.0])
    steps = tg.backward_steps(xc, seed)
    next(steps)  # x has received [1, 2, 6] in the paused pass
    xc.backward(seed)  # a whole pass while the generator waits
    np.testing.assert_allclose(x.grad, [-1.0, 1.0, 9.0])  # finished pass + what the paused one has sent
    assert len(list(steps)) == 2
    np.testing.assert_allclose(x.grad, [-4.0, -2.0, 6.0])  # each pass propagated only its own gradient
