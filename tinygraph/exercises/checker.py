"""`check`: draw fresh inputs, run the student's function in the sandbox, judge what came back."""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import sandbox
from .definition import Exercise, draw_inputs, get
from .feedback import Result, Trial, judge, make_trial

__all__ = ["check", "check_file", "draw_all", "make_trials", "calls", "load_problem_text"]

TIMEOUT = 5.0  # seconds each call of the student's function may take


def draw_all(ex: Exercise, seed: int) -> list[dict]:
    """The inputs of every trial for `seed` (`dout` included)."""
    rng = np.random.default_rng(seed)
    return [draw_inputs(ex, rng, i) for i in range(len(ex.trials))]


def make_trials(ex: Exercise, inputs: list[dict]) -> list[Trial]:
    """The right answers from autograd, made after the child has started so it never holds them."""
    return [make_trial(ex, x, i, len(inputs)) for i, x in enumerate(inputs)]


def calls(ex: Exercise, inputs: list[dict]) -> list[tuple]:
    """The arguments of each call of the student's function, in its parameter order."""
    return [tuple(x[p] for p in ex.params) for x in inputs]


def _seed(seed: int | None) -> int:
    if seed is None:
        return secrets.randbelow(2 ** 31)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"check: seed must be a whole number >= 0 or None, got {seed!r}")
    return int(seed)


def _timeout(timeout: float) -> float:
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not math.isfinite(timeout) \
            or timeout <= 0:
        raise ValueError(f"check: timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def check(name: str, fn: Callable, seed: int | None = None, show_output: bool = False, *,
          timeout: float = TIMEOUT) -> Result:
    """Run `fn` on fresh random inputs and compare with tinygraph's autograd.

    `fn` runs in a child process (forked, so a function from a notebook cell works),
    each call limited to `timeout` seconds: whatever it does (raise, print, loop,
    exit, change its inputs or numpy) becomes feedback and leaves this process as
    it was. `seed=` repeats a run; failure feedback names it. `show_output=True`
    puts what the function printed into the feedback.
    """
    ex = get(name)
    seed = _seed(seed)
    timeout = _timeout(timeout)
    if sandbox.inside_sandbox():
        return Result(name, False, "check() was called inside the function being checked; it did not run.")
    if not callable(fn):
        return Result(name, False, f"check needs your function {ex.name}, got {type(fn).__name__}.", seed)
    inputs = draw_all(ex, seed)
    if not hasattr(os, "fork"):  # Windows: a thread of this process, stopped when it runs out of time
        run = sandbox.run_in_thread(fn, calls(ex, inputs), timeout=timeout, allow_autograd=ex.allow_autograd)
        return judge(ex, make_trials(ex, inputs), run, seed=seed, show_output=show_output, timeout=timeout)
    child = sandbox.start_function(fn, calls(ex, inputs), timeout=timeout, allow_autograd=ex.allow_autograd)
    try:
        trials = make_trials(ex, inputs)
        sandbox.wait_any([child])
    finally:
        run = child.finish()
    return judge(ex, trials, run, seed=seed, show_output=show_output, timeout=timeout)


def check_file(name: str, path: str | Path, seed: int | None = None, show_output: bool = False, *,
               timeout: float = TIMEOUT) -> tuple[Result | None, str | None]:
    """Check the function `name` defined in the file at `path`, run in a fresh child process.

    Returns (Result, None), or (None, why the file or function cannot be loaded).
    """
    ex = get(name)
    seed, timeout = _seed(seed), _timeout(timeout)
    if not Path(path).is_file():
        return None, f"no such file: {path}"
    inputs = draw_all(ex, seed)
    child = sandbox.start_file(path, name, calls(ex, inputs), timeout=timeout, allow_autograd=ex.allow_autograd)
    try:
        trials = make_trials(ex, inputs)
        sandbox.wait_any([child])
    finally:
        run = child.finish()
    if run.problem is not None:
        return None, load_problem_text(ex, str(path), run.problem, timeout)
    return judge(ex, trials, run, seed=seed, show_output=show_output, timeout=timeout), None


def load_problem_text(ex: Exercise, path: str, problem: tuple, timeout: float) -> str:
    """Why the file could not be loaded, in a sentence."""
    kind, details = problem[0], problem[1:]
    if kind == "syntax":
        line, msg = details[0]
        return f"{path} has a syntax error at line {line}: {msg}"
    if kind == "error":
        return f"{path} failed while loading: {details[0]}"
    if kind == "missing":
        found = f" (it defines: {', '.join(details[0])})" if details[0] else ""
        return f"{path} defines no function named {ex.name}{found}; write `{ex.signature}`"
    if kind == "not-callable":
        shown, type_name = details[0]
        return f"{ex.name} in {path} is not a function: it is {shown} (type {type_name})"
    if kind == "not-python":
        return f"cannot load {path} as Python (is it a .py file?)"
    stage, how = details
    if stage == "start":
        return f"the checker's Python process for {path} did not start ({how}); try again"
    if how == "timeout":
        return f"{path} did not finish loading within {timeout:g} s (a loop at the top level?)"
    return f"{path} ended the Python process while loading (os._exit() or exit() at the top level?)"
