"""The built-in operations, each written once as forward + vector-Jacobian product.

Every op here uses the same `@op` decorator a user gets, and its vjp is the
textbook rule: for `y = a * b`, `dL/da = g * b` and `dL/db = g * a`, where
`g = dL/dy` is the gradient arriving from above. The vjps close over input and
output *values* (arrays), never over Nodes, so a graph holds no reference cycles.

With `broadcast=True` a vjp may return a gradient in the broadcast shape; the
engine sums it down to its input's shape (`core.sum_to_shape`).

A few ops have a faster variant right under their rule (`@rule.faster_variant`):
the same gradients with fewer full-size temporary arrays, which matters for the
norm layers' big tensors. Calls use the variant; tests/test_engine_textbook.py
runs both on the same inputs and requires the same results.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .core import Node, op, sum_to_shape

# -- arithmetic -----------------------------------------------------------------------


@op(formula="{0} + {1}", broadcast=True)
def add(a, b):
    def vjp(g):
        return g, g
    return a + b, vjp


@op(formula="{0} - {1}", broadcast=True)
def sub(a, b):
    def vjp(g):
        return g, -g
    return a - b, vjp


@sub.faster_variant
def sub(a, b):  # noqa: F811 - the faster variant of the rule above
    def vjp(g):
        return g, -sum_to_shape(g, b.shape)  # summed down first: negating the smaller array is cheaper
    return a - b, vjp


@op(formula="{0} * {1}", broadcast=True)
def mul(a, b):
    def vjp(g):
        return g * b, g * a
    return a * b, vjp


@mul.faster_variant
def mul(a, b):  # noqa: F811
    def vjp(g):  # a broadcast input's gradient: multiply and sum down in one pass, no full-size product
        return _times(g, b, like=a), _times(g, a, like=b)
    return a * b, vjp


@op(formula="{0} / {1}", broadcast=True)
def div(a, b):
    def vjp(g):
        return g / b, -g * a / b ** 2
    return a / b, vjp


@div.faster_variant
def div(a, b):  # noqa: F811
    y = a / b

    def vjp(g):
        ga = g / b  # -g * a / b**2 = -(g / b) * (a / b): reuse both
        return ga, -_times(ga, y, like=b)
    return y, vjp


def _times(g: np.ndarray, x: np.ndarray, like: np.ndarray) -> np.ndarray:
    """g * x; when `like` was broadcast, summed down to its shape in one einsum pass.

    Without it the engine would sum the full-size product g * x (a weight's
    gradient in `xhat * weight`: the product over the whole batch, then its sum).
    """
    if like.shape == g.shape or x.shape != g.shape:
        return g * x  # nothing to sum, or x broadcast too: the engine sums what is left
    lead = g.ndim - like.ndim
    letters = "abcdefghijklmnopqrstuvwxyz"[:g.ndim]
    kept = "".join(c for i, c in enumerate(letters) if i >= lead and like.shape[i - lead] == g.shape[i])
    return np.einsum(f"{letters},{letters}->{kept}", g, x).reshape(like.shape)


@op(formula="-{0}")
def neg(x):
    def vjp(g):
        return (-g,)
    return -x, vjp


@op(formula="{0} ** {p}")
def pow(x, *, p):  # noqa: A001 - the op is called pow, as in Python
    """x ** p for a number p (the exponent is a setting, not an input)."""
    def vjp(g):
        if p == 0:  # x ** 0 is the constant 1 (the rule below would give 0 * inf = nan at x = 0)
            return (np.zeros_like(x),)
        return (g * p * np.power(x, p - 1),)
    return np.power(x, p), vjp


@pow.faster_variant
def pow(x, *, p):  # noqa: A001, F811
    def vjp(g):
        if p == 0:
            return (np.zeros_like(x),)
        dx = x * 2.0 if p == 2 else p * np.power(x, p - 1)  # one new array, then multiplied by g in place
        dx *= g
        return (dx,)
    return np.power(x, p), vjp


@op(formula="{0} @ {1}", broadcast=True)
def matmul(a, b):
    """Matrix product with numpy's rules, including 1-D operands and batch broadcasting."""
    def vjp(g):
        # a 1-D operand is a row (a) or a column (b) for the rule dA = G B^T, dB = A^T G
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        ga = g2 @ np.swapaxes(b2, -1, -2)
        gb = np.swapaxes(a2, -1, -2) @ g2
        if a.ndim == 1:
            ga = ga[..., 0, :]
        if b.ndim == 1:
            gb = gb[..., 0]
        return ga, gb
    return a @ b, vjp


