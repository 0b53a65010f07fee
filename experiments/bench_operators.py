"""Operator benchmark: Laplacian of an MLP over a batch, by backend, against the naive jax.hessian trace
measured in the same run (and the forward pass as the hardware yardstick), and against folx (a maintained
forward-Laplacian library; `pip install -e .[bench]`), timed in the same process on the same network.

Every Laplacian is a function of one point, mapped over the batch two ways: one `vmap` over all points, and
(`…, slices`) `lax.map` over slices of `auto_chunk(d)` points (the slicing of pinnflow's training step on a
CPU, `pinnflow.core.chunking`), which keeps the d × width tangents of a slice in cache.

    python -m experiments.bench_operators [--dims 2 5 50 200] [--batch 4096] [--reps 5]

Prints a table and writes experiments/results/bench_operators.csv (`x_folx`: time over folx's time with the
same mapping). Network: MLP of width 128, depth 3, tanh (the setting quoted in the speed issue).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from pinnflow.core.chunking import auto_chunk
from pinnflow.operators import EXACT, Hutchinson
from pinnflow.operators.forward_laplacian import value_grad_laplacian

try:  # the reference forward-Laplacian library, timed in the same run (pip install -e .[bench])
    import folx
except ImportError:  # pragma: no cover - optional
    folx = None

RESULTS = Path(__file__).parent / "results"


def mlp(key, d: int, width: int = 128, depth: int = 3):
    sizes = [d] + [width] * depth + [1]
    keys = jax.random.split(key, len(sizes) - 1)
    params = [(jax.random.normal(k, (a, b)) / np.sqrt(a), jnp.zeros(b))
              for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)]

    def f(x):
        h = x
        for W, b in params[:-1]:
            h = jnp.tanh(h @ W + b)
        W, b = params[-1]
        return (h @ W + b)[0]

    return f


def operator_variants(f, chunk: int) -> dict:
    """The jitted, batched Laplacians to compare (and the forward pass)."""
    laplacians = {"forward laplacian": lambda x: value_grad_laplacian(f, x)[2]}
    if folx is not None:
        laplacians["folx forward_laplacian"] = lambda x: folx.forward_laplacian(f)(x).laplacian
    vmapped = {name: jax.jit(jax.vmap(lap)) for name, lap in laplacians.items()}
    sliced = {f"{name}, slices": jax.jit(lambda xs, lap=lap: jax.lax.map(lap, xs, batch_size=chunk))
              for name, lap in laplacians.items()}
    return {
        "forward": jax.jit(jax.vmap(f)),
        "naive jax.hessian trace": jax.jit(jax.vmap(lambda x: jnp.trace(jax.hessian(f)(x)))),
        "exact (forward-over-reverse, linearize)": jax.jit(jax.vmap(lambda x: EXACT.laplacian(f, x))),
        "hutchinson k=1": jax.jit(jax.vmap(lambda x, k: Hutchinson(1).laplacian(f, x, k))),
        **vmapped,
        **sliced,
    }


def timeit(fn, *args, reps: int) -> float:
    jax.block_until_ready(fn(*args))  # compile
    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", type=int, nargs="*", default=[2, 5, 50, 200])
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args(argv)
    rows = []
    for d in args.dims:
        f = mlp(jax.random.PRNGKey(0), d)
        xs = jax.random.normal(jax.random.PRNGKey(1), (args.batch, d))
        keys = jax.random.split(jax.random.PRNGKey(2), args.batch)
        variants = operator_variants(f, auto_chunk(d))
        times = {}
        for name, fn in variants.items():
            call_args = (xs, keys) if name.startswith("hutchinson") else (xs,)
            times[name] = timeit(fn, *call_args, reps=args.reps)
        for name, t in times.items():
            ref = "folx forward_laplacian" + (", slices" if name.endswith(", slices") else "")
            rows.append({"d": d, "batch": args.batch, "variant": name, "seconds": t, "slice": auto_chunk(d),
                         "speedup_vs_naive": times["naive jax.hessian trace"] / t,
                         "x_forward": t / times["forward"], "goal_x_forward": 1.3 * (d + 2),
                         "x_folx": t / times[ref] if ref in times else float("nan")})
    df = pd.DataFrame(rows)
    df["machine"] = (f"{platform.machine()}, {len(os.sched_getaffinity(0))} of {os.cpu_count()} cpus, "
                     f"{jax.devices()[0].platform}")
    df["date"] = time.strftime("%Y-%m-%d")
    RESULTS.mkdir(exist_ok=True)
    df.to_csv(RESULTS / "bench_operators.csv", index=False)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(df.drop(columns=["machine", "date"]).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return df


if __name__ == "__main__":
    main()
