"""The distribution: the wheel `python -m build` makes holds every module and data file, says the right
metadata, builds without deprecation warnings, and works unpacked away from the source tree."""

import os
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest

import tinygraph as tg
from tinygraph.cli import main

ROOT = Path(__file__).resolve().parent.parent
DIST_NAME = "tinygraph-autograd"  # `tinygraph` on the package index is another project
PNG = b"\x89PNG\r\n\x1a\n"
GOOD = "def mean_triangle(x, dout):\n    return dout - dout.mean()\n"


def package_files() -> set[str]:
    """Every file of the tinygraph package in the source tree (modules, py.typed, data), as wheel paths."""
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / "tinygraph").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(wheel path, sdist path, build log) from `python -m build` (the sdist, then the wheel from the sdist)."""
    outdir = tmp_path_factory.mktemp("dist")
    run = subprocess.run([sys.executable, "-m", "build", "--outdir", str(outdir), str(ROOT)],
                         capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    log = run.stdout + run.stderr
    assert run.returncode == 0, f"python -m build failed:\n{log[-8000:]}"
    (wheel,) = outdir.glob("*.whl")
    (sdist,) = outdir.glob("*.tar.gz")
    return wheel, sdist, log


def wheel_metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return HeaderParser().parsestr(zf.read(name).decode())


def test_build_prints_no_deprecation_warning(built):
    _, _, log = built
    assert not re.search(r"deprecat", log, re.IGNORECASE), log


def test_wheel_holds_every_package_file_and_nothing_else(built):
    wheel, _, _ = built
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    missing = package_files() - names
    assert not missing, f"the wheel leaves out {sorted(missing)}"
    assert "tinygraph/py.typed" in names
    others = {n for n in names if not n.startswith(("tinygraph/", "tinygraph_autograd-"))}
    assert not others, f"the wheel installs files outside the tinygraph package: {sorted(others)}"
    dist_info = {n.split("/", 1)[0] for n in names if ".dist-info/" in n}
    assert dist_info == {f"tinygraph_autograd-{tg.__version__}.dist-info"}
    assert f"tinygraph_autograd-{tg.__version__}.dist-info/licenses/LICENSE" in names


def test_sdist_holds_the_package_tests_license_and_readme(built):
    _, sdist, _ = built
    top = f"tinygraph_autograd-{tg.__version__}"
    with tarfile.open(sdist) as tf:
        names = {n.removeprefix(top + "/") for n in tf.getnames()}
    tests = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").glob("*.py")}
    missing = (package_files() | tests | {"LICENSE", "README.md", "setup.cfg", "pyproject.toml"}) - names
    assert not missing, f"the sdist leaves out {sorted(missing)}"


def test_wheel_metadata(built):
    wheel, _, _ = built
    meta = wheel_metadata(wheel)
    assert meta["Name"] == DIST_NAME
    assert meta["Version"] == tg.__version__
    assert meta["License-Expression"] == "MIT"
    assert meta["License"] is None  # the free-text field PEP 639 replaces
    classifiers = meta.get_all("Classifier")
    assert not [c for c in classifiers if c.startswith("License ::")], "the SPDX expression replaces them"
    import trove_classifiers
    unknown = [c for c in classifiers if c not in trove_classifiers.classifiers]
    assert not unknown, f"the package index would refuse these classifiers: {unknown}"
    entry_points = zipfile.ZipFile(wheel).read(f"tinygraph_autograd-{tg.__version__}.dist-info/entry_points.txt")
    assert "tinygraph = tinygraph.cli:main" in entry_points.decode()


def test_supported_pythons_agree(built):
    """Requires-Python, the version classifiers and ruff's target name the same oldest version."""
    meta = wheel_metadata(built[0])
    (oldest,) = re.fullmatch(r">=3\.(\d+)", meta["Requires-Python"]).groups()
    assert sys.version_info >= (3, int(oldest)), "the tests run on a Python the package says it does not support"
    versions = [int(m[1]) for c in meta.get_all("Classifier") if (m := re.fullmatch(r".* :: Python :: 3\.(\d+)", c))]
    assert versions and min(versions) == int(oldest), f"classifiers name 3.{versions}, Requires-Python >=3.{oldest}"
    ruff = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    assert ruff["target-version"] == f"py3{oldest}"


def test_version_option_prints_tinygraph_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"tinygraph {tg.__version__}\n"


def test_unpacked_wheel_runs_away_from_the_source_tree(built, tmp_path):
    """Only the wheel's files on the path: import, --version, the README's demo and an exercise check."""
    wheel, _, _ = built
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    (tmp_path / "answer.py").write_text(GOOD)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}

    def tinygraph(*args: str) -> str:
        run = subprocess.run([sys.executable, "-m", "tinygraph", *args], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert run.returncode == 0, f"tinygraph {' '.join(args)} failed:\n{run.stdout}{run.stderr}"
        return run.stdout

    where = subprocess.run([sys.executable, "-c", "import tinygraph; print(tinygraph.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=120, check=True).stdout.strip()
    assert Path(where) == site / "tinygraph" / "__init__.py"
    assert tinygraph("--version") == f"tinygraph {tg.__version__}\n"
    tinygraph("demo", "layernorm", "--out", "layernorm.png")
    assert (tmp_path / "layernorm.png").read_bytes().startswith(PNG)
    assert tinygraph("exercise", "check", "mean_triangle", "answer.py").startswith("PASS mean_triangle")
