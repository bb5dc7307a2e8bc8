"""A teacher adds an exercise in a few lines; check, show, the CLI and grading then work for it unchanged."""

import functools
import textwrap

import numpy as np
import pytest
from conftest import run_cli

import tinygraph as tg
from tinygraph import exercises as ex

RESIDUAL = '''
import tinygraph as tg

def residual(x, w, b):
    """y = x + tanh(x @ w + b): a residual block."""
    h = x @ w + b
    h.name = "h"
    return x + h.tanh()

tg.exercises.register("residual_backward", residual, inputs={"x": (4, 3), "w": (3, 3), "b": (3,)},
                      paths_through=("h",), title="a residual block")
'''


def residual_backward(dout, x, w, b):
    dh = dout * (1 - np.tanh(x @ w + b) ** 2)
    return dout + dh @ w.T, x.T @ dh, dh.sum(axis=0)


def residual_direct_only(dout, x, w, b):
    dx, dw, db = residual_backward(dout, x, w, b)
    return dout, dw, db


def residual_through_h_only(dout, x, w, b):
    dx, dw, db = residual_backward(dout, x, w, b)
    return dx - dout, dw, db


@pytest.fixture
def teacher_file(tmp_path):
    """The teacher's file, registered in this process; the catalogue is restored afterwards."""
    path = tmp_path / "my_exercises.py"
    path.write_text(RESIDUAL)
    before = dict(ex.EXERCISES)
    yield path
    ex.EXERCISES.clear()
    ex.EXERCISES.update(before)


@pytest.fixture
def residual(teacher_file):
    assert ex.load_exercises(teacher_file) == ["residual_backward"]
    return functools.partial(ex.check, "residual_backward", seed=0)


def test_show_gives_signature_source_and_shapes(residual):
    text = ex.show("residual_backward")
    assert text.startswith("residual_backward: a residual block")
    assert "def residual_backward(dout, x, w, b):" in text and "return dx, dw, db" in text
    assert "h = x @ w + b" in text  # the forward's own source
    assert "x: shape (4, 3); w: shape (3, 3); b: shape (3,)" in text
    assert "the direct path and the path through h" in text


def test_right_answer_passes_and_missing_paths_are_named(residual):
    assert residual(residual_backward).passed
    result = residual(residual_direct_only)
    assert "Your dx matches the direct path only; it lacks the path through h." in result.feedback
    result = residual(residual_through_h_only)
    assert "Your dx matches the path through h only; it lacks the direct path." in result.feedback
    result = residual(lambda dout, x, w, b: (residual_backward(dout, x, w, b)[0], *residual_backward(
        dout, x, w, b)[1:][::-1]))
    assert "dw should have shape (3, 3), yours has shape (3,)" in result.feedback


def _autograd_residual(dout, x, w, b):
    nodes = [tg.Node(v) for v in (x, w, b)]
    h = nodes[0] @ nodes[1] + nodes[2]
    (nodes[0] + h.tanh()).backward(dout)
    return tuple(n.grad for n in nodes)


def test_autograd_is_refused_unless_the_exercise_allows_it(residual):
    result = residual(_autograd_residual)
    assert not result.passed
    assert "uses tinygraph's autograd (backward())" in result.feedback
    assert "the formula written by hand" in result.feedback
    base = ex.EXERCISES["residual_backward"]
    ex.register("residual_autograd", base.forward, inputs={"x": (4, 3), "w": (3, 3), "b": (3,)},
                allow_autograd=True)
    assert ex.check("residual_autograd", _autograd_residual, seed=0).passed


def test_lists_pass_only_where_allowed(teacher_file):
    def scale(x):
        return x * 3.0
    ex.register("scale_backward", scale, inputs={"x": (3,)})
    as_list = ex.check("scale_backward", lambda dout, x: [3.0 * d for d in dout], seed=0)
    assert not as_list.passed
    assert "dx is a Python list; return a numpy array of shape (3,)" in as_list.feedback
    ex.register("scale_backward", scale, inputs={"x": (3,)}, allow_lists=True)
    assert ex.check("scale_backward", lambda dout, x: [3.0 * d for d in dout], seed=0).passed


@pytest.mark.parametrize("args, kwargs, message", [
    (("no name", lambda x: x, {"x": (3,)}), {}, "must be a Python function name"),
    (("f", lambda x: x, {"x": (3, -1)}), {}, "shape of input 'x' must be positive whole numbers"),
    (("f", lambda x: x, {"x": "big"}), {}, "must be a shape tuple such as (4, 3) or a number"),
    (("f", lambda x, eps: x, {"x": (3,), "eps": 1e-5}), {"grads": ("eps",)}, "grads must name array inputs (x)"),
    (("f", lambda x: x, {"x": (3,)}), {"params": ("x",)}, "params must list 'dout'"),
])
def test_register_names_what_is_wrong(teacher_file, args, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ex.register(*args, **kwargs)


def test_register_needs_a_forward_function(teacher_file):
    with pytest.raises(TypeError, match="forward must be a function building the computation, got int"):
        ex.register("f", 3, {"x": (3,)})


def test_register_shows_the_teachers_own_error(teacher_file):
    def broken(x):
        return x @ np.ones((5, 5))
    with pytest.raises(ValueError, match="broken_backward: forward failed on random inputs .*matmul"):
        ex.register("broken_backward", broken, inputs={"x": (3,)})
    assert "broken_backward" not in ex.names()


# -- from the command line ---------------------------------------------------------------------




def test_cli_exercises_file_check_and_grade(capsys, teacher_file, tmp_path):
    good = tmp_path / "good.py"
    good.write_text("import numpy as np\n\n" + textwrap.dedent('''
        def residual_backward(dout, x, w, b):
            dh = dout * (1 - np.tanh(x @ w + b) ** 2)
            return dout + dh @ w.T, x.T @ dh, dh.sum(axis=0)
    '''))
    code, out, _ = run_cli(capsys, "exercise", "list", "--exercises", str(teacher_file))
    assert code == 0 and ["residual_backward", "a", "residual", "block"] in [line.split() for line in out.splitlines()]
    code, out, err = run_cli(capsys, "exercise", "check", "residual_backward", str(good),
                             "--exercises", str(teacher_file))
    assert code == 0, err
    assert out.startswith("PASS residual_backward: dx, dw and db match autograd")
    code, out, _ = run_cli(capsys, "exercise", "grade", "residual_backward", str(good),
                           "--exercises", str(teacher_file))
    assert code == 0 and "1 of 1 passed." in out


def test_cli_unknown_exercise_and_broken_exercises_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "exercise", "check", "residual_backward", "answer.py")
    assert code == 2 and "no exercise named 'residual_backward'; the exercises are: mean_triangle" in err
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('oops')\n")
    code, _, err = run_cli(capsys, "exercise", "list", "--exercises", str(broken))
    assert code == 2 and "--exercises: " in err and "RuntimeError: oops" in err
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    code, _, err = run_cli(capsys, "exercise", "list", "--exercises", str(empty))
    assert code == 2 and "registers no exercise" in err
