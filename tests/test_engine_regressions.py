"""Regression tests of issue 13: one per bug a new user found, stepping, ops' own settings, numpy habits.

Each test names the issue's point. Only the public API is used (API.md); tests that
may change process-wide state (ops that reuse a built-in's name) run in a child process.
"""

import copy
import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import central_diff

import tinygraph as tg

ROOT = Path(tg.__file__).resolve().parent.parent


def run_child(code, timeout=120):
    """Run `code` in a fresh Python with this tinygraph first on the path; fail with its output."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert done.returncode == 0, f"child process failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def readme_graph():
    """The README's "See the backward pass" example: (x, mu, xc, w, loss, every node)."""
    x = tg.Node([1.0, 2.0, 4.0], name="x")
    mu = x.mean()
    mu.name = "mu"
    xc = x - mu
    xc.name = "xc"
    w = tg.Node([1.0, 2.0, 6.0], name="w")
    prod = xc * w
    loss = prod.sum()
    loss.name = "loss"
    return x, mu, xc, w, loss, [x, mu, xc, w, prod, loss]


def snapshot(nodes):
    """Every node's .grad and .contributions, as copies."""
    return [(n.grad.copy(), [(c, np.array(g)) for c, g in n.contributions]) for n in nodes]


def assert_unchanged(nodes, before, when):
    for n, (grad, contributions) in zip(nodes, before):
        np.testing.assert_array_equal(n.grad, grad, err_msg=f"{when}: .grad of {n!r}")
        now = n.contributions
        assert len(now) == len(contributions), f"{when}: .contributions of {n!r}: {now} vs {contributions}"
        for (c, g), (c0, g0) in zip(now, contributions):
            assert c is c0, f"{when}: .contributions of {n!r} name another consumer"
            np.testing.assert_array_equal(g, g0, err_msg=f"{when}: .contributions of {n!r}")


def projected(f_tg, f_np, x, rng):
    """Autograd and central differences of sum(w * f(x)) for a fixed random w."""
    w = rng.normal(size=np.shape(f_np(x)))
    node = tg.Node(x)
    (f_tg(node) * w).sum().backward()
    return node.grad, central_diff(lambda v: float(np.sum(f_np(v) * w)), x)


# -- point 6: every bug a new user found ------------------------------------------------------

def test_a_scalar_that_was_read_takes_three_gradients():
    s = tg.Node(0.5)
    s.data  # noqa: B018 - the bug needed a look at the value first
    (s.sum() + s.sum() + s.sum()).backward()
    assert s.grad == 3.0


@pytest.mark.parametrize("shape,axes", [((2, 3), (-1, 0)), ((3, 3), (-1, 0)), ((2, 3, 4), (2, 0, 1)),
                                        ((2, 3, 4), (-1, 0, 1)), ((2, 3, 4), (1, -1, -3)), ((2, 3, 4), (0, 2, 1))])
def test_transpose_with_negative_axes_and_non_square_shapes(shape, axes, rng):
    x = rng.normal(size=shape)
    node = tg.Node(x)
    np.testing.assert_array_equal(node.transpose(*axes).data, np.transpose(x, axes))
    np.testing.assert_array_equal(tg.transpose(node, axes).data, np.transpose(x, axes))
    grad, numerical = projected(lambda n: n.transpose(*axes), lambda v: np.transpose(v, axes), x, rng)
    np.testing.assert_allclose(grad, numerical, rtol=1e-6, atol=1e-8)


def test_transpose_gradient_equals_numerical_grad(rng):
    x = rng.normal(size=(2, 3))
    w = rng.normal(size=(3, 2))
    node = tg.Node(x)
    (node.transpose(-1, 0) * w).sum().backward()
    np.testing.assert_allclose(node.grad, tg.numerical_grad(lambda v: np.sum(v.T * w), x), rtol=1e-6, atol=1e-8)


