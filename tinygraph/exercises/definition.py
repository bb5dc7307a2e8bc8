"""What an exercise is, and how a teacher adds one.

An exercise is a forward computation built from tinygraph's primitive ops, the
function the student writes (its arguments, one of them the upstream gradient
`dout`), and the shapes of the random inputs. The right answers come from
tinygraph's own autograd: the forward is built with a leaf Node for every input
whose gradient is asked for, and backpropagated from `dout`.

    def forward(x, w, b):
        h = x @ w + b
        h.name = "h"                     # named nodes split the feedback by path
        return x + h.relu()

    tg.exercises.register("residual_backward", forward,
                          inputs={"x": (4, 3), "w": (3, 3), "b": (3,)},
                          paths_through=("h",))

The student then writes `def residual_backward(dout, x, w, b)` returning
`(dx, dw, db)`, and `check`, `show`, the CLI and batch grading work for it.
"""

from __future__ import annotations

import inspect
import keyword
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import Node

__all__ = ["Exercise", "Variant", "register", "names", "show", "get", "EXERCISES"]

Shape = tuple  # a shape such as (4, 3): the input is a random array of that shape


@dataclass(frozen=True)
class Variant:
    """A known wrong answer, for feedback that names the mistake.

    Either `forward` (another forward with the same arguments: the wrong axis,
    the unbiased variance) or `change` (inputs -> the inputs the mistake uses:
    weight ignored) gives the wrong gradients through autograd.
    """

    description: str  # completes "It looks like ..."
    forward: Callable[..., Node] | None = None
    change: Callable[[dict], dict] | None = None


@dataclass(frozen=True)
class Exercise:
    """One exercise: its forward, the function to write, the inputs, and what feedback can name.

    `trials` holds one dict per trial: input name -> shape (a random array) or a
    number (passed as it is, e.g. eps). `params` is the student's argument list
    (`dout` is the upstream gradient); the function returns the gradients of
    `grads`, in that order, named `d<input>`.
    """

    name: str
    forward: Callable[..., Node]
    trials: tuple[dict, ...]
    params: tuple[str, ...]
    grads: tuple[str, ...]
    title: str = ""
    statements: tuple[str, ...] = ()  # the forward as short statements, for show()
    shapes_text: str = ""
    groups: tuple[str, ...] = ()  # named intermediates that split the first gradient into paths
    direct: str = "the direct path"
    hints: dict = field(default_factory=dict)  # group -> a hint when that path is missing
    output_hints: dict = field(default_factory=dict)  # output -> how it is computed
    zero_hint: str = ""  # said when the first output is all zeros
    note: str = ""
    variants: tuple[Variant, ...] = ()
    draw: Callable[[np.random.Generator, str, tuple], np.ndarray] | None = None
    count_axis: int = -1  # the N of "1/N": the length of this axis of the first input
    allow_autograd: bool = False  # may the answer build Nodes and call backward()?
    allow_lists: bool = False  # may the answer return Python lists instead of arrays?

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple("d" + g for g in self.grads)

    @property
    def signature(self) -> str:
        return f"def {self.name}({', '.join(self.params)}):"

    def numbers(self) -> tuple[str, ...]:
        """The inputs given as numbers (eps), not arrays."""
        return tuple(k for k, v in self.trials[0].items() if not isinstance(v, tuple))


EXERCISES: dict[str, Exercise] = {}


def register(name: str, forward: Callable[..., Node], inputs: dict | Sequence[dict], *,
             params: Sequence[str] | None = None, grads: Sequence[str] | None = None,
             paths_through: Sequence[str] = (), allow_autograd: bool = False, allow_lists: bool = False,
             **options: Any) -> Exercise:
    """Add an exercise (or replace one of the same name) and return it.

    `forward(**inputs)` builds the computation from tinygraph ops (array inputs
    arrive as Nodes). `inputs` maps each input to a shape, or a number passed as
    it is; a list of such dicts gives one trial each (three trials of the one
    dict otherwise). The student writes `def name(dout, <inputs>)` (or `params`)
    returning the gradients of `grads` (default: every array input).
    `paths_through` names intermediates (set `node.name` in the forward) by which
    feedback splits the first gradient into paths. More options: the fields of
    `Exercise` (title, hints, variants, ...).
    """
    if not (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)):
        raise ValueError(f"register: the exercise name must be a Python function name, got {name!r}")
    if not callable(forward):
        raise TypeError(f"register: forward must be a function building the computation, got {type(forward).__name__}")
    trials = (dict(inputs),) * 3 if isinstance(inputs, dict) else tuple(dict(t) for t in inputs)
    if not trials or any(set(t) != set(trials[0]) for t in trials):
        raise ValueError("register: inputs must be a dict (input -> shape or number) or a list of such dicts "
                         "with the same names")
    for trial in trials:
        for key, spec in trial.items():
            _check_spec(key, spec)
    arrays = [k for k, v in trials[0].items() if isinstance(v, tuple)]
    grads = tuple(grads) if grads is not None else tuple(arrays)
    params = tuple(params) if params is not None else ("dout", *trials[0])
    unknown = [g for g in grads if g not in arrays]
    if unknown or not grads:
        raise ValueError(f"register: grads must name array inputs ({', '.join(arrays)}), got {list(grads)}")
    strays = [p for p in params if p != "dout" and p not in trials[0]]
    if "dout" not in params or strays or len(set(params)) != len(params):
        raise ValueError(f"register: params must list 'dout' and input names once each, got {list(params)}")
    exercise = Exercise(name=name, forward=forward, trials=trials, params=params, grads=grads,
                        groups=tuple(paths_through), allow_autograd=allow_autograd, allow_lists=allow_lists,
                        **options)
    try:
        draw_inputs(exercise, np.random.default_rng(0), 0)
    except Exception as exc:  # the teacher's forward: say where it failed
        raise ValueError(f"register: {name}: forward failed on random inputs of the given shapes: "
                         f"{type(exc).__name__}: {exc}") from exc
    EXERCISES[name] = exercise
    return exercise


