"""Classroom exercises: write a backward pass by hand, get feedback that names what is missing.

    import tinygraph as tg
    print(tg.exercises.show("mean_triangle"))
    def mean_triangle(x, dout):
        return dout                      # only the direct path
    print(tg.exercises.check("mean_triangle", mean_triangle).feedback)

`check` runs the student's function on fresh random inputs, builds the same
computation from tinygraph's primitive ops, backpropagates the same upstream
gradient and compares. When the answer is wrong it asks `tg.paths` how the
gradient splits over the graph's paths (grouped by the named intermediates
they pass through: mu, var, ...) and fits the student's answer to those parts,
so the feedback can say "the path through mu is missing" instead of a number.
Nothing the student's function does (raise, print, hang, mutate its inputs,
return the wrong type or shape) escapes from `check` as an exception.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import textwrap
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .checking import rel_error
from .core import Node
from .formatting import number, summary
from .inspection import paths
from .nn import functional as F

__all__ = ["Exercise", "Result", "names", "show", "check", "EXERCISES"]

TOLERANCE = 1e-6  # rel_error below this passes; a correct hand formula is near 1e-12


@dataclass(frozen=True)
class Exercise:
    """One exercise: the task, how to draw inputs, and the graph that defines the answer.

    `graph(**inputs)` builds the forward computation from primitive ops and returns
    `(root, {output name: leaf Node})`; backpropagating `inputs["dout"]` from `root`
    gives the expected outputs. The gradient of the first output is split into
    path groups by the names in `groups`; `direct` describes the group that passes
    through none of them. `mistakes` are known wrong formulas, (description, fn).
    """

    name: str
    title: str
    forward: tuple[str, ...]  # the forward computation, one statement per line
    params: tuple[str, ...]
    outputs: tuple[str, ...]
    shapes: str
    sizes: tuple  # the shape of x in each trial
    make_inputs: Callable[[np.random.Generator, tuple, int], dict]
    graph: Callable[..., tuple[Node, dict]]
    count: Callable[[dict], int]  # the N of "1/N": how many values each mean averages
    groups: tuple[str, ...] = ()
    direct: str = "the direct path"
    hints: dict = field(default_factory=dict)  # group name -> one-line hint
    mistakes: tuple = ()
    note: str = ""

    @property
    def signature(self) -> str:
        return f"def {self.name}({', '.join(self.params)}):"


@dataclass
class Result:
    """What `check` found: `.passed` and the `.feedback` text for the student."""

    name: str
    passed: bool
    feedback: str

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.feedback}"

    __repr__ = __str__

    def __bool__(self) -> bool:
        return self.passed


# -- the graphs that define the right answers ----------------------------------------------


def _mean_triangle_graph(x, dout):
    x = Node(x, name="x")
    mu = F.named(x.mean(), "mu")
    return F.named(x - mu, "y"), {"dx": x}


def _norm_graph(axis: int, eps_on_sigma: bool = False) -> Callable:
    """Layer norm (axis -1) or batch norm (axis 0) from tg.nn.functional: nodes mu, xc, var, std, xhat, y."""
    def graph(dout, x, weight, eps):
        leaves = {"dx": Node(x, name="x"), "dweight": Node(weight, name="weight"),
                  "dbias": Node(np.zeros_like(weight), name="bias")}
        y = F.normalize(leaves["dx"], axis, leaves["dweight"], leaves["dbias"], eps, eps_on_sigma)
        return y, leaves
    return graph


def _rmsnorm_graph(dout, x, weight, eps):
    leaves = {"dx": Node(x, name="x"), "dweight": Node(weight, name="weight")}
    return F.rms_body(leaves["dx"], leaves["dweight"], eps), leaves


def _softmax_graph(dout, x):
    x = Node(x, name="x")
    e = F.named(x.exp(), "e")
    s = F.named(e.sum(axis=-1, keepdims=True), "s")
    return F.named(e / s, "y"), {"dx": x}


# -- inputs ------------------------------------------------------------------------------

EPS = (1e-5, 1e-3, 0.1)  # a large eps in one trial tells sqrt(var + eps) from sigma + eps


def _vector_inputs(rng, shape, trial):
    return {"x": rng.normal(1.0, 2.0, shape), "dout": rng.normal(size=shape)}


def _norm_inputs(rng, shape, trial):
    return {"dout": rng.normal(size=shape), "x": rng.normal(0.5, 1.5, shape),
            "weight": rng.normal(1.0, 0.5, shape[-1]), "eps": EPS[trial % len(EPS)]}


def _softmax_inputs(rng, shape, trial):
    return {"dout": rng.normal(size=shape), "x": rng.normal(size=shape)}


# -- known mistakes (plain numpy) ----------------------------------------------------------


def _diagonal_only(x, dout):
    return (dout * (1 - 1 / x.size),)


def _softmax_diagonal(dout, x):
    y = np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)
    return (dout * y * (1 - y),)


def _wrong_norm(axis: int, eps_on_sigma: bool = False, weight_one: bool = False) -> Callable:
    """dx of a norm layer that differs from the exercise's: another axis, eps on sigma, no weight."""
    graph = _norm_graph(axis, eps_on_sigma)

    def wrong(dout, x, weight, eps):
        root, leaves = graph(dout, x, np.ones_like(weight) if weight_one else weight, eps)
        root.backward(dout)
        return (leaves["dx"].grad,)
    return wrong


