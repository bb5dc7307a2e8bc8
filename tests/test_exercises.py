"""Classroom exercises: right answers pass, each missing path is named, nothing a student does escapes."""

import functools

import numpy as np
import pytest
from conftest import central_diff

import tinygraph as tg
from tinygraph import exercises as ex
from tinygraph.exercises.definition import build, draw_inputs

check = functools.partial(ex.check, seed=0)  # seeded: the same inputs on every run

# -- hand-written solutions (plain numpy, independent of tinygraph) ---------------------------


def _norm_parts(dout, x, weight, eps, axis):
    """dx of layer/batch norm split into the direct path, the path through mu, the path through var."""
    n = x.shape[axis]
    xc = x - x.mean(axis=axis, keepdims=True)
    std = np.sqrt((xc ** 2).mean(axis=axis, keepdims=True) + eps)
    g = dout * weight
    direct = g / std
    via_mu = -np.broadcast_to((g / std).sum(axis=axis, keepdims=True) / n, x.shape)
    via_var = (g * xc).sum(axis=axis, keepdims=True) * -0.5 * std ** -3 * 2 * xc / n
    xhat = xc / std
    dweight = (dout * xhat).reshape(-1, x.shape[-1]).sum(axis=0)
    return {"direct": direct, "mu": via_mu, "var": via_var}, dweight, dout.reshape(-1, x.shape[-1]).sum(axis=0)


def norm_solution(axis, paths=("direct", "mu", "var"), signs=None, dweight_scale=1.0):
    def solve(dout, x, weight, eps):
        parts, dweight, dbias = _norm_parts(dout, x, weight, eps, axis)
        dx = sum((signs or {}).get(p, 1.0) * parts[p] for p in paths)
        return dx, dweight * dweight_scale, dbias
    return solve


def mean_triangle(x, dout):
    return dout - dout.mean()


def rmsnorm_backward(dout, x, weight, eps):
    rms = np.sqrt((x ** 2).mean(axis=-1, keepdims=True) + eps)
    g = dout * weight
    dx = g / rms - x * (g * x).mean(axis=-1, keepdims=True) / rms ** 3
    return dx, (dout * x / rms).sum(axis=0)


def softmax_backward(dout, x):
    y = np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)
    return y * (dout - (dout * y).sum(axis=-1, keepdims=True))


CORRECT = {
    "mean_triangle": mean_triangle,
    "layernorm_backward": norm_solution(-1),
    "batchnorm_backward": norm_solution(0),
    "rmsnorm_backward": rmsnorm_backward,
    "softmax_backward": softmax_backward,
}


# -- the catalogue ---------------------------------------------------------------------------


def test_names_include_the_required_exercises():
    assert {"mean_triangle", "layernorm_backward", "batchnorm_backward"} <= set(ex.names())
    assert len(ex.names()) >= 5
    assert set(CORRECT) == set(ex.names())


@pytest.mark.parametrize("name, signature", [
    ("mean_triangle", "def mean_triangle(x, dout):"),
    ("layernorm_backward", "def layernorm_backward(dout, x, weight, eps):"),
    ("batchnorm_backward", "def batchnorm_backward(dout, x, weight, eps):"),
    ("rmsnorm_backward", "def rmsnorm_backward(dout, x, weight, eps):"),
    ("softmax_backward", "def softmax_backward(dout, x):"),
])
def test_show_states_signature_shapes_and_returns(name, signature):
    text = ex.show(name)
    assert signature in text
    assert "shape" in text and "return " in text
    assert f'tg.exercises.check("{name}"' in text


def test_show_mean_triangle_states_the_task():
    text = ex.show("mean_triangle")
    assert "y = x - mu" in text and "(N,)" in text and "return dx" in text


def test_unknown_exercise_names_the_choices():
    with pytest.raises(ValueError, match="mean_triangle"):
        ex.show("nope")
    with pytest.raises(ValueError, match="layernorm_backward"):
        check("nope", mean_triangle)