# -- elementwise functions ---------------------------------------------------------------

@op
def sqrt(x):
    y = np.sqrt(x)

    def vjp(g):
        return (g / (2 * y),)
    return y, vjp


@op
def exp(x):
    y = np.exp(x)

    def vjp(g):
        return (g * y,)
    return y, vjp


@op
def log(x):
    def vjp(g):
        return (g / x,)
    return np.log(x), vjp


@op
def tanh(x):
    y = np.tanh(x)

    def vjp(g):
        return (g * (1 - y ** 2),)
    return y, vjp


@op
def relu(x):
    """max(x, 0); the gradient at exactly 0 is 0."""
    def vjp(g):
        return (g * (x > 0),)
    return np.maximum(x, 0.0), vjp


# -- reductions, shape and indexing --------------------------------------------------------

@op(name="sum")
def sum_(x, *, axis=None, keepdims=False):
    """Sum over `axis` (None: all); each input entry receives the output's gradient."""
    def vjp(g):
        return (_spread(g, x, axis, keepdims),)
    return np.sum(x, axis=_tuple(axis), keepdims=keepdims), vjp


@op
def mean(x, *, axis=None, keepdims=False):
    """Mean over `axis`; each input entry receives 1/n of the output's gradient."""
    y = np.mean(x, axis=_tuple(axis), keepdims=keepdims)
    n = x.size // max(y.size, 1)

    def vjp(g):
        return (_spread(g / n, x, axis, keepdims),)
    return y, vjp


@op(name="reshape")
def reshape_op(x, *, shape):
    def vjp(g):
        return (g.reshape(x.shape),)
    return x.reshape(shape), vjp


@op(name="transpose")
def transpose_op(x, *, axes=None):
    """Permute the axes by `axes` (None: reverse them, as numpy does)."""
    order = _permutation(axes, x.ndim)

    def vjp(g):
        return (np.transpose(g, np.argsort(order)),)  # the inverse permutation
    return np.transpose(x, order), vjp


def _index_formula(x: str, index: Any) -> str:
    parts = index if isinstance(index, tuple) else (index,)
    return f"{x}[{', '.join(_index_text(i) for i in parts)}]"


@op(formula=_index_formula)
def getitem(x, *, index):
    """x[index] with numpy's indexing; the gradient lands in the indexed entries (repeats add up)."""
    def vjp(g):
        dx = np.zeros_like(x)
        np.add.at(dx, index, g)
        return (dx,)
    return x[index], vjp