# -- the exercises -------------------------------------------------------------------------

_MU_HINT = ("mu = mean(x) depends on every x_j (dmu/dx_j = 1/N), so every x_j also receives "
            "1/N of the gradient that arrives at mu.")
_VAR_HINT = ("var depends on every x_j too: dvar/dx_j = 2 (x_j - mu) / N; send the gradient "
             "that arrives at var back to x along that edge.")
_NORM_NOTE = ("(The path through both mu and var carries zero: dvar/dmu = -2/N * sum(x - mu) = 0; "
              "leaving it out is fine.)")


def _norm_exercise(name, what, axis, sizes, shape_text, other):
    return Exercise(
        name=name,
        title=f"the {what} backward pass",
        forward=(f"mu = mean(x, axis={axis})", "xc = x - mu", f"var = mean(xc**2, axis={axis})",
                 "std = sqrt(var + eps)", "xhat = xc / std", "y = xhat * weight + bias"),
        params=("dout", "x", "weight", "eps"),
        outputs=("dx", "dweight", "dbias"),
        shapes=shape_text,
        sizes=sizes,
        make_inputs=_norm_inputs,
        graph=_norm_graph(axis),
        count=lambda inputs: inputs["x"].shape[axis],
        groups=("mu", "var"),
        direct="the direct path x -> xc -> xhat",
        hints={"mu": _MU_HINT, "var": _VAR_HINT},
        mistakes=(
            ("you put eps on sigma, (x - mu) / (sigma + eps), as the blog post does; here the "
             "denominator is sqrt(var + eps)", _wrong_norm(axis, eps_on_sigma=True)),
            (f"you normalised over the wrong axis: that is {other[0]}", _wrong_norm(other[1])),
            ("you left out weight: the gradient arriving at xhat is dout * weight",
             _wrong_norm(axis, weight_one=True)),
        ),
        note=_NORM_NOTE,
    )


EXERCISES: dict[str, Exercise] = {}


def _register(ex: Exercise) -> None:
    EXERCISES[ex.name] = ex


