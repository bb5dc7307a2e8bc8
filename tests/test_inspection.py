"""tg.paths (the gradient split over every path) and tg.explain (the graph as a table)."""

import numpy as np
import pytest
from conftest import triangle
from hypothesis import given
from test_random_graphs import SETTINGS, build, graphs

import tinygraph as tg

# -- paths ------------------------------------------------------------------------------

def test_triangle_direct_path_carries_g_and_mean_path_minus_mean_g():
    x, mu, xc = triangle()
    g = np.array([1.0, 2.0, 6.0])
    direct, via_mean = tg.paths(xc, x, grad=g)
    assert direct.nodes == (x, xc) and via_mean.nodes == (x, mu, xc)
    np.testing.assert_array_equal(direct.grad, g)
    np.testing.assert_allclose(via_mean.grad, np.full(3, -g.mean()), rtol=1e-15)
    assert str(direct) == "x -> xc: [1, 2, 6]"
    assert str(via_mean) == "x -> mu -> xc: [-3, -3, -3]"
    xc.backward(g)
    np.testing.assert_allclose(direct.grad + via_mean.grad, x.grad, rtol=1e-15)


def test_paths_seed_defaults_to_ones_and_checks_its_shape():
    x, _, xc = triangle()
    direct, via_mean = tg.paths(xc, x)
    np.testing.assert_array_equal(direct.grad, np.ones(3))
    np.testing.assert_allclose(via_mean.grad, -np.ones(3))
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        tg.paths(xc, x, grad=np.ones(2))


def test_repeated_parent_gives_two_paths():
    a = tg.Node(3.0, name="a")
    y = a * a
    y.name = "y"
    p0, p1 = tg.paths(y, a)
    assert p0.nodes == p1.nodes == (a, y)
    assert (p0.inputs, p1.inputs) == ((0,), (1,))
    assert float(p0.grad) == float(p1.grad) == 3.0
    assert [str(p) for p in (p0, p1)] == ["a -> y: 3", "a -> y: 3"]


def test_paths_to_an_intermediate_node_and_to_the_root_itself():
    x, mu, xc = triangle()
    (only,) = tg.paths(xc, mu, grad=np.array([1.0, 2.0, 6.0]))
    assert only.nodes == (mu, xc) and float(only.grad) == -9.0
    (self_path,) = tg.paths(xc, xc, grad=np.array([1.0, 2.0, 6.0]))
    assert self_path.nodes == (xc,)
    np.testing.assert_array_equal(self_path.grad, [1.0, 2.0, 6.0])


def test_too_many_paths_raises_with_the_count_without_enumerating():
    x = tg.Node(1.0, name="x")
    y = x
    for _ in range(12):
        y = y + y  # each doubling doubles the number of paths
    with pytest.raises(ValueError, match="there are 4096 paths"):
        tg.paths(y, x)
    assert len(tg.paths(y, x, max_paths=4096)) == 4096
    for _ in range(300):
        y = y + y
    with pytest.raises(ValueError, match=f"there are {2 ** 312} paths"):
        tg.paths(y, x)


def test_leaf_not_in_graph_and_wrong_types():
    x, _, xc = triangle()
    with pytest.raises(ValueError, match="not in the graph"):
        tg.paths(xc, tg.Node(1.0))
    with pytest.raises(ValueError, match="not in the graph"):
        tg.paths(x, xc)  # the wrong way round: x does not depend on xc
    with pytest.raises(TypeError, match="leaf must be a Node"):
        tg.paths(xc, [1.0, 2.0, 4.0])


def test_paths_leave_grads_and_contributions_untouched():
    x, mu, xc = triangle()
    xc.backward(np.array([1.0, 2.0, 6.0]))
    before = [(n.grad.copy(), [(c, g.copy()) for c, g in n.contributions]) for n in (x, mu, xc)]
    tg.paths(xc, x, grad=np.array([5.0, 5.0, 5.0]))
    for n, (grad, contrib) in zip((x, mu, xc), before):
        np.testing.assert_array_equal(n.grad, grad)
        assert [c for c, _ in n.contributions] == [c for c, _ in contrib]


def test_an_edge_without_gradient_is_a_path_carrying_zeros():
    @tg.op
    def stop_second(a, b):
        return a + b, lambda g: (g, None)
    x = tg.Node([1.0, 2.0], name="x")
    y = stop_second(x, x * 2)
    through_mul = tg.paths(y, x, grad=np.ones(2))[1]
    np.testing.assert_array_equal(through_mul.grad, [0.0, 0.0])


