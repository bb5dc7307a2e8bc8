"""tg.to_dot / tg.draw: what the picture says (DOT content) and that it renders without system Graphviz."""

import os
import re
import subprocess
import sys
import textwrap
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from conftest import triangle
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph import render
from tinygraph.core import topological

SVG = "{http://www.w3.org/2000/svg}"


def triangle_loss():
    """loss = sum((x - mean(x)) * [1, 2, 3]): x reaches xc directly and through mu."""
    x, mu, xc = triangle([1.0, 2.0, 6.0])
    loss = (xc * np.array([1.0, 2.0, 3.0])).sum()
    loss.name = "loss"
    loss.backward()
    return x, mu, xc, loss


def node_stmt(dot, i):
    """The DOT statement of the box with id n{i}."""
    return next(line for line in dot.splitlines() if line.lstrip().startswith(f"n{i} [") and f"id=n{i}" in line)


def edge_stmt(dot, edge_id):
    return next(line for line in dot.splitlines() if f"id={edge_id}" in line and "->" in line)


def svg_texts(svg, element_id):
    """All text inside the SVG group with this id, in document order."""
    root = ET.fromstring(svg)
    group = next(g for g in root.iter(f"{SVG}g") if g.get("id") == element_id)
    return [t.text or "" for t in group.iter(f"{SVG}text")]


# -- what the boxes and edges say ----------------------------------------------------------

def test_box_has_name_op_formula_value_and_gradient_in_their_colours():
    x, mu, xc, loss = triangle_loss()
    nodes = topological(loss)
    dot = tg.to_dot(loss)
    box = node_stmt(dot, nodes.index(xc))
    assert "<B>xc</B>" in box and "sub (3,)" in box and "= x - mu" in box
    assert re.search(r'<FONT COLOR="black">\s*-2</FONT>.*<FONT COLOR="black">\s*-1</FONT>', box)
    assert f'<FONT COLOR="{render.GRADIENT}">grad</FONT>' in box
    assert re.search(rf'<FONT COLOR="{render.GRADIENT}">\s*1</FONT></TD><TD ALIGN="RIGHT">'
                     rf'<FONT COLOR="{render.GRADIENT}">\s*2</FONT>', box)
    mu_box = node_stmt(dot, nodes.index(mu))
    assert "<B>mu</B>" in mu_box and "= mean(x)" in mu_box and re.search(r">\s*3</FONT>", mu_box)


def test_scalars_show_four_significant_digits_and_digits_option():
    a = tg.Node(1.0 / 3.0, name="a")
    b = a * 3.0
    b.backward()
    assert "0.3333<" in tg.to_dot(b) and "0.33333<" not in tg.to_dot(b)
    assert "0.333333<" in tg.to_dot(b, digits=6)


def test_tensors_show_first_items_then_ellipsis():
    x = tg.Node(np.arange(10.0), name="x")
    y = (x * 2).sum()
    y.backward()
    box = node_stmt(tg.to_dot(y), 0)
    assert "leaf (10,)" in box and ">  2<" in box and ">  3<" not in box and ">  ...<" in box
    assert ">  3<" in node_stmt(tg.to_dot(y, items=4), 0)


def test_each_edge_carries_the_gradient_that_flowed_along_it():
    x, mu, xc, loss = triangle_loss()
    nodes = topological(loss)
    dot = tg.to_dot(loss)
    i_xc, i_mu = nodes.index(xc), nodes.index(mu)
    assert "[1, 2, 3]" in edge_stmt(dot, f"e{i_xc}_0")  # x -> xc: the direct path
    assert "-6" in edge_stmt(dot, f"e{i_xc}_1")  # mu -> xc: minus the sum of xc's gradient
    assert "[-2, -2, -2]" in edge_stmt(dot, f"e{i_mu}_0")  # x -> mu: -6 / 3 each
    assert render.GRADIENT in edge_stmt(dot, f"e{i_mu}_0")
    assert np.allclose(x.grad, [1 - 2, 2 - 2, 3 - 2])  # the box shows the sum of both edges
    assert re.search(r">\s*-1</FONT>.*>\s*0</FONT>.*>\s*1</FONT>", node_stmt(dot, nodes.index(x)))


