"""Every example runs as a script (cwd = a temp dir), prints its key figures and writes its picture,
only there, in a shape that fits a slide (1:3..3:1); so do the figures in docs/images."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
IMAGES = EXAMPLES.parent / "docs" / "images"
PNG = b"\x89PNG\r\n\x1a\n"


def assert_fits_a_slide(path):
    """A PNG whose header says it is at most 3 times as wide as high, or as high as wide, and at most
    8,000 pixels long."""
    data = Path(path).read_bytes()[:24]
    assert data[:8] == PNG, f"{path} is not a PNG"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert 1 / 3 <= width / height <= 3, f"{Path(path).name} is {width}x{height}"
    assert max(width, height) <= 8000, f"{Path(path).name} is {width}x{height}"


def assert_only_picture(folder, name):
    assert [p.name for p in Path(folder).iterdir()] == [name]
    assert_fits_a_slide(Path(folder) / name)


@pytest.mark.parametrize("name", sorted(p.name for p in IMAGES.glob("*.png")))
def test_every_figure_in_docs_fits_a_slide(name):
    assert_fits_a_slide(IMAGES / name)


def test_render_norms_writes_three_figures_in_the_current_folder(tmp_path):
    out = run_example("render_norms", tmp_path)
    names = sorted(f"{n}.png" for n in ("layernorm", "batchnorm", "triangle"))
    assert sorted(p.name for p in tmp_path.iterdir()) == names and out.count("wrote") == 3
    for name in names:
        assert_fits_a_slide(tmp_path / name)


def run_example(name, cwd):
    script = EXAMPLES / f"{name}.py"
    if not script.exists():
        pytest.skip(f"{script.name} is not written yet")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=cwd, timeout=240)
    assert done.returncode == 0, done.stderr
    return done.stdout


def figure(pattern, text):
    """The number captured by `pattern` in the output, as a float."""
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in output:\n{text}"
    return float(found.group(1))


def test_layernorm_no_gradient(tmp_path):
    out = run_example("layernorm_no_gradient", tmp_path)
    assert figure(r"largest \|J\[i, j\]\| = (\S+)", out) > 0.1
    assert figure(r"max \|row sum\| = (\S+)", out) < 1e-12
    assert figure(r"\(N I - 1 - y y\^T\) vs tinygraph: rel_error = (\S+)", out) < 1e-10
    assert figure(r"\|dL/dx\| = (\S+)", out) > 0.1
    assert figure(r"dout @ J vs backward\(\): rel_error = (\S+)", out) < 1e-10
    assert_only_picture(tmp_path, "layernorm_no_gradient.png")


def test_layernorm_blog(tmp_path):
    out = run_example("layernorm_blog", tmp_path)
    diffs = [float(d) for d in re.findall(r"max \|difference\| = (\S+)   rel_error", out)]
    assert len(diffs) == 3 and max(diffs) < 1e-13
    assert figure(r"different dx: max \|difference\| = (\S+)", out) > 1e-8
    assert_only_picture(tmp_path, "layernorm_blog.png")


def test_batchnorm_triangle(tmp_path):
    out = run_example("batchnorm_triangle", tmp_path)
    assert figure(r"sum of all partials: (\S+)", out) == 0
    assert "path x -> xc: [1, -2, 0.5, 3]" in out
    assert "path x -> mu -> xc: [-0.625, -0.625, -0.625, -0.625]" in out
    assert "sum of the paths = [ 0.375 -2.625 -0.125  2.375]" in out
    assert "is the gradient zero: [0. 0. 0. 0.]" in out
    assert_only_picture(tmp_path, "batchnorm_triangle.png")


def test_batchnorm_cs231n(tmp_path):
    out = run_example("batchnorm_cs231n", tmp_path)
    for label in ("staged \\(numbered graph\\)", "compact formula", "terms with dv/dmu", "terms without dv/dmu"):
        row = re.search(label + r"\s+(\S+)\s+(\S+)\s+(\S+)", out)
        assert row and max(float(v) for v in row.groups()) < 1e-9, label
    assert figure(r"largest \|entry\| = (\S+)", out) < 1e-12
    assert figure(r"a dx missing the path through mu (\S+)", out) > 0.1
    assert_only_picture(tmp_path, "batchnorm_cs231n.png")


def test_moons_mlp(tmp_path):
    out = run_example("moons_mlp", tmp_path)
    assert figure(r"final training accuracy: (\d+)%", out) >= 95
    assert not list(tmp_path.iterdir())  # no picture unless asked for with --png


def test_examples_accept_out_dir(tmp_path):
    script = EXAMPLES / "batchnorm_triangle.py"
    target = tmp_path / "pictures"
    target.mkdir()
    done = subprocess.run([sys.executable, str(script), "--out-dir", str(target)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in target.iterdir()] == ["batchnorm_triangle.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pictures"]


def test_moons_accepts_out_dir_like_the_others(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLES / "moons_mlp.py"), "--steps", "5", "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    if "matplotlib is not installed" in done.stdout:
        assert not list(tmp_path.iterdir())
    else:
        assert (tmp_path / "moons_mlp.png").read_bytes().startswith(PNG)