def _spread(g: Any, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    """Broadcast a reduction's gradient back over the reduced axes of `x`."""
    if not keepdims:
        g = np.expand_dims(g, _axes(axis, x.ndim))
    return np.broadcast_to(g, x.shape)


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(sorted(a % ndim if ndim else a for a in axes))


def _tuple(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


def _permutation(axes: Any, ndim: int) -> tuple[int, ...]:
    """`axes` as a permutation of range(ndim), negative axes counted from the end."""
    if axes is None:
        return tuple(reversed(range(ndim)))
    order = tuple(int(a) % ndim if ndim and -ndim <= a < ndim else a for a in axes)
    if sorted(order) != list(range(ndim)):
        raise ValueError(f"axes {tuple(axes)} are not a permutation of the {ndim} axes")
    return order


def _index_text(i: Any) -> str:
    if isinstance(i, slice):
        text = ("" if i.start is None else str(i.start)) + ":" + ("" if i.stop is None else str(i.stop))
        return text + ("" if i.step is None else f":{i.step}")
    if i is Ellipsis:
        return "..."
    if i is None:
        return "None"
    return str(np.asarray(i).tolist())


# -- the functions with numpy's calling conventions ------------------------------------------

def reshape(x: Any, *shape: Any) -> Node:
    """`x` with a new shape: `reshape(x, 2, 6)`, `reshape(x, (2, 6))`, -1 allowed."""
    return reshape_op(x, shape=_shape_args(shape))


def transpose(x: Any, *axes: Any) -> Node:
    """`x` with its axes reversed, or permuted: `transpose(x, 1, 0)`, `transpose(x, (-1, 0))`."""
    return transpose_op(x, **_settings(axes=_shape_args(axes) or None))


def _shape_args(shape: tuple) -> tuple:
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def _settings(**kwargs: Any) -> dict:
    """Keep only the settings that differ from their defaults, so reprs stay short."""
    return {k: v for k, v in kwargs.items() if v is not None and v is not False}


def _index(index: Any) -> Any:
    """An index as numpy takes it: Nodes and lists become integer (or bool) arrays."""
    parts = index if isinstance(index, tuple) else (index,)
    parts = tuple(np.asarray(i.data if isinstance(i, Node) else i) if isinstance(i, (Node, list)) else i
                  for i in parts)
    for i in parts:
        if isinstance(i, np.ndarray) and i.dtype.kind == "f":
            if not np.all(i == np.round(i)):
                raise IndexError(f"a Node can only be indexed by integers, slices or bool masks, got {i}")
    parts = tuple(i.astype(np.intp) if isinstance(i, np.ndarray) and i.dtype.kind == "f" else i for i in parts)
    return parts if isinstance(index, tuple) else parts[0]


# -- Node's operators and methods ---------------------------------------------------------

def _pow_method(x: Node, p: Any) -> Node:
    if isinstance(p, Node):
        _no_node_exponent()
    if not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"** needs a plain number as exponent, got {type(p).__name__}")
    return pow(x, p=p)


def _no_node_exponent(*_: Any) -> None:
    raise TypeError("** needs a plain number as exponent (x ** 2); for a Node exponent "
                    "write tg.exp(y * tg.log(x))")


Node.__add__ = add
Node.__radd__ = lambda self, other: add(other, self)
Node.__sub__ = sub
Node.__rsub__ = lambda self, other: sub(other, self)
Node.__mul__ = mul
Node.__rmul__ = lambda self, other: mul(other, self)
Node.__truediv__ = div
Node.__rtruediv__ = lambda self, other: div(other, self)
Node.__matmul__ = matmul
Node.__rmatmul__ = lambda self, other: matmul(other, self)
Node.__neg__ = neg
Node.__pow__ = _pow_method
Node.__rpow__ = _no_node_exponent
Node.__getitem__ = lambda self, index: getitem(self, index=_index(index))
Node.sqrt = sqrt
Node.exp = exp
Node.log = log
Node.tanh = tanh
Node.relu = relu
Node.sum = lambda self, axis=None, keepdims=False: sum_(self, **_settings(axis=axis, keepdims=keepdims))
Node.mean = lambda self, axis=None, keepdims=False: mean(self, **_settings(axis=axis, keepdims=keepdims))
Node.reshape = reshape
Node.transpose = transpose
Node.T = property(transpose)


# -- numpy functions called on a Node -----------------------------------------------------

_UFUNCS = {np.add: add, np.subtract: sub, np.multiply: mul, np.true_divide: div, np.negative: neg,
           np.matmul: matmul, np.sqrt: sqrt, np.exp: exp, np.log: log, np.tanh: tanh}
_FUNCTIONS = {np.sum: Node.sum, np.mean: Node.mean, np.reshape: reshape, np.transpose: transpose}


def _array_ufunc(self: Node, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
    """`np.exp(x)` is `tg.exp(x)`, and `ndarray * x` is `mul(ndarray, x)`; other ufuncs say what to use."""
    if method == "__call__" and not kwargs and ufunc in _UFUNCS:
        return _UFUNCS[ufunc](*inputs)
    if method == "__call__" and not kwargs and ufunc is np.power and isinstance(inputs[0], Node):
        return _pow_method(*inputs)
    raise TypeError(f"np.{ufunc.__name__} does not work on a tinygraph Node; use a tinygraph op "
                    f"(tg.exp, tg.sqrt, tg.log, tg.tanh, tg.relu, operators + - * / ** @) or apply numpy to node.data")


def _array_function(self: Node, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
    """`np.sum(x)`, `np.mean(x, axis=0)`, `np.reshape`, `np.transpose` are the tinygraph ops."""
    if func in _FUNCTIONS:
        return _FUNCTIONS[func](*args, **kwargs)
    name = func.__name__
    same = f"tg.{name}(x) or x.{name}()" if hasattr(Node, name) else "tinygraph's ops (x.sum(), tg.exp, ...)"
    raise TypeError(f"np.{name} does not work on a tinygraph Node; use {same}, or apply numpy to x.data")


Node.__array_ufunc__ = _array_ufunc
Node.__array_function__ = _array_function
