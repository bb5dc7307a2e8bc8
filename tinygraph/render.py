"""Pictures of a graph: forward values in black, gradients in red, scopes boxed.

`to_dot` writes the DOT source with the `graphviz` Python package; `draw` runs a
Graphviz binary on it. The binary is, in this order:

1. the one named by the environment variable ``TINYGRAPH_DOT`` (a path or a command);
2. ``graphviz-pure``, installed with tinygraph (a self-contained port of Graphviz
   with its own fonts), so every machine draws the same picture;
3. a system Graphviz ``dot`` on PATH, used by default only for formats that
   graphviz-pure lacks, such as pdf.

Ids for the stepper (stable): the box of the node at index ``i`` of
``tinygraph.core.topological(root)`` has DOT ``id`` "n{i}"; the edge into node ``i``
from its ``k``-th parent has id "e{i}_{k}". Both survive into SVG as ``<g id=...>``.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .core import Node, sent_along, topological
from .formatting import number, summary
from .steps import auto_labels, formula

FORWARD = "black"
GRADIENT = "#d62728"
FANOUT = "#1f6fc5"  # multi-path fan-outs, with highlight_fanout=True
MUTED = "#6b6b6b"  # ops, shapes, constants
SCOPE_FILLS = ("#f3f6fb", "#e6edf7", "#d9e3f2")  # nested scopes get darker
FONT = "Helvetica"

PURE_FORMATS = ("png", "svg", "jpg", "jpeg", "jpe", "json", "json0", "dot_json", "xdot_json",
                "plain", "plain-ext", "dot", "gv", "canon", "xdot", "xdot1.2", "xdot1.4")
RANKDIRS = ("LR", "TB", "RL", "BT")
RASTER_DPI = 144  # twice Graphviz's 72: sharp on slides and retina screens
RASTER_FORMATS = ("png", "jpg", "jpeg", "jpe", "gif", "bmp", "tif", "tiff", "webp")
BIG = 150  # drawings with more nodes are rasterised at 72 dpi: fast, and viewed zoomed out anyway

_BOX_ID = re.compile(r" id=n\d+\]")
_BAD_CHARS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


# -- DOT source -----------------------------------------------------------------------

def to_dot(root: Node, grads: bool = True, rankdir: str = "LR", *, digits: int = 4, items: int = 3,
           depth: int | None = None, scope: str | None = None, max_nodes: int | None = 500,
           highlight_fanout: bool = False,
           grad_text: Callable[[Node], str | None] | None = None,
           edge_text: Callable[[Node, int], str | None] | None = None) -> str:
    """The graph below `root` as DOT source (str); needs no Graphviz binary.

    One box per node: name (or automatic label), op and formula, shape, forward
    value (black) and gradient (red). Each edge carries, in red, the gradient that
    flowed back along it in the latest backward pass (`node.contributions`).
    Tensors show their first `items` entries; numbers have `digits` significant digits.

    - `depth`: draw only nodes at most `depth` edges above the root; `scope`: only
      nodes in that scope (e.g. "layernorm", matching any part of a scope path)
      and their inputs. Boxes with inputs not drawn have a dashed border.
    - `max_nodes`: refuse larger pictures with a ValueError (None: no limit).
    - `highlight_fanout`: colour every node used along two or more paths, its
      outgoing edges, and list each gradient it received above their sum.
    - `grad_text(node)` / `edge_text(child, k)`: replace the gradient text of a box /
      of the edge from `child.parents[k]`; return None to keep the default, "" for none.
      Used by `tg.stepper` to put placeholders that JavaScript fills in.

    Stable ids: box "n{i}" for `topological(root)[i]`, edge "e{i}_{k}" from its k-th parent.
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    for name, value in (("digits", digits), ("items", items)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    nodes = _nodes(root)
    index = {node: i for i, node in enumerate(nodes)}
    drawn = _select(root, nodes, depth, scope)
    if max_nodes is not None and len(drawn) > max_nodes:
        raise ValueError(_too_big(nodes, len(drawn), max_nodes, depth, scope))
    labels = {n: label or "''" for n, label in auto_labels(nodes).items()}  # name="" is shown as ''
    edges = [(child, k, p) for child in drawn for k, p in enumerate(child.parents) if p in drawn]
    uses: dict[Node, int] = {}
    for _, _, p in edges:
        uses[p] = uses.get(p, 0) + 1
    fanout = {p for p, n in uses.items() if n > 1 and not p.is_constant} if highlight_fanout else set()
    sent = edge_grads(drawn) if grads else {}
    style = _Style(digits, items, grads, grad_text)

    dot = _graphviz().Digraph(
        name="tinygraph",
        graph_attr={"rankdir": rankdir, "fontname": FONT, "bgcolor": "white", "pad": "0.15",
                    "nodesep": "0.25", "ranksep": "0.45" if rankdir in ("LR", "RL") else "0.35",
                    "newrank": "true"},
        node_attr={"shape": "plaintext", "fontname": FONT, "margin": "0"},
        edge_attr={"fontname": FONT, "fontsize": "11", "color": FORWARD, "arrowsize": "0.7"},
    )
    bodies: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for node in drawn:
        attrs = {"id": f"n{index[node]}", "label": style.box(node, labels, node in fanout,
                                                            cut=any(p not in drawn for p in node.parents))}
        bodies.setdefault(node.scope, []).append((f"n{index[node]}", attrs))
    _add_scopes(dot, bodies)
    for child, k, p in edges:
        attrs = {"id": f"e{index[child]}_{k}"}
        text = edge_text(child, k) if edge_text is not None else None
        if text is None and grads and not p.is_constant:
            g = sent.get((child, k))
            text = None if g is None else style.text(g)
        if text:
            attrs["label"] = f"<{_font(text, GRADIENT)}>"
        if p.is_constant:
            attrs.update(color=MUTED, style="dashed")
        elif p in fanout:
            attrs.update(color=FANOUT, penwidth="2")
        dot.edge(f"n{index[p]}", f"n{index[child]}", **attrs)
    return dot.source


def _nodes(root: Node) -> list[Node]:
    if not isinstance(root, Node):
        raise TypeError(f"expected a tinygraph Node to draw, got {type(root).__name__}")
    return topological(root)


def _select(root: Node, nodes: list[Node], depth: int | None, scope: str | None) -> dict[Node, None]:
    """The nodes to draw, in topological order (a dict used as an ordered set)."""
    keep = set(nodes)
    if depth is not None:
        if not isinstance(depth, int) or depth < 0:
            raise ValueError(f"depth must be an int >= 0, got {depth!r}")
        keep = _within(root, depth)
    if scope is not None:
        inside = {n for n in keep if _in_scope(n.scope, scope)}
        if not inside:
            found = sorted({n.scope for n in nodes if n.scope})
            raise ValueError(f"no node in scope {scope!r}; scopes in this graph: "
                             + (", ".join(map(repr, found)) or "none"))
        keep = inside | {p for n in inside for p in n.parents}
    return {n: None for n in nodes if n in keep}


def _within(root: Node, depth: int) -> set[Node]:
    """Nodes at most `depth` edges above `root` (breadth first, no recursion)."""
    seen, frontier = {root}, [root]
    for _ in range(depth):
        frontier = list(dict.fromkeys(p for n in frontier for p in n.parents if p not in seen))
        seen.update(frontier)
    return seen


def _in_scope(path: str, scope: str) -> bool:
    """True if `scope` is a run of whole components of `path`: "ln" is in "block/ln/inner"."""
    return f"/{scope}/" in f"/{path}/"


def _too_big(nodes: list[Node], n: int, max_nodes: int, depth: Any, scope: Any) -> str:
    scopes = sorted({node.scope.split("/")[0] for node in nodes if node.scope})
    hint = f"scope={scopes[0]!r} (scopes: {', '.join(scopes[:6])})" if scopes else "scope='name'"
    part = "" if depth is None and scope is None else " selected"
    return (f"this drawing has {n}{part} nodes, more than max_nodes={max_nodes}: too many to read or to lay "
            f"out quickly. Draw part of it: depth=3 (the nodes nearest the root) or {hint}; "
            f"or pass max_nodes={n} (or None) to draw everything (an .svg renders much faster than a .png).")


def edge_grads(children: Iterable[Node]) -> dict[tuple[Node, int], np.ndarray]:
    """(child, k) -> the gradient `child` sent to its k-th parent in the latest pass.

    Edges that carried nothing are left out.
    """
    return {(child, k): np.asarray(g, dtype=np.float64) for child in children for k, _, g in sent_along(child)}


def _graphviz() -> Any:
    """The graphviz Python package, imported when first drawing (tinygraph's engine does not need it)."""
    try:
        import graphviz
    except ImportError:
        raise ImportError("drawing needs the graphviz Python package: pip install graphviz graphviz-pure") from None
    return graphviz


def _add_scopes(dot: Any, bodies: dict[str, list]) -> None:
    """Put each scope's nodes in a labelled cluster, nested by path, deepest first."""
    paths = set(bodies)
    for path in list(paths):
        parts = path.split("/")
        paths.update("/".join(parts[:i]) for i in range(1, len(parts)))
    paths.discard("")
    ordered = sorted(paths, key=lambda p: (-p.count("/"), p))
    clusters = {}
    for j, path in enumerate(ordered):
        level = path.count("/")
        clusters[path] = _graphviz().Digraph(name=f"cluster_{j}", graph_attr={
            "label": f"<{_font(path.rsplit('/', 1)[-1] or repr(''), bold=True)}>", "labeljust": "l", "fontsize": "12",
            "fontcolor": "#3b4b66", "style": "rounded,filled", "color": "#9aa9c2",
            "fillcolor": SCOPE_FILLS[min(level, len(SCOPE_FILLS) - 1)], "margin": "10"})
    for path, boxes in bodies.items():
        for name, attrs in boxes:
            clusters.get(path, dot).node(name, **attrs)
    for path in ordered:  # children are complete before they are copied into their parent
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        clusters.get(parent, dot).subgraph(clusters[path])


class _Style:
    """Builds the HTML-like label of one box."""

    def __init__(self, digits: int, items: int, grads: bool, grad_text: Callable | None) -> None:
        self.digits, self.items, self.grads, self.grad_text = digits, items, grads, grad_text

    def box(self, node: Node, labels: dict, fanout: bool, cut: bool) -> str:
        if node.is_constant:
            text = labels[node] if node.name is None else f"{node.name} = {summary(node.data)}"
            return "<" + _font(text, MUTED, 11) + ">"
        data = self._lines(node.data)
        width = max(map(len, data)) + 1
        kind = node.op or "leaf"
        if node.ndim:
            kind += f" {node.shape}"
        rows = [f'<TR><TD ALIGN="LEFT" COLSPAN="{width}">{_font(labels[node], bold=True)}'
                f"   {_font(kind, MUTED, 10)}</TD></TR>"]
        if node.op:
            rows.append(f'<TR><TD ALIGN="LEFT" COLSPAN="{width}">'
                        f"{_font('= ' + formula(node, labels), MUTED, 11)}</TD></TR>")
        rows += _rows("data", data, FORWARD)
        if self.grads:
            rows += self._grad_rows(node, labels, fanout)
        border = FANOUT if fanout else FORWARD
        table = (f'<TABLE BORDER="{2 if fanout else 1}" COLOR="{border}" CELLBORDER="0" CELLSPACING="2" '
                 f'CELLPADDING="1" STYLE="rounded{",dashed" if cut else ""}" BGCOLOR="white">')
        return "<" + table + "".join(rows) + "</TABLE>>"

    def _grad_rows(self, node: Node, labels: dict, fanout: bool) -> list[str]:
        grad = self._lines(node.grad)
        text = self.grad_text(node) if self.grad_text is not None else None
        if text is not None:
            return [f'<TR><TD ALIGN="LEFT">{_font("grad", GRADIENT)}</TD>'
                    f'<TD ALIGN="LEFT" COLSPAN="{max(map(len, grad))}">{_font(text, GRADIENT)}</TD></TR>']
        parts = node.contributions
        if not (fanout and len(parts) > 1):
            return _rows("grad", grad, GRADIENT)
        rows = [row for consumer, g in parts
                for row in _rows(f"from {labels.get(consumer, 'other')}", self._lines(g), GRADIENT, 10)]
        return rows + _rows("grad = sum", grad, GRADIENT, bold=True)

    def text(self, value: Any) -> str:
        """An edge's gradient: "-6", "[1, 2, 3, ...]", or a small matrix one row per line."""
        if np.ndim(value) == 0:
            return number(float(value), self.digits)
        return "\n".join("[" + ", ".join(cells) + "]" for cells in self._lines(value))

    def _lines(self, value: Any) -> list[list[str]]:
        """A small matrix row by row (up to 4 rows of `items` + 1 columns); anything else as one line."""
        value = np.asarray(value)
        if value.ndim == 2 and value.shape[0] <= 4 and value.shape[1] <= self.items + 1 and value.size > 1:
            return [_cells(row, self.digits, self.items) for row in value]
        return [_cells(value if value.ndim else float(value), self.digits, self.items)]


def _rows(title: str, lines: list[list[str]], color: str, size: int | None = None, bold: bool = False) -> list[str]:
    """Table rows: the title, then one right-aligned cell per value (so rows line up); a matrix
    takes one row per line, titled on the first."""
    return [f'<TR><TD ALIGN="LEFT">{_font(title if i == 0 else "", color, size)}</TD>'
            + "".join(f'<TD ALIGN="RIGHT">{_font("  " + c, color, size, bold)}</TD>' for c in cells)  # "  ": gap
            + "</TR>" for i, cells in enumerate(lines)]


def _font(text: str, color: str | None = None, size: int | None = None, bold: bool = False) -> str:
    """Escaped `text` in the given colour, size and weight; "" for "" (Graphviz rejects empty tags)."""
    out = _html(text)
    if not out:
        return ""
    if bold:
        out = f"<B>{out}</B>"
    if color or size:
        out = "<FONT" + (f' COLOR="{color}"' if color else "") + (f' POINT-SIZE="{size}"' if size else "") + \
            f">{out}</FONT>"
    return out


def _cells(value: Any, digits: int, items: int) -> list[str]:
    """First `items` entries (flattened) as text, and "..." if there are more.

    One entry more than `items` is shown rather than hidden behind "...".
    """
    if isinstance(value, float):
        return [number(value, digits)]
    flat = np.ravel(value)
    if flat.size <= items + 1:
        return [number(float(v), digits) for v in flat]
    return [number(float(v), digits) for v in flat[:items]] + ["..."]


def short_text(value: Any, digits: int = 4, items: int = 3) -> str:
    """A value as edges and gradient rows show it: "-6", "[0.1, 0.2, 0.3, ...]"."""
    cells = _cells(value, digits, items)
    return cells[0] if np.ndim(value) == 0 else "[" + ", ".join(cells) + "]"


def _html(text: str) -> str:
    """Text for an HTML-like label: escaped, newlines as line breaks, control characters visible."""
    text = _BAD_CHARS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))
    text = html.escape(text, quote=True)
    return text.replace("\n", '<BR ALIGN="LEFT"/>')


