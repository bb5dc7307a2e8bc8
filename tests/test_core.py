"""The engine: Node construction, every op's forward and gradient, broadcasting, accumulation."""

import gc
import weakref

import numpy as np
import pytest
from conftest import central_diff, triangle

import tinygraph as tg

# (name, function of Nodes, numpy function, input shapes, input generator)
POS = "pos"  # inputs must be positive (log, sqrt, division)
UNARY = [
    ("neg", lambda x: -x, lambda x: -x, None),
    ("pow2", lambda x: x ** 2, lambda x: x ** 2, None),
    ("pow3", lambda x: x ** 3, lambda x: x ** 3, None),
    ("pow-half", lambda x: x ** -0.5, lambda x: x ** -0.5, POS),
    ("sqrt", tg.sqrt, np.sqrt, POS),
    ("exp", tg.exp, np.exp, None),
    ("log", tg.log, np.log, POS),
    ("tanh", tg.tanh, np.tanh, None),
    ("relu", tg.relu, lambda x: np.maximum(x, 0), None),
    ("sum", tg.sum, np.sum, None),
    ("sum0", lambda x: x.sum(0), lambda x: x.sum(0), None),
    ("sum-1k", lambda x: x.sum(axis=-1, keepdims=True), lambda x: x.sum(axis=-1, keepdims=True), None),
    ("mean", tg.mean, np.mean, None),
    ("mean0", lambda x: x.mean(axis=0), lambda x: x.mean(axis=0), None),
    ("mean-1k", lambda x: x.mean(-1, True), lambda x: x.mean(-1, keepdims=True), None),
    ("mean01", lambda x: x.mean(axis=(0, 1)), lambda x: x.mean(axis=(0, 1)), None),
    ("reshape", lambda x: x.reshape(-1), lambda x: x.reshape(-1), None),
    ("reshape-tuple", lambda x: x.reshape((x.shape[-1], -1)), lambda x: x.reshape((x.shape[-1], -1)), None),
    ("T", lambda x: x.T, lambda x: x.T, None),
    ("transpose", tg.transpose, np.transpose, None),
]
BINARY = [
    ("add", lambda a, b: a + b, np.add),
    ("sub", lambda a, b: a - b, np.subtract),
    ("mul", lambda a, b: a * b, np.multiply),
    ("div", lambda a, b: a / b, np.divide),
]
BROADCAST_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 4), (3, 1)), ((3, 4), ()), ((), (3, 4)),
                   ((2, 1, 4), (3, 1)), ((), ())]


def scalar_loss(out, w):
    """A fixed random projection of `out`, so every output entry gets a different weight."""
    return (out * w).sum() if out.shape else out * w


def check_grads(f_tg, f_np, inputs, rng, atol=1e-6):
    nodes = [tg.Node(x, name=f"in{i}") for i, x in enumerate(inputs)]
    out = f_tg(*nodes)
    expected = f_np(*inputs)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    w = rng.normal(size=np.shape(expected))
    scalar_loss(out, w).backward()
    for i, node in enumerate(nodes):
        def g(xi, i=i):
            args = list(inputs)
            args[i] = xi
            return float(np.sum(f_np(*args) * w))
        num = central_diff(g, inputs[i])
        assert node.grad.shape == np.shape(inputs[i])
        np.testing.assert_allclose(node.grad, num, rtol=1e-5, atol=atol, err_msg=f"input {i}")


@pytest.mark.parametrize("name,f_tg,f_np,domain", UNARY, ids=[u[0] for u in UNARY])
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4)])
def test_unary_forward_and_gradient(name, f_tg, f_np, domain, shape, rng):
    x = rng.normal(size=shape)
    if domain == POS:
        x = np.abs(x) + 0.5
    check_grads(f_tg, f_np, [x], rng)


