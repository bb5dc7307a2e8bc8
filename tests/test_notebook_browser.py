"""The stored notebooks, exported to HTML by nbconvert, work in a real browser (headless Chromium).

What a reader of an exported or hosted notebook sees: the stepper plays inside its
iframe (a mouse click on "next" advances the counter and moves the highlight),
and every drawing is on screen with its text and fits the output area, so nothing
is cut off. Uses the DevTools driver of test_stepper_browser.py. Screenshots go to
$TINYGRAPH_SCREENSHOTS if set, else pytest's temporary folder, for people to look at.
"""

import os
import re
from pathlib import Path

import pytest

nbconvert = pytest.importorskip("nbconvert", reason="nbconvert exports the notebooks to HTML: "
                                                    "pip install -e '.[notebooks]'")
nbformat = pytest.importorskip("nbformat", reason="nbformat comes with nbconvert")
from test_stepper_browser import CHROMIUM, Browser  # noqa: E402  (skips this module too without websocket-client)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")

FOLDER = Path(__file__).resolve().parent.parent / "examples" / "notebooks"
WIDTH, HEIGHT = 1280, 800  # a laptop, or a projector
IFRAME = 'document.querySelector("iframe")'
INNER = f"{IFRAME}.contentDocument"
STEPPER = f"""({{
  counter: {INNER}.getElementById("counter")?.textContent,
  caption: {INNER}.getElementById("caption")?.textContent,
  current: [...{INNER}.querySelectorAll(".current")].map(e => e.id),
  visible: (() => {{  // the highlighted box lies inside the drawing's visible area
    const box = {INNER}.querySelector(".current"), area = {INNER}.getElementById("graph");
    if (!box) return null;
    const b = box.getBoundingClientRect(), a = area.getBoundingClientRect();
    return b.width > 0 && b.left >= a.left - 1 && b.right <= a.right + 1
      && b.top >= a.top - 1 && b.bottom <= a.bottom + 1;
  }})(),
}})"""
DRAWINGS = """[...document.querySelectorAll(".jp-OutputArea-output img[src^='data:image/svg+xml']")].map(img => {
  const r = img.getBoundingClientRect(), area = img.closest(".jp-OutputArea-output").getBoundingClientRect();
  const svg = new DOMParser().parseFromString(atob(img.src.split(",")[1]), "image/svg+xml");
  const canvas = document.createElement("canvas");  // what the picture paints: its share of non-white pixels
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const paint = canvas.getContext("2d");
  paint.drawImage(img, 0, 0);
  const pixels = paint.getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    if (pixels[i + 3] > 0 && pixels[i] + pixels[i + 1] + pixels[i + 2] < 600) inked++;
  }
  return {loaded: img.complete && img.naturalWidth > 0, width: r.width, height: r.height,
          scale: r.width / img.naturalWidth, left: r.left - area.left, right: area.right - r.right,
          texts: [...svg.querySelectorAll("text")].filter(t => t.textContent.trim()).length,
          inked: inked / (pixels.length / 4)};
})"""


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    b.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)
    yield b
    b.close()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every stored notebook as an HTML page, as `jupyter nbconvert --to html` writes it."""
    folder = tmp_path_factory.mktemp("exported")
    exporter = nbconvert.HTMLExporter()
    pages = {}
    for notebook in sorted(FOLDER.glob("[0-9][0-9]_*.ipynb")):
        body, _ = exporter.from_filename(str(notebook))
        pages[notebook.stem] = folder / f"{notebook.stem}.html"
        pages[notebook.stem].write_text(body, encoding="utf-8")
    return pages


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("TINYGRAPH_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def printed_steps(notebook: Path) -> list[str]:
    """The lines `print(step)` wrote in the stored notebook: the backward pass the stepper must show."""
    cell = next(c for c in nbformat.read(notebook, as_version=4).cells if "tg.backward_steps(loss):" in c.source)
    text = "".join(out.get("text", "") for out in cell.outputs)
    return re.findall(r"^step \d+  (.+?)   grad=", text, flags=re.M)


def click(browser: Browser, element: str) -> None:
    """A real mouse click (press and release) at the middle of `element`, a JS expression inside the iframe."""
    browser.js(f"{IFRAME}.scrollIntoView({{block: 'center'}})")
    x, y = browser.js(f"""(() => {{
      const f = {IFRAME}.getBoundingClientRect(), b = {element}.getBoundingClientRect();
      return [f.left + b.left + b.width / 2, f.top + b.top + b.height / 2];
    }})()""")
    for kind in ("mousePressed", "mouseReleased"):
        browser.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


def test_stepper_plays_inside_the_exported_notebook(browser, exported, shots):
    steps = printed_steps(FOLDER / "01_the_triangle.ipynb")
    assert len(steps) == 6  # loss, mul4, w, xc, mu, x: the notebook's own printout
    browser.open(exported["01_the_triangle"])
    assert browser.wait_for(f'{INNER}?.getElementById("counter")?.textContent') == f"step 0 / {len(steps)}"
    state = browser.js(STEPPER)
    assert state["current"] == [] and state["caption"].startswith("forward pass")
    browser.js(f"{IFRAME}.scrollIntoView({{block: 'center'}})")
    browser.screenshot(shots / "notebook_stepper_step0.png")

    highlighted = []
    for k, equation in enumerate(steps, start=1):
        click(browser, f'{INNER}.getElementById("next")')
        state = browser.wait_for(f"(s => s.counter === 'step {k} / {len(steps)}' && s)({STEPPER})", timeout=5)
        assert state["caption"].startswith(equation + ":"), (state["caption"], equation)
        assert len(state["current"]) == 1 and state["visible"], state
        highlighted.append(state["current"][0])
        if k == 4:
            browser.screenshot(shots / "notebook_stepper_step4.png")
    assert len(set(highlighted)) == len(steps)  # every click moved the highlight to another node
    assert [e for e in browser.errors() if e["method"] == "Runtime.exceptionThrown"] == []


@pytest.mark.parametrize("name", ["01_the_triangle", "02_layernorm_no_gradient_flows",
                                  "03_batchnorm_staged_vs_compact", "04_exercise_workflow"])
def test_drawings_are_on_screen_whole(browser, exported, shots, name):
    browser.open(exported[name])
    drawings = browser.js(DRAWINGS)
    assert len(drawings) == 1
    for d in drawings:
        assert d["loaded"] and d["width"] > 200 and d["height"] > 200, d
        assert d["texts"] > 10, d  # the boxes' names, values and gradients
        assert 0.01 < d["inked"] < 0.5, d  # something is painted, and it is not a black square
        assert d["left"] >= -1 and d["right"] >= -1, f"the drawing does not fit the output area at {WIDTH} px: {d}"
        assert d["scale"] > 0.99, f"the drawing is shrunk to fit, its text smaller than drawn: {d}"
    browser.js("document.querySelector(\".jp-OutputArea-output img[src^='data:image/svg+xml']\").scrollIntoView()")
    browser.screenshot(shots / f"notebook_{name}_drawing.png")
    tables = browser.js('[...document.querySelectorAll(".tinygraph-node, .tinygraph-step, .tinygraph-paths, '
                        '.tinygraph-explain")].map(t => t.getBoundingClientRect()).map(r => r.width * r.height)')
    assert all(area > 0 for area in tables)
