"""The `tinygraph` command: demos write pictures, exercises list/show/check with the documented exit codes."""

import subprocess
import sys

import pytest
from conftest import run_cli

import tinygraph as tg
from tinygraph.cli import DEMOS

PNG = b"\x89PNG\r\n\x1a\n"

GOOD = "def mean_triangle(x, dout):\n    return dout - dout.mean()\n"
DIRECT = "def mean_triangle(x, dout):\n    return dout\n"




# -- demo ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fanout", [[], ["--fanout"]])
@pytest.mark.parametrize("name", ["layernorm", "batchnorm", "rmsnorm", "triangle"])
def test_demo_writes_png(capsys, tmp_path, name, fanout):
    out = tmp_path / f"{name}.png"
    code, stdout, _ = run_cli(capsys, "demo", name, "--out", str(out), *fanout)
    assert code == 0
    data = out.read_bytes()
    assert data.startswith(PNG)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert 1 / 3 <= width / height <= 3, (width, height)  # fits a slide
    assert str(out) in stdout
    assert list(tmp_path.iterdir()) == [out]


def test_demo_svg_format_and_rankdir(capsys, tmp_path):
    out = tmp_path / "tri.img"
    code, _, _ = run_cli(capsys, "demo", "triangle", "--out", str(out), "--format", "svg", "--rankdir", "TB")
    assert code == 0
    text = out.read_text()
    assert "<svg" in text and "mu" in text and "xc" in text


def test_unknown_demo_lists_the_names(capsys, tmp_path):
    code, _, err = run_cli(capsys, "demo", "nope", "--out", str(tmp_path / "x.png"))
    assert code == 2
    for name in DEMOS:
        assert name in err
    assert not list(tmp_path.iterdir())


def test_demo_needs_an_output(capsys):
    code, _, err = run_cli(capsys, "demo", "triangle")
    assert code == 2 and "--out" in err


def test_demo_into_a_missing_folder_fails_cleanly(capsys, tmp_path):
    code, _, err = run_cli(capsys, "demo", "triangle", "--out", str(tmp_path / "no" / "x.png"))
    assert code == 1 and "does not exist" in err and f"mkdir -p {tmp_path / 'no'}" in err
    assert "os.makedirs" not in err


def test_demo_fanout_draws_the_fan_out_view(capsys, tmp_path):
    plain, fanout = tmp_path / "plain.svg", tmp_path / "fanout.svg"
    assert run_cli(capsys, "demo", "triangle", "--out", str(plain))[0] == 0
    assert run_cli(capsys, "demo", "triangle", "--out", str(fanout), "--fanout")[0] == 0
    assert tg.render.FANOUT not in plain.read_text()
    assert tg.render.FANOUT in fanout.read_text() and "grad = sum" in fanout.read_text()


@pytest.mark.parametrize("argv, says", [
    (["--out", "t.svg", "--format", "png"], "--out t.svg ends in .svg but --format png was given"),
    (["--out", "t.txt"], "--out t.txt ends in .txt; pictures are .png, .svg or .jpg (or add --format png)"),
    (["--out", "t"], "--out t has no extension"),
    (["--out", "t.png", "--steps"], "--steps writes an HTML page: give --out t.html"),
    (["--out", "t.html", "--steps", "--fanout"], "--steps writes an HTML page; leave out --fanout"),
])
def test_demo_output_problems_are_usage_errors_in_shell_terms(capsys, tmp_path, monkeypatch, argv, says):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "demo", "triangle", *argv)
    assert code == 2 and says in err and out == ""
    assert "format=" not in err and "Graphviz" not in err and "dot" not in err.replace(".", " ").split()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", list(DEMOS))
