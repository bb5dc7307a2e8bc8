"""The exercises that ship with tinygraph, each defined the way a teacher defines one.

Every forward is built from primitive ops with its intermediates named (mu,
var, ...), so autograd gives the right answer and `tg.paths` can split it by
the path it takes. Variants are known wrong answers the feedback can name.
"""

from __future__ import annotations

import numpy as np

from ..nn.functional import named  # name an intermediate (drawings, path feedback) and return it
from .definition import Variant, register

EPS = (1e-5, 1e-3, 0.1)  # several eps values: a large one tells sqrt(var + eps) from sigma + eps


def draw(rng: np.random.Generator, name: str, shape: tuple) -> np.ndarray:
    """x off-centre (so a missing mean shows), weight around 1 (so a missing weight shows)."""
    if name == "x":
        return rng.normal(0.5, 1.5, shape)
    if name == "weight":
        return rng.normal(1.0, 0.5, shape)
    return rng.normal(size=shape)


# -- mean_triangle -------------------------------------------------------------------------------


def mean_triangle(x):
    """y = x - mean(x): x reaches y directly and through mu."""
    mu = named(x.mean(), "mu")
    return named(x - mu, "y")


_MU_HINT = ("mu = mean(x) depends on every x_j (dmu/dx_j = 1/N), so every x_j also receives "
            "1/N of the gradient that arrives at mu.")

register(
    "mean_triangle", mean_triangle,
    inputs=[{"x": (5,)}, {"x": (8,)}, {"x": (3,)}, {"x": (6,)}],
    params=("x", "dout"),
    paths_through=("mu",),
    title="the gradient through the mean's triangle",
    statements=("mu = mean(x)", "y = x - mu"),
    shapes_text="x, dout: shape (N,).  Return dx, shape (N,): dL/dx when dL/dy = dout.",
    direct="the direct path x -> y",
    hints={"mu": _MU_HINT},
    zero_hint=("Adding the partial derivatives along every path (the '1 - 1 = 0' of the triangle) is not "
               "the gradient: each path carries dout, and dout differs between entries."),
    draw=draw,
)


# -- layer norm and batch norm ------------------------------------------------------------------


def normalize(axis: int, unbiased: bool = False, eps_on_sigma: bool = False):
    """The forward of layer norm (axis -1) or batch norm (axis 0); the flags make known mistakes."""
    def forward(x, weight, bias, eps):
        mu = named(x.mean(axis=axis, keepdims=True), "mu")
        xc = named(x - mu, "xc")
        sq = named(xc ** 2, "sq")
        if unbiased:
            var = named(sq.sum(axis=axis, keepdims=True) / (x.shape[axis] - 1), "var")
        else:
            var = named(sq.mean(axis=axis, keepdims=True), "var")
        if eps_on_sigma:
            std = named(var.sqrt() + eps, "std")
        else:
            std = named((var + eps).sqrt(), "std")
        xhat = named(xc / std, "xhat")
        return named(xhat * weight + bias, "y")
    return forward


_VAR_HINT = ("var depends on every x_j too: dvar/dx_j = 2 (x_j - mu) / N; send the gradient "
             "that arrives at var back to x along that edge.")
_NORM_NOTE = ("(The path through both mu and var carries zero: dvar/dmu = -2/N * sum(x - mu) = 0; "
              "leaving it out is fine.)")


def _ones_weight(inputs: dict) -> dict:
    return {**inputs, "weight": np.ones_like(inputs["weight"])}


def _norm_exercise(name: str, what: str, axis: int, sizes: list, shapes_text: str, other: str,
                   rows: str) -> None:
    register(
        name, normalize(axis),
        inputs=[{"x": (b, n), "weight": (n,), "bias": (n,), "eps": eps} for (b, n), eps in zip(sizes, EPS)],
        params=("dout", "x", "weight", "eps"),
        grads=("x", "weight", "bias"),
        paths_through=("mu", "var"),
        title=f"the {what} backward pass",
        statements=(f"mu = mean(x, axis={axis})", "xc = x - mu", f"var = mean(xc**2, axis={axis})",
                    "std = sqrt(var + eps)", "xhat = xc / std", "y = xhat * weight + bias"),
        shapes_text=shapes_text,
        direct="the direct path x -> xc -> xhat",
        hints={"mu": _MU_HINT, "var": _VAR_HINT},
        output_hints={"dweight": f"dweight is the sum of dout * xhat over {rows}: every row uses the same weight.",
                      "dbias": f"dbias is the sum of dout over {rows}: every row uses the same bias."},
        note=_NORM_NOTE,
        count_axis=axis,
        variants=(
            Variant("you put eps on sigma, (x - mu) / (sigma + eps), as some derivations do; here the "
                    "denominator is sqrt(var + eps)", forward=normalize(axis, eps_on_sigma=True)),
            Variant("you used the unbiased variance, sum((x - mu)**2) / (N - 1); normalisation uses the "
                    "biased one, mean((x - mu)**2), dividing by N", forward=normalize(axis, unbiased=True)),
            Variant(f"you normalised over the wrong axis: that is {other}", forward=normalize(-1 - axis)),
            Variant("you left out weight: the gradient arriving at xhat is dout * weight", change=_ones_weight),
        ),
        draw=draw,
    )