@pytest.mark.parametrize("name", list(CORRECT))
def test_expected_answer_is_the_true_gradient(name):
    """The exercise's autograd answer for dx equals central differences of sum(y * dout)."""
    exercise = ex.EXERCISES[name]
    inputs = draw_inputs(exercise, np.random.default_rng(3), 0)
    root, leaves = build(exercise, inputs)
    root.backward(inputs["dout"])

    def loss(x):
        y, _ = build(exercise, {**inputs, "x": x})
        return float(np.sum(y.data * inputs["dout"]))
    np.testing.assert_allclose(leaves["x"].grad, central_diff(loss, inputs["x"]), rtol=1e-6, atol=1e-7)


# -- right answers pass ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CORRECT))
def test_correct_solution_passes(name):
    result = check(name, CORRECT[name])
    assert result.passed, result.feedback
    assert bool(result) and str(result).startswith("PASS")
    assert "worst relative error" in result.feedback


def test_staged_cs231n_backward_passes():
    """The cs231n staged backward, copied by hand (not called from tg.reference), passes."""
    def staged(dout, x, weight, eps):
        n = x.shape[0]
        mu = x.mean(axis=0)
        xmu = x - mu
        var = (xmu ** 2).mean(axis=0)
        sqrtvar = np.sqrt(var + eps)
        ivar = 1 / sqrtvar
        xhat = xmu * ivar
        dxhat = dout * weight
        divar = (dxhat * xmu).sum(axis=0)
        dxmu1 = dxhat * ivar
        dsqrtvar = -divar / sqrtvar ** 2
        dvar = 0.5 * dsqrtvar / sqrtvar
        dsq = np.ones_like(x) * dvar / n
        dxmu2 = 2 * xmu * dsq
        dx1 = dxmu1 + dxmu2
        dmu = -dx1.sum(axis=0)
        dx2 = np.ones_like(x) * dmu / n
        return dx1 + dx2, (dout * xhat).sum(axis=0), dout.sum(axis=0)
    assert check("batchnorm_backward", staged).passed


# -- missing paths are named ------------------------------------------------------------------


@pytest.mark.parametrize("name, axis", [("layernorm_backward", -1), ("batchnorm_backward", 0)])
@pytest.mark.parametrize("keep, has, lacks", [
    (("direct",), "matches the direct path x -> xc -> xhat only", ["the path through mu", "the path through var"]),
    (("direct", "mu"), "the path through mu only", ["lacks the path through var"]),
    (("direct", "var"), "the path through var only", ["lacks the path through mu"]),
    (("mu", "var"), "the path through var only", ["lacks the direct path x -> xc -> xhat"]),
])
def test_norm_missing_paths_are_named(name, axis, keep, has, lacks):
    result = check(name, norm_solution(axis, keep))
    assert not result.passed
    assert result.feedback.startswith("dx is wrong: relative error")
    assert has in result.feedback
    for text in lacks:
        assert text in result.feedback
    assert "dweight" not in result.feedback  # dweight and dbias are right


def test_mean_triangle_direct_path_only():
    result = check("mean_triangle", lambda x, dout: dout)
    assert not result.passed
    assert "matches the direct path x -> y only; it lacks the path through mu" in result.feedback
    assert "1/N" in result.feedback  # the hint for mu


def test_mean_triangle_mean_path_only():
    result = check("mean_triangle", lambda x, dout: np.full_like(x, -dout.mean()))
    assert "matches the path through mu only; it lacks the direct path x -> y" in result.feedback


def test_rmsnorm_and_softmax_missing_paths():
    def rms_direct(dout, x, weight, eps):
        rms = np.sqrt((x ** 2).mean(axis=-1, keepdims=True) + eps)
        return dout * weight / rms, (dout * x / rms).sum(axis=0)
    assert "lacks the path through ms" in check("rmsnorm_backward", rms_direct).feedback

    def softmax_direct(dout, x):
        return dout * np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)
    assert "lacks the path through s" in check("softmax_backward", softmax_direct).feedback


