"""Checking gradients: tg.numerical_grad, tg.gradcheck, tg.jacobian, tg.rel_error."""

import numpy as np
import pytest
from conftest import central_diff

import tinygraph as tg


def layer_norm(x, eps):
    """Layer norm of a vector from primitives only, so every path is in the graph."""
    xc = x - x.mean()
    sigma = ((xc ** 2).mean() + eps).sqrt()
    return xc / sigma


@tg.op
def bad_square(x):
    """x ** 2 with the classic mistake: the vjp forgets the factor 2."""
    return x ** 2, lambda g: (g * x,)


@tg.op
def bad_reverse(x):
    """Reverses a vector, but the vjp forgets to reverse the gradient back.

    With a seed of ones the mistake is invisible (the reversed ones are ones);
    only a projection with different weights per output entry reveals it.
    """
    return x[::-1].copy(), lambda g: (g,)


# -- rel_error and numerical_grad ------------------------------------------------------------

def test_rel_error_values():
    assert tg.rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert tg.rel_error(1.0, 3.0) == 0.5
    assert tg.rel_error([0.0, 1.0], [0.0, 1.0]) == 0.0  # 0/0 guarded by the 1e-8 floor
    assert tg.rel_error([1e-9], [0.0]) == pytest.approx(0.1)
    assert tg.rel_error([1.0, -1.0], [1.0, 1.0]) == 1.0  # the max over entries
    with pytest.raises(ValueError, match=r"\(2,\) and \(3,\)"):
        tg.rel_error(np.ones(2), np.ones(3))


def test_numerical_grad_matches_the_derivative_and_leaves_x_alone():
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]])
    original = x.copy()
    grad = tg.numerical_grad(lambda v: np.sum(v ** 3), x)
    np.testing.assert_allclose(grad, 3 * original ** 2, rtol=1e-8)
    np.testing.assert_array_equal(x, original)
    assert grad.shape == x.shape


def test_numerical_grad_on_scalars_ints_and_node_valued_f():
    assert tg.numerical_grad(lambda v: float(v) ** 2, 3.0) == pytest.approx(6.0, rel=1e-8)
    ints = np.array([1, 2])
    grad = tg.numerical_grad(lambda v: (tg.Node(v) ** 2).sum(), ints)
    np.testing.assert_allclose(grad, [2.0, 4.0], rtol=1e-8)
    assert ints.dtype.kind == "i"
    with pytest.raises(ValueError, match=r"scalar, got shape \(2,\)"):
        tg.numerical_grad(lambda v: v * 2, np.ones(2))


# -- jacobian ---------------------------------------------------------------------------------

@pytest.mark.parametrize("eps", [0.0, 1e-5, 0.5])
def test_layer_norm_jacobian_is_the_analytic_one_not_zero_and_rows_sum_to_zero(eps):
    """dy_i/dx_j = (N delta_ij - 1 - y_i y_j) / (N sigma), sigma = sqrt(var + eps), y = (x - mu) / sigma.

    The eps only enters through sigma: d sigma / d x_j = (x_j - mu) / (N sigma) with or
    without it, so the seed's formula holds exactly. The rows sum to zero (shifting x
    does not change y), which is why summing dy_i/dx_j over j wrongly suggests that no
    gradient flows; the Jacobian itself is far from zero.
    """
    x = np.array([0.3, -1.2, 2.0, 0.7, -0.4])
    n = x.size
    sigma = np.sqrt(x.var() + eps)
    y = (x - x.mean()) / sigma
    analytic = (n * np.eye(n) - 1 - np.outer(y, y)) / (n * sigma)
    jac = tg.jacobian(lambda v: layer_norm(v, eps), x)
    assert jac.shape == (n, n)
    np.testing.assert_allclose(jac, analytic, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(jac.sum(axis=1), 0.0, atol=1e-14)
    assert np.abs(jac).max() > 0.1


def test_jacobian_shapes_and_values_match_central_differences():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3))
    w = rng.normal(size=(3, 4))
    jac = tg.jacobian(lambda v: (v @ w).tanh(), x)
    assert jac.shape == (2, 4, 2, 3)
    for i in np.ndindex(2, 4):
        np.testing.assert_allclose(jac[i], central_diff(lambda v, i=i: np.tanh(v @ w)[i], x), rtol=1e-6, atol=1e-9)
    scalar = tg.jacobian(lambda v: (v ** 2).sum(), x)  # scalar output: the gradient
    np.testing.assert_allclose(scalar, 2 * x, rtol=1e-15)
    assert tg.jacobian(lambda v: v * 3, 2.0) == 3.0


