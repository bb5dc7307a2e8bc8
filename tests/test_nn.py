"""tg.nn: norm layers, Linear, MLP and SGD against PyTorch, central differences and numpy."""

import numpy as np
import pytest
from conftest import central_diff
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph import reference as ref
from tinygraph.nn import functional as F

TOL = dict(rtol=1e-10, atol=1e-12)


def randomize(layer, rng):
    """Non-trivial weight and bias, so the tests see them at work."""
    layer.weight.data[...] = rng.normal(size=layer.weight.shape)
    if getattr(layer, "bias", None) is not None:
        layer.bias.data[...] = rng.normal(size=layer.bias.shape)


def run(layer, x, dout):
    """Forward and backward through a tg layer: output and (dx, dweight, dbias)."""
    xn = tg.Node(x, name="x")
    y = layer(xn)
    y.backward(dout)
    grads = [xn.grad] + [p.grad for p in layer.parameters()]
    return y.data, grads


# -- graph structure: names and scopes ------------------------------------------------------

def names_by_scope(y):
    return {n.name: n.scope for n in tg.topological(y) if n.name is not None}


@pytest.mark.parametrize("make", [lambda: tg.nn.LayerNorm(4), lambda: tg.nn.BatchNorm1d(4)])
def test_norm_graph_has_textbook_names_in_layer_scope(make):
    layer = make()
    y = layer(np.arange(12.0).reshape(3, 4))
    names = names_by_scope(y)
    for name in ("mu", "xc", "sq", "var", "std", "xhat", "y"):
        assert names[name] == layer.name
    assert y.name == "y"
    assert names["x"] == "" and names["weight"] == "" and names["bias"] == ""


def test_norm_graph_shows_both_paths_from_x_and_second_use_of_xc():
    y = tg.nn.LayerNorm(4)(np.arange(8.0).reshape(2, 4))
    nodes = {n.name: n for n in tg.topological(y) if n.name}
    x, mu, xc = nodes["x"], nodes["mu"], nodes["xc"]
    assert mu.parents == (x,) and xc.parents == (x, mu)  # the mean's triangle
    users_of_xc = [n.name for n in tg.topological(y) if xc in n.parents]
    assert sorted(users_of_xc) == ["sq", "xhat"]
    assert nodes["sq"].op == "pow" and nodes["var"].op == "mean" and nodes["std"].op == "sqrt"


def test_rmsnorm_names():
    y = tg.nn.RMSNorm(3)(np.ones((2, 3)))
    names = names_by_scope(y)
    for name in ("sq", "ms", "rms", "xhat", "y"):
        assert names[name] == "rmsnorm"
    assert "mu" not in names


@pytest.mark.parametrize("layer, scope_name", [
    (tg.nn.LayerNorm(3), "layernorm"), (tg.nn.BatchNorm1d(3), "batchnorm1d"),
    (tg.nn.RMSNorm(3), "rmsnorm"), (tg.nn.Linear(3, 2), "linear")])
def test_layer_scopes_nest_inside_outer_scopes(layer, scope_name):
    with tg.scope("block"):
        with tg.scope("inner"):
            y = layer(np.ones((2, 3)) + np.arange(3))
    assert y.scope == f"block/inner/{scope_name}"
    assert layer(np.ones((2, 3)) + np.arange(3)).scope == scope_name


@pytest.mark.parametrize("fn, scope_name", [
    (F.layer_norm, "layernorm"), (F.batch_norm, "batchnorm"), (F.rms_norm, "rmsnorm"),
    (lambda x: F.linear(x, np.ones((3, 2))), "linear")])
def test_functional_calls_open_scopes_too(fn, scope_name):
    with tg.scope("outer"):
        y = fn(np.arange(6.0).reshape(2, 3))
    assert y.scope == f"outer/{scope_name}"
    assert {n.scope for n in tg.topological(y) if n.op} == {f"outer/{scope_name}"}


def test_mlp_scopes_and_parameter_names():
    mlp = tg.nn.MLP(2, [3, 1], rng=0)
    y = mlp(np.ones((4, 2)))
    scopes = {n.scope for n in tg.topological(y) if n.op}
    assert scopes == {"mlp/linear0", "mlp/linear1", "mlp"}
    assert [p.name for p in mlp.parameters()] == [
        "linear0.weight", "linear0.bias", "linear1.weight", "linear1.bias"]
    assert {n.name for n in tg.topological(y) if n.scope == "mlp"} == {"h0"}


