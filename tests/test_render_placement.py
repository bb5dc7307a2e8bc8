"""Labels are placed cleanly in every demo and example picture, proven on Graphviz's own layout.

Each demo and example runs in a child process that records the DOT source of every
picture it draws; graphviz-pure lays each out as JSON (every node box, edge label
text and cluster box with its position), and the test checks that
- no edge label's box crosses a cluster border (it is wholly inside or wholly outside);
- no two labels (edge labels, scope titles) overlap;
- no label overlaps a node box.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tinygraph import render
from tinygraph.cli import DEMOS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.py") if p.stem != "moons_mlp")  # moons: matplotlib
RECORDER = """
import json, runpy, sys
import tinygraph.render as render
sources = []
original = render.layout
def layout(*args, **kwargs):
    source, data = original(*args, **kwargs)
    sources.append(source)
    return source, data
render.layout = layout
kind, name, out = sys.argv[1:4]
if kind == "demo":
    from tinygraph.cli import main
    assert main(["demo", name, "--out", out + "/" + name + ".png", *sys.argv[4:]]) == 0
else:
    sys.argv = [name, "--out-dir", out]
    runpy.run_path(name, run_name="__main__")
print("SOURCES" + json.dumps(sources))
"""
TOLERANCE = 0.5  # points: boxes that only touch do not overlap


def drawn_sources(tmp_path, kind, name, *options):
    target = str(ROOT / "examples" / f"{name}.py") if kind == "example" else name
    done = subprocess.run([sys.executable, "-c", RECORDER, kind, target, str(tmp_path), *options],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    sources = json.loads(done.stdout.split("SOURCES", 1)[1])
    assert sources, f"{name} drew nothing"
    return sources


def boxes(layout):
    """(node boxes, edge label boxes, cluster boxes, cluster title boxes) as (x0, y0, x1, y1, what) in points."""
    objects = layout.get("objects", [])
    nodes, labels, clusters, titles = [], [], [], []
    for obj in objects:
        if "bb" in obj:  # a cluster
            x0, y0, x1, y1 = map(float, obj["bb"].split(","))
            clusters.append((x0, y0, x1, y1, obj["name"]))
            if "lp" in obj:
                x, y = map(float, obj["lp"].split(","))
                w, h = float(obj["lwidth"]) * 72, float(obj["lheight"]) * 72
                titles.append((x - w / 2, y - h / 2, x + w / 2, y + h / 2, f"title of {obj['name']}"))
        elif "pos" in obj:  # a node: a box, or an edge's label drawn as a node of its own (id "e3_0")
            x, y = map(float, obj["pos"].split(","))
            w, h = float(obj["width"]) * 72, float(obj["height"]) * 72
            what = obj.get("id", obj["name"])
            (labels if what.startswith("e") else nodes).append((x - w / 2, y - h / 2, x + w / 2, y + h / 2, what))
    for edge in layout.get("edges", []):
        texts = [op for op in edge.get("_ldraw_", []) if op["op"] == "T"]
        size = next((op["size"] for op in edge.get("_ldraw_", []) if op["op"] == "F"), 11.0)
        if texts:  # each line from its baseline point: "l" starts there, "c" is centred on it, "r" ends there
            lefts = [t["pt"][0] - {"l": 0, "c": t["width"] / 2, "r": t["width"]}[t["align"]] for t in texts]
            x0, x1 = min(lefts), max(left + t["width"] for left, t in zip(lefts, texts))
            y0 = min(t["pt"][1] for t in texts) - 0.25 * size  # descent below the lowest baseline
            y1 = max(t["pt"][1] for t in texts) + 0.75 * size  # ascent above the highest
            labels.append((x0, y0, x1, y1, f"label of {edge.get('id')}"))
    return nodes, labels, clusters, titles


def overlap(a, b):
    return min(a[2], b[2]) - max(a[0], b[0]) > TOLERANCE and min(a[3], b[3]) - max(a[1], b[1]) > TOLERANCE


def inside(a, b):
    return a[0] >= b[0] - TOLERANCE and a[1] >= b[1] - TOLERANCE and a[2] <= b[2] + TOLERANCE and \
        a[3] <= b[3] + TOLERANCE


def placement_problems(source):
    return problems_in(json.loads(render.render(source, "json")))


def problems_in(layout):
    nodes, labels, clusters, titles = boxes(layout)
    problems = []
    for label in labels:
        problems += [f"{label[4]} crosses the border of {c[4]}" for c in clusters
                     if overlap(label, c) and not inside(label, c)]
    every = labels + titles
    problems += [f"{a[4]} overlaps {b[4]}" for i, a in enumerate(every) for b in every[i + 1:] if overlap(a, b)]
    problems += [f"{a[4]} overlaps the box of {n[4]}" for a in every for n in nodes if overlap(a, n)]
    return problems


CASES = [("demo", name, *fanout) for name in DEMOS for fanout in ([], ["--fanout"])] + \
        [("example", name) for name in EXAMPLES]


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c[1:]) for c in CASES])
def test_labels_sit_clear_of_borders_boxes_and_each_other(tmp_path, case):
    for source in drawn_sources(tmp_path, *case):
        assert placement_problems(source) == []


def test_the_checker_sees_each_kind_of_problem():
    """A made-up layout (the JSON Graphviz writes) with one problem of each kind."""
    def text(x, y, words):
        return [{"op": "F", "size": 11.0, "face": "Helvetica"}, {"op": "T", "pt": [x, y], "align": "l",
                                                                  "width": 6.0 * len(words), "text": words}]
    layout = {
        "objects": [
            {"name": "cluster_0", "bb": "0,0,100,100", "lp": "20,90", "lwidth": "0.5", "lheight": "0.2"},
            {"name": "n0", "id": "n0", "pos": "50,50", "width": "0.5", "height": "0.5"},
            {"name": "n1", "id": "n1", "pos": "300,50", "width": "0.5", "height": "0.5"},
        ],
        "edges": [
            {"id": "e1_0", "_ldraw_": text(90, 20, "[1, 2, 3]")},  # across the cluster's right border
            {"id": "e1_1", "_ldraw_": text(200, 20, "[4, 5]")},  # clear of everything
            {"id": "e1_2", "_ldraw_": text(205, 22, "[6, 7]")},  # on top of e1_1
            {"id": "e1_3", "_ldraw_": text(290, 45, "8")},  # on n1's box
        ],
    }
    assert sorted(problems_in(layout)) == sorted([
        "label of e1_0 crosses the border of cluster_0",
        "label of e1_1 overlaps label of e1_2",
        "label of e1_3 overlaps the box of n1",
    ])
    layout["edges"] = layout["edges"][1:2]
    assert problems_in(layout) == []
