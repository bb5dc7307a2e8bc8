"""Feedback that is right: classic mistakes are named, text belongs to its exercise, prints, shortcuts, types, seeds."""

import functools
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_exercises import CORRECT, norm_solution

import tinygraph as tg
from tinygraph import exercises as ex

check = functools.partial(ex.check, seed=0)


def _norm_by_hand(axis, unbiased=False, diagonal=False, eps_override=None):
    """Layer norm (axis -1) or batch norm (axis 0) backward in numpy, with the classic mistakes on request."""
    def solve(dout, x, weight, eps):
        eps = eps if eps_override is None else eps_override
        n = x.shape[axis]
        xc = x - x.mean(axis=axis, keepdims=True)
        var = (xc ** 2).sum(axis=axis, keepdims=True) / (n - 1 if unbiased else n)
        std = np.sqrt(var + eps)
        xhat = xc / std
        g = dout * weight
        if diagonal:
            dx = g / std * (1 - 1 / n - xhat ** 2 / n)
        else:
            m = n - 1 if unbiased else n
            dx = (g - g.mean(axis=axis, keepdims=True) - xhat * (g * xhat).sum(axis=axis, keepdims=True) / m) / std
        rows = tuple(range(x.ndim - 1))
        return dx, (dout * xhat).sum(axis=rows), dout.sum(axis=rows)
    return solve


# -- precision ------------------------------------------------------------------------------------


def _in_float32(solution):
    def solve(*args):
        args = [a.astype(np.float32) if isinstance(a, np.ndarray) else np.float32(a) for a in args]
        return solution(*args)
    return solve


@pytest.mark.parametrize("name", ["layernorm_backward", "batchnorm_backward"])
def test_float32_answer_is_called_right_to_float32_precision(name):
    axis = -1 if name == "layernorm_backward" else 0
    result = check(name, _in_float32(_norm_by_hand(axis)))
    assert not result.passed
    assert "dx is right to float32 precision (relative error" in result.feedback
    assert "the check needs float64" in result.feedback


def test_float32_rounding_of_a_float64_answer_passes():
    result = check("mean_triangle", lambda x, dout: (dout - dout.mean()).astype(np.float32))
    assert result.passed, result.feedback


# -- classic mistakes ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, axis", [("layernorm_backward", -1), ("batchnorm_backward", 0)])
def test_fixed_eps_is_named(name, axis):
    result = check(name, _norm_by_hand(axis, eps_override=1e-5))
    assert "It looks like your function uses eps = 1e-05 whatever eps it is given." in result.feedback
    assert "eps 0.1" in result.feedback  # the trial that failed, with its eps
    result = check(name, _norm_by_hand(axis, eps_override=0.0))
    assert "It looks like your function ignores eps (its answer is the one for eps = 0)." in result.feedback


def test_an_answer_right_for_some_eps_says_which_eps_fail():
    def solve(dout, x, weight, eps):
        return _norm_by_hand(-1)(dout, x, weight, max(eps, 1e-3))
    result = check("layernorm_backward", solve)
    assert result.feedback.startswith("dx is wrong")
    assert "It is right when eps = 0.001 and 0.1 and wrong when eps = 1e-05: does your function use its eps " \
           "argument everywhere eps belongs?" in result.feedback


@pytest.mark.parametrize("name, axis", [("layernorm_backward", -1), ("batchnorm_backward", 0)])
def test_unbiased_variance_is_named(name, axis):
    result = check(name, _norm_by_hand(axis, unbiased=True))
    assert "It looks like you used the unbiased variance, sum((x - mu)**2) / (N - 1)" in result.feedback


@pytest.mark.parametrize("name, axis", [("layernorm_backward", -1), ("batchnorm_backward", 0)])
def test_jacobian_diagonal_only_is_named_for_norm_layers(name, axis):
    result = check(name, _norm_by_hand(axis, diagonal=True))
    assert "It looks like you used only the diagonal of the Jacobian, dy_i/dx_i" in result.feedback
    assert "through mu and var" in result.feedback


def test_wrong_axis_for_rmsnorm_and_softmax():
    def rms_axis0(dout, x, weight, eps):
        rms = np.sqrt((x ** 2).mean(axis=0, keepdims=True) + eps)
        g = dout * weight
        right = CORRECT["rmsnorm_backward"](dout, x, weight, eps)
        return g / rms - x * (g * x).mean(axis=0, keepdims=True) / rms ** 3, right[1]
    assert "wrong axis (axis 0, the batch)" in check("rmsnorm_backward", rms_axis0).feedback

    def softmax_axis0(dout, x):
        y = np.exp(x) / np.exp(x).sum(axis=0, keepdims=True)
        return y * (dout - (dout * y).sum(axis=0, keepdims=True))
    assert "softmax over the wrong axis (axis 0)" in check("softmax_backward", softmax_axis0).feedback


def test_swapped_arguments_are_named():
    def mean_triangle(dout, x):  # written for (dout, x); the exercise calls it with (x, dout)
        return dout - dout.mean()
    result = check("mean_triangle", mean_triangle)
    assert "your function reads x and dout the other way round: the signature is `def mean_triangle(x, dout):`" \
        in result.feedback


