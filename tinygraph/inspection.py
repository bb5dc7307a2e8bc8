"""Seeing where gradient goes: every path from a leaf to the root, and the graph as a table.

`paths` splits one gradient into the parts that travel along each path of the
graph (the multivariable chain rule read as a sum over paths); `explain` lists
every node with its value and gradient, like a worked example on a blackboard.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np

from .core import Node, apply_vjp, constant, topological
from .formatting import summary
from .steps import Labels, auto_labels


class Path:
    """One path from `leaf` up to `root` and the gradient that flows along it alone.

    `.nodes` runs leaf first, root last. `.inputs[k]` is the argument position of
    `.nodes[k]` among the parents of `.nodes[k + 1]`, which tells apart the two
    edges of `a + a`.
    """

    __slots__ = ("nodes", "inputs", "_grad", "_labels")

    def __init__(self, nodes: Sequence[Node], inputs: Sequence[int], grad: Any, labels: Any) -> None:
        self.nodes = tuple(nodes)
        self.inputs = tuple(inputs)
        self._grad = grad
        self._labels = labels

    @property
    def grad(self) -> np.ndarray:
        """The part of d(root)/d(leaf) carried by this path (shape of the leaf)."""
        return np.array(self._grad, dtype=np.float64)

    @property
    def labels(self) -> tuple[str, ...]:
        """The nodes' labels, leaf first: names, or automatic labels such as "mul4" as in `explain`."""
        return tuple(self._labels[n] for n in self.nodes)

    def __str__(self) -> str:
        return f"{' -> '.join(self.labels)}: {summary(self._grad)}"

    __repr__ = __str__


class Paths(list):
    """`paths(...)`'s result: a plain list of `Path`, shown in Jupyter as a table with the paths' sum."""

    __slots__ = ()


def count_paths(root: Node, leaf: Node) -> int:
    """How many paths lead from `leaf` up to `root` (0 if `leaf` is not below `root`)."""
    return _path_counts(topological(root), leaf).get(id(root), 0)


def _path_counts(nodes: list[Node], leaf: Node) -> dict[int, int]:
    """For each node that depends on `leaf` (by id), its number of paths from `leaf`.

    Dynamic programming over `nodes` in topological order: a node's count is the
    sum of its parents' counts, one term per edge. Linear in the graph size even
    when the number of paths is exponential.
    """
    counts = {id(leaf): 1}
    for node in nodes:
        if node.parents and node is not leaf:
            n = sum(counts.get(id(p), 0) for p in node.parents)
            if n:
                counts[id(node)] = n
    return counts


def paths(root: Node, leaf: Node, grad: Any = None, max_paths: int = 1000) -> Paths:
    """Every path from `leaf` up to `root`, each with the gradient that flows along it alone.

    Along a path leaf -> a -> root the root is seeded with `grad` (ones if None),
    root's vjp is applied and only its output for the edge to `a` is kept, then
    a's vjp, and so on down to the leaf. The paths' gradients sum to what one
    backward pass gives `leaf`. The vjps are the ops' definitions (`core.apply_vjp`),
    called directly, so no node's `.grad` or `.contributions` changes.
    """
    for name, value in (("root", root), ("leaf", leaf)):
        if not isinstance(value, Node):
            raise TypeError(f"paths: {name} must be a Node, got {type(value).__name__}")
    nodes = topological(root)
    if not any(n is leaf for n in nodes):
        raise ValueError("paths: leaf is not in the graph of root (root does not depend on it)")
    counts = _path_counts(nodes, leaf)
    total = counts.get(id(root), 0)
    if total > max_paths:
        raise ValueError(
            f"paths: there are {total} paths from leaf to root, more than max_paths={max_paths}; "
            f"pass a larger max_paths to list them all")
    labels = Labels(nodes)
    seed = np.ones(root.shape) if grad is None else np.array(constant(grad).data)
    if seed.shape != root.shape:
        raise ValueError(f"paths: grad has shape {seed.shape} but root has shape {root.shape}")
    found = []
    # depth-first from the root; `trail` is a linked list (node, input, rest) back to the root
    stack = [(root, seed, None)]
    while stack:
        node, g, trail = stack.pop()
        if node is leaf:
            found.append(_make_path(node, trail, g, labels))
            continue
        branches = []
        for i, (p, gp) in enumerate(zip(node.parents, apply_vjp(node, g))):
            if id(p) in counts:
                branches.append((p, np.zeros(p.shape) if gp is None else gp, (node, i, trail)))
        stack.extend(reversed(branches))  # first argument first
    return Paths(found)