@pytest.mark.parametrize("name,f_tg,f_np,domain", [u for u in UNARY if u[0] in
                         ("neg", "pow2", "sqrt", "exp", "log", "tanh", "relu")], ids=lambda u: str(u))
def test_unary_on_scalars(name, f_tg, f_np, domain, rng):
    x = np.array(abs(rng.normal()) + 0.5 if domain == POS else rng.normal())
    check_grads(f_tg, f_np, [x], rng)


@pytest.mark.parametrize("name,f_tg,f_np", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
def test_binary_broadcasting(name, f_tg, f_np, shapes, rng):
    a = rng.normal(size=shapes[0])
    b = rng.normal(size=shapes[1])
    if name == "div":
        b = np.abs(b) + 0.5
    check_grads(f_tg, f_np, [a, b], rng)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)),
                                    ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((5, 3), (2, 3, 4))], ids=str)
def test_matmul(shapes, rng):
    a, b = rng.normal(size=shapes[0]), rng.normal(size=shapes[1])
    check_grads(lambda x, y: x @ y, np.matmul, [a, b], rng)


def test_batch_axis_gradient_is_summed_over_the_batch():
    x = tg.Node(np.arange(6.0).reshape(3, 2))
    w = tg.Node([1.0, 2.0], name="w")
    (x * w).sum().backward()
    np.testing.assert_array_equal(w.grad, [0 + 2 + 4, 1 + 3 + 5])


# -- Node construction ------------------------------------------------------------------

def test_node_stores_float64_copies():
    arr = np.array([1, 2, 3])
    x = tg.Node(arr, name="x")
    assert x.data.dtype == np.float64 and x.shape == (3,) and x.ndim == 1 and x.size == 3
    x.data[0] = 100
    assert arr[0] == 1
    f = np.array([1.0, 2.0])
    y = tg.Node(f)
    y.data[0] = 5
    assert f[0] == 1.0
    s = tg.Node(2)
    assert s.data.shape == () and s.data.dtype == np.float64 and s.item() == 2.0
    assert tg.Node(True).item() == 1.0
    assert tg.Node([[1, 2], [3, 4]]).shape == (2, 2)


def test_data_is_writable_in_place_and_used_by_later_ops():
    a = tg.Node(2.0)
    a.data[...] = 3.0
    assert (a * 2).item() == 6.0
    w = tg.Node(np.zeros(3))
    w.data[...] = [1, 2, 3]
    assert (w * 1).data.tolist() == [1, 2, 3]


@pytest.mark.parametrize("bad", ["abc", None, {"a": 1}, [1, "x"], np.array(["a"]), 1 + 2j])
def test_non_numeric_data_raises_type_error_naming_the_type(bad):
    with pytest.raises(TypeError, match=type(bad).__name__):
        tg.Node(bad)


def test_repr_is_one_readable_line():
    x = tg.Node([1.0, 2.0, 3.0], name="x")
    y = (x * 2).sum()
    y.backward()
    r = repr(x)
    assert "\n" not in r and "'x'" in r and "(3,)" in r and "[1, 2, 3]" in r and "grad=[2, 2, 2]" in r
    assert "sum" in repr(y)
    big = tg.Node(np.arange(1000.0))
    assert len(repr(big)) < 120


def test_plain_operands_become_constant_leaves_in_argument_order():
    x = tg.Node([1.0, 2.0], name="x")
    for expr, const_first in [(2 + x, True), (x + 2, False), (2 - x, True), (x / 3, False),
                              (np.float64(2) * x, True), (np.ones((2, 2)) @ x, True)]:
        const = expr.parents[0] if const_first else expr.parents[1]
        other = expr.parents[1] if const_first else expr.parents[0]
        assert other is x and const.op == "" and const.is_constant
    np.testing.assert_array_equal((2 - x).data, [1.0, 0.0])
    np.testing.assert_array_equal((np.ones((2, 2)) @ x).data, [3.0, 3.0])
    p = x ** 2
    assert p.parents == (x,) and p.op == "pow" and p.attrs == {"p": 2}