def test_zero_answer_explains_the_triangle():
    result = check("mean_triangle", lambda x, dout: np.zeros_like(x))
    assert "all zeros" in result.feedback and "1 - 1 = 0" in result.feedback


@pytest.mark.parametrize("name, output, says", [
    ("layernorm_backward", 1, "dweight is the sum of dout * xhat over the rows"),
    ("batchnorm_backward", 2, "dbias is the sum of dout over the batch"),
    ("rmsnorm_backward", 1, "dweight is the sum of dout * xhat over the rows, with xhat = x / rms"),
])
def test_zero_parameter_gradient_gets_feedback_about_that_output(name, output, says):
    """The triangle's '1 - 1 = 0' belongs to mean_triangle; an all-zero dweight or dbias hears about itself."""
    right = CORRECT[name]

    def solve(*args):
        outputs = list(right(*args))
        outputs[output] = np.zeros_like(outputs[output])
        return tuple(outputs)
    result = check(name, solve)
    label = ex.EXERCISES[name].outputs[output]
    assert result.feedback.startswith(f"{label} is wrong")
    assert f"Your {label} is all zeros, but the gradient is not." in result.feedback
    assert says in result.feedback
    assert "1 - 1" not in result.feedback and "triangle" not in result.feedback


def test_diagonal_only_is_recognised():
    result = check("mean_triangle", lambda x, dout: dout * (1 - 1 / x.size))
    assert "only the diagonal" in result.feedback


# -- sign, scale, shape --------------------------------------------------------------------------


def test_sign_error_on_one_path():
    result = check("batchnorm_backward", norm_solution(0, signs={"var": -1.0}))
    assert "the path through var has the wrong sign" in result.feedback


def test_whole_answer_with_wrong_sign():
    result = check("mean_triangle", lambda x, dout: dout.mean() - dout)
    assert "points the right way but has the wrong sign" in result.feedback


def test_missing_one_over_n_on_the_mean_path():
    result = check("mean_triangle", lambda x, dout: dout - dout.sum())
    assert "the path through mu is N times too large" in result.feedback


def test_scaled_parameter_gradient():
    result = check("layernorm_backward", norm_solution(-1, dweight_scale=2.0))
    assert result.feedback.startswith("dweight is wrong")
    assert "twice too large" in result.feedback


def test_whole_dx_missing_one_over_n():
    def solve(x, dout):
        return (dout - dout.mean()) * x.size
    assert "N times too large" in check("mean_triangle", solve).feedback


def test_transposed_answer():
    def solve(dout, x, weight, eps):
        dx, dw, db = norm_solution(0)(dout, x, weight, eps)
        return dx.T, dw, db
    result = check("batchnorm_backward", solve)
    assert "dx should have shape (8, 3), yours has shape (3, 8): it is the right answer transposed" in result.feedback


def test_unsummed_parameter_gradient():
    def solve(dout, x, weight, eps):
        dx, dw, db = norm_solution(-1)(dout, x, weight, eps)
        return dx, dw, dout
    result = check("layernorm_backward", solve)
    assert "dbias should have shape (6,), yours has shape (4, 6): sum it over axis 0" in result.feedback


def test_swapped_outputs():
    def solve(dout, x, weight, eps):
        dx, dw, db = norm_solution(-1)(dout, x, weight, eps)
        return dx, db, dw
    assert "did you swap dweight and dbias" in check("layernorm_backward", solve).feedback


def test_eps_on_sigma_is_recognised():
    def solve(dout, x, weight, eps):
        _, dw, db = norm_solution(-1)(dout, x, weight, eps)
        n = x.shape[-1]
        xc = x - x.mean(axis=-1, keepdims=True)
        sigma = np.sqrt((xc ** 2).mean(axis=-1, keepdims=True))
        s, g = sigma + eps, dout * weight
        dxc = g / s - xc * (g * xc).sum(axis=-1, keepdims=True) / (s ** 2 * sigma * n)
        return dxc - dxc.mean(axis=-1, keepdims=True), dw, db
    assert "eps on sigma" in check("layernorm_backward", solve).feedback


