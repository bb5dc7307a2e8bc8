"""Judging an answer: from what the student's function returned to feedback a student can act on.

The right answer comes from autograd. When an answer is wrong, the feedback
tries, in order: the shape, nan/inf, float32 precision, an all-zero answer,
a transposed or swapped output, the known mistakes of the exercise (its
variants, plus swapped arguments, a fixed eps and the Jacobian's diagonal),
and finally `tg.paths`: the true gradient split by the named intermediates
its paths pass through (mu, var, ...), fitted to the answer, so it can say
"the path through mu is missing" or "is N times too large".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checking import jacobian, rel_error
from ..core import Node
from ..formatting import number, summary
from ..inspection import paths
from .definition import Exercise, build, gradients, join
from .sandbox import MEMORY_LIMIT, Outcome, Printed, Returned, Run

__all__ = ["Result", "Trial", "make_trial", "judge", "TOLERANCE"]

TOLERANCE = 1e-6  # rel_error below this passes; a correct hand formula in float64 is near 1e-12
SHOWN_LINES = 20  # of what the function printed, shown with show_output=True


@dataclass
class Result:
    """What `check` found: `.passed`, the `.feedback` for the student, and what a grader records.

    `seed` repeats the run (`check(..., seed=)`, `--seed`); `error` is the worst relative
    error over all outputs and trials (None when there was nothing to compare); `output`
    is the start of what the function printed and `printed_lines` how many lines in all.
    """

    name: str
    passed: bool
    feedback: str
    seed: int | None = None
    error: float | None = None
    output: str = ""
    printed_lines: int = 0

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.feedback}"

    __repr__ = __str__

    def __bool__(self) -> bool:
        return self.passed


# -- trials ----------------------------------------------------------------------------------------


@dataclass
class Trial:
    """One set of inputs and its right answer, with the first gradient split into path groups."""

    index: int
    count: int  # how many trials in all
    inputs: dict
    expected: tuple
    parts: dict  # group -> the part of the first gradient along those paths
    n: int  # the N of 1/N


def make_trial(ex: Exercise, inputs: dict, index: int, count: int) -> Trial:
    """The right answer for `inputs` from autograd, and its split by path (when the exercise names groups)."""
    root, leaves = build(ex, inputs)
    root.backward(inputs["dout"])
    expected = tuple(np.array(leaves[g].grad, dtype=np.float64) for g in ex.grads)
    parts = _path_parts(ex, root, leaves[ex.grads[0]], inputs["dout"]) if ex.groups else {}
    n = int(np.shape(inputs[ex.grads[0]])[ex.count_axis]) if np.ndim(inputs[ex.grads[0]]) else 1
    return Trial(index, count, inputs, expected, parts, n)


def _path_parts(ex: Exercise, root: Node, leaf: Node, dout: np.ndarray) -> dict[tuple, np.ndarray]:
    parts: dict[tuple, np.ndarray] = {}
    for path in paths(root, leaf, grad=dout):
        through = tuple(g for g in ex.groups if any(node.name == g for node in path.nodes))
        parts[through] = parts.get(through, 0) + path.grad
    ordered = sorted(parts, key=lambda key: (len(key), [ex.groups.index(g) for g in key]))
    return {key: parts[key] for key in ordered}


def trial_text(ex: Exercise, trial: Trial) -> str:
    """'trial 2 of 3: x (3, 5), weight (5,), eps 0.001'."""
    shapes = [f"{p} {np.shape(trial.inputs[p])}" if isinstance(trial.inputs[p], np.ndarray)
              else f"{p} {number(float(trial.inputs[p]))}" for p in ex.params if p != "dout"]
    return f"trial {trial.index + 1} of {trial.count}: {', '.join(shapes)}"


# -- the verdict -----------------------------------------------------------------------------------


class _Wrong(Exception):
    """A problem with the answer, already phrased as feedback."""


def judge(ex: Exercise, trials: list[Trial], run: Run, *, seed: int, show_output: bool, timeout: float) -> Result:
    """The Result of one run of the student's function over `trials`."""
    printed = run.printed
    output_note = _output_note(printed, show_output, len(run.outcomes))

    def fail(text: str, error: float | None = None, trial: Trial | None = None) -> Result:
        where = f"{trial_text(ex, trial)}; " if trial is not None else ""
        repeat = f"({where}seed {seed}: check(..., seed={seed}) or --seed {seed} repeats this run.)"
        return Result(ex.name, False, "\n".join(filter(None, [text, output_note, repeat])), seed, error,
                      printed.head, printed.lines)

    answers = []
    for trial, outcome in zip(trials, run.outcomes):
        problem = _call_problem(ex, outcome, printed, timeout)
        if problem:
            return fail(problem, trial=trial)
        try:
            answers.append(_unpack(outcome.value, ex, trial.expected))
        except _Wrong as exc:
            return fail(str(exc), trial=trial)
    if len(answers) < len(trials):  # the child stopped without a word: treated as ending the process
        return fail(_ended_text(ex, Outcome(ended="exit")), trial=trials[len(answers)])
    worst = max(rel_error(a, e) if a.shape == e.shape else np.inf
                for answer, t in zip(answers, trials) for a, e in zip(answer, t.expected))
    for i in range(len(ex.outputs)):
        found = _judge_output(ex, i, trials, answers)
        if found:
            text, trial = found
            return fail(text, worst, trial)
    shapes = ", ".join(str(np.shape(t.inputs[ex.grads[0]])) for t in trials)
    verb = "matches" if len(ex.outputs) == 1 else "match"
    text = (f"{join(list(ex.outputs))} {verb} autograd on {len(trials)} random inputs "
            f"({ex.grads[0]} of shape {shapes}); worst relative error {worst:.1e}.")
    return Result(ex.name, True, "\n".join(filter(None, [text, output_note])), seed, worst,
                  printed.head, printed.lines)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _output_note(printed: Printed, show_output: bool, calls: int) -> str:
    """What the function printed: a count (and how to see it), or with show_output the first lines."""
    if not printed.chars:
        return ""
    lines = max(printed.lines, 1)
    over = f" over {calls} calls" if calls > 1 else ""
    if not show_output:
        return (f"(Your function printed {_plural(lines, 'line')}{over}; check(..., show_output=True) or "
                "--show-output shows them.)")
    head = printed.head.splitlines()[:SHOWN_LINES]
    shown = "\n".join("    | " + line for line in head)
    more = lines - len(head)
    rest = f"\n    ... and {_plural(more, 'more line')}" if more > 0 else ""
    return f"Your function printed {_plural(lines, 'line')}{over}:\n{shown}{rest}"


