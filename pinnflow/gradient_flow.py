"""The (annealed) Wasserstein gradient flow of KL(·‖π) for a `Target`, as a `FokkerPlanckProblem` (paper 001
§2, §4): the law f_t of

    dX = ∇log π_t(X) dt + √2 dW      (GF SDE; its Euler–Maruyama steps are ULA / annealed ULA)
    dX/dt = ∇log π_t(X) − ∇log f_t(X)  (GF ODE; the probability flow, which SBTM follows)

solves ∂_t f = −∇·(f ∇log π_t) + Δf: drift b_t = ∇log π_t, D = 1. With π_t = π, KL(f_t‖π) decreases at the
rate of the relative Fisher information F = E_f|∇log(f/π)|² (paper 001 Thm. 3.1).

Annealing paths π_t from the start law f_0 to π (`ANNEALING`, a registry a user can extend; λ(t) ∈ (0, 1]
is the path's progress, reaching 1 at t = `anneal.duration`, after which π_t = π):

- `none`: π_t = π.
- `geometric`: π_t ∝ f_0^{1−λ} π^λ, λ = t/τ (Neal 2001; paper 001 §5.3): ∇log π_t = (1 − λ)∇log f_0 + λ∇log π.
- `dilation`: π_t(x) ∝ π(x/λ), λ = (t + t0)/τ (Chehab & Korba 2024; paper 001 §5.4 writes π((T/t)x)):
  ∇log π_t(x) = ∇log π(x/λ)/λ. Singular at λ = 0, so the clock starts at t0 > 0 (`anneal.t0`).
- `tempered_dilation`: π_t ∝ π(x/λ)^λ, ∇log π_t(x) = ∇log π(x/λ) (the path paper 001's reference code runs).

The start law f_0 (`start`) is N(mean, std²I); `stratified: true` draws it by Latin-hypercube sampling (each
coordinate's n values fall one in each of n equal-probability strata, jittered), which keeps particle averages
far more accurate than i.i.d. draws in low dimensions (a deterministic flow preserves the stratification, noise
does not). The particles of every method come from `sample_start`, so SBTM and ULA start from the same points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from pinnflow.core.config import Section, check_name, is_number, is_positive, need
from pinnflow.core.registry import Registry
from pinnflow.distributions import normal_log_prob
from pinnflow.fokker_planck import FokkerPlanckProblem
from pinnflow.target import Target

__all__ = ["StartConfig", "AnnealConfig", "ANNEALING", "Schedule", "NoAnnealing", "Geometric", "Dilation",
           "TemperedDilation",
           "start_law", "gradient_flow_problem", "check_start"]

Score = Callable[[jax.Array], jax.Array]  # x (d,) -> (d,)


@dataclass
class StartConfig(Section):
    """The start law f_0 = N(mean, std²I) (`mean` a number, broadcast, or one per coordinate); `stratified`:
    Latin-hypercube draws instead of i.i.d. ones."""

    mean: float | list[float] = 0.0
    std: float = 1.0
    stratified: bool = False

    def validate(self, where: str = "start.") -> None:
        need(is_positive(self.std) and np.isfinite(self.std), f"{where}std", f"must be > 0, got {self.std!r}")
        values = self.mean if isinstance(self.mean, list) else [self.mean]
        need(len(values) > 0 and all(is_number(v) and np.isfinite(v) for v in values), f"{where}mean",
             f"must be a finite number or a non-empty list of them, got {self.mean!r}")


@dataclass
class AnnealConfig(Section):
    """The annealing path (`kind`, a name in `ANNEALING`), its length `duration` τ (π_t = π from t = τ on) and,
    for `dilation`, the start of its clock `t0` (> 0; π_t is singular at 0)."""

    kind: str = "none"
    duration: float = 1.0
    t0: float = 0.0

    def validate(self, where: str = "anneal.") -> None:
        check_name(ANNEALING, self.kind, f"{where}kind")
        need(is_positive(self.duration), f"{where}duration", f"must be > 0, got {self.duration!r}")
        need(is_number(self.t0) and 0 <= self.t0 < self.duration, f"{where}t0",
             f"must be in [0, duration = {self.duration}), got {self.t0!r}")
        ANNEALING.factory(self.kind).check(self, where)


class Schedule(Protocol):
    """An annealing path: ∇log π_t(x) from the target's and the start law's scores."""

    def score(self, target_score: Score, start_score: Score, x: jax.Array, t: jax.Array) -> jax.Array: ...

    def progress(self, t: jax.Array) -> jax.Array:
        """λ(t) ∈ (0, 1]: how far along the path π_t is (1: π_t = π)."""
        ...


ANNEALING: Registry[Schedule] = Registry("annealing schedule")
"""Annealing paths by name: a frozen dataclass built from `AnnealConfig` by `from_config`, with a class method
`check(cfg, where)` validating its keys (called by `AnnealConfig.validate`)."""


class _Base:
    @classmethod
    def check(cls, cfg: AnnealConfig, where: str) -> None:
        del cfg, where

    @classmethod
    def from_config(cls, cfg: AnnealConfig):
        return cls(duration=float(cfg.duration))


@ANNEALING.register(name="none")
@dataclass(frozen=True)
class NoAnnealing(_Base):
    """π_t = π."""

    duration: float = 1.0

    def score(self, target_score, start_score, x, t):
        del start_score, t
        return target_score(x)

    def progress(self, t):
        return jnp.ones_like(t)


@ANNEALING.register(name="geometric")
@dataclass(frozen=True)
class Geometric(_Base):
    """π_t ∝ f_0^{1−λ}π^λ, λ = min(t/τ, 1): ∇log π_t = (1 − λ)∇log f_0 + λ∇log π (paper 001 §5.3)."""

    duration: float = 1.0

    def progress(self, t):
        return jnp.clip(t / self.duration, 0.0, 1.0)

    def score(self, target_score, start_score, x, t):
        lam = self.progress(t).astype(x.dtype)
        return (1.0 - lam) * start_score(x) + lam * target_score(x)


@ANNEALING.register(name="dilation")
@dataclass(frozen=True)
class Dilation(_Base):
    """π_t(x) ∝ π(x/λ), λ = min((t + t0)/τ, 1): ∇log π_t(x) = ∇log π(x/λ)/λ (paper 001 §5.4, π((T/t)x) with
    T = τ; the clock starts at t0 > 0)."""

    duration: float = 1.0
    t0: float = 0.1

    @classmethod
    def check(cls, cfg, where):
        need(is_positive(cfg.t0), f"{where}t0", "must be > 0 for dilation annealing: π_t(x) = π((T/t)x) is "
             f"singular at t = 0 (e.g. t0 = 0.05·duration), got {cfg.t0!r}")

    @classmethod
    def from_config(cls, cfg):
        return cls(duration=float(cfg.duration), t0=float(cfg.t0))

    def progress(self, t):
        return jnp.clip((t + self.t0) / self.duration, 0.0, 1.0)

    def score(self, target_score, start_score, x, t):
        del start_score
        lam = self.progress(t).astype(x.dtype)
        return target_score(x / lam) / lam


@ANNEALING.register(name="tempered_dilation")
@dataclass(frozen=True)
class TemperedDilation(Dilation):
    """π_t ∝ π(x/λ)^λ, λ = min((t + t0)/τ, 1): the dilation of π tempered at temperature 1/λ, whose score is
    ∇log π_t(x) = ∇log π(x/λ). This is what paper 001's reference code runs as "dilation" (it drops the 1/λ of
    the chain rule). The tempering lowers the barriers between modes by the factor λ, so mass can move between
    modes early on, where the plain dilation keeps every barrier's height."""

    def score(self, target_score, start_score, x, t):
        del start_score
        return target_score(x / self.progress(t).astype(x.dtype))


