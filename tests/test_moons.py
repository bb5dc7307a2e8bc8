"""examples/moons_mlp.py: the data, the stated accuracy, the script and its optional picture."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "moons_mlp.py"


@pytest.fixture(scope="module")
def moons():
    spec = importlib.util.spec_from_file_location("moons_mlp", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_moons_is_seeded_balanced_and_shaped_like_two_moons(moons):
    X, y = moons.make_moons(100, noise=0.0, seed=3)
    assert X.shape == (100, 2) and y.shape == (100,)
    assert sorted(set(y)) == [-1.0, 1.0] and np.sum(y > 0) == 50
    upper, lower = X[y < 0], X[y > 0]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1.0)
    assert np.all(upper[:, 1] >= -1e-12) and np.all(lower[:, 1] <= 0.5 + 1e-12)
    X2, y2 = moons.make_moons(100, seed=3)
    X3, y3 = moons.make_moons(100, seed=3)
    np.testing.assert_array_equal(X2, X3)
    np.testing.assert_array_equal(y2, y3)


def test_training_reaches_the_stated_accuracy(moons):
    model, X, y, accuracy = moons.train()
    assert accuracy >= moons.STATED_ACCURACY
    scores = model(X).data.reshape(-1)
    assert np.mean((scores > 0) == (y > 0)) == accuracy


def test_loss_falls_in_a_few_steps(moons):
    X, y = moons.make_moons(seed=1)
    untrained, _ = moons.loss_and_accuracy(moons.tg.nn.MLP(2, [16, 16, 1], nonlin="relu", rng=1), X, y)
    model, *_ = moons.train(steps=20)
    trained, accuracy = moons.loss_and_accuracy(model, X, y)
    assert trained.item() < 0.5 * untrained.item() and accuracy > 0.8


def test_script_prints_accuracy_and_skips_or_writes_the_picture(tmp_path):
    png = tmp_path / "boundary.png"
    result = subprocess.run([sys.executable, str(SCRIPT), "--steps", "30", "--png", str(png)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "final training accuracy:" in result.stdout
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in result.stdout and not png.exists()
    else:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
