"""The engine: `Node`, the `op` decorator that records operations, and the backward pass.

Reverse-mode autodiff in three ideas, each in one place below:

* a `Node` holds a value (`.data`, a float64 ndarray, 0-d for a scalar), the
  nodes it was made from (`.parents`) and a vector-Jacobian product (vjp);
* `@op` turns `forward(*arrays) -> (y, vjp)` into an operation on Nodes;
* `propagate` visits the nodes in reverse topological order: each node hands
  its gradient to its vjp, and each parent adds what it receives.

A pass keeps its state in local variables and writes `.grad` only when it has
run to its end, so a pass abandoned half-way changes nothing. A graph holds no
reference cycles (vjps close over values, never over Nodes), so it is freed as
soon as its root is dropped. Presentation (labels, formulas, `Step`) lives in
`steps.py`.
"""

from __future__ import annotations

import copy
import gc
import inspect
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .formatting import summary

_FLOAT64 = np.dtype(np.float64)
_scope = ""  # "outer/inner" while inside `with scope(...)`
_anomaly = False  # set by `detect_anomaly()`
_open_passes: dict[int, dict] = {}  # the gradients-so-far of passes under way, by id (see `Node.grad`)


class Node:
    """A value in a computational graph: a float64 scalar (0-d) or numpy tensor.

    A leaf is made by the user (`Node([1., 2.], name="x")`); every other Node is the
    output of an op and remembers its `op`, its `parents` (inputs in argument order,
    repeats kept) and its vjp, which sends a gradient back to them.
    """

    __slots__ = ("_data", "_grad", "_grad_shared", "vjp", "_sent", "_received",
                 "parents", "op", "operation", "name", "attrs", "scope", "is_constant", "__weakref__")

    def __init__(self, data: Any, name: str | None = None) -> None:
        if isinstance(data, Node):
            raise TypeError("Node() got a Node; to start a new leaf with the same values use tg.Node(x.data)")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"Node name must be a str or None, got {type(name).__name__}")
        _make(self, as_array(data, "Node data", copy=True), name=name)

    # -- values -----------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        """The forward value: a float64 ndarray (0-d for a scalar), writable in place."""
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        new = as_array(value, "Node data", copy=True)
        if new.shape != self.shape:
            raise ValueError(f"cannot set data of shape {new.shape} on a node of shape {self.shape}")
        self._data = new

    @property
    def grad(self) -> np.ndarray:
        """d(root)/d(this node), summed over every backward pass since the last zero_grad.

        Zeros (a new array each time) before any pass. While `backward_steps` is
        paused, this also counts what has arrived so far in that pass.
        """
        if self._grad is None:
            grad = np.zeros(self.shape)
        else:
            if self._grad_shared or type(self._grad) is not np.ndarray:
                # a pass may hand one array to several nodes, or a numpy scalar: take an array of our own
                self._grad, self._grad_shared = np.array(self._grad, dtype=np.float64), False
            grad = self._grad
        arrived = [pending[self] for pending in _open_passes.values() if self in pending]
        return np.asarray(grad + sum(arrived)) if arrived else grad

    @grad.setter
    def grad(self, value: Any) -> None:
        if value is None:
            self._grad = None
            return
        new = as_array(value, "grad", copy=True)
        if new.shape != self.shape:
            raise ValueError(f"cannot set a grad of shape {new.shape} on a node of shape {self.shape}")
        self._grad, self._grad_shared = new, False

    @property
    def contributions(self) -> list[tuple[Node | None, np.ndarray]]:
        """(consumer, gradient) for each edge that sent gradient here in the latest pass, in arrival order.

        A consumer that has since been freed shows as None; its gradient is kept.
        """
        return [(sender(), np.array(g, dtype=np.float64)) for sender, g in self._received]

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return self._data.size

    def item(self) -> float:
        if self.size != 1:
            raise ValueError(f"item() needs a node with one element; this one has shape {self.shape}")
        return float(self._data.reshape(()))

    # -- backward ---------------------------------------------------------------
    def backward(self, grad: Any = None) -> None:
        """Add d(self)/d(node) to `.grad` of every node this one depends on.

        The same pass as `backward_steps(self, grad)` run to its end. The cycle
        collector is paused meanwhile: the pass makes no reference cycles, and a
        large graph would otherwise be re-scanned several times.
        """
        collecting = gc.isenabled()
        gc.disable()
        try:
            commit(list(propagate(self, seed(self, grad))))
        finally:
            if collecting:
                gc.enable()

    def zero_grad(self) -> None:
        """Reset `.grad` and `.contributions` of every node reachable from this one."""
        for node in topological(self):
            node._grad, node._sent, node._received = None, (), ()

    def __repr__(self) -> str:
        label = repr(self.name) if self.name is not None else ("constant" if self.is_constant else "")
        op = self.op or "leaf"
        if self.attrs:
            op += "(" + ", ".join(f"{k}={v!r}" for k, v in self.attrs.items()) + ")"
        head = " ".join(part for part in ("Node", label, op) if part)
        return f"<{head} shape={self.shape} data={summary(self._data)} grad={summary(self.grad)}>"

    # -- copies and pickles -----------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Value, gradient and graph; not the record of the latest backward pass."""
        return {k: getattr(self, k) for k in _KEPT_STATE}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self._sent, self._received = (), ()

    def __deepcopy__(self, memo: dict) -> Node:
        """Copy the graph parents first, so that each copy finds its parents' copies in `memo`
        (the default deepcopy would recurse once per level of the graph)."""
        for node in topological(self):
            if id(node) not in memo:
                new = memo[id(node)] = Node.__new__(Node)
                new.__setstate__(copy.deepcopy(node.__getstate__(), memo))
        return memo[id(self)]


