"""Grading a class: many answer files, one child process each, as many at once as there are cores.

The inputs and right answers are made, and every answer judged, in this
process; only the students' code runs in the children, forked from this
process (numpy and tinygraph already imported, so a child starts in
milliseconds) and watched from one loop. Results go to a table, JSON, CSV, or Gradescope's
`results.json` (`tests` with `name`, `score`, `max_score`, `output`,
`visibility`, and the total `score`), so tinygraph can be a course's
autograder as it is.
"""

from __future__ import annotations

import csv
import json
import math
import os
import runpy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import sandbox
from .checker import TIMEOUT, _seed, _timeout, calls, draw_all, load_problem_text, make_trials
from .definition import EXERCISES, get
from .feedback import Result, judge

__all__ = ["Graded", "grade", "submissions", "table", "write_json", "write_csv", "write_gradescope",
           "load_exercises"]


@dataclass
class Graded:
    """One submission: its file, and its Result or why it could not be loaded."""

    file: str
    result: Result | None
    problem: str | None
    seconds: float

    @property
    def passed(self) -> bool:
        return self.result is not None and self.result.passed

    @property
    def feedback(self) -> str:
        return self.result.feedback if self.result is not None else f"could not be loaded: {self.problem}"

    @property
    def error(self) -> float | None:
        e = self.result.error if self.result is not None else None
        return e if e is not None and math.isfinite(e) else None


def submissions(paths: Sequence[str | Path]) -> list[Path]:
    """The .py files named, and those in (and under) the folders named, in order; ValueError for a missing path."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(f for f in p.rglob("*.py") if f.is_file() and "__pycache__" not in f.parts)
        elif p.is_file():
            found.append(p)
        else:
            raise ValueError(f"no such file or folder: {p}")
    return list(dict.fromkeys(found))


def grade(name: str, paths: Sequence[str | Path], *, jobs: int | None = None, timeout: float = TIMEOUT,
          seed: int | None = None, progress: Callable[[int, int], None] | None = None) -> list[Graded]:
    """Grade every submission under `paths` (files or folders of .py files); one Graded each, in file order.

    Each file gets fresh inputs (or those of `seed`, the same for all) and runs in its
    own child process; `jobs` children at a time (default: the number of cores). This
    process makes the right answers while the children run, and judges each one.
    """
    ex = get(name)
    timeout = _timeout(timeout)
    files = submissions(paths)
    jobs = jobs or os.cpu_count() or 1
    graded: dict[Path, Graded] = {}
    waiting = list(files)
    running: dict[sandbox._Child, tuple] = {}
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                file = waiting.pop(0)
                file_seed = _seed(seed)
                inputs = draw_all(ex, file_seed)
                child = sandbox.start_file(file, name, calls(ex, inputs), timeout=timeout,
                                           allow_autograd=ex.allow_autograd)
                running[child] = (file, file_seed, make_trials(ex, inputs), time.perf_counter())
            for child in sandbox.wait_any(list(running)):
                file, file_seed, trials, start = running.pop(child)
                run = child.finish()
                seconds = time.perf_counter() - start
                if run.problem is not None:
                    problem = load_problem_text(ex, str(file), run.problem, timeout)
                    graded[file] = Graded(str(file), None, problem, seconds)
                else:
                    result = judge(ex, trials, run, seed=file_seed, show_output=False, timeout=timeout)
                    graded[file] = Graded(str(file), result, None, seconds)
                if progress is not None:
                    progress(len(graded), len(files))
    finally:
        for child in running:  # interrupted (Ctrl-C): no child outlives the grader
            child.finish()
    return [graded[f] for f in files]


# -- reports ---------------------------------------------------------------------------------------


def _first_line(text: str, width: int) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= width else line[:width - 3] + "..."


def table(rows: list[Graded], width: int = 100) -> str:
    """One line per submission: file, PASS/FAIL, worst relative error, the start of the feedback."""
    files = [r.file for r in rows]
    fw = min(max(map(len, files + ["file"])), 40)
    lines = [f"{'file':<{fw}}  result  error     feedback"]
    for r in rows:
        error = f"{r.error:.1e}" if r.error is not None else "-"
        file = r.file if len(r.file) <= fw else "..." + r.file[-(fw - 3):]
        lines.append(f"{file:<{fw}}  {'PASS' if r.passed else 'FAIL':<6}  {error:<8}  "
                     f"{_first_line(r.feedback, max(width - fw - 28, 30))}")
    passed = sum(r.passed for r in rows)
    lines.append(f"{passed} of {len(rows)} passed.")
    return "\n".join(lines)


def _record(name: str, r: Graded) -> dict:
    return {"file": r.file, "exercise": name, "passed": r.passed, "loaded": r.problem is None,
            "error": r.error, "seed": r.result.seed if r.result is not None else None, "feedback": r.feedback,
            "output": r.result.output if r.result is not None else "",
            "printed_lines": r.result.printed_lines if r.result is not None else 0, "seconds": round(r.seconds, 3)}


def write_json(name: str, rows: list[Graded], path: str | Path) -> None:
    """Every result with its full feedback."""
    data = {"exercise": name, "passed": sum(r.passed for r in rows), "total": len(rows),
            "submissions": [_record(name, r) for r in rows]}
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


def write_csv(name: str, rows: list[Graded], path: str | Path) -> None:
    """One row per submission; the feedback in full (multi-line cells are quoted)."""
    fields = ["file", "exercise", "passed", "loaded", "error", "seed", "feedback", "printed_lines", "seconds"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow(_record(name, r))


def write_gradescope(name: str, rows: list[Graded], path: str | Path, max_score: float = 1.0) -> None:
    """Gradescope's results.json: one test per submission file, full score for a pass, and the total."""
    tests = [{"name": f"{name} ({r.file})", "score": max_score if r.passed else 0.0, "max_score": max_score,
              "output": str(Result(name, r.passed, r.feedback)), "visibility": "visible"} for r in rows]
    data = {"score": sum(t["score"] for t in tests), "tests": tests}
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


# -- a teacher's own exercises ------------------------------------------------------------------------


def load_exercises(path: str | Path) -> list[str]:
    """Run a teacher's Python file that calls `tg.exercises.register(...)`; the names it added or replaced.

    Raises ValueError saying what went wrong (a missing file, an error in it, no register call).
    """
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"no such file: {path}")
    before = dict(EXERCISES)
    try:
        runpy.run_path(str(file), run_name="__tinygraph_exercises__")
    except Exception as exc:  # the teacher's file: its error, named
        raise ValueError(f"{path} failed while loading: {type(exc).__name__}: {exc}") from exc
    added = [k for k, v in EXERCISES.items() if before.get(k) is not v]
    if not added:
        raise ValueError(f"{path} registers no exercise: call tg.exercises.register(...) in it")
    return added
