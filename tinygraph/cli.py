"""The `tinygraph` command: draw example graphs and run the classroom exercises from a shell.

    tinygraph demo triangle --out triangle.png
    tinygraph demo batchnorm --out bn.png --fanout
    tinygraph demo layernorm --steps --out ln.html
    tinygraph exercise list
    tinygraph exercise show mean_triangle
    tinygraph exercise check mean_triangle my_answer.py
    tinygraph exercise grade layernorm_backward submissions/ --gradescope results.json

Exit codes: 0 success (or a passed check), 1 a failed check or a drawing that
could not be made, 2 a usage error or a file/function that cannot be loaded.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import __version__, exercises
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


def _load_teacher_exercises(args: argparse.Namespace) -> str | None:
    """Load --exercises FILE, if given; the error message, or None."""
    if getattr(args, "exercises", None):
        try:
            exercises.load_exercises(args.exercises)
        except ValueError as exc:
            return f"--exercises: {exc}"
    return None


def _exercise_command(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Load --exercises, check NAME, then run the exercise subcommand."""
    def command(args: argparse.Namespace) -> int:
        who = f"exercise {args.action}"
        problem = _load_teacher_exercises(args)
        if problem:
            return _fail(2, f"{who}: {problem}")
        if getattr(args, "name", None) is not None and args.name not in exercises.EXERCISES:
            return _fail(2, f"{who}: no exercise named {args.name!r}; the exercises are: "
                            f"{', '.join(exercises.names())}")
        return run(args)
    return command


def _exercise_list(args: argparse.Namespace) -> int:
    width = max(map(len, exercises.names()))
    for name in exercises.names():
        print(f"{name:<{width}}  {exercises.EXERCISES[name].title}")
    return 0


def _exercise_show(args: argparse.Namespace) -> int:
    print(exercises.show(args.name))
    return 0


def _exercise_check(args: argparse.Namespace) -> int:
    result, problem = exercises.check_file(args.name, args.file, seed=args.seed, show_output=args.show_output,
                                           timeout=args.timeout)
    if result is None:
        return _fail(2, f"exercise check: {problem}")
    print(result)
    return 0 if result.passed else 1


def _progress(done: int, total: int) -> None:
    """A progress bar on a terminal's stderr; nothing when stderr is a file or a pipe."""
    if sys.stderr.isatty():
        filled = 30 * done // total
        end = "\n" if done == total else ""
        print(f"\rgrading [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}", end=end, file=sys.stderr,
              flush=True)


def _exercise_grade(args: argparse.Namespace) -> int:
    outputs = [(flag, path) for flag, path in
               (("--json", args.json), ("--csv", args.csv), ("--gradescope", args.gradescope)) if path]
    for flag, path in outputs:
        if not Path(path).resolve().parent.is_dir():
            return _fail(2, f"exercise grade: {flag} {path}: the folder {Path(path).parent} does not exist")
    try:
        files = exercises.grading.submissions(args.paths)
    except ValueError as exc:
        return _fail(2, f"exercise grade: {exc}")
    if not files:
        return _fail(2, f"exercise grade: no .py files in {' '.join(args.paths)}")
    rows = exercises.grade(args.name, files, jobs=args.jobs, timeout=args.timeout, seed=args.seed,
                           progress=_progress)
    print(exercises.grading.table(rows, width=max(100, shutil.get_terminal_size((120, 24)).columns)))
    writers = {"--json": exercises.grading.write_json, "--csv": exercises.grading.write_csv,
               "--gradescope": exercises.grading.write_gradescope}
    for flag, path in outputs:
        try:
            writers[flag](args.name, rows, path)
        except OSError as exc:
            return _fail(1, f"exercise grade: cannot write {flag} {path}: {exc.strerror or exc}")
        print(f"wrote {path}")
    return 0


def _seconds(text: str) -> float:
    """--timeout: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, such as 5 or 0.5; got {text!r}")
    return value


def _count(what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < (1 if what == "jobs" else 0):
            raise argparse.ArgumentTypeError(
                f"must be a whole number {'of 1 or more' if what == 'jobs' else '0 or more'}; got {text!r}")
        return value
    return parse


def _add_exercise_commands(commands: argparse._SubParsersAction) -> None:
    exercise = commands.add_parser(
        "exercise", help="list, show, check and grade the classroom exercises",
        description="Classroom exercises: write a backward pass by hand and check it against autograd.")
    actions = exercise.add_subparsers(dest="action", metavar="ACTION", required=True)
    teacher = argparse.ArgumentParser(add_help=False)
    teacher.add_argument("--exercises", metavar="FILE",
                         help="a Python file of your own exercises (calls tg.exercises.register)")
    names = "an exercise name (tinygraph exercise list shows them)"
    actions.add_parser("list", help="the exercise names", description="List the exercises.",
                       parents=[teacher]).set_defaults(run=_exercise_command(_exercise_list))
    show = actions.add_parser("show", help="the task: what to compute and the function to write", parents=[teacher],
                              description="Show an exercise: the task, the function signature and the shapes.")
    show.add_argument("name", metavar="NAME", help=names)
    show.set_defaults(run=_exercise_command(_exercise_show))

    running = argparse.ArgumentParser(add_help=False, parents=[teacher])
    running.add_argument("--timeout", type=_seconds, default=5.0, metavar="S",
                         help="seconds each call of the function (and loading the file) may take (default 5)")
    running.add_argument("--seed", type=_count("seed"), default=None, metavar="N",
                         help="the seed of the random inputs, to repeat a run (default: fresh inputs)")
    check = actions.add_parser(
        "check", help="check your answer in FILE.py", parents=[running],
        description="Load the function NAME from FILE.py in a child process (with a time and a memory limit)\n"
                    "and compare it with autograd on random inputs.",
        epilog="exit status: 0 passed, 1 failed (the feedback says why; a run that did not finish normally\n"
               "fails), 2 FILE.py or the function cannot be loaded",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("name", metavar="NAME", help=names)
    check.add_argument("file", metavar="FILE.py", help="a Python file that defines a function called NAME")
    check.add_argument("--show-output", action="store_true", help="show what the function printed")
    check.set_defaults(run=_exercise_command(_exercise_check))

    grade = actions.add_parser(
        "grade", help="grade a class: many answer files at once", parents=[running],
        description="Grade every answer file (files, or folders of .py files): one child process each,\n"
                    "several at once. Prints a table; --json, --csv and --gradescope write the results.",
        epilog="exit status: 0 when every submission was graded (whatever the scores), 2 bad arguments\n"
               "example: tinygraph exercise grade layernorm_backward submissions/ --gradescope results.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    grade.add_argument("name", metavar="NAME", help=names)
    grade.add_argument("paths", metavar="PATH", nargs="+", help="an answer file, or a folder of them")
    grade.add_argument("--json", metavar="FILE", help="write every result, with its full feedback, as JSON")
    grade.add_argument("--csv", metavar="FILE", help="write one row per submission as CSV")
    grade.add_argument("--gradescope", metavar="FILE",
                       help="write Gradescope's autograder results.json (one test per file)")
    grade.add_argument("--jobs", type=_count("jobs"), default=None, metavar="N",
                       help="how many submissions run at once (default: the number of cores)")
    grade.set_defaults(run=_exercise_command(_exercise_grade))


# -- the parser ------------------------------------------------------------------------------


def _fail(code: int, message: str) -> int:
    print(f"tinygraph: {message}", file=sys.stderr)
    return code


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
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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

    _add_exercise_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):  # `tinygraph` alone: the help, with examples
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    return args.run(args)
