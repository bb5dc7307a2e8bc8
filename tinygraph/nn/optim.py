"""Plain stochastic gradient descent: `p <- p - lr * dL/dp` for each parameter."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..core import Node

__all__ = ["SGD"]


class SGD:
    """`SGD(model.parameters(), lr=0.1)`; each training step: `zero_grad()`, backward, `step()`.

    `lr` may be changed between steps (a learning-rate schedule).
    """

    def __init__(self, params: Iterable[Node], lr: float = 0.01) -> None:
        self.params = list(params)
        for i, p in enumerate(self.params):
            if not isinstance(p, Node):
                raise TypeError(f"SGD: parameter {i} must be a Node, got {type(p).__name__}")
        if not self.params:
            raise ValueError("SGD: got an empty list of parameters")
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating)):
            raise TypeError(f"SGD: lr must be a number, got {type(lr).__name__} {lr!r}")
        self.lr = lr

    def step(self) -> None:
        """Move every parameter against its gradient.

        The update makes a new array instead of changing the old one in place,
        so a graph built before the step still holds the values it was built with.
        """
        for p in self.params:
            p.data = p.data - self.lr * p.grad

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr}, {len(self.params)} parameters)"
