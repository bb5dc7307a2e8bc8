"""Layers with parameters, in the style of `torch.nn`: LayerNorm, BatchNorm1d, RMSNorm, Linear, MLP.

A layer holds its parameters as leaf Nodes (`.weight`, `.bias`) and, when called
on a Node or an array, builds its graph from primitive ops (see `functional`)
inside a scope named after the layer, so drawings group its nodes in a box.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import Node, scope
from ..ops import relu, tanh
from . import functional as F

__all__ = ["Module", "LayerNorm", "BatchNorm1d", "RMSNorm", "Linear", "MLP"]


class Module:
    """Base class: `__call__` opens the layer's scope and runs `forward`.

    `name` is the scope name ("layernorm"); `parameters()` lists the trainable
    Nodes, `children()` the sub-layers; `train()` / `eval()` set `.training` on
    the layer and all its sub-layers.
    """

    name = "module"

    def __init__(self) -> None:
        self.training = True

    def __call__(self, x: Any) -> Node:
        x = F.as_input(x, repr(self))
        with scope(self.name):
            return self.forward(x)

    def forward(self, x: Node) -> Node:
        raise NotImplementedError

    def parameters(self) -> list[Node]:
        """The trainable Nodes of this layer and its sub-layers, in a fixed order."""
        own = [p for p in (getattr(self, "weight", None), getattr(self, "bias", None)) if p is not None]
        return own + [p for child in self.children() for p in child.parameters()]

    def children(self) -> list[Module]:
        return []

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero (before the next backward pass)."""
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode: bool = True) -> Module:
        layers = [self]
        while layers:
            layer = layers.pop()
            layer.training = mode
            layers.extend(layer.children())
        return self

    def eval(self) -> Module:
        return self.train(False)

    def _check_last_dim(self, x: Node, dim: int) -> None:
        if x.ndim == 0 or x.shape[-1] != dim:
            raise ValueError(f"{self!r}: expected input with last dimension {dim}, got shape {x.shape}")


def _check_size(value: Any, what: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{owner}: {what} must be a positive int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{owner}: {what} must be a positive int, got {value!r}")
    return int(value)


def _check_eps(eps: Any, owner: str) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: eps must be a number >= 0, got {type(eps).__name__} {eps!r}")
    if eps < 0:
        raise ValueError(f"{owner}: eps must be a number >= 0, got {eps!r}")
    return float(eps)


class _Norm(Module):
    """What the norm layers share: `dim`, `eps`, and with `affine` a `weight` of ones and a `bias` of zeros."""

    has_bias = True

    def __init__(self, dim: int, eps: float, affine: bool) -> None:
        super().__init__()
        owner = type(self).__name__
        self.dim = _check_size(dim, "dim", owner)
        self.eps = _check_eps(eps, owner)
        self.affine = bool(affine)
        self.weight = Node(np.ones(self.dim), name="weight") if affine else None
        if self.has_bias:
            self.bias = Node(np.zeros(self.dim), name="bias") if affine else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dim}, eps={self.eps}, affine={self.affine})"


class LayerNorm(_Norm):
    """Normalize each row over the last axis, then scale and shift: PyTorch's `nn.LayerNorm(dim)`.

    `y = (x - mu) / sqrt(var + eps) * weight + bias`, with `mu` and the biased
    `var` taken over the last axis; `weight` starts at ones, `bias` at zeros.
    """

    name = "layernorm"

    def __init__(self, dim: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(dim, eps, affine)

    def forward(self, x: Node) -> Node:
        self._check_last_dim(x, self.dim)
        return F.normalize(x, -1, self.weight, self.bias, self.eps)


class BatchNorm1d(_Norm):
    """Normalize each feature over the batch (axis 0): PyTorch's `nn.BatchNorm1d(dim)` for (N, D) input.

    In training mode it uses the batch's mean and biased variance and updates
    `running_mean` / `running_var` (unbiased variance) with
    `running = (1 - momentum) * running + momentum * batch`; in eval mode it
    normalizes with the running statistics, which enter the graph as constants.
    """

    name = "batchnorm1d"

    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True) -> None:
        super().__init__(dim, eps, affine)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.number)) or not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm1d: momentum must be a number in [0, 1], got {momentum!r}")
        self.momentum = float(momentum)
        self.running_mean = np.zeros(self.dim)
        self.running_var = np.ones(self.dim)

    def forward(self, x: Node) -> Node:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.dim}), got shape {x.shape}")
        if not self.training:
            return F.running_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.eps)
        if x.shape[0] < 2:
            raise ValueError(f"{self!r}: training mode needs more than one sample per feature, got shape {x.shape}")
        self._update_running_stats(x.data)
        return F.normalize(x, 0, self.weight, self.bias, self.eps)

    def _update_running_stats(self, x: np.ndarray) -> None:
        """Blend in the batch statistics; new arrays, so no one's copy changes under them."""
        m = self.momentum
        self.running_mean = (1 - m) * self.running_mean + m * x.mean(axis=0)
        self.running_var = (1 - m) * self.running_var + m * x.var(axis=0, ddof=1)

    def __repr__(self) -> str:
        return f"BatchNorm1d({self.dim}, eps={self.eps}, momentum={self.momentum}, affine={self.affine})"