def _call_problem(ex: Exercise, outcome: Outcome, printed: Printed, timeout: float) -> str | None:
    """Feedback for a call that did not simply return: time, process end, shortcuts, errors, mutation."""
    if "check" in outcome.shortcuts:
        return ("Your function calls tg.exercises.check itself (that inner check did not run). Is the "
                "check(...) line indented into your function? Move it below the function, unindented.")
    if outcome.ended == "timeout":
        text = f"Your function did not return within {number(timeout)} s."
        if printed.lines > 10_000:
            return text + (f" It printed {_plural(printed.lines, 'line')} before it was stopped: printing "
                           "that much takes time. Print less (or nothing) inside loops.")
        return text + " Look for a loop that never ends."
    if outcome.ended is not None:
        return _ended_text(ex, outcome)
    reference = [s for s in outcome.shortcuts if s.startswith("tg.reference") or s == "tg.numerical_grad"]
    if reference:
        return (f"Your function calls {join(reference)}, which computes the answer for you, so it cannot "
                "pass. The exercise asks for the formula written by hand, in numpy.")
    if outcome.shortcuts:
        return (f"Your function uses tinygraph's autograd ({join(outcome.shortcuts)}), which computes the "
                "gradient for you, so it cannot pass: autograd is what check() compares your answer with. "
                "The exercise asks for the formula written by hand, in numpy.")
    if outcome.error is not None:
        text = f"Your function raised {outcome.error}."
        if outcome.error_type == "MemoryError":
            text += (f" It asked for more memory than the {MEMORY_LIMIT >> 20} MB the check allows: "
                     "the arrays here are small, so look for one that grows without end.")
        elif outcome.error_type == "SystemExit":
            text += f" It should return {join(list(ex.outputs))} instead of calling sys.exit()."
        return text
    if outcome.changed:
        changed = join([ex.params[k] for k in outcome.changed])
        return (f"Your function changed its input {changed} in place (check() gave it copies). A backward "
                "pass must not modify the forward values: write x = x - m, not x -= m.")
    return None


def _ended_text(ex: Exercise, outcome: Outcome) -> str:
    how = f" ({outcome.exit_detail})" if outcome.exit_detail else ""
    return (f"Your function ended the Python process{how} instead of returning "
            f"{join(list(ex.outputs))}: is there an os._exit() or exit() in it? It counts as not passing.")


# -- the returned value as arrays --------------------------------------------------------------------


