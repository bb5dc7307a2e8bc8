"""The backward pass as a step-through web page: `tg.stepper(root, "backprop.html")`.

The page is one self-contained HTML file. The graph is drawn once, as inline SVG,
from the same `tinygraph.drawing.Picture` as `tg.draw`, with every gradient cell
holding the widest text it will ever show (so the layout leaves room). A small
script then writes the texts of the chosen step from a table of frames (one per
step of `backward_steps`), so moving through the pass never redraws the graph.
No network: no external scripts, styles or fonts.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from string import Template
from typing import Any

import numpy as np

from . import render
from .core import Node, topological
from .drawing import RANKDIRS, Picture, cells, lines, picture, short_text
from .steps import auto_labels, backward_steps

MAX_NODES = render.MAX_NODES  # as tg.draw: beyond this the layout gets slow and the picture unreadable
FORWARD_CAPTION = "forward pass: every node shows its value (black). Press \u2192 to start the backward pass."


class StepperPage:
    """A stepper page that shows itself in Jupyter; `.html` is the whole page."""

    def __init__(self, page: str, height: int) -> None:
        self.html = page
        self.height = height

    def _repr_html_(self) -> str:
        # an iframe keeps the page's script and styles working (and apart) inside the notebook
        return (f'<iframe srcdoc="{html.escape(self.html)}" style="width: 100%; height: {self.height}px; '
                f'border: 1px solid #ddd"></iframe>')

    def __repr__(self) -> str:
        return f"<StepperPage: {len(self.html)} characters of HTML; display it in Jupyter or save .html>"


def stepper(root: Node, filename: str | Path | None = None, grad: Any = None,
            rankdir: str | None = None) -> str | StepperPage:
    """Walk through the backward pass of `root` one node at a time, as an HTML page.

    Step 0 shows the forward pass; step k highlights the k-th node of
    `backward_steps`, shows the gradients it sends (red, on its edges), at each
    receiving node its previous gradient + the new contribution = the new total,
    and every node's gradient accumulated so far in this pass. Keys: right/left
    arrow, space. `rankdir=None` chooses the direction that fits the picture best.

    This performs one real backward pass: afterwards `.grad` is what
    `root.backward(grad)` would leave (added to any earlier gradients); the page
    shows this pass's gradients only. With `filename`, writes that file and
    returns its path; otherwise returns an object that displays in Jupyter.
    """
    if not isinstance(root, Node):
        raise TypeError(f"stepper needs a Node as root, got {type(root).__name__}")
    if rankdir is not None and rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)} or None (automatic), got {rankdir!r}")
    if filename is not None and not Path(filename).parent.is_dir():
        raise FileNotFoundError(f"folder {str(Path(filename).parent)!r} does not exist; create it first "
                                "or choose another path")
    nodes = topological(root)
    if len(nodes) > MAX_NODES:
        raise ValueError(f"this graph has {len(nodes)} nodes; stepper draws at most {MAX_NODES} "
                         "(too many to follow step by step). Step through a smaller part, e.g. one layer.")
    frames = _frames(root, nodes, grad)
    svg = _svg(picture(root, grads=True, rankdir=rankdir, nodes=nodes), frames, automatic=rankdir is None)
    page = _page(svg, frames)
    if filename is None:
        return StepperPage(page, _frame_height(svg))
    Path(filename).write_text(page, encoding="utf-8")
    return str(filename)


def grad_text(value: Any) -> str:
    """A gradient on one line, as the drawing and the captions show it: "[0.1, 0.2, 0.3, ...]"."""
    return short_text(value)


def _frames(root: Node, nodes: list[Node], grad: Any) -> list[dict]:
    """Run the backward pass; one frame per step: caption, node processed, what changes.

    `grads` maps node index -> its gradient accumulated so far in this pass, as rows
    of cells (only the nodes whose gradient changed at this step); `edges` maps edge
    id "e{child}_{slot}" -> the gradient sent along it at this step, as lines; `sums`
    lists, per receiving node, [index, label, previous, contribution, new total] (text).
    Constants are drawn without gradients, so they appear in captions only.
    """
    index = {id(n): i for i, n in enumerate(nodes)}
    labels = auto_labels(nodes)
    frames = [{"caption": FORWARD_CAPTION, "node": None, "grads": {}, "edges": {}, "sums": []}]
    so_far: dict[int, np.ndarray] = {}
    for step in backward_steps(root, grad):
        i = index[id(step.node)]
        frame = {"caption": step.caption(), "node": i, "grads": {}, "edges": {}, "sums": []}
        if step.node is root and not root.is_constant:
            so_far[i] = step.grad
            frame["grads"][i] = cells(step.grad)
        for k, parent, g in step.sent_along:
            if parent.is_constant:
                continue
            p = index[id(parent)]
            before = so_far.get(p, np.zeros_like(g))
            so_far[p] = before + g
            frame["grads"][p] = cells(so_far[p])
            frame["edges"][f"e{i}_{k}"] = lines(g)
            frame["sums"].append([p, labels[parent] or "''", *map(_one_line, (before, g, so_far[p]))])
        frames.append(frame)
    return frames


def _one_line(value: Any) -> str:
    """A value on one line, a small matrix row by row: "[[1, 2], [3, 4]]"."""
    return render.edge_label(lines(value), across=False)


# -- the drawing -------------------------------------------------------------------

_GROUP = re.compile(r'<g id="([ne]\d+(?:_\d+)?)" class="((?:node|edge)[^"]*)">(.*?)</g>', re.S)
_TEXT = re.compile(r"<text\b")


def _svg(pic: Picture, frames: list[dict], automatic: bool) -> str:
    """The graph as SVG. Every gradient text the script writes has an id: "g-n3-0", "g-n3-1", ...
    for the cells of box n3 (row by row), "g-e3_0-0", ... for the lines of edge e3_0."""
    widest: dict[str, list] = {}  # key -> per cell (or line) the most characters it ever holds
    for frame in frames:
        for key, texts in [(f"n{i}", [c for row in rows for c in row]) for i, rows in frame["grads"].items()] + \
                [(e, t) for e, t in frame["edges"].items()]:
            old = widest.setdefault(key, [0] * len(texts))
            widest[key] = [max(a, len(t)) for a, t in zip(old, texts)]
    for box in pic.boxes:  # each cell as wide as its widest text: digits are the widest characters
        if box.id in widest and box.grad is not None:
            sizes = iter(widest[box.id])
            box.grad = [["0" * next(sizes) for _ in row] for row in box.grad]
        elif box.grad is not None:
            box.grad = [[""]]
        box.received = []
    for edge in pic.edges:
        edge.text = ["0" * n for n in widest.get(edge.id, [])]
    across = pic.rankdir in ("LR", "RL")
    for frame in frames:  # edge texts as the drawing writes them: a matrix on one line where edges run down
        frame["edges"] = {e: render.edge_label(t, across).split("\n") for e, t in frame["edges"].items()}
    _, svg = render.layout(pic, automatic=automatic)
    text = svg.decode("utf-8")
    text = text[text.index("<svg"):]
    counts = {box.id: len(widest[box.id]) for box in pic.boxes if box.id in widest and box.grad is not None}
    return _GROUP.sub(lambda m: _name_texts(m, counts), text)


def _name_texts(group: re.Match, counts: dict[str, int]) -> str:
    """Give ids to the gradient texts of one SVG group: a box's last `counts[id]` texts (its gradient
    rows come last), or every text of an edge (its label)."""
    key, kind, body = group[1], group[2], group[3]
    starts = [m.start() for m in _TEXT.finditer(body)]
    if key[0] == "n":
        starts = starts[len(starts) - counts[key]:] if counts.get(key) else []
    for j, at in reversed(list(enumerate(starts))):
        body = f'{body[:at]}<text id="g-{key}-{j}"{body[at + 5:]}'
    return f'<g id="{key}" class="{kind}">{body}</g>'


def _frame_height(svg: str) -> int:
    """A notebook iframe height: the drawing's height plus the control bar, within reason."""
    match = re.search(r'height="([\d.]+)pt"', svg)
    points = float(match[1]) if match else 400.0
    return int(min(max(points * 4 / 3 + 140, 300), 800))