def test_op_names():
    x = tg.Node(np.ones((2, 2)))
    exprs = {"add": x + x, "sub": x - 1, "mul": x * 2, "div": x / 2, "neg": -x, "pow": x ** 2, "matmul": x @ x,
             "sum": x.sum(), "mean": x.mean(), "sqrt": x.sqrt(), "exp": x.exp(), "log": x.log(), "tanh": x.tanh(),
             "relu": x.relu(), "reshape": x.reshape(4), "transpose": x.T}
    for name, node in exprs.items():
        assert node.op == name
    assert x.op == ""


def test_settings_are_attrs_not_parents():
    x = tg.Node(np.ones((2, 3)))
    m = tg.mean(x, axis=0)
    assert m.parents == (x,) and m.attrs == {"axis": 0}
    assert tg.sum(x, 1).attrs == {"axis": 1}
    assert x.reshape(3, 2).shape == (3, 2) and x.reshape((6,)).shape == (6,) and x.reshape(-1, 2).shape == (3, 2)
    assert tg.transpose(x).shape == (3, 2) and tg.mean(np.ones(3)).item() == 1.0


def test_relu_gradient_is_zero_at_zero():
    x = tg.Node([-1.0, 0.0, 2.0])
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 0, 1])
    s = tg.Node(0.0)
    s.relu().backward()
    assert s.grad == 0.0


def test_nonfinite_values_follow_numpy_without_crashing():
    with np.errstate(all="ignore"):
        assert np.isnan(tg.Node(-1.0).sqrt().item())
        assert np.isnan(tg.Node(-1.0).log().item())
        assert np.isinf((tg.Node(1.0) / 0).item())
        assert np.isinf((1 / tg.Node(0.0)).item())
        assert np.isinf(tg.Node(1000.0).exp().item())
        assert np.isnan((tg.Node(-8.0) ** (1 / 3)).item())
        assert np.isinf((tg.Node(0.0) ** -1).item())
        z = tg.Node(0.0)
        z.sqrt().backward()
        assert np.isinf(z.grad)


# -- accumulation and repeated passes ----------------------------------------------------------

def test_repeated_operand_keeps_both_edges():
    a = tg.Node(3.0, name="a")
    b = a + a
    assert b.parents == (a, a)
    b.backward()
    assert a.grad == 2.0
    assert [c for c, _ in a.contributions] == [b, b]
    c = a * a
    a.zero_grad()
    c.backward()
    assert a.grad == 6.0 and len(a.contributions) == 2


@pytest.mark.parametrize("k", [1, 2, 5])
def test_node_used_k_times_gets_k_contributions(k):
    x = tg.Node([1.0, 2.0], name="x")
    uses = [x * (i + 1) for i in range(k)]
    total = uses[0]
    for u in uses[1:]:
        total = total + u
    total.sum().backward()
    assert len(x.contributions) == k
    np.testing.assert_allclose(sum(g for _, g in x.contributions), x.grad)
    np.testing.assert_allclose(x.grad, [k * (k + 1) / 2] * 2)


def test_second_pass_adds_exactly_once_more_and_zero_grad_resets():
    x = tg.Node([1.0, 2.0, 4.0], name="x")
    mu = x.mean()
    y = ((x - mu) ** 2).sum()
    y.backward()
    once = {n: n.grad.copy() for n in (x, mu, y)}
    y.backward()
    for n, g in once.items():
        np.testing.assert_allclose(n.grad, 2 * g)
    assert len(x.contributions) == 2  # the latest pass only
    y.zero_grad()
    for n in (x, mu, y):
        assert not n.grad.any()
    assert x.contributions == []


def test_contributions_sum_to_grad_after_one_pass():
    x = tg.Node([1.0, 2.0, 4.0], name="x")
    mu = x.mean()
    xc = x - mu
    (xc * xc).sum().backward()
    assert [c for c, _ in x.contributions] in ([xc, mu], [mu, xc])
    np.testing.assert_allclose(sum(g for _, g in x.contributions), x.grad)


