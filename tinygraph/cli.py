"""The `tinygraph` command: draw example graphs and run the classroom exercises from a shell.

    tinygraph demo triangle --out triangle.png
    tinygraph demo batchnorm --out bn.png --fanout
    tinygraph demo layernorm --steps --out ln.html
    tinygraph exercise list
    tinygraph exercise show mean_triangle
    tinygraph exercise check mean_triangle my_answer.py

Exit codes: 0 success (or a passed check), 1 a failed check or a drawing that
could not be made, 2 a usage error or a file/function that cannot be loaded.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import uuid
from pathlib import Path
from typing import Callable

import numpy as np

from . import exercises
from .core import Node
from .nn import functional as F
from .render import draw
from .stepper import stepper

# -- demo graphs ---------------------------------------------------------------------------


def _triangle() -> tuple[Node, np.ndarray]:
    x = Node([1.0, 2.0, 6.0], name="x")
    mu = F.named(x.mean(), "mu")
    return F.named(x - mu, "xc"), np.array([1.0, 2.0, 3.0])


def _layernorm() -> tuple[Node, np.ndarray]:
    x = Node([1.0, 2.0, 4.0, 7.0], name="x")
    y = F.layer_norm(x, Node([1.0, 0.5, 2.0, 1.0], name="weight"), Node(np.zeros(4), name="bias"))
    return y, np.array([0.5, -1.0, 0.25, 1.0])


def _batchnorm() -> tuple[Node, np.ndarray]:
    x = Node([[1.0, -2.0], [3.0, 0.0], [8.0, 1.0]], name="x")
    y = F.batch_norm(x, Node([1.0, 2.0], name="weight"), Node([0.0, 0.5], name="bias"))
    return y, np.array([[0.5, -1.0], [1.0, 0.25], [-0.5, 2.0]])


def _rmsnorm() -> tuple[Node, np.ndarray]:
    x = Node([1.0, -2.0, 3.0, 0.5], name="x")
    y = F.rms_norm(x, Node([1.0, 0.5, 2.0, 1.0], name="weight"))
    return y, np.array([0.5, -1.0, 0.25, 1.0])


DEMOS: dict[str, tuple[str, Callable[[], tuple[Node, np.ndarray]]]] = {
    "layernorm": ("layer norm of 4 values (the path through mu and through var)", _layernorm),
    "batchnorm": ("batch norm of a (3, 2) batch, statistics over axis 0", _batchnorm),
    "rmsnorm": ("RMSNorm of 4 values: x reaches xhat directly and through ms", _rmsnorm),
    "triangle": ("xc = x - mean(x): the 'triangle' x -> mu -> xc, x -> xc", _triangle),
}


PICTURES = ("png", "svg", "jpg", "jpeg")


def _demo(args: argparse.Namespace) -> int:
    problem = _demo_output_problem(args)
    if problem:
        return _fail(2 if problem.startswith("--") else 1, f"demo {args.name}: {problem}")
    _, build = DEMOS[args.name]
    root, dout = build()
    try:
        if args.steps:
            print(stepper(root, args.out, grad=dout, rankdir=args.rankdir))
        else:
            root.backward(dout)
            print(draw(root, args.out, format=args.format, rankdir=args.rankdir, highlight_fanout=args.fanout))
    except (ValueError, RuntimeError, OSError) as exc:  # OSError: a read-only disk
        return _fail(1, f"demo {args.name}: {exc}")
    return 0


def _demo_output_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with --out / --format / --steps / --fanout together, in shell terms; None if nothing.

    A message starting with "--" is a usage error (exit 2); a missing folder is not (exit 1).
    """
    out = Path(args.out)
    ext = out.suffix[1:].lower()
    if args.steps:
        if args.format or args.fanout:
            return f"--steps writes an HTML page; leave out {'--format' if args.format else '--fanout'}"
        if ext not in ("html", "htm"):
            return f"--steps writes an HTML page: give --out {out.stem or 'steps'}.html"
    elif args.format and ext and ext != args.format and ext in PICTURES:
        return (f"--out {args.out} ends in .{ext} but --format {args.format} was given: "
                f"use --out {out.with_suffix('.' + args.format)}, or leave out --format")
    elif not args.format and ext not in PICTURES:
        said = f"ends in .{ext}" if ext else "has no extension"
        return (f"--out {args.out} {said}; pictures are .png, .svg or .jpg (or add --format png), "
                "and --steps writes an .html page")
    if not out.parent.is_dir():
        return f"folder {str(out.parent)!r} does not exist; create it first: mkdir -p {out.parent}"
    return None


# -- exercises -------------------------------------------------------------------------------


def _exercise_list(args: argparse.Namespace) -> int:
    width = max(map(len, exercises.names()))
    for name in exercises.names():
        print(f"{name:<{width}}  {exercises.EXERCISES[name].title}")
    return 0


def _exercise_show(args: argparse.Namespace) -> int:
    print(exercises.show(args.name))
    return 0


