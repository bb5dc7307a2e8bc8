"""The engine: `Node`, the `op` decorator that records operations, and the backward pass.

Everything a reader needs to understand reverse-mode autodiff is in this file:

* a `Node` holds a value (`.data`), its parents and a vector-Jacobian product (vjp);
* `@op` turns a function `forward(*arrays) -> (y, vjp)` into an operation on Nodes;
* `backward_steps` walks the graph from the root towards the leaves, consumers
  before producers, and hands each node's accumulated gradient to its vjp.

Speed choices that shape the code (benchmarks/ measures them):

* Scalars are kept internally as Python floats (numpy 0-d arithmetic costs about
  ten times more) and turned into 0-d arrays only when a user looks (`.data`, `.grad`).
* A graph holds no reference cycles: vjps close over values, never Nodes, and a
  node's log of contributions names its consumers by weak reference. So graphs are
  freed by reference counting, and the cycle collector has fewer objects to scan
  (Node has `__slots__`; `op` unrolls the one- and two-input cases).
* The backward pass visits nodes in reverse creation order: a node is always
  made after its inputs, so by its turn every consumer has sent its gradient.
  One walk finds the nodes and one sort orders them; no recursion. Gradients
  for broadcast inputs are summed down by the engine only when shapes differ
  (`op(broadcast=True)`), and a gradient array the pass allocated itself is
  accumulated in place; arrays from vjps are never written to, since they may be
  another node's value or gradient.
"""

from __future__ import annotations

import functools
import gc
import inspect
import itertools
import operator
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Callable

import numpy as np

from .formatting import summary

_serials = itertools.count()
_FLOAT64 = np.dtype(np.float64)
_scope = ""  # "outer/inner" while inside `with scope(...)`
_anomaly = False  # set by `detect_anomaly()`


class Node:
    """A value in a computational graph: a float64 scalar (0-d) or numpy tensor.

    A leaf is made by the user (`Node([1., 2.], name="x")`); every other Node is the
    output of an op and remembers its `op`, its `parents` (inputs in argument order,
    repeats kept) and how to send a gradient back to them.
    """

    __slots__ = (
        "_data", "_grad", "_grad_is_own", "_vjp", "_serial", "_const", "_pass", "_pending", "_contrib", "_sent",
        "parents", "op", "name", "attrs", "scope", "__weakref__",
    )

    def __init__(self, data: Any, name: str | None = None) -> None:
        if isinstance(data, Node):
            raise TypeError(
                "Node() got a Node; to start a new leaf with the same values use "
                "tg.Node(x.data)")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"Node name must be a str or None, got {type(name).__name__}")
        _init(self, _to_value(data, copy=True), (), None, "", name, {})

    # -- values -----------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        """The forward value as a float64 ndarray (0-d for a scalar), writable in place."""
        if self._data.__class__ is float:
            self._data = np.array(self._data)
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        new = _to_value(value, copy=True)
        if np.shape(new) != self.shape:
            raise ValueError(f"cannot set data of shape {np.shape(new)} on a node of shape {self.shape}")
        self._data = new

    @property
    def grad(self) -> np.ndarray:
        """d(root)/d(this node), summed over every backward pass since the last zero_grad.

        Inside a pass nodes may share one gradient array (add hands `g` to both
        inputs); the first look gives this node its own copy, so writing into it
        changes nothing else.
        """
        g = self._grad
        if g is None:
            g = self._grad = np.zeros(self.shape)
        elif not self._grad_is_own:
            g = self._grad = np.array(g, dtype=np.float64)
        self._grad_is_own = True
        return g

    @property
    def contributions(self) -> list[tuple[Node | None, np.ndarray]]:
        """(consumer, gradient) for each edge that sent gradient here in the latest pass.

        A consumer that has since been freed shows as None; its gradient is kept.
        """
        log = self._contrib  # a consumer (weak reference), or [consumer, gradient, consumer, gradient, ...]
        if log is None:
            return []
        if log.__class__ is not list:  # a single consumer sent the whole pass gradient
            log = [log, self._pending]
        return [(log[i](), np.array(log[i + 1], dtype=np.float64)) for i in range(0, len(log), 2)]

    @property
    def shape(self) -> tuple[int, ...]:
        return () if self._data.__class__ is float else self._data.shape

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return 1 if self._data.__class__ is float else self._data.size

    @property
    def is_constant(self) -> bool:
        """True for a leaf that an op made from a plain number or array (`2` in `2 * x`)."""
        return self._const

    def item(self) -> float:
        if self.size != 1:
            raise ValueError(f"item() needs a node with one element; this one has shape {self.shape}")
        return float(np.asarray(self._data).reshape(()))

    # -- backward ---------------------------------------------------------------
    def backward(self, grad: Any = None) -> None:
        """Add d(self)/d(node) to `.grad` of every node this one depends on.

        Exactly `backward_steps(self, grad)` run to the end. The cycle collector is
        paused meanwhile: the pass creates no reference cycles, and otherwise it
        would re-scan the whole graph several times on a large one.
        """
        paused = gc.isenabled()
        gc.disable()
        try:
            for _ in _backward_pass(self, grad, record_steps=False):
                pass
        finally:
            if paused:
                gc.enable()

    def zero_grad(self) -> None:
        """Reset `.grad` and `.contributions` of every node reachable from this one."""
        for node in walk(self):
            node._grad = node._pending = node._contrib = node._sent = None

    def __repr__(self) -> str:
        label = repr(self.name) if self.name is not None else ("constant" if self._const else "")
        op = self.op or "leaf"
        if self.attrs:
            op += "(" + ", ".join(f"{k}={v!r}" for k, v in self.attrs.items()) + ")"
        head = " ".join(part for part in ("Node", label, op) if part)
        return f"<{head} shape={self.shape} data={summary(self._data)} grad={summary(self.grad_or_zero)}>"

    @property
    def grad_or_zero(self) -> Any:
        """The gradient without materialising a zeros array (0.0 before any pass)."""
        return 0.0 if self._grad is None else self._grad

    # -- copies and pickles -----------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Value, gradient and graph; not the record of the latest backward pass."""
        return {k: getattr(self, k) for k in _KEPT_STATE}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self._pass = self._pending = self._contrib = self._sent = None
        # a copy counts as made now, after its parents (copied first): reverse creation order
        # stays a valid backward order even for a node unpickled in another process
        self._serial = next(_serials)

    # numpy must hand `ndarray * node` to Node.__rmul__ instead of looping over the array
    __array_ufunc__ = None


