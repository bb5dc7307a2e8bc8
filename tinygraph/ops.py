"""The built-in operations, each written once as forward + vector-Jacobian product.

Every op here uses the same `@op` decorator a user gets. The vjp closes over
input and output *values* (floats or arrays), never over Nodes, so a graph holds
no reference cycles and is freed as soon as its root is dropped.

Ops marked `scalars=True` also accept Python floats, the engine's fast path for
0-d values; their helpers (`_div`, `_power`, `_unary`) make floats behave like
numpy (inf and nan with a warning, never ZeroDivisionError).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np

from .core import Node, broadcast_axes, op, sum_to_shape

# -- helpers ------------------------------------------------------------------------


def _times_to(g: Any, x: Any, like: Any) -> Any:
    """g * x summed down to the shape of the input value `like`.

    Where a sum is needed and g and x have the same shape, einsum multiplies and
    sums in one pass, without a full-size temporary (a weight's gradient in
    `xhat * weight` is the sum over the batch of g * xhat).
    """
    if g.__class__ is float or (like.__class__ is float and x.__class__ is float):
        return g * x
    shape = () if like.__class__ is float else like.shape
    if g.shape == shape or x.__class__ is float or x.shape != g.shape:
        return sum_to_shape(g * x, shape)
    return np.einsum(_product_sum(g.shape, shape), g, x).reshape(shape)


@functools.lru_cache(maxsize=1024)
def _product_sum(big: tuple[int, ...], shape: tuple[int, ...]) -> str:
    """einsum subscripts for "multiply two arrays of shape `big`, sum down to `shape`": "ab,ab->b"."""
    letters = "abcdefghijklmnopqrstuvwxyz"[:len(big)]
    summed = broadcast_axes(big, shape)
    kept = "".join(c for i, c in enumerate(letters) if i not in summed)
    return f"{letters},{letters}->{kept}"


def _div(a: Any, b: Any) -> Any:
    if b.__class__ is float and a.__class__ is float and b == 0.0:
        return float(np.float64(a) / b)  # inf or nan with numpy's warning
    return a / b


def _power(x: Any, p: float) -> Any:
    if x.__class__ is float:
        try:
            y = x ** p
        except ZeroDivisionError:
            y = None
        return y if y.__class__ is float else float(np.power(np.float64(x), p))  # nan, not complex
    return x ** p  # numpy's fast paths for p = 2, 0.5, -1


def _unary(math_fn: Callable, numpy_fn: Callable) -> Callable:
    """Use `math` on a float (fast), numpy on arrays and where math would raise."""
    def apply(x: Any) -> Any:
        if x.__class__ is float:
            try:
                return math_fn(x)
            except (ValueError, OverflowError):
                return float(numpy_fn(np.float64(x)))
        return numpy_fn(x)
    return apply


_sqrt = _unary(math.sqrt, np.sqrt)
_exp = _unary(math.exp, np.exp)
_log = _unary(math.log, np.log)
_tanh = _unary(math.tanh, np.tanh)


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(sorted(a % ndim if ndim else a for a in axes))


def _spread(g: Any, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    """Broadcast a reduction's gradient back over the reduced axes of `x`."""
    if not keepdims:
        g = np.expand_dims(g, _axes(axis, x.ndim))
    return np.broadcast_to(g, x.shape)


# -- arithmetic -----------------------------------------------------------------------

# broadcast=True: the vjps return gradients in the broadcast shape and the engine
# sums each one down to its input's shape (see `tinygraph.core.sum_to_shape`).

@op(formula="{0} + {1}", scalars=True, broadcast=True)
def add(a, b):
    def vjp(g):
        return g, g
    return a + b, vjp


@op(formula="{0} - {1}", scalars=True, broadcast=True)
def sub(a, b):
    def vjp(g):
        # summed first: negating the smaller array is cheaper
        return g, -sum_to_shape(g, () if b.__class__ is float else b.shape)
    return a - b, vjp


@op(formula="{0} * {1}", scalars=True, broadcast=True)
def mul(a, b):
    if a.__class__ is float and b.__class__ is float:  # the scalar fast path: no helper calls
        def vjp(g):
            return g * b, g * a
    else:
        def vjp(g):
            return _times_to(g, b, a), _times_to(g, a, b)
    return a * b, vjp


@op(formula="{0} / {1}", scalars=True, broadcast=True)
def div(a, b):
    y = _div(a, b)

    def vjp(g):
        ga = _div(g, b)
        return ga, -_times_to(ga, y, b)  # summed first: negating the smaller array is cheaper
    return y, vjp