# -- rendering ------------------------------------------------------------------------

class Drawing:
    """A rendered picture that shows itself in Jupyter; `.source` is the DOT text."""

    def __init__(self, source: str, svg: str) -> None:
        self.source = source
        self.svg = svg

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"image/svg+xml": self.svg}

    def _repr_svg_(self) -> str:
        return self.svg

    def save(self, filename: str | os.PathLike, format: str | None = None, dpi: int | None = None) -> str:
        """Write the picture to `filename` (format from its extension unless given)."""
        return _write(self.source, filename, format, dpi)

    def __repr__(self) -> str:
        return "<tinygraph Drawing: .save(path) writes png/svg, .source is the DOT text>"


def draw(root: Node, filename: str | os.PathLike | None = None, format: str | None = None, grads: bool = True,
         rankdir: str = "LR", *, dpi: int | None = None, **options: Any) -> str | Drawing:
    """Render the graph below `root`.

    With a filename, writes exactly that file (png, svg, jpg; pdf with a system
    Graphviz) and returns its path; the format follows the extension unless given.
    Without one, returns a `Drawing` that displays inline in Jupyter. `dpi` sets the
    resolution of png/jpg (default 144; 72 above 150 nodes, which keeps big pictures
    fast). Other keywords go to `to_dot` (digits, items, depth, scope, max_nodes,
    highlight_fanout, grad_text, edge_text).
    """
    source = to_dot(root, grads, rankdir, **options)
    if filename is None:
        if format not in (None, "svg"):
            raise ValueError(f"without a filename draw() returns an SVG drawing; to get {format}, give a filename")
        return Drawing(source, render(source, "svg").decode("utf-8"))
    return _write(source, filename, format, dpi)


