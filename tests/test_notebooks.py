"""The lecture notebooks in examples/notebooks: run in a real kernel, show their displays, stored as they run.

Each notebook runs top to bottom under nbclient in a fresh ipykernel: the current
Python's, with this checkout first on its path (checked by an extra cell). The
tests check that no cell fails or writes to stderr, that the rich displays really
are there (`tg.draw` as SVG, `tg.stepper` as an iframe, `tg.explain` and the
Node / Step / paths displays as HTML tables), and that the stored outputs equal a
fresh run's, apart from execution counts, ids, metadata, object addresses and rounding noise.
When they differ, `python examples/notebooks/regenerate.py` refreshes them.
"""

import html
import importlib.util
import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import tinygraph as tg

nbclient = pytest.importorskip("nbclient", reason="nbclient is needed to run the notebooks in a kernel: "
                                                  "pip install -e '.[notebooks]'")
nbformat = pytest.importorskip("nbformat", reason="nbformat comes with nbclient: pip install -e '.[notebooks]'")

FOLDER = Path(__file__).resolve().parent.parent / "examples" / "notebooks"
NOTEBOOKS = ["01_the_triangle", "02_layernorm_no_gradient_flows", "03_batchnorm_staged_vs_compact",
             "04_exercise_workflow"]
# the displays each notebook shows, counted over all its outputs
DISPLAYS = {
    "01_the_triangle": {"drawing": 1, "stepper": 1, "node": 3, "step": 2, "paths": 1},
    "02_layernorm_no_gradient_flows": {"drawing": 1, "paths": 1},
    "03_batchnorm_staged_vs_compact": {"drawing": 1, "explain": 1, "paths": 1},
    "04_exercise_workflow": {"drawing": 1},
}
REFRESH = "refresh them with: python examples/notebooks/regenerate.py"
WHERE = "import sys, tinygraph\nprint(sys.executable)\nprint(tinygraph.__file__)"