_register(Exercise(
    name="mean_triangle",
    title="the gradient through the mean's triangle",
    forward=("mu = mean(x)", "y = x - mu"),
    params=("x", "dout"),
    outputs=("dx",),
    shapes="x, dout: shape (N,).  Return dx, shape (N,): dL/dx when dL/dy = dout.",
    sizes=((5,), (8,), (3,), (6,)),
    make_inputs=_vector_inputs,
    graph=_mean_triangle_graph,
    count=lambda inputs: inputs["x"].size,
    groups=("mu",),
    direct="the direct path x -> y",
    hints={"mu": _MU_HINT},
    mistakes=(
        ("you used only the diagonal dy_i/dx_i = 1 - 1/N; y_j for j != i depends on x_i too, "
         "through the mean", _diagonal_only),
    ),
))
_register(_norm_exercise(
    "layernorm_backward", "layer norm", -1, ((4, 6), (3, 5), (5, 8)),
    "x, dout: shape (B, N), normalised over the last axis; weight: shape (N,); eps: a float.\n"
    "Return (dx, dweight, dbias): dx has the shape of x, dweight and dbias the shape of weight.",
    ("batch norm (over axis 0)", 0)))
_register(_norm_exercise(
    "batchnorm_backward", "batch norm (training mode)", 0, ((8, 3), (5, 4), (6, 7)),
    "x, dout: shape (N, D), normalised over axis 0 (the batch); weight: shape (D,); eps: a float.\n"
    "Return (dx, dweight, dbias): dx has the shape of x, dweight and dbias the shape of weight.",
    ("layer norm (over the last axis)", -1)))
_register(Exercise(
    name="rmsnorm_backward",
    title="the RMSNorm backward pass",
    forward=("ms = mean(x**2, last axis)", "rms = sqrt(ms + eps)", "xhat = x / rms", "y = xhat * weight"),
    params=("dout", "x", "weight", "eps"),
    outputs=("dx", "dweight"),
    shapes="x, dout: shape (B, N), normalised over the last axis; weight: shape (N,); eps: a float.\n"
           "Return (dx, dweight) with the shapes of x and weight.",
    sizes=((4, 6), (3, 5), (5, 8)),
    make_inputs=_norm_inputs,
    graph=_rmsnorm_graph,
    count=lambda inputs: inputs["x"].shape[-1],
    groups=("ms",),
    direct="the direct path x -> xhat",
    hints={"ms": "ms = mean(x**2) depends on every x_j: dms/dx_j = 2 x_j / N."},
))
_register(Exercise(
    name="softmax_backward",
    title="the softmax backward pass",
    forward=("e = exp(x)", "s = sum(e, last axis)", "y = e / s"),
    params=("dout", "x"),
    outputs=("dx",),
    shapes="x, dout: shape (B, C), softmax over the last axis.  Return dx, shape (B, C).",
    sizes=((3, 5), (4, 6), (2, 7)),
    make_inputs=_softmax_inputs,
    graph=_softmax_graph,
    count=lambda inputs: inputs["x"].shape[-1],
    groups=("s",),
    direct="the direct path x -> e -> y",
    hints={"s": "s = sum(e) depends on every e_j (ds/de_j = 1), and y = e / s divides by it: "
                "dy/ds = -e / s**2."},
    mistakes=(
        ("you used only the diagonal of the Jacobian, dy_i/dx_i = y_i (1 - y_i); y_j for j != i "
         "depends on x_i too, through the sum s", _softmax_diagonal),
    ),
))


def names() -> list[str]:
    """The exercise names, in teaching order."""
    return list(EXERCISES)


def _get(name: str) -> Exercise:
    if name not in EXERCISES:
        raise ValueError(f"no exercise named {name!r}; the exercises are: {', '.join(EXERCISES)}")
    return EXERCISES[name]