def _make_path(leaf: Node, trail: Any, grad: Any, labels: Labels) -> Path:
    nodes, inputs = [leaf], []
    while trail is not None:
        node, i, trail = trail
        nodes.append(node)
        inputs.append(i)
    return Path(nodes, inputs, grad, labels)


# -- the graph as a table --------------------------------------------------------------

class Explanation:
    """`explain(root)`'s result: shows itself as a table; `.rows` holds the data."""

    def __init__(self, rows: list[dict], cells: list[dict], show_scope: bool) -> None:
        self.rows = rows
        self._cells = cells
        self._columns = ["#", "name", "op", "parents"] + (["scope"] if show_scope else []) + ["value", "grad"]

    @property
    def _has_nonfinite(self) -> bool:
        return any(c["value"].endswith("!") or c["grad"].endswith("!") for c in self._cells)

    def __str__(self) -> str:
        table = [self._columns] + [[c[k] for k in self._columns] for c in self._cells]
        widths = [max(len(r[j]) for r in table) for j in range(len(self._columns))]
        lines = ["  ".join(text.ljust(w) for text, w in zip(r, widths)).rstrip() for r in table]
        lines.insert(1, "  ".join("-" * w for w in widths))
        if self._has_nonfinite:
            lines.append("! non-finite value (nan or inf)")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        def cell(text: str, tag: str = "td") -> str:
            style = ' style="color:#c00;font-weight:bold"' if text.endswith("!") else ""
            return f"<{tag}{style}>{html.escape(text)}</{tag}>"
        head = "".join(cell(c, "th") for c in self._columns)
        body = "".join("<tr>" + "".join(cell(c[k]) for k in self._columns) + "</tr>" for c in self._cells)
        foot = "<p>! non-finite value (nan or inf)</p>" if self._has_nonfinite else ""
        return f'<table class="tinygraph-explain"><tr>{head}</tr>{body}</table>{foot}'


def explain(root: Node) -> Explanation:
    """The graph of `root` as a table, one row per node, parents before children.

    Columns: name (or an automatic label like "mean2"), op with its settings,
    parents, scope, forward value and gradient. Big tensors are summarised;
    nan and inf are marked with "!".
    """
    if not isinstance(root, Node):
        raise TypeError(f"explain needs a Node, got {type(root).__name__}")
    nodes = topological(root)
    labels = auto_labels(nodes)
    rows, cells = [], []
    for i, node in enumerate(nodes):
        row = {
            "name": labels[node],
            "op": node.op,
            "parents": [labels[p] for p in node.parents],
            "scope": node.scope,
            "value": np.array(node.data),
            "grad": np.array(node.grad),
        }
        rows.append(row)
        cells.append({
            "#": str(i), "name": row["name"], "op": _op_text(node), "parents": ", ".join(row["parents"]),
            "scope": node.scope, "value": _value_text(row["value"]), "grad": _value_text(row["grad"]),
        })
    return Explanation(rows, cells, show_scope=any(n.scope for n in nodes))


def _op_text(node: Node) -> str:
    if not node.op:
        return "constant" if node.is_constant else "leaf"
    settings = ", ".join(f"{k}={v!r}" for k, v in node.attrs.items())
    return f"{node.op}({settings})" if settings else node.op


def _value_text(value: np.ndarray) -> str:
    text = summary(value)
    return text if np.all(np.isfinite(value)) else text + " !"
