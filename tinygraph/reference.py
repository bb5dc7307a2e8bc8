"""Closed-form backward formulas for the norm layers, in plain numpy, to compare with autograd.

Autograd in `tg.nn` finds these gradients by walking every path of the graph;
the functions here are the hand-derived answers, written the ways textbooks
and course notes write them:

* `layernorm_backward`, `batchnorm_backward`, `rmsnorm_backward`: the compact
  form (cs231n), three reductions and no loop;
* `batchnorm_backward_staged`: the same gradient one node at a time, backwards
  through the numbered graph x -> mu -> xc -> sq -> var -> std -> istd -> xhat -> y;
* `batchnorm_backward_terms`: the chain rule written as a sum of terms, optionally
  without the dvar/dmu term (which is zero, because the xc sum to zero);
* `layernorm_jacobian`, `layernorm_backward_per_element`: the per-element
  derivative dy_k/dx_i, for the usual sqrt(var + eps) and for the
  "eps on sigma" convention (x - mu) / (sigma + eps).

Conventions: biased variance, std = sqrt(var + eps), as PyTorch. `weight=None`
means ones (a layer without affine parameters).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "layernorm_forward", "layernorm_backward", "batchnorm_forward", "batchnorm_backward",
    "rmsnorm_forward", "rmsnorm_backward", "batchnorm_backward_staged", "batchnorm_backward_terms",
    "layernorm_jacobian", "layernorm_backward_per_element",
]

Grads = tuple[np.ndarray, np.ndarray, np.ndarray]


# -- forward ----------------------------------------------------------------------

def layernorm_forward(x: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5,
                      eps_on_sigma: bool = False) -> np.ndarray:
    """y = (x - mu) / sqrt(var + eps) * weight + bias over the last axis.

    With `eps_on_sigma`: y = (x - mu) / (sqrt(var) + eps) * weight + bias.
    """
    x = _array(x, "x")
    weight, bias = _params(x, weight, "weight"), _params(x, bias, "bias", fill=0.0)
    return _normalized(x, -1, eps, eps_on_sigma)[2] * weight + bias


def batchnorm_forward(x: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> np.ndarray:
    """y = (x - mu) / sqrt(var + eps) * weight + bias, with mu and var over the batch (axis 0)."""
    x = _array(x, "x", ndim=2)
    weight, bias = _params(x, weight, "weight"), _params(x, bias, "bias", fill=0.0)
    return _normalized(x, 0, eps)[2] * weight + bias


def rmsnorm_forward(x: Any, weight: Any = None, eps: float = 1e-5) -> np.ndarray:
    """y = x / sqrt(mean(x ** 2) + eps) * weight over the last axis."""
    x = _array(x, "x")
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * _params(x, weight, "weight")


# -- backward: compact forms ----------------------------------------------------------

def layernorm_backward(dout: Any, x: Any, weight: Any, eps: float = 1e-5) -> Grads:
    """Gradients of LayerNorm over the last axis (any leading dims), in the compact form.

    With D features per row, std = sqrt(var + eps), xhat = (x - mu) / std and
    dxhat = dout * weight:

        dx      = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / std      (means over the row)
        dweight = sum over rows of dout * xhat
        dbias   = sum over rows of dout

    The three terms of dx are the three paths from x to xhat: directly, through
    mu, and through var.
    """
    dout, x, weight = _inputs(dout, x, weight)
    return _compact_backward(dout, x, weight, eps, axis=-1)


def batchnorm_backward(dout: Any, x: Any, weight: Any, eps: float = 1e-5) -> Grads:
    """Gradients of BatchNorm (training statistics, x of shape (N, D)), in the compact form.

    With std = sqrt(var + eps), xhat = (x - mu) / std and dxhat = dout * weight,
    mu and var taken over the batch (axis 0):

        dx      = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / std      (means over axis 0)
        dweight = sum over axis 0 of dout * xhat
        dbias   = sum over axis 0 of dout

    Written with N: dx = (N * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)) / (N * std).
    """
    dout, x, weight = _inputs(dout, x, weight, ndim=2)
    return _compact_backward(dout, x, weight, eps, axis=0)


def rmsnorm_backward(dout: Any, x: Any, weight: Any, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of RMSNorm over the last axis: returns (dx, dweight).

    With rms = sqrt(mean(x ** 2) + eps), xhat = x / rms and dxhat = dout * weight:

        dx      = (dxhat - xhat * mean(dxhat * xhat)) / rms      (mean over the row)
        dweight = sum over rows of dout * xhat

    Like LayerNorm without the mean path: x reaches xhat directly and through rms.
    """
    dout, x, weight = _inputs(dout, x, weight)
    rms = np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    xhat = x / rms
    dxhat = dout * weight
    dx = (dxhat - xhat * np.mean(dxhat * xhat, axis=-1, keepdims=True)) / rms
    return dx, _sum_rows(dout * xhat)