# -- inputs, errors, reprs --------------------------------------------------------------------

def test_array_input_becomes_leaf_x_and_is_never_mutated(rng):
    x = rng.normal(size=(3, 4))
    before = x.copy()
    for layer in (tg.nn.LayerNorm(4), tg.nn.BatchNorm1d(4), tg.nn.RMSNorm(4), tg.nn.Linear(4, 2)):
        y = layer(x)
        y.backward(np.ones(y.shape))
        leaves = [n for n in tg.topological(y) if n.name == "x"]
        assert len(leaves) == 1 and not leaves[0].op and not leaves[0].is_constant
        assert leaves[0].data is not x
    np.testing.assert_array_equal(x, before)


def test_node_input_is_used_as_given():
    x = tg.Node(np.arange(8.0).reshape(2, 4))
    y = tg.nn.LayerNorm(4)(x)
    assert x in list(tg.topological(y)) and x.name is None


@pytest.mark.parametrize("layer, shape, expected", [
    (tg.nn.LayerNorm(4), (2, 3),
     "LayerNorm(4, eps=1e-05, affine=True): expected input with last dimension 4, got shape (2, 3)"),
    (tg.nn.RMSNorm(4), (5,),
     "RMSNorm(4, eps=1e-05, affine=True): expected input with last dimension 4, got shape (5,)"),
    (tg.nn.Linear(2, 3), (4, 3),
     "Linear(n_in=2, n_out=3, bias=True): expected input with last dimension 2, got shape (4, 3)"),
    (tg.nn.BatchNorm1d(4), (2, 3),
     "BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True): expected input of shape (N, 4), got shape (2, 3)"),
    (tg.nn.BatchNorm1d(4), (4,), "expected input of shape (N, 4), got shape (4,)"),
    (tg.nn.BatchNorm1d(4), (1, 4), "training mode needs more than one sample per feature, got shape (1, 4)"),
])
def test_wrong_shape_is_a_clear_value_error(layer, shape, expected):
    with pytest.raises(ValueError) as info:
        layer(np.ones(shape))
    assert expected in str(info.value)


def test_wrong_input_type_names_layer_and_type():
    with pytest.raises(TypeError, match=r"LayerNorm\(4.*input must be a Node or an array.*str"):
        tg.nn.LayerNorm(4)("abc")