def show(name: str) -> str:
    """The task as text: what to compute, the function to write, the shapes, how to check it."""
    ex = _get(name)
    lines = [
        f"{ex.name}: {ex.title}",
        "",
        f"    forward:  {ex.forward[0]}",
        *(f"              {statement}" for statement in ex.forward[1:]),
        "",
        "Write the backward pass by hand, in numpy:",
        "",
        f"    {ex.signature}",
        "        ...",
        f"        return {', '.join(ex.outputs)}",
        "",
        ex.shapes,
        "dout is the gradient of the loss with respect to y (same shape as y).",
    ]
    if ex.groups:
        routes = [ex.direct] + [f"the path through {g}" for g in ex.groups]
        lines.append(textwrap.fill(f"Gradient reaches x along several paths: {_join(routes)}. "
                                   f"Your {ex.outputs[0]} must add them all.", width=90))
    lines += ["", f'Check it:  tg.exercises.check("{ex.name}", {ex.name})',
              f"      or:  tinygraph exercise check {ex.name} FILE.py"]
    return "\n".join(lines)


# -- running the student's function safely -------------------------------------------------


class _TimeLimit(BaseException):
    """Raised inside a student's function that ran past its time limit."""


@dataclass
class _Call:
    value: Any = None
    error: BaseException | None = None
    timed_out: bool = False
    printed: str = ""


def _stop_thread(thread: threading.Thread) -> None:
    """Raise `_TimeLimit` inside `thread` (CPython); a busy Python loop stops at once."""
    with contextlib.suppress(Exception):
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(_TimeLimit))


def call_with_time_limit(fn: Callable, args: tuple, timeout: float) -> _Call:
    """Call fn(*args) in a daemon thread with a time limit, capturing what it prints."""
    call = _Call()

    def target():
        try:
            call.value = fn(*args)
        except BaseException as exc:  # noqa: B036 - SystemExit and KeyboardInterrupt are feedback too
            call.error = exc

    out = io.StringIO()
    thread = threading.Thread(target=target, name=f"tinygraph-exercise-{getattr(fn, '__name__', 'fn')}", daemon=True)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            call.timed_out = True
            _stop_thread(thread)
            thread.join(1.0)
    call.printed = out.getvalue()
    return call


def _error_text(exc: BaseException, fn: Callable) -> str:
    """"ZeroDivisionError: division by zero (line 4)": the line is the last one in the student's file."""
    code = getattr(fn, "__code__", None)
    tb, line = exc.__traceback__, None
    while tb is not None:
        if code is None or tb.tb_frame.f_code.co_filename == code.co_filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    where = f" (line {line})" if line is not None else ""
    try:
        message = str(exc)
    except Exception:  # an exception class of the student's own whose __str__ fails
        message = "(its message could not be shown)"
    return f"{type(exc).__name__}: {message}{where}"


class _Wrong(Exception):
    """A problem with the student's answer, already phrased as feedback."""


def _to_array(value: Any, label: str, expected: np.ndarray) -> np.ndarray:
    if isinstance(value, Node):
        raise _Wrong(f"{label} is a tinygraph Node; return a numpy array (the numbers, e.g. node.data).")
    if value is None or isinstance(value, (str, bytes, dict)):
        raise _Wrong(f"{label} should be a numpy array of shape {expected.shape}, got {type(value).__name__}.")
    what = f"an ndarray of dtype {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
    not_numbers = _Wrong(f"{label} should be a numpy array of shape {expected.shape}; "
                         f"got {what}, which is not an array of numbers.")
    try:
        arr = np.asarray(value)
    except Exception:  # whatever the returned object does when read is feedback, not a crash
        raise not_numbers from None
    if arr.dtype.kind == "c":
        raise _Wrong(f"{label} has complex values; the gradient of a real function is real.")
    if arr.dtype.kind not in "biuf":  # strings, None, sets, ragged lists...
        raise not_numbers
    return arr.astype(np.float64)


