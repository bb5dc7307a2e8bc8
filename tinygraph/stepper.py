"""The backward pass as a step-through web page: `tg.stepper(root, "backprop.html")`.

The page is one self-contained HTML file: the graph is drawn once, as inline SVG,
by the same renderer as `tg.draw`, with a placeholder wherever a gradient will
appear. A small script then fills the placeholders for the chosen step from a
table of frames (one per step of `backward_steps`), so moving through the pass
never redraws the graph. No network: no external scripts, styles or fonts.
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
from .steps import backward_steps

MAX_NODES = 500  # as tg.draw: beyond this the layout gets slow and the picture unreadable
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
            rankdir: str = "LR") -> str | StepperPage:
    """Walk through the backward pass of `root` one node at a time, as an HTML page.

    Step 0 shows the forward pass; step k highlights the k-th node of
    `backward_steps`, shows the gradients it sends (red, on its edges) and every
    node's gradient accumulated so far in this pass. Keys: right/left arrow, space.

    This performs one real backward pass: afterwards `.grad` is what
    `root.backward(grad)` would leave (added to any earlier gradients); the page
    shows this pass's gradients only. With `filename`, writes that file and
    returns its path; otherwise returns an object that displays in Jupyter.
    """
    if not isinstance(root, Node):
        raise TypeError(f"stepper needs a Node as root, got {type(root).__name__}")
    if rankdir not in render.RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(render.RANKDIRS)}, got {rankdir!r}")
    if filename is not None and not Path(filename).parent.is_dir():
        raise FileNotFoundError(f"folder {str(Path(filename).parent)!r} does not exist; create it first "
                                "or choose another path")
    nodes = topological(root)
    if len(nodes) > MAX_NODES:
        raise ValueError(f"this graph has {len(nodes)} nodes; stepper draws at most {MAX_NODES} "
                         "(too many to follow step by step). Step through a smaller part, e.g. one layer.")
    frames = _frames(root, nodes, grad)
    svg = _svg(root, nodes, frames, rankdir)
    page = _page(svg, frames)
    if filename is None:
        return StepperPage(page, _frame_height(svg))
    Path(filename).write_text(page, encoding="utf-8")
    return str(filename)


def grad_text(value: Any) -> str:
    """A gradient as the boxes and edges of the drawing show it: "[0.1, 0.2, 0.3, ...]"."""
    return render.short_text(value)


def _frames(root: Node, nodes: list[Node], grad: Any) -> list[dict]:
    """Run the backward pass; one frame per step: caption, node processed, texts that change.

    `grads` maps node index -> its gradient accumulated so far in this pass (only
    the nodes whose gradient changed at this step); `edges` maps edge id
    "e{child}_{slot}" -> the gradient sent along it at this step. Constants are
    drawn without gradients, so they appear in captions only.
    """
    index = {id(n): i for i, n in enumerate(nodes)}
    frames = [{"caption": FORWARD_CAPTION, "node": None, "grads": {}, "edges": {}}]
    so_far: dict[int, np.ndarray] = {}
    for step in backward_steps(root, grad):
        i = index[id(step.node)]
        frame = {"caption": step.caption(), "node": i, "grads": {}, "edges": {}}
        if step.node is root and not root.is_constant:
            so_far[i] = step.grad
            frame["grads"][i] = grad_text(step.grad)
        for k, parent, g in step.sent_along:
            if parent.is_constant:
                continue
            p = index[id(parent)]
            so_far[p] = so_far[p] + g if p in so_far else g
            frame["grads"][p] = grad_text(so_far[p])
            frame["edges"][f"e{i}_{k}"] = grad_text(g)
        frames.append(frame)
    return frames


# -- the drawing -------------------------------------------------------------------

TOKEN = re.compile(r"QQ([GE])(\d+(?:_\d+)?)QQ0*")


def _token(kind: str, key: str, width: int) -> str:
    """A placeholder as wide as the longest text it will hold, so the layout leaves room."""
    mark = f"QQ{kind}{key}QQ"
    return mark + "0" * max(0, width - len(mark))


def _svg(root: Node, nodes: list[Node], frames: list[dict], rankdir: str) -> str:
    """The graph as SVG, each gradient text an empty <tspan id="grad-n3"> / "grad-e3_0" for the script."""
    widths: dict[str, int] = {}
    for frame in frames:
        for key, text in [(f"n{i}", t) for i, t in frame["grads"].items()] + list(frame["edges"].items()):
            widths[key] = max(widths.get(key, 0), len(text))
    index = {id(n): i for i, n in enumerate(nodes)}

    def node_token(node: Node) -> str:
        key = f"{index[id(node)]}"
        return _token("G", key, widths[f"n{key}"]) if f"n{key}" in widths else ""

    def edge_token(child: Node, k: int) -> str:
        key = f"{index[id(child)]}_{k}"
        return _token("E", key, widths[f"e{key}"]) if f"e{key}" in widths else ""

    dot = render.to_dot(root, grads=True, rankdir=rankdir, max_nodes=None,
                        grad_text=node_token, edge_text=edge_token)
    svg = render.render(dot, "svg").decode("utf-8")
    svg = svg[svg.index("<svg"):]
    return TOKEN.sub(lambda m: f'<tspan id="grad-{"n" if m[1] == "G" else "e"}{m[2]}"></tspan>', svg)


def _frame_height(svg: str) -> int:
    """A notebook iframe height: the drawing's height plus the control bar, within reason."""
    match = re.search(r'height="([\d.]+)pt"', svg)
    points = float(match[1]) if match else 400.0
    return int(min(max(points * 4 / 3 + 140, 300), 800))


