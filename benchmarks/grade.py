"""Grading a class: how long `tinygraph exercise grade` takes for many submissions, in one run.

    python benchmarks/grade.py [--count 1000] [--jobs N] [--exercise layernorm_backward]

Writes COUNT answer files into a temporary folder, a realistic mix (most right, the
rest missing a path, with a sign error, raising, printing, looping past the time
limit, or calling os._exit), then runs the real command,
`python -m tinygraph exercise grade NAME FOLDER --json ...`, and times it by the wall
clock (the work happens in child processes). The reference, measured in the same run,
is the floor of one fresh Python per submission: starting `python -c "import tinygraph"`
COUNT / JOBS times in a row.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _bench import machine, table

ROOT = Path(__file__).resolve().parents[1]

RIGHT = '''import numpy as np

def layernorm_backward(dout, x, weight, eps):
    xc = x - x.mean(axis=-1, keepdims=True)
    std = np.sqrt((xc ** 2).mean(axis=-1, keepdims=True) + eps)
    xhat = xc / std
    g = dout * weight
    dx = (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True)) / std
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
'''
MIX = [  # (share of the class, what the file does)
    (0.60, "right", RIGHT),
    (0.15, "direct path only", RIGHT.replace("(g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean("
                                             "axis=-1, keepdims=True)) / std", "g / std")),
    (0.10, "wrong sign", RIGHT.replace("- xhat *", "+ xhat *")),
    (0.06, "raises", RIGHT.replace("    xc = ", "    xc = x.nope\n    xc = ")),
    (0.05, "prints", RIGHT.replace("    g = dout", "    print(x.shape, xhat)\n    g = dout")),
    (0.02, "loops past the limit", RIGHT.replace("    xc = ", "    while True:\n        pass\n    xc = ")),
    (0.02, "os._exit(0)", RIGHT.replace("    xc = ", "    import os\n    os._exit(0)\n    xc = ")),
]


def write_class(folder: Path, count: int) -> Counter:
    kinds = []
    for share, kind, source in MIX:
        kinds += [(kind, source)] * round(share * count)
    kinds = (kinds + [MIX[0][1:]] * count)[:count]
    for i, (_, source) in enumerate(kinds):
        (folder / f"student_{i:04d}.py").write_text(source)
    return Counter(kind for kind, _ in kinds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--exercise", default="layernorm_backward")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "submissions"
        folder.mkdir()
        kinds = write_class(folder, args.count)
        results = Path(tmp) / "results.json"
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "tinygraph", "exercise", "grade", args.exercise, str(folder),
                               "--jobs", str(args.jobs), "--timeout", str(args.timeout), "--json", str(results)],
                              capture_output=True, text=True, env=env)
        grading = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"grade failed ({done.returncode}): {done.stderr}")
        data = json.loads(results.read_text())
        starts = max(1, args.count // args.jobs)
        start = time.perf_counter()
        for _ in range(starts):
            subprocess.run([sys.executable, "-c", "import tinygraph"], check=True, env=env)
        floor = time.perf_counter() - start

    print(f"# Grading {args.count} submissions of {args.exercise} ({machine()})\n")
    print(table(["submissions", "what they do"], [[n, k] for k, n in kinds.items()]) + "\n")
    print(table(["", "wall time", "per submission"], [
        [f"tinygraph exercise grade, --jobs {args.jobs}, --timeout {args.timeout:g}", f"{grading:.1f} s",
         f"{1000 * grading / args.count:.0f} ms"],
        [f"reference: {starts} x `python -c 'import tinygraph'` in a row", f"{floor:.1f} s",
         f"{1000 * floor / args.count:.0f} ms"],
        ["ratio grade / reference", f"{grading / floor:.2f}", ""],
    ]))
    print(f"\npassed: {data['passed']} of {data['total']}")


if __name__ == "__main__":
    main()