def _unpack(value: Any, ex: Exercise, expected: tuple) -> tuple[np.ndarray, ...]:
    """The student's return value as one array per expected output, or `_Wrong`."""
    n = len(ex.outputs)
    if n == 1:
        if isinstance(value, (tuple, list)) and len(value) in (1, 2, 3) and not _is_numeric_list(value):
            items = "1 item" if len(value) == 1 else f"{len(value)} items"
            raise _Wrong(f"return {ex.outputs[0]} itself (an array), not a {type(value).__name__} of {items}.")
        return (_to_array(value, ex.outputs[0], expected[0]),)
    wanted = "(" + ", ".join(ex.outputs) + ")"
    if isinstance(value, np.ndarray) or not isinstance(value, (tuple, list)):
        kind = f"an array of shape {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
        raise _Wrong(f"your function should return a tuple {wanted}; it returned {kind}.")
    if len(value) != n:
        raise _Wrong(f"your function should return {n} values {wanted}; it returned {len(value)}.")
    return tuple(_to_array(v, label, e) for v, label, e in zip(value, ex.outputs, expected))


def _is_numeric_list(value: Any) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) for v in value)


# -- judging the answer --------------------------------------------------------------------


@dataclass
class _Trial:
    inputs: dict
    expected: tuple  # one array per output
    parts: dict  # group label -> the part of dx flowing along those paths
    n: int


def _trial(ex: Exercise, inputs: dict) -> _Trial:
    root, leaves = ex.graph(**inputs)
    root.backward(inputs["dout"])
    expected = tuple(leaves[o].grad.copy() for o in ex.outputs)
    parts = _path_parts(ex, root, leaves[ex.outputs[0]], inputs["dout"]) if ex.groups else {}
    return _Trial(inputs, expected, parts, ex.count(inputs))


def _path_parts(ex: Exercise, root: Node, leaf: Node, dout: np.ndarray) -> dict[tuple, np.ndarray]:
    """The gradient of `leaf` split by which named intermediates (mu, var, ...) a path passes."""
    parts: dict[tuple, np.ndarray] = {}
    for path in paths(root, leaf, grad=dout):
        through = tuple(g for g in ex.groups if any(node.name == g for node in path.nodes))
        parts[through] = parts.get(through, 0) + path.grad
    ordered = sorted(parts, key=lambda key: (len(key), [ex.groups.index(g) for g in key]))
    return {key: parts[key] for key in ordered}


def _group_label(ex: Exercise, key: tuple) -> str:
    return ex.direct if not key else "the path through " + " and ".join(key)


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all(np.isfinite(a))) and rel_error(a, b) < TOLERANCE


def _shape_feedback(label: str, got: np.ndarray, want: np.ndarray) -> str:
    msg = f"{label} should have shape {want.shape}, yours has shape {got.shape}"
    if got.ndim == 2 and got.T.shape == want.shape and _close(got.T, want):
        return msg + ": it is the right answer transposed."
    if got.size == want.size and _close(got.reshape(want.shape), want):
        return msg + f": the numbers are right; reshape it to {want.shape}."
    for axis in range(got.ndim):
        if _close(got.sum(axis=axis), want):
            return msg + f": sum it over axis {axis} (the parameter is shared by all rows)."
    return msg + "."


SCALES = [  # (name, coefficient from N); checked in order
    ("1", lambda n: 1.0), ("0", lambda n: 0.0), ("-1", lambda n: -1.0),
    ("N", lambda n: float(n)), ("1/N", lambda n: 1.0 / n),
    ("-N", lambda n: -float(n)), ("-1/N", lambda n: -1.0 / n),
    ("2", lambda n: 2.0), ("1/2", lambda n: 0.5),
]


def _name_scale(coefs: list[float], counts: list[int]) -> str | None:
    """Name a coefficient that holds in every trial ("1/N", "-1", ...), or None."""
    for label, value in SCALES:
        if all(abs(c - value(n)) < 1e-6 * max(1.0, abs(value(n))) for c, n in zip(coefs, counts)):
            return label
    if all(abs(c - coefs[0]) < 1e-6 * max(1.0, abs(coefs[0])) for c in coefs):
        return number(coefs[0])
    return None


