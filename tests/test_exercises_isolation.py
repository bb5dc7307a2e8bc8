"""Whatever a student's function does, the grader's process is as it was afterwards and a run that did not
finish normally never passes.

Each scenario runs in a separate Python process with a time limit (a broken sandbox must not hang pytest):
the script calls check() and prints a JSON line describing the result and the state of its own process.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tinygraph.cli import main

ROOT = Path(__file__).resolve().parents[1]

SCENARIO = '''
import json, os, sys, threading, time
import numpy as np
import tinygraph as tg

def children():
    """Processes this one started that are still alive."""
    found = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as f:
            found += f.read().split()
    return found

stdout, stderr = sys.stdout, sys.stderr
threads = threading.active_count()
np_mean, rel_error = np.mean, tg.rel_error
start = time.perf_counter()
result = None
%s
seconds = time.perf_counter() - start
time.sleep(0.2)  # a thread or process left behind would show now
state = {"passed": result.passed, "feedback": result.feedback, "seconds": seconds,
         "threads": threading.active_count() - threads, "children": children(),
         "stdout_restored": sys.stdout is stdout and sys.stderr is stderr,
         "numpy_untouched": np.mean is np_mean and tg.rel_error is rel_error}
print("after check")
print(json.dumps(state))
'''


def scenario(body: str, timeout: float = 60) -> dict:
    """Run `body` (it sets `result` with check()) in a fresh interpreter; its final state as a dict."""
    code = SCENARIO % textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[-2] == "after check"  # prints after check() still reach stdout
    return json.loads(lines[-1])


def assert_clean(state: dict) -> None:
    assert state["threads"] == 0, "a thread of check() is still running"
    assert state["children"] == [], "a child process is still running"
    assert state["stdout_restored"]
    assert state["numpy_untouched"]


def test_check_called_inside_the_students_function():
    """An indentation slip: check() inside the function. No threads without end, stdout restored."""
    state = scenario('''
        def mean_triangle(x, dout):
            return dout - dout.mean()
            print(tg.exercises.check("mean_triangle", mean_triangle))
        def mean_triangle(x, dout):
            result = tg.exercises.check("mean_triangle", mean_triangle)
            return dout - dout.mean()
        result = tg.exercises.check("mean_triangle", mean_triangle, seed=1)
    ''')
    assert not state["passed"]
    assert "calls tg.exercises.check itself" in state["feedback"]
    assert "indented" in state["feedback"]
    assert_clean(state)


def test_check_inside_a_function_that_then_hangs_is_still_named():
    state = scenario('''
        def mean_triangle(x, dout):
            tg.exercises.check("mean_triangle", mean_triangle)
            while True:
                pass
        result = tg.exercises.check("mean_triangle", mean_triangle, seed=1, timeout=0.5)
    ''')
    assert "calls tg.exercises.check itself" in state["feedback"]
    assert_clean(state)


def test_check_in_a_jupyter_kernel():
    """In a notebook: a function defined in a cell is checked, an endless loop is stopped, later prints show."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    cells = [
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\nimport threading\nimport tinygraph as tg\n"
        "threads = threading.active_count()",
        "def mean_triangle(x, dout):\n    print('hello')\n    return dout - dout.mean()\n"
        "print(tg.exercises.check('mean_triangle', mean_triangle, seed=1, show_output=True))",
        "def mean_triangle(x, dout):\n    while True:\n        try:\n            pass\n        except:\n"
        "            pass\nprint(tg.exercises.check('mean_triangle', mean_triangle, seed=1, timeout=0.5))",
        "print('later', threading.active_count() - threads)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = ["".join(o.get("text", "") for o in cell.outputs) for cell in nb.cells]
    assert outputs[1].startswith("PASS mean_triangle") and "    | hello" in outputs[1]
    assert "did not return within 0.5 s" in outputs[2]
    assert outputs[3] == "later 0\n"


def test_bare_except_in_an_endless_loop_is_stopped():
    """The timeout cannot be caught: after FAIL nothing keeps a core busy."""
    state = scenario('''
        def mean_triangle(x, dout):
            while True:
                try:
                    while True:
                        pass
                except:
                    pass
        result = tg.exercises.check("mean_triangle", mean_triangle, seed=1, timeout=0.5)
    ''')
    assert not state["passed"]
    assert "did not return within 0.5 s. Look for a loop that never ends." in state["feedback"]
    assert state["seconds"] < 5
    assert_clean(state)


@pytest.mark.parametrize("statement, expected", [
    ("os._exit(0)", "Your function ended the Python process (exit status 0)"),
    ("sys.exit(0)", "Your function raised SystemExit: 0"),
    ("raise KeyboardInterrupt", "Your function raised KeyboardInterrupt"),
    ("os.kill(os.getpid(), 9)", "ended the Python process (signal 9 (SIGKILL))"),
])
def test_exits_and_interrupts_fail(statement, expected):
    state = scenario(f'''
        def mean_triangle(x, dout):
            {statement}
            return dout - dout.mean()
        result = tg.exercises.check("mean_triangle", mean_triangle, seed=1)
    ''')
    assert not state["passed"]
    assert expected in state["feedback"]
    assert_clean(state)


def test_monkeypatching_numpy_and_tinygraph_stays_in_the_child():
    """A function that makes numpy's mean and tg.rel_error lie neither passes nor changes the caller."""
    state = scenario('''
        def mean_triangle(x, dout):
            np.mean = lambda *a, **k: 0.0
            tg.rel_error = lambda a, b: 0.0
            tg.exercises.feedback.TOLERANCE = 1e9  # the judge is in the caller: this changes nothing there
            return dout
        result = tg.exercises.check("mean_triangle", mean_triangle, seed=1)
    ''')
    assert not state["passed"]
    assert "lacks the path through mu" in state["feedback"]
    assert_clean(state)


