"""tg.stepper in a real browser: headless Chromium, driven over the DevTools protocol.

The page is opened from a file, the right-arrow key is pressed step by step, and
the caption and the highlighted node's gradient are checked against
`backward_steps`. Screenshots of steps 0, 1 and the last are saved for people to
look at (nothing compares pixels): in $TINYGRAPH_SCREENSHOTS if set, else in
pytest's temporary folder. No network: the page is a local file, and the
DevTools connection is to 127.0.0.1.
"""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import tinygraph as tg
from tinygraph.core import topological
from tinygraph.drawing import cells
from tinygraph.formatting import summary
from tinygraph.steps import auto_labels, describe

websocket = pytest.importorskip("websocket", reason="websocket-client is needed to drive Chromium (pip install "
                                                    "-e '.[test]')")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
         "--remote-debugging-port=0", "--window-size=1280,800"]


class Browser:
    """A headless Chromium and one tab, spoken to over the DevTools protocol (JSON over a websocket)."""

    def __init__(self) -> None:
        self.profile = tempfile.mkdtemp(prefix="tinygraph-chromium-")
        self.process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port = self._port()
            local = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
            tabs = json.load(local.open(f"http://127.0.0.1:{port}/json/list", timeout=10))
            url = next(t["webSocketDebuggerUrl"] for t in tabs if t["type"] == "page")
            self.socket = websocket.create_connection(url, timeout=30, suppress_origin=True)
        except BaseException:
            self._stop()
            raise
        self.calls = 0
        self.events = []  # what the page reported meanwhile: exceptions, console messages
        self.call("Runtime.enable")

    def _port(self) -> str:
        """Chromium writes the port it chose into DevToolsActivePort in its profile folder."""
        path = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self.process.returncode}")
            if path.exists() and path.read_text().strip():
                return path.read_text().split()[0]
            time.sleep(0.05)
        raise RuntimeError("chromium did not open its DevTools port within 30 s")

    def call(self, method: str, **params):
        self.calls += 1
        self.socket.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:
            reply = json.loads(self.socket.recv())
            if "method" in reply:
                self.events.append(reply)
            elif reply.get("id") == self.calls:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def open(self, path: Path) -> None:
        self.call("Page.enable")
        self.call("Page.navigate", url=path.resolve().as_uri())
        self.wait_for('document.readyState === "complete"')

    def wait_for(self, expression: str, timeout: float = 20):
        """Poll `expression` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while not (value := self.js(expression)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {expression}")
            time.sleep(0.05)
        return value

    def errors(self) -> list:
        return [e for e in self.events if e["method"] == "Runtime.exceptionThrown" or (
            e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "warning"))]

    def js(self, expression: str):
        reply = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def press(self, key: str, code: int) -> None:
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=code)

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        self.socket.close()
        self._stop()

    def _stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


def layernorm_graph():
    rng = np.random.default_rng(0)
    x = tg.Node(rng.normal(size=(2, 3)), name="x")
    y = tg.nn.LayerNorm(3)(x)
    loss = (y * tg.Node(rng.normal(size=(2, 3)), name="w")).sum()
    loss.name = "loss"
    return loss


def png_size(path: Path) -> tuple:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("TINYGRAPH_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


PAGE_STATE = """({
  caption: document.getElementById("caption").textContent,
  counter: document.getElementById("counter").textContent,
  current: [...document.querySelectorAll(".current")].map(e => e.id),
  grad: [...document.querySelectorAll(".current [id^='g-n']")].map(e => e.textContent.trim()),
  filled: [...document.querySelectorAll("[id^='g-']")].filter(e => e.textContent).length,
  sums: [...document.querySelectorAll(".sum")].map(e => e.textContent),
})"""


def flat(rows):
    return [c for row in rows for c in row]


def test_arrow_keys_walk_the_backward_pass(browser, tmp_path, shots):
    page = tg.stepper(layernorm_graph(), tmp_path / "layernorm.html")
    root = layernorm_graph()
    nodes = topological(root)
    labels = auto_labels(nodes)
    steps = list(tg.backward_steps(root))
    browser.open(Path(page))

    state = browser.js(PAGE_STATE)
    assert state["caption"].startswith("forward pass")
    assert state["counter"] == f"step 0 / {len(steps)}"
    assert state["current"] == [] and state["filled"] == 0  # no gradient anywhere yet
    browser.screenshot(shots / "stepper_step0.png")

    for k, step in enumerate(steps, start=1):
        browser.press("ArrowRight", 39)
        state = browser.js(PAGE_STATE)
        sent = ", ".join(f"{labels[p]} += {summary(g)}" for p, g in step.contributions)
        assert state["caption"] == f"{describe(step.node, labels)}: grad {summary(step.grad)}" + (
            f" -> {sent}" if sent else " (leaf)")
        assert state["counter"] == f"step {k} / {len(steps)}"
        assert state["current"] == [f"n{nodes.index(step.node)}"]
        assert state["grad"] == ([] if step.node.is_constant else flat(cells(step.grad)))
        receivers = [p for p, _ in step.contributions if not p.is_constant]
        assert len(state["sums"]) == len(receivers)
        assert all(text.startswith(f"{labels[p]}: ") and " + " in text and " = " in text
                   for text, p in zip(state["sums"], receivers))
        if k == 1:
            browser.screenshot(shots / "stepper_step1.png")
    browser.screenshot(shots / "stepper_last.png")

    browser.press("ArrowRight", 39)  # past the end: stays on the last step
    assert browser.js(PAGE_STATE)["counter"] == f"step {len(steps)} / {len(steps)}"
    browser.press("ArrowLeft", 37)
    assert browser.js(PAGE_STATE)["caption"].startswith(describe(steps[-2].node, labels))
    assert browser.errors() == []
    for name in ("stepper_step0.png", "stepper_step1.png", "stepper_last.png"):
        width, height = png_size(shots / name)
        assert width >= 800 and height >= 600


def test_slider_and_buttons(browser, tmp_path):
    x = tg.Node([1.0, 2.0, 3.0], name="x")
    loss = (x * x).sum()
    browser.open(Path(tg.stepper(loss, tmp_path / "square.html")))
    browser.js('{ const s = document.getElementById("slider"); s.value = 2; s.dispatchEvent(new Event("input")) }')
    state = browser.js(PAGE_STATE)
    assert state["caption"] == "mul1 = x * x: grad [1, 1, 1] -> x += [1, 2, 3], x += [1, 2, 3]"
    assert state["filled"] == 1 + 3 + 3 + 3  # the cells of loss, mul1, x; edge mul1 -> loss, both edges x -> mul1
    assert state["sums"] == ["x: [0, 0, 0] + [1, 2, 3] = [1, 2, 3]", "x: [1, 2, 3] + [1, 2, 3] = [2, 4, 6]"]
    browser.js('document.getElementById("prev").click()')
    assert browser.js(PAGE_STATE)["current"] == ["n2"]
    browser.js('document.getElementById("next").click(); document.getElementById("next").click()')
    state = browser.js(PAGE_STATE)
    assert state["caption"] == "x: grad [2, 4, 6] (leaf)" and state["grad"] == ["2", "4", "6"]
    assert browser.errors() == []


def test_notebook_display_works_inside_its_iframe(browser, tmp_path):
    """What Jupyter shows: _repr_html_ (an iframe with the page as srcdoc) inside another page."""
    x = tg.Node([1.0, 2.0], name="x")
    shown = tg.stepper((x * 3.0).sum())
    notebook = tmp_path / "notebook.html"
    notebook.write_text(f"<!DOCTYPE html><html><body><h1>cell output</h1>{shown._repr_html_()}</body></html>")
    browser.open(notebook)
    inner = 'document.querySelector("iframe").contentDocument'
    assert browser.wait_for(f'{inner}.getElementById("counter")?.textContent') == "step 0 / 3"  # no step for 3
    browser.js(f'{inner}.getElementById("next").click(); {inner}.getElementById("next").click()')
    caption = browser.js(f'{inner}.getElementById("caption").textContent')
    assert caption == "mul2 = x * 3: grad [1, 1] -> x += [3, 3], 3 += 3"
    assert browser.js(f'[...{inner}.querySelectorAll("[id^=g-n0-]")].map(e => e.textContent.trim())') == ["3", "3"]
    assert browser.errors() == []


HOSTILE = ["<!--<script>", "</script><script>alert(1)</script>", "<![CDATA[", "\u2028", '"); throw 1; ("', "${x}`"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_never_break_the_page(browser, tmp_path, name):
    x = tg.Node([1.0, 2.0], name=name)
    with tg.scope(name):
        y = (x * x).sum()
    y.name = name
    browser.events.clear()
    browser.open(Path(tg.stepper(y, tmp_path / "hostile.html")))
    assert browser.js(PAGE_STATE)["counter"] == "step 0 / 3"  # the script ran to its end: x, x * x, sum
    browser.press("End", 35)
    state = browser.js(PAGE_STATE)
    assert state["counter"] == "step 3 / 3" and state["caption"].startswith(name)
    assert browser.js("document.querySelectorAll('script').length") == 2
    assert browser.errors() == []


def test_the_page_opens_fitted_to_a_1000_by_760_window(browser, tmp_path):
    rng = np.random.default_rng(0)
    x = tg.Node(rng.normal(size=(3, 2)), name="x")
    y = tg.nn.BatchNorm1d(2)(x)
    browser.call("Emulation.setDeviceMetricsOverride", width=1000, height=760, deviceScaleFactor=1, mobile=False)
    try:
        browser.open(Path(tg.stepper(y, tmp_path / "bn.html", grad=rng.normal(size=(3, 2)))))
        fits = browser.js("""(() => {
          const g = document.getElementById("graph").getBoundingClientRect();
          const s = document.querySelector("#graph svg").getBoundingClientRect();
          return s.width <= g.width && s.height <= g.height && (s.width > 0.5 * g.width || s.height > 0.5 * g.height);
        })()""")
        assert fits
        width = browser.js('document.querySelector("#graph svg").getBoundingClientRect().width')
        browser.js('document.getElementById("larger").click()')
        browser.press("ArrowRight", 39)
        assert browser.js('document.querySelector("#graph svg").getBoundingClientRect().width') > width * 1.2
        browser.screenshot(tmp_path / "fitted.png")
        assert browser.errors() == []
    finally:
        browser.call("Emulation.clearDeviceMetricsOverride")