_KEPT_STATE = ("_data", "_grad", "_grad_is_own", "_vjp", "_const", "parents", "op", "name", "attrs", "scope")


def _init(node: Node, data, parents, vjp, op, name, attrs, const=False) -> Node:
    node._data = data
    node._grad = None
    node._grad_is_own = True
    node._vjp = vjp
    node._serial = next(_serials)
    node._const = const
    node._pass = node._pending = node._contrib = node._sent = None
    node.parents = parents
    node.op = op
    node.name = name
    node.attrs = attrs
    node.scope = _scope
    return node


def _to_value(data: Any, copy: bool) -> float | np.ndarray:
    """User data -> internal value: a Python float for scalars, else a float64 array."""
    if data.__class__ is float:
        return data
    if isinstance(data, (bool, int, float, np.bool_, np.integer, np.floating)):
        return float(data)
    if isinstance(data, (str, bytes, dict, set)) or data is None:
        raise TypeError(f"Node data must be a number, list of numbers or array, got {type(data).__name__}")
    try:
        arr = np.asarray(data)
    except ValueError as exc:
        raise TypeError(f"Node data must be a number, list of numbers or array, got a {type(data).__name__}"
                        f" that numpy cannot read ({exc})") from None
    if arr.dtype.kind not in "biuf":
        what = f"an ndarray of dtype {arr.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        raise TypeError(f"Node data must be real numbers, got {what} (numpy reads it as {arr.dtype})")
    if arr.ndim == 0:
        return float(arr)
    return np.array(arr, dtype=np.float64, copy=copy)


def constant(value: Any) -> Node:
    """A leaf for a plain number or array used as an op input (`2` in `2 * x`)."""
    if isinstance(value, Node):
        return value
    return _init(Node.__new__(Node), _to_value(value, copy=True), (), None, "", None, {}, const=True)


def walk(root: Node) -> Iterator[Node]:
    """Every node reachable from `root`, each once, without recursion (order unspecified)."""
    seen = {id(root)}
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        for p in node.parents:
            if id(p) not in seen:
                seen.add(id(p))
                stack.append(p)