def _check_spec(key: str, spec: Any) -> None:
    if isinstance(spec, tuple):
        if not all(isinstance(n, (int, np.integer)) and n > 0 for n in spec):
            raise ValueError(f"register: the shape of input {key!r} must be positive whole numbers, got {spec}")
    elif not isinstance(spec, (int, float, np.integer, np.floating)) or isinstance(spec, bool):
        raise ValueError(f"register: input {key!r} must be a shape tuple such as (4, 3) or a number, got {spec!r}")


def names() -> list[str]:
    """The exercise names, in teaching order."""
    return list(EXERCISES)


def get(name: str) -> Exercise:
    """The exercise called `name`; ValueError listing the names if there is none."""
    if name not in EXERCISES:
        raise ValueError(f"no exercise named {name!r}; the exercises are: {', '.join(EXERCISES)}")
    return EXERCISES[name]


# -- inputs and right answers ----------------------------------------------------------------


def _normal(rng: np.random.Generator, name: str, shape: tuple) -> np.ndarray:
    return rng.normal(size=shape)


def draw_inputs(ex: Exercise, rng: np.random.Generator, trial: int) -> dict:
    """Fresh inputs for one trial, `dout` included (the shape of the forward's output)."""
    inputs = {k: (ex.draw or _normal)(rng, k, v) if isinstance(v, tuple) else v
              for k, v in ex.trials[trial].items()}
    root, _ = build(ex, inputs)
    inputs["dout"] = rng.normal(size=root.shape)
    return inputs


def build(ex: Exercise, inputs: dict, forward: Callable | None = None) -> tuple[Node, dict[str, Node]]:
    """Run the forward on `inputs`: (output Node, {input: leaf Node}) for the inputs in `grads`."""
    leaves = {g: Node(inputs[g], name=g) for g in ex.grads}
    args = {k: leaves.get(k, v) for k, v in inputs.items() if k != "dout"}
    root = (forward or ex.forward)(**args)
    if not isinstance(root, Node):
        raise TypeError(f"exercise {ex.name}: forward must return a tinygraph Node, got {type(root).__name__}")
    return root, leaves


def gradients(ex: Exercise, inputs: dict, forward: Callable | None = None) -> tuple[np.ndarray, ...]:
    """The right answer (or, with another forward, a variant's): autograd from `dout`."""
    root, leaves = build(ex, inputs, forward)
    root.backward(inputs["dout"])
    return tuple(np.array(leaves[g].grad, dtype=np.float64) for g in ex.grads)


# -- the task as text --------------------------------------------------------------------------


def show(name: str) -> str:
    """The task as text: what to compute, the function to write, the shapes, how to check it."""
    ex = get(name)
    if ex.statements:
        forward = [f"    forward:  {ex.statements[0]}", *(f"              {s}" for s in ex.statements[1:])]
    else:
        forward = ["    forward (tinygraph code):", textwrap.indent(_source(ex.forward), "        ")]
    lines = [
        f"{ex.name}: {ex.title or 'the backward pass of the forward below'}",
        "",
        *forward,
        "",
        "Write the backward pass by hand, in numpy:",
        "",
        f"    {ex.signature}",
        "        ...",
        f"        return {', '.join(ex.outputs)}",
        "",
        ex.shapes_text or _shapes_text(ex),
        "dout is the gradient of the loss with respect to y (same shape as y).",
    ]
    if ex.groups:
        routes = [ex.direct] + [f"the path through {g}" for g in ex.groups]
        lines.append(textwrap.fill(f"Gradient reaches {ex.grads[0]} along several paths: {join(routes)}. "
                                   f"Your {ex.outputs[0]} must add them all.", width=90))
    lines += ["", f'Check it:  tg.exercises.check("{ex.name}", {ex.name})',
              f"      or:  tinygraph exercise check {ex.name} FILE.py"]
    return "\n".join(lines)


def _source(fn: Callable) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn)).rstrip()
    except (OSError, TypeError):
        return f"{getattr(fn, '__qualname__', fn)!s} (its source is not available)"


def _shapes_text(ex: Exercise) -> str:
    trial = ex.trials[0]
    parts = [f"{k}: shape {v}" if isinstance(v, tuple) else f"{k}: a number" for k, v in trial.items()]
    returned = ", ".join(ex.outputs)
    varies = " (in the first trial; other trials use other sizes)" if len(set(map(str, ex.trials))) > 1 else ""
    return (f"{'; '.join(parts)}{varies}.\n"
            f"Return {returned if len(ex.outputs) == 1 else '(' + returned + ')'}, with the shapes of "
            f"{join(list(ex.grads))}.")


def join(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