def _compact_backward(dout: np.ndarray, x: np.ndarray, weight: np.ndarray, eps: float, axis: int) -> Grads:
    std, _, xhat = _normalized(x, axis, eps)
    dxhat = dout * weight
    dx = (dxhat - np.mean(dxhat, axis=axis, keepdims=True)
          - xhat * np.mean(dxhat * xhat, axis=axis, keepdims=True)) / std
    return dx, _sum_rows(dout * xhat), _sum_rows(dout)


# -- backward: the long ways ------------------------------------------------------------

def batchnorm_backward_staged(dout: Any, x: Any, weight: Any, eps: float = 1e-5) -> Grads:
    """BatchNorm's gradients one graph node at a time, as in the cs231n staged solution.

    The forward graph, numbered:

        (1) x   (2) mu = mean(x)   (3) xc = x - mu   (4) sq = xc ** 2   (5) var = mean(sq)
        (6) std = sqrt(var + eps)  (7) istd = 1 / std  (8) xhat = xc * istd
        (10) scaled = xhat * weight   (12) y = scaled + bias

    Backward, each line one edge of the graph: d(8) -> d(3) and d(7); d(7) -> d(6)
    = -d(7) / std ** 2; d(6) -> d(5) = d(6) / (2 std); d(5) -> d(4) = d(5) / N;
    d(4) -> d(3) = 2 xc d(4); d(3) -> d(1) and d(2) = -sum(d(3)); d(2) -> d(1) = d(2) / N.
    x receives two contributions: from xc directly and from mu.
    """
    dout, x, weight = _inputs(dout, x, weight, ndim=2)
    n = x.shape[0]
    mu = x.mean(axis=0)
    xc = x - mu
    var = np.mean(xc ** 2, axis=0)
    std = np.sqrt(var + eps)
    istd = 1.0 / std
    xhat = xc * istd

    dbias = dout.sum(axis=0)
    dweight = (dout * xhat).sum(axis=0)
    dxhat = dout * weight                   # (10) -> (8)
    dxc = dxhat * istd                      # (8) -> (3), first use of xc
    distd = (dxhat * xc).sum(axis=0)        # (8) -> (7)
    dstd = -distd / std ** 2                # (7) -> (6)
    dvar = 0.5 * dstd / std                 # (6) -> (5)
    dsq = np.ones_like(x) * dvar / n        # (5) -> (4)
    dxc = dxc + 2 * xc * dsq                # (4) -> (3), second use of xc
    dmu = -dxc.sum(axis=0)                  # (3) -> (2)
    dx = dxc + np.ones_like(x) * dmu / n    # (3) -> (1) plus (2) -> (1): the triangle
    return dx, dweight, dbias


def batchnorm_backward_terms(dout: Any, x: Any, weight: Any, eps: float = 1e-5, dv_dmu: bool = True) -> Grads:
    """BatchNorm's dx as the chain rule's sum of terms (Ioffe & Szegedy 2015, with var + eps inside sqrt).

    With std = sqrt(var + eps) and dxhat = dout * weight (sums over the batch, i = 1..N):

        dL/dvar = sum_i dxhat_i * (x_i - mu) * (-1/2) * (var + eps) ** (-3/2)
        dL/dmu  = sum_i dxhat_i * (-1 / std)  +  dL/dvar * dvar/dmu,
                  dvar/dmu = -2/N * sum_i (x_i - mu)
        dL/dx_i = dxhat_i / std  +  dL/dvar * 2 (x_i - mu) / N  +  dL/dmu / N

    dvar/dmu is zero, since the x_i - mu sum to zero: `dv_dmu=False` leaves that
    term out and gives the same dx (up to rounding).
    """
    dout, x, weight = _inputs(dout, x, weight, ndim=2)
    n = x.shape[0]
    std, xc, xhat = _normalized(x, 0, eps)
    dxhat = dout * weight
    dvar = np.sum(dxhat * xc, axis=0) * -0.5 * std ** -3
    dmu = np.sum(-dxhat / std, axis=0)
    if dv_dmu:
        dmu = dmu + dvar * -2.0 * np.mean(xc, axis=0)
    dx = dxhat / std + dvar * 2.0 * xc / n + dmu / n
    return dx, _sum_rows(dout * xhat), _sum_rows(dout)