def _load_regenerate():
    spec = importlib.util.spec_from_file_location("notebooks_regenerate", FOLDER / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


regenerate = _load_regenerate()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """name -> (the notebook after a fresh run, what the extra cell printed); each notebook runs once."""
    runs = {}

    def run(name):
        if name not in runs:
            notebook = nbformat.read(FOLDER / f"{name}.ipynb", as_version=4)
            notebook.cells.append(nbformat.v4.new_code_cell(WHERE))
            try:
                regenerate.execute(notebook, cwd=tmp_path_factory.mktemp(name))  # nothing is written into the tree
            except nbclient.exceptions.CellExecutionError as exc:
                pytest.fail(f"{name}.ipynb: a cell failed in the kernel:\n{exc}")
            where = notebook.cells.pop()
            runs[name] = notebook, "".join(o.get("text", "") for o in where.outputs)
        return runs[name]
    return run


def displays(notebook) -> dict:
    """How many of each kind of rich display the notebook's outputs hold."""
    found = {}
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            kinds = []
            if "image/svg+xml" in data or "image/png" in data:
                kinds.append("drawing")
            page = data.get("text/html", "")
            kinds += [kind for kind, mark in (("stepper", "<iframe srcdoc="), ("explain", 'class="tinygraph-explain"'),
                                              ("node", 'class="tinygraph-node"'), ("step", 'class="tinygraph-step"'),
                                              ("paths", 'class="tinygraph-paths"')) if mark in page]
            for kind in kinds:
                found[kind] = found.get(kind, 0) + 1
    return found


def test_every_notebook_is_tested():
    assert sorted(p.stem for p in FOLDER.glob("[0-9][0-9]_*.ipynb")) == NOTEBOOKS


def test_the_kernel_runs_this_checkout_with_this_python(fresh):
    printed = fresh(NOTEBOOKS[0])[1].split("\n")
    assert Path(printed[0]).resolve() == Path(sys.executable).resolve()
    assert Path(printed[1]).resolve() == Path(tg.__file__).resolve()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_runs_in_a_kernel_without_errors_or_warnings(fresh, name):
    notebook, _ = fresh(name)
    for i, cell in enumerate(notebook.cells):
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{name}.ipynb cell {i}: {out.ename}: {out.evalue}"
            assert out.get("name") != "stderr", f"{name}.ipynb cell {i} wrote to stderr:\n{out.text}"
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_rich_displays_are_there(fresh, name):
    notebook, _ = fresh(name)
    assert displays(notebook) == DISPLAYS[name]
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/svg+xml" in data:  # a whole SVG document with the boxes' text in it
                svg = ET.fromstring(data["image/svg+xml"][data["image/svg+xml"].index("<svg"):])
                texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text") if t.text]
                assert len(texts) > 10
            page = data.get("text/html", "")
            if "<iframe srcdoc=" in page:  # the stepper: the whole page, its drawing and controls, in the iframe
                inner = html.unescape(re.search(r'srcdoc="([^"]*)"', page)[1])
                assert "<svg" in inner and 'id="counter"' in inner and 'id="next"' in inner


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_outputs_match_a_fresh_run(fresh, name):
    stored = regenerate.normalised(nbformat.read(FOLDER / f"{name}.ipynb", as_version=4))
    now = regenerate.normalised(fresh(name)[0])
    assert len(stored) == len(now)
    for i, (old, new) in enumerate(zip(stored, now)):
        assert old["source"] == new["source"]
        assert old["type"] == new["type"]
        if old["outputs"] != new["outputs"]:
            pytest.fail(f"{name}.ipynb cell {i}: the stored outputs are not what the notebook gives now "
                        f"({_first_difference(old['outputs'], new['outputs'])}); {REFRESH}")


def _first_difference(old: list, new: list) -> str:
    """Where two lists of normalised outputs first differ: the output's number and the first differing line."""
    n = max(len(old), len(new))
    old, new = old + [None] * (n - len(old)), new + [None] * (n - len(new))
    k, was, now = next((k, a, b) for k, (a, b) in enumerate(zip(old, new)) if a != b)
    was_lines, now_lines = ("\n".join(f"{key}: {value}" for key, value in o.items()).splitlines() if o
                            else ["(no output)"] for o in (was, now))
    line = next((j for j, (a, b) in enumerate(zip(was_lines, now_lines)) if a != b),
                min(len(was_lines), len(now_lines)))
    stored, fresh = (lines[line][:200] if line < len(lines) else "(nothing)" for lines in (was_lines, now_lines))
    return f"output {k}, line {line}: stored {stored!r}, now {fresh!r}"


def test_normalised_ignores_only_what_changes_between_runs():
    cell = nbformat.v4.new_code_cell("x", execution_count=3, outputs=[
        nbformat.v4.new_output("execute_result", {"text/plain": "<object at 0x7f3a2b1c9d80>"}, execution_count=3),
        nbformat.v4.new_output("stream", name="stdout", text="1.0\n")])
    notebook = nbformat.v4.new_notebook(cells=[cell])
    again = nbformat.from_dict(notebook)
    again.cells[0].execution_count = 7
    again.cells[0].outputs[0]["data"]["text/plain"] = "<object at 0x55d0c0ffee00>"
    again.cells[0].metadata["execution"] = {"iopub.execute_input": "2026-12-01T15:00:00Z"}
    again.cells[0]["id"] = "another"
    assert regenerate.normalised(again) == regenerate.normalised(notebook)
    again.cells[0].outputs[1]["text"] = "1.5\n"
    assert regenerate.normalised(again) != regenerate.normalised(notebook)
    noise = [nbformat.v4.new_output("stream", name="stdout", text=f"rel_error {e}, sum {s}, grad {g}\n")
             for e, s, g in (("1.7e-15", "-2.2e-16", "0.3281"), ("2.1e-15", "1.1e-16", "0.3281"),
                             ("1.7e-11", "-2.2e-16", "0.3281"), ("1.7e-15", "-2.2e-16", "0.3282"))]
    shown = [regenerate.normalised(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[o])]))
             for o in noise]
    assert shown[0] == shown[1]  # rounding noise of another numpy build
    assert shown[0] != shown[2] and shown[0] != shown[3]  # a real change


def test_regenerate_refuses_an_unknown_notebook(capsys):
    with pytest.raises(SystemExit) as stop:
        regenerate.main(["07_missing"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "no notebook named 07_missing" in err and "01_the_triangle" in err


def test_kernel_gets_this_checkout_first_on_its_path(monkeypatch):
    """execute() puts the checkout before any PYTHONPATH of the caller, so the kernel imports this tinygraph."""
    seen = {}

    class Client:
        def __init__(self, notebook, **options):
            seen.update(options)

        def execute(self, env):
            seen["env"] = env

    monkeypatch.setattr(regenerate, "NotebookClient", Client)
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    regenerate.execute(nbformat.v4.new_notebook())
    assert seen["env"]["PYTHONPATH"].split(os.pathsep) == [str(regenerate.ROOT), "/elsewhere"]
    assert seen["kernel_name"] == "python3" and seen["record_timing"] is False