def test_demo_steps_writes_one_page(capsys, tmp_path, name):
    out = tmp_path / f"{name}.html"
    code, printed, err = run_cli(capsys, "demo", name, "--steps", "--out", str(out))
    assert code == 0, err
    assert "<svg" in out.read_text() and str(out) in printed
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_help_lists_commands(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "demo" in out and "exercise" in out
    assert run_cli(capsys) == (0, out, "")  # `tinygraph` alone prints the same help, with its examples
    assert "examples:" in out and "tinygraph demo batchnorm --out bn.png --fanout" in out
    code, out, _ = run_cli(capsys, "demo", "--help")
    assert code == 0 and all(name in out for name in DEMOS) and "--rankdir" in out and "--fanout" in out
    code, out, _ = run_cli(capsys, "exercise", "check", "--help")
    assert code == 0 and "exit status" in out


# -- exercise --------------------------------------------------------------------------------------


def test_exercise_list_and_show(capsys):
    code, out, _ = run_cli(capsys, "exercise", "list")
    assert code == 0 and out.split()[0] == "mean_triangle"
    assert all(name in out for name in tg.exercises.names())
    code, out, _ = run_cli(capsys, "exercise", "show", "layernorm_backward")
    assert code == 0 and "def layernorm_backward(dout, x, weight, eps):" in out
    code, _, err = run_cli(capsys, "exercise", "show", "nope")
    assert code == 2 and "mean_triangle" in err


@pytest.mark.parametrize("source, code, expected", [
    (GOOD, 0, "PASS mean_triangle"),
    (DIRECT, 1, "it lacks the path through mu"),
])
def test_exercise_check_pass_and_fail(capsys, tmp_path, source, code, expected):
    answer = tmp_path / "answer.py"
    answer.write_text(source)
    status, out, _ = run_cli(capsys, "exercise", "check", "mean_triangle", str(answer))
    assert status == code
    assert expected in out


@pytest.mark.parametrize("source, expected", [
    ("def mean_triangle(x, dout)\n    return dout\n", "syntax error at line 1"),
    ("def other(x, dout):\n    return dout\n", "defines no function named mean_triangle (it defines: other)"),
    ("import numpy\nraise RuntimeError('boom')\n", "RuntimeError: boom"),
    ("mean_triangle = 3\n", "is not a function: it is 3 (type int)"),
    ("import sys\nsys.exit(4)\n", "SystemExit"),
])
def test_exercise_check_unloadable_file(capsys, tmp_path, source, expected):
    answer = tmp_path / "answer.py"
    answer.write_text(source)
    status, out, err = run_cli(capsys, "exercise", "check", "mean_triangle", str(answer))
    assert status == 2
    assert expected in err
    assert out == ""


def test_exercise_check_file_that_never_finishes_loading(capsys, tmp_path):
    answer = tmp_path / "answer.py"
    answer.write_text("while True:\n    pass\n")
    status, out, err = run_cli(capsys, "exercise", "check", "mean_triangle", str(answer), "--timeout", "0.5")
    assert status == 2 and "did not finish loading within 0.5 s" in err


def test_exercise_check_missing_file(capsys, tmp_path):
    status, _, err = run_cli(capsys, "exercise", "check", "mean_triangle", str(tmp_path / "none.py"))
    assert status == 2 and "no such file" in err


def test_exercise_check_timeout_option(capsys, tmp_path):
    answer = tmp_path / "answer.py"
    answer.write_text("def mean_triangle(x, dout):\n    while True:\n        pass\n")
    status, out, _ = run_cli(capsys, "exercise", "check", "mean_triangle", str(answer), "--timeout", "0.2")
    assert status == 1 and "did not return within 0.2 s" in out


# -- entry points ------------------------------------------------------------------------------------


def test_no_arguments_prints_the_help(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tinygraph"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: tinygraph") and "examples:" in done.stdout


def test_python_dash_m_and_console_script(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tinygraph", "exercise", "list"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 0 and "mean_triangle" in done.stdout
    answer = tmp_path / "answer.py"
    answer.write_text(DIRECT)
    done = subprocess.run([sys.executable, "-m", "tinygraph", "exercise", "check", "mean_triangle", str(answer)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 1 and "lacks the path through mu" in done.stdout