def _write(source: str, filename: str | os.PathLike, format: str | None, dpi: int | None) -> str:
    path = Path(filename)
    fmt = (format or path.suffix[1:]).lower()
    if not fmt:
        raise ValueError(f"cannot tell the format of {str(filename)!r}: give it an extension (.png, .svg) "
                         "or pass format='png'")
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {str(folder)!r} does not exist; create it first "
                                f"(os.makedirs({str(folder)!r})) or choose another path")
    n_boxes = len(_BOX_ID.findall(source))
    if dpi is None:
        dpi = RASTER_DPI if n_boxes <= BIG else 72
    if fmt in RASTER_FORMATS and n_boxes > BIG:
        warnings.warn(f"a {fmt} of {n_boxes} nodes can take several seconds to rasterise (400 nodes: ~9 s); "
                      f"an .svg of the same drawing takes a fraction of a second", stacklevel=3)
    data = render(source, fmt, dpi)
    path.write_bytes(data)
    return str(path)


def render(source: str, format: str = "svg", dpi: int | None = None) -> bytes:
    """Run a Graphviz binary on DOT `source`; returns the picture's bytes (nothing is written)."""
    fmt = format.lower()
    binary = find_dot(fmt)
    args = [binary, f"-T{fmt}"]
    if fmt in RASTER_FORMATS:
        args.append(f"-Gdpi={dpi or RASTER_DPI}")
    try:
        done = subprocess.run(args, input=source.encode("utf-8"), capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise RuntimeError("Graphviz took over 2 minutes; draw less: depth=3 or scope='name'") from None
    if done.returncode != 0 or not done.stdout:
        errors = done.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"{Path(binary).name} -T{fmt} failed (exit {done.returncode}): {errors}")
    return done.stdout


