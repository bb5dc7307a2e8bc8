"""tg.stepper: the HTML page's frames against backward_steps, its drawing's ids, no network, .grad contract."""

import html
import json
import operator
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.core import topological
from tinygraph.drawing import cells, lines
from tinygraph.formatting import summary
from tinygraph.stepper import FORWARD_CAPTION, StepperPage
from tinygraph.steps import auto_labels, describe

SETTINGS = settings(deadline=None, max_examples=20, derandomize=True)


def layernorm_graph(seed=0):
    """The same small LayerNorm graph each call: loss = sum(LayerNorm(x) * w)."""
    rng = np.random.default_rng(seed)
    x = tg.Node(rng.normal(size=(2, 3)), name="x")
    y = tg.nn.LayerNorm(3)(x)
    loss = (y * tg.Node(rng.normal(size=(2, 3)), name="w")).sum()
    loss.name = "loss"
    return loss


def frames_of(page):
    found = re.findall(r'<script type="application/json" id="frames">(.*?)</script>', page, re.S)
    assert len(found) == 1
    return json.loads(found[0])


def replay(frames):
    """What the page shows at each frame: {"n3": rows of cells, "e3_0": lines}, as the script computes it."""
    shown, states = {}, []
    for frame in frames:
        shown.update({f"n{i}": t for i, t in frame["grads"].items()})
        shown.update(frame["edges"])
        states.append(dict(shown))
    return states


def expected_states(root, grad=None):
    """The same states computed independently: run backward_steps, add up every contribution."""
    nodes = topological(root)
    index = {id(n): i for i, n in enumerate(nodes)}
    so_far, shown, states = {}, {}, [{}]
    for step in tg.backward_steps(root, grad):
        i = index[id(step.node)]
        if step.node is root:
            so_far[i] = step.grad
            shown[f"n{i}"] = cells(step.grad)
        used = set()
        for parent, g in step.contributions:
            if parent.is_constant:
                continue
            k = next(k for k, p in enumerate(step.node.parents) if p is parent and k not in used)
            used.add(k)
            p = index[id(parent)]
            so_far[p] = so_far.get(p, 0) + g
            shown[f"n{p}"] = cells(so_far[p])
            shown[f"e{i}_{k}"] = lines(g)
        # a node's turn comes after all its contributions
        assert step.node.is_constant or np.array_equal(so_far[i], step.grad)
        states.append(dict(shown))
    return states


def test_one_frame_per_step_with_node_and_caption(tmp_path):
    frames = frames_of(Path(tg.stepper(layernorm_graph(), tmp_path / "ln.html")).read_text(encoding="utf-8"))
    root = layernorm_graph()
    nodes = topological(root)
    labels = auto_labels(nodes)
    steps = list(tg.backward_steps(root))
    assert len(frames) == len(steps) + 1
    assert frames[0] == {"caption": FORWARD_CAPTION, "node": None, "grads": {}, "edges": {}, "sums": []}
    for frame, step in zip(frames[1:], steps):
        assert frame["node"] == nodes.index(step.node)
        sent = ", ".join(f"{labels[p]} += {summary(g)}" for p, g in step.contributions)
        assert frame["caption"] == f"{describe(step.node, labels)}: grad {summary(step.grad)}" + (
            f" -> {sent}" if sent else " (leaf)")
    assert frames[1]["caption"].startswith("loss = sum(mul")
    assert frames[-1]["caption"].endswith("(leaf)")


def test_gradients_per_step_equal_backward_steps_accumulated():
    frames = frames_of(tg.stepper(layernorm_graph(), rankdir="LR").html)
    assert replay(frames) == expected_states(layernorm_graph())


def test_last_frame_shows_what_backward_gives():
    frames = frames_of(tg.stepper(layernorm_graph()).html)
    root = layernorm_graph()
    root.backward()
    final = replay(frames)[-1]
    for i, node in enumerate(topological(root)):
        assert final.get(f"n{i}") == (None if node.is_constant else cells(node.grad))
    assert frames[1]["grads"][str(len(topological(root)) - 1)] == [["1"]]  # the root's seed, at its own turn