def topological(root: Node) -> list[Node]:
    """The nodes `root` depends on, parents before children (creation order)."""
    nodes = list(walk(root))
    nodes.sort(key=lambda n: n._serial)
    return nodes


def auto_labels(nodes: Sequence[Node]) -> dict[Node, str]:
    """A label per node: its name, a constant's value, else op name + position ("mean2")."""
    labels = {}
    for i, node in enumerate(nodes):
        if node.name is not None:
            labels[node] = node.name
        elif node._const:
            labels[node] = summary(node._data)
        else:
            labels[node] = f"{node.op or 'leaf'}{i}"
    return labels


def formula(node: Node, labels: dict[Node, str]) -> str:
    """How `node` was made, in its parents' labels: "x - mu", "mean(sq, axis=0)"."""
    args = [labels[p] for p in node.parents]
    written = FORMULAS.get(node.op)
    if written:
        return written.format(*args, **node.attrs)
    return f"{node.op}(" + ", ".join(args + [f"{k}={v!r}" for k, v in node.attrs.items()]) + ")"


def describe(node: Node, labels: dict[Node, str]) -> str:
    """`node` as an equation: "xc = x - mu"; a leaf is just its label."""
    return f"{labels[node]} = {formula(node, labels)}" if node.op else labels[node]


# -- defining ops ---------------------------------------------------------------

def op(fn: Callable | None = None, *, name: str | None = None, formula: str | None = None,
       scalars: bool = False, broadcast: bool = False) -> Callable:
    """Turn `forward(*inputs, **settings) -> (y, vjp)` into an operation on Nodes.

    `vjp(g)` receives the gradient of the output and returns one gradient per
    positional input (`None` for "no gradient"). Positional arguments of the
    resulting op are its inputs; keyword arguments are settings recorded in
    `node.attrs`. `formula` (e.g. "{0} + {1}") tells step captions and drawings how
    to write the op; `scalars=True` promises that the forward and vjp also work
    on Python floats, the engine's fast path for 0-d values. `broadcast=True` says
    the inputs broadcast against each other as in numpy: the vjp may return each
    gradient in the broadcast shape, and the engine sums it down to the input's
    shape (only when the shapes differ).
    """
    if fn is None:
        return lambda f: op(f, name=name, formula=formula, scalars=scalars, broadcast=broadcast)
    op_name = name or fn.__name__
    n_inputs, setting_names = _split_signature(fn)
    if broadcast:
        BROADCASTING.add(op_name)
    else:
        BROADCASTING.discard(op_name)

    def apply(*args: Any, **settings: Any) -> Node:
        if len(args) != n_inputs:
            args, settings = _bind_arguments(op_name, n_inputs, setting_names, args, settings)
        # one and two inputs are unrolled: in CPython a loop here costs more than the op itself
        if n_inputs == 2:
            a, b = args
            if a.__class__ is not Node or b.__class__ is not Node:
                args = a, b = constant(a), constant(b)
            values = (a._data, b._data)
        elif n_inputs == 1:
            a, = args
            if a.__class__ is not Node:
                a = constant(a)
                args = (a,)
            values = (a._data,)
        else:
            args = tuple(map(constant, args))
            values = [a._data for a in args]
        if not scalars:
            values = [np.array(v) if v.__class__ is float else v for v in values]
        try:
            y, vjp = fn(*values, **settings)
        except ValueError as exc:
            raise _input_error(op_name, args, settings, exc) from None
        if y.__class__ is not float:
            y = _op_output(y, op_name)
        if y.__class__ is float and not scalars:
            vjp = _array_grad(vjp)
        out = _init(_new(Node), y, args, vjp, op_name, None, settings)
        if _anomaly:
            _check_finite(out, "forward", y)
        return out

    apply.__name__ = apply.__qualname__ = op_name
    apply.__doc__ = fn.__doc__
    apply.__wrapped__ = fn
    apply.formula = formula
    FORMULAS[op_name] = formula
    return apply


FORMULAS: dict[str, str | None] = {}  # op name -> how to write it, e.g. "{0} + {1}"
BROADCASTING: set[str] = set()  # names of the ops made with broadcast=True
_new = Node.__new__