@pytest.mark.parametrize("make, message", [
    (lambda: tg.nn.LayerNorm(0), "LayerNorm: dim must be a positive int, got 0"),
    (lambda: tg.nn.RMSNorm(3, eps=-1), "RMSNorm: eps must be a number >= 0, got -1"),
    (lambda: tg.nn.BatchNorm1d(3, momentum=2), "BatchNorm1d: momentum must be a number in [0, 1], got 2"),
    (lambda: tg.nn.MLP(2, [3], nonlin="sigmoid"), "MLP: nonlin must be one of ['relu', 'tanh'], got 'sigmoid'"),
    (lambda: tg.nn.MLP(2, []), "MLP: sizes must be a non-empty list"),
])
def test_bad_constructor_arguments(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert message in str(info.value)


@pytest.mark.parametrize("make, message", [
    (lambda: tg.nn.LayerNorm(4.0), "LayerNorm: dim must be a positive int, got float 4.0"),
    (lambda: tg.nn.Linear("2", 3), "Linear: n_in must be a positive int, got str '2'"),
    (lambda: tg.nn.BatchNorm1d(3, eps="small"), "BatchNorm1d: eps must be a number >= 0, got str 'small'"),
])
def test_constructor_arguments_of_wrong_type(make, message):
    with pytest.raises(TypeError) as info:
        make()
    assert message in str(info.value)


def test_functional_batch_norm_needs_2d():
    with pytest.raises(ValueError, match=r"batch_norm: expected input of shape \(N, D\), got shape \(2, 3, 4\)"):
        F.batch_norm(np.ones((2, 3, 4)))


def test_reprs_read_like_pytorch():
    assert repr(tg.nn.LayerNorm(4)) == "LayerNorm(4, eps=1e-05, affine=True)"
    assert repr(tg.nn.LayerNorm(4, eps=1e-6, affine=False)) == "LayerNorm(4, eps=1e-06, affine=False)"
    assert repr(tg.nn.BatchNorm1d(3)) == "BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True)"
    assert repr(tg.nn.RMSNorm(8)) == "RMSNorm(8, eps=1e-05, affine=True)"
    assert repr(tg.nn.Linear(2, 16)) == "Linear(n_in=2, n_out=16, bias=True)"
    assert repr(tg.nn.MLP(2, [16, 16, 1], nonlin="relu")) == "MLP(2, [16, 16, 1], nonlin='relu')"


def test_parameters_and_initial_values():
    ln, bn, rms = tg.nn.LayerNorm(3), tg.nn.BatchNorm1d(3), tg.nn.RMSNorm(3)
    for layer in (ln, bn):
        w, b = layer.parameters()
        assert (w.name, b.name) == ("weight", "bias") and w is layer.weight and b is layer.bias
        np.testing.assert_array_equal(w.data, np.ones(3))
        np.testing.assert_array_equal(b.data, np.zeros(3))
    assert rms.parameters() == [rms.weight]
    assert tg.nn.LayerNorm(3, affine=False).parameters() == []
    np.testing.assert_array_equal(bn.running_mean, np.zeros(3))
    np.testing.assert_array_equal(bn.running_var, np.ones(3))
    lin = tg.nn.Linear(4, 2, rng=0)
    assert lin.weight.shape == (4, 2) and lin.bias.shape == (2,)
    assert np.all(np.abs(lin.weight.data) <= 0.5) and np.all(np.abs(lin.bias.data) <= 0.5)
    assert len(tg.nn.MLP(2, [16, 16, 1]).parameters()) == 6
    assert sum(p.size for p in tg.nn.MLP(2, [16, 16, 1]).parameters()) == 2 * 16 + 16 + 16 * 16 + 16 + 16 + 1


def test_train_and_eval_switch_all_sublayers():
    mlp = tg.nn.MLP(2, [3, 1])
    assert mlp.eval() is mlp
    assert not mlp.training and not any(layer.training for layer in mlp.layers)
    mlp.train()
    assert mlp.training and all(layer.training for layer in mlp.layers)


# -- values and gradients: closed forms (always) and central differences --------------------------

@pytest.mark.parametrize("shape", [(4,), (3, 4), (2, 3, 4)])
def test_layernorm_matches_reference_any_leading_dims(shape, rng):
    ln = tg.nn.LayerNorm(4)
    randomize(ln, rng)
    x, dout = rng.normal(size=shape), rng.normal(size=shape)
    y, grads = run(ln, x, dout)
    np.testing.assert_allclose(y, ref.layernorm_forward(x, ln.weight.data, ln.bias.data), **TOL)
    for got, want in zip(grads, ref.layernorm_backward(dout, x, ln.weight.data)):
        np.testing.assert_allclose(got, want, **TOL)


def test_batchnorm_train_matches_reference(rng):
    bn = tg.nn.BatchNorm1d(3)
    randomize(bn, rng)
    x, dout = rng.normal(2.0, 3.0, size=(5, 3)), rng.normal(size=(5, 3))
    y, grads = run(bn, x, dout)
    np.testing.assert_allclose(y, ref.batchnorm_forward(x, bn.weight.data, bn.bias.data), **TOL)
    for got, want in zip(grads, ref.batchnorm_backward(dout, x, bn.weight.data)):
        np.testing.assert_allclose(got, want, **TOL)


def test_rmsnorm_matches_reference(rng):
    layer = tg.nn.RMSNorm(4)
    randomize(layer, rng)
    x, dout = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    y, grads = run(layer, x, dout)
    np.testing.assert_allclose(y, ref.rmsnorm_forward(x, layer.weight.data), **TOL)
    for got, want in zip(grads, ref.rmsnorm_backward(dout, x, layer.weight.data)):
        np.testing.assert_allclose(got, want, **TOL)


@pytest.mark.parametrize("make", [lambda: tg.nn.LayerNorm(3), lambda: tg.nn.BatchNorm1d(3),
                                  lambda: tg.nn.RMSNorm(3), lambda: tg.nn.Linear(3, 2)])
def test_gradients_match_central_differences(make, rng):
    """Independent of every formula: nudge each input and parameter entry."""
    layer = make()
    randomize(layer, rng)
    x = rng.normal(size=(4, 3))
    proj = rng.normal(size=layer(x).shape)
    y, grads = run(layer, x, proj)

    def loss_of_x(xv):
        return float(np.sum(layer(xv).data * proj))

    np.testing.assert_allclose(grads[0], central_diff(loss_of_x, x), rtol=1e-5, atol=1e-7)
    for p, g in zip(layer.parameters(), grads[1:]):
        saved = p.data.copy()

        def loss_of_p(pv, p=p):
            p.data = pv
            return float(np.sum(layer(x).data * proj))

        np.testing.assert_allclose(g, central_diff(loss_of_p, saved), rtol=1e-5, atol=1e-7)
        p.data = saved


@settings(deadline=None, max_examples=40, derandomize=True)
@given(rows=st.integers(2, 5), dim=st.integers(1, 6), eps=st.sampled_from([1e-5, 1e-3, 0.1]),
       scale=st.sampled_from([0.01, 1.0, 100.0]), seed=st.integers(0, 2**16))
def test_functional_norms_match_closed_forms_on_random_shapes(rows, dim, eps, scale, seed):
    rng = np.random.default_rng(seed)
    x, dout = rng.normal(size=(rows, dim)) * scale, rng.normal(size=(rows, dim))
    w, b = tg.Node(rng.normal(size=dim)), tg.Node(rng.normal(size=dim))
    for fn, closed in ((F.layer_norm, ref.layernorm_backward), (F.batch_norm, ref.batchnorm_backward)):
        xn = tg.Node(x)
        fn(xn, w, b, eps=eps).backward(dout)
        for got, want in zip((xn.grad, w.grad, b.grad), closed(dout, x, w.data, eps)):
            np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-9 * max(1.0, np.abs(want).max()))
        w.zero_grad()
        b.zero_grad()


