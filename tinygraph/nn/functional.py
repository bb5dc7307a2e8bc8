"""Normalization and linear layers as plain functions, built only from primitive ops.

Nothing here has its own vjp: every function composes `mean`, `-`, `** 2`, `+`,
`sqrt`, `/`, `*` and `@`, so autograd finds the gradient by itself and a
drawing of the graph shows every path, e.g. the two ways from `x` to `xc`
(directly, and through `mu`: the mean's "triangle") and the second use of
`xc` by the variance. The intermediate nodes carry the names of the textbook
derivations:

    mu = mean(x)    xc = x - mu    sq = xc ** 2    var = mean(sq)
    var_eps = var + eps    std = sqrt(var_eps)    xhat = xc / std
    scaled = xhat * weight    y = scaled + bias

Each call opens a scope ("layernorm", "batchnorm", "rmsnorm", "linear"), so the
nodes are drawn grouped in a labelled box, nested inside any outer scope.
"""

from __future__ import annotations

from typing import Any

from .. import ops  # noqa: F401 - gives Node its operators, whoever imports this first
from ..core import Node, constant, scope

__all__ = [
    "layer_norm", "batch_norm", "rms_norm", "linear",
    "as_input", "normalize", "affine", "rms_body", "linear_body", "running_norm", "named",
]


def as_input(x: Any, who: str) -> Node:
    """A layer's input as a Node: a Node is used as it is, an array becomes a new leaf "x".

    The leaf holds a copy, so the caller's array is never changed.
    """
    if isinstance(x, Node):
        return x
    try:
        return Node(x, name="x")
    except TypeError as exc:
        raise TypeError(f"{who}: input must be a Node or an array of numbers; {exc}") from None


def normalize(x: Node, axis: int, weight: Any = None, bias: Any = None, eps: float = 1e-5,
              eps_on_sigma: bool = False) -> Node:
    """(x - mean) / std along `axis`, then `* weight + bias`: the shared body of layer and batch norm.

    std is sqrt(var + eps) with the biased variance, as PyTorch; with `eps_on_sigma`
    it is `std_eps = sqrt(var) + eps` instead (the convention of some derivations). No scope
    is opened here: the callers open theirs.
    """
    mu = named(x.mean(axis=axis, keepdims=True), "mu")
    xc = named(x - mu, "xc")
    var = named(named(xc ** 2, "sq").mean(axis=axis, keepdims=True), "var")
    if eps_on_sigma:
        denom = named(named(var.sqrt(), "std") + eps, "std_eps")
    else:
        denom = named(named(var + eps, "var_eps").sqrt(), "std")
    return affine(named(xc / denom, "xhat"), weight, bias)


def affine(xhat: Node, weight: Any = None, bias: Any = None) -> Node:
    """`xhat * weight + bias`, skipping the parts that are None; the last node is named "y"."""
    if weight is None and bias is None:
        return xhat
    y = xhat
    if weight is not None:
        y = named(y * weight, "scaled" if bias is not None else "y")
    if bias is not None:
        y = named(y + bias, "y")
    return y


def layer_norm(x: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5,
               eps_on_sigma: bool = False) -> Node:
    """Layer normalization over the last axis: `(x - mu) / sqrt(var + eps) * weight + bias`.

    `mu` and the biased `var` are per row (`keepdims`, so they broadcast back).
    `eps_on_sigma=True` divides by `sqrt(var) + eps` instead.
    """
    x = as_input(x, "layer_norm")
    _check_ndim(x, "layer_norm", at_least=1)
    with scope("layernorm"):
        return normalize(x, -1, weight, bias, eps, eps_on_sigma)


def batch_norm(x: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> Node:
    """Batch normalization with the batch's own statistics: the same formula over axis 0."""
    x = as_input(x, "batch_norm")
    _check_ndim(x, "batch_norm", exactly=2)
    with scope("batchnorm"):
        return normalize(x, 0, weight, bias, eps)


def rms_norm(x: Any, weight: Any = None, eps: float = 1e-5) -> Node:
    """RMS normalization over the last axis: `x / sqrt(mean(x ** 2) + eps) * weight`.

    No mean is subtracted, so there is no triangle: x reaches xhat directly and
    through the mean of squares `ms`.
    """
    x = as_input(x, "rms_norm")
    _check_ndim(x, "rms_norm", at_least=1)
    with scope("rmsnorm"):
        return rms_body(x, weight, eps)


def rms_body(x: Node, weight: Any, eps: float) -> Node:
    """The nodes of RMSNorm: sq, ms, ms_eps, rms, xhat and (with a weight) y."""
    ms = named(named(x ** 2, "sq").mean(axis=-1, keepdims=True), "ms")
    rms = named(named(ms + eps, "ms_eps").sqrt(), "rms")
    return affine(named(x / rms, "xhat"), weight)


def linear(x: Any, weight: Any, bias: Any = None) -> Node:
    """`x @ weight + bias`, with `weight` of shape (n_in, n_out) as in the textbook `xW + b`."""
    x = as_input(x, "linear")
    with scope("linear"):
        return linear_body(x, weight, bias)


def linear_body(x: Node, weight: Any, bias: Any) -> Node:
    """The nodes of a linear layer: `xw = x @ weight`, then `y = xw + bias`."""
    if bias is None:
        return named(x @ weight, "y")
    return named(named(x @ weight, "xw") + bias, "y")


def running_norm(x: Node, mean: Any, var: Any, weight: Any, bias: Any, eps: float) -> Node:
    """Normalization with fixed statistics (BatchNorm1d in eval mode); they enter as constants."""
    xc = named(x - named(constant(mean), "running_mean"), "xc")
    std = named(named(named(constant(var), "running_var") + eps, "var_eps").sqrt(), "std")
    return affine(named(xc / std, "xhat"), weight, bias)


def named(node: Node, name: str) -> Node:
    """Give `node` a name (shown in drawings, tables and captions) and return it."""
    node.name = name
    return node


def _check_ndim(x: Node, who: str, at_least: int = 0, exactly: int | None = None) -> None:
    if exactly is not None and x.ndim != exactly:
        raise ValueError(f"{who}: expected input of shape (N, D), got shape {x.shape}")
    if x.ndim < at_least:
        raise ValueError(f"{who}: expected input with at least {at_least} dimension, got shape {x.shape}")
