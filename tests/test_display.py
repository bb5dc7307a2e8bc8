"""Notebook displays: a Node as a card, a backward Step and tg.paths' result as tables; plain reprs unchanged.

The HTML is read back as a reader sees it (the text of each table row), not as markup.
"""

from html.parser import HTMLParser

import numpy as np
import pytest
from conftest import triangle
from hypothesis import given
from hypothesis import strategies as st
from test_random_graphs import SETTINGS, build, graphs

import tinygraph as tg
from tinygraph.display import node_html, paths_html, step_html
from tinygraph.formatting import summary


class _Rows(HTMLParser):
    """The text of every table cell, row by row; also notes any tag other than a table's and <b>/<span>."""

    def __init__(self) -> None:
        super().__init__()
        self.rows, self.other_tags = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")
        elif tag not in ("table", "b", "span"):
            self.other_tags.append(tag)

    def handle_data(self, data):
        if self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


def rows(page: str) -> list[list[str]]:
    parser = _Rows()
    parser.feed(page)
    assert parser.other_tags == [], f"unexpected tags {parser.other_tags}"
    return [[cell.strip().replace("\xa0", " ") for cell in row] for row in parser.rows]


def triangle_loss():
    x, mu, xc = triangle()
    w = tg.Node([1.0, 2.0, 6.0], name="w")
    loss = (xc * w).sum()
    loss.name = "loss"
    return x, xc, loss


# -- Node -------------------------------------------------------------------------------

def test_node_card_is_laid_out_like_the_drawings_box():
    x, xc, loss = triangle_loss()
    loss.backward()
    assert rows(node_html(xc)) == [
        ["xc   sub (3,)"], ["= x - mu"], ["data", "-1.333", "-0.3333", "1.667"], ["grad", "1", "2", "6"]]
    assert rows(node_html(x)) == [["x   leaf (3,)"], ["data", "1", "2", "4"], ["grad", "-2", "-1", "3"]]
    assert rows(node_html(loss))[:2] == [["loss   sum"], ["= sum(mul4)"]]  # scalar: no shape; labels as tg.draw


def test_jupyter_gets_the_card_and_the_unchanged_plain_repr():
    formatters = pytest.importorskip("IPython.core.formatters", reason="IPython shows objects the way Jupyter does")
    _, xc, loss = triangle_loss()
    shown, _ = formatters.DisplayFormatter().format(xc)
    assert shown["text/plain"] == repr(xc) == "<Node 'xc' sub shape=(3,) data=[-1.333, -0.3333, 1.667] grad=[0, 0, 0]>"
    assert shown["text/html"] == node_html(xc)
    step = next(tg.backward_steps(loss))
    shown, _ = formatters.DisplayFormatter().format(step)
    assert shown["text/plain"] == str(step) and shown["text/html"] == step_html(step)


def test_unnamed_nodes_get_the_labels_of_explain():
    x = tg.Node([1.0, 2.0], name="x")
    y = (x * 3.0).sum()
    assert rows(node_html(y))[:2] == [[f"{tg.explain(y).rows[-1]['name']}   sum"], ["= sum(mul2)"]]


def test_matrix_card_cuts_rows_and_columns_like_numpy():
    m = tg.Node(np.arange(80.0).reshape(8, 10), name="m")
    shown = rows(node_html(m))
    assert shown[0] == ["m   leaf (8, 10)"]
    assert shown[1] == ["data", "0", "1", "2", "3", "4", "\u2026", "9"]
    assert shown[6] == ["", "50", "51", "52", "53", "54", "\u2026", "59"]
    assert shown[7] == ["", "\u22ee", "", "", "", "", "", ""]
    assert shown[8][0] == "grad"
    big = rows(node_html(tg.Node(np.ones((2, 3, 4)), name="t")))
    assert big[1] == ["data", summary(np.ones((2, 3, 4)))]


def test_constant_card_is_grey_and_has_no_gradient():
    c = tg.constant(np.array([0.5, 1.5]))
    assert rows(node_html(c)) == [["constant (2,)"], ["data", "0.5", "1.5"]]


@SETTINGS
@given(st.text(min_size=1, max_size=20))
def test_any_name_is_shown_as_text_never_as_markup(name):
    x = tg.Node([1.0, 2.0], name=name)
    y = x * 2.0
    y.name = name + "<b>"
    card = rows(node_html(y))  # fails on any tag the name would have injected
    assert card[0][0].startswith((name + "<b>").strip().replace("\xa0", " "))
    assert card[1] == [f"= {name} * 2".strip().replace("\xa0", " ")]


# -- Step -------------------------------------------------------------------------------

def test_step_table_shows_gradient_and_what_was_sent():
    _, _, loss = triangle_loss()
    steps = list(tg.backward_steps(loss))
    assert rows(step_html(steps[3])) == [["step 3", "xc = x - mu"], ["grad", "[1, 2, 6]"],
                                         ["\u2192 x +=", "[1, 2, 6]"], ["\u2192 mu +=", "-9"]]
    assert rows(step_html(steps[5])) == [["step 5", "x"], ["grad", "[-2, -1, 3]"],
                                         ["", "leaf: nothing to send further"]]


@SETTINGS
@given(graphs(max_ops=8))
def test_step_table_says_what_str_step_says(graph):
    """Same labels (automatic ones included) and numbers as the text line, for every step of random graphs."""
    _, values = build(graph)
    for step in tg.backward_steps(values[-1]):
        table = rows(step_html(step))
        assert table[0] == [f"step {step.index}", str(step).split("   ")[0].split("  ", 1)[1]]
        sent = ", ".join(f"{label.removeprefix(chr(0x2192) + ' ')} {value}" for label, value in table[2:]
                         if label)
        assert str(step).endswith(f"   -> {sent}" if sent else "   (leaf)")


# -- paths ------------------------------------------------------------------------------

def test_paths_is_still_a_list_and_shows_as_a_table_with_its_sum():
    x, _, loss = triangle_loss()
    found = tg.paths(loss, x)
    assert isinstance(found, list) and isinstance(found, tg.Paths) and len(found) == 2
    assert repr(found) == "[x -> xc -> mul4 -> loss: [1, 2, 6], x -> mu -> xc -> mul4 -> loss: [-3, -3, -3]]"
    assert found[0].labels == ("x", "xc", "mul4", "loss")
    loss.backward()
    assert rows(paths_html(found)) == [
        ["#", "path (leaf \u2192 root)", "gradient along this path alone"],
        ["0", "x \u2192 xc \u2192 mul4 \u2192 loss", "[1, 2, 6]"],
        ["1", "x \u2192 mu \u2192 xc \u2192 mul4 \u2192 loss", "[-3, -3, -3]"],
        ["", "sum: what backward gives x", summary(x.grad)]]


@SETTINGS
@given(graphs(max_ops=8))
def test_paths_table_sum_is_the_backward_gradient(graph):
    _, values = build(graph)
    root, leaf = values[-1], values[0]
    if not any(n is leaf for n in tg.topological(root)):
        return
    found = tg.paths(root, leaf, max_paths=100_000)
    table = rows(paths_html(found))
    assert len(table) == len(found) + 2
    assert [row[2] for row in table[1:-1]] == [summary(p.grad) for p in found]
    total = np.sum([p.grad for p in found], axis=0)
    assert table[-1][-1] == summary(total)
    root.backward(np.ones(root.shape))
    np.testing.assert_allclose(total, leaf.grad, rtol=1e-9, atol=1e-12)
