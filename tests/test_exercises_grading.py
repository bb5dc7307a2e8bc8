"""`tinygraph exercise grade`: a class of answer files, one child each; table, JSON, CSV and Gradescope output."""

import csv
import json

import pytest
from conftest import run_cli

from tinygraph import exercises as ex

SUBMISSIONS = {
    "alice.py": "def mean_triangle(x, dout):\n    return dout - dout.mean()\n",
    "bob.py": "def mean_triangle(x, dout):\n    return dout\n",
    "carol.py": "import os\n\ndef mean_triangle(x, dout):\n    os._exit(0)\n",
    "dave.py": "def mean_triangle(x, dout)\n    return dout\n",
    "erin/answer.py": "from helpers import centre\n\ndef mean_triangle(x, dout):\n    return centre(dout)\n",
    "erin/helpers.py": "def centre(d):\n    return d - d.mean()\n",
    "frank.py": "def mean_triangle(x, dout):\n    while True:\n        try:\n            pass\n        except:\n"
                "            pass\n",
}


@pytest.fixture
def classroom(tmp_path):
    folder = tmp_path / "submissions"
    for name, source in SUBMISSIONS.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(source)
    return folder


def test_grade_a_folder(capsys, classroom, tmp_path):
    out_json, out_csv, out_gs = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "results.json"
    code, out, err = run_cli(capsys, "exercise", "grade", "mean_triangle", str(classroom), "--timeout", "0.5",
                             "--seed", "3", "--json", str(out_json), "--csv", str(out_csv), "--gradescope", str(out_gs),
                             "--jobs", "2")
    assert code == 0, err  # every submission was graded, whatever the scores
    rows = {line.split()[0].rsplit("/", 2)[-1]: line.split()[1:3] for line in out.splitlines()[1:8]}
    assert rows == {"alice.py": ["PASS", "0.0e+00"], "bob.py": ["FAIL", "1.0e+00"], "carol.py": ["FAIL", "-"],
                    "dave.py": ["FAIL", "-"], "answer.py": ["PASS", "0.0e+00"], "helpers.py": ["FAIL", "-"],
                    "frank.py": ["FAIL", "-"]}
    assert "2 of 7 passed." in out

    data = json.loads(out_json.read_text())
    assert data["exercise"] == "mean_triangle" and data["passed"] == 2 and data["total"] == 7
    by_file = {s["file"].rsplit("/", 1)[-1]: s for s in data["submissions"]}
    assert "lacks the path through mu" in by_file["bob.py"]["feedback"]
    assert "ended the Python process" in by_file["carol.py"]["feedback"]
    assert "syntax error at line 1" in by_file["dave.py"]["feedback"] and not by_file["dave.py"]["loaded"]
    assert "did not return within 0.5 s" in by_file["frank.py"]["feedback"]
    assert "defines no function named mean_triangle (it defines: centre)" in by_file["helpers.py"]["feedback"]
    assert all(isinstance(s["seed"], int) for s in data["submissions"] if s["loaded"])
    assert by_file["bob.py"]["error"] == pytest.approx(1.0, abs=0.1)

    with open(out_csv, newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 7
    assert {r["file"].rsplit("/", 1)[-1]: r["passed"] for r in table}["alice.py"] == "True"
    assert any("lacks the path through mu" in r["feedback"] for r in table)

    gradescope = json.loads(out_gs.read_text())
    assert gradescope["score"] == 2.0
    assert len(gradescope["tests"]) == 7
    for test in gradescope["tests"]:
        assert set(test) == {"name", "score", "max_score", "output", "visibility"}
        assert test["max_score"] == 1.0 and test["score"] in (0.0, 1.0) and test["visibility"] == "visible"
        assert test["name"].startswith("mean_triangle (")
        assert test["output"].startswith("PASS" if test["score"] else "FAIL")


def test_grade_with_a_seed_is_repeatable(capsys, classroom):
    bob = str(classroom / "bob.py")
    first = run_cli(capsys, "exercise", "grade", "mean_triangle", bob, "--seed", "3")
    assert first[0] == 0
    assert run_cli(capsys, "exercise", "grade", "mean_triangle", bob, "--seed", "3") == first
    rows = ex.grade("mean_triangle", [bob], seed=3)
    assert rows[0].result.seed == 3 and "seed 3" in rows[0].feedback


@pytest.mark.parametrize("extra, message", [
    (["--json", "/no/such/folder/r.json"], "--json /no/such/folder/r.json: the folder /no/such/folder does not exist"),
    (["--jobs", "0"], "--jobs: must be a whole number of 1 or more"),
    (["--timeout", "inf"], "--timeout: must be a positive number of seconds"),
])
def test_grade_bad_options_exit_2_before_grading(capsys, classroom, extra, message):
    code, out, err = run_cli(capsys, "exercise", "grade", "mean_triangle", str(classroom), *extra)
    assert code == 2 and message in err and out == ""


def test_grade_missing_path_and_empty_folder(capsys, tmp_path):
    code, _, err = run_cli(capsys, "exercise", "grade", "mean_triangle", str(tmp_path / "nope"))
    assert code == 2 and "no such file or folder" in err
    code, _, err = run_cli(capsys, "exercise", "grade", "mean_triangle", str(tmp_path))
    assert code == 2 and "no .py files in" in err


class _Terminal:
    """A stand-in for a terminal's stderr."""

    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_progress_bar_on_a_terminal_only(capsys, classroom, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    code, _, _ = run_cli(capsys, "exercise", "grade", "mean_triangle", str(classroom / "alice.py"),
                     str(classroom / "bob.py"))
    assert code == 0
    assert terminal.text == ("\rgrading [###############...............] 1/2"
                             "\rgrading [##############################] 2/2\n")
    code, _, err = run_cli(capsys, "exercise", "grade", "mean_triangle", str(classroom / "alice.py"))
    assert code == 0 and "grading [" not in err
