"""The unadjusted Langevin algorithm (ULA) and annealed ULA: paper 001's baselines (§5), the stochastic
counterpart of the SBTM sampler on the same (annealed) gradient flow (`pinnflow.gradient_flow`):

    X_{k+1} = X_k + h ∇log π_{t_k}(X_k) + √(2h) ξ_k,     ξ_k ~ N(0, I),

the Euler–Maruyama scheme of dX = ∇log π_t(X) dt + √2 dW (GF SDE), run by `simulate_ensemble` (sharded over
devices) from the same start law — or the same start particles `x0` — with the same step h. No Metropolis
correction: the stationary law carries an O(h) bias. Per saved time the history has the particles' mean and
covariance (d ≤ 3, `op_mean_<i>`, `op_cov_<ij>` as SBTM's), their errors against an exact solution and the
reconstructed-density errors of `metrics.density` (d ≤ 2).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from pinnflow.baselines.sde_ensemble import simulate_ensemble
from pinnflow.core.precision import default_dtype, precision
from pinnflow.fokker_planck import FokkerPlanckProblem
from pinnflow.gradient_flow import AnnealConfig, StartConfig, gradient_flow_problem
from pinnflow.metrics.density import reconstruction_errors, target_density
from pinnflow.metrics.solutions import moment_errors, one_particle_summary
from pinnflow.target import Target

__all__ = ["ULAResult", "ula"]


@dataclass
class ULAResult:
    """ULA's particles at the last saved time, the history (one row per saved time) and the wall seconds
    (compilation included)."""

    target: Target
    problem: FokkerPlanckProblem
    particles: np.ndarray
    history: pd.DataFrame
    seconds: float


def ula(target: Target, *, n: int, dt: float, T: float, start: StartConfig | None = None,
        anneal: AnnealConfig | None = None, save_every: int = 10, seed: int = 0, precision_name: str = "float32",
        grid: tuple[np.ndarray, float] | None = None, solution: dict | None = None, x0=None) -> ULAResult:
    """ULA (annealed ULA with `anneal`) for `target`: n particles, step `dt` up to time T (a whole number of
    steps), a history row every `save_every` steps. `x0 (n, d)`: start from these particles (default: draws of
    the start law with `seed`); `grid`: the reconstructed-density grid (`metrics.density.box_grid`);
    `solution`: exact fields of f_t (as `sbtm.sampler.sample`)."""
    start = StartConfig() if start is None else start
    anneal = AnnealConfig() if anneal is None else anneal
    for what, v in (("dt", dt), ("T", T)):
        if not (isinstance(v, int | float) and np.isfinite(v) and v > 0):
            raise ValueError(f"ula: {what} must be a finite number > 0, got {v!r}")
    steps = int(round(T / dt))
    if steps < 1 or abs(steps * dt - T) > 1e-9 * max(T, 1.0):
        raise ValueError(f"ula: T = {T} is not a whole number of steps of dt = {dt}")
    if isinstance(save_every, bool) or not isinstance(save_every, int) or save_every < 1:
        raise ValueError(f"ula: save_every must be a positive integer, got {save_every!r}")
    problem = gradient_flow_problem(target, start, anneal, float(T), **(solution or {}))
    times = np.unique(np.r_[np.arange(0, steps + 1, save_every), steps]) * float(dt)
    t0 = time.perf_counter()
    with precision(precision_name):
        key = jax.random.PRNGKey(seed)
        ens = simulate_ensemble(problem, n, times, key, dt=dt, data_parallel=False, x0=x0)
        P = ens.particles
        pi_grid = None if grid is None else target_density(target, grid)
        rows = []
        for i, t in enumerate(times):
            X, tt = P[i], jnp.asarray(t, default_dtype())
            row = {"t": float(t), "step": int(round(t / dt)), **one_particle_summary(X, None)}
            if problem.mean is not None and problem.cov is not None:
                row["mean_error"], row["cov_error"] = moment_errors(X, problem.mean(tt), problem.cov(tt))
            if grid is not None:
                row.update(reconstruction_errors(X, tt, grid, pi_grid, problem.log_rho))
            rows.append({k: float(v) for k, v in row.items()})
        final = np.asarray(ens.final)
    return ULAResult(target, problem, final, pd.DataFrame(rows), time.perf_counter() - t0)