def _input_error(op_name: str, args: tuple, settings: dict, exc: Exception) -> ValueError:
    """The forward refused its inputs: name the op, every input's shape and the settings."""
    shapes = " and ".join(str(a.shape) for a in args)
    given = "".join(f", {k}={v!r}" for k, v in settings.items())
    return ValueError(f"{op_name}: cannot apply to inputs of shape {shapes}{given}: {exc}")


def _array_grad(vjp: Callable) -> Callable:
    """Hand a float gradient to an array-only vjp as a 0-d array."""
    return lambda g: vjp(np.array(g) if g.__class__ is float else g)


def _split_signature(fn: Callable) -> tuple[int, list[str]]:
    params = inspect.signature(fn).parameters.values()
    inputs = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    settings = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    return len(inputs), settings


def _bind_arguments(op_name, n_inputs, setting_names, args, settings):
    """Let extra positional arguments fill settings in order, as numpy does: `sum(x, 0)`."""
    extra = args[n_inputs:]
    if len(args) < n_inputs or len(extra) > len(setting_names):
        raise TypeError(f"{op_name} takes {n_inputs} input(s), got {len(args)} positional arguments")
    for key, value in zip(setting_names, extra):
        if key in settings:
            raise TypeError(f"{op_name} got {key!r} twice")
        settings[key] = value
    return args[:n_inputs], settings


def _op_output(y: Any, op_name: str) -> float | np.ndarray:
    if isinstance(y, np.ndarray):
        if y.ndim == 0:
            return float(y)
        return y if y.dtype == np.float64 else y.astype(np.float64)
    if isinstance(y, (int, float, np.integer, np.floating, np.bool_)):
        return float(y)
    raise TypeError(f"{op_name}: forward must return (ndarray, vjp), got {type(y).__name__} as the value")


# -- scopes and anomaly detection -------------------------------------------------

@contextmanager
def scope(name: str) -> Iterator[str]:
    """Tag nodes created inside with a scope path ("block/layernorm"); drawn as a box."""
    global _scope
    if not isinstance(name, str) or not name:
        raise TypeError(f"scope name must be a non-empty str, got {name!r}")
    outer = _scope
    _scope = f"{outer}/{name}" if outer else name
    try:
        yield _scope
    finally:
        _scope = outer


@contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise `FloatingPointError` at the first op whose value or gradient is nan or inf."""
    global _anomaly
    outer = _anomaly
    _anomaly = True
    try:
        with np.errstate(all="ignore"):
            yield
    finally:
        _anomaly = outer


def _check_finite(node: Node, phase: str, value: Any, sender: Node | None = None) -> None:
    if np.all(np.isfinite(value)):
        return
    where = f"{node.op or 'leaf'} node" + (f" {node.name!r}" if node.name else "")
    if node.scope:
        where += f" in scope {node.scope!r}"
    inputs = ", ".join(summary(p._data) for p in node.parents)
    if phase == "forward":
        raise FloatingPointError(f"{where} produced a non-finite value {summary(value)} from inputs {inputs}")
    raise FloatingPointError(
        f"backward: the gradient sent to {where} by {sender.op if sender else 'the seed'} "
        f"is non-finite: {summary(value)}")


# -- the backward pass ---------------------------------------------------------------

class Step:
    """One node's turn in the backward pass: its gradient and what it sent to its parents."""

    __slots__ = ("index", "node", "_grad", "_sent", "_labels")

    def __init__(self, index: int, node: Node, grad: Any, labels: dict) -> None:
        self.index = index
        self.node = node
        self._grad = grad
        self._labels = labels
        self._sent = [(p, g) for _, p, g in sent_along(node)]

    @property
    def grad(self) -> np.ndarray:
        """The node's full upstream gradient in this pass."""
        return np.array(self._grad, dtype=np.float64)

    @property
    def contributions(self) -> list[tuple[Node, np.ndarray]]:
        """(parent, gradient) for each edge this step sent gradient along."""
        return [(p, np.array(g, dtype=np.float64)) for p, g in self._sent]

    def _sent_text(self) -> str:
        return ", ".join(f"{self._labels[p]} += {summary(g)}" for p, g in self._sent)

    def caption(self) -> str:
        """The step as one line without its number: "xc = x - mu: grad [..] -> x += [..], mu += [..]"."""
        sent = self._sent_text()
        text = f"{describe(self.node, self._labels)}: grad {summary(self._grad)}"
        return text + (f" -> {sent}" if sent else " (leaf)")

    def __str__(self) -> str:
        sent = self._sent_text()
        text = f"step {self.index}  {describe(self.node, self._labels)}   grad={summary(self._grad)}"
        return text + (f"   -> {sent}" if sent else "   (leaf)")

    __repr__ = __str__


