"""What a picture of a graph says, made once: boxes, edges with their gradients, scopes.

`picture(root, ...)` walks the graph one time and returns a `Picture`: one `Box`
per drawn node (its label, op, formula, value cells, gradient cells), one `Edge`
per drawn edge (the gradient that flowed back along it) and the direction the
picture runs in. `tg.to_dot` writes a `Picture` as DOT and `tg.stepper` writes
the same `Picture` into its page; neither walks the graph again.

Ids are stable: the box of `topological(root)[i]` is "n{i}", the edge into it
from its k-th parent "e{i}_{k}".
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .core import Node, sent_along, topological
from .formatting import number
from .steps import auto_labels, formula

RANKDIRS = ("LR", "TB", "RL", "BT")
WIDEST = 3.0  # the aspect ratios a picture should stay within: 1:3 .. 3:1


@dataclass
class Box:
    """One drawn node: what its box says, as text cells."""

    id: str
    node: Node
    label: str
    kind: str  # "mul (3,)"; "" for a constant
    formula: str  # "x - mu"; "" for a leaf
    data: list[list[str]]  # the forward value, row by row
    grad: list[list[str]] | None  # the gradient, row by row; None: not drawn (grads=False or a constant)
    received: list[tuple[str, list[list[str]]]] = field(default_factory=list)  # fan-out: (from whom, cells)
    constant: bool = False
    fanout: bool = False
    cut: bool = False  # some of its inputs are not drawn
    scope: str = ""


@dataclass
class Edge:
    """One drawn edge, from `tail` (a parent) into `head`, with the gradient sent back along it."""

    id: str
    tail: Box
    head: Box
    grad: np.ndarray | None
    text: list[str]  # the gradient as lines of text ([] for none)
    constant: bool = False
    fanout: bool = False


@dataclass
class Picture:
    """A whole drawing: boxes in topological order, edges, direction."""

    boxes: list[Box]
    edges: list[Edge]
    rankdir: str
    digits: int = 4
    items: int = 3


def picture(root: Node, grads: bool = True, rankdir: str | None = None, *, digits: int = 4, items: int = 3,
            depth: int | None = None, scope: str | None = None, highlight_fanout: bool = False,
            max_nodes: int | None = None, nodes: list[Node] | None = None) -> Picture:
    """The drawing of the graph below `root` (see `tg.to_dot` for the options).

    More than `max_nodes` boxes raise a ValueError saying how to draw less, before any text is
    made. `nodes`: `topological(root)` if the caller has it already.
    """
    if rankdir is not None and rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)} or None (automatic), got {rankdir!r}")
    for name, value in (("digits", digits), ("items", items)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(root, Node):
        raise TypeError(f"expected a tinygraph Node to draw, got {type(root).__name__}")
    nodes = topological(root) if nodes is None else nodes
    drawn = select(root, nodes, depth, scope)
    check_size(drawn, max_nodes, depth, scope)
    labels = {n: label or "''" for n, label in auto_labels(nodes).items()}  # name="" is shown as ''
    index = {node: i for i, node in enumerate(nodes)}
    pairs = [(child, k, p) for child in drawn for k, p in enumerate(child.parents) if p in drawn]
    uses: dict[Node, int] = {}
    for _, _, p in pairs:
        uses[p] = uses.get(p, 0) + 1
    fanout = {p for p, n in uses.items() if n > 1 and not p.is_constant} if highlight_fanout else set()

    boxes: dict[Node, Box] = {}
    for node in drawn:
        box = Box(id=f"n{index[node]}", node=node, label=labels[node], kind="", formula="", data=[], grad=None,
                  constant=node.is_constant, fanout=node in fanout,
                  cut=any(p not in drawn for p in node.parents), scope=node.scope)
        if not node.is_constant:
            box.kind = (node.op or "leaf") + (f" {node.shape}" if node.ndim else "")
            box.formula = formula(node, labels) if node.op else ""
            box.data = cells(node.data, digits, items)
            if grads:
                box.grad = cells(node.grad, digits, items)
                if box.fanout and len(node.contributions) > 1:
                    box.received = [(labels.get(c, "other"), cells(g, digits, items)) for c, g in node.contributions]
        boxes[node] = box
    sent = edge_grads(drawn) if grads else {}
    edges = []
    for child, k, p in pairs:
        g = None if p.is_constant else sent.get((child, k))
        edges.append(Edge(id=f"e{index[child]}_{k}", tail=boxes[p], head=boxes[child], grad=g,
                          text=[] if g is None else lines(g, digits, items),
                          constant=p.is_constant, fanout=p in fanout))
    pic = Picture(list(boxes.values()), edges, rankdir or "LR", digits, items)
    if rankdir is None:
        pic.rankdir = choose_rankdir(pic)
    return pic


# -- which nodes ------------------------------------------------------------------------

def select(root: Node, nodes: list[Node], depth: int | None, scope: str | None) -> dict[Node, None]:
    """The nodes to draw, in topological order (a dict used as an ordered set)."""
    keep = set(nodes)
    if depth is not None:
        if not isinstance(depth, int) or depth < 0:
            raise ValueError(f"depth must be an int >= 0, got {depth!r}")
        keep = _within(root, depth)
    if scope is not None:
        inside = {n for n in keep if in_scope(n.scope, scope)}
        if not inside:
            found = sorted({n.scope for n in nodes if n.scope})
            raise ValueError(f"no node in scope {scope!r}; scopes in this graph: "
                             + (", ".join(map(repr, found)) or "none"))
        keep = inside | {p for n in inside for p in n.parents}
    return {n: None for n in nodes if n in keep}


def check_size(drawn: Iterable[Node], max_nodes: int | None, depth: Any = None, scope: Any = None) -> None:
    """Refuse a picture of more than `max_nodes` boxes, saying how to draw less."""
    drawn = list(drawn)
    n = len(drawn)
    if max_nodes is None or n <= max_nodes:
        return
    scopes = sorted({node.scope.split("/")[0] for node in drawn if node.scope})
    hint = f"scope={scopes[0]!r} (scopes: {', '.join(scopes[:6])})" if scopes else "scope='name'"
    part = "" if depth is None and scope is None else " selected"
    raise ValueError(f"this drawing has {n}{part} nodes, more than max_nodes={max_nodes}: too many to read or to "
                     f"lay out quickly. Draw part of it: depth=3 (the nodes nearest the root) or {hint}; "
                     f"or pass max_nodes={n} (or None) to draw everything.")


def _within(root: Node, depth: int) -> set[Node]:
    """Nodes at most `depth` edges above `root` (breadth first, no recursion)."""
    seen, frontier = {root}, [root]
    for _ in range(depth):
        frontier = list(dict.fromkeys(p for n in frontier for p in n.parents if p not in seen))
        seen.update(frontier)
    return seen


def in_scope(path: str, scope: str) -> bool:
    """True if `scope` is a run of whole components of `path`: "ln" is in "block/ln/inner"."""
    return f"/{scope}/" in f"/{path}/"


def edge_grads(children: Iterable[Node]) -> dict[tuple[Node, int], np.ndarray]:
    """(child, k) -> the gradient `child` sent to its k-th parent in the latest pass.

    Edges that carried nothing are left out.
    """
    return {(child, k): np.asarray(g, dtype=np.float64) for child in children for k, _, g in sent_along(child)}


# -- text ---------------------------------------------------------------------------------

def cells(value: Any, digits: int = 4, items: int = 3) -> list[list[str]]:
    """A value as rows of text cells: a small matrix (up to 4 rows of `items` + 1 columns) row by row,
    anything else as one row of its first `items` entries and "..." if there are more."""
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 2 and value.shape[0] <= 4 and value.shape[1] <= items + 1 and value.size > 1:
        return [_row(row, digits, items) for row in value]
    return [_row(value, digits, items)]


def _row(value: np.ndarray, digits: int, items: int) -> list[str]:
    flat = np.ravel(value)
    if flat.size <= items + 1:  # one entry more than `items` is shown rather than hidden behind "..."
        return [number(float(v), digits) for v in flat]
    return [number(float(v), digits) for v in flat[:items]] + ["..."]


def lines(value: Any, digits: int = 4, items: int = 3) -> list[str]:
    """A value as the lines an edge label shows: ["-6"], ["[1, 2, 3, ...]"], a small matrix one row a line."""
    if np.ndim(value) == 0:
        return [number(float(value), digits)]
    return ["[" + ", ".join(row) + "]" for row in cells(value, digits, items)]


def short_text(value: Any, digits: int = 4, items: int = 3) -> str:
    """A value on one line, as edges and gradient rows show it: "-6", "[0.1, 0.2, 0.3, ...]"."""
    row = _row(np.asarray(value, dtype=np.float64), digits, items)
    return row[0] if np.ndim(value) == 0 else "[" + ", ".join(row) + "]"


# -- shape: which way the picture runs ------------------------------------------------------

CHAR = 6.3  # points per character of 14-point Helvetica (about)
LINE = 17.0  # points per table row
EDGE_CHAR, EDGE_LINE = 6.0, 14.0  # edge labels are 11-point


def box_size(box: Box) -> tuple[float, float]:
    """Width and height in points that Graphviz will give the box, estimated from its text."""
    if box.constant:
        return CHAR * 0.8 * len(box.label) + 4, 14.0
    rows = [[box.label + "   " + box.kind], [box.formula] if box.formula else [], *box.data, *(box.grad or []),
            *[cs for _, cs in box.received]]
    width = max(sum(len(c) + 2 for c in row) for row in rows if row) + 6
    return CHAR * width + 8, LINE * sum(1 for row in rows if row) + 8


def ranks(pic: Picture) -> dict[str, int]:
    """Box id -> rank as dot assigns it, about: ops by longest path from the inputs, and each
    input one rank before its first consumer."""
    rank: dict[str, int] = {}
    into: dict[str, list[str]] = {}
    for e in pic.edges:
        into.setdefault(e.head.id, []).append(e.tail.id)
    for box in pic.boxes:  # topological order: parents first
        if box.node.op:
            rank[box.id] = 1 + max((rank[t] for t in into.get(box.id, ()) if t in rank), default=-1)
    for e in reversed(pic.edges):
        if not e.tail.node.op and e.head.id in rank:
            rank[e.tail.id] = min(rank.get(e.tail.id, rank[e.head.id] - 1), rank[e.head.id] - 1)
    low = min(rank.values(), default=0)
    return {b.id: rank.get(b.id, 0) - low for b in pic.boxes}


def estimate_size(pic: Picture, rankdir: str) -> tuple[float, float]:
    """The picture's width and height in points if laid out in `rankdir`, estimated without Graphviz."""
    across = rankdir in ("LR", "RL")
    rank = ranks(pic)
    n = max(rank.values(), default=0) + 1
    along = [0.0] * n  # extent of each rank along the flow
    wide = [0.0] * n  # extent of each rank across the flow
    gap_along, gap_wide = [0.0] * n, [0.0] * n  # the same for the edge labels between rank r and r + 1
    for box in pic.boxes:
        w, h = box_size(box)
        a, b = (w, h) if across else (h, w)
        r = rank[box.id]
        along[r] = max(along[r], a)
        wide[r] += b + 18
    for e in pic.edges:
        if not e.text:
            continue
        one_line = not across and len(e.text) > 1  # see render.edge_label
        w = EDGE_CHAR * (sum(len(t) + 2 for t in e.text) if one_line else max(map(len, e.text))) + 4
        h = EDGE_LINE * (1 if one_line else len(e.text)) + 2
        a, b = (w, h) if across else (h, w)
        r = max(0, min(rank[e.tail.id], n - 1))
        gap_along[r] = max(gap_along[r], a)
        gap_wide[r] += b + 8
    ranksep = 32.0 if across else 25.0
    length = sum(along) + sum(ranksep + g for g in gap_along[:-1]) + 40
    breadth = max(max(wide, default=0), max(gap_wide, default=0)) + 40
    return (length, breadth) if across else (breadth, length)


def choose_rankdir(pic: Picture) -> str:
    """"LR" or "TB": the direction whose estimated aspect ratio is within 1:3..3:1 and nearest 4:3
    (a slide); if neither is, the one nearest that range."""
    def badness(rankdir: str) -> tuple[float, float]:
        w, h = estimate_size(pic, rankdir)
        ratio = math.log(w / h)
        outside = max(0.0, abs(ratio) - math.log(WIDEST))
        return outside, abs(ratio - math.log(4 / 3))
    return min(("LR", "TB"), key=badness)
