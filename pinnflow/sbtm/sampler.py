"""The deterministic score-based sampler of an unnormalised density (paper 001): SBTM on the (annealed)
Wasserstein gradient flow of KL(·‖π).

Particles from a start law f_0 follow dX/dt = ∇log π_t(X) − s_θ(X) while s_θ ≈ ∇log f_t is learned on them by
implicit score matching (paper 001 eq. SBTM). This is the SBTM solver of `pinnflow.sbtm.solver` applied to the
Fokker–Planck problem of the gradient flow (`pinnflow.gradient_flow`: drift ∇log π_t, D = 1): the same score
models, losses, Euler/Heun steps, inner Adam training per time step (`inner.max_steps`, `inner.gtol`), run loop,
checkpoints and resume. What the sampler adds, per saved time (history columns):

- `fisher` = mean_i |s(X_i) − ∇log π(X_i)|²: the relative Fisher information F(f_t‖π) estimated with the learned
  score (Remark 3.8) — the built-in convergence diagnostic; the solve stops at the first saved time with
  `fisher` < `fisher_tol` (when set). `fisher_t`: the same against the annealed π_t.
- `dissipation` = mean_i ⟨s − ∇log π_t, s − ∇log π⟩(X_i): the predicted −dKL(f_t‖π)/dt. Along the flow
  dX/dt = ∇log π_t − s, −dKL/dt = E_f⟨s − ∇log π_t, ∇log f − ∇log π⟩ exactly (proof of Thm. 4.1); with
  π_t = π this is F − E⟨∇log f − s, ∇log(f/π)⟩ (Thm. 3.2, with the sign of the errata), and the prediction
  replaces ∇log f by s (eq. 4.1). `kl_rate`: −ΔKL/Δt between saved times, to compare with it.
- `kl` = mean_i (log f_t(X_i) − log π(X_i)), with log f_t carried along each trajectory by d log f/dt = −∇·v
  (paper 000 eq. 7) from log f_0, plus log Z (`kl_minus_log_z` when the target's log Z is unknown).
- with an exact solution f_t (`solution`, e.g. an Ornstein–Uhlenbeck path): `fisher_exact` (F at the
  particles) and `dissipation_exact` (the exact −dKL/dt of the flow, with ∇log f exact), plus SBTM's
  `score_error`, moment and log-density errors.
- `progress`: the annealing path's λ(t) ∈ (0, 1] (1: π_t = π).
- for d ≤ 2: `l2_target` = ‖KDE(X) − π‖_{L²} (normalised targets) and `l2_exact` = ‖KDE(X) − f_t‖_{L²} on a
  grid of the target's domain (`metrics.density`; the reconstructed density of paper 001 Figs. 2–5).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from pinnflow.core.config import ConfigError, is_positive, need
from pinnflow.core.precision import precision
from pinnflow.fokker_planck import FokkerPlanckProblem
from pinnflow.gradient_flow import AnnealConfig, StartConfig, check_start, gradient_flow_problem, start_law
from pinnflow.metrics.density import box_grid, reconstruction_errors, target_density
from pinnflow.sbtm.config import InnerConfig, SBTMConfig
from pinnflow.sbtm.integrators import TimeConfig
from pinnflow.sbtm.solver import SBTMResult, SBTMState, Solver
from pinnflow.sbtm.solver import solve as sbtm_solve
from pinnflow.target import Target

__all__ = ["SamplerConfig", "SamplerResult", "sample", "start_particles", "EXACT_FIELDS", "solution_of", "density_grid",
           "MAX_GRID_DIM"]

EXACT_FIELDS = ("mean", "cov", "log_rho", "score", "entropy")
"""The fields of a `FokkerPlanckProblem` that describe its exact solution (what `solution` may give)."""

MAX_GRID_DIM = 2  # reconstructed densities on a grid for d ≤ 2 only


def _sampler_time() -> TimeConfig:
    return TimeConfig(dt=1e-2, integrator="euler", T=5.0)


def _sampler_inner() -> InnerConfig:
    return InnerConfig(lr=5e-4, max_steps=10, gtol=1e-4)


@dataclass
class SamplerConfig(SBTMConfig):
    """An SBTM solve (`SBTMConfig`: model, loss, operator, time, inner, init sections) on the gradient flow of
    a target, plus the start law (`start`), the annealing path (`anneal`), `fisher_tol` (stop at the first
    saved time whose Fisher estimate is below it; null: run to `time.T`) and `density_grid` (points per axis of
    the grid for the reconstructed density, d ≤ 2; 0: none). `time.T` is the time limit (required).

    Defaults differing from the Fokker–Planck solver's follow paper 001's reference code: forward Euler with
    Δt = 0.01, 10 Adam steps of rate 5e-4 per time step (it uses AdamW with weight decay 1e-4 and a 2×128
    softsign ResNet; the score model here is `model`'s, by default one hidden layer of 100 swish units),
    1000 particles."""

    n_particles: int = 1000
    save_every: int = 10
    fisher_tol: float | None = None
    density_grid: int = 128
    time: TimeConfig = field(default_factory=_sampler_time)
    inner: InnerConfig = field(default_factory=_sampler_inner)
    start: StartConfig = field(default_factory=StartConfig)
    anneal: AnnealConfig = field(default_factory=AnnealConfig)

    def validate(self) -> None:
        super().validate()
        need(self.time.T is not None, "time.T", "the sampler needs a time limit (a number > 0)")
        need(self.fisher_tol is None or is_positive(self.fisher_tol), "fisher_tol",
             f"must be > 0 or null, got {self.fisher_tol!r}")
        need(isinstance(self.density_grid, int) and (self.density_grid == 0 or self.density_grid >= 2),
             "density_grid", f"must be 0 (none) or an integer >= 2, got {self.density_grid!r}")


def solution_of(problem: FokkerPlanckProblem) -> dict:
    """The exact-solution fields of a Fokker–Planck problem (to pass as `sample(..., solution=...)`)."""
    return {k: getattr(problem, k) for k in EXACT_FIELDS if getattr(problem, k) is not None}


def density_grid(target: Target, per_axis: int) -> tuple[np.ndarray, float] | None:
    """The grid (midpoints, cell volume) of the target's domain for reconstructed densities, or None (d > 2)."""
    if per_axis == 0 or target.dim > MAX_GRID_DIM:
        return None
    return box_grid(target.domain[0], target.domain[1], per_axis)


def diagnostics(target: Target, problem: FokkerPlanckProblem, grid: tuple[np.ndarray, float] | None):
    """`observe_extra(solver, state)` of the sampler: the columns listed in the module docstring."""
    value_and_score = jax.value_and_grad(target.log_density)
    schedule = problem.info["schedule"]
    log_Z = target.log_Z
    pi_grid = None if grid is None else target_density(target, grid)

    def extra(solver: Solver, state: SBTMState) -> dict[str, jax.Array]:
        X = state.X
        t = state.k.astype(X.dtype) * solver.dt
        s = jax.vmap(solver.score_fn(state.params, t))(X)
        logp, g = jax.vmap(value_and_score)(X)
        gt = jax.vmap(problem.drift, in_axes=(0, None))(X, t)
        row = {"progress": schedule.progress(t), "fisher": jnp.mean(jnp.sum((s - g) ** 2, -1)),
               "fisher_t": jnp.mean(jnp.sum((s - gt) ** 2, -1)),
               "dissipation": jnp.mean(jnp.sum((s - gt) * (s - g), -1)),
               "kl" if log_Z is not None else "kl_minus_log_z": jnp.mean(state.log_rho - logp) + (log_Z or 0.0)}
        if problem.score is not None:
            exact = jax.vmap(problem.score, in_axes=(0, None))(X, t)
            row["fisher_exact"] = jnp.mean(jnp.sum((exact - g) ** 2, -1))
            row["dissipation_exact"] = jnp.mean(jnp.sum((s - gt) * (exact - g), -1))
        if grid is not None:
            row.update(reconstruction_errors(X, t, grid, pi_grid, problem.log_rho))
        return row

    return extra


@dataclass
class SamplerResult:
    """A finished sampler run: the particles, the history (one row per saved time, module docstring columns plus
    SBTM's), whether the Fisher criterion stopped it (`converged`), and the underlying SBTM solve (`solve`:
    final state, learned score, timings)."""

    target: Target
    config: SamplerConfig
    problem: FokkerPlanckProblem
    solve: SBTMResult
    history: pd.DataFrame
    converged: bool
    wall_seconds: float

    @property
    def particles(self) -> np.ndarray:
        return np.asarray(self.solve.state.X)

    @property
    def t(self) -> float:
        return self.solve.t

    def score(self, X) -> jax.Array:
        """The learned score ∇log f_t at the final time at points X (n, d)."""
        return self.solve.score(X)


def start_particles(target: Target, config: SamplerConfig, problem: FokkerPlanckProblem | None = None) -> np.ndarray:
    """The start particles (n, d) the sampler draws (`sbtm.solver.initial_state`'s key from `seed`), in the
    config's precision: for checking them before a solve, and to start a baseline from the same points."""
    draw = start_law(config.start, target.dim).sample if problem is None else problem.sample0
    with precision(config.precision):
        k_sample = jax.random.split(jax.random.PRNGKey(config.seed), 3)[0]
        return np.asarray(draw(k_sample, config.n_particles))


def _add_kl_rate(history: pd.DataFrame) -> pd.DataFrame:
    col = "kl" if "kl" in history else "kl_minus_log_z"
    if col in history and len(history) > 1:
        history["kl_rate"] = -history[col].diff() / history["t"].diff()
    return history


def sample(target: Target, config: SamplerConfig, run_dir: str | Path | None = None, resume: bool = False,
           progress: bool | None = None, solution: dict[str, Any] | None = None) -> SamplerResult:
    """Sample `target` with the deterministic SBTM sampler (paper 001; module docstring) up to `time.T` or the
    Fisher criterion. `solution`: exact fields of f_t (`EXACT_FIELDS`, e.g. `solution_of(ou_problem)`), for the
    error columns and `score="exact"`. Bad input (config, start law, a target not finite at the start
    particles) raises before anything compiles; checkpoints and resume as `sbtm.solve`."""
    t_wall = time.perf_counter()
    if not isinstance(target, Target):
        raise TypeError(f"sample: target must be a pinnflow.Target, got {type(target).__name__}")
    config.validate()
    unknown = set(solution or {}) - set(EXACT_FIELDS)
    if unknown:
        raise ValueError(f"sample: unknown solution fields {sorted(unknown)}; allowed: {', '.join(EXACT_FIELDS)}")
    problem = gradient_flow_problem(target, config.start, config.anneal, float(config.time.T), **(solution or {}))
    if config.score == "exact" and problem.score is None:
        raise ConfigError("config score: 'exact' needs the exact score of f_t (pass solution={'score': ...})")
    check_start(target, start_particles(target, config, problem))
    grid = density_grid(target, config.density_grid)
    with precision(config.precision):  # the target's density on the grid, once, in the solve's precision
        extra = diagnostics(target, problem, grid)
    tol = config.fisher_tol
    stop_when = None if tol is None else (lambda row: row["fisher"] < tol)
    result = sbtm_solve(problem, config, run_dir, resume, progress, observe_extra=extra, stop_when=stop_when)
    history = _add_kl_rate(result.history.copy())
    converged = tol is not None and bool(history["fisher"].iloc[-1] < tol)
    return SamplerResult(target, config, problem, result, history, converged, time.perf_counter() - t_wall)