def test_a_deep_chain_has_one_path_and_no_recursion():
    x = tg.Node(0.5, name="x")
    y = x
    for _ in range(50_000):
        y = -y
    (path,) = tg.paths(y, x)
    assert len(path.nodes) == 50_001 and float(path.grad) == 1.0


@SETTINGS
@given(graphs(max_ops=10))
def test_path_gradients_sum_to_every_nodes_grad(graph):
    _, values = build(graph)
    root = values[-1]
    nodes = tg.topological(root)
    found = {id(n): tg.paths(root, n, max_paths=100_000) for n in nodes}
    assert all(not n.grad.any() and not n.contributions for n in nodes)  # paths touched no .grad
    root.backward()
    for n in nodes:
        total = sum((p.grad for p in found[id(n)]), np.zeros(n.shape))
        np.testing.assert_allclose(total, n.grad, rtol=1e-9, atol=1e-12)
        assert all(p.nodes[0] is n and p.nodes[-1] is root for p in found[id(n)])
        assert len(found[id(n)]) == tg.inspection.count_paths(root, n)


# -- explain ------------------------------------------------------------------------------

def test_explain_table_of_the_triangle():
    x, mu, xc = triangle()
    xc.backward(np.array([1.0, 2.0, 6.0]))
    table = tg.explain(xc)
    assert str(table) == repr(table) == (
        "#  name  op    parents  value                     grad\n"
        "-  ----  ----  -------  ------------------------  -----------\n"
        "0  x     leaf           [1, 2, 4]                 [-2, -1, 3]\n"
        "1  mu    mean  x        2.333                     -9\n"
        "2  xc    sub   x, mu    [-1.333, -0.3333, 1.667]  [1, 2, 6]"
    )


def test_explain_rows_hold_the_data_in_topological_order():
    x = tg.Node([[1.0, 2.0], [3.0, 5.0]], name="x")
    with tg.scope("norm"):
        m = x.mean(axis=0)
        y = (x - m) * 2
    loss = y.sum()
    loss.backward()
    table = tg.explain(loss)
    nodes = tg.topological(loss)
    assert [r["name"] for r in table.rows] == ["x", "mean1", "sub2", "2", "mul4", "sum5"]
    assert set(table.rows[0]) == {"name", "op", "parents", "scope", "value", "grad"}
    assert [r["op"] for r in table.rows] == [n.op for n in nodes]
    assert [r["scope"] for r in table.rows] == ["", "norm", "norm", "norm", "norm", ""]
    assert table.rows[4]["parents"] == ["sub2", "2"]
    for row, node in zip(table.rows, nodes):
        np.testing.assert_array_equal(row["value"], node.data)
        np.testing.assert_array_equal(row["grad"], node.grad)
    x.data[0, 0] = 100.0
    assert table.rows[0]["value"][0, 0] == 1.0  # rows are copies, not views
    text = str(table)
    assert "scope" in text.splitlines()[0]
    assert "mean(axis=0)" in text and "constant" in text


def test_explain_marks_non_finite_values():
    x = tg.Node([-1.0, 4.0], name="x")
    with np.errstate(invalid="ignore"):
        y = x.log()
    y.name = "y"
    text = str(tg.explain(y))
    lines = text.splitlines()
    assert lines[-1] == "! non-finite value (nan or inf)"
    assert "[nan, 1.386] !" in lines[3]
    assert "!" not in lines[2]  # x is finite
    assert "!" not in str(tg.explain(x))


def test_explain_summarises_big_tensors():
    x = tg.Node(np.arange(10_000.0).reshape(100, 100), name="x")
    text = str(tg.explain((x * 2).sum()))
    assert "(100, 100)" in text
    assert max(len(line) for line in text.splitlines()) < 100


def test_explain_html_escapes_names():
    x = tg.Node([1.0, np.inf], name="<b>&x")
    html = tg.explain(x * 2)._repr_html_()
    assert "&lt;b&gt;&amp;x" in html and "<b>" not in html
    assert "non-finite" in html


def test_explain_needs_a_node():
    with pytest.raises(TypeError, match="explain needs a Node, got list"):
        tg.explain([1.0])