def test_a_plus_a_and_a_times_a_draw_two_edges_each_with_its_own_gradient():
    a = tg.Node(3.0, name="a")
    s = a + a
    p = s * a
    p.backward()
    nodes = topological(p)
    i_s, i_p = nodes.index(s), nodes.index(p)
    dot = tg.to_dot(p)
    assert dot.count("n0 -> ") == 3
    e0, e1 = edge_stmt(dot, f"e{i_s}_0"), edge_stmt(dot, f"e{i_s}_1")
    assert e0 != e1 and ">3<" in e0 and ">3<" in e1  # ds/da along each edge = dp/ds = a = 3
    assert ">6<" in edge_stmt(dot, f"e{i_p}_1")  # dp/da directly = s = 6
    svg = render.render(dot, "svg").decode()
    ids = re.findall(r'<g id="(e\d+_\d+)" class="edge\b', svg)
    assert sorted(ids) == sorted([f"e{i_s}_0", f"e{i_s}_1", f"e{i_p}_0", f"e{i_p}_1"])  # none merged


def test_ids_follow_topological_order_and_survive_into_svg():
    x, mu, xc, loss = triangle_loss()
    nodes = topological(loss)
    dot = tg.to_dot(loss)
    svg = render.render(dot, "svg").decode()
    for i, node in enumerate(nodes):
        assert f"id=n{i}" in dot and f'<g id="n{i}" class="node">' in svg
        for k in range(len(node.parents)):
            assert f'<g id="e{i}_{k}" class="edge e{i}_{k}">' in svg
    assert "mu" in svg_texts(svg, f"n{nodes.index(mu)}")


def test_grads_false_draws_forward_values_only():
    *_, loss = triangle_loss()
    dot = tg.to_dot(loss, grads=False)
    assert render.GRADIENT not in dot and "data" in dot and "grad" not in dot


def test_before_backward_gradients_are_zero_and_edges_unlabelled():
    x = tg.Node([1.0, 2.0], name="x")
    y = (x * x).sum()
    dot = tg.to_dot(y)
    assert "label=<<FONT" not in "".join(line for line in dot.splitlines() if "->" in line)
    assert re.search(rf'<FONT COLOR="{render.GRADIENT}">\s*0</FONT>', dot)


def test_constants_are_small_grey_and_without_gradient():
    x = tg.Node(2.0, name="x")
    y = 5.0 * x
    y.backward()
    nodes = topological(y)
    assert nodes[0].is_constant and nodes[2] is y  # 5.0 * x: the constant is parent 0 of y, first in the walk
    dot = tg.to_dot(y)
    const = node_stmt(dot, 0)
    assert render.MUTED in const and ">5<" in const and "grad" not in const
    assert "label" not in edge_stmt(dot, "e2_0") and "dashed" in edge_stmt(dot, "e2_0")
    assert ">5<" in edge_stmt(dot, "e2_1")  # dy/dx = 5 along the edge from x


def test_rankdir_top_to_bottom_and_bad_rankdir():
    *_, loss = triangle_loss()
    assert "rankdir=TB" in tg.to_dot(loss, rankdir="TB") and "rankdir=LR" in tg.to_dot(loss, rankdir="LR")
    with pytest.raises(ValueError, match="rankdir must be one of LR, TB"):
        tg.to_dot(loss, rankdir="sideways")


def test_to_dot_rejects_a_non_node():
    with pytest.raises(TypeError, match="expected a tinygraph Node to draw, got list"):
        tg.to_dot([1, 2])


# -- scopes, sub-graphs, size limit -----------------------------------------------------------

def test_scopes_are_nested_labelled_clusters():
    x = tg.Node([1.0, 2.0], name="x")
    with tg.scope("block"):
        h = x * 2
        h.name = "h"
        with tg.scope("norm"):
            m = h.mean()
            m.name = "m"
    y = m + 1
    y.backward()
    nodes = topological(y)
    dot = tg.to_dot(y)
    inner = dot.index("<B>norm</B>")
    outer = dot.index("<B>block</B>")
    start_block = dot.rfind("subgraph cluster_", 0, outer)
    start_norm = dot.rfind("subgraph cluster_", 0, inner)
    assert start_block < start_norm  # norm's cluster is written inside block's
    assert dot.index(f"id=n{nodes.index(m)}") > start_norm
    assert start_block < dot.index(f"id=n{nodes.index(h)}") < start_norm
    assert dot.index(f"id=n{nodes.index(x)}") < start_block  # x was made outside every scope


