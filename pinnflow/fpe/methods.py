"""Solvers of a forward Fokker–Planck problem, side by side (paper 000 §3: SBTM against the SDE and the
noise-free dynamics; the PINN route of paper 003 on the same problem), in one registry `METHODS`.

Each method takes a `pinnflow.fokker_planck.FokkerPlanckProblem` and its own config (a `ConfigBase`) and
returns the same table: one row per saved time with the columns of `COLUMNS` that it can fill (NaN where a
quantity does not exist for the method, e.g. an entropy from an SDE ensemble, or is not known exactly):

- `t`; `entropy`: the method's estimate of the differential entropy S_t = −∫ρ_t log ρ_t (SBTM: route (16);
  PINN: −mean log ρ_t along its probability flow); `entropy_exact`, `entropy_rel_error` = |S − S*|/|S*|;
  `entropy_16`, `entropy_17`: SBTM's two routes (their gap is an accuracy check, paper 000 §2.4);
- `mean_error`, `cov_error`: ‖m̂ − m‖/√tr C and ‖Ĉ − C‖_F/‖C‖_F against the exact moments
  (`pinnflow.metrics.solutions.moment_errors`); `one_particle_cov_error` for particle systems;
- `score_error`: the relative score error (paper 000 eq. 22) against the exact score;
- `seconds`: wall seconds since the start of the method's time stepping (training for the PINN);
- `n_particles`: the particles (SBTM, PINN) or realisations (SDE) behind each row.

Registered: `sbtm` (`pinnflow.sbtm`), `sde` (Euler–Maruyama ensemble, `pinnflow.baselines.sde_ensemble`),
`noise_free` (the same ensemble with D = 0: dX = b dt, the paper's "noise-free" curves), `pinn` (the `log_fp`
residual with the drift fixed, `pinnflow.pinn.fokker_planck`), `wgf` (paper 004: a normalizing flow moved along
the Wasserstein gradient flow of the free energy, for problems with a potential; `pinnflow.wgf`). A new method
is a `Method` registered with
`METHODS.register(Method(...), name=...)`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from pinnflow.core.config import ConfigBase, check_positive_ints, check_types, is_positive, need
from pinnflow.core.precision import PRECISIONS, precision
from pinnflow.core.registry import Registry
from pinnflow.fokker_planck import FokkerPlanckProblem
from pinnflow.pinn import fokker_planck as pinn_fp
from pinnflow.sbtm import SBTMConfig, solve
from pinnflow.wgf.config import WGFConfig

__all__ = ["COLUMNS", "Method", "MethodResult", "METHODS", "SDEConfig", "save_times", "standard_table"]

COLUMNS = ("t", "entropy", "entropy_exact", "entropy_rel_error", "entropy_16", "entropy_17", "mean_error",
           "cov_error", "one_particle_cov_error", "score_error", "seconds", "n_particles")


@dataclass
class MethodResult:
    """What a method returns: the standard `table` (columns `COLUMNS`), the final particles (n, d) where the
    method has them (for densities and figures), its wall seconds and the method's own result object."""

    table: pd.DataFrame
    particles: np.ndarray | None
    seconds: float
    raw: Any = None


@dataclass(frozen=True)
class Method:
    """A solver of Fokker–Planck problems: `run(problem, config, run_dir, resume, progress) -> MethodResult`
    with `config` an instance of `config_class`; `doc` is its one-line description."""

    config_class: type[ConfigBase]
    run: Callable[..., MethodResult]
    doc: str


METHODS: Registry[Method] = Registry("Fokker-Planck method")
"""Methods by name: `METHODS.factory(name)` is the `Method`."""


def standard_table(rows: pd.DataFrame | list[dict]) -> pd.DataFrame:
    """The rows with every column of `COLUMNS` (NaN where missing) first, in that order, and
    `entropy_rel_error` filled from `entropy` and `entropy_exact`."""
    df = pd.DataFrame(rows).copy()
    for c in COLUMNS:
        if c not in df:
            df[c] = np.nan
    df["entropy_rel_error"] = (df["entropy"] - df["entropy_exact"]).abs() / df["entropy_exact"].abs()
    return df[list(COLUMNS) + [c for c in df.columns if c not in COLUMNS]]


def save_times(T: float, dt: float, save_every: int) -> np.ndarray:
    """0, save_every·dt, 2·save_every·dt, … up to T (T included): the rows of a method's table."""
    steps = int(round(T / dt))
    ks = np.arange(0, steps + 1, save_every)
    if ks[-1] != steps:
        ks = np.append(ks, steps)
    return ks * dt


# --- sbtm -------------------------------------------------------------------------------------------------

def _run_sbtm(problem: FokkerPlanckProblem, config, run_dir: Path | None, resume: bool,
              progress: bool | None) -> MethodResult:
    r = solve(problem, config, run_dir=run_dir, resume=resume, progress=progress)
    h = r.history.copy()
    h["t"] = h["step"] * float(config.time.dt)  # exact save times (the solver's t is in its precision)
    h["entropy"] = h["entropy_16"]
    h["n_particles"] = config.n_particles
    return MethodResult(standard_table(h), np.asarray(r.state.X), r.wall_seconds, r)


# --- sde / noise_free -------------------------------------------------------------------------------------

