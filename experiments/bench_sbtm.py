"""SBTM scaling benchmark: the cost of one time step and of one inner Adam step on the harmonic trap (paper 000
§3.1.1: N particles in 2-D, d = 2N, n samples) with the pair-potential score (one hidden layer of 100 swish
units, paper 000 App. D.1), measured in the same run for

- exact: the implicit loss with the exact Laplacian in closed form (`PairPotential.value_grad_laplacian`,
  the default `model.closed_form=true`);
- hutchinson: the implicit loss with Hutchinson's trace (`operator.kind=hutchinson`, one probe), by autodiff
  of the closed-form U (unbiased, not exact);
- denoising: the antithetic denoising loss (no divergence, the score alone; biased by its noise scale);
- generic: the exact implicit loss by autodiff over the concatenated pair inputs (`model.closed_form=false`):
  the cost before the closed form, at `--generic-particles` only (it grows fastest).

Every time step is Heun with Δt = 0.01 in float32 and does exactly `--inner` Adam steps (inner.gtol = 0), so
rows are comparable. `step_s`: one time step (moving the particles, the inner steps, the flow at the new
particles); `inner_s`: one inner Adam step (loss, gradient, update), the solver's training of one time step
(`inner` steps, one call) divided by `inner` (the rest of a step is moving the particles and the flows). Times
are the best of `--reps` calls after compilation (one call where the first took longer than 2·`--single-rep-s`).
A row whose step, projected by N² from the same variant at a smaller N, would exceed `--max-step-s` is not
run and reports that projection (`projected` = True). `x_exact_smallest`: step_s over that of the exact row
at the smallest N; `x_generic`: the generic row's step_s at the same N over this row's. `load`: the 1-minute
load average when the row started (the machine's cores are shared; on 2 cores a load of 4 about halves the
speed).

    python -m experiments.bench_sbtm [--particles 5 25 50 100] [--variants exact hutchinson denoising]
        [--generic-particles 5 25] [--samples 100] [--inner 25] [--reps 2] [--max-step-s 15] [--quick]
        [--out bench_sbtm.csv]

Prints a table and writes experiments/results/<out> (`--quick`: a smoke run, N = 5, 3 inner steps, one
rep, written to bench_sbtm_quick.csv unless --out is given).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from pathlib import Path

import jax
import pandas as pd

import problems.fokker_planck as fp
from pinnflow.core.precision import precision
from pinnflow.sbtm import SBTMConfig
from pinnflow.sbtm.solver import build, initial_state

RESULTS = Path(__file__).parent / "results"

VARIANTS: dict[str, dict] = {
    "exact": {"loss": {"kind": "implicit"}, "operator": {"kind": "auto"}},
    "hutchinson": {"loss": {"kind": "implicit"}, "operator": {"kind": "hutchinson", "probes": 1}},
    "denoising": {"loss": {"kind": "denoising", "antithetic": True}, "operator": {"kind": "auto"}},
    "generic": {"loss": {"kind": "implicit"}, "operator": {"kind": "auto"}, "model": {"closed_form": False}},
}
"""Config sections per benchmarked variant (merged into `config`)."""


def config(variant: str, samples: int, inner: int) -> SBTMConfig:
    """The benchmark's SBTM config: pair potential, Heun Δt = 0.01, float32, exactly `inner` Adam steps."""
    over = VARIANTS[variant]
    return SBTMConfig(
        n_particles=samples, precision="float32", seed=0,
        model={"kind": "pair_potential", **over.get("model", {})}, loss=over["loss"], operator=over["operator"],
        time={"dt": 0.01, "integrator": "heun"}, inner={"max_steps": inner, "gtol": 0.0},
        init={"max_steps": 1})  # the initial fit does not matter for the cost of a step


def best_of(fn, reps: int) -> float:
    """The smallest wall time of `reps` calls of fn() (each blocked until ready)."""
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return best