# -- the page -----------------------------------------------------------------------

def _page(svg: str, frames: list[dict]) -> str:
    return PAGE.substitute(svg=svg, frames=script_json(frames), last=len(frames) - 1)


def script_json(value: Any) -> str:
    """JSON that is safe inside an HTML <script> element whatever its strings hold: `<`, `>` and `&`
    are written as \\u escapes, so no name can close the element or open a comment (`<!--<script>`)."""
    text = json.dumps(value, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tinygraph: the backward pass, step by step</title>
<style>
  html, body { margin: 0; height: 100%; font-family: sans-serif; }
  body { display: flex; flex-direction: column; }
  #bar { display: flex; gap: 8px; align-items: center; flex-wrap: wrap;
         padding: 8px 12px; background: #f4f4f4; border-bottom: 1px solid #ddd; }
  #bar button { font-size: 14px; padding: 3px 10px; }
  #slider { flex: 1; min-width: 120px; }
  #caption { font-family: monospace; font-size: 15px; padding: 8px 12px; min-height: 1.4em;
             border-bottom: 1px solid #eee; white-space: pre-wrap; }
  #graph { flex: 1; overflow: auto; padding: 8px; position: relative; }
  .sum { position: absolute; font: 13px monospace; background: rgba(255, 255, 255, 0.93); color: #d62728;
         border: 1px solid #d62728; border-radius: 4px; padding: 2px 6px; white-space: pre;
         pointer-events: none; }
  .sum b { color: black; }
  .node.current polygon, .node.current path, .node.current ellipse {
      fill: #fff2b3; stroke: #d62728; stroke-width: 3px; }
  .edge.now path, .edge.now polygon { stroke: #d62728; stroke-width: 2.5px; }
  .edge.now polygon { fill: #d62728; }
  .now text { font-weight: bold; }
  .past text { opacity: 0.45; }
</style>
</head>
<body>
<div id="bar">
  <button id="prev" title="previous step (left arrow)">&#9664; prev</button>
  <button id="play" title="play / pause (space)">&#9654; play</button>
  <button id="next" title="next step (right arrow)">next &#9654;</button>
  <input id="slider" type="range" min="0" max="$last" value="0" aria-label="step">
  <span id="counter"></span>
  <button id="smaller" title="zoom out">&minus;</button>
  <button id="fit" title="fit the drawing to the window">fit</button>
  <button id="larger" title="zoom in">+</button>
</div>
<div id="caption"></div>
<div id="graph">
$svg
</div>
<script type="application/json" id="frames">$frames</script>
<script>
"use strict";
// Frame 0 is the forward pass; frame k is step k of the backward pass.
// Each frame lists only what changes: node gradients ("grads", rows of cells),
// the gradients sent along edges ("edges", lines) and, per receiving node,
// previous + contribution = new total ("sums"). show(k) rebuilds the picture at frame k.
const FRAMES = JSON.parse(document.getElementById("frames").textContent);
const last = FRAMES.length - 1;
const byId = (id) => document.getElementById(id);
const graph = byId("graph");
const slider = byId("slider");
let shown = 0;
let timer = null;

// every text that ever changes, with its history: key -> [[frame, [text, ...]], ...]
const changesOf = {};
FRAMES.forEach((frame, k) => {
  for (const [i, rows] of Object.entries(frame.grads)) (changesOf["n" + i] ||= []).push([k, rows.flat()]);
  for (const [e, lines] of Object.entries(frame.edges)) (changesOf[e] ||= []).push([k, lines]);
});

// gradient cells are right-aligned: each keeps the right edge of the widest text the layout made room for
for (const key of Object.keys(changesOf)) {
  if (key[0] !== "n") continue;
  for (let j = 0; byId("g-" + key + "-" + j); j++) {
    const cell = byId("g-" + key + "-" + j);
    cell.setAttribute("x", Number(cell.getAttribute("x")) + cell.getComputedTextLength());
    cell.setAttribute("text-anchor", "end");
  }
}

function show(k) {
  shown = Math.max(0, Math.min(last, k));
  for (const [key, changes] of Object.entries(changesOf)) {
    let texts = [];
    for (const [frame, t] of changes) if (frame <= shown) texts = t;
    for (let j = 0; byId("g-" + key + "-" + j); j++) {
      byId("g-" + key + "-" + j).textContent = texts[j] === undefined ? "" : (key[0] === "n" ? "  " : "") + texts[j];
    }
    if (key[0] === "e") {  // an edge (and its label): bold while its gradient is being sent, faint afterwards
      const sentAt = changes[0][0];
      for (const part of document.getElementsByClassName(key)) {
        part.classList.toggle("now", sentAt === shown);
        part.classList.toggle("past", sentAt < shown);
      }
    }
  }
  for (const node of document.querySelectorAll(".current")) node.classList.remove("current");
  const frame = FRAMES[shown];
  if (frame.node !== null) {
    const node = byId("n" + frame.node);
    node.classList.add("current");
    reveal(node);
  }
  showSums(frame.sums);
  byId("caption").textContent = frame.caption;
  byId("counter").textContent = "step " + shown + " / " + last;
  slider.value = shown;
}

function showSums(sums) {  // below each receiving box: its gradient before + what arrives = its new total
  for (const old of document.querySelectorAll(".sum")) old.remove();
  const g = graph.getBoundingClientRect(), below = {};
  for (const [i, label, before, part, total] of sums) {
    const box = byId("n" + i).getBoundingClientRect(), note = document.createElement("div");
    note.className = "sum";
    note.id = "sum-n" + i + "-" + (below[i] || []).length;
    const name = document.createElement("b");
    name.textContent = label + ": ";
    const line = before + " + " + part + " = " + total;  // a long one (a matrix) takes three lines
    note.append(name, line.length > 60 ? before + "\\n  + " + part + "\\n  = " + total : line);
    graph.append(note);
    const left = box.left - g.left + graph.scrollLeft, right = graph.scrollLeft + graph.clientWidth;
    note.style.left = Math.max(graph.scrollLeft, Math.min(left, right - note.offsetWidth - 4)) + "px";
    note.style.top = box.bottom - g.top + graph.scrollTop + 2 + (below[i] || []).reduce((a, b) => a + b, 0) + "px";
    (below[i] ||= []).push(note.offsetHeight + 2);
  }
}

function reveal(element) {  // scroll the drawing (only the drawing) to keep the current node in view
  const b = graph.getBoundingClientRect(), r = element.getBoundingClientRect();
  if (r.left < b.left || r.right > b.right) graph.scrollLeft += r.left - b.left - (b.width - r.width) / 2;
  if (r.top < b.top || r.bottom > b.bottom) graph.scrollTop += r.top - b.top - (b.height - r.height) / 2;
}

const svg = document.querySelector("#graph svg");
const natural = [svg.width.baseVal.value, svg.height.baseVal.value];
function zoom(scale) {
  svg.style.width = natural[0] * scale + "px";
  svg.style.height = natural[1] * scale + "px";
  showSums(FRAMES[shown].sums);
  return scale;
}
function fit() {  // the whole drawing in the window, never enlarged
  return zoom(Math.min(1, (graph.clientWidth - 20) / natural[0], (graph.clientHeight - 20) / natural[1]));
}
let scale = fit();  // opens fitted; the zoom buttons change it and it stays as chosen from step to step

function play() {
  if (timer) return pause();
  if (shown === last) show(0);
  byId("play").innerHTML = "&#10074;&#10074; pause";
  timer = setInterval(() => (shown < last ? show(shown + 1) : pause()), 900);
}

function pause() {
  clearInterval(timer);
  timer = null;
  byId("play").innerHTML = "&#9654; play";
}

byId("prev").onclick = () => show(shown - 1);
byId("next").onclick = () => show(shown + 1);
byId("play").onclick = play;
byId("smaller").onclick = () => (scale = zoom(scale / 1.25));
byId("larger").onclick = () => (scale = zoom(scale * 1.25));
byId("fit").onclick = () => (scale = fit());
slider.oninput = () => show(Number(slider.value));
document.addEventListener("keydown", (event) => {
  const keys = { ArrowRight: () => show(shown + 1), ArrowLeft: () => show(shown - 1),
                 Home: () => show(0), End: () => show(last), " ": play };
  if (!keys[event.key]) return;
  event.preventDefault();
  keys[event.key]();
});
show(Number((location.hash.match(/step=([0-9]+)/) || [0, 0])[1]));  // page.html#step=5 opens at step 5
</script>
</body>
</html>
""")
