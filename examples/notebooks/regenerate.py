"""Run the lecture notebooks top to bottom in a fresh Jupyter kernel and store their outputs.

    pip install -e ".[notebooks]"
    python examples/notebooks/regenerate.py                  # all of them
    python examples/notebooks/regenerate.py 01_the_triangle  # one (or just: 01)

This is the one way to refresh the stored outputs (after a change to the engine,
the drawings or a notebook's code): tests/test_notebooks.py runs every notebook
again and fails when its stored outputs differ from a fresh run. The kernel is
the current Python's ipykernel, with this checkout first on its path, so the
notebooks always show the tinygraph they sit next to.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent  # the checkout: tinygraph/ is in here
NOTEBOOKS = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT = 120  # seconds per cell; every cell here takes well under one
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")  # object addresses in reprs differ between runs
# rounding noise such as 1.7e-15 or -2.2e-16 may differ with another numpy or BLAS build
_ROUNDING = re.compile(r"[-+]?\d(?:\.\d+)?e-(?:1[3-9]|[2-9]\d|\d{3})\b")


def execute(notebook: nbformat.NotebookNode, cwd: Path = HERE) -> nbformat.NotebookNode:
    """Run every cell of `notebook` (changed in place and returned) in a new python3 kernel.

    Raises nbclient's CellExecutionError at the first cell that fails.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env)
    return notebook


def normalised(notebook: nbformat.NotebookNode) -> list[dict]:
    """What a notebook shows, without what changes from run to run.

    Per cell: its type, source and outputs (stream text, or each mime type's data, and
    error names). Dropped: execution counts, cell ids, all metadata (timings,
    kernel details). Object addresses such as 0x7f3a... become 0x?, and numbers below
    1e-12 written in scientific notation (rounding noise, such as a rel_error of 1.7e-15)
    become "~0".
    """
    cells = []
    for cell in notebook.cells:
        outputs = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                outputs.append({"stream": out.name, "text": _steady(out.text)})
            elif out.output_type == "error":
                outputs.append({"error": out.ename, "value": _steady(out.evalue)})
            else:
                outputs.append({mime: _steady(data if isinstance(data, str) else str(data))
                                for mime, data in out.get("data", {}).items()})
        cells.append({"type": cell.cell_type, "source": cell.source, "outputs": outputs})
    return cells


def _steady(text: str) -> str:
    return _ROUNDING.sub("~0", _ADDRESS.sub("0x?", text))


def regenerate(path: Path) -> float:
    """Execute the notebook at `path` and write it back with its new outputs; returns the seconds taken."""
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    execute(notebook, path.parent)
    seconds = time.perf_counter() - start
    notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, path)
    return seconds


def _names(path: Path, name: str) -> bool:
    """Whether `name` picks the notebook at `path`: its whole name, or its number ("01")."""
    return path.stem == name or path.stem.split("_", 1)[0] == name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to run (file name with or without .ipynb); default: all")
    args = parser.parse_args(argv)
    chosen = NOTEBOOKS
    if args.names:
        wanted = [Path(n).stem for n in args.names]
        unknown = [w for w in wanted if not any(_names(p, w) for p in NOTEBOOKS)]
        if unknown:
            names = ", ".join(p.stem for p in NOTEBOOKS)
            parser.error(f"no notebook named {', '.join(unknown)}; the notebooks are: {names}")
        chosen = [p for p in NOTEBOOKS if any(_names(p, w) for w in wanted)]
    for path in chosen:
        print(f"{path.name}: {regenerate(path):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