def test_nn_layer_call_is_drawn_as_a_cluster():
    y = tg.nn.LayerNorm(3)(np.array([1.0, 2.0, 4.0]))
    y.backward(np.ones(3))
    dot = tg.to_dot(y)
    assert "subgraph cluster_" in dot and "<B>layernorm</B>" in dot and "<B>xhat</B>" in dot


def test_depth_draws_only_nodes_near_the_root_and_dashes_cut_boxes():
    *_, loss = triangle_loss()
    dot = tg.to_dot(loss, depth=1)
    assert "<B>loss</B>" in dot and "<B>mul" in dot and "<B>xc</B>" not in dot
    assert 'STYLE="rounded,dashed"' in dot  # the mul box has an input that is not drawn
    with pytest.raises(ValueError, match="depth must be an int >= 0"):
        tg.to_dot(loss, depth=-1)


def test_scope_draws_one_scope_and_its_inputs():
    x = tg.Node([1.0, 2.0], name="x")
    with tg.scope("outer"):
        with tg.scope("ln"):
            mu = x.mean()
            mu.name = "mu"
    y = (x - mu).sum()
    y.name = "y"
    y.backward()
    dot = tg.to_dot(y, scope="ln")
    assert "<B>mu</B>" in dot and "<B>x</B>" in dot and "<B>y</B>" not in dot
    with pytest.raises(ValueError, match=r"no node in scope 'nope'; scopes in this graph: 'outer/ln'"):
        tg.to_dot(y, scope="nope")


def test_big_graphs_are_refused_by_draw_with_advice_but_not_by_to_dot(tmp_path):
    y = tg.Node(1.0, name="x")
    for _ in range(600):
        y = y * 1.0
    with pytest.raises(ValueError, match=r"1201 nodes, more than max_nodes=500.*depth=3.*max_nodes=1201"):
        tg.draw(y, tmp_path / "big.svg")
    assert os.listdir(tmp_path) == []
    assert "id=n1200" in tg.to_dot(y)
    assert tg.to_dot(y, depth=2).count("->") == 4
    with pytest.raises(ValueError, match="more than max_nodes=10"):
        tg.to_dot(y, max_nodes=10)


def test_to_dot_of_ten_thousand_nodes_is_text_at_once():
    y = tg.Node(1.0, name="x")
    for _ in range(5000):
        y = y * 1.0  # 10,001 nodes with the constants
    assert tg.to_dot(y).count("->") == 10000


# -- highlighting fan-outs and the stepper's hooks ---------------------------------------------

def test_highlight_fanout_colours_multi_path_nodes_and_lists_their_contributions():
    x, mu, xc, loss = triangle_loss()
    nodes = topological(loss)
    dot = tg.to_dot(loss, highlight_fanout=True)
    i_x, i_mu, i_xc = nodes.index(x), nodes.index(mu), nodes.index(xc)
    box = node_stmt(dot, i_x)
    assert f'COLOR="{render.FANOUT}"' in box and "from xc" in box and "from mu" in box and "grad = sum" in box
    assert render.FANOUT in edge_stmt(dot, f"e{i_mu}_0") and render.FANOUT in edge_stmt(dot, f"e{i_xc}_0")
    assert render.FANOUT not in edge_stmt(dot, f"e{i_xc}_1")  # mu is used once
    assert render.FANOUT not in node_stmt(dot, i_mu) and render.FANOUT not in tg.to_dot(loss)


# -- escaping ----------------------------------------------------------------------------------

NASTY = [  # (name, the lines the box shows): control characters and lone surrogates appear escaped
    ('say "hi"', ['say "hi"']), ("{a|b}", ["{a|b}"]), ("<b>x</b>", ["<b>x</b>"]), ("a&b;", ["a&b;"]),
    ("back\\slash\\", ["back\\slash\\"]), ("two\nlines", ["two", "lines"]), ("μσ∂", ["μσ∂"]),
    ("tab\there", ["tab\\there"]), ("nul\x00", ["nul\\x00"]), ("half\ud800", ["half\\ud800"]), ("", ["''"]),
]


@pytest.mark.parametrize(("name", "lines"), NASTY)
def test_names_with_special_characters_render_as_written(name, lines):
    a = tg.Node(2.0, name=name)
    with tg.scope(name or "s"):
        b = a * a
    b.backward()
    svg = render.render(tg.to_dot(b), "svg").decode()
    shown = svg_texts(svg, "n0")
    assert all(line in shown for line in lines), shown