def test_jacobian_leaves_the_gradients_of_closed_over_nodes_alone():
    w = tg.Node([1.0, 2.0, 3.0], name="w")
    (w * w).sum().backward()  # w.grad is now 2 * w
    before = w.grad.copy()
    jac = tg.jacobian(lambda x: x * w, np.array([0.5, -1.0, 2.0]))
    np.testing.assert_array_equal(jac, np.diag([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(w.grad, before)


def test_gradcheck_leaves_the_gradients_of_closed_over_nodes_alone():
    w = tg.Node([1.0, 2.0, 3.0], name="w")
    (w * w).sum().backward()
    before = w.grad.copy()
    assert tg.gradcheck(lambda x: (x * w).tanh(), np.array([0.5, -1.0, 2.0]))
    np.testing.assert_array_equal(w.grad, before)


def test_break_out_of_backward_steps_then_backward_gives_single_gradients():
    a = tg.Node(1.0, name="a")
    c = a * 1.0
    c.name = "c"
    y = c * 2.0
    for step in tg.backward_steps(y):
        if step.node is c:  # c has had its turn
            break
    y.backward()
    assert c.grad == 2.0
    assert a.grad == 2.0
    assert y.grad == 1.0


def test_an_exception_part_way_leaves_no_seed_on_the_root():
    x = tg.Node([0.0, 1.0], name="x")
    y = (tg.sqrt(x) * 3.0).sum()
    with tg.detect_anomaly(), pytest.raises(FloatingPointError):
        y.backward()
    assert y.grad == 0.0
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


def test_detect_anomaly_on_a_scalar_sqrt_at_zero():
    x = tg.Node(0.0, name="x")
    with tg.detect_anomaly(), pytest.raises(FloatingPointError):
        tg.sqrt(x).backward()
    assert x.grad == 0.0  # the failed pass left nothing behind


def test_scalar_overflow_gives_inf_not_overflow_error():
    with np.errstate(all="ignore"):
        assert (tg.Node(1e200) ** 2).item() == np.inf
        y = tg.Node(1e-160) ** -1
        y.backward()
        assert y.item() == pytest.approx(1e160)
        scalar = (tg.Node(-np.inf) ** 0.5).item()
        array = (tg.Node([-np.inf]) ** 0.5).data[0]
    np.testing.assert_array_equal(scalar, array)


def test_deepcopy_of_a_deep_graph_needs_no_recursion():
    x = tg.Node(1.0, name="x")
    y = x
    for _ in range(2000):
        y = y * 1.0 + 0.0
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # the default: a recursive copy would need several frames per node
    try:
        twin = copy.deepcopy(y)
    finally:
        sys.setrecursionlimit(limit)
    twin.backward()
    y.backward()
    assert twin.item() == y.item()
    assert x.grad == 1.0


def clip_op():
    @tg.op(formula="clip({0}, lo={lo})")
    def clip(x, *, lo=0.0):
        def vjp(g):
            return (g * (x > lo),)
        return np.maximum(x, lo), vjp
    return clip


def test_a_formula_with_a_default_setting_renders_everywhere(tmp_path):
    clip = clip_op()
    x = tg.Node([-1.0, 2.0], name="x")
    y = clip(x).sum()
    y.backward()
    y.zero_grad()
    assert "clip(x, lo=0.0)" in tg.to_dot(y)
    assert any("clip(x, lo=0.0)" in str(step) for step in tg.backward_steps(y))
    page = tg.stepper(y, filename=str(tmp_path / "clip.html"))
    assert "clip(x, lo=0.0)" in Path(page).read_text()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0])


def test_reshape_function_takes_what_the_method_takes(rng):
    x = tg.Node(rng.normal(size=(3, 4)))
    for y in (tg.reshape(x, 2, 6), tg.reshape(x, (2, 6)), tg.reshape(x, 2, -1), x.reshape(2, 6)):
        assert y.shape == (2, 6)
        np.testing.assert_array_equal(y.data, x.data.reshape(2, 6))
    x.zero_grad()
    tg.reshape(x, 2, 6).sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones((3, 4)))


@pytest.mark.parametrize("value", [0.0, [0.0, 2.0]])
def test_gradient_of_x_to_the_zero_at_zero_is_zero(value):
    x = tg.Node(value)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros_like(np.asarray(value)))


# -- point 5: stepping in the REPL follows what a learner sees ------------------------------

def test_readme_example_x_grad_changes_at_step_3():
    x, mu, xc, w, loss, nodes = readme_graph()
    seen = []
    for step in tg.backward_steps(loss):
        seen.append(x.grad.copy())
        if step.index == 3:
            assert "x += [1, 2, 6]" in str(step)
    np.testing.assert_array_equal(seen[:3], np.zeros((3, 3)))
    np.testing.assert_array_equal(seen[3], [1.0, 2.0, 6.0])
    np.testing.assert_array_equal(seen[4], [-2.0, -1.0, 3.0])
    np.testing.assert_array_equal(seen[5], [-2.0, -1.0, 3.0])