def _to_array(value: Returned, label: str, expected: np.ndarray, ex: Exercise) -> np.ndarray:
    if value.kind == "node":
        raise _Wrong(f"{label} is a tinygraph Node; return a numpy array (the numbers, e.g. node.data).")
    if value.kind == "sequence":
        raise _Wrong(f"{label} should be a numpy array of shape {expected.shape}; got a {value.type_name} of "
                     f"{_plural(int(value.note), 'item')}. np.array(...) turns it into one array.")
    if value.kind == "other":
        if value.note:
            raise _Wrong(f"{label} should be a numpy array of shape {expected.shape}; got {value.note}.")
        raise _Wrong(f"{label} should be a numpy array of shape {expected.shape}, got {value.type_name}.")
    arr = value.array
    if value.type_name in ("list", "tuple") and not ex.allow_lists and arr.ndim > 0:
        raise _Wrong(f"{label} is a Python {value.type_name}; return a numpy array of shape {expected.shape} "
                     "(np.array(...) turns it into one).")
    if arr.dtype.kind == "c":
        raise _Wrong(f"{label} has complex values; the gradient of a real function is real.")
    return arr


def _unpack(value: Returned | None, ex: Exercise, expected: tuple) -> tuple[np.ndarray, ...]:
    """One array per expected output, or `_Wrong` saying what was returned instead."""
    if value is None:
        raise _Wrong("Your function returned nothing the check could read.")
    n = len(ex.outputs)
    if n == 1:
        if value.kind == "sequence" and int(value.note) <= 3:
            items = _plural(int(value.note), "item")
            raise _Wrong(f"Return {ex.outputs[0]} itself (an array), not a {value.type_name} of {items}.")
        return (_to_array(value, ex.outputs[0], expected[0], ex),)
    wanted = "(" + ", ".join(ex.outputs) + ")"
    if value.kind != "sequence":
        kind = (f"an array of shape {value.array.shape}" if value.kind == "array" and value.type_name == "ndarray"
                else f"a {value.type_name}" if value.kind == "array" else value.type_name)
        raise _Wrong(f"Your function should return a tuple {wanted}; it returned {kind}.")
    if int(value.note) != n:
        raise _Wrong(f"Your function should return {n} values {wanted}; it returned {value.note}.")
    return tuple(_to_array(v, label, e, ex) for v, label, e in zip(value.items, ex.outputs, expected))


# -- one output across the trials ---------------------------------------------------------------------


def _close(a: np.ndarray, b: np.ndarray, tolerance: float = TOLERANCE) -> bool:
    return a.shape == b.shape and bool(np.all(np.isfinite(a))) and rel_error(a, b) < tolerance


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


