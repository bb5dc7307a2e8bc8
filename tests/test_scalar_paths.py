"""Scalars give the same results on every path (issue 13, point 4).

Every op runs on the same value given as a Python float, a 0-d array and a
shape-(1,) array (and a float whose `.data` was read first: reading a node must
not change how later ops treat it). Values and gradients must be identical,
including the pattern of nan, inf and the sign of zero, for special inputs
(inf, -inf, nan, +0.0, -0.0) and values whose results overflow or underflow.
"""

import itertools
import math

import numpy as np
import pytest

import tinygraph as tg

SPECIAL = [math.inf, -math.inf, math.nan, 0.0, -0.0, 1e200, -1e200, 1e-160, -1e-160, 0.5, -2.5, 3.0]
PAIR_VALUES = [math.inf, -math.inf, math.nan, 0.0, -0.0, 1e200, 1e-160, -2.5, 3.0]
EXPONENTS = [0, 1, -1, 0.5, 2, 3, -2, 1.5]


def as_float(v):
    return tg.Node(float(v))


def as_0d(v):
    return tg.Node(np.array(v, dtype=np.float64))


def as_1(v):
    return tg.Node(np.array([v], dtype=np.float64))


def as_read_float(v):
    node = tg.Node(float(v))
    node.data  # noqa: B018 - looking at it must change nothing
    node.grad  # noqa: B018
    repr(node)
    return node


FORMS = {"float": as_float, "0-d": as_0d, "(1,)": as_1, "float, read": as_read_float}


def power(p):
    return lambda x: x ** p


def pick(x):
    """x[0] for a shape-(1,) node, x[()] for a 0-d one: the single entry as a 0-d node."""
    return x[0] if x.ndim else x[()]


UNARY = {
    "neg": lambda x: -x,
    **{f"pow{p}": power(p) for p in EXPONENTS},
    "sum": lambda x: x.sum(),
    "mean": lambda x: x.mean(),
    "sqrt": tg.sqrt, "exp": tg.exp, "log": tg.log, "tanh": tg.tanh, "relu": tg.relu,
    "reshape": lambda x: x.reshape(()),
    "reshape11": lambda x: tg.reshape(x, (1, 1)),
    "transpose": lambda x: x.T,
    "getitem": pick,
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}


def same(actual, expected, what):
    """Equal values, nan where nan, and the same sign of zero. nan's own sign is not compared."""
    actual = np.asarray(actual, dtype=np.float64).reshape(())
    expected = np.asarray(expected, dtype=np.float64).reshape(())
    np.testing.assert_array_equal(actual, expected, err_msg=what)
    if expected == 0:
        assert np.signbit(actual) == np.signbit(expected), f"{what}: {actual!r} vs {expected!r} (sign of zero)"


def run(forms, f, values):
    """(value, gradients) of f on nodes made by `forms` from `values`: all as Python floats."""
    with np.errstate(all="ignore"):
        nodes = [form(v) for form, v in zip(forms, values)]
        out = f(*nodes)
        out.backward()
        return float(np.asarray(out.data).reshape(())), [float(n.grad.reshape(())) for n in nodes]


def check_forms(f, values, label):
    results = {name: run([form] * len(values), f, values) for name, form in FORMS.items()}
    ref_name = "(1,)"
    ref_value, ref_grads = results[ref_name]
    for name, (value, grads) in results.items():
        what = f"{label} at {values}: {name} vs {ref_name}"
        same(value, ref_value, what + " (value)")
        for k, (g, ref_g) in enumerate(zip(grads, ref_grads)):
            same(g, ref_g, what + f" (grad of input {k})")


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_ops_agree_on_every_scalar_form(name):
    for v in SPECIAL:
        check_forms(UNARY[name], [v], name)


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_ops_agree_on_every_scalar_form(name):
    for a, b in itertools.product(PAIR_VALUES, repeat=2):
        check_forms(BINARY[name], [a, b], name)


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_ops_with_a_plain_number_agree(name):
    """`x + 2.0` (a constant operand) on each form of x."""
    for a, b in itertools.product(PAIR_VALUES, repeat=2):
        check_forms(lambda x, b=b: BINARY[name](x, b), [a], f"{name}(x, {b!r})")
        check_forms(lambda x, a=a: BINARY[name](a, x), [b], f"{name}({a!r}, x)")


def test_matmul_of_one_element_operands_agrees_with_mul():
    """(1,) @ (1,), (1, 1) @ (1, 1) and (1,) @ (1, 1) are the product of two numbers."""
    shapes = [((1,), (1,)), ((1, 1), (1, 1)), ((1,), (1, 1)), ((1, 1), (1,))]
    for a, b in itertools.product([math.inf, math.nan, 0.0, 1e200, 1e-160, -2.5, 3.0], repeat=2):
        expected = run([as_1, as_1], BINARY["mul"], [a, b])
        for sa, sb in shapes:
            def form(shape):
                return lambda v: tg.Node(np.full(shape, v))
            value, grads = run([form(sa), form(sb)], lambda x, y: x @ y, [a, b])
            what = f"matmul {sa} @ {sb} at {(a, b)}"
            np.testing.assert_array_equal(value, expected[0], err_msg=what)
            np.testing.assert_array_equal(grads, expected[1], err_msg=what)