_norm_exercise(
    "layernorm_backward", "layer norm", -1, [(4, 6), (3, 5), (5, 8)],
    "x, dout: shape (B, N), normalised over the last axis; weight: shape (N,); eps: a float.\n"
    "Return (dx, dweight, dbias): dx has the shape of x, dweight and dbias the shape of weight.",
    "batch norm (over axis 0)", "the rows (axis 0)")
_norm_exercise(
    "batchnorm_backward", "batch norm (training mode)", 0, [(8, 3), (5, 4), (6, 7)],
    "x, dout: shape (N, D), normalised over axis 0 (the batch); weight: shape (D,); eps: a float.\n"
    "Return (dx, dweight, dbias): dx has the shape of x, dweight and dbias the shape of weight.",
    "layer norm (over the last axis)", "the batch (axis 0)")


# -- RMSNorm -------------------------------------------------------------------------------------


def rms_norm(axis: int = -1):
    """The forward of RMSNorm over `axis` (-1; axis 0 is the wrong-axis mistake)."""
    def forward(x, weight, eps):
        ms = named((x ** 2).mean(axis=axis, keepdims=True), "ms")
        rms = named((ms + eps).sqrt(), "rms")
        xhat = named(x / rms, "xhat")
        return named(xhat * weight, "y")
    return forward


register(
    "rmsnorm_backward", rms_norm(),
    inputs=[{"x": (b, n), "weight": (n,), "eps": eps} for (b, n), eps in zip([(4, 6), (3, 5), (5, 8)], EPS)],
    paths_through=("ms",),
    title="the RMSNorm backward pass",
    statements=("ms = mean(x**2, last axis)", "rms = sqrt(ms + eps)", "xhat = x / rms", "y = xhat * weight"),
    shapes_text="x, dout: shape (B, N), normalised over the last axis; weight: shape (N,); eps: a float.\n"
                "Return (dx, dweight) with the shapes of x and weight.",
    direct="the direct path x -> xhat",
    hints={"ms": "ms = mean(x**2) depends on every x_j: dms/dx_j = 2 x_j / N."},
    output_hints={"dweight": "dweight is the sum of dout * xhat over the rows, with xhat = x / rms: "
                             "every row uses the same weight."},
    variants=(Variant("you normalised over the wrong axis (axis 0, the batch); RMSNorm averages over the "
                      "last axis", forward=rms_norm(0)),
              Variant("you left out weight: the gradient arriving at xhat is dout * weight", change=_ones_weight)),
    draw=draw,
)


# -- softmax -------------------------------------------------------------------------------------


def softmax(axis: int = -1):
    """The forward of softmax over `axis`."""
    def forward(x):
        e = named(x.exp(), "e")
        s = named(e.sum(axis=axis, keepdims=True), "s")
        return named(e / s, "y")
    return forward


register(
    "softmax_backward", softmax(),
    inputs=[{"x": (3, 5)}, {"x": (4, 6)}, {"x": (2, 7)}],
    paths_through=("s",),
    title="the softmax backward pass",
    statements=("e = exp(x)", "s = sum(e, last axis)", "y = e / s"),
    shapes_text="x, dout: shape (B, C), softmax over the last axis.  Return dx, shape (B, C).",
    direct="the direct path x -> e -> y",
    hints={"s": "s = sum(e) depends on every e_j (ds/de_j = 1), and y = e / s divides by it: dy/ds = -e / s**2."},
    variants=(Variant("you took the softmax over the wrong axis (axis 0); it runs over the last axis",
                      forward=softmax(0)),),
)
