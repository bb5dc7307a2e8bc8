"""The backward pass one step at a time, and the words for it: labels, formulas, captions.

`backward_steps` runs the engine's own pass (`core.propagate`) and stops after
each node's turn with a `Step`: the node, its gradient, and what it sent to each
parent. Nothing here changes how gradients are computed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .core import Node, commit, propagate, seed, topological
from .formatting import summary


def backward_steps(root: Node, grad: Any = None) -> Iterator[Step]:
    """Run the backward pass one node at a time, yielding a `Step` after each node's turn.

    Nodes come in reverse topological order. Between steps a node's `.grad` shows
    what has arrived so far; the pass counts (`.grad`, `.contributions`) only once
    the generator is exhausted, exactly as `root.backward(grad)`. Constants (the
    `2` in `2 * x`) get no step of their own.
    """
    labels = Labels(root)
    turns, steps = [], 0
    for node, g, sent in propagate(root, seed(root, grad)):
        turns.append((node, g, sent))
        if node.is_constant:  # no one asked for a constant's gradient: its turn is no step
            continue
        yield Step(steps, node, g, sent, labels)
        steps += 1
    commit(turns)


class Step:
    """One node's turn in the backward pass: its gradient and what it sent to its parents."""

    __slots__ = ("index", "node", "sent_along", "_grad", "_labels")

    def __init__(self, index: int, node: Node, grad: Any, sent: tuple, labels: Labels) -> None:
        self.index = index
        self.node = node
        self._grad = grad
        self._labels = labels
        self.sent_along = [(k, p, g) for k, (p, g) in enumerate(zip(node.parents, sent)) if g is not None]
        """(argument slot, parent, gradient) for each edge this step sent gradient along."""

    @property
    def grad(self) -> np.ndarray:
        """The node's full upstream gradient in this pass."""
        return np.array(self._grad, dtype=np.float64)

    @property
    def contributions(self) -> list[tuple[Node, np.ndarray]]:
        """(parent, gradient) for each edge this step sent gradient along."""
        return [(p, np.array(g, dtype=np.float64)) for _, p, g in self.sent_along]

    def _sent_text(self) -> str:
        return ", ".join(f"{self._labels[p]} += {summary(g)}" for _, p, g in self.sent_along)

    def caption(self) -> str:
        """The step as one line without its number: "xc = x - mu: grad [..] -> x += [..], mu += [..]"."""
        sent = self._sent_text()
        text = f"{describe(self.node, self._labels)}: grad {summary(self._grad)}"
        return text + (f" -> {sent}" if sent else " (leaf)")

    def __str__(self) -> str:
        sent = self._sent_text()
        text = f"step {self.index}  {describe(self.node, self._labels)}   grad={summary(self._grad)}"
        return text + (f"   -> {sent}" if sent else "   (leaf)")

    __repr__ = __str__


def auto_labels(nodes: Sequence[Node]) -> dict[Node, str]:
    """A label per node: its name, a constant's value, else op name + position ("mean2")."""
    labels = {}
    for i, node in enumerate(nodes):
        if node.name is not None:
            labels[node] = node.name
        elif node.is_constant:
            labels[node] = summary(node.data)
        else:
            labels[node] = f"{node.op or 'leaf'}{i}"
    return labels


class Labels:
    """`auto_labels` of a graph (its root, or its nodes in topological order), made the first time one is needed."""

    def __init__(self, graph: Node | list[Node]) -> None:
        self._graph, self._labels = graph, None

    def __getitem__(self, node: Node) -> str:
        if self._labels is None:
            nodes = topological(self._graph) if isinstance(self._graph, Node) else self._graph
            self._labels = auto_labels(nodes)
        return self._labels[node]


def formula(node: Node, labels: Any) -> str:
    """How `node` was made, in its parents' labels: "x - mu", "mean(sq, axis=0)"."""
    args = [labels[p] for p in node.parents]
    written = node.operation.formula if node.operation else None
    settings = {**node.operation.defaults, **node.attrs} if node.operation else node.attrs
    if callable(written):
        return written(*args, **settings)
    if written:
        return written.format(*args, **settings)
    return f"{node.op}(" + ", ".join(args + [f"{k}={v!r}" for k, v in node.attrs.items()]) + ")"


def describe(node: Node, labels: Any) -> str:
    """`node` as an equation: "xc = x - mu"; a leaf is just its label."""
    return f"{labels[node]} = {formula(node, labels)}" if node.op else labels[node]