def test_every_text_the_script_writes_has_an_id_in_the_drawing():
    page = tg.stepper(layernorm_graph()).html
    frames = frames_of(page)
    svg = page[page.index("<svg"):page.index("</svg>")]
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    for frame in frames[1:]:
        assert f"n{frame['node']}" in ids
        for i, rows in frame["grads"].items():  # one text per cell, row by row, and no more
            count = sum(map(len, rows))
            assert {f"g-n{i}-{j}" for j in range(count)} <= ids and f"g-n{i}-{count}" not in ids
        for e, texts in frame["edges"].items():
            assert e in ids and {f"g-{e}-{j}" for j in range(len(texts))} <= ids
    assert "QQ" not in page  # no placeholder tokens


def test_matrix_gradients_are_rows_and_columns():
    x = tg.Node([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], name="x")
    loss = (x * x).sum()
    frames = frames_of(tg.stepper(loss).html)
    assert frames[-2]["grads"]["0"] == [["2", "4"], ["6", "8"], ["10", "12"]]
    first, second = frames[-2]["sums"]  # x * x sends along both edges of x
    assert first == [0, "x", "[[0, 0], [0, 0], [0, 0]]", "[[1, 2], [3, 4], [5, 6]]", "[[1, 2], [3, 4], [5, 6]]"]
    assert second[2:] == ["[[1, 2], [3, 4], [5, 6]]", "[[1, 2], [3, 4], [5, 6]]", "[[2, 4], [6, 8], [10, 12]]"]


def test_scopes_are_boxes():
    page = tg.stepper(layernorm_graph()).html
    assert re.search(r'class="cluster">\s*<title>[^<]*</title>\s*<path[^>]*/>\s*<text[^>]*>layernorm</text>', page)


def test_no_network_anything():
    page = tg.stepper(layernorm_graph()).html
    local = page.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        'xmlns:xlink="http://www.w3.org/1999/xlink"', "")
    for banned in ("http://", "https://", "//cdn", "@import", "url(", "<link", "src=", "href=", "<!DOCTYPE svg"):
        assert banned not in local, banned
    assert local.count("<script") == 2  # the frames (JSON) and the script itself, both inline


HOSTILE = ['</script><b>"x" & {y}', "<!--<script>", "</SCRIPT >", "<![CDATA[", "\u2028x\u2029", "${x}`"]


@pytest.mark.parametrize("name", HOSTILE)
def test_names_cannot_break_out_of_the_page(name):
    a = tg.Node([1.0, 2.0], name=name)
    loss = (a * a).sum()
    page = tg.stepper(loss).html
    assert page.lower().count("</script") == 2 and page.count("<!--") == page.count("-->")
    script = page[page.index('id="frames">'):page.index("</script>")]
    assert "<" not in script[len('id="frames">'):] and "&" not in script
    frames = frames_of(page)
    assert frames[2]["caption"].endswith(f"-> {name} += [1, 2], {name} += [1, 2]")


def test_repeated_parent_has_one_edge_per_slot():
    a = tg.Node(3.0, name="a")
    y = a * a
    frames = frames_of(tg.stepper(y).html)
    assert frames[1]["edges"] == {"e1_0": ["3"], "e1_1": ["3"]}
    assert frames[1]["grads"] == {"1": [["1"]], "0": [["6"]]}  # a's gradient after both contributions: 3 + 3
    assert frames[1]["sums"] == [[0, "a", "0", "3", "3"], [0, "a", "3", "3", "6"]]  # previous + arriving = total


def test_performs_one_real_backward_pass():
    root = layernorm_graph()
    tg.stepper(root)
    ref = layernorm_graph()
    ref.backward()
    for mine, theirs in zip(topological(root), topological(ref)):
        np.testing.assert_array_equal(mine.grad, theirs.grad)
    tg.stepper(root)  # a second pass adds, as backward does
    for mine, theirs in zip(topological(root), topological(ref)):
        np.testing.assert_array_equal(mine.grad, 2 * theirs.grad)