class RMSNorm(_Norm):
    """Divide each row by its root mean square, then scale: PyTorch's `nn.RMSNorm(dim, eps=1e-5)`.

    `y = x / sqrt(mean(x ** 2, last axis) + eps) * weight`; `weight` starts at ones (no bias).
    """

    name = "rmsnorm"
    has_bias = False

    def __init__(self, dim: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(dim, eps, affine)

    def forward(self, x: Node) -> Node:
        self._check_last_dim(x, self.dim)
        return F.rms_body(x, self.weight, self.eps)


class Linear(Module):
    """`y = x @ weight + bias` with `weight` of shape (n_in, n_out) and `bias` of shape (n_out,).

    Both start uniform in [-1/sqrt(n_in), 1/sqrt(n_in)], as PyTorch's default;
    pass `rng` (a seed or `numpy.random.Generator`) for repeatable weights.
    """

    name = "linear"

    def __init__(self, n_in: int, n_out: int, bias: bool = True, rng: Any = None) -> None:
        super().__init__()
        self.n_in = _check_size(n_in, "n_in", "Linear")
        self.n_out = _check_size(n_out, "n_out", "Linear")
        rng = np.random.default_rng(rng)
        bound = 1.0 / np.sqrt(self.n_in)
        self.weight = Node(rng.uniform(-bound, bound, (self.n_in, self.n_out)), name="weight")
        self.bias = Node(rng.uniform(-bound, bound, self.n_out), name="bias") if bias else None

    def forward(self, x: Node) -> Node:
        self._check_last_dim(x, self.n_in)
        return F.linear_body(x, self.weight, self.bias)

    def __repr__(self) -> str:
        return f"Linear(n_in={self.n_in}, n_out={self.n_out}, bias={self.bias is not None})"


NONLINEARITIES = {"tanh": tanh, "relu": relu}


class MLP(Module):
    """A stack of Linear layers with `nonlin` ("tanh" or "relu") between them, none after the last.

    `MLP(2, [16, 16, 1])` maps 2 inputs through two hidden layers of 16 to 1 output.
    Layer i is drawn in scope "mlp/linear{i}", its parameters are named
    "linear{i}.weight" and "linear{i}.bias", its activation "h{i}".
    """

    name = "mlp"

    def __init__(self, n_in: int, sizes: list[int], nonlin: str = "tanh", rng: Any = None) -> None:
        super().__init__()
        if nonlin not in NONLINEARITIES:
            raise ValueError(f"MLP: nonlin must be one of {sorted(NONLINEARITIES)}, got {nonlin!r}")
        if isinstance(sizes, (int, np.integer)) or not len(sizes):
            raise ValueError(f"MLP: sizes must be a non-empty list of layer widths, got {sizes!r}")
        self.n_in = _check_size(n_in, "n_in", "MLP")
        self.sizes = [_check_size(s, "each size", "MLP") for s in sizes]
        self.nonlin = nonlin
        rng = np.random.default_rng(rng)
        self.layers = []
        for i, (a, b) in enumerate(zip([self.n_in] + self.sizes, self.sizes)):
            layer = Linear(a, b, rng=rng)
            layer.name = f"linear{i}"
            for p in layer.parameters():
                p.name = f"{layer.name}.{p.name}"
            self.layers.append(layer)

    def forward(self, x: Node) -> Node:
        act = NONLINEARITIES[self.nonlin]
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = act(x)
                x.name = f"h{i}"
        return x

    def children(self) -> list[Module]:
        return list(self.layers)

    def __repr__(self) -> str:
        return f"MLP({self.n_in}, {self.sizes}, nonlin={self.nonlin!r})"
