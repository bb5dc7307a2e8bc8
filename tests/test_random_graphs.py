"""Random graphs of every op, with reused nodes and 0-d / size-1 / broadcast shapes, checked end to end.

A graph is drawn as a small program: a list of instructions over a growing pool
of values (the leaves first, then one value per instruction). The same program
is replayed with plain numpy (for central differences, independent of
tinygraph), with tinygraph and with PyTorch.
"""

import functools
import operator

import numpy as np
import pytest
from conftest import central_diff
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tinygraph as tg

LEAF_SHAPES = [(), (1,), (3,), (2, 3), (1, 3), (2, 1), (3, 3)]
BINARY = ["add", "sub", "mul", "div", "matmul"]
UNARY = ["neg", "pow", "sqrt", "exp", "log", "tanh", "relu", "sum", "mean", "reshape", "transpose"]
EXPONENTS = [2, 3, -1, 0.5, -1.5]
SETTINGS = settings(deadline=None, max_examples=100, derandomize=True)

# The library-specific parts of a replay; operators (+ - * / @ unary- **) are shared syntax.
NUMPY = {
    "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0),
    "sum": lambda a, axis, keepdims: np.sum(a, axis=axis, keepdims=keepdims),
    "mean": lambda a, axis, keepdims: np.mean(a, axis=axis, keepdims=keepdims),
    "reshape": np.reshape, "transpose": np.transpose, "constant": lambda v: v,
}
TINYGRAPH = {
    "sqrt": tg.sqrt, "exp": tg.exp, "log": tg.log, "tanh": tg.tanh, "relu": tg.relu,
    "sum": lambda a, axis, keepdims: a.sum(axis=axis, keepdims=keepdims),
    "mean": lambda a, axis, keepdims: a.mean(axis=axis, keepdims=keepdims),
    "reshape": lambda a, shape: a.reshape(*shape), "transpose": lambda a: a.T, "constant": lambda v: v,
}


def torch_library(torch):
    def reduce(name):
        def apply(a, axis, keepdims):
            if axis is not None:
                return getattr(a, name)(dim=axis, keepdim=keepdims)
            out = getattr(a, name)()
            return out.reshape((1,) * a.ndim) if keepdims else out
        return apply
    return {
        "sqrt": torch.sqrt, "exp": torch.exp, "log": torch.log, "tanh": torch.tanh, "relu": torch.relu,
        "sum": reduce("sum"), "mean": reduce("mean"), "reshape": torch.reshape,
        "transpose": lambda a: a.permute(tuple(reversed(range(a.ndim)))), "constant": torch.tensor,
    }


def positive(x):
    """Safe domain for sqrt, log, a denominator and fractional or negative powers: x*x + 0.5."""
    return x * x + 0.5


def constant_value(shape):
    """A fixed constant operand: a plain float for (), else an ndarray (so `ndarray - Node` is used)."""
    return 1.5 if shape == () else 0.5 + 0.25 * np.arange(np.prod(shape)).reshape(shape)


def apply(lib, kind, args, s):
    a = args[0]
    b = args[1] if len(args) > 1 else None
    if kind == "add":
        return a + b
    if kind == "sub":
        return a - b
    if kind == "mul":
        return a * b
    if kind == "div":
        return a / positive(b)
    if kind == "matmul":
        return a @ b
    if kind == "neg":
        return -a
    if kind == "pow":
        return (positive(a) if s["p"] < 0 or s["p"] != int(s["p"]) else a) ** s["p"]
    if kind in ("sqrt", "log"):
        return lib[kind](positive(a))
    if kind in ("sum", "mean"):
        return lib[kind](a, s["axis"], s["keepdims"])
    if kind == "reshape":
        return lib[kind](a, s["shape"])
    return lib[kind](a)


def replay(lib, leaves, graph, look=None):
    """All values of the program; the last one is the scalar root.

    `look(pool)`, if given, is called with the values made so far before the first
    instruction and after each one (tests of what reading a value may change).
    """
    pool = list(leaves)
    if look:
        look(pool)
    for kind, args, s in graph["program"]:
        values = [pool[i] if isinstance(i, int) else lib["constant"](constant_value(i)) for i in args]
        pool.append(apply(lib, kind, values, s))
        if look:
            look(pool)
    terms = [(pool[i] * lib["constant"](w)).sum() for i, w in graph["weights"].items()]
    pool.append(functools.reduce(operator.add, terms))
    if look:
        look(pool)
    return pool


def compatible(kind, a, b):
    try:
        (np.matmul if kind == "matmul" else np.add)(np.zeros(a), np.zeros(b))
    except ValueError:
        return False
    return kind != "matmul" or (a != () and b != ())


