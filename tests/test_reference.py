"""tg.reference: the closed-form backward formulas against autograd through the composite layers."""

import numpy as np
import pytest
from conftest import central_diff

import tinygraph as tg
from tinygraph import reference as ref
from tinygraph.nn import functional as F

LIMIT = 1e-10


def rel_error(a, b):
    """max |a - b| / max(1e-8, |a| + |b|), written here so the tests do not trust tinygraph's own."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def autograd(fn, x, weight, bias, dout, **kw):
    """(y, dx, dweight, dbias) by backpropagation through a composite tg.nn.functional layer."""
    xn, wn, bn = tg.Node(x, name="x"), tg.Node(weight, name="weight"), tg.Node(bias, name="bias")
    y = fn(xn, wn, bn, **kw)
    y.backward(dout)
    return y.data, xn.grad, wn.grad, bn.grad


def inputs(rng, shape, loc=0.5, scale=2.0):
    d = shape[-1]
    return (rng.normal(loc, scale, size=shape), rng.normal(size=d), rng.normal(size=d), rng.normal(size=shape))


def assert_close(got, want):
    for i, (g, w) in enumerate(zip(got, want)):
        assert rel_error(g, w) < LIMIT, f"output {i}: rel_error {rel_error(g, w):.2e}"


@pytest.mark.parametrize("shape", [(7,), (4, 6), (2, 3, 5)])
def test_layernorm_backward_equals_autograd(shape, rng):
    x, w, b, dout = inputs(rng, shape)
    y, *grads = autograd(F.layer_norm, x, w, b, dout)
    assert_close([y], [ref.layernorm_forward(x, w, b)])
    assert_close(grads, ref.layernorm_backward(dout, x, w))


@pytest.mark.parametrize("shape", [(2, 3), (8, 5), (64, 4)])
def test_batchnorm_backward_equals_autograd(shape, rng):
    x, w, b, dout = inputs(rng, shape)
    y, *grads = autograd(F.batch_norm, x, w, b, dout)
    assert_close([y], [ref.batchnorm_forward(x, w, b)])
    assert_close(grads, ref.batchnorm_backward(dout, x, w))


@pytest.mark.parametrize("eps", [1e-5, 0.5])
def test_every_batchnorm_form_equals_autograd(eps, rng):
    x, w, b, dout = inputs(rng, (6, 4))
    _, *grads = autograd(F.batch_norm, x, w, b, dout, eps=eps)
    for form in (ref.batchnorm_backward, ref.batchnorm_backward_staged, ref.batchnorm_backward_terms):
        assert_close(form(dout, x, w, eps), grads)


def test_dvar_dmu_is_zero_so_dropping_it_gives_the_same_dx(rng):
    """Seed 004's claim: dvar/dmu = -2/N sum(x - mu) = 0, so the term can be left out."""
    x, w, _, dout = inputs(rng, (10, 3), loc=5.0)
    with_term = ref.batchnorm_backward_terms(dout, x, w, dv_dmu=True)
    without = ref.batchnorm_backward_terms(dout, x, w, dv_dmu=False)
    assert rel_error(with_term[0], without[0]) < LIMIT
    xc = x - x.mean(axis=0)
    assert np.max(np.abs(-2.0 * xc.mean(axis=0))) < 1e-14 * np.max(np.abs(x))
    xn, wn = tg.Node(x), tg.Node(w)
    F.batch_norm(xn, wn).backward(dout)
    assert rel_error(without[0], xn.grad) < LIMIT


def test_autograd_sends_zero_to_mu_through_the_variance(rng):
    """The same fact seen in the graph: the gradient var sends back to mu (via xc) sums to ~0."""
    x, w, _, dout = inputs(rng, (6, 3))
    y = F.batch_norm(tg.Node(x), tg.Node(w))
    y.backward(dout)
    nodes = {n.name: n for n in tg.topological(y) if n.name}
    sq, xc = nodes["sq"], nodes["xc"]
    from_sq = [g for consumer, g in xc.contributions if consumer is sq]
    assert len(from_sq) == 1
    assert np.max(np.abs(from_sq[0].sum(axis=0))) < 1e-12 * np.max(np.abs(from_sq[0]))


def test_rmsnorm_backward_equals_autograd(rng):
    x, w, _, dout = inputs(rng, (3, 5))
    xn, wn = tg.Node(x), tg.Node(w)
    y = F.rms_norm(xn, wn)
    y.backward(dout)
    assert_close([y.data], [ref.rmsnorm_forward(x, w)])
    assert_close([xn.grad, wn.grad], ref.rmsnorm_backward(dout, x, w))