@settings(deadline=None, max_examples=60, derandomize=True)
@given(st.text(max_size=12), st.text(min_size=1, max_size=8))
def test_random_names_never_break_dot_or_svg(name, scope_name):
    a = tg.Node(1.5, name=name)
    with tg.scope(scope_name):
        b = a + a
    b.name = name
    b.backward()
    svg = render.render(tg.to_dot(b, highlight_fanout=True), "svg").decode()
    root = ET.fromstring(svg)  # well-formed XML
    assert {g.get("id") for g in root.iter(f"{SVG}g")} >= {"n0", "n1", "e1_0", "e1_1"}


# -- rendering ---------------------------------------------------------------------------------

def test_png_renders_with_no_system_dot_and_writes_exactly_one_file(tmp_path):
    script = textwrap.dedent("""
        import sys, tinygraph as tg
        x = tg.Node([1.0, 2.0, 6.0], name="x")
        with tg.scope("layernorm"):
            y = ((x - x.mean()) ** 2).mean()
        y.backward()
        print(tg.draw(y, sys.argv[1]))
        print(tg.render.find_dot("png"))
    """)
    env = {**os.environ, "PATH": str(tmp_path / "empty")}
    env.pop("TINYGRAPH_DOT", None)
    target = tmp_path / "out" / "ln.png"
    target.parent.mkdir()
    done = subprocess.run([sys.executable, "-c", script, str(target)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].endswith(("graphviz-pure", "graphviz-pure.exe"))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(target.parent) == ["ln.png"]


def test_svg_format_follows_extension_or_argument(tmp_path):
    *_, loss = triangle_loss()
    assert tg.draw(loss, tmp_path / "a.svg") == str(tmp_path / "a.svg")
    assert (tmp_path / "a.svg").read_text().lstrip().startswith("<?xml")
    tg.draw(loss, tmp_path / "b.img", format="png")
    assert (tmp_path / "b.img").read_bytes()[:4] == b"\x89PNG"
    assert sorted(os.listdir(tmp_path)) == ["a.svg", "b.img"]
    with pytest.raises(ValueError, match="cannot tell the format"):
        tg.draw(loss, tmp_path / "noext")


def test_missing_folder_is_a_clear_error_and_nothing_is_created(tmp_path):
    *_, loss = triangle_loss()
    with pytest.raises(FileNotFoundError, match="folder .*slides.* does not exist"):
        tg.draw(loss, tmp_path / "slides" / "ln.png")
    assert os.listdir(tmp_path) == []


def test_pdf_without_system_dot_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("TINYGRAPH_DOT", raising=False)
    *_, loss = triangle_loss()
    with pytest.raises(ValueError, match=r"pdf needs a system Graphviz `dot`.*graphviz-pure supports: png, svg"):
        tg.draw(loss, tmp_path / "a.pdf")
    assert os.listdir(tmp_path) == []


def test_no_renderer_at_all_points_to_pip_and_to_dot(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("TINYGRAPH_DOT", raising=False)
    monkeypatch.setattr(render, "_graphviz_pure", lambda: None)
    *_, loss = triangle_loss()
    with pytest.raises(RuntimeError, match=r"pip install graphviz-pure.*tg.to_dot\(root\)"):
        tg.draw(loss, tmp_path / "a.png")
    assert "digraph" in tg.to_dot(loss)


def test_tinygraph_dot_names_the_binary(tmp_path, monkeypatch):
    pure = render._graphviz_pure()
    monkeypatch.setenv("TINYGRAPH_DOT", pure)
    assert render.find_dot("png") == pure
    monkeypatch.setenv("TINYGRAPH_DOT", str(tmp_path / "no-such-dot"))
    with pytest.raises(FileNotFoundError, match="TINYGRAPH_DOT=.*no-such-dot.* is not an executable"):
        render.find_dot("png")


def test_draw_without_filename_displays_in_jupyter_and_saves(tmp_path):
    *_, loss = triangle_loss()
    drawing = tg.draw(loss, rankdir="TB")
    bundle = drawing._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml") and 'id="n0"' in bundle["image/svg+xml"]
    assert drawing.source == tg.to_dot(loss, rankdir="TB")
    assert drawing.save(tmp_path / "t.png") == str(tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="give a filename"):
        tg.draw(loss, format="png")


def test_layernorm_example_renders_all_figures(tmp_path):
    done = subprocess.run([sys.executable, "examples/render_norms.py", "--out-dir", str(tmp_path)],
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    names = {f"{n}.png" for n in ("layernorm", "batchnorm", "triangle")}
    assert set(os.listdir(tmp_path)) == names
    assert all((tmp_path / n).read_bytes()[:4] == b"\x89PNG" for n in names)


def test_png_is_144_dpi_by_default_for_slides(tmp_path):
    *_, loss = triangle_loss()
    widths = []
    for dpi in (None, 72):
        path = tg.draw(loss, tmp_path / f"{dpi}.png", dpi=dpi)
        widths.append(int.from_bytes(open(path, "rb").read(24)[16:20], "big"))  # the PNG header's width
    assert abs(widths[0] / widths[1] - 2) < 0.05


def test_small_matrices_are_shown_row_by_row_in_boxes_and_on_edges():
    x = tg.Node([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], name="x")
    y = (x * 2).sum()
    y.backward()
    dot = tg.to_dot(y)
    box = dot[dot.index("n0 [label="):dot.index("id=n0]")]
    rows = box.split("</TR>")
    for a, b in (("1", "2"), ("3", "4"), ("5", "6")):
        assert any(f">  {a}<" in r and f">  {b}<" in r for r in rows), (a, b)
    assert "[1, 1]<BR" in dot  # the edge from x carries [[1, 1], [1, 1], [1, 1]], one row per line
    assert "..." not in dot


def test_a_huge_raster_drawing_is_kept_under_8000_pixels_with_a_warning(tmp_path):
    y = tg.Node(1.0, name="x")
    for _ in range(67):
        y = y * 1.0  # 135 nodes: a chain too long for any direction
    with pytest.warns(UserWarning, match=r"longer than 8,000 pixels.*drawn smaller: [\d,]+ x [\d,]+ pixels"):
        tg.draw(y, tmp_path / "chain.png")
    assert max(png_size(tmp_path / "chain.png")) <= render.MAX_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tg.draw(y, tmp_path / "chain.svg")
        tg.draw(triangle_loss()[-1], tmp_path / "small.png")


def png_size(path):
    data = open(path, "rb").read(24)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# -- shape: the automatic direction -------------------------------------------------------------

def chain(n):
    y = tg.Node(1.0, name="x")
    for _ in range(n):
        y = y.tanh()
    y.backward()
    return y


def fan(n):
    """A sum of n products of separate leaves: wide and shallow."""
    terms = [tg.Node(float(i), name=f"a{i}") * tg.Node(1.0, name=f"b{i}") for i in range(n)]
    y = terms[0]
    for t in terms[1:]:
        y = y + t
    y.backward()
    return y


def layer_norm():
    y = tg.nn.LayerNorm(4)(tg.Node([1.0, 2.0, 4.0, 7.0], name="x"))
    y.backward(np.array([0.5, -1.0, 0.25, 1.0]))
    return y


@pytest.mark.parametrize("build", [lambda: chain(6), lambda: fan(6), layer_norm, lambda: triangle_loss()[-1]],
                         ids=["chain", "fan", "layernorm", "triangle"])
def test_automatic_direction_fits_a_slide_whenever_one_direction_does(build):
    root = build()
    stretch = {}
    for rankdir in ("LR", "TB", None):
        width, height = render.picture_size(tg.draw(root, rankdir=rankdir).svg.encode(), "svg")
        stretch[rankdir] = max(width / height, height / width)
    if min(stretch["LR"], stretch["TB"]) <= 3:
        assert stretch[None] <= 3, stretch
    assert stretch[None] <= max(stretch["LR"], stretch["TB"])


def test_explicit_rankdir_wins_and_to_dot_chooses_without_graphviz(monkeypatch):
    monkeypatch.setattr(render, "render", lambda *a, **k: pytest.fail("to_dot ran Graphviz"))
    assert "rankdir=TB" in tg.to_dot(layer_norm())  # a long chain of steps runs down
    assert "rankdir=LR" in tg.to_dot(fan(8))  # many inputs side by side: across
    assert "rankdir=LR" in tg.to_dot(layer_norm(), rankdir="LR")
    assert "rankdir=TB" in tg.to_dot(fan(8), rankdir="TB")


def test_formats_that_are_not_pictures_are_refused_in_python_terms(tmp_path):
    with pytest.raises(ValueError, match=r"cannot draw a 'txt' picture; formats: png, svg, jpg") as caught:
        tg.draw(triangle_loss()[-1], tmp_path / "t.txt")
    assert "dot" not in str(caught.value).replace("Graphviz", "")
    assert os.listdir(tmp_path) == []
