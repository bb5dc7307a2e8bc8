"""Every mistake a learner makes gets an error that names the problem (issue 7)."""

import numpy as np
import pytest

import tinygraph as tg


def vec(n):
    return tg.Node(np.arange(float(n)) + 1.0, name="v")


# (what goes wrong, the call, the exception, words the message must contain)
ERRORS = [
    ("text as data", lambda: tg.Node("3.0"), TypeError, ["str"]),
    ("None as data", lambda: tg.Node(None), TypeError, ["NoneType"]),
    ("dict as data", lambda: tg.Node({"a": 1}), TypeError, ["dict"]),
    ("complex data", lambda: tg.Node(np.array([1j])), TypeError, ["complex"]),
    ("ragged list", lambda: tg.Node([[1.0], [1.0, 2.0]]), TypeError, ["list"]),
    ("a Node as data", lambda: tg.Node(tg.Node(1.0)), TypeError, ["Node", ".data"]),
    ("name not a str", lambda: tg.Node(1.0, name=3), TypeError, ["name", "int"]),
    ("add shapes", lambda: vec(3) + vec(4), ValueError, ["add", "(3,)", "(4,)"]),
    ("sub shapes", lambda: vec(3) - vec(2), ValueError, ["sub", "(3,)", "(2,)"]),
    ("mul shapes", lambda: vec(3) * np.ones((2, 2)), ValueError, ["mul", "(3,)", "(2, 2)"]),
    ("div shapes", lambda: np.ones(5) / vec(3), ValueError, ["div", "(5,)", "(3,)"]),
    ("matmul shapes", lambda: tg.Node(np.ones((2, 3))) @ tg.Node(np.ones((2, 3))), ValueError,
     ["matmul", "(2, 3)"]),
    ("matmul of a scalar", lambda: tg.Node(2.0) @ vec(3), ValueError, ["matmul", "()", "(3,)"]),
    ("reshape impossible", lambda: vec(6).reshape(4, 2), ValueError, ["reshape", "(6,)", "(4, 2)"]),
    ("mean over a missing axis", lambda: vec(3).mean(axis=2), ValueError, ["mean", "axis"]),
    ("backward on a vector", lambda: (vec(3) * 2).backward(), ValueError, ["(3,)", "seed"]),
    ("seed of wrong shape", lambda: (vec(3) * 2).backward(np.ones(4)), ValueError, ["(4,)", "(3,)"]),
    ("backward on a non-Node", lambda: tg.backward_steps(3.0).__next__(), TypeError, ["Node", "float"]),
    ("Node exponent", lambda: vec(3) ** vec(3), TypeError, ["exponent"]),
    ("string exponent", lambda: vec(3) ** "2", TypeError, ["exponent", "str"]),
    ("scope without a name", lambda: tg.scope("").__enter__(), TypeError, ["scope"]),
    ("item of a vector", lambda: vec(3).item(), ValueError, ["item", "(3,)"]),
    ("setting data of another shape", lambda: setattr(vec(3), "data", np.ones(2)), ValueError, ["(2,)", "(3,)"]),
    ("op called with too few inputs", lambda: tg.add(vec(3)), TypeError, ["add", "input"]),
]


@pytest.mark.parametrize("what,call,exc,words", ERRORS, ids=[e[0] for e in ERRORS])
def test_error_names_the_problem(what, call, exc, words):
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{what}: {word!r} missing from {message!r}"
    assert len(message) < 400, f"{what}: message too long for a learner: {message!r}"


def test_vjp_returning_the_wrong_number_of_gradients():
    @tg.op
    def twice(x):
        return 2 * x, lambda g: (2 * g, 2 * g)

    with pytest.raises(ValueError, match=r"twice.*2 gradients.*1 input"):
        twice(vec(3)).sum().backward()


def test_vjp_returning_the_wrong_shape():
    @tg.op
    def squash(x):
        return x * 1, lambda g: (g[:1],)

    with pytest.raises(ValueError, match=r"squash.*\(1,\).*\(3,\)"):
        squash(vec(3)).sum().backward()


def test_failed_pass_leaves_the_graph_usable():
    calls = {"n": 0}

    @tg.op
    def flaky(x):
        def vjp(g):
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("boom")
            return (g,)
        return x * 1, vjp

    x = vec(3)
    y = (flaky(x) + x).sum()
    with pytest.raises(RuntimeError):
        y.backward()
    y.zero_grad()
    y.backward()
    np.testing.assert_allclose(x.grad, [2, 2, 2])


def test_abandoned_step_through_leaves_no_half_pass_behind():
    x = vec(3)
    y = ((x - x.mean()) ** 2).sum()
    steps = tg.backward_steps(y)
    next(steps)
    next(steps)
    steps.close()
    y.zero_grad()
    y.backward()
    xs = np.arange(3.0) + 1
    np.testing.assert_allclose(x.grad, 2 * (xs - xs.mean()))


# -- non-finite values -----------------------------------------------------------------------

def test_nan_propagates_like_numpy_without_anomaly_mode():
    with np.errstate(all="ignore"):
        x = tg.Node([-1.0, 4.0], name="x")
        y = x.sqrt().sum()
        y.backward()
        assert np.isnan(y.item()) and np.isnan(x.grad[0]) and x.grad[1] == 0.25


def test_detect_anomaly_names_the_first_bad_forward_op():
    x = tg.Node([-1.0, 4.0], name="x")
    with tg.detect_anomaly(), tg.scope("norm"):
        s = x * 1
        s.name = "shifted"
        with pytest.raises(FloatingPointError) as info:
            s.log()
    message = str(info.value)
    assert "log" in message and "norm" in message and "-1" in message


def test_detect_anomaly_in_backward_names_the_receiving_node():
    x = tg.Node([0.0, 4.0], name="x")
    y = x.sqrt().sum()  # forward is finite; d sqrt/dx at 0 is inf
    with tg.detect_anomaly(), pytest.raises(FloatingPointError) as info:
        y.backward()
    assert "'x'" in str(info.value) and "sqrt" in str(info.value)


def test_detect_anomaly_is_off_again_afterwards():
    with tg.detect_anomaly():
        pass
    with np.errstate(all="ignore"):
        assert np.isnan(tg.Node(-1.0).log().item())


# -- never change the user's data --------------------------------------------------------------

def test_user_arrays_are_never_changed():
    a = np.array([1.0, -2.0, 3.0])
    b = np.array([[0.5], [2.0]])
    seed = np.ones((2, 3))
    keep = (a.copy(), b.copy(), seed.copy())
    x = tg.Node(a, name="x")
    y = (x * b + a) / (b ** 2) - a.mean()
    y.backward(seed)
    y.backward(seed)
    x.data[...] = 0
    for orig, now in zip(keep, (a, b, seed)):
        np.testing.assert_array_equal(orig, now)