def test_printing_megabytes_is_counted_not_kept():
    state = scenario('''
        def mean_triangle(x, dout):
            for _ in range(50):
                print("x" * 100_000)
            return dout - dout.mean()
        result = tg.exercises.check("mean_triangle", mean_triangle, seed=1)
    ''')
    assert state["passed"]
    assert "Your function printed 200 lines over 4 calls" in state["feedback"]
    assert_clean(state)


def test_memory_is_limited():
    state = scenario('''
        def mean_triangle(x, dout):
            big = np.ones((1 << 31,))  # 16 GB
            return dout - dout.mean()
        result = tg.exercises.check("mean_triangle", mean_triangle, seed=1)
    ''')
    assert not state["passed"]
    assert "Your function raised MemoryError" in state["feedback"]
    assert "more memory than the 1024 MB the check allows" in state["feedback"]
    assert_clean(state)


def test_inputs_changed_in_place_are_named():
    state = scenario('''
        def mean_triangle(x, dout):
            dout -= dout.mean()
            return dout
        result = tg.exercises.check("mean_triangle", mean_triangle, seed=1)
    ''')
    assert not state["passed"]
    assert "changed its input dout in place" in state["feedback"]
    assert_clean(state)


def test_without_fork_a_thread_is_stopped_and_stdout_restored():
    """Where there is no fork the function runs in a thread: still no thread left, stdout restored."""
    state = scenario('''
        from tinygraph.exercises import sandbox
        del sandbox.os.fork
        def mean_triangle(x, dout):
            print("hello")
            while True:
                pass
        result = tg.exercises.check("mean_triangle", mean_triangle, seed=1, timeout=0.3)
        assert tg.exercises.check("mean_triangle", lambda x, dout: dout - dout.mean(), seed=1).passed
    ''')
    assert not state["passed"]
    assert "did not return within 0.3 s" in state["feedback"]
    assert_clean(state)


def test_without_fork_files_run_in_a_fresh_python(tmp_path):
    """Where there is no fork an answer file runs in `python -m tinygraph.exercises._worker`."""
    good, leaves = tmp_path / "good.py", tmp_path / "leaves.py"
    good.write_text("def mean_triangle(x, dout):\n    print('hi')\n    return dout - dout.mean()\n")
    leaves.write_text("import os\ndef mean_triangle(x, dout):\n    os._exit(3)\n")
    state = scenario(f'''
        del os.fork
        result, problem = tg.exercises.check_file("mean_triangle", {str(good)!r}, seed=1, show_output=True)
        assert problem is None and result.passed and "| hi" in result.feedback, result
        result, problem = tg.exercises.check_file("mean_triangle", {str(leaves)!r}, seed=1)
    ''')
    assert not state["passed"]
    assert "Your function ended the Python process (exit status 3)" in state["feedback"]
    assert_clean(state)


# -- the command line: one child process per answer file -------------------------------------------


def run_cli(*argv, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "tinygraph", *argv], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_cli_os_exit_in_the_function_fails_with_feedback(tmp_path):
    answer = tmp_path / "answer.py"
    answer.write_text("import os\ndef mean_triangle(x, dout):\n    os._exit(0)\n")
    done = run_cli("exercise", "check", "mean_triangle", str(answer))
    assert done.returncode == 1
    assert "FAIL mean_triangle: Your function ended the Python process (exit status 0)" in done.stdout


def test_cli_bare_except_loop_fails(tmp_path):
    answer = tmp_path / "answer.py"
    answer.write_text("def mean_triangle(x, dout):\n    while True:\n        try:\n            pass\n"
                      "        except:\n            pass\n")
    done = run_cli("exercise", "check", "mean_triangle", str(answer), "--timeout", "0.5")
    assert done.returncode == 1 and "did not return within 0.5 s" in done.stdout


def test_cli_answer_folder_is_importable(tmp_path):
    (tmp_path / "helpers.py").write_text("def centre(d):\n    return d - d.mean()\n")
    (tmp_path / "answer.py").write_text("from helpers import centre\n\ndef mean_triangle(x, dout):\n"
                                        "    return centre(dout)\n")
    done = run_cli("exercise", "check", "mean_triangle", str(tmp_path / "answer.py"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS mean_triangle" in done.stdout


def test_cli_exit_while_loading_cannot_pass(tmp_path):
    answer = tmp_path / "answer.py"
    answer.write_text("import os\nos._exit(0)\n")
    done = run_cli("exercise", "check", "mean_triangle", str(answer))
    assert done.returncode == 2
    assert "ended the Python process while loading" in done.stderr


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "soon"])
def test_cli_timeout_must_be_positive_and_finite(capsys, tmp_path, value):
    answer = tmp_path / "answer.py"
    answer.write_text("def mean_triangle(x, dout):\n    return dout - dout.mean()\n")
    with pytest.raises(SystemExit) as exc:
        main(["exercise", "check", "mean_triangle", str(answer), "--timeout", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--timeout" in err and "must be a positive number of seconds" in err and repr(value) in err
    assert "Traceback" not in err


def test_cli_seed_repeats_a_run_and_show_output(capsys, tmp_path):
    answer = tmp_path / "answer.py"
    answer.write_text("def mean_triangle(x, dout):\n    print('shape', x.shape)\n    return dout\n")
    outs = []
    for _ in range(2):
        code = main(["exercise", "check", "mean_triangle", str(answer), "--seed", "7", "--show-output"])
        outs.append(capsys.readouterr().out)
        assert code == 1
    assert outs[0] == outs[1]
    assert "--seed 7 repeats this run" in outs[0]
    assert "Your function printed 4 lines over 4 calls:\n    | shape (5,)\n    | shape (8,)" in outs[0]