def _judge_output(ex: Exercise, index: int, trials: list[Trial], answers: list[tuple]) -> tuple[str, Trial] | None:
    """(feedback, the trial it is about) for one output, or None when it is right in every trial."""
    label = ex.outputs[index]
    got = [a[index] for a in answers]
    want = [t.expected[index] for t in trials]
    for g, w, t in zip(got, want, trials):
        if g.shape != w.shape:
            return _shape_feedback(label, g, w), t
    for g, t in zip(got, trials):
        if not np.all(np.isfinite(g)):
            return f"{label} contains nan or inf: {summary(g)}.", t
    errors = [rel_error(g.astype(np.float64), w) for g, w in zip(got, want)]
    if max(errors) < TOLERANCE:
        return None
    worst = int(np.argmax(errors))
    trial = trials[worst]
    low = [g.dtype for g in got if g.dtype.kind == "f" and g.dtype.itemsize < 8]
    if low:
        dtype = low[0]
        if max(errors) < min(1e-2, float(np.finfo(dtype).eps) * 1e4):
            return (f"{label} is right to {dtype} precision (relative error {max(errors):.1g}), but it is a {dtype} "
                    f"array and the check needs float64: the inputs are float64, so look for {dtype} or "
                    "astype in your code.", trial)
    got = [g.astype(np.float64) for g in got]
    g, w = got[worst], want[worst]
    idx = np.unravel_index(int(np.argmax(np.abs(g - w))), w.shape)
    idx_text = ", ".join(str(int(i)) for i in idx)
    digits = next((d for d in (4, 7, 10, 17) if number(float(g[idx]), d) != number(float(w[idx]), d)), 17)
    head = (f"{label} is wrong: relative error {errors[worst]:.2g} (at {label}[{idx_text}] yours is "
            f"{number(float(g[idx]), digits)}, the gradient is {number(float(w[idx]), digits)}).")
    hint = ex.output_hints.get(label, "")
    if all(not np.any(gi) for gi in got):
        zero = f"Your {label} is all zeros, but the gradient is not."
        return " ".join(filter(None, [head, zero, hint, ex.zero_hint if index == 0 else ""])), trial
    if g.ndim == 2 and g.shape[0] == g.shape[1] and all(_close(gi.T, wi) for gi, wi in zip(got, want)):
        return head + " It is the right answer transposed.", trial
    for other, name in enumerate(ex.outputs):
        if other != index and all(_close(gi, t.expected[other]) for gi, t in zip(got, trials)):
            return head + f" It is the correct {name}: did you swap {label} and {name}?", trial
    right = [t for t, e in zip(trials, errors) if e < TOLERANCE]
    for description, wrong in _variants(ex, trials):
        if all(wrong[t.index][index] is not None and _close(gi, wrong[t.index][index])
               for gi, t in zip(got, trials)):
            return head + f" It looks like {description}.", trial
    if right and ex.numbers():
        differs = [k for k in ex.numbers() if len({t.inputs[k] for t in trials}) > 1]
        if differs:
            k = differs[0]
            good = join([number(float(t.inputs[k])) for t in right])
            bad = join([number(float(t.inputs[k])) for t, e in zip(trials, errors) if e >= TOLERANCE])
            return head + (f" It is right when {k} = {good} and wrong when {k} = {bad}: does your function "
                           f"use its {k} argument everywhere {k} belongs?"), trial
    parts = [t.parts if index == 0 and t.parts else {(): w} for t, w in zip(trials, want)]
    coefs = _fit(got, parts)
    if coefs is not None:
        text = _path_feedback(ex, label, coefs, [t.n for t in trials])
        if text:
            return head + " " + text, trial
    if max(errors) < 1e-3:
        hint = (f"Your {label} is close, but not within the {TOLERANCE:g} a float64 formula reaches: was part "
                "of it computed in float32, or is a small term (such as eps) missing or different?")
    return " ".join(filter(None, [head, hint])), trial


# -- known mistakes ----------------------------------------------------------------------------------


def _variants(ex: Exercise, trials: list[Trial]):
    """(description, [outputs per trial]) for each known mistake, each computed only when it is reached."""
    for description, compute in _mistakes(ex, trials[0]):
        try:
            yield description, [compute(t) for t in trials]
        except (ValueError, TypeError, FloatingPointError, ZeroDivisionError, np.linalg.LinAlgError):
            continue  # a mistake that cannot be built for these inputs is not this answer


def _mistakes(ex: Exercise, first: Trial):
    for v in ex.variants:
        if v.forward is not None:
            yield v.description, lambda t, v=v: gradients(ex, t.inputs, v.forward)
        else:
            yield v.description, lambda t, v=v: gradients(ex, v.change(t.inputs))
    arrays = [p for p in ex.params if isinstance(first.inputs[p], np.ndarray)]
    for i, p in enumerate(arrays):
        for q in arrays[i + 1:]:
            if np.shape(first.inputs[p]) == np.shape(first.inputs[q]):
                yield (f"your function reads {p} and {q} the other way round: the signature is "
                       f"`{ex.signature}`", lambda t, p=p, q=q: gradients(ex, {**t.inputs, p: t.inputs[q],
                                                                                q: t.inputs[p]}))
    for k in ex.numbers():
        for c in (0.0, 1e-8, 1e-6, 1e-5, 1e-3):
            said = (f"your function ignores {k} (its answer is the one for {k} = 0)" if c == 0 else
                    f"your function uses {k} = {number(c)} whatever {k} it is given")
            yield said, lambda t, k=k, c=c: gradients(ex, {**t.inputs, k: c})
    if ex.groups:
        g = ex.grads[0]
        yield (f"you used only the diagonal of the Jacobian, dy_i/d{g}_i; y_j for j != i depends on {g}_i too, "
               f"through {join(list(ex.groups))}"), lambda t: _diagonal_only(ex, t)


def _diagonal_only(ex: Exercise, trial: Trial) -> tuple:
    """The first gradient computed with only the Jacobian's diagonal: dout_i * dy_i/dx_i."""
    g = ex.grads[0]
    x = trial.inputs[g]
    others = {k: v for k, v in trial.inputs.items() if k not in (g, "dout")}

    def f(node: Node) -> Node:
        args = {k: Node(v) if k in ex.grads else v for k, v in others.items()}
        return ex.forward(**args, **{g: node})

    jac = jacobian(f, x)
    if jac.shape != x.shape + x.shape:
        raise ValueError("the output and the input have different shapes")
    diagonal = jac.reshape(x.size, x.size).diagonal().reshape(x.shape)
    return (trial.inputs["dout"] * diagonal,) + (None,) * (len(ex.grads) - 1)