@pytest.mark.parametrize("earlier_passes", [0, 1, 2])
def test_between_steps_grad_is_earlier_passes_plus_what_arrived(earlier_passes):
    x, mu, xc, w, loss, nodes = readme_graph()
    for _ in range(earlier_passes):
        loss.backward()
    expected = {id(n): n.grad.copy() for n in nodes}
    expected[id(loss)] = expected[id(loss)] + 1.0  # the seed arrives first
    for step in tg.backward_steps(loss):
        for parent, g in step.contributions:
            expected[id(parent)] = expected[id(parent)] + g
        for n in nodes:
            np.testing.assert_allclose(n.grad, expected[id(n)], rtol=1e-15,
                                       err_msg=f"{n!r} after {step}")


def test_grad_seen_between_steps_is_not_changed_by_later_steps():
    """A learner keeps `g = x.grad` at step 3: later steps must not write into that array."""
    x, mu, xc, w, loss, nodes = readme_graph()
    kept = None
    for step in tg.backward_steps(loss):
        if step.index == 3:
            kept = x.grad
    np.testing.assert_array_equal(kept, [1.0, 2.0, 6.0])


def abandon(how, loss, stop):
    """Run `stop` steps of a pass over `loss`, then leave it the way `how` says."""
    if how == "close":
        steps = tg.backward_steps(loss)
        for _ in range(stop):
            next(steps)
        steps.close()
    elif how == "drop":
        steps = tg.backward_steps(loss)
        for _ in range(stop):
            next(steps)
        del steps
        gc.collect()
    elif how == "break":
        for step in tg.backward_steps(loss):
            if step.index + 1 >= stop:
                break
        gc.collect()
    elif how == "exception":
        with pytest.raises(ZeroDivisionError):
            for step in tg.backward_steps(loss):
                if step.index + 1 >= stop:
                    raise ZeroDivisionError("the learner's own code failed between steps")
        gc.collect()


@pytest.mark.parametrize("how", ["close", "drop", "break", "exception"])
@pytest.mark.parametrize("earlier_passes", [0, 1])
def test_a_pass_not_run_to_its_end_leaves_grads_and_contributions_as_before(how, earlier_passes):
    x, mu, xc, w, loss, nodes = readme_graph()
    for _ in range(earlier_passes):
        loss.backward()
    before = snapshot(nodes)
    for stop in range(1, len(nodes)):  # the last step ends the pass
        abandon(how, loss, stop)
        assert_unchanged(nodes, before, f"{how} after {stop} step(s)")
    loss.backward()  # and the next pass adds one pass's gradient
    np.testing.assert_allclose(x.grad, (earlier_passes + 1) * np.array([-2.0, -1.0, 3.0]))


def test_an_anomaly_part_way_leaves_grads_and_contributions_as_before():
    x = tg.Node([0.0, 4.0], name="x")
    w = tg.Node([2.0, 3.0], name="w")
    r = tg.sqrt(x)
    prod = r * w
    loss = prod.sum()
    nodes = [x, w, r, prod, loss]
    with np.errstate(all="ignore"):
        loss.backward()  # without anomaly detection: x.grad holds inf
    before = snapshot(nodes)
    with tg.detect_anomaly(), pytest.raises(FloatingPointError):
        loss.backward()
    assert_unchanged(nodes, before, "after detect_anomaly stopped backward()")
    with tg.detect_anomaly(), pytest.raises(FloatingPointError):
        for _ in tg.backward_steps(loss):
            pass
    assert_unchanged(nodes, before, "after detect_anomaly stopped backward_steps")


def test_grad_setter():
    x = tg.Node([1.0, 2.0, 3.0], name="x")
    (x * x).sum().backward()
    x.grad *= 0.5
    np.testing.assert_array_equal(x.grad, [1.0, 2.0, 3.0])
    x.grad = None
    np.testing.assert_array_equal(x.grad, np.zeros(3))
    new = np.array([4.0, 5.0, 6.0])
    x.grad = new
    new[0] = 100.0  # the node holds a copy
    np.testing.assert_array_equal(x.grad, [4.0, 5.0, 6.0])
    (x * 2.0).sum().backward()  # a later pass adds onto what was set
    np.testing.assert_array_equal(x.grad, [6.0, 7.0, 8.0])
    with pytest.raises(ValueError, match=r"\(2,\)|\(3,\)"):
        x.grad = np.ones(2)
    np.testing.assert_array_equal(x.grad, [6.0, 7.0, 8.0])