@pytest.mark.parametrize("eps_on_sigma", [False, True])
@pytest.mark.parametrize("shape", [(5,), (3, 4)])
def test_per_element_layernorm_equals_autograd(eps_on_sigma, shape, rng):
    """Seed 002's dy_k/dx_i formula; with eps_on_sigma the layer is (x - mu) / (sigma + eps) from primitives."""
    x, w, b, dout = inputs(rng, shape)
    eps = 0.1  # large, so the two conventions differ clearly
    y, *grads = autograd(F.layer_norm, x, w, b, dout, eps=eps, eps_on_sigma=eps_on_sigma)
    assert_close([y], [ref.layernorm_forward(x, w, b, eps, eps_on_sigma=eps_on_sigma)])
    assert_close(ref.layernorm_backward_per_element(dout, x, w, eps, eps_on_sigma=eps_on_sigma), grads)


def test_eps_on_sigma_is_a_different_function(rng):
    x, w, b, dout = inputs(rng, (3, 4), scale=0.3)
    sigma = autograd(F.layer_norm, x, w, b, dout, eps=0.1, eps_on_sigma=True)
    inside = autograd(F.layer_norm, x, w, b, dout, eps=0.1)
    assert rel_error(sigma[0], inside[0]) > 1e-3 and rel_error(sigma[1], inside[1]) > 1e-3


def test_eps_on_sigma_graph_from_primitives():
    y = F.layer_norm(tg.Node(np.arange(4.0)), eps_on_sigma=True)
    nodes = {n.name: n for n in tg.topological(y) if n.name}
    assert nodes["std"].op == "sqrt" and nodes["std"].parents == (nodes["var"],)
    assert nodes["std_eps"].op == "add" and nodes["xhat"].parents == (nodes["xc"], nodes["std_eps"])


@pytest.mark.parametrize("eps_on_sigma", [False, True])
def test_layernorm_jacobian_equals_central_differences(eps_on_sigma, rng):
    x, w = rng.normal(size=4), rng.normal(size=4)
    jac = ref.layernorm_jacobian(x, w, 0.1, eps_on_sigma)
    for k in range(4):
        def yk(xv, k=k):
            return ref.layernorm_forward(xv, w, None, 0.1, eps_on_sigma)[k]
        np.testing.assert_allclose(jac[k], central_diff(yk, x), rtol=1e-6, atol=1e-8)


def test_weight_none_means_ones(rng):
    x, _, _, dout = inputs(rng, (4, 3))
    ones = np.ones(3)
    for form in (ref.layernorm_backward, ref.batchnorm_backward):
        for got, want in zip(form(dout, x, None), form(dout, x, ones)):
            np.testing.assert_array_equal(got, want)


def test_references_do_not_mutate_inputs(rng):
    x, w, b, dout = inputs(rng, (4, 3))
    saved = [a.copy() for a in (x, w, b, dout)]
    for form in (ref.layernorm_backward, ref.batchnorm_backward, ref.batchnorm_backward_staged,
                 ref.batchnorm_backward_terms, ref.layernorm_backward_per_element, ref.rmsnorm_backward):
        form(dout, x, w)
    ref.layernorm_forward(x, w, b)
    ref.batchnorm_forward(x, w, b)
    for a, s in zip((x, w, b, dout), saved):
        np.testing.assert_array_equal(a, s)


@pytest.mark.parametrize("call, message", [
    (lambda: ref.layernorm_backward(np.ones((2, 3)), np.ones((2, 4)), None),
     r"dout must have the shape of x: got dout \(2, 3\) and x \(2, 4\)"),
    (lambda: ref.batchnorm_backward(np.ones((2, 3)), np.ones((2, 3)), np.ones(4)),
     r"weight must have shape \(3,\) to match x of shape \(2, 3\), got shape \(4,\)"),
    (lambda: ref.batchnorm_backward(np.ones(3), np.ones(3), None), r"x must have shape \(N, D\), got shape \(3,\)"),
    (lambda: ref.layernorm_forward(2.0), "x must have at least one axis"),
])
def test_bad_shapes_are_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("call, message", [
    (lambda: ref.layernorm_backward("dout", np.ones((2, 3)), None),
     "dout must be a number or an array of numbers, got str"),
    (lambda: ref.batchnorm_forward({"x": 1}), "x must be a number or an array of numbers, got dict"),
    (lambda: ref.rmsnorm_backward(np.ones((2, 3)), np.ones((2, 3)), ["a", "b", "c"]), "weight must be a number"),
])
def test_non_numeric_input_is_a_clear_type_error(call, message):
    with pytest.raises(TypeError, match=message):
        call()


def test_docstrings_write_the_formulas():
    assert "mean(dxhat * xhat)" in ref.layernorm_backward.__doc__
    assert "mean(dxhat * xhat)" in ref.batchnorm_backward.__doc__
    assert "delta_ik" in ref.layernorm_jacobian.__doc__
    assert "dvar/dmu" in ref.batchnorm_backward_terms.__doc__
