"""Short text views of numbers and arrays, shared by repr, tables, captions and drawings."""

from __future__ import annotations

from typing import Any

import numpy as np


def number(v: float, digits: int = 4) -> str:
    """One float with `digits` significant digits: 0.3333, -2, 1.5e-08, nan."""
    text = f"{v:.{digits}g}"
    return "0" if text == "-0" else text


def summary(value: Any, digits: int = 4, max_items: int = 6) -> str:
    """A short one-line view: `1.5`, `[1, 2, 3]`, `[[1, 2], [3, 4]]`, `[0.1, 0.2, 0.3, ... 0.9] (8,)`.

    Arrays with more than `max_items` entries show their first three, the last
    one and their shape.
    """
    if isinstance(value, (float, int, np.floating, np.integer)):
        return number(float(value), digits)
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return number(float(arr), digits)
    if arr.size <= max_items:
        return _nested(arr, digits)
    flat = arr.ravel()
    head = ", ".join(number(v, digits) for v in flat[:3])
    return f"[{head}, ... {number(flat[-1], digits)}] {arr.shape}"


def _nested(arr: np.ndarray, digits: int) -> str:
    if arr.ndim == 1:
        return "[" + ", ".join(number(v, digits) for v in arr) + "]"
    return "[" + ", ".join(_nested(sub, digits) for sub in arr) + "]"