def _fit(student: list[np.ndarray], parts: list[dict]) -> dict[tuple, list[float]] | None:
    """Write the student's answer, trial by trial, as a combination of the path parts.

    Returns {group: [coefficient per trial]} when that explains the answer
    (parts that carry no gradient are left out), else None.
    """
    coefs: dict[tuple, list[float]] = {}
    for s, trial_parts in zip(student, parts):
        scale = max(np.linalg.norm(sum(trial_parts.values())), np.linalg.norm(s), 1e-300)
        live = {k: v.ravel() for k, v in trial_parts.items() if np.linalg.norm(v) > 1e-9 * scale}
        if not live:
            return None
        a = np.stack(list(live.values()), axis=1)
        c, *_ = np.linalg.lstsq(a, s.ravel(), rcond=None)
        if np.linalg.norm(a @ c - s.ravel()) > 1e-7 * scale:
            return None
        for k, ck in zip(live, c):
            coefs.setdefault(k, []).append(float(ck))
    if any(len(v) != len(student) for v in coefs.values()):
        return None
    return coefs


_SCALE_WORDS = {
    "-1": "has the wrong sign",
    "N": "is N times too large (a missing 1/N?)",
    "1/N": "is N times too small (an extra 1/N?)",
    "-N": "has the wrong sign and is N times too large",
    "-1/N": "has the wrong sign and is N times too small",
    "2": "is twice too large",
    "1/2": "is half what it should be",
}


def _scale_words(scale: str) -> str:
    return _SCALE_WORDS.get(scale, f"is {scale} times what it should be")


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _path_feedback(ex: Exercise, label: str, coefs: dict[tuple, list[float]], counts: list[int]) -> str | None:
    """Say which path groups the answer has, lacks, or has with a wrong sign or scale."""
    scales = {k: _name_scale(v, counts) for k, v in coefs.items()}
    if any(s is None for s in scales.values()):
        return None
    if len(set(scales.values())) == 1:
        return f"Your {label} points the right way but {_scale_words(next(iter(scales.values())))}."
    have = [_group_label(ex, k) for k, s in scales.items() if s == "1"]
    lack = [k for k, s in scales.items() if s == "0"]
    odd = [f"{_group_label(ex, k)} {_scale_words(s)}" for k, s in scales.items() if s not in ("0", "1")]
    sentences = []
    lacking = _join([_group_label(ex, k) for k in lack]) if lack else ""
    if have and lack:
        sentences.append(f"Your {label} matches {_join(have)} only; it lacks {lacking}.")
    elif lack:
        sentences.append(f"Your {label} lacks {lacking}.")
    if odd:
        sentences.append(f"In your {label}, {_join(odd)}.")
    hints = [ex.hints[g] for g in ex.groups if any(g in k for k in lack)]
    if ex.note and (lack or odd):
        hints.append(ex.note)
    return " ".join(sentences + hints)