_KEPT_STATE = ("_data", "_grad", "_grad_shared", "vjp", "parents", "op", "operation", "name", "attrs", "scope",
               "is_constant")


def _make(node: Node, data: np.ndarray, parents: tuple = (), vjp: Callable | None = None,
          operation: Op | None = None, attrs: dict | None = None, name: str | None = None,
          constant: bool = False) -> Node:
    """Fill in a new node's fields: the one place a Node, leaf or op output, is set up."""
    node._data = data
    node._grad, node._sent, node._received = None, (), ()
    node._grad_shared = False
    node.vjp = vjp
    node.parents = parents
    node.operation = operation
    node.op = operation.name if operation else ""
    node.attrs = attrs or {}
    node.name = name
    node.scope = _scope
    node.is_constant = constant
    return node


def as_array(value: Any, where: str, what: str = "", copy: bool = False) -> np.ndarray:
    """A user's number, list or array as a float64 ndarray: the one way values enter the engine.

    `copy=True` promises the caller's array is never shared (so never changed).
    Errors name the value as "{where}'s {what}" ("add's forward value"), or `where` alone.
    """
    if type(value) is np.ndarray and value.dtype is _FLOAT64:
        return value.copy() if copy else value
    if type(value) is np.float64:  # what numpy arithmetic on 0-d values returns
        return np.array(value)
    what = f"{where}'s {what}" if what else where
    if isinstance(value, (str, bytes, dict, set)) or value is None:
        raise TypeError(f"{what} must be a number, list of numbers or array, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except ValueError as exc:
        raise TypeError(f"{what} must be a number, list of numbers or array, got a {type(value).__name__}"
                        f" that numpy cannot read ({exc})") from None
    if arr.dtype.kind not in "biuf":
        kind = f"an ndarray of dtype {arr.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
        raise TypeError(f"{what} must be real numbers, got {kind} (numpy reads it as {arr.dtype})")
    return arr.astype(np.float64, copy=copy)


def constant(value: Any) -> Node:
    """A leaf for a plain number or array used as an op input (`2` in `2 * x`)."""
    if isinstance(value, Node):
        return value
    return _make(Node.__new__(Node), as_array(value, "an op input", copy=True), constant=True)


def topological(root: Node) -> list[Node]:
    """Every node `root` depends on, each once, parents before children.

    The one graph walk: a depth-first search with an explicit stack (no recursion,
    so a graph a million nodes deep is fine). A node is placed in the list once
    all its parents are: the `_PLACE` mark under its parents on the stack comes
    up when they are done.
    """
    order: list[Node] = []
    seen = set()
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if node is _PLACE:
            order.append(stack.pop())
        elif node not in seen:
            seen.add(node)
            stack += (node, _PLACE)
            stack += node.parents[::-1]  # the first parent on top: explored first
    return order


_PLACE = object()


# -- defining ops ---------------------------------------------------------------

class Op:
    """An operation on Nodes, made by `@op` from `forward(*inputs, **settings) -> (y, vjp)`.

    Its settings belong to it alone: `name` (what `node.op` says), `formula` (how
    captions and drawings write it, e.g. "{0} + {1}") and `broadcast`. `forward`
    is the rule as a textbook writes it; `faster`, if an op has one, computes the
    same with fewer temporary arrays and is what calls use (tests compare the two).
    """

    def __init__(self, forward: Callable, name: str, formula: str | Callable | None, broadcast: bool) -> None:
        self.forward = forward
        self.faster: Callable | None = None
        self.name = name
        self.formula = formula
        self.broadcast = broadcast
        params = inspect.signature(forward).parameters.values()
        self.n_inputs = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        self.setting_names = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
        self.defaults = {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY and p.default is not p.empty}
        self.__doc__ = forward.__doc__
        self.__wrapped__ = forward

    def __call__(self, *args: Any, **settings: Any) -> Node:
        if len(args) != self.n_inputs:
            args, settings = self._bind(args, settings)
        parents = tuple([a if isinstance(a, Node) else constant(a) for a in args])
        try:
            y, vjp = (self.faster or self.forward)(*[p._data for p in parents], **settings)
        except ValueError as exc:
            shapes = " and ".join(str(p.shape) for p in parents)
            given = "".join(f", {k}={v!r}" for k, v in settings.items())
            raise ValueError(f"{self.name}: cannot apply to inputs of shape {shapes}{given}: {exc}") from None
        out = _make(Node.__new__(Node), as_array(y, self.name, "forward value"), parents, vjp, self, settings)
        if _anomaly and not np.all(np.isfinite(out._data)):
            raise FloatingPointError(f"{_where(out)} produced a non-finite value {summary(out._data)} "
                                     f"from inputs {', '.join(summary(p._data) for p in parents)}")
        return out

    def _bind(self, args: tuple, settings: dict) -> tuple[tuple, dict]:
        """Let extra positional arguments fill settings in order, as numpy does: `sum(x, 0)`."""
        extra = args[self.n_inputs:]
        if len(args) < self.n_inputs or len(extra) > len(self.setting_names):
            raise TypeError(f"{self.name} takes {self.n_inputs} input(s), got {len(args)} positional arguments")
        for key, value in zip(self.setting_names, extra):
            if key in settings:
                raise TypeError(f"{self.name} got {key!r} twice")
            settings[key] = value
        return args[:self.n_inputs], settings

    def faster_variant(self, fn: Callable) -> Op:
        """Decorator: `fn` computes what `forward` does (same inputs, same results) with less work."""
        self.faster = fn
        return self

    def __get__(self, node: Node | None, owner: type) -> Any:
        """Act as a method too: `Node.exp = exp` makes `x.exp()` call `exp(x)`."""
        return self if node is None else lambda *args, **settings: self(node, *args, **settings)

    def __repr__(self) -> str:
        return f"<tinygraph op {self.name!r}>"

    def __deepcopy__(self, memo: dict) -> Op:
        return self  # an op is a definition, shared by every copy of a graph


def op(fn: Callable | None = None, *, name: str | None = None, formula: str | Callable | None = None,
       broadcast: bool = False) -> Any:
    """Turn `forward(*inputs, **settings) -> (y, vjp)` into an `Op` on Nodes.

    `vjp(g)` receives the gradient of the output and returns one gradient per
    positional input (`None` for "no gradient"). Positional arguments of the op
    are its inputs; keyword arguments are settings, recorded in `node.attrs`.
    `formula` ("{0} + {1}", or a function of the parents' labels and the
    settings) tells captions and drawings how to write the op. `broadcast=True`
    says the inputs broadcast against each other as in numpy: the vjp may return
    a gradient in the broadcast shape and the engine sums it down to the input's.
    """
    if fn is None:
        return lambda f: Op(f, name or f.__name__, formula, broadcast)
    return Op(fn, name or fn.__name__, formula, broadcast)


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


def _where(node: Node) -> str:
    where = f"{node.op or 'leaf'} node" + (f" {node.name!r}" if node.name else "")
    return where + (f" in scope {node.scope!r}" if node.scope else "")


# -- the backward pass ---------------------------------------------------------------

def propagate(root: Node, root_grad: np.ndarray) -> Iterator[tuple[Node, np.ndarray, list]]:
    """The backward pass: yields (node, its gradient, what its vjp sent) after each node's turn.

    Nodes come consumers first, so by a node's turn every path from it to the
    root has delivered its part, and its gradient is complete. Only this pass's
    gradients flow (nothing is read from `.grad`), and nothing is written to the
    nodes: `commit` does that once the pass is over.
    """
    grads = {root: root_grad}  # this pass's gradient of each node reached so far
    _open_passes[id(grads)] = grads  # so that `.grad` can show it while the pass is paused
    try:
        for node in reversed(topological(root)):  # consumers before producers
            g = grads.get(node)
            if g is None:  # no path leads from this node to the root
                continue
            sent = checked_grads(node.vjp(g), node) if node.vjp else []  # a leaf has no vjp: it only receives
            for parent, g_parent in zip(node.parents, sent):
                if g_parent is not None:  # None: no gradient flows along this edge
                    grads[parent] = grads[parent] + g_parent if parent in grads else g_parent
            yield node, g, sent
    finally:
        del _open_passes[id(grads)]


def gradients(root: Node, wrt: list[Node], grad: Any = None) -> list[np.ndarray]:
    """d root / d node for each node of `wrt` (zeros where no path leads), from a pass that changes no node."""
    found = {node: g for node, g, _ in propagate(root, seed(root, grad))}
    return [np.array(found[n], dtype=np.float64) if n in found else np.zeros(n.shape) for n in wrt]


def commit(turns: list[tuple[Node, np.ndarray, list]]) -> None:
    """A finished pass counts: add each node's gradient into `.grad`, and keep who sent what.

    Senders are kept by weak reference, so the record makes no reference cycle.
    """
    for node, g, sent in turns:
        if node._grad is None:
            node._grad, node._grad_shared = g, True  # g may reach other nodes too: copied when first read
        else:
            node._grad, node._grad_shared = node._grad + g, False
        node._sent = sent
        node._received = []
    for node, _, sent in turns:  # consumers first: the order in which gradients arrived
        sender = weakref.ref(node)
        for parent, g_parent in zip(node.parents, sent):
            if g_parent is not None:
                parent._received.append((sender, g_parent))


def seed(root: Node, grad: Any) -> np.ndarray:
    """The gradient a pass starts from: d root / d root (ones), or the one given."""
    if not isinstance(root, Node):
        raise TypeError(f"backward needs a Node as root, got {type(root).__name__}")
    if grad is None:
        if root.size != 1:
            raise ValueError(
                f"backward() on a root of shape {root.shape} needs a seed gradient of that shape: "
                f"root.backward(np.ones({root.shape})), or reduce it first, e.g. root.sum().backward()")
        return np.ones(root.shape)
    g = as_array(grad.data if isinstance(grad, Node) else grad, "the seed gradient", copy=True)
    if g.shape != root.shape:
        raise ValueError(f"backward: seed gradient has shape {g.shape} but the root has shape {root.shape}")
    return g


def checked_grads(sent: Any, node: Node) -> list:
    """What `node`'s vjp returned, checked: one gradient per input (None: none along that edge),
    each a float64 array of its input's shape, finite under anomaly mode.

    For an op made with `broadcast=True` a gradient in the broadcast shape is first
    summed down to its input's shape; a vjp of a one-input op may return a lone gradient.
    """
    parents = node.parents
    if type(sent) is not tuple or len(sent) != len(parents):
        sent = _one_per_input(sent, node)
    checked = []
    for parent, g in zip(parents, sent):
        if g is not None:
            if type(g) is not np.float64 and not (type(g) is np.ndarray and g.dtype is _FLOAT64):
                g = as_array(g, node.op, "vjp gradient")  # a number, list, or array of another dtype
            if g.shape != parent._data.shape:
                g = _fit_shape(g, parent, node)
            if _anomaly and not np.all(np.isfinite(g)):
                raise FloatingPointError(f"backward: the gradient sent to {_where(parent)} by {node.op} "
                                         f"is non-finite: {summary(g)}")
        checked.append(g)
    return checked


def _one_per_input(sent: Any, node: Node) -> tuple:
    n = len(node.parents)
    if n == 1 and not isinstance(sent, (tuple, list)):
        return (sent,)
    if not isinstance(sent, (tuple, list)):
        raise TypeError(f"{node.op}: vjp must return a tuple of {n} gradients, got {type(sent).__name__}")
    if len(sent) != n:
        raise ValueError(f"{node.op}: vjp returned {len(sent)} gradients for {n} inputs")
    return tuple(sent)


def _fit_shape(g: np.ndarray, parent: Node, node: Node) -> np.ndarray:
    """A gradient whose shape is not its input's: summed down if the op broadcasts, else an error."""
    shape = parent._data.shape
    if node.operation.broadcast:
        g = sum_to_shape(g, shape)
    if g.shape != shape:
        raise ValueError(f"{node.op}: vjp returned a gradient of shape {g.shape} for input "
                         f"{node.parents.index(parent)} of shape {shape}; each gradient must have its input's shape")
    return g


def sent_along(node: Node) -> list[tuple[int, Node, np.ndarray]]:
    """(argument slot, parent, gradient) for each edge `node` sent gradient along in its latest pass.

    `a * a` gives two entries; an edge whose vjp returned None gives none.
    """
    return [(k, p, g) for k, (p, g) in enumerate(zip(node.parents, node._sent)) if g is not None]


def apply_vjp(node: Node, g: np.ndarray) -> tuple:
    """`node`'s vjp applied to `g`, each gradient checked (None: no gradient), touching no node.

    One turn of the backward pass, for tools that chain vjps on their own (`tg.paths`).
    """
    return tuple(checked_grads(node.vjp(g), node))


def sum_to_shape(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Undo broadcasting: sum `g` (a numpy array or scalar) down to `shape` (unchanged if it has that shape).

    If x of shape (4,) was broadcast against (3, 4), every row used the same x,
    so x's gradient is the sum of the rows' gradients.
    """
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    if lead < 0 or any(n != 1 and n != m for n, m in zip(shape, g.shape[lead:])):
        return g  # not a broadcast of `shape`: the caller reports the mismatch
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return g.sum(axis=axes).reshape(shape)
