"""Shared helpers for the benchmark scripts: timing with warm-up, medians, a table, the machine.

Times are CPU time of this process (`time.process_time`, all its threads), not wall
time: on a shared machine other processes then barely disturb the figures.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """CPU seconds that `fn()` took, and what it returned."""
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def median_time(fn: Callable[[], Any], repeat: int, warmup: int = 1, setup: Callable[[], Any] | None = None,
                number: int = 1) -> float:
    """Median CPU seconds of `fn(setup())` (or `fn()`) over `repeat` runs after `warmup` untimed runs.

    With `number` > 1 each run calls `fn()` that many times and counts the mean
    (for calls too short to time one by one).

    The cycle collector runs (untimed) before each run, so garbage left by one run
    does not slow the next; it stays enabled during the run, as a user has it.
    The result is kept until the clock has stopped, so freeing it is not timed.
    """
    times = []
    for i in range(warmup + repeat):
        arg = setup() if setup else None
        gc.collect()
        t0 = time.process_time()
        for _ in range(number):
            out = fn(arg) if setup else fn()
        t1 = time.process_time()
        if i >= warmup:
            times.append((t1 - t0) / number)
        del arg, out
    gc.collect()
    return statistics.median(times)


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table."""
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> str:
    """One line naming the machine, Python, numpy and its BLAS, for the table's caption."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = ""
    try:
        from threadpoolctl import threadpool_info
        libs = [f"{i['internal_api']} {i.get('version') or ''} {i.get('architecture') or ''} "
                f"threads={i['num_threads']}" for i in threadpool_info()]
        blas = "; ".join(x.replace("  ", " ") for x in libs)
    except ImportError:
        blas = "threadpoolctl not installed"
    env = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS") or k.endswith("_NUM_THREADS")}
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__} "
            f"({blas}), env {env or '{}'}")


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x"