@dataclass(frozen=True)
class StartLaw:
    """f_0 = N(mean, std²I) in d dimensions: log-density, score and (optionally stratified) draws."""

    mean: np.ndarray
    std: float
    stratified: bool = False
    dim: int = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "dim", int(self.mean.shape[0]))

    def log_prob(self, x: jax.Array) -> jax.Array:
        return normal_log_prob(x, jnp.asarray(self.mean, x.dtype), self.std**2)

    def score(self, x: jax.Array) -> jax.Array:
        return (jnp.asarray(self.mean, x.dtype) - x) / self.std**2

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """n draws (n, d); stratified: u_ij = (π_j(i) + U_ij)/n with a random permutation π_j per coordinate,
        mapped through the normal quantile function."""
        if self.stratified:
            k_perm, k_jit = jax.random.split(key)
            perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(k_perm, self.dim)).T
            u = (perms + jax.random.uniform(k_jit, (n, self.dim), minval=1e-6, maxval=1.0 - 1e-6)) / n
            z = ndtri(u)
        else:
            z = jax.random.normal(key, (n, self.dim))
        return jnp.asarray(self.mean, z.dtype) + self.std * z


def start_law(cfg: StartConfig, dim: int) -> StartLaw:
    """The start law of `cfg` in `dim` dimensions (a `ValueError` if `mean` has another length)."""
    mean = np.asarray(cfg.mean, dtype=np.float64)
    mean = np.full(dim, float(mean)) if mean.ndim == 0 else mean
    if mean.shape != (dim,):
        raise ValueError(f"config start.mean has {mean.size} values; the target has dimension {dim}")
    return StartLaw(mean, float(cfg.std), bool(cfg.stratified))


