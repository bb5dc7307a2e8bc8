"""Checking gradients: central differences, gradcheck, the full Jacobian, relative error.

A backward formula is only trusted once it matches central differences,
(f(x + eps) - f(x - eps)) / (2 eps), whose error is O(eps^2): the usual
gradient check of the cs231n assignments.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from .core import Node, gradients
from .formatting import number


def rel_error(a: Any, b: Any) -> float:
    """max(|a - b| / max(1e-8, |a| + |b|)): about 1e-7 or less means the gradients agree."""
    a, b = _array(a, "rel_error"), _array(b, "rel_error")
    if a.shape != b.shape:
        raise ValueError(f"rel_error: the arrays have different shapes {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(_rel_errors(a, b)))


def _rel_errors(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))


def numerical_grad(f: Callable[[np.ndarray], Any], x: Any, eps: float = 1e-6) -> np.ndarray:
    """d f / d x by central differences, for a scalar function `f` of an ndarray.

    `f` is called on a working copy of `x` with one entry moved by +-eps at a time;
    `x` itself never changes. `f` may return a number, a one-element array or a Node.
    """
    work = _array(x, "numerical_grad")
    grad = np.zeros(work.shape)
    for i in np.ndindex(work.shape):
        old = work[i]
        work[i] = old + eps
        hi = _scalar(f(work))
        work[i] = old - eps
        lo = _scalar(f(work))
        work[i] = old
        grad[i] = (hi - lo) / (2 * eps)
    return grad


def jacobian(f: Callable[[Node], Node], x: Any) -> np.ndarray:
    """The full Jacobian d f(x) / d x, shape `out.shape + x.shape`, by one backward pass per output entry.

    The passes change no node's `.grad`, not even of Nodes that `f` closes over.
    """
    node = Node(_array(x, "jacobian"), name="x")
    out = _output(f(node), "jacobian")
    jac = np.zeros(out.shape + node.shape)
    for i in np.ndindex(out.shape):
        seed = np.zeros(out.shape)
        seed[i] = 1.0
        jac[i] = gradients(out, [node], seed)[0]
    return jac


def gradcheck(f: Callable[..., Node], *inputs: Any, eps: float = 1e-6, atol: float = 1e-6,
              rtol: float = 1e-5) -> bool:
    """Compare autograd with central differences for every input of `f`; True or AssertionError.

    `f` maps Nodes to a Node. Its inputs are named after f's parameters ("input0"
    when they have none) unless `f` names them. A non-scalar output is checked
    through a fixed random projection sum(w * out), so that a vjp that mixes up
    output entries cannot hide behind a sum of ones. An entry fails when
    |autograd - numerical| > atol + rtol * |numerical|.
    """
    arrays = [_array(x, "gradcheck") for x in inputs]
    names = _parameter_names(f, len(arrays))

    def run(values: list[np.ndarray]) -> tuple[list[Node], Node]:
        nodes = [Node(v, name=n) for v, n in zip(values, names)]
        return nodes, _output(f(*nodes), "gradcheck")

    nodes, out = run(arrays)
    w = np.ones(out.shape) if out.size == 1 else np.random.default_rng(0).normal(size=out.shape)
    analytic = gradients(out, nodes, w)  # touches no node's .grad
    for k, node in enumerate(nodes):
        def projected(value: np.ndarray, k: int = k) -> float:
            return float(np.sum(run(arrays[:k] + [value] + arrays[k + 1:])[1].data * w))
        numerical = numerical_grad(projected, arrays[k], eps)
        _compare(analytic[k], numerical, k, node.name, atol, rtol)
    return True


def _compare(analytic: np.ndarray, numerical: np.ndarray, k: int, name: str | None,
             atol: float, rtol: float) -> None:
    excess = np.abs(analytic - numerical) - (atol + rtol * np.abs(numerical))
    excess = np.where(np.isfinite(excess), excess, np.inf)
    if analytic.size == 0 or excess.max() <= 0:
        return
    worst = np.unravel_index(np.argmax(excess), analytic.shape)
    a, n = analytic[worst], numerical[worst]
    label = f"input {k}" + (f" ({name!r})" if name else "")
    at = f" at index {tuple(int(i) for i in worst)}" if analytic.ndim else ""
    raise AssertionError(
        f"gradcheck failed for {label}{at}: autograd gives {number(a, 8)}, central differences "
        f"give {number(n, 8)} (relative error {number(_rel_errors(a, n), 3)}; atol={atol:g}, rtol={rtol:g})")


def _parameter_names(f: Callable, n: int) -> list[str]:
    """f's positional parameter names where it has them, else "input0", "input1", ..."""
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    named = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [named[i] if i < len(named) else f"input{i}" for i in range(n)]


def _array(x: Any, where: str) -> np.ndarray:
    """A float64 copy of the caller's value, so nothing here can change it."""
    if isinstance(x, Node):
        x = x.data
    try:
        arr = np.array(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: expected a number or array, got {type(x).__name__}") from None
    return arr


def _output(out: Any, where: str) -> Node:
    if not isinstance(out, Node):
        raise TypeError(f"{where}: f must return a Node, got {type(out).__name__}")
    return out


def _scalar(value: Any) -> float:
    arr = np.asarray(value.data if isinstance(value, Node) else value, dtype=np.float64)
    if arr.size != 1:
        raise ValueError(f"numerical_grad: f must return a scalar, got shape {arr.shape}")
    return float(arr.reshape(()))