# -- fitting the answer to the paths -----------------------------------------------------------------


SCALES = [  # (name, coefficient from N); checked in order
    ("1", lambda n: 1.0), ("0", lambda n: 0.0), ("-1", lambda n: -1.0),
    ("N", lambda n: float(n)), ("1/N", lambda n: 1.0 / n),
    ("-N", lambda n: -float(n)), ("-1/N", lambda n: -1.0 / n),
    ("2", lambda n: 2.0), ("1/2", lambda n: 0.5), ("-2", lambda n: -2.0), ("-1/2", lambda n: -0.5),
]


def _near(a: float, b: float) -> bool:
    return abs(a - b) < 1e-6 * max(1.0, abs(b))


def _name_scale(coefs: list[float], counts: list[int]) -> str | None:
    """Name a coefficient that holds in every trial ("1/N", "-1", "fixed 5", "1.5"), or None."""
    for label, value in SCALES:
        if all(_near(c, value(n)) for c, n in zip(coefs, counts)):
            return label
    if len(set(counts)) > 1:  # c = N / m: a fixed m where N belongs
        m = [n / c if c else 0.0 for c, n in zip(coefs, counts)]
        if m[0] > 0 and all(_near(mi, m[0]) for mi in m):
            return f"fixed {number(m[0])}"
    if all(_near(c, coefs[0]) for c in coefs):
        return f"{coefs[0]:.10g}"
    return None


def _scale_words(scale: str, counts: list[int]) -> str:
    words = {
        "-1": "has the wrong sign",
        "N": "is N times too large (a missing 1/N?)",
        "1/N": "is N times too small (an extra 1/N?)",
        "-N": "has the wrong sign and is N times too large",
        "-1/N": "has the wrong sign and is N times too small",
        "2": "is twice too large", "-2": "has the wrong sign and is twice too large",
        "1/2": "is half what it should be", "-1/2": "has the wrong sign and is half what it should be",
    }
    if scale in words:
        return words[scale]
    if scale.startswith("fixed "):
        ns = join([str(n) for n in dict.fromkeys(counts)])
        return (f"divides by a fixed {scale[6:]} where it needs N (N is {ns} in these trials): "
                "take N from the shape of the input")
    value = float(scale)
    if abs(value - 1) < 1e-3:
        factor = f"{value:.6g}" if f"{value:.6g}" != "1" else f"1 {'+' if value > 1 else '-'} {abs(value - 1):.1g}"
        return f"is off by a factor of {factor}: close, but not the exact formula"
    return f"is {value:.4g} times what it should be"


def _fit(student: list[np.ndarray], parts: list[dict]) -> dict[tuple, list[float]] | None:
    """Write the answer, trial by trial, as a combination of the path parts: {group: [coefficient per trial]}.

    Parts that carry no gradient are left out; None when no combination explains the answer.
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


def _group_label(ex: Exercise, key: tuple) -> str:
    return ex.direct if not key else "the path through " + " and ".join(key)


def _path_feedback(ex: Exercise, label: str, coefs: dict[tuple, list[float]], counts: list[int]) -> str | None:
    """Say which path groups the answer has, lacks, or has with a wrong sign or scale."""
    scales = {k: _name_scale(v, counts) for k, v in coefs.items()}
    if any(s is None for s in scales.values()):
        return None
    if len(set(scales.values())) == 1:
        scale = next(iter(scales.values()))
        if scale in ("1", "0"):
            return None
        return f"Your {label} points the right way but {_scale_words(scale, counts)}."
    have = [_group_label(ex, k) for k, s in scales.items() if s == "1"]
    lack = [k for k, s in scales.items() if s == "0"]
    odd = [f"{_group_label(ex, k)} {_scale_words(s, counts)}" for k, s in scales.items() if s not in ("0", "1")]
    sentences = []
    lacking = join([_group_label(ex, k) for k in lack]) if lack else ""
    if have and lack:
        sentences.append(f"Your {label} matches {join(have)} only; it lacks {lacking}.")
    elif lack:
        sentences.append(f"Your {label} lacks {lacking}.")
    if odd:
        sentences.append(f"In your {label}, {join(odd)}.")
    hints = [ex.hints[g] for g in ex.groups if g in ex.hints and any(g in k for k in lack)]
    if ex.note and (lack or odd):
        hints.append(ex.note)
    return " ".join(sentences + hints)

