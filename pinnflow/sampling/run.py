"""Run the deterministic SBTM sampler (paper 001) and its baselines on one target with the same particle count,
step, start law and annealing path, summarise each method's final particles in one table, and write it all.

Methods (`METHODS`): `sbtm` (`pinnflow.sbtm.sampler.sample`), `ula` (`pinnflow.baselines.ula`: ULA, or annealed
ULA when the config anneals). ULA starts from SBTM's start particles.

Summary columns (`summarize`), one row per method, each with its definition in `SUMMARY_DEFINITIONS`.

Output directory (`out`): `config.yaml`, `summary.csv`, `history_<method>.csv` (one row per saved time),
`particles.npz` (the final particles of each method, numpy arrays only), `sbtm/` (the SBTM run directory:
checkpoints, exact resume) and figures (`pinnflow.viz.sampling`) with `plot=True`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from pinnflow.baselines.ula import ula
from pinnflow.core.checkpoint import atomic_write
from pinnflow.core.precision import precision
from pinnflow.core.registry import Registry
from pinnflow.metrics.evaluate import evaluate_samples
from pinnflow.metrics.moments import mode_fractions
from pinnflow.sbtm.sampler import SamplerConfig, density_grid, sample, start_particles
from pinnflow.target import Target

__all__ = ["METHODS", "MethodRun", "run", "summarize", "SUMMARY_DEFINITIONS", "mode_reference",
           "REFERENCE_SAMPLES"]

REFERENCE_SAMPLES = 200_000  # exact draws for the reference mode masses

SUMMARY_DEFINITIONS = {
    "method": "sbtm: the deterministic SBTM sampler (paper 001); ula: (annealed) unadjusted Langevin",
    "n": "particles", "t": "the time reached (a Fisher stop can end SBTM early)",
    "seconds": "wall seconds of the method (compilation included)",
    "mean, var": "particle mean and variance (d = 1)",
    "p_negative": "share of particles with x < 0 (d = 1)",
    "mode_masses": "share of particles nearest (Euclidean) to each mode centre (target.info['means'])",
    "mode_reference": f"the same shares for {REFERENCE_SAMPLES} exact draws of the target",
    "mode_error": "max over modes of |mass − reference| / reference",
    "sinkhorn": "entropic OT cost to exact samples: euclidean cost |x − y|, ε = 1e-3, 500 v 500, not debiased "
                "(as pinnflow's Table 2, `metrics.evaluate`)",
    "delta_std": "mean over coordinates of |std_i(particles) − std_i(target)|",
    "l2_target": "‖KDE(particles) − π‖_L2 on a grid of the domain (d ≤ 2, Scott bandwidth)",
    "kl": "SBTM's KL(f_t‖π) from log f carried along the trajectories (module sbtm.sampler)",
    "fisher": "SBTM's relative Fisher information estimate mean|s − ∇log π|² at the end",
    "weights": "none: neither method has importance weights, so ESS and ΔlogZ do not apply",
}


@dataclass
class MethodRun:
    """One method's output: history (one row per saved time), final particles (n, d), wall seconds."""

    history: pd.DataFrame
    particles: np.ndarray
    seconds: float
    raw: object = None


Method = Callable[..., MethodRun]
METHODS: Registry[Method] = Registry("sampling method")
"""Methods by name: `METHODS.factory(name)(target, config, out, resume, progress, solution) -> MethodRun`."""


@METHODS.register(name="sbtm")
def _sbtm(target, config, out, resume, progress, solution) -> MethodRun:
    res = sample(target, config, None if out is None else out / "sbtm", resume, progress, solution)
    return MethodRun(res.history, res.particles, res.wall_seconds, res)


@METHODS.register(name="ula")
def _ula(target, config, out, resume, progress, solution) -> MethodRun:
    del out, resume, progress
    c = config
    res = ula(target, n=c.n_particles, dt=float(c.time.dt), T=float(c.time.T), start=c.start, anneal=c.anneal,
              save_every=c.save_every, seed=c.seed, precision_name=c.precision,
              grid=density_grid(target, c.density_grid), solution=solution, x0=start_particles(target, c))
    return MethodRun(res.history, res.particles, res.seconds, res)


def mode_reference(target: Target, key: jax.Array | None = None) -> np.ndarray | None:
    """The share of exact target draws nearest to each mode centre (None without centres or a sampler)."""
    centres = target.info.get("means")
    if centres is None or target.sample is None:
        return None
    key = jax.random.PRNGKey(12345) if key is None else key
    draws = jax.jit(target.sample, static_argnums=1)(key, REFERENCE_SAMPLES)
    return np.asarray(mode_fractions(draws, np.asarray(centres)))


def summarize(target: Target, method: str, mr: MethodRun, reference: np.ndarray | None = None) -> dict:
    """The summary row of one method's final particles (`SUMMARY_DEFINITIONS`)."""
    X = np.asarray(mr.particles, np.float64)
    last = mr.history.iloc[-1]
    row: dict = {"method": method, "n": X.shape[0], "t": float(last["t"]), "seconds": mr.seconds}
    if target.dim == 1:
        row.update(mean=float(X.mean()), var=float(X.var()), p_negative=float(np.mean(X[:, 0] < 0)))
    centres = target.info.get("means")
    if centres is not None:
        masses = np.asarray(mode_fractions(X, np.asarray(centres)))
        row["mode_masses"] = " ".join(f"{m:.4f}" for m in masses)
        if reference is not None:
            row["mode_reference"] = " ".join(f"{m:.4f}" for m in reference)
            row["mode_error"] = float(np.max(np.abs(masses - reference) / reference))
    metrics = evaluate_samples(target, X)
    row.update({k: metrics[k] for k in ("sinkhorn", "delta_std") if k in metrics})
    for col in ("l2_target", "kl", "fisher"):
        if col in mr.history:
            row[col] = float(last[col])
    row["weights"] = "none"
    return row


def run(target: Target, config: SamplerConfig, methods: Sequence[str] = ("sbtm", "ula"), *,
        out: str | Path | None = None, resume: bool = False, progress: bool | None = None,
        solution: dict | None = None, plot: bool = False) -> tuple[pd.DataFrame, dict[str, MethodRun]]:
    """Run `methods` on `target` with one config (module docstring) and return (the summary table, the runs).
    Unknown methods raise `KeyError` listing the choices before anything runs."""
    for m in methods:
        METHODS.factory(m)
    config.validate()
    out = None if out is None else Path(out)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        config.to_yaml(out / "config.yaml")
    runs: dict[str, MethodRun] = {}
    for m in methods:
        t0 = time.perf_counter()
        runs[m] = METHODS.factory(m)(target, config, out, resume, progress, solution)
        runs[m].seconds = time.perf_counter() - t0
    with precision(config.precision):
        ref = mode_reference(target)
    table = pd.DataFrame([summarize(target, m, r, ref) for m, r in runs.items()])
    if out is not None:
        atomic_write(out / "summary.csv", table.to_csv(index=False).encode())
        for m, r in runs.items():
            atomic_write(out / f"history_{m}.csv", r.history.to_csv(index=False).encode())
        np.savez(out / "particles.npz", **{m: np.asarray(r.particles) for m, r in runs.items()})
        if plot:
            from pinnflow.viz.sampling import plot_sampling

            plot_sampling(target, {m: r.history for m, r in runs.items()},
                          {m: r.particles for m, r in runs.items()}, out)
    return table, runs