@pytest.mark.parametrize("divisor", [2, 5])
def test_fixed_number_where_n_belongs(divisor):
    result = check("mean_triangle", lambda x, dout: dout - dout.sum() / divisor)
    assert f"the path through mu divides by a fixed {divisor} where it needs N (N is 5, 8, 3 and 6 in these " \
           "trials)" in result.feedback


# -- prints ---------------------------------------------------------------------------------------


def test_show_output_shows_what_was_printed_truncated_with_a_count():
    def noisy(x, dout):
        for i in range(30):
            print("step", i)
        return dout - dout.mean()
    hidden = check("mean_triangle", noisy)
    assert hidden.passed and "(Your function printed 120 lines over 4 calls; check(..., show_output=True)" \
        in hidden.feedback
    assert "step 0" not in hidden.feedback
    shown = check("mean_triangle", noisy, show_output=True)
    assert "Your function printed 120 lines over 4 calls:\n    | step 0\n    | step 1" in shown.feedback
    assert "    ... and 100 more lines" in shown.feedback
    assert shown.output.startswith("step 0\nstep 1\n") and shown.printed_lines == 120


def test_printing_endlessly_is_not_called_an_endless_loop():
    def floods(x, dout):
        while True:
            print("still here")
    result = check("mean_triangle", floods, timeout=1.0)
    assert not result.passed
    assert "printing that much takes time" in result.feedback
    assert "loop that never ends" not in result.feedback


def test_100k_printed_lines_and_a_return_pass():
    def chatty(x, dout):
        for i in range(25_000):
            print(i)
        return dout - dout.mean()
    result = check("mean_triangle", chatty, timeout=30)
    assert result.passed and "printed 100,000 lines over 4 calls" in result.feedback
    assert "loop" not in result.feedback


# -- shortcuts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["layernorm_backward", "batchnorm_backward"])
def test_the_shipped_solution_is_not_a_solution(name):
    result = check(name, getattr(tg.reference, name))
    assert not result.passed
    assert f"Your function calls tg.reference.{name}, which computes the answer for you" in result.feedback
    assert "the formula written by hand" in result.feedback


def test_autograd_is_not_a_solution():
    def by_autograd(dout, x, weight, eps):
        xn, wn, bn = tg.Node(x), tg.Node(weight), tg.Node(np.zeros_like(weight))
        tg.nn.functional.layer_norm(xn, wn, bn, eps).backward(dout)
        return xn.grad, wn.grad, bn.grad
    result = check("layernorm_backward", by_autograd)
    assert not result.passed
    assert "uses tinygraph's autograd (backward())" in result.feedback


def test_numerical_gradient_is_not_a_solution():
    def numerically(x, dout):
        return tg.numerical_grad(lambda v: float(((v - v.mean()) * dout).sum()), x)
    assert "calls tg.numerical_grad" in check("mean_triangle", numerically).feedback


# -- types ----------------------------------------------------------------------------------------


def test_a_list_is_named_as_a_list():
    result = check("mean_triangle", lambda x, dout: list(dout - dout.mean()))
    assert "dx is a Python list; return a numpy array of shape (5,)" in result.feedback

    def rows(dout, x, weight, eps):
        dx, dw, db = norm_solution(-1)(dout, x, weight, eps)
        return list(dx), dw, db
    assert "dx is a Python list; return a numpy array of shape (4, 6)" in check("layernorm_backward", rows).feedback


# -- inputs and seeds -----------------------------------------------------------------------------


def test_each_check_draws_fresh_inputs_and_a_seed_repeats_them():
    direct = norm_solution(-1, ("direct",))
    fresh = [ex.check("layernorm_backward", direct) for _ in range(3)]
    seeds = {r.seed for r in fresh}
    assert len(seeds) == 3  # hard-coding the answer for one set of inputs cannot pass
    again = ex.check("layernorm_backward", direct, seed=fresh[0].seed)
    assert again.feedback == fresh[0].feedback


def test_failure_names_seed_trial_shapes_and_eps():
    result = ex.check("layernorm_backward", norm_solution(-1, ("direct",)), seed=12)
    last = result.feedback.splitlines()[-1]
    assert re.fullmatch(r"\(trial \d of 3: x \(\d, \d\), weight \(\d,\), eps [0-9.e-]+; seed 12: "
                        r"check\(\.\.\., seed=12\) or --seed 12 repeats this run\.\)", last), last


@pytest.mark.parametrize("seed", [-1, 1.5, "7"])
def test_bad_seed_is_a_clear_error(seed):
    with pytest.raises(ValueError, match="seed must be a whole number"):
        ex.check("mean_triangle", CORRECT["mean_triangle"], seed=seed)


# -- no feedback says "1 times" ----------------------------------------------------------------------

FACTORS = [0.0, 1.0, -1.0, 2.0, 0.5, 1.5, 1.0001, 0.9999, 1 + 1e-7, 3.0]


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(st.tuples(*[st.sampled_from(FACTORS)] * 3), st.sampled_from([1.0, 1.0001, 0.5]))
def test_no_feedback_says_one_times(factors, dweight_scale):
    """Every mix of path factors gets a sentence, and never '1 times'."""
    signs = dict(zip(("direct", "mu", "var"), factors))
    result = check("layernorm_backward", norm_solution(-1, signs=signs, dweight_scale=dweight_scale))
    assert not re.search(r"\b1 times\b", result.feedback), result.feedback
    assert "seed 0: check(..., seed=0)" in result.feedback or result.passed