# -- BatchNorm1d running statistics and eval mode ----------------------------------------------------

def test_batchnorm_running_stats_and_eval_mode_numpy(rng):
    bn = tg.nn.BatchNorm1d(3, momentum=0.2)
    mean, var = np.zeros(3), np.ones(3)
    for _ in range(4):
        x = rng.normal(1.0, 2.0, size=(6, 3))
        bn(x)
        mean = 0.8 * mean + 0.2 * x.mean(axis=0)
        var = 0.8 * var + 0.2 * x.var(axis=0, ddof=1)
    np.testing.assert_allclose(bn.running_mean, mean, **TOL)
    np.testing.assert_allclose(bn.running_var, var, **TOL)
    bn.eval()
    x = rng.normal(size=(2, 3))
    y = bn(x)
    np.testing.assert_allclose(y.data, (x - mean) / np.sqrt(var + 1e-5), **TOL)
    np.testing.assert_array_equal(bn.running_mean, mean)  # eval does not update
    names = names_by_scope(y)
    assert {"running_mean", "running_var", "xc", "std", "xhat", "y"} <= set(names)
    assert "mu" not in names and "var" not in names


def test_batchnorm_eval_on_a_single_sample_and_running_arrays_replaced_not_mutated(rng):
    bn = tg.nn.BatchNorm1d(2)
    held = bn.running_mean
    bn(rng.normal(size=(4, 2)))
    assert bn.running_mean is not held and np.all(held == 0)
    bn.eval()
    assert bn(np.ones((1, 2))).shape == (1, 2)


# -- PyTorch ---------------------------------------------------------------------------------------

@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch


def torch_run(torch, module, x, dout):
    xt = torch.tensor(x, requires_grad=True)
    y = module(xt)
    y.backward(torch.tensor(dout))
    return y.detach().numpy(), [xt.grad.numpy()] + [p.grad.numpy() for p in module.parameters()]


def copy_params(torch, layer, module):
    with torch.no_grad():
        for p, q in zip(layer.parameters(), module.parameters()):
            q.copy_(torch.tensor(p.data))


def assert_same(ours, theirs):
    np.testing.assert_allclose(ours[0], theirs[0], **TOL)
    assert len(ours[1]) == len(theirs[1])
    for got, want in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(got, want, **TOL)


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)])
def test_layernorm_equals_torch(torch, shape, rng):
    ln = tg.nn.LayerNorm(4)
    randomize(ln, rng)
    module = torch.nn.LayerNorm(4, dtype=torch.float64)
    copy_params(torch, ln, module)
    x, dout = rng.normal(size=shape) * 3 + 1, rng.normal(size=shape)
    assert_same(run(ln, x, dout), torch_run(torch, module, x, dout))


def test_rmsnorm_equals_torch(torch, rng):
    layer = tg.nn.RMSNorm(4)
    randomize(layer, rng)
    module = torch.nn.RMSNorm(4, eps=1e-5, dtype=torch.float64)
    copy_params(torch, layer, module)
    x, dout = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    assert_same(run(layer, x, dout), torch_run(torch, module, x, dout))