def _judge_output(ex: Exercise, index: int, trials: list[_Trial], answers: list[tuple]) -> str | None:
    """Feedback for one output across all trials, or None when it is right."""
    label = ex.outputs[index]
    got = [a[index] for a in answers]
    want = [t.expected[index] for t in trials]
    for g, w in zip(got, want):
        if g.shape != w.shape:
            return _shape_feedback(label, g, w)
    for g in got:
        if not np.all(np.isfinite(g)):
            return f"{label} contains nan or inf: {summary(g)}."
    errors = [rel_error(g, w) for g, w in zip(got, want)]
    if max(errors) < TOLERANCE:
        return None
    worst = int(np.argmax(errors))
    g, w = got[worst], want[worst]
    idx = np.unravel_index(int(np.argmax(np.abs(g - w))), w.shape)
    idx_text = ", ".join(str(int(i)) for i in idx)
    head = (f"{label} is wrong: relative error {errors[worst]:.2g} "
            f"(at {label}[{idx_text}] yours is {number(float(g[idx]))}, the gradient is {number(float(w[idx]))}).")
    if all(not np.any(gi) for gi in got):
        zero = f" Your {label} is all zeros, but the gradient is not."
        if ex.groups:
            zero += (" Adding the partial derivatives along every path (the '1 - 1 = 0' of the triangle) "
                     "is not the gradient: each path carries dout, and dout differs between entries.")
        return head + zero
    if g.ndim == 2 and g.shape[0] == g.shape[1] and all(_close(gi.T, wi) for gi, wi in zip(got, want)):
        return head + " It is the right answer transposed."
    for other, name in enumerate(ex.outputs):
        if other != index and all(_close(gi, t.expected[other]) for gi, t in zip(got, trials)):
            return head + f" It is the correct {name}: did you swap {label} and {name}?"
    if index == 0:
        for description, wrong in ex.mistakes:
            if all(_close(gi, np.asarray(wrong(**t.inputs)[0])) for gi, t in zip(got, trials)):
                return head + f" It looks like {description}."
    parts = [t.parts if index == 0 and t.parts else {(): w} for t, w in zip(trials, want)]
    coefs = _fit(got, parts)
    if coefs is not None:
        text = _path_feedback(ex, label, coefs, [t.n for t in trials])
        if text:
            return head + " " + text
    return head


def check(name: str, fn: Callable, *, seed: int = 0, timeout: float = 5.0) -> Result:
    """Run `fn` on fresh random inputs and compare with tinygraph's autograd.

    Never raises because of what `fn` does: exceptions, wrong types or shapes,
    printing, mutated inputs and calls that take longer than `timeout` seconds
    all become feedback.
    """
    ex = _get(name)
    if not callable(fn):
        return Result(name, False, f"check needs your function {ex.name}, got {type(fn).__name__}.")
    rng = np.random.default_rng(seed)
    trials, answers, notes = [], [], []
    for i, size in enumerate(ex.sizes):
        inputs = ex.make_inputs(rng, size, i)
        trial = _trial(ex, inputs)
        copies = {k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in inputs.items()}
        call = call_with_time_limit(fn, tuple(copies[p] for p in ex.params), timeout)
        shapes = ", ".join(f"{p} {np.shape(v)}" for p, v in inputs.items() if isinstance(v, np.ndarray))
        if call.timed_out:
            return Result(name, False, f"your function did not return within {number(timeout)} s "
                                       f"(inputs: {shapes}). Look for a loop that never ends.")
        if call.error is not None:
            return Result(name, False, f"your function raised {_error_text(call.error, fn)} "
                                       f"(inputs: {shapes}).")
        if call.printed and not notes:
            notes.append("(your function printed output; check() hid it)")
        changed = [k for k, v in inputs.items() if isinstance(v, np.ndarray) and not np.array_equal(v, copies[k])]
        if changed:
            return Result(name, False, f"your function changed its input {_join(changed)} in place "
                                       "(check() gave it copies). A backward pass must not modify the "
                                       "forward values: write x = x - m, not x -= m.")
        try:
            answers.append(_unpack(call.value, ex, trial.expected))
        except _Wrong as exc:
            return Result(name, False, str(exc))
        trials.append(trial)
    problems = [p for i in range(len(ex.outputs)) if (p := _judge_output(ex, i, trials, answers))]
    if problems:
        return Result(name, False, "\n".join(problems + notes))
    worst = max(rel_error(a, e) for answer, t in zip(answers, trials) for a, e in zip(answer, t.expected))
    shapes = ", ".join(str(t.inputs["x"].shape) for t in trials)
    verb = "matches" if len(ex.outputs) == 1 else "match"
    return Result(name, True, " ".join([f"{_join(list(ex.outputs))} {verb} autograd on {len(trials)} random "
                                        f"inputs (x of shape {shapes}); worst relative error {worst:.1e}."]
                                       + notes))