@op(formula="-{0}", scalars=True)
def neg(x):
    def vjp(g):
        return (-g,)
    return -x, vjp


@op(formula="{0} ** {p}", scalars=True)
def pow(x, *, p):  # noqa: A001 - the op is called pow, as in Python
    """x ** p for a number p (the exponent is a setting, not an input)."""
    def vjp(g):
        if x.__class__ is float:
            return (g * p * _power(x, p - 1),)
        dx = x * p if p == 2 else _power(x, p - 1) * p  # one new array, then scaled in place
        dx *= g
        return (dx,)
    return _power(x, p), vjp


@op(formula="{0} @ {1}", broadcast=True)
def matmul(a, b):
    """Matrix product with numpy's rules, including 1-D operands and batch broadcasting."""
    y = a @ b

    def vjp(g):
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
    return y, vjp


# -- elementwise functions ---------------------------------------------------------------

@op(scalars=True)
def sqrt(x):
    y = _sqrt(x)

    def vjp(g):
        return (_div(g, 2.0 * y),)
    return y, vjp


@op(scalars=True)
def exp(x):
    y = _exp(x)

    def vjp(g):
        return (g * y,)
    return y, vjp


@op(scalars=True)
def log(x):
    def vjp(g):
        return (_div(g, x),)
    return _log(x), vjp


@op(scalars=True)
def tanh(x):
    y = _tanh(x)

    def vjp(g):
        return (g * (1.0 - y * y),)
    return y, vjp


@op(scalars=True)
def relu(x):
    """max(x, 0); the gradient at exactly 0 is 0."""
    def vjp(g):
        return (g * (x > 0),)
    return (max(x, 0.0) if x.__class__ is float else np.maximum(x, 0.0)), vjp


# -- reductions and shape ------------------------------------------------------------------

@op(name="sum")
def sum_(x, *, axis=None, keepdims=False):
    """Sum over `axis` (None: all); each input entry receives the output's gradient."""
    def vjp(g):
        return (_spread(g, x, axis, keepdims),)
    return np.sum(x, axis=_tuple(axis), keepdims=keepdims), vjp


@op
def mean(x, *, axis=None, keepdims=False):
    """Mean over `axis`; each input entry receives 1/n of the output's gradient."""
    y = np.add.reduce(x, axis=_tuple(axis), keepdims=keepdims)  # np.mean's sum, without its Python wrapper
    n = x.size // y.size if y.size else 1
    y = y / n

    def vjp(g):
        return (_spread(g / n, x, axis, keepdims),)
    return y, vjp


@op
def reshape(x, *, shape):
    def vjp(g):
        return (g.reshape(x.shape),)
    return x.reshape(shape), vjp


@op
def transpose(x, *, axes=None):
    """Reverse the axes (numpy's default) or permute them by `axes`."""
    def vjp(g):
        return (np.transpose(g, None if axes is None else np.argsort(axes)),)
    return np.transpose(x, axes), vjp


def _tuple(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


# -- Node's operators and methods ---------------------------------------------------------

def _no_node_exponent(*_: Any) -> None:
    raise TypeError("** needs a plain number as exponent (x ** 2); for a Node exponent "
                    "write tg.exp(y * tg.log(x))")


def _shape_args(shape: tuple) -> tuple:
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def _settings(**kwargs: Any) -> dict:
    """Keep only the settings that differ from their defaults, so reprs stay short."""
    return {k: v for k, v in kwargs.items() if v is not None and v is not False}


def _pow_method(x: Node, p: Any) -> Node:
    if isinstance(p, Node):
        _no_node_exponent()
    if not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"** needs a plain number as exponent, got {type(p).__name__}")
    return pow(x, p=p)


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
Node.sqrt = sqrt
Node.exp = exp
Node.log = log
Node.tanh = tanh
Node.relu = relu
Node.sum = lambda self, axis=None, keepdims=False: sum_(self, **_settings(axis=axis, keepdims=keepdims))
Node.mean = lambda self, axis=None, keepdims=False: mean(self, **_settings(axis=axis, keepdims=keepdims))
Node.reshape = lambda self, *shape: reshape(self, shape=_shape_args(shape))
Node.transpose = lambda self, *axes: transpose(self, **_settings(axes=_shape_args(axes) or None))
Node.T = property(lambda self: transpose(self))