def test_seed_gradient_for_a_tensor_root():
    x = tg.Node([1.0, 2.0, 3.0], name="x")
    y = x * x
    seed = np.array([1.0, 0.5, -1.0])
    frames = frames_of(tg.stepper(y, grad=seed).html)
    assert frames[1]["grads"]["1"] == [["1", "0.5", "-1"]]
    assert frames[-1]["grads"] == {}  # x's own turn changes nothing
    assert replay(frames)[-1]["n0"] == cells(2 * x.data * seed) == [["2", "2", "-6"]]
    np.testing.assert_array_equal(x.grad, 2 * x.data * seed)


def test_filename_writes_that_file_and_returns_its_path(tmp_path):
    path = tmp_path / "steps.html"
    assert tg.stepper(layernorm_graph(), path) == str(path)
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["steps.html"]


def test_jupyter_display_is_an_iframe_with_the_whole_page():
    shown = tg.stepper(layernorm_graph(), rankdir="TB")
    assert isinstance(shown, StepperPage)
    out = shown._repr_html_()
    srcdoc = re.fullmatch(r'<iframe srcdoc="([^"]*)" style="[^"]*"></iframe>', out)
    assert srcdoc and html.unescape(srcdoc[1]) == shown.html
    assert shown.html != tg.stepper(layernorm_graph(), rankdir="LR").html  # "LR" lays it out differently


def test_bad_input_is_refused_before_anything_changes():
    x = tg.Node([1.0, 2.0], name="x")
    y = x * 3
    with pytest.raises(TypeError, match="Node"):
        tg.stepper(x.data)
    with pytest.raises(ValueError, match="rankdir"):
        tg.stepper(y, rankdir="sideways")
    with pytest.raises(ValueError, match=r"needs a seed gradient of that shape"):
        tg.stepper(y)
    with pytest.raises(ValueError, match=r"seed gradient has shape \(3,\)"):
        tg.stepper(y, grad=np.ones(3))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tg.stepper(y, "/no/such/folder/steps.html", grad=np.ones(2))
    assert not x.grad.any() and not y.grad.any()


def test_single_leaf_and_constant_roots():
    x = tg.Node(2.0, name="x")
    frames = frames_of(tg.stepper(x).html)
    assert [f["caption"] for f in frames[1:]] == ["x: grad 1 (leaf)"] and frames[1]["grads"] == {"0": [["1"]]}
    c = tg.constant(3.0)
    frames = frames_of(tg.stepper(c).html)
    assert frames[1:] == []  # a constant gets no step


def test_huge_graph_is_refused_with_advice():
    x = tg.Node(1.0, name="x")
    y = x
    for _ in range(600):
        y = y * 1.0001
    with pytest.raises(ValueError, match="at most 500"):
        tg.stepper(y)
    assert x.grad == 0


# random graphs: a small program over a pool of values, with reuse and constants
OPS = st.sampled_from(["add", "sub", "mul", "tanh", "sum", "const"])


BINARY = {"add": operator.add, "sub": operator.sub, "mul": operator.mul}


def apply(op, a, b):
    if op in BINARY:
        return BINARY[op](a, b)
    return 2.0 * a - 1.0 if op == "const" else getattr(a, op)()


@SETTINGS
@given(program=st.lists(st.tuples(OPS, st.integers(0, 99), st.integers(0, 99)), min_size=1, max_size=12))
def test_random_graphs_frames_match_backward_steps(program):
    def build():
        rng = np.random.default_rng(1)
        pool = [tg.Node(rng.normal(size=3), name="u"), tg.Node(rng.normal(), name="v")]
        for op, i, j in program:
            pool.append(apply(op, pool[i % len(pool)], pool[j % len(pool)]))
        return pool[-1].sum()
    frames = frames_of(tg.stepper(build(), rankdir="LR").html)
    assert replay(frames) == expected_states(build())
