"""Pictures of a graph: forward values in black, gradients in red, scopes boxed.

`to_dot` writes a `tinygraph.drawing.Picture` (what the picture says, made once)
as DOT source; `draw` runs a Graphviz binary on it. The binary is, in this order:

1. the one named by the environment variable ``TINYGRAPH_DOT`` (a path or a command);
2. ``graphviz-pure``, installed with tinygraph (a self-contained port of Graphviz
   with its own fonts), so every machine draws the same picture;
3. a system Graphviz ``dot`` on PATH, used by default only for formats that
   graphviz-pure lacks, such as pdf.

Ids (stable): the box of the node at index ``i`` of ``tinygraph.core.topological(root)``
has DOT ``id`` "n{i}"; the edge into node ``i`` from its ``k``-th parent has id
"e{i}_{k}". Both survive into SVG as ``<g id=...>``. In a picture with scopes an
edge's label is a node of its own with that id (class "edgelabel"), between the
edge's two halves "e{i}_{k}_from" and "e{i}_{k}_to"; every part carries the class
"e{i}_{k}".
"""

from __future__ import annotations

import html
import math
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .core import Node
from .drawing import WIDEST, Box, Picture, edge_grads, picture  # noqa: F401 (edge_grads: as before)
from .formatting import summary

FORWARD = "black"
GRADIENT = "#d62728"
FANOUT = "#1f6fc5"  # multi-path fan-outs, with highlight_fanout=True
MUTED = "#6b6b6b"  # ops, shapes, constants
SCOPE_FILLS = ("#f3f6fb", "#e6edf7", "#d9e3f2")  # nested scopes get darker
FONT = "Helvetica"

PURE_FORMATS = ("png", "svg", "jpg", "jpeg", "jpe", "json", "json0", "dot_json", "xdot_json",
                "plain", "plain-ext", "dot", "gv", "canon", "xdot", "xdot1.2", "xdot1.4")
SYSTEM_FORMATS = ("pdf", "ps", "eps", "gif", "bmp", "tif", "tiff", "webp", "ico", "emf")  # a system dot's
RASTER_DPI = 144  # twice Graphviz's 72: sharp on slides and retina screens
RASTER_FORMATS = ("png", "jpg", "jpeg", "jpe", "gif", "bmp", "tif", "tiff", "webp")
MAX_PIXELS = 8000  # the longer side of a raster picture; viewers refuse much bigger ones
MAX_NODES = 500  # draw and stepper refuse bigger graphs unless told otherwise

