"""Before/after: the same benchmarks on the engine at a git ref and on a working tree, in one run.

    python benchmarks/compare_engines.py --baseline main            # scalar + tensor, 3 rounds
    python benchmarks/compare_engines.py --baseline main --quick    # smoke run: small cases, 1 round
    python benchmarks/compare_engines.py --baseline HEAD~3 --tree ../other-worktree --cases scalar

The baseline's `tinygraph/` is exported with `git archive REF tinygraph` into a
temporary directory. Each measurement runs in a child process with PYTHONPATH set to
that directory (before) or to the tree (after), so the two engines never share a
process; the benchmark code itself (this folder's scalar.py and tensor.py) is the same
for both. Rounds alternate the order (before, after / after, before) so that a drift of
the shared machine's speed falls on both alike.

Each child measures its reference in the same process: micrograd for the scalar cases
(build and backward time per node), the numpy closed form for LayerNorm / BatchNorm
forward + backward. The table gives both engines' ratios against their reference
(median over rounds) and after / before; absolute times are in the last columns.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from _bench import machine, table

HERE = Path(__file__).resolve().parent


# -- the child: one engine, every case, its reference beside it -------------------------------

def measure_scalar(quick: bool) -> dict:
    """Per-node build and backward seconds of tinygraph and micrograd for the random and mlp cases."""
    import scalar  # this folder's benchmark; imports whichever tinygraph is on the path
    if scalar.Value is None:
        raise SystemExit("micrograd is not installed: pip install -e '.[bench]'")
    n_ops, points, repeat = (10_000, 20, 3) if quick else (100_000, 100, 5)
    results = {}
    for case, make in scalar.graph_cases(n_ops, points):
        for lib, V in (("tinygraph", scalar.tg.Node), ("micrograd", scalar.Value)):
            limit = sys.getrecursionlimit()
            sys.setrecursionlimit(scalar.deep_recursion(lib))
            try:
                r = scalar.measure(lib, make(V), repeat)
            finally:
                sys.setrecursionlimit(limit)
            results[f"{case} | {lib}"] = {"build": r["build"] * 1e-6, "backward": r["backward"] * 1e-6}
    return results


def measure_tensor(quick: bool) -> dict:
    """Forward + backward seconds of tinygraph and the numpy closed form for LayerNorm and BatchNorm."""
    import numpy as np
    import tensor
    shapes = [(64, 256)] if quick else [(64, 256), (1024, 1024)]
    rng = np.random.default_rng(0)
    results = {}
    for kind in ("layer", "batch"):
        fns = tensor.norm_fns(kind, with_torch=False)
        for shape in shapes:
            times = tensor.norm_times(fns, shape, rng)
            case = f"{kind} norm {shape[0]}x{shape[1]}"
            results[f"{case} | tinygraph"] = {"fwd+bwd": times["tinygraph"]}
            results[f"{case} | numpy"] = {"fwd+bwd": times["numpy closed form"]}
    return results


def child(cases: list[str], quick: bool) -> None:
    import tinygraph
    out = {"engine": str(Path(tinygraph.__file__).resolve().parent)}
    if "scalar" in cases:
        out.update(measure_scalar(quick))
    if "tensor" in cases:
        out.update(measure_tensor(quick))
    print(json.dumps(out))


# -- the parent: export, alternate, compare ---------------------------------------------------

def export(tree: Path, ref: str, into: Path) -> Path:
    """`git archive REF tinygraph` of `tree`'s repository, unpacked into `into`; returns `into`."""
    archive = into / "engine.tar"
    with open(archive, "wb") as f:
        done = subprocess.run(["git", "-C", str(tree), "archive", ref, "tinygraph"], stdout=f, stderr=subprocess.PIPE)
    if done.returncode != 0:
        raise SystemExit(f"git archive {ref} failed: {done.stderr.decode().strip()}")
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse paths outside `into`
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)
    archive.unlink()
    return into


def run_child(engine_root: Path, cases: list[str], quick: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(engine_root))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--cases", ",".join(cases)]
    done = subprocess.run(cmd + (["--quick"] if quick else []), env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark child for {engine_root} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    engine = Path(result.pop("engine"))
    if engine != (engine_root / "tinygraph").resolve():
        raise SystemExit(f"the child imported tinygraph from {engine}, not from {engine_root}: "
                         "is another tinygraph earlier on the path?")
    return result


def ratios(runs: list[dict]) -> dict[tuple[str, str], list[float]]:
    """(case, metric) -> tinygraph / reference of each run."""
    out: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        for key, metrics in run.items():
            case, lib = key.split(" | ")
            if lib != "tinygraph":
                continue
            reference = next(v for k, v in run.items() if k.startswith(case + " | ") and k != key)
            for metric, seconds in metrics.items():
                out.setdefault((case, metric), []).append(seconds / reference[metric])
    return out


def seconds(runs: list[dict], case: str, metric: str) -> float:
    return statistics.median(run[f"{case} | tinygraph"][metric] for run in runs)


def fmt_time(s: float, metric: str) -> str:
    return f"{s * 1e6:.2f} us/node" if metric in ("build", "backward") else f"{s * 1e3:.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="main", help="git ref of the engine before (default: main)")
    parser.add_argument("--tree", default=str(HERE.parent),
                        help="checkout whose tinygraph/ is the engine after (default: this one)")
    parser.add_argument("--cases", default="scalar,tensor", help="comma-separated: scalar, tensor")
    parser.add_argument("--rounds", type=int, default=None, help="before/after pairs (default 3; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="small cases only, one round: a smoke run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - {"scalar", "tensor"}
    if unknown:
        parser.error(f"--cases: unknown {', '.join(sorted(unknown))}; choose from scalar, tensor")
    if args.child:
        child(cases, args.quick)
        return
    rounds = args.rounds or (1 if args.quick else 3)
    tree = Path(args.tree).resolve()
    if not (tree / "tinygraph" / "__init__.py").exists():
        parser.error(f"--tree: {tree} has no tinygraph/ package")

    print(machine())
    with tempfile.TemporaryDirectory(prefix="tinygraph-baseline-") as tmp:
        before_root = export(tree, args.baseline, Path(tmp))
        engines = {"before": before_root, "after": tree}
        runs: dict[str, list[dict]] = {"before": [], "after": []}
        for i in range(rounds):
            order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
            for name in order:
                print(f"round {i + 1}/{rounds}: {name} ({engines[name]})", file=sys.stderr, flush=True)
                runs[name].append(run_child(engines[name], cases, args.quick))

    before, after = ratios(runs["before"]), ratios(runs["after"])
    rows = []
    for (case, metric), r_before in before.items():
        r_after = after[(case, metric)]
        b, a = statistics.median(r_before), statistics.median(r_after)
        rows.append([case, metric, f"{b:.2f}x", f"{a:.2f}x", f"{a / b:.2f}",
                     fmt_time(seconds(runs["before"], case, metric), metric),
                     fmt_time(seconds(runs["after"], case, metric), metric)])
    print()
    print(f"before: {args.baseline} (git archive), after: {tree}; {rounds} round(s), medians")
    print(table(["case", "metric", "before / ref", "after / ref", "after / before", "before time", "after time"],
                rows))
    print("(ref: micrograd for the scalar cases, the numpy closed form for the norm layers; below 1 is faster)")


if __name__ == "__main__":
    main()
