"""tinygraph: a small autograd engine for seeing backpropagation.

    import tinygraph as tg
    x = tg.Node([1.0, 2.0, 3.0], name="x")
    y = ((x - x.mean()) ** 2).mean()
    y.backward()
    x.grad
"""

from . import display, exercises, nn, reference  # display: Node, Step, Paths in Jupyter
from .allocator import keep_freed_memory
from .checking import gradcheck, jacobian, numerical_grad, rel_error
from .core import Node, Op, constant, detect_anomaly, op, scope, topological
from .inspection import Explanation, Path, Paths, explain, paths
from .ops import add, div, exp, getitem, log, matmul, mean, mul, neg, pow, relu, reshape, sqrt, sub, tanh, transpose
from .ops import sum_ as sum
from .render import draw, to_dot
from .stepper import stepper
from .steps import Step, backward_steps

__all__ = [
    "Node", "Op", "Step", "op", "scope", "detect_anomaly", "backward_steps", "constant", "topological",
    "add", "sub", "mul", "div", "neg", "pow", "matmul", "sum", "mean", "sqrt", "exp", "log", "tanh", "relu",
    "reshape", "transpose", "getitem",
    "paths", "Path", "Paths", "explain", "Explanation", "numerical_grad", "gradcheck", "jacobian", "rel_error",
    "nn", "reference", "exercises", "display",
    "stepper", "to_dot", "draw", "keep_freed_memory",
]
__version__ = "0.1.0"