def find_dot(format: str = "svg") -> str:
    """The Graphviz binary to use for `format`: TINYGRAPH_DOT, else graphviz-pure, else a system dot."""
    named = os.environ.get("TINYGRAPH_DOT")
    if named:
        found = shutil.which(named)
        if found is None:
            raise FileNotFoundError(f"TINYGRAPH_DOT={named!r} is not an executable; point it at Graphviz's dot "
                                    "or unset it to use graphviz-pure")
        return found
    pure = _graphviz_pure()
    system = shutil.which("dot")
    if pure and format in PURE_FORMATS:
        return pure
    if system:
        return system
    supported = ", ".join(PURE_FORMATS[:6]) + ", ..."
    if pure:
        raise ValueError(f"{format} needs a system Graphviz `dot` (https://graphviz.org/download/, or set "
                         f"TINYGRAPH_DOT=/path/to/dot); graphviz-pure supports: {supported}")
    raise RuntimeError("no Graphviz renderer found: pip install graphviz-pure (a tinygraph dependency), "
                       "or install Graphviz's dot, or set TINYGRAPH_DOT=/path/to/dot. "
                       "The DOT source works without one: tg.to_dot(root)")


def _graphviz_pure() -> str | None:
    """graphviz-pure's binary: next to this Python (venv bin / Scripts), in the user scripts dir, or on PATH."""
    name = "graphviz-pure.exe" if os.name == "nt" else "graphviz-pure"
    folders: Sequence[str | None] = (
        str(Path(sys.executable).parent), sysconfig.get_path("scripts"),
        sysconfig.get_path("scripts", f"{os.name}_user") if f"{os.name}_user" in
        sysconfig.get_scheme_names() else None)
    for folder in folders:
        if folder and (Path(folder) / name).is_file() and os.access(Path(folder) / name, os.X_OK):
            return str(Path(folder) / name)
    return shutil.which("graphviz-pure")