# -- the page -----------------------------------------------------------------------

def _page(svg: str, frames: list[dict]) -> str:
    data = json.dumps(frames, separators=(",", ":")).replace("</", "<\\/")
    return PAGE.substitute(svg=svg, frames=data, last=len(frames) - 1)


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
  #graph { flex: 1; overflow: auto; padding: 8px; }
  .node.current polygon, .node.current path, .node.current ellipse {
      fill: #fff2b3; stroke: #d62728; stroke-width: 3px; }
  .edge.now path, .edge.now polygon { stroke: #d62728; stroke-width: 2.5px; }
  .edge.now polygon { fill: #d62728; }
  .edge.now text { font-weight: bold; }
  .edge.past text { opacity: 0.45; }
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
// Each frame lists only what changes: node gradients ("grads") and the
// gradients sent along edges ("edges"). show(k) rebuilds the picture at frame k.
const FRAMES = JSON.parse(document.getElementById("frames").textContent);
const last = FRAMES.length - 1;
const byId = (id) => document.getElementById(id);
const slider = byId("slider");
let shown = 0;
let timer = null;

// every text that ever changes, with its history: key -> [[frame, text], ...]
const changesOf = {};
FRAMES.forEach((frame, k) => {
  for (const [i, text] of Object.entries(frame.grads)) (changesOf["n" + i] ||= []).push([k, text]);
  for (const [e, text] of Object.entries(frame.edges)) (changesOf[e] ||= []).push([k, text]);
});

function show(k) {
  shown = Math.max(0, Math.min(last, k));
  for (const [key, changes] of Object.entries(changesOf)) {
    let text = "";
    for (const [frame, t] of changes) if (frame <= shown) text = t;
    byId("grad-" + key).textContent = text;
    if (key[0] === "e") {  // an edge: bold while its gradient is being sent, faint afterwards
      const edge = byId(key), sentAt = changes[0][0];
      edge.classList.toggle("now", sentAt === shown);
      edge.classList.toggle("past", sentAt < shown);
    }
  }
  for (const node of document.querySelectorAll(".current")) node.classList.remove("current");
  const frame = FRAMES[shown];
  if (frame.node !== null) {
    const node = byId("n" + frame.node);
    node.classList.add("current");
    reveal(node);
  }
  byId("caption").textContent = frame.caption;
  byId("counter").textContent = "step " + shown + " / " + last;
  slider.value = shown;
}

function reveal(element) {  // scroll the drawing (only the drawing) to keep the current node in view
  const box = byId("graph"), b = box.getBoundingClientRect(), r = element.getBoundingClientRect();
  if (r.left < b.left || r.right > b.right) box.scrollLeft += r.left - b.left - (b.width - r.width) / 2;
  if (r.top < b.top || r.bottom > b.bottom) box.scrollTop += r.top - b.top - (b.height - r.height) / 2;
}

const svg = document.querySelector("#graph svg");
const natural = [svg.width.baseVal.value, svg.height.baseVal.value];
function zoom(scale) {
  svg.style.width = natural[0] * scale + "px";
  svg.style.height = natural[1] * scale + "px";
  return scale;
}
function fit() {  // the drawing's full width, unless its text would get too small to read
  return zoom(Math.max(0.6, Math.min(1, (byId("graph").clientWidth - 16) / natural[0])));
}
let scale = fit();

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