def test_grad_setter_on_a_scalar():
    s = tg.Node(2.0)
    (s * s).backward()
    s.grad *= 0.5
    assert s.grad == 2.0
    s.grad = 1.5
    assert s.grad == 1.5
    s.grad = None
    assert s.grad == 0.0
    with pytest.raises(ValueError):
        s.grad = np.ones(3)


# -- point 2: each op keeps its own settings (child processes: these define ops named like built-ins) --

BUILT_IN_RESULTS = """
    import numpy as np, tinygraph as tg

    def results():
        a = tg.Node([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], name="a")
        b = tg.Node([10.0, 20.0, 30.0], name="b")
        s = (a + b) * 2.0 - a
        s.sum().backward()
        ln = tg.nn.LayerNorm(3)
        y = ln(tg.Node([[1.0, 2.0, 4.0], [0.5, -1.0, 3.0]], name="x"))
        (y * np.arange(6.0).reshape(2, 3)).sum().backward()
        x = tg.Node([1.0, 2.0, 4.0], name="x")
        mu = x.mean(); mu.name = "mu"
        xc = x - mu; xc.name = "xc"
        xc.backward(np.array([1.0, 2.0, 6.0]))
        passed = tg.exercises.check("mean_triangle", lambda x, dout: dout - dout.mean(), seed=0).passed
        wrong = tg.exercises.check("mean_triangle", lambda x, dout: dout, seed=0).passed
        return {
            "sum": s.data.tolist(), "grad_a": a.grad.tolist(), "grad_b": b.grad.tolist(),
            "ln": y.data.tolist(), "ln_weight": ln.weight.grad.tolist(), "ln_bias": ln.bias.grad.tolist(),
            "ln_dot": tg.to_dot(y),
            "x": x.grad.tolist(), "dot": tg.to_dot(xc), "steps": [str(s) for s in tg.backward_steps(xc, np.ones(3))],
            "exercise": (passed, wrong),
        }

    before = results()
    assert before["exercise"] == (True, False), before["exercise"]
"""


@pytest.mark.parametrize("definition", [
    """
    @tg.op
    def add(a, b):
        def vjp(g):
            return 3 * g, -g
        return a * 100 - b, vjp
    assert add(tg.Node(1.0), tg.Node(2.0)).item() == 98.0
    """,
    """
    @tg.op(name="add", formula="{0} PLUS {1}")
    def plus(a, b):
        def vjp(g):
            return g, g
        return a - b, vjp
    assert plus(tg.Node(1.0), tg.Node(2.0)).item() == -1.0
    assert "PLUS" in tg.to_dot(plus(tg.Node(1.0), tg.Node(2.0)))
    """,
    """
    @tg.op(name="add", formula="({0} ⊕ {1})", broadcast=False)
    def add(a, b):
        def vjp(g):
            return g, g
        return a + b + 1, vjp
    assert add(tg.Node(1.0), tg.Node(2.0)).item() == 4.0
    """,
    """
    @tg.op(name="sub")
    def sub(a, b):
        def vjp(g):
            return g, g
        return a + b, vjp
    @tg.op(name="mean")
    def mean(x):
        def vjp(g):
            return (g,)
        return x, vjp
    @tg.op(name="mul", formula="{0} TIMES {1}")
    def mul(a, b):
        def vjp(g):
            return g, g
        return a + b, vjp
    assert mul(tg.Node(1.0), tg.Node(2.0)).item() == 3.0
    """,
], ids=["def-add", "name-add-formula", "name-add-no-broadcast", "sub-mean-mul"])
def test_a_user_op_named_like_a_built_in_changes_nothing_else(definition):
    run_child(textwrap.dedent(BUILT_IN_RESULTS) + textwrap.dedent(definition) + textwrap.dedent("""
    after = results()
    for key in before:
        assert after[key] == before[key], (key, before[key], after[key])
    """))