def measure(variant: str, N: int, samples: int = 100, inner: int = 25, reps: int = 2,
            single_rep_s: float = 5.0) -> dict:
    """One row: seconds per time step and per inner Adam step of `variant` on the harmonic trap with N particles
    (module docstring)."""
    problem = fp.get("harmonic_trap", N=N)
    cfg = config(variant, samples, inner)
    load = os.getloadavg()[0]  # other processes on the machine share its cores: record how busy it was
    with precision(cfg.precision):
        solver = build(problem, cfg)
        state, _ = initial_state(solver)
        train, step = jax.jit(solver.train), jax.jit(solver.step)
        args = (state.params, state.opt_state, state.X, jax.random.PRNGKey(1))
        t0 = time.perf_counter()
        jax.block_until_ready(train(*args))
        first = time.perf_counter() - t0
        train_s = best_of(lambda: train(*args), 1 if first > 2 * single_rep_s else reps)
        t0 = time.perf_counter()
        state, _ = jax.block_until_ready(step(state, None))
        first = time.perf_counter() - t0
        holder = [state]

        def advance():
            holder[0], info = step(holder[0], None)
            return info

        step_s = best_of(advance, 1 if first > 2 * single_rep_s else reps)
    return {"variant": variant, "N": N, "d": problem.dim, "samples": samples, "inner": inner, "step_s": step_s,
            "inner_s": train_s / inner, "projected": False,
            "compile_s": max(first - step_s, 0.0), "load": load}


def run(particles: list[int], variants: list[str], generic_particles: list[int], samples: int = 100,
        inner: int = 25, reps: int = 2, max_step_s: float = 15.0, single_rep_s: float = 5.0) -> pd.DataFrame:
    """The benchmark's rows (module docstring) with their ratios; prints one line per row as it goes."""
    plan = sorted([(N, v) for N in particles for v in variants if v != "generic"]
                  + [(N, "generic") for N in generic_particles])
    rows, last = [], {}
    for N, variant in plan:
        if variant in last and last[variant][1] * (N / last[variant][0]) ** 2 > max_step_s:
            M, step_s = last[variant]  # the pairs dominate: project by N², do not run
            row = {"variant": variant, "N": N, "d": 2 * N, "samples": samples, "inner": inner,
                   "step_s": step_s * (N / M) ** 2, "projected": True}
        else:
            row = measure(variant, N, samples, inner, reps, single_rep_s)
            last[variant] = (N, row["step_s"])
        rows.append(row)
        tail = (f"  (projected from N = {last[variant][0]})" if row["projected"]
                else f"   inner {row['inner_s'] * 1e3:9.2f} ms")
        print(f"{variant:>10} N={N:<4} step {row['step_s']:8.3f} s{tail}", flush=True)
    df = pd.DataFrame(rows)
    exact = df[df.variant == "exact"].set_index("N").step_s
    df["x_exact_smallest"] = df.step_s / exact.loc[exact.index.min()] if len(exact) else math.nan
    generic = df[df.variant == "generic"].set_index("N").step_s
    df["x_generic"] = generic.reindex(df.N).to_numpy() / df.step_s
    return df.sort_values(["N", "variant"], kind="stable").reset_index(drop=True)



def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--particles", type=int, nargs="*", default=[5, 25, 50, 100])
    ap.add_argument("--variants", nargs="*", default=["exact", "hutchinson", "denoising"], choices=list(VARIANTS))
    ap.add_argument("--generic-particles", type=int, nargs="*", default=[5, 25])
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--inner", type=int, default=25)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--max-step-s", type=float, default=15.0,
                    help="do not run a time step projected (by N² from a smaller N) to take longer")
    ap.add_argument("--single-rep-s", type=float, default=5.0, help="time once what takes longer than twice this")
    ap.add_argument("--quick", action="store_true", help="smoke run: N = 5, 3 inner steps, one rep")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.particles, args.generic_particles, args.inner, args.reps = [5], [5], 3, 1
    out = args.out or ("bench_sbtm_quick.csv" if args.quick else "bench_sbtm.csv")
    df = run(args.particles, args.variants, args.generic_particles, args.samples, args.inner, args.reps,
             args.max_step_s, args.single_rep_s)
    df["machine"] = (f"{platform.machine()}, {len(os.sched_getaffinity(0))} of {os.cpu_count()} cpus, "
                     f"{jax.devices()[0].platform}")
    df["date"] = time.strftime("%Y-%m-%d")
    RESULTS.mkdir(exist_ok=True)
    df.to_csv(RESULTS / out, index=False)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(df.drop(columns=["machine", "date"]).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return df


if __name__ == "__main__":
    main()