def test_triangle_gradient_is_not_zero():
    """Seed 003: x feeds mu and x - mu; the upstream gradient decides what flows."""
    x = tg.Node([1.0, 2.0, 3.0], name="x")
    xc = x - x.mean()
    g = np.array([1.0, 0.0, 0.0])
    xc.backward(g)
    np.testing.assert_allclose(x.grad, g - g.mean())
    assert np.abs(x.grad).sum() > 0


def test_backward_seed_rules():
    v = tg.Node([1.0, 2.0])
    with pytest.raises(ValueError, match=r"\(2,\)"):
        (v * 2).backward()
    with pytest.raises(ValueError, match="shape"):
        (v * 2).backward(np.ones(3))
    one = tg.Node([[3.0]])
    (one * 2).backward()
    assert one.grad.shape == (1, 1) and one.grad[0, 0] == 2.0
    seed = np.array([1.0, 1.0])
    (v * 2).backward(seed)
    assert seed.tolist() == [1.0, 1.0]


def test_walks_are_deterministic():
    def build():
        xs = [tg.Node(float(i), name=f"x{i}") for i in range(6)]
        y = xs[0]
        for x in xs[1:]:
            y = y * x + x
        return y
    orders = [[s.node.name or s.node.op for s in tg.backward_steps(build())] for _ in range(3)]
    assert orders[0] == orders[1] == orders[2]


def test_million_deep_chain_has_no_recursion():
    x = tg.Node(1.0, name="x")
    y = x
    for _ in range(1_000_000):
        y = y + 1.0
    y.backward()
    assert x.grad == 1.0
    y.zero_grad()
    assert x.grad == 0.0
    assert len(tg.topological(y)) == 2_000_001
    ref = weakref.ref(x)
    del x, y
    gc.collect()
    assert ref() is None


def test_graph_is_freed_without_the_cycle_collector():
    gc.disable()
    try:
        x = tg.Node([1.0, 2.0, 4.0], name="x")
        y = ((x - x.mean()) ** 2).mean().sqrt()
        y.backward()
        refs = [weakref.ref(n) for n in tg.topological(y)]
        del x, y
        assert all(r() is None for r in refs)
    finally:
        gc.enable()


# -- user-defined ops ----------------------------------------------------------------------------

def test_user_op_receives_arrays_and_records_settings(rng):
    seen = []

    @tg.op
    def cube(x):
        seen.append(type(x))
        y = x ** 3

        def vjp(g):
            seen.append(type(g))
            return (g * 3 * x ** 2,)
        return y, vjp

    z = cube(tg.Node([1.0, 2.0]))
    assert z.op == "cube"
    z.sum().backward()
    np.testing.assert_allclose(z.parents[0].grad, [3.0, 12.0])
    s = cube(tg.Node(2.0))
    s.backward()
    assert s.parents[0].grad == 12.0
    assert all(t is np.ndarray for t in seen)

    @tg.op(name="scale")
    def scale_by(x, *, factor=2.0):
        return x * factor, lambda g: (g * factor,)

    w = scale_by(tg.Node([1.0]), factor=3.0)
    assert w.op == "scale" and w.attrs == {"factor": 3.0} and "factor=3" in repr(w)


def test_wrong_shaped_vjp_raises_naming_op_and_shapes():
    @tg.op
    def bad(x):
        return x * 2, lambda g: (g.sum(axis=0),)

    y = bad(tg.Node(np.ones((3, 4))))
    with pytest.raises(ValueError, match=r"bad.*\(4,\).*\(3, 4\)"):
        y.backward(np.ones((3, 4)))