def test_a_huge_scalar_squared_is_inf_as_for_arrays():
    with np.errstate(all="ignore"):
        y = tg.Node(1e200) ** 2
        assert y.item() == math.inf
        y.backward()
        z = tg.Node(1e-160) ** -1
        z.backward()
    assert z.item() == pytest.approx(1e160)


@pytest.mark.parametrize("form", list(FORMS))
def test_detect_anomaly_catches_a_non_finite_gradient_in_a_scalar_graph(form):
    x = FORMS[form](0.0)
    with tg.detect_anomaly(), pytest.raises(FloatingPointError):
        tg.sqrt(x).backward()


@pytest.mark.parametrize("form", list(FORMS))
def test_detect_anomaly_catches_a_non_finite_value_in_a_scalar_graph(form):
    x = FORMS[form](1e200)
    with tg.detect_anomaly(), pytest.raises(FloatingPointError):
        x * x


# -- the same values and gradients as PyTorch ---------------------------------------------

def torch_ops(torch):
    return {
        "neg": lambda x: -x,
        **{f"pow{p}": power(p) for p in EXPONENTS},
        "sum": torch.sum, "mean": torch.mean, "sqrt": torch.sqrt, "exp": torch.exp, "log": torch.log,
        "tanh": torch.tanh, "relu": torch.relu,
        "reshape": lambda x: x.reshape(()), "reshape11": lambda x: x.reshape(1, 1),
        "transpose": lambda x: x, "getitem": lambda x: x[()],
    }


# Where PyTorch's float64 result differs from the IEEE/numpy result for a reason of its own.
# tinygraph follows numpy for values; PyTorch's gradient conventions that the issue adopts
# (relu'(0) = 0; d x**0 / dx = 0 everywhere, nan and 0 included, since x**0 is the constant 1)
# are required and so are not listed here.
TORCH_DIFFERS = {  # (op, repr of the input): repr keeps -0.0 apart from 0.0
    # torch computes x ** 0.5 as sqrt(x): (-inf) ** 0.5 is nan there, inf in C99 pow.
    # Either value is accepted; the scalar forms must agree with each other (tests above).
    ("pow0.5", "-inf"),
    # d/dx x ** 0.5 at -0.0: torch writes it 0.5 / sqrt(x) = 0.5 / -0.0 = -inf; numpy's
    # 0.5 * x ** -0.5 gives +inf (C99 pow(-0.0, -0.5) = +inf). Only the sign of the zero decides.
    ("pow0.5", "-0.0"),
    # torch passes the gradient where not (x <= 0), so relu'(nan) = 1; tinygraph's mask x > 0 gives 0.
    ("relu", "nan"),
}


def torch_differs_binary(name, a, b, k):
    """div's gradient for b is the textbook -g * a / b**2 (issue 13); torch evaluates -g * (a / b) / b.

    They differ only where b**2 overflows to inf or underflows below the normal range (nan, inf
    or a subnormal's lost digits here, a finite value there).
    """
    with np.errstate(all="ignore"):
        square = np.float64(b) ** 2
    return name == "div" and k == 1 and (not np.isfinite(square) or abs(square) < np.finfo(np.float64).tiny)


def close(actual, expected, what):
    """Equal up to rounding (torch and libm may differ in the last bit), with nan and inf where torch has them.

    The sign of a zero is not compared: torch's formulas choose it differently (sqrt(-0.0) = -0.0).
    """
    np.testing.assert_allclose(actual, expected, rtol=1e-14, atol=0, equal_nan=True, err_msg=what)


def torch_run(torch, f, values):
    with np.errstate(all="ignore"):
        ts = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
        out = f(*ts)
        out.backward()
        return float(out.detach()), [0.0 if t.grad is None else float(t.grad) for t in ts]


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_ops_match_torch_on_special_values(name):
    torch = pytest.importorskip("torch")
    f_torch = torch_ops(torch)[name]
    for v in SPECIAL:
        if (name, repr(v)) in TORCH_DIFFERS:
            continue
        value, grads = run([as_float], UNARY[name], [v])
        t_value, t_grads = torch_run(torch, f_torch, [v])
        close(value, t_value, f"{name}({v!r}) value vs torch")
        close(grads[0], t_grads[0], f"{name}'({v!r}) grad vs torch")


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_ops_match_torch_on_special_values(name):
    torch = pytest.importorskip("torch")
    for a, b in itertools.product(PAIR_VALUES, repeat=2):
        value, grads = run([as_float, as_float], BINARY[name], [a, b])
        t_value, t_grads = torch_run(torch, BINARY[name], [a, b])
        what = f"{name}({a!r}, {b!r}) vs torch"
        close(value, t_value, what + " value")
        for k in range(2):
            if not torch_differs_binary(name, a, b, k):
                close(grads[k], t_grads[k], what + f" grad {k}")