def _load(name: str, path: str, timeout: float) -> Callable:
    """The function `name` from the file at `path`; raises `_LoadError` saying why not.

    The file runs under the same time limit as each call of the function.
    """
    file = Path(path)
    if not file.is_file():
        raise _LoadError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"_tinygraph_answer_{uuid.uuid4().hex}", file)
    if spec is None or spec.loader is None:
        raise _LoadError(f"cannot load {path} as Python (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    loading = exercises.call_with_time_limit(spec.loader.exec_module, (module,), timeout)
    if loading.printed:
        print(loading.printed, end="")
    exc = loading.error
    if loading.timed_out:
        raise _LoadError(f"{path} did not finish loading within {timeout:g} s (a loop at the top level?)")
    if isinstance(exc, SyntaxError):
        raise _LoadError(f"{path} has a syntax error at line {exc.lineno}: {exc.msg}")
    if exc is not None:
        raise _LoadError(f"{path} failed while loading: {type(exc).__name__}: {exc}")
    fn = getattr(module, name, None)
    if fn is None:
        defined = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                         and getattr(v, "__module__", None) == module.__name__)
        found = f" (it defines: {', '.join(defined)})" if defined else ""
        signature = exercises.EXERCISES[name].signature
        raise _LoadError(f"{path} defines no function named {name}{found}; write `{signature}`")
    if not callable(fn):
        raise _LoadError(f"{name} in {path} is not a function: it is {fn!r} (type {type(fn).__name__})")
    return fn


class _LoadError(Exception):
    pass


def _exercise_check(args: argparse.Namespace) -> int:
    try:
        fn = _load(args.name, args.file, args.timeout)
    except _LoadError as exc:
        return _fail(2, f"exercise check: {exc}")
    result = exercises.check(args.name, fn, timeout=args.timeout)
    print(result)
    return 0 if result.passed else 1


# -- the parser ------------------------------------------------------------------------------


def _fail(code: int, message: str) -> int:
    print(f"tinygraph: {message}", file=sys.stderr)
    return code


def _exercise_name(parser: argparse.ArgumentParser) -> None:
    names = exercises.names()
    parser.add_argument("name", choices=names, metavar="NAME", help="one of: " + ", ".join(names))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygraph",
        description="Draw computational graphs with their gradients, and practise backward passes by hand.",
        epilog="examples:\n"
               "  tinygraph demo triangle --out triangle.png\n"
               "  tinygraph demo batchnorm --out bn.png --fanout\n"
               "  tinygraph demo layernorm --steps --out ln.html\n"
               "  tinygraph exercise show layernorm_backward\n"
               "  tinygraph exercise check layernorm_backward answer.py",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo", help="build an example graph, run backward and draw it",
        description="Build an example graph, run the backward pass with a fixed upstream gradient\n"
                    "and draw it: forward values in black, gradients in red.",
        epilog="demos:\n" + "\n".join(f"  {name:<10} {text}" for name, (text, _) in DEMOS.items())
               + "\n\nexamples:\n  tinygraph demo batchnorm --out bn.png --fanout\n"
                 "  tinygraph demo layernorm --out ln.svg --rankdir TB\n"
                 "  tinygraph demo layernorm --steps --out ln.html",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("name", choices=list(DEMOS), metavar="NAME", help="one of: " + ", ".join(DEMOS))
    demo.add_argument("--out", metavar="FILE", required=True,
                      help="the file to write: a picture (its extension sets the format) or, with --steps, a page")
    demo.add_argument("--format", choices=["png", "svg"], help="the picture format, overriding the extension")
    demo.add_argument("--rankdir", choices=["LR", "TB"], default=None,
                      help="LR left to right or TB top to bottom (default: whichever keeps the picture "
                           "within 1:3..3:1)")
    demo.add_argument("--fanout", action="store_true",
                      help="colour every value used along two or more paths in blue and list each gradient "
                           "it received above their sum")
    demo.add_argument("--steps", action="store_true",
                      help="write the backward pass as a step-through HTML page (--out ln.html) instead of a picture")
    demo.set_defaults(run=_demo)

    exercise = commands.add_parser(
        "exercise", help="list, show and check the classroom exercises",
        description="Classroom exercises: write a backward pass by hand and check it against autograd.")
    actions = exercise.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="the exercise names", description="List the exercises.").set_defaults(
        run=_exercise_list)
    show = actions.add_parser("show", help="the task: what to compute and the function to write",
                              description="Show an exercise: the task, the function signature and the shapes.")
    _exercise_name(show)
    show.set_defaults(run=_exercise_show)
    check = actions.add_parser(
        "check", help="check your answer in FILE.py",
        description="Load the function NAME from FILE.py and compare it with autograd on random inputs.",
        epilog="exit status: 0 passed, 1 failed (the feedback says why), 2 FILE.py or the function cannot be loaded")
    _exercise_name(check)
    check.add_argument("file", metavar="FILE.py", help="a Python file that defines a function called NAME")
    check.add_argument("--timeout", type=float, default=5.0, metavar="S",
                       help="seconds each call may take (default 5)")
    check.set_defaults(run=_exercise_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):  # `tinygraph` alone: the help, with examples
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    return args.run(args)