def sent_along(node: Node) -> list[tuple[int, Node, Any]]:
    """(argument slot, parent, gradient) for each edge `node` sent gradient along in its latest pass.

    `a * a` gives two entries; an edge whose vjp returned None gives none.
    """
    sent = node._sent or ()
    return [(k, p, _fit_grad(g, p, node)) for k, (p, g) in enumerate(zip(node.parents, sent)) if g is not None]


def apply_vjp(node: Node, g: Any) -> tuple:
    """`node`'s vjp applied to `g`, each gradient checked and shaped like its input (None: no gradient).

    What the backward pass does at each node, for tools that chain vjps on their own (`tg.paths`).
    """
    grads = _grad_tuple(node._vjp(g), node)
    return tuple(None if gp is None else _fit_grad(gp, p, node) for p, gp in zip(node.parents, grads))


def backward_steps(root: Node, grad: Any = None) -> Iterator[Step]:
    """Run the backward pass one node at a time, yielding a `Step` after each node.

    Nodes come in a reverse topological order: a node's turn comes only after
    every node that consumes it has sent its contribution.
    """
    return _backward_pass(root, grad, record_steps=True)


def _seed(root: Node, grad: Any) -> float | np.ndarray:
    if not isinstance(root, Node):
        raise TypeError(f"backward needs a Node as root, got {type(root).__name__}")
    if grad is None:
        if root.size != 1:
            raise ValueError(
                f"backward() on a root of shape {root.shape} needs a seed gradient of that shape: "
                f"root.backward(np.ones({root.shape})), or reduce it first, e.g. root.sum().backward()")
        return 1.0 if root._data.__class__ is float else np.ones(root.shape)
    seed = _to_value(grad.data if isinstance(grad, Node) else grad, copy=True)
    if np.shape(seed) != root.shape:
        raise ValueError(f"backward: seed gradient has shape {np.shape(seed)} but the root has shape {root.shape}")
    return seed


def _consumers_first(root: Node, this_pass: object) -> list[Node]:
    """Every node below `root`, consumers before producers, each with no gradient yet.

    A node is always created after its inputs, so reverse creation order is a
    reverse topological order: one walk and one sort, both without recursion.
    """
    root._pass = this_pass
    root._pending = None
    found = [root]
    for node in found:  # the list grows while it is read: a breadth-first walk
        for p in node.parents:
            if p._pass is not this_pass:
                p._pass = this_pass
                p._pending = None
                found.append(p)
    found.sort(key=_creation_order, reverse=True)
    return found


_creation_order = operator.attrgetter("_serial")