_BAD_CHARS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_SVG_SIZE = re.compile(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"')


# -- DOT source -----------------------------------------------------------------------

def to_dot(root: Node, grads: bool = True, rankdir: str | None = None, *, digits: int = 4, items: int = 3,
           depth: int | None = None, scope: str | None = None, highlight_fanout: bool = False,
           max_nodes: int | None = None) -> str:
    """The graph below `root` as DOT source (str); needs no Graphviz binary.

    One box per node: name (or automatic label), op and formula, shape, forward
    value (black) and gradient (red). Each edge carries, in red, the gradient that
    flowed back along it in the latest backward pass (`node.contributions`).
    Tensors show their first `items` entries; numbers have `digits` significant digits.

    - `rankdir`: None chooses "LR" or "TB" so that the picture's aspect ratio stays
      within 1:3..3:1; "LR", "TB" (or "RL", "BT") force one.
    - `depth`: draw only nodes at most `depth` edges above the root; `scope`: only
      nodes in that scope (e.g. "layernorm", matching any part of a scope path)
      and their inputs. Boxes with inputs not drawn have a dashed border.
    - `highlight_fanout`: colour every node used along two or more paths, its
      outgoing edges, and list each gradient it received above their sum.
    - `max_nodes`: refuse larger graphs with a ValueError (default None: any size;
      `tg.draw` and `tg.stepper` refuse more than 500).

    Stable ids: box "n{i}" for `topological(root)[i]`, edge "e{i}_{k}" from its k-th parent.
    """
    return dot_source(picture(root, grads, rankdir, digits=digits, items=items, depth=depth, scope=scope,
                              highlight_fanout=highlight_fanout, max_nodes=max_nodes))


def dot_source(pic: Picture, graph_attrs: dict[str, str] | None = None) -> str:
    """`pic` as DOT source: boxes as HTML-like tables, scopes as nested clusters."""
    across = pic.rankdir in ("LR", "RL")
    dot = _graphviz().Digraph(
        name="tinygraph",
        graph_attr={"rankdir": pic.rankdir, "fontname": FONT, "bgcolor": "white", "pad": "0.15",
                    "nodesep": "0.25", "ranksep": "0.45" if across else "0.2", "newrank": "true",
                    **(graph_attrs or {})},
        node_attr={"shape": "plaintext", "fontname": FONT, "margin": "0"},
        edge_attr={"fontname": FONT, "fontsize": "11", "color": FORWARD, "arrowsize": "0.7"},
    )
    bodies: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for box in pic.boxes:
        bodies.setdefault(box.scope, []).append((box.id, {"id": box.id, "label": box_label(box)}))
    lines = []
    scoped = any(box.scope for box in pic.boxes)
    for edge in pic.edges:
        attrs = {"id": edge.id, "class": edge.id}
        if edge.constant:
            attrs.update(color=MUTED, style="dashed")
        elif edge.fanout:
            attrs.update(color=FANOUT, penwidth="2")
        label = f"<{_font(edge_label(edge.text, across), GRADIENT)}>" if edge.text else None
        if label and scoped:
            # Graphviz places an edge's label without regard to scope borders, on them too. So in a picture
            # with scopes each label is a box of its own on its edge, in the consumer's scope.
            bodies.setdefault(edge.head.scope, []).append((edge.id, {
                "id": edge.id, "class": f"{edge.id} edgelabel", "label": label, "shape": "plaintext",
                "fontsize": "11", "margin": "0.03,0.01", "width": "0", "height": "0"}))
            lines.append((edge.tail.id, edge.id, {**attrs, "id": f"{edge.id}_from", "arrowhead": "none"}))
            lines.append((edge.id, edge.head.id, {**attrs, "id": f"{edge.id}_to"}))
            continue
        if label:
            attrs["label"] = label
        lines.append((edge.tail.id, edge.head.id, attrs))
    _add_scopes(dot, bodies)
    for tail, head, attrs in lines:
        dot.edge(tail, head, **attrs)
    return dot.source


def edge_label(lines: list[str], across: bool) -> str:
    """An edge's gradient text: a matrix one row a line where edges run across, on one line where
    they run down (a label's lines would stretch every rank gap of a top-to-bottom picture)."""
    return "\n".join(lines) if across or len(lines) == 1 else "[" + ", ".join(lines) + "]"


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
            "fillcolor": SCOPE_FILLS[min(level, len(SCOPE_FILLS) - 1)], "margin": "16"})
    for path, boxes in bodies.items():
        for name, attrs in boxes:
            clusters.get(path, dot).node(name, **attrs)
    for path in ordered:  # children are complete before they are copied into their parent
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        clusters.get(parent, dot).subgraph(clusters[path])


def box_label(box: Box) -> str:
    """The HTML-like label of one box: title, formula, value rows (black), gradient rows (red)."""
    if box.constant:
        text = box.label if box.node.name is None else f"{box.node.name} = {summary(box.node.data)}"
        return "<" + _font(text, MUTED, 11) + ">"
    width = max(map(len, box.data)) + 1
    rows = [f'<TR><TD ALIGN="LEFT" COLSPAN="{width}">{_font(box.label, bold=True)}'
            f"   {_font(box.kind, MUTED, 10)}</TD></TR>"]
    if box.formula:
        rows.append(f'<TR><TD ALIGN="LEFT" COLSPAN="{width}">{_font("= " + box.formula, MUTED, 11)}</TD></TR>')
    rows += _rows("data", box.data, FORWARD)
    if box.grad is not None and box.received:
        for source, received in box.received:
            rows += _rows(f"from {source}", received, GRADIENT, 10)
        rows += _rows("grad = sum", box.grad, GRADIENT, bold=True)
    elif box.grad is not None:
        rows += _rows("grad", box.grad, GRADIENT)
    border = FANOUT if box.fanout else FORWARD
    table = (f'<TABLE BORDER="{2 if box.fanout else 1}" COLOR="{border}" CELLBORDER="0" CELLSPACING="2" '
             f'CELLPADDING="1" STYLE="rounded{",dashed" if box.cut else ""}" BGCOLOR="white">')
    return "<" + table + "".join(rows) + "</TABLE>>"


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
        path, fmt = output_path(filename, format)
        path.write_bytes(self.svg.encode("utf-8") if fmt == "svg" else _rendered(self.source, fmt, dpi))
        return str(path)

    def __repr__(self) -> str:
        return "<tinygraph Drawing: .save(path) writes png/svg, .source is the DOT text>"


