"""Score-matching objectives over the current particles (paper 000 §2.3, Prop. 3, App. B.4, App. D.1).

A loss is built once from the operator backend and the `loss` config section: `LOSSES.get(kind, op=...,
cfg=...)` returns `loss(model, X (n, d), key) -> scalar`, with `model` a score model of `pinnflow.sbtm.models`.

- `implicit`: mean_i (|s(X_i)|² + 2∇·s(X_i)) (eq. SBTM3 / Algorithm 1 line 4; the |∇log ρ|² term of eq. 12
  is a constant and dropped, so the minimum is negative). The divergence comes from the backend; with a
  stochastic backend (Hutchinson, one probe key per particle) the loss is linear in the trace estimate, so
  it is an unbiased estimate of the exact loss.
- `denoising`: the denoising form of App. B.4 (no divergence): with ξ ~ N(0, I) and noise scale α,
  antithetically mean_i ½(|s(X_i + αξ_i)|² + |s(X_i − αξ_i)|²) + (s(X_i + αξ_i) − s(X_i − αξ_i))·ξ_i/α (the
  doubling trick, eq. B.14), or mean_i |s(X_i + αξ_i)|² + 2 s(X_i + αξ_i)·ξ_i/α. Its minimiser is the
  score of ρ_t smoothed by N(0, α²I), i.e. biased by O(α²).

`relative_fit_loss` is the initial-fit objective (App. D.1, eq. D.1) against a known score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import nnx

from pinnflow.core.config import Section, check_name, is_positive, need
from pinnflow.core.registry import Registry
from pinnflow.metrics.solutions import relative_score_error
from pinnflow.operators import Backend

__all__ = ["LossConfig", "LOSSES", "Loss", "implicit", "denoising", "relative_fit_loss"]

Loss = Callable[[nnx.Module, jax.Array, jax.Array], jax.Array]  # (model, X (n, d), key) -> ()

LOSSES: Registry[Loss] = Registry("score-matching loss")
"""Losses by name: factories `(op: Backend, cfg: LossConfig) -> Loss`."""


@dataclass
class LossConfig(Section):
    """The score-matching objective. `noise_scale` and `antithetic` are read by `denoising` only
    (paper 000 App. D.2 uses α = 0.025, App. D.3 α = 0.05; the doubling trick 'always helps', App. B.4)."""

    kind: str = "implicit"  # a name in LOSSES: implicit | denoising
    noise_scale: float = 0.025
    antithetic: bool = True

    def validate(self, where: str = "loss.") -> None:
        check_name(LOSSES, self.kind, f"{where}kind")
        need(is_positive(self.noise_scale), f"{where}noise_scale", f"must be > 0, got {self.noise_scale!r}")


@LOSSES.register(name="implicit")
def implicit(op: Backend, cfg: LossConfig) -> Loss:
    """mean_i |s(X_i)|² + 2∇·s(X_i) (paper 000 eq. SBTM3), ∇·s from the backend `op`."""
    del cfg

    def loss(model: nnx.Module, X: jax.Array, key: jax.Array) -> jax.Array:
        if op.stochastic:
            keys = jax.random.split(key, X.shape[0])
            s, div = jax.vmap(lambda x, k: model.score_and_trace(x, op, k))(X, keys)
        else:
            s, div = jax.vmap(lambda x: model.score_and_trace(x, op))(X)
        return jnp.mean(jnp.sum(s * s, axis=-1) + 2.0 * div)

    return loss


@LOSSES.register(name="denoising")
def denoising(op: Backend, cfg: LossConfig) -> Loss:
    """The (antithetic) denoising score-matching loss of paper 000 App. B.4 with noise scale α."""
    del op
    alpha, antithetic = float(cfg.noise_scale), bool(cfg.antithetic)

    def loss(model: nnx.Module, X: jax.Array, key: jax.Array) -> jax.Array:
        xi = jax.random.normal(key, X.shape, X.dtype)
        s_plus = jax.vmap(model.score)(X + alpha * xi)
        if not antithetic:
            return jnp.mean(jnp.sum(s_plus * s_plus, -1) + 2.0 * jnp.sum(s_plus * xi, -1) / alpha)
        s_minus = jax.vmap(model.score)(X - alpha * xi)
        sq = 0.5 * (jnp.sum(s_plus * s_plus, -1) + jnp.sum(s_minus * s_minus, -1))
        return jnp.mean(sq + jnp.sum((s_plus - s_minus) * xi, -1) / alpha)

    return loss


def relative_fit_loss(model: nnx.Module, X: jax.Array, target: jax.Array) -> jax.Array:
    """mean_i |s(X_i) − s*_i|² / mean_i |s*_i|² for known scores `target` (n, d) (paper 000 eq. D.1). A model
    that learns only some components (`project`, e.g. `noisy_mlp`) is compared on those."""
    if hasattr(model, "project"):
        target = model.project(target)
    return relative_score_error(jax.vmap(model.score)(X), target)