def layernorm_jacobian(x: Any, weight: Any = None, eps: float = 1e-5, eps_on_sigma: bool = False) -> np.ndarray:
    """J[..., k, i] = dy_k / dx_i for LayerNorm over the last axis (D features), shape (..., D, D).

    With sigma = sqrt(var) and s the denominator, s = sqrt(var + eps) (PyTorch) or
    s = sigma + eps (`eps_on_sigma`, the derivation of "Backpropagation through a
    layer norm"):

        dy_k/dx_i = weight_k * ( (delta_ik - dmu/dx_i) / s  -  (x_k - mu) / s ** 2 * ds/dx_i )
        dmu/dx_i  = 1 / D
        ds/dx_i   = (x_i - mu) / (D * s)        if s = sqrt(var + eps)
                  = (x_i - mu) / (D * sigma)    if s = sigma + eps
    """
    x = _array(x, "x")
    weight = _params(x, weight, "weight")
    d = x.shape[-1]
    s, xc, _ = _normalized(x, -1, eps, eps_on_sigma)
    root = np.sqrt(np.mean(xc ** 2, axis=-1, keepdims=True)) if eps_on_sigma else s
    ds_dx = xc / (d * root)
    direct = (np.eye(d) - 1.0 / d) / s[..., None]
    through_s = xc[..., :, None] / s[..., None] ** 2 * ds_dx[..., None, :]
    return weight[:, None] * (direct - through_s)


def layernorm_backward_per_element(dout: Any, x: Any, weight: Any, eps: float = 1e-5,
                                   eps_on_sigma: bool = False) -> Grads:
    """LayerNorm's gradients from the per-element derivative: dx_i = sum_k dout_k * dy_k/dx_i.

    dy_k/dx_i is `layernorm_jacobian` (D x D per row); dweight = sum over rows of
    dout * xhat and dbias = sum over rows of dout, with xhat = (x - mu) / s.
    Slow (it builds the whole Jacobian), but each entry is a formula you can check by hand.
    """
    dout, x, weight = _inputs(dout, x, weight)
    jac = layernorm_jacobian(x, weight, eps, eps_on_sigma)
    dx = np.einsum("...k,...ki->...i", dout, jac)
    xhat = _normalized(x, -1, eps, eps_on_sigma)[2]
    return dx, _sum_rows(dout * xhat), _sum_rows(dout)


# -- helpers ---------------------------------------------------------------------------

def _normalized(x: np.ndarray, axis: int, eps: float, eps_on_sigma: bool = False):
    """(s, xc, xhat): the denominator, x - mu and (x - mu) / s, with keepdims shapes."""
    xc = x - np.mean(x, axis=axis, keepdims=True)
    var = np.mean(xc * xc, axis=axis, keepdims=True)
    s = np.sqrt(var) + eps if eps_on_sigma else np.sqrt(var + eps)
    return s, xc, xc / s


def _sum_rows(a: np.ndarray) -> np.ndarray:
    """Sum over every axis but the last: a parameter's gradient from per-row terms."""
    return a.reshape(-1, a.shape[-1]).sum(axis=0)


def _floats(a: Any, what: str) -> np.ndarray:
    """`a` as a float64 array (no copy when it already is one: nothing here writes into it)."""
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number or an array of numbers, got {type(a).__name__}") from None


def _array(a: Any, what: str, ndim: int | None = None) -> np.ndarray:
    arr = _floats(a, what)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{what} must have shape (N, D), got shape {arr.shape}")
    if arr.ndim == 0:
        raise ValueError(f"{what} must have at least one axis, got a scalar")
    return arr


def _params(x: np.ndarray, p: Any, what: str, fill: float = 1.0) -> np.ndarray:
    d = x.shape[-1]
    if p is None:
        return np.full(d, fill)
    p = _floats(p, what)
    if p.shape != (d,):
        raise ValueError(f"{what} must have shape ({d},) to match x of shape {x.shape}, got shape {p.shape}")
    return p


def _inputs(dout: Any, x: Any, weight: Any, ndim: int | None = None):
    x = _array(x, "x", ndim)
    dout = _floats(dout, "dout")
    if dout.shape != x.shape:
        raise ValueError(f"dout must have the shape of x: got dout {dout.shape} and x {x.shape}")
    return dout, x, _params(x, weight, "weight")
