"""Rich notebook displays: a Node as a card, a backward step and a list of paths as tables.

Jupyter shows an object through its `_repr_html_` when a cell ends with it; the
REPL keeps the plain-text `repr`. The card is laid out like a box of `tg.draw`
(name in bold, op and shape in grey, the formula, data in black, gradient in
red), so what a student sees in a cell and in a picture reads the same way.
This module attaches the displays to `Node`, `Step` and `Paths` when
tinygraph is imported.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from .core import Node, topological
from .formatting import number, summary
from .inspection import Paths
from .render import FORWARD, GRADIENT, MUTED
from .steps import Step, auto_labels, describe, formula

GRID_ROWS = 6  # a card shows up to 6 rows of a matrix, then a vertical ellipsis
GRID_COLUMNS = 6  # and up to 6 entries a row; a longer row shows its first 5, an ellipsis and its last

_CARD = ('style="border: 1px solid {color}; border-radius: 6px; border-collapse: separate; '
         'font-family: Helvetica, Arial, sans-serif; font-size: 13px; margin: 2px 0"')
_TABLE = 'style="border-collapse: collapse; font-family: Helvetica, Arial, sans-serif; font-size: 13px"'


def node_html(node: Node) -> str:
    """A Node as a card: name, op and shape, formula, data grid and gradient grid."""
    shape = f" {node.shape}" if node.ndim else ""
    if node.is_constant:
        data = _grid(node.data)
        title = _escaped(node.name or "") + " " + _span("constant" + shape, MUTED, "smaller")
        rows = [_title_row(title, data)] + _grid_rows("data", data, MUTED)
        return f'<table class="tinygraph-node" {_CARD.format(color=MUTED)}>{"".join(rows)}</table>'
    labels = _labels_around(node)
    data, grad = _grid(node.data), _grid(node.grad)
    kind = (node.op or "leaf") + shape
    rows = [_title_row(f"<b>{_escaped(labels[node])}</b>&nbsp;&nbsp;&nbsp;{_span(kind, MUTED, 'smaller')}", data)]
    if node.op:
        rows.append(_title_row(_span("= " + formula(node, labels), MUTED), data))
    if node.scope:
        rows.append(_title_row(_span(f"in scope {node.scope}", MUTED, "smaller"), data))
    rows += _grid_rows("data", data, FORWARD) + _grid_rows("grad", grad, GRADIENT)
    return f'<table class="tinygraph-node" {_CARD.format(color=FORWARD)}>{"".join(rows)}</table>'


def step_html(step: Step) -> str:
    """One step of `backward_steps` as a table: the node's equation, its gradient, what it sent to each parent."""
    labels = _step_labels(step)
    head = (f'<tr><th style="text-align: left">step {step.index}</th>'
            f'<th style="text-align: left; font-weight: normal">{_escaped(describe(step.node, labels))}</th></tr>')
    rows = [_pair_row("grad", summary(step.grad), GRADIENT, bold=True)]
    sent = step.contributions
    rows += [_pair_row(f"\u2192 {labels[parent]} +=", summary(g), GRADIENT) for parent, g in sent]
    if not sent:
        rows.append(_pair_row("", "leaf: nothing to send further", MUTED))
    return f'<table class="tinygraph-step" {_TABLE}>{head}{"".join(rows)}</table>'


def paths_html(paths: Paths) -> str:
    """`tg.paths(...)` as a table: one row per path with its gradient, and their sum (the leaf's gradient)."""
    if not paths:
        return "<p>no paths</p>"
    head = ('<tr><th style="text-align: right">#</th><th style="text-align: left">path (leaf \u2192 root)</th>'
            '<th style="text-align: left">gradient along this path alone</th></tr>')
    rows = [f'<tr><td style="text-align: right">{i}</td><td style="text-align: left">'
            f'{_escaped(" → ".join(path.labels))}</td>{_value_cell(summary(path.grad), GRADIENT)}</tr>'
            for i, path in enumerate(paths)]
    leaf = paths[0].labels[0]
    total = summary(np.sum([path.grad for path in paths], axis=0))
    rows.append(f'<tr style="border-top: 1px solid {FORWARD}"><td></td><td style="text-align: left">'
                f'sum: what backward gives {_escaped(leaf)}</td>{_value_cell(total, GRADIENT, bold=True)}</tr>')
    return f'<table class="tinygraph-paths" {_TABLE}>{head}{"".join(rows)}</table>'


# -- pieces ----------------------------------------------------------------------------

def _labels_around(node: Node) -> dict[Node, str]:
    """Labels as `tg.draw(node)` and `tg.explain(node)` give them."""
    return auto_labels(topological(node))


def _step_labels(step: Step) -> dict[Node, str]:
    """The labels `str(step)` uses (those of the whole pass's graph), so the table and the text agree."""
    labels = getattr(step, "_labels", None)
    return labels if labels is not None else _labels_around(step.node)


def _grid(value: Any) -> list[list[str]]:
    """Entries as text: a scalar or vector on one row, a matrix row by row, cut to GRID_ROWS x GRID_COLUMNS."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return [[number(float(arr))]]
    if arr.ndim > 2:
        return [[summary(arr)]]
    matrix = arr.reshape(1, -1) if arr.ndim == 1 else arr
    lines = [_cut([number(float(v)) for v in row], GRID_COLUMNS) for row in matrix[:GRID_ROWS]]
    if matrix.shape[0] > GRID_ROWS:
        lines.append(["\u22ee"] + [""] * (len(lines[0]) - 1))
    return lines


def _cut(cells: list[str], keep: int) -> list[str]:
    """The first `keep - 1` entries, "...", and the last one, if there are more than `keep`."""
    return cells if len(cells) <= keep else cells[:keep - 1] + ["\u2026", cells[-1]]


def _grid_rows(title: str, lines: list[list[str]], color: str) -> list[str]:
    """A title cell, then one right-aligned cell per entry (so a matrix's columns line up)."""
    width = max(map(len, lines))
    return [f'<tr><td style="text-align: left; color: {color}; padding-right: 10px">{title if i == 0 else ""}</td>'
            + "".join(_value_cell(c, color) for c in cells) + '<td></td>' * (width - len(cells)) + "</tr>"
            for i, cells in enumerate(lines)]


def _title_row(inner: str, grid: list[list[str]]) -> str:
    """A row across the whole card (the title column and every entry column of `grid`)."""
    return f'<tr><td colspan="{1 + max(map(len, grid))}" style="text-align: left">{inner}</td></tr>'


def _pair_row(title: str, value: str, color: str, bold: bool = False) -> str:
    return (f'<tr><td style="text-align: left; padding-right: 10px">{_escaped(title)}</td>'
            f"{_value_cell(value, color, bold)}</tr>")


def _value_cell(text: str, color: str, bold: bool = False) -> str:
    weight = "; font-weight: bold" if bold else ""
    return (f'<td style="text-align: right; color: {color}; font-family: monospace; padding-left: 8px{weight}">'
            f"{_escaped(text)}</td>")


def _span(text: str, color: str, size: str | None = None) -> str:
    font = f"; font-size: {size}" if size else ""
    return f'<span style="color: {color}{font}">{_escaped(text)}</span>'


def _escaped(text: str) -> str:
    return html.escape(str(text), quote=True)


Node._repr_html_ = node_html
Step._repr_html_ = step_html
Paths._repr_html_ = paths_html