def test_jacobian_needs_f_to_return_a_node():
    with pytest.raises(TypeError, match="f must return a Node, got ndarray"):
        tg.jacobian(lambda v: np.ones(2), np.ones(2))


# -- gradcheck ---------------------------------------------------------------------------------

def test_gradcheck_passes_on_correct_functions():
    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=2)
    assert tg.gradcheck(lambda x: layer_norm(x, 1e-5), rng.normal(size=6)) is True  # vector output
    assert tg.gradcheck(lambda x, w, b: ((x @ w + b).tanh() ** 2).mean(), x, w, b) is True
    assert tg.gradcheck(lambda a, s: (a * s - s / a.exp()).sum(axis=0), x, 1.5) is True  # 0-d, broadcast
    assert tg.gradcheck(lambda a: (a - a.mean(axis=1, keepdims=True)).relu(), x) is True


def test_gradcheck_names_input_index_and_values_of_a_wrong_op():
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]])
    w = np.array([0.3, -0.2, 0.7])

    def f(x, w):
        return bad_square(x * w).sum()
    with pytest.raises(AssertionError) as err:
        tg.gradcheck(f, x, w)
    message = str(err.value)
    # worst entry of input 0: d/dx (x w)^2 = 2 x w^2 = 2.94 at x=2, w=0.7; the bad vjp gives half
    assert message.startswith("gradcheck failed for input 0 ('x') at index (0, 2): ")
    assert "autograd gives 0.98, central differences give 1.96" in message
    assert "relative error 0.333" in message


def test_gradcheck_uses_a_name_given_inside_f_and_reports_later_inputs():
    def f(a, b):
        b.name = "weight"
        return (a * bad_square(b)).sum()
    with pytest.raises(AssertionError, match=r"input 1 \('weight'\) at index \(1,\)"):
        tg.gradcheck(f, np.ones(2), np.array([0.5, -3.0]))
    with pytest.raises(AssertionError, match=r"input 0 \('input0'\)"):
        tg.gradcheck(lambda *xs: bad_square(xs[0]).sum(), np.ones(2))


def test_gradcheck_projects_vector_outputs_with_random_weights():
    x = np.array([1.0, 2.0, 3.0])
    ones_seed = np.ones(3)
    # with all-ones weights the bad vjp agrees with central differences ...
    np.testing.assert_allclose(tg.jacobian(bad_reverse, x).T @ ones_seed, ones_seed)
    # ... so gradcheck must use different weights per output entry to catch it
    with pytest.raises(AssertionError, match="input 0"):
        tg.gradcheck(bad_reverse, x)


def test_gradcheck_never_changes_the_callers_arrays():
    x = np.array([[0.5, -1.0], [2.0, 0.1]])
    kept = x.copy()

    def f(a):
        out = (a * 2).sum()
        a.data[...] = 0.0  # even an f that writes into its input Node afterwards
        return out
    assert tg.gradcheck(f, x)
    np.testing.assert_array_equal(x, kept)


def test_gradcheck_rejects_non_node_outputs_and_non_numeric_inputs():
    with pytest.raises(TypeError, match="f must return a Node, got float"):
        tg.gradcheck(lambda a: 1.0, np.ones(2))
    with pytest.raises(TypeError, match="got str"):
        tg.gradcheck(lambda a: a, "abc")