@st.composite
def graphs(draw, max_ops=8, leaf_shapes=LEAF_SHAPES):
    """A random program, its leaf values and the projection weights of its root.

    Operands are drawn from every earlier value, so a value can be used twice by
    one op (`a * a`) or by several ops whose results meet again at the root. A
    constant operand is written as its shape. `leaf_shapes=[()]` gives all-scalar
    graphs. Graphs whose values leave [-1e3, 1e3]
    or put a relu input within 1e-3 of its kink are rejected.
    """
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    leaves = [rng.normal(size=draw(st.sampled_from(leaf_shapes))) for _ in range(draw(st.integers(1, 3)))]
    pool = list(leaves)
    program, used = [], set()
    for _ in range(draw(st.integers(1, max_ops))):
        kind = draw(st.sampled_from(BINARY + UNARY))
        a = draw(st.integers(0, len(pool) - 1))
        s = {}
        if kind in BINARY:
            partners = [i for i, v in enumerate(pool) if compatible(kind, pool[a].shape, v.shape)]
            if not partners:
                kind, partners = "mul", [a]
            b = draw(st.sampled_from(partners))
            if kind != "matmul" and draw(st.integers(0, 4)) == 0:
                b = draw(st.sampled_from([(), pool[a].shape]))
            args = (a, b) if kind == "matmul" or draw(st.booleans()) else (b, a)
        else:
            args = (a,)
            if kind == "pow":
                s["p"] = draw(st.sampled_from(EXPONENTS))
            elif kind in ("sum", "mean"):
                s["axis"] = draw(st.sampled_from([None, *range(-pool[a].ndim, pool[a].ndim)]))
                s["keepdims"] = draw(st.booleans())
            elif kind == "reshape":
                s["shape"] = draw(st.sampled_from([(-1,), (1, -1)]))
            elif kind == "relu":
                assume(np.all((np.abs(pool[a]) > 1e-3) | (pool[a] == 0)))
        values = [pool[i] if isinstance(i, int) else constant_value(i) for i in args]
        out = np.asarray(apply(NUMPY, kind, values, s), dtype=np.float64)
        assume(np.all(np.abs(out) < 1e3))
        pool.append(out)
        program.append((kind, args, s))
        used.update(i for i in args if isinstance(i, int))
    sinks = [i for i in range(len(leaves), len(pool)) if i not in used]
    weights = {i: rng.normal(size=pool[i].shape) for i in sinks}
    return {"leaves": leaves, "program": program, "weights": weights}


def build(graph, look=None):
    """The graph in tinygraph: (leaf Nodes, every value Node; the last is the root)."""
    leaves = [tg.Node(v, name=f"x{i}") for i, v in enumerate(graph["leaves"])]
    return leaves, replay(TINYGRAPH, leaves, graph, look)


def central_leaf_grads(graph):
    """d root / d leaf for every leaf by central differences of the numpy replay (independent of tinygraph)."""
    grads = []
    for i, leaf in enumerate(graph["leaves"]):
        def f(v, i=i):
            inputs = list(graph["leaves"])
            inputs[i] = v
            return float(replay(NUMPY, inputs, graph)[-1])
        grads.append(central_diff(f, leaf))
    return grads


def torch_replay(torch, graph):
    """Every value of the program in PyTorch (after its backward pass) and each leaf's gradient."""
    t_leaves = [torch.tensor(v, requires_grad=True) for v in graph["leaves"]]
    t_values = replay(torch_library(torch), t_leaves, graph)
    t_values[-1].backward()
    values = [t.detach().numpy() for t in t_values]
    grads = [np.zeros(t.shape) if t.grad is None else t.grad.numpy() for t in t_leaves]  # None: leaf unused
    return values, grads


@SETTINGS
@given(graphs())
def test_random_graph_gradients_match_central_differences(graph):
    leaves, values = build(graph)
    root = values[-1]
    expected_root = replay(NUMPY, graph["leaves"], graph)[-1]
    np.testing.assert_allclose(root.item(), expected_root, rtol=1e-12, atol=1e-12)
    root.backward()
    for i, (leaf, expected) in enumerate(zip(leaves, central_leaf_grads(graph))):
        np.testing.assert_allclose(leaf.grad, expected, rtol=1e-5, atol=1e-6,
                                   err_msg=f"leaf x{i}, program {graph['program']}")


@SETTINGS
@given(graphs())
def test_random_graph_gradients_match_torch(graph):
    torch = pytest.importorskip("torch")
    leaves, values = build(graph)
    values[-1].backward()
    t_values, t_grads = torch_replay(torch, graph)
    for node, t in zip(values, t_values):
        np.testing.assert_allclose(node.data, t, rtol=1e-10, atol=1e-12)
    for i, (leaf, t_grad) in enumerate(zip(leaves, t_grads)):
        np.testing.assert_allclose(leaf.grad, t_grad, rtol=1e-10, atol=1e-12,
                                   err_msg=f"leaf x{i}, program {graph['program']}")