def gradient_flow_problem(target: Target, start: StartConfig, anneal: AnnealConfig, T: float,
                          **solution) -> FokkerPlanckProblem:
    """The annealed gradient flow of `target` from the start law up to time T: drift ∇log π_t, D = 1, ρ0 = f_0.

    `solution`: exact fields of f_t where known (`mean`, `cov`, `log_rho`, `score`, `entropy`; e.g. the
    Ornstein–Uhlenbeck closed form for a Gaussian target), checked against f_0 by `FokkerPlanckProblem`."""
    law = start_law(start, target.dim)
    schedule = ANNEALING.factory(anneal.kind).from_config(anneal)
    target_score = jax.grad(target.log_density)

    def drift(x, t):
        return schedule.score(target_score, law.score, x, t)

    return FokkerPlanckProblem(
        name=f"gradient flow of {target.name}" + ("" if anneal.kind == "none" else f" ({anneal.kind} annealing)"),
        dim=target.dim, drift=drift, D=1.0, T=T, log_rho0=law.log_prob, score0=law.score, sample0=law.sample,
        info={"target": target.name, "anneal": anneal.kind, "schedule": schedule, "start": law,
              "paper": "001 §2 (GF SDE/ODE), §4 (annealing)"}, **solution)


def check_start(target: Target, X0: np.ndarray) -> None:
    """The target's log-density and score must be finite at every start particle (`ValueError` saying how many
    are not, and where the first is) — checked on the host before any solver compiles."""
    X0 = jnp.asarray(X0)
    logp, grad = jax.jit(jax.vmap(jax.value_and_grad(target.log_density)))(X0)
    bad = ~(jnp.isfinite(logp) & jnp.all(jnp.isfinite(grad), axis=-1))
    if bool(jnp.any(bad)):
        i = int(jnp.argmax(bad))
        raise ValueError(f"target {target.name!r}: the log-density or its score is not finite at {int(bad.sum())} "
                         f"of {X0.shape[0]} start particles, e.g. x = {np.asarray(X0[i]).tolist()} (log π = "
                         f"{float(logp[i])}, ∇log π = {np.asarray(grad[i]).tolist()}); move the start law "
                         "(start.mean, start.std) to where the target is finite, or make it finite there")