def test_two_user_ops_with_the_same_name_keep_their_own_settings():
    run_child("""
    import numpy as np, tinygraph as tg

    @tg.op(name="combine", formula="first({0}, {1})", broadcast=True)
    def first(a, b):
        def vjp(g):
            return g, g  # in the broadcast shape: the engine sums it down
        return a + b, vjp

    @tg.op(name="combine", formula="second({0}, {1})")
    def second(a, b):
        def vjp(g):
            return g * b, g * a
        return a * b, vjp

    a = tg.Node(np.ones((2, 3)), name="a")
    b = tg.Node([1.0, 2.0, 3.0], name="b")
    y = first(a, b)
    assert y.op == "combine"
    y.sum().backward()
    assert b.grad.tolist() == [2.0, 2.0, 2.0], b.grad
    steps = [str(s) for s in tg.backward_steps(y.sum())]
    assert any("first(a, b)" in s for s in steps), steps
    assert "first(a, b)" in tg.to_dot(y)

    c = tg.Node([1.0, 2.0], name="c")
    d = tg.Node([3.0, 4.0], name="d")
    z = second(c, d)
    z.sum().backward()
    assert c.grad.tolist() == [3.0, 4.0] and d.grad.tolist() == [1.0, 2.0]
    assert "second(c, d)" in tg.to_dot(z)
    assert "first(" not in tg.to_dot(z)
    assert "second(" not in tg.to_dot(y)
    # the first op still broadcasts after the second was defined
    a.zero_grad(); b.zero_grad()
    first(a, b).sum().backward()
    assert b.grad.tolist() == [2.0, 2.0, 2.0], b.grad
    """)


# -- point 7: numpy and REPL habits ------------------------------------------------------------

NUMPY_FUNCTIONS = [
    ("exp", lambda x: np.exp(x), lambda x: tg.exp(x)),
    ("sqrt", lambda x: np.sqrt(x), lambda x: tg.sqrt(x)),
    ("sum", lambda x: np.sum(x), lambda x: x.sum()),
    ("mean", lambda x: np.mean(x, axis=0), lambda x: x.mean(axis=0)),
]


@pytest.mark.parametrize("name,numpy_call,tg_call", NUMPY_FUNCTIONS, ids=[f[0] for f in NUMPY_FUNCTIONS])
def test_numpy_functions_on_a_node_give_the_op_or_name_it(name, numpy_call, tg_call):
    data = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]])
    x = tg.Node(data, name="x")
    try:
        y = numpy_call(x)
    except TypeError as exc:
        message = str(exc)
        assert f"tg.{name}" in message or f".{name}(" in message, message
        assert "__array_ufunc__" not in message, message
        return
    assert isinstance(y, tg.Node), f"np.{name} on a Node gave {type(y).__name__}, not a Node"
    expected = tg_call(tg.Node(data))
    np.testing.assert_array_equal(y.data, expected.data)
    assert y.op == expected.op
    w = np.arange(1.0, 1.0 + y.size).reshape(y.shape)
    (y * w).sum().backward()
    x2 = tg.Node(data)
    (tg_call(x2) * w).sum().backward()
    np.testing.assert_array_equal(x.grad, x2.grad)


INDICES = [
    ("x[0]", lambda x: x[0]),
    ("x[:, 1]", lambda x: x[:, 1]),
    ("x[idx] repeated", lambda x: x[np.array([0, 2, 0, 0])]),
    ("x[1, 2]", lambda x: x[1, 2]),
    ("x[-1, ::2]", lambda x: x[-1, ::2]),
    ("x[mask]", lambda x: x[np.array([True, False, True])]),
    ("x[[2, 2], [1, 1]]", lambda x: x[[2, 2], [1, 1]]),
]


@pytest.mark.parametrize("label,index", INDICES, ids=[i[0] for i in INDICES])
def test_indexing_is_an_op_with_a_vjp(label, index, rng):
    data = rng.normal(size=(3, 4))
    x = tg.Node(data, name="x")
    y = index(x)
    assert isinstance(y, tg.Node) and y.op == "getitem"
    np.testing.assert_array_equal(y.data, index(data))
    grad, numerical = projected(index, index, data, rng)
    np.testing.assert_allclose(grad, numerical, rtol=1e-6, atol=1e-8)


def test_repeated_indices_add_up():
    x = tg.Node([1.0, 2.0, 3.0], name="x")
    x[np.array([0, 2, 0, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])


def test_indexing_is_drawn_and_stepped():
    x = tg.Node([[1.0, 2.0], [3.0, 4.0]], name="x")
    y = x[:, 1] * 2.0
    loss = y.sum()
    steps = list(tg.backward_steps(loss))
    assert any(step.node.op == "getitem" for step in steps)
    assert all(str(step) for step in steps)
    np.testing.assert_array_equal(x.grad, [[0.0, 2.0], [0.0, 2.0]])
    assert "getitem" in tg.to_dot(loss)
    assert any(row["op"] == "getitem" for row in tg.explain(loss).rows)


def test_indexing_does_not_change_the_nodes_data():
    data = np.array([1.0, 2.0, 3.0])
    x = tg.Node(data, name="x")
    y = x[np.array([0, 0])]
    y.data[0] = 100.0
    np.testing.assert_array_equal(x.data, [1.0, 2.0, 3.0])