def test_wrong_axis_is_recognised():
    def solve(dout, x, weight, eps):
        _, dw, db = norm_solution(0)(dout, x, weight, eps)
        return norm_solution(-1)(dout, x, weight, eps)[0], dw, db
    assert "wrong axis: that is layer norm" in check("batchnorm_backward", solve).feedback


def test_unrecognised_error_still_reports_where():
    result = check("mean_triangle", lambda x, dout: dout ** 2)
    assert not result.passed
    for text in ("relative error", "yours is", "the gradient is"):
        assert text in result.feedback


# -- whatever the student's function does, check() returns feedback --------------------------------


def _raises(x, dout):
    return dout / 0 + [][1]


def _hangs(x, dout):
    while True:
        pass


def _mutates(x, dout):
    x -= x.mean()
    return dout - dout.mean()


def _prints(x, dout):
    print("debugging", x)
    return dout - dout.mean()


@pytest.mark.parametrize("fn, expected", [
    (_raises, "Your function raised IndexError: list index out of range (line"),
    (lambda x, dout: None, "dx should be a numpy array of shape (5,), got NoneType"),
    (lambda x, dout: "dx", "got str"),
    (lambda x, dout: tg.Node(dout), "is a tinygraph Node"),
    (lambda x, dout: (dout,), "Return dx itself (an array), not a tuple"),
    (lambda x, dout: dout[:-1], "dx should have shape (5,), yours has shape (4,)"),
    (lambda x, dout: np.full_like(x, np.nan), "contains nan or inf"),
    (_mutates, "changed its input x in place"),
    (lambda x, dout: {1.0, 2.0}, "not an array of numbers"),
    (42, "check needs your function mean_triangle, got int"),
])
def test_bad_functions_become_feedback(fn, expected):
    result = check("mean_triangle", fn)
    assert not result.passed
    assert expected in result.feedback


def test_wrong_tuple_length_and_single_array():
    def two(dout, x, weight, eps):
        return norm_solution(-1)(dout, x, weight, eps)[:2]
    assert "Your function should return 3 values (dx, dweight, dbias); it returned 2" in \
        check("layernorm_backward", two).feedback

    def one(dout, x, weight, eps):
        return norm_solution(-1)(dout, x, weight, eps)[0]
    assert "Your function should return a tuple (dx, dweight, dbias); it returned an array of shape (4, 6)" in \
        check("layernorm_backward", one).feedback


def test_printing_is_captured(capsys):
    result = check("mean_triangle", _prints)
    assert result.passed
    assert "printed" in result.feedback
    assert "debugging" not in capsys.readouterr().out


def test_a_function_that_never_returns_times_out():
    result = check("mean_triangle", _hangs, timeout=0.3)
    assert not result.passed
    assert "did not return within 0.3 s" in result.feedback


def test_system_exit_is_feedback():
    def leaves(x, dout):
        raise SystemExit(3)
    assert "raised SystemExit" in check("mean_triangle", leaves).feedback


def test_check_is_deterministic():
    wrong = norm_solution(-1, ("direct",))
    assert check("layernorm_backward", wrong).feedback == check("layernorm_backward", wrong).feedback


class _Unreadable:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("cannot be read")


class _NoMessage(Exception):
    def __str__(self):
        raise RuntimeError("no message")


def _raises_no_message(x, dout):
    raise _NoMessage()


@pytest.mark.parametrize("fn, expected", [
    (lambda x, dout: _Unreadable(), "got _Unreadable, which is not an array of numbers"),
    (lambda x, dout: dout + 0j, "dx has complex values"),
    (lambda x, dout: np.array([None] * len(x)), "got an ndarray of dtype object, which is not an array of numbers"),
    (_raises_no_message, "Your function raised _NoMessage: (its message could not be shown)"),
    (lambda x, dout: (dout,), "not a tuple of 1 item."),
])
def test_odd_return_values_and_errors_become_feedback(fn, expected):
    result = check("mean_triangle", fn)
    assert not result.passed
    assert expected in result.feedback