def draw(root: Node, filename: str | os.PathLike | None = None, format: str | None = None, grads: bool = True,
         rankdir: str | None = None, *, dpi: int | None = None, max_nodes: int | None = MAX_NODES,
         **options: Any) -> str | Drawing:
    """Render the graph below `root`.

    With a filename, writes exactly that file (png, svg, jpg; pdf with a system
    Graphviz) and returns its path; the format follows the extension unless given.
    Without one, returns a `Drawing` that displays inline in Jupyter. `rankdir=None`
    chooses the direction that keeps the picture within 1:3..3:1. `dpi` sets the
    resolution of png/jpg (default 144), lowered with a warning where the picture's
    longer side would pass 8,000 pixels. Graphs over `max_nodes` (500) are refused.
    Other keywords go to `to_dot` (digits, items, depth, scope, highlight_fanout).
    """
    if filename is None and format not in (None, "svg"):
        raise ValueError(f"without a filename draw() returns an SVG drawing; to get {format}, give a filename")
    path, fmt = (None, "svg") if filename is None else output_path(filename, format)
    pic = picture(root, grads, rankdir, max_nodes=max_nodes, **options)
    source, data = layout(pic, fmt, dpi, automatic=rankdir is None)
    if path is None:
        return Drawing(source, data.decode("utf-8"))
    path.write_bytes(data)
    return str(path)


def layout(pic: Picture, format: str = "svg", dpi: int | None = None, automatic: bool = False) -> tuple[str, bytes]:
    """DOT source of `pic` and the picture Graphviz made of it. With `automatic`, a picture whose aspect
    ratio turns out outside 1:3..3:1 is made the other way round too, and the squarer one kept."""
    source = dot_source(pic)
    data = _rendered(source, format, dpi)
    size = picture_size(data, format)
    if automatic and size and _stretch(size) > math.log(WIDEST):
        pic.rankdir = "TB" if pic.rankdir == "LR" else "LR"
        other_source = dot_source(pic)
        other = _rendered(other_source, format, dpi)
        if _stretch(picture_size(other, format)) < _stretch(size):
            return other_source, other
        pic.rankdir = "TB" if pic.rankdir == "LR" else "LR"
    return source, data


def _stretch(size: tuple[float, float]) -> float:
    return abs(math.log(size[0] / size[1]))


def picture_size(data: bytes, format: str) -> tuple[float, float] | None:
    """Width and height of a picture Graphviz wrote: an SVG's in points, a PNG's in pixels; None for others."""
    if format == "png":
        return png_size(data)
    if format != "svg":
        return None
    found = _SVG_SIZE.search(data[:2000].decode("utf-8", "replace"))
    if not found:
        raise RuntimeError("Graphviz wrote an SVG without a size")
    return float(found[1]), float(found[2])


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height in pixels, from a PNG's header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def output_path(filename: str | os.PathLike, format: str | None) -> tuple[Path, str]:
    """The file to write and its format; a clear error for a missing folder or an unknown format."""
    path = Path(filename)
    fmt = (format or path.suffix[1:]).lower()
    if not fmt:
        raise ValueError(f"cannot tell the format of {str(filename)!r}: give it an extension (.png, .svg) "
                         "or pass format='png'")
    if fmt not in PURE_FORMATS + SYSTEM_FORMATS:
        raise ValueError(f"cannot draw a {fmt!r} picture; formats: png, svg, jpg (and pdf with a system Graphviz)")
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {str(folder)!r} does not exist; create it first "
                                f"(os.makedirs({str(folder)!r})) or choose another path")
    return path, fmt


def _rendered(source: str, fmt: str, dpi: int | None) -> bytes:
    """Graphviz's picture of `source`; a raster one at `dpi` (144) but never longer than 8,000 pixels:
    Graphviz shrinks a bigger one to fit (a lower dpi), and a warning says so."""
    if fmt not in RASTER_FORMATS:
        return render(source, fmt)
    dpi = dpi or RASTER_DPI
    data = render(source, fmt, dpi, max_inches=MAX_PIXELS / dpi)
    if fmt == "png" and max(png_size(data)) > MAX_PIXELS - dpi:
        width, height = png_size(data)
        warnings.warn(f"at {dpi} dpi this picture would be longer than {MAX_PIXELS:,} pixels, more than many viewers "
                      f"open, so it was drawn smaller: {width:,} x {height:,} pixels. For a readable picture draw "
                      "less (depth=3, scope='name'); for a sharp one write an .svg.", stacklevel=4)
    return data


def render(source: str, format: str = "svg", dpi: int | None = None, max_inches: float | None = None) -> bytes:
    """Run a Graphviz binary on DOT `source`; returns the picture's bytes (nothing is written).

    `max_inches`: shrink a picture whose longer side is longer than that (Graphviz's `size`)."""
    fmt = format.lower()
    binary = find_dot(fmt)
    args = [binary, f"-T{fmt}"]
    if fmt in RASTER_FORMATS:
        args.append(f"-Gdpi={dpi or RASTER_DPI}")
    if max_inches:
        args.append(f"-Gsize={max_inches:.3f},{max_inches:.3f}")
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
