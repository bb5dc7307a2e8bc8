"""Tensor graphs: LayerNorm and BatchNorm forward + backward, tinygraph beside the numpy
closed form and PyTorch (when installed; one thread), in one run.

    python benchmarks/tensor.py            # a minute or two on 2 cores
    python benchmarks/tensor.py --quick    # the small shape only

tinygraph runs `tg.nn.functional.layer_norm` / `batch_norm` (graphs of primitive ops)
and `backward(dout)`; "numpy" is the hand-written closed form (forward, then dx,
dweight, dbias); "torch composite" is PyTorch autograd of the same formula from
primitives; "torch fused" is `torch.nn.functional.layer_norm` / `batch_norm`.
Times are CPU-time medians of whole forward + backward runs after a warm-up.

A graph keeps every value and gradient (the API asks for them), so each run holds
many arrays at once and frees them together; with its default settings glibc hands
that memory back to the OS and the next run pays the kernel to map and zero it again
(most of tinygraph's and torch composite's extra time at 1024x1024, and even at 64x256
once about eight arrays are alive). `--keep-freed-memory` calls
`tg.keep_freed_memory()` first, so every library in the run reuses freed memory:

    python benchmarks/tensor.py --keep-freed-memory
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import numpy as np
from _bench import machine, median_time, table

import tinygraph as tg

try:
    import torch
    torch.set_num_threads(1)
except ImportError:
    torch = None

EPS = 1e-5


def numpy_layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, dout: np.ndarray) -> tuple:
    """Forward and the closed-form backward over the last axis."""
    mu = x.mean(-1, keepdims=True)
    xc = x - mu
    rstd = 1.0 / np.sqrt((xc * xc).mean(-1, keepdims=True) + EPS)
    xhat = xc * rstd
    y = xhat * w + b
    dxhat = dout * w
    dx = rstd * (dxhat - dxhat.mean(-1, keepdims=True) - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    return y, dx, (dout * xhat).sum(0), dout.sum(0)


def numpy_batch_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, dout: np.ndarray) -> tuple:
    """Forward and the closed-form backward over axis 0 (training statistics)."""
    mu = x.mean(0)
    xc = x - mu
    rstd = 1.0 / np.sqrt((xc * xc).mean(0) + EPS)
    xhat = xc * rstd
    y = xhat * w + b
    dxhat = dout * w
    dx = rstd * (dxhat - dxhat.mean(0) - xhat * (dxhat * xhat).mean(0))
    return y, dx, (dout * xhat).sum(0), dout.sum(0)


def tinygraph_norm(fn: Callable) -> Callable:
    def run(x: np.ndarray, w: np.ndarray, b: np.ndarray, dout: np.ndarray) -> tuple:
        xn, wn, bn = tg.Node(x), tg.Node(w), tg.Node(b)
        y = fn(xn, wn, bn, eps=EPS)
        y.backward(dout)
        return y.data, xn.grad, wn.grad, bn.grad
    return run


def torch_norm(kind: str, fused: bool) -> Callable:
    def run(x: np.ndarray, w: np.ndarray, b: np.ndarray, dout: np.ndarray) -> tuple:
        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        axis = -1 if kind == "layer" else 0
        if fused and kind == "layer":
            y = torch.nn.functional.layer_norm(xt, (x.shape[-1],), wt, bt, EPS)
        elif fused:
            y = torch.nn.functional.batch_norm(xt, None, None, wt, bt, training=True, eps=EPS)
        else:
            mu = xt.mean(axis, keepdim=True)
            xc = xt - mu
            var = (xc ** 2).mean(axis, keepdim=True)
            y = xc / torch.sqrt(var + EPS) * wt + bt
        y.backward(torch.from_numpy(dout))
        return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()
    return run


def check(results: dict, reference: tuple, label: str) -> None:
    for name, got, want in zip(("y", "dx", "dweight", "dbias"), results, reference):
        if not np.allclose(got, want, rtol=1e-6, atol=1e-8):
            raise AssertionError(f"{label}: {name} differs from the numpy closed form")


def norm_fns(kind: str, with_torch: bool = True) -> dict[str, Callable]:
    """The implementations compared for "layer" or "batch" norm, the numpy closed form first."""
    fns = {"numpy closed form": numpy_layer_norm if kind == "layer" else numpy_batch_norm,
           "tinygraph": tinygraph_norm(tg.nn.functional.layer_norm if kind == "layer"
                                       else tg.nn.functional.batch_norm)}
    if torch and with_torch:
        fns["torch composite"] = torch_norm(kind, fused=False)
        fns["torch fused"] = torch_norm(kind, fused=True)
    return fns


def norm_times(fns: dict[str, Callable], shape: tuple[int, int], rng: np.random.Generator) -> dict[str, float]:
    """Median CPU seconds of forward + backward for each implementation, on fresh inputs of `shape`.

    Each result is first checked against the numpy closed form.
    """
    x = rng.standard_normal(shape) * 3 + 1
    w, b = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    dout = rng.standard_normal(shape)
    reference = fns["numpy closed form"](x, w, b, dout)
    number = max(1, int(1e6 / x.size))
    repeat = 9 if number > 1 else 7
    times = {}
    for label, fn in fns.items():
        check(fn(x, w, b, dout), reference, label)

        def run(fn=fn):
            return fn(x, w, b, dout)
        times[label] = median_time(run, repeat, warmup=2, number=number)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small shape only")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="call tg.keep_freed_memory() first (glibc keeps freed memory for reuse)")
    args = parser.parse_args()
    kept = tg.keep_freed_memory() if args.keep_freed_memory else False
    shapes = [(64, 256)] if args.quick else [(64, 256), (1024, 1024), (4096, 1024)]
    print(machine())
    malloc = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    print(f"glibc malloc settings: {malloc or 'defaults'}"
          + (", tg.keep_freed_memory() in effect" if kept else ""))
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}" if torch else
          "torch not installed: pip install -e '.[bench]' to compare")
    rng = np.random.default_rng(0)
    rows = []
    for kind in ("layer", "batch"):
        fns = norm_fns(kind)
        for shape in shapes:
            times = norm_times(fns, shape, rng)
            base = times["numpy closed form"]
            rows.append([f"{kind} norm", f"{shape[0]}x{shape[1]}"]
                        + [f"{times[k] * 1e3:.3f} ms ({times[k] / base:.2f}x)" for k in fns])
            print(rows[-1], flush=True)
    print()
    print(table(["layer", "shape"] + list(fns), rows))
    print("(ratios: time / numpy closed form)")


if __name__ == "__main__":
    main()