def test_batchnorm_train_steps_then_eval_equal_torch(torch, rng):
    bn = tg.nn.BatchNorm1d(3)
    randomize(bn, rng)
    module = torch.nn.BatchNorm1d(3, dtype=torch.float64)
    copy_params(torch, bn, module)
    for _ in range(5):
        x, dout = rng.normal(2.0, 3.0, size=(8, 3)), rng.normal(size=(8, 3))
        bn.zero_grad()
        module.zero_grad()
        assert_same(run(bn, x, dout), torch_run(torch, module, x, dout))
    np.testing.assert_allclose(bn.running_mean, module.running_mean.numpy(), **TOL)
    np.testing.assert_allclose(bn.running_var, module.running_var.numpy(), **TOL)
    bn.eval()
    module.eval()
    bn.zero_grad()
    module.zero_grad()
    x, dout = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    assert_same(run(bn, x, dout), torch_run(torch, module, x, dout))


def test_linear_and_mlp_equal_torch(torch, rng):
    mlp = tg.nn.MLP(3, [5, 4, 2], nonlin="tanh", rng=1)
    module = torch.nn.Sequential(
        torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2),
    ).double()
    with torch.no_grad():
        for layer, lin in zip(mlp.layers, module[::2]):
            lin.weight.copy_(torch.tensor(layer.weight.data.T))
            lin.bias.copy_(torch.tensor(layer.bias.data))
    x, dout = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    y, grads = run(mlp, x, dout)
    want_y, want = torch_run(torch, module, x, dout)
    np.testing.assert_allclose(y, want_y, **TOL)
    np.testing.assert_allclose(grads[0], want[0], **TOL)
    for got_w, got_b, want_w, want_b in zip(grads[1::2], grads[2::2], want[1::2], want[2::2]):
        np.testing.assert_allclose(got_w, want_w.T, **TOL)
        np.testing.assert_allclose(got_b, want_b, **TOL)


def test_relu_mlp_forward(rng):
    mlp = tg.nn.MLP(2, [3, 1], nonlin="relu", rng=0)
    x = rng.normal(size=(4, 2))
    (w0, b0), (w1, b1) = [(layer.weight.data, layer.bias.data) for layer in mlp.layers]
    np.testing.assert_allclose(mlp(x).data, np.maximum(x @ w0 + b0, 0) @ w1 + b1, **TOL)


# -- SGD -------------------------------------------------------------------------------------------

def test_sgd_step_and_zero_grad(rng):
    lin = tg.nn.Linear(3, 2, rng=0)
    opt = tg.nn.SGD(lin.parameters(), lr=0.5)
    before = [p.data.copy() for p in lin.parameters()]
    lin(rng.normal(size=(4, 3))).sum().backward()
    grads = [p.grad.copy() for p in lin.parameters()]
    assert all(np.any(g != 0) for g in grads)
    opt.step()
    for p, old, g in zip(lin.parameters(), before, grads):
        np.testing.assert_allclose(p.data, old - 0.5 * g, **TOL)
    opt.zero_grad()
    assert all(np.all(p.grad == 0) for p in lin.parameters())
    lin(np.ones((1, 3))).sum().backward()
    lin.zero_grad()
    assert all(np.all(p.grad == 0) for p in lin.parameters())
    assert repr(opt) == "SGD(lr=0.5, 2 parameters)"


def test_sgd_step_keeps_old_graph_values():
    """The update makes new arrays: a graph built before the step still sees the old weight."""
    lin = tg.nn.Linear(1, 1, rng=0)
    w_before = lin.weight.data.copy()
    y = lin(np.array([[2.0]]))
    y.backward()
    tg.nn.SGD(lin.parameters(), lr=1.0).step()
    x_leaf = next(n for n in tg.topological(y) if n.name == "x")
    x_leaf.zero_grad()
    y.backward()
    np.testing.assert_allclose(x_leaf.grad, w_before.T)


def test_sgd_rejects_non_nodes():
    with pytest.raises(TypeError, match="SGD: parameter 1 must be a Node, got ndarray"):
        tg.nn.SGD([tg.Node(1.0), np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        tg.nn.SGD([], lr=0.1)


def test_sgd_rejects_a_learning_rate_that_is_not_a_number():
    with pytest.raises(TypeError, match="SGD: lr must be a number, got str '0.1'"):
        tg.nn.SGD([tg.Node(1.0)], lr="0.1")