def _backward_pass(root: Node, grad: Any, record_steps: bool) -> Iterator[Step]:
    """The backward pass: nodes in reverse creation order, each sending its gradient to its inputs.

    Each node keeps what it sent (`_sent`) and what it received in this pass
    (`_pending`, and `_contrib`: the senders, by weak reference so that the graph
    has no reference cycles, with each gradient once there are two or more).
    """
    seed = _seed(root, grad)
    this_pass = object()  # marks the nodes of this pass
    order = _consumers_first(root, this_pass)
    labels = auto_labels(order[::-1]) if record_steps else None  # order reversed is `topological(root)`
    root._pending = seed
    root._contrib = None
    owned = set()  # ids of nodes whose pending gradient is an array this pass allocated
    steps = 0
    ref = weakref.ref
    finished = False
    try:
        for node in order:
            if record_steps and node._pass is not this_pass:
                raise RuntimeError(_INTERLEAVED)
            g = node._pending
            if g is None:  # no gradient reached this node
                node._contrib = node._sent = None
                continue
            total = node._grad
            node._grad = g if total is None else total + g
            node._grad_is_own = False
            vjp = node._vjp
            if vjp is None:
                if owned and total is None and id(node) in owned:  # a sum this pass made: no other node has it
                    node._grad_is_own = True
            else:
                parents = node.parents
                grads = node._sent = vjp(g)
                if grads.__class__ is not tuple or len(grads) != len(parents):
                    grads = node._sent = _grad_tuple(grads, node)
                sender = ref(node)
                for p, gp in zip(parents, grads):
                    if gp is None:
                        continue
                    if gp.__class__ is not float or p._data.__class__ is not float:
                        data = p._data  # an array: check its gradient (inline for the common case)
                        if (gp.__class__ is not np.ndarray or data.__class__ is not np.ndarray
                                or gp.shape != data.shape or gp.dtype is not _FLOAT64 or _anomaly):
                            gp = _fit_grad(gp, p, node)
                    pending = p._pending
                    if pending is None:  # p's first gradient in this pass
                        p._pending = gp
                        p._contrib = sender
                        continue
                    log = p._contrib
                    if log.__class__ is list:
                        log += (sender, gp)
                    else:  # p's second gradient: now the log needs a list
                        p._contrib = [log, pending, sender, gp]
                    if pending.__class__ is float:
                        p._pending = pending + gp
                    elif id(p) in owned:  # ours alone: add in place, no new array
                        np.add(pending, gp, out=pending)
                    else:
                        p._pending = pending + gp
                        owned.add(id(p))
            if record_steps:
                yield Step(steps, node, g, labels)
                steps += 1
            node._pass = None  # this node's turn is over
        finished = True
    finally:
        if not finished:  # an abandoned or failed pass leaves no partial gradient behind
            for node in order:
                if node._pass is this_pass:
                    node._pending = node._contrib = node._pass = None


_INTERLEAVED = ("another backward pass ran over this graph while backward_steps was paused; "
                "the steps cannot go on (start backward_steps again)")


def _grad_tuple(grads: Any, node: Node) -> tuple:
    n = len(node.parents)
    if grads.__class__ is tuple and len(grads) == n:
        return grads
    if n == 1 and not isinstance(grads, (tuple, list)):
        return (grads,)
    if not isinstance(grads, (tuple, list)):
        raise TypeError(f"{node.op}: vjp must return a tuple of {n} gradients, got {type(grads).__name__}")
    if len(grads) != n:
        raise ValueError(f"{node.op}: vjp returned {len(grads)} gradients for {n} inputs")
    return tuple(grads)


def _fit_grad(g: Any, parent: Node, node: Node) -> float | np.ndarray:
    """Check a vjp's gradient against its input's shape; normalise its type.

    For an op made with `broadcast=True` a gradient in the broadcast shape is
    first summed down to the input's shape.
    """
    shape = parent.shape
    if g.__class__ is not np.ndarray:
        if not isinstance(g, (int, float, np.integer, np.floating)):
            g = np.asarray(g, dtype=np.float64)
    if np.shape(g) != shape and node.op in BROADCASTING:
        g = sum_to_shape(g, shape)
    if np.shape(g) != shape:
        raise ValueError(
            f"{node.op}: vjp returned a gradient of shape {np.shape(g)} for input "
            f"{node.parents.index(parent)} "
            f"of shape {shape}; each gradient must have its input's shape")
    if _anomaly:
        _check_finite(parent, "backward", g, sender=node)
    if shape == ():
        return float(g)
    return g if g.dtype == np.float64 else g.astype(np.float64)


def sum_to_shape(g: Any, shape: tuple[int, ...]) -> Any:
    """Undo broadcasting: sum `g` down to `shape` (returned unchanged if it has that shape).

    If x of shape (4,) was broadcast against (3, 4), every row used the same x,
    so x's gradient is the sum of the rows' gradients.
    """
    g_shape = g.shape if g.__class__ is np.ndarray else np.shape(g)
    if g_shape == shape:
        return g
    axes = broadcast_axes(g_shape, shape)
    if axes is None:
        return g  # not a broadcast of `shape`: the caller reports the mismatch
    return np.add.reduce(g, axis=axes, keepdims=True).reshape(shape)


@functools.lru_cache(maxsize=1024)
def broadcast_axes(big: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The axes of `big` along which `shape` was broadcast to it (None if it was not)."""
    lead = len(big) - len(shape)
    if lead < 0 or any(n != 1 and n != m for n, m in zip(shape, big[lead:])):
        return None
    return tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and big[lead + i] != 1)