@dataclass
class SDEConfig(ConfigBase):
    """An Euler–Maruyama ensemble: `n_particles` realisations, step `dt`, one table row every `save_every`
    steps, horizon `T` (null: the problem's), `seed`, `precision`."""

    n_particles: int = 10_000
    dt: float = 1e-3
    save_every: int = 100
    T: float | None = None
    seed: int = 0
    precision: str = "float32"

    def validate(self) -> None:
        check_types(self)
        check_positive_ints(self, "", ("n_particles", "save_every"))
        need(self.n_particles >= 2, "n_particles", f"must be >= 2 (a covariance), got {self.n_particles}")
        need(is_positive(self.dt), "dt", f"must be > 0, got {self.dt!r}")
        need(self.T is None or is_positive(self.T), "T", f"must be > 0 or null, got {self.T!r}")
        need(self.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}, got {self.precision!r}")


def _ensemble_table(problem: FokkerPlanckProblem, exact: FokkerPlanckProblem, config: SDEConfig
                    ) -> MethodResult:
    """Simulate `problem`'s SDE and score its moments against `exact`'s closed forms (the same problem, or the
    original one for the noise-free dynamics)."""
    from pinnflow.baselines.sde_ensemble import simulate_ensemble
    from pinnflow.metrics.solutions import (
        SUMMARY_MAX_DIM,
        moment_errors_of,
        one_particle_columns,
        one_particle_cov_error_of,
    )

    config.validate()
    T = problem.T if config.T is None else float(config.T)
    times = save_times(T, config.dt, config.save_every)
    n, d = config.n_particles, problem.dim
    t0 = time.perf_counter()
    with precision(config.precision):
        ens = simulate_ensemble(problem, n, times, jax.random.PRNGKey(config.seed), dt=config.dt,
                                data_parallel=n % jax.device_count() == 0, keep_particles=False)
        rows = []
        for i, t in enumerate(times):
            row: dict[str, Any] = {"t": float(t), "n_particles": n}
            if problem.particles is not None and problem.particles[1] <= SUMMARY_MAX_DIM:
                row.update(one_particle_columns(ens.one_particle_mean[i], ens.one_particle_cov[i]))
            elif problem.particles is None and d <= SUMMARY_MAX_DIM:
                row.update(one_particle_columns(ens.mean[i], ens.cov[i]))
            row = {k: float(v) if k not in ("t", "n_particles") else v for k, v in row.items()}
            if exact.entropy is not None:
                row["entropy_exact"] = float(exact.entropy(t))
            if exact.mean is not None and exact.cov is not None:
                m, C = exact.mean(t), exact.cov(t)
                row["mean_error"], row["cov_error"] = (float(e) for e in
                                                       moment_errors_of(ens.mean[i], ens.cov[i], m, C))
                if problem.particles is not None:
                    row["one_particle_cov_error"] = float(
                        one_particle_cov_error_of(ens.one_particle_cov[i], m, C, problem.particles))
            rows.append(row)
    seconds = time.perf_counter() - t0
    table = standard_table(rows)
    table.loc[table.index[-1], "seconds"] = ens.seconds
    return MethodResult(table, np.asarray(ens.final), seconds, ens)


def _run_sde(problem, config, run_dir, resume, progress) -> MethodResult:
    del run_dir, resume, progress
    return _ensemble_table(problem, problem, config)


def noise_free(problem: FokkerPlanckProblem) -> FokkerPlanckProblem:
    """The problem with D = 0 (dX = b dt from X_0 ~ ρ0) and no closed forms (they belong to the noisy one)."""
    return dataclasses.replace(problem, name=f"{problem.name}_noise_free", D=0.0, mean=None, cov=None,
                               log_rho=None, score=None, entropy=None)


def _run_noise_free(problem, config, run_dir, resume, progress) -> MethodResult:
    del run_dir, resume, progress
    return _ensemble_table(noise_free(problem), problem, config)


METHODS.register(Method(SBTMConfig, _run_sbtm, "score-based transport modeling (paper 000 Algorithm 1): "
                        "particles along v = b - D s with s learned on the fly"), name="sbtm")
def _run_pinn(problem: FokkerPlanckProblem, config, run_dir: Path | None, resume: bool,
              progress: bool | None) -> MethodResult:
    r = pinn_fp.solve(problem, config, run_dir=run_dir, resume=resume, progress=progress)
    h = r.history.copy()
    h["n_particles"] = config.evaluation.particles
    h["seconds"] = h.pop("train_seconds")
    return MethodResult(standard_table(h), None, r.wall_seconds, r)


METHODS.register(Method(pinn_fp.PINNFPConfig, _run_pinn, "the log-FP residual with the drift fixed, V(., 0) = "
                        "log rho0 built in, sampled by its probability flow (pinnflow.pinn.fokker_planck)"),
                 name="pinn")
METHODS.register(Method(SDEConfig, _run_sde, "Euler-Maruyama ensemble of the SDE (moments; no density)"),
                 name="sde")


def _run_wgf(problem: FokkerPlanckProblem, config, run_dir: Path | None, resume: bool,
             progress: bool | None) -> MethodResult:
    from pinnflow.wgf import solve as wgf_solve

    r = wgf_solve(problem, config, run_dir=run_dir, resume=resume, progress=progress)
    h = r.history.copy()
    h["n_particles"] = config.eval.samples
    y, _ = r.sample(config.eval.samples, jax.random.PRNGKey(config.seed))
    return MethodResult(standard_table(h), y, r.wall_seconds, r)


METHODS.register(Method(WGFConfig, _run_wgf, "a normalizing flow on the Wasserstein gradient flow of the free "
                        "energy (paper 004 Algorithm 1; potential problems only): density and samples at every t"),
                 name="wgf")
METHODS.register(Method(SDEConfig, _run_noise_free, "the deterministic dynamics dX = b dt (D = 0), the "
                        "paper's noise-free curves"), name="noise_free")
