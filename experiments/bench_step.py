"""Training-step benchmark: one jitted Adam step (loss, gradient, update) per loss and dimension, measured in
the same run for

- naive: the textbook implementation: traces of jax.jacfwd / jax.hessian, separate passes for ∇V, ∂_tV and
  the trace, activations differentiated from their formulas (`silu_autodiff`);
- lean_vmap: pinnflow's operators: the `auto` backend (forward Laplacian for second-order traces, linearised
  JVPs for divergences) and activations with one-multiply JVP rules (`silu`), vmapped over the whole batch;
- lean: pinnflow's default step: the same, with the gradient accumulated over slices of `--point-chunk`
  points (`optim.point_chunk`, "auto" = 16–64 by dimension on one CPU device; `pinnflow.core.chunking`);
- hutchinson (d ≥ 50): the lean step with `Hutchinson(1)` traces and unbiased squared residuals (not exact).

The naive step takes one vmap over the batch, as a textbook implementation would.

    python -m experiments.bench_step [--losses log_ce ...] [--dims 2 5 50] [--batch 4096] [--reps 3]
        [--point-chunk auto] [--out bench_step.csv]

Prints a table and writes experiments/results/<out>.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
import pandas as pd

import pinnflow as pf
import problems
from pinnflow.core.chunking import resolve_chunk
from pinnflow.operators import Auto, Hutchinson
from pinnflow.pinn.train import build, make_value_and_grad

RESULTS = Path(__file__).parent / "results"
TARGETS = {2: ("gmm", {}), 5: ("many_well", {"d": 5, "m": 5, "delta": 4.0}),
           50: ("many_well", {"d": 50, "m": 5, "delta": 2.0}), 200: ("many_well", {"d": 200, "m": 5, "delta": 2.0})}


@dataclass(frozen=True)
class Naive:
    """The textbook backend: dense Jacobians and Hessians, then traces."""

    stochastic: bool = False

    def divergence(self, f, x, key=None):
        return jnp.trace(jax.jacfwd(f)(x))

    def laplacian(self, f, x, key=None):
        return jnp.trace(jax.hessian(f)(x))

    def weighted_trace(self, f, A, x, key=None):
        return jnp.sum(A * jax.hessian(f)(x))


def step_time(loss_name: str, d: int, batch: int, reps: int, op, activation: str = "silu",
              chunk: int | None = None) -> float:
    name, params = TARGETS[d]
    target = problems.get(name, **params)
    config = pf.Config(loss=loss_name).override(["network.width=128", "network.depth=3",
                                                 f"network.activation={activation}"])
    loss, setup, domain, graphdef, state = build(target, config)
    value_and_grad = make_value_and_grad(loss, setup, graphdef, op, config.alpha, chunk)
    tx = optax.adam(1e-4)
    opt_state = tx.init(state)
    xs, ts = domain.sample(jax.random.PRNGKey(0), batch)

    @jax.jit
    def step(params, opt_state):
        (v, _), g = value_and_grad(params, xs, ts, jax.random.PRNGKey(1))
        updates, opt_state = tx.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, v

    out = step(state, opt_state)
    jax.block_until_ready(out)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(step(state, opt_state))
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--losses", nargs="*", default=pf.losses.names())
    ap.add_argument("--dims", type=int, nargs="*", default=[2, 5, 50])
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--hutchinson-min-dim", type=int, default=50)
    ap.add_argument("--point-chunk", default="auto",
                    help="points per gradient slice of the lean step: auto, none or an integer")
    ap.add_argument("--out", default="bench_step.csv")
    ap.add_argument("--update", action="store_true",
                    help="replace only the measured (loss, d, batch) rows of an existing CSV, keep the others")
    args = ap.parse_args(argv)
    point_chunk = None if args.point_chunk == "none" else (
        args.point_chunk if args.point_chunk == "auto" else int(args.point_chunk))
    rows = []
    for d in args.dims:
        chunk = resolve_chunk(point_chunk, d)
        for loss in args.losses:
            row = {"loss": loss, "d": d, "batch": args.batch, "point_chunk": chunk}
            row["naive_s"] = step_time(loss, d, args.batch, args.reps, Naive(), "silu_autodiff")
            row["lean_vmap_s"] = step_time(loss, d, args.batch, args.reps, Auto())
            row["lean_s"] = step_time(loss, d, args.batch, args.reps, Auto(), chunk=chunk)
            row["speedup_lean_vmap"] = row["naive_s"] / row["lean_vmap_s"]
            row["speedup_lean"] = row["naive_s"] / row["lean_s"]
            msg = (f"{loss:>14} d={d:<4} naive {row['naive_s']:.4f}s  lean_vmap {row['lean_vmap_s']:.4f}s "
                   f"({row['speedup_lean_vmap']:.2f}x)  lean {row['lean_s']:.4f}s ({row['speedup_lean']:.2f}x)")
            if d >= args.hutchinson_min_dim:
                row["hutchinson_s"] = step_time(loss, d, args.batch, args.reps, Hutchinson(1), chunk=chunk)
                row["speedup_hutchinson"] = row["naive_s"] / row["hutchinson_s"]
                msg += f"  hutchinson {row['hutchinson_s']:.4f}s ({row['speedup_hutchinson']:.2f}x)"
            rows.append(row)
            print(msg, flush=True)
    df = pd.DataFrame(rows)
    df["machine"] = (f"{platform.machine()}, {len(os.sched_getaffinity(0))} of {os.cpu_count()} cpus, "
                     f"{jax.devices()[0].platform}")
    df["date"] = time.strftime("%Y-%m-%d")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / args.out
    if args.update and out.exists():
        old = pd.read_csv(out)
        keep = ~old.set_index(["loss", "d", "batch"]).index.isin(df.set_index(["loss", "d", "batch"]).index)
        df = pd.concat([old[keep], df]).sort_values(["d", "loss"], kind="stable")
    df.to_csv(out, index=False)
    return df


if __name__ == "__main__":
    main()