def test_shape_mismatch_names_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"add.*\(3,\).*\(4,\)"):
        tg.Node(np.ones(3)) + tg.Node(np.ones(4))
    with pytest.raises(ValueError, match=r"matmul.*\(3, 2\).*\(3, 2\)"):
        tg.Node(np.ones((3, 2))) @ tg.Node(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"reshape.*\(6,\)"):
        tg.Node(np.ones(6)).reshape(4)


def test_node_exponent_is_refused_with_a_hint():
    with pytest.raises(TypeError, match="exponent"):
        tg.Node(2.0) ** tg.Node(3.0)
    with pytest.raises(TypeError, match="exponent"):
        2 ** tg.Node(3.0)


def test_each_node_owns_its_grad_array():
    a, b = tg.Node([1.0, 2.0], name="a"), tg.Node([3.0, 4.0], name="b")
    y = a + b
    y.backward(np.ones(2))
    assert a.grad is not b.grad and a.grad is not y.grad
    a.grad[...] = 0
    np.testing.assert_array_equal(y.grad, [1, 1])
    np.testing.assert_array_equal(b.grad, [1, 1])
    _, g = b.contributions[0]
    g[...] = 7
    np.testing.assert_array_equal(b.contributions[0][1], [1, 1])
    y.backward(np.ones(2))
    np.testing.assert_array_equal(b.grad, [2, 2])
    np.testing.assert_array_equal(a.grad, [1, 1])


def test_array_op_returning_a_python_float_still_gets_array_gradients():
    @tg.op
    def total(x):
        return float(x.sum()), lambda g: (np.full(x.shape, g.item()),)

    x = tg.Node([1.0, 2.0])
    total(x).backward()
    np.testing.assert_array_equal(x.grad, [1, 1])


def test_a_leaf_gradient_summed_by_the_pass_is_not_shared_with_anything():
    x, mu, xc = triangle()
    seed = np.array([1.0, 2.0, 6.0])
    xc.backward(seed)
    before = [g.copy() for _, g in x.contributions]
    x.grad[...] = 0  # x's gradient is the sum of two contributions, made by the pass
    np.testing.assert_array_equal(xc.grad, seed)
    np.testing.assert_allclose(mu.grad, -9.0)
    for (_, g), want in zip(x.contributions, before):
        np.testing.assert_array_equal(g, want)
    xc.backward(seed)
    np.testing.assert_allclose(x.grad, [-2.0, -1.0, 3.0])


def test_a_node_unpickled_in_another_process_still_gets_its_gradient(tmp_path):
    """Reverse creation order must hold for a leaf whose creation number came from elsewhere."""
    import pickle
    import subprocess
    import sys
    import textwrap

    saved = tmp_path / "w.pkl"
    make = textwrap.dedent(f"""
        import pickle, tinygraph as tg
        nodes = [tg.Node(1.0) for _ in range(5000)]  # a long session: a high creation number
        w = tg.Node([1.0, 2.0], name="w")
        (w * 2.0).sum().backward()  # a finished pass: not part of what is saved
        pickle.dump(w, open({str(saved)!r}, "wb"))
    """)
    subprocess.run([sys.executable, "-c", make], check=True, timeout=60)
    w = pickle.load(open(saved, "rb"))
    np.testing.assert_array_equal(w.grad, [2.0, 2.0])  # the gradient travels with the value
    assert w.contributions == []
    w.zero_grad()
    loss = (w * tg.Node([3.0, 4.0])).sum()
    loss.backward()
    np.testing.assert_array_equal(w.grad, [3.0, 4.0])


def test_deep_copies_of_a_graph_run_backward_like_the_original():
    import copy

    x, mu, xc = triangle()
    loss = (xc * xc).sum()
    twin = copy.deepcopy(loss)
    loss.backward()
    twin.backward()
    twin_x = [n for n in tg.topological(twin) if n.name == "x"][0]
    np.testing.assert_allclose(twin_x.grad, x.grad)
    assert twin_x is not x and twin_x.grad is not x.grad
