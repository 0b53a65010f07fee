"""Gaussian mixtures Σ_k w_k N(μ_k, σ²I), normalised (log Z = 0), with an exact sampler: the general `mixture`
and the targets of paper 001 §5 — `bimodal` (¼N(−2, 1) + ¾N(2, 1), §5.2), `bimodal_far` (¼N(−4, 1) + ¾N(4, 1),
§5.3) and `grid16` (16 equal modes N((a, b), I), a, b ∈ {−15, −5, 5, 15}, §5.4; the reference code's "far"
grid; `spacing=4` gives its "near" grid {−6, −2, 2, 6})."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from pinnflow.target import Target
from problems import register

__all__ = ["mixture", "bimodal", "bimodal_far", "grid16"]


@register
def mixture(means: Sequence[Sequence[float]] | np.ndarray = ((-2.0,), (2.0,)),
            weights: Sequence[float] | None = None, var: float = 1.0, name: str = "mixture") -> Target:
    """Σ_k w_k N(μ_k, var·I) with `means (K, d)` and `weights (K,)` (default equal; normalised to sum 1).

    Domain: the means' bounding box ± 6√var. `std` is exact per coordinate; `info` has `means` and `weights`
    (for mode masses)."""
    def fail(msg: str):
        raise ValueError(f"target {name!r}: {msg}")

    mu = np.asarray(means, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[0] < 1 or mu.shape[1] < 1 or not np.all(np.isfinite(mu)):
        fail(f"means must be a finite (K, d) array, got {means!r}")
    K, d = mu.shape
    w = np.full(K, 1.0 / K) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (K,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
        fail(f"weights must be {K} positive numbers, got {weights!r}")
    w = w / w.sum()
    if not (np.isfinite(var) and var > 0):
        fail(f"var must be > 0, got {var!r}")
    var = float(var)
    log_w = np.log(w) - 0.5 * d * math.log(2.0 * math.pi * var)

    def log_density(x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        x = x.astype(jnp.result_type(x, float))
        sq = jnp.sum((x - jnp.asarray(mu, x.dtype)) ** 2, axis=-1)
        return jax.nn.logsumexp(jnp.asarray(log_w, x.dtype) - 0.5 * sq / var)

    def sample(key: jax.Array, n: int) -> jax.Array:
        k_mode, k_noise = jax.random.split(key)
        idx = jax.random.choice(k_mode, K, (n,), p=jnp.asarray(w))
        noise = jax.random.normal(k_noise, (n, d))
        return jnp.asarray(mu, noise.dtype)[idx] + math.sqrt(var) * noise

    m = w @ mu
    std = np.sqrt(var + w @ (mu - m) ** 2)
    pad = 6.0 * math.sqrt(var)
    return Target(name=name, dim=d, log_density=log_density, domain=(mu.min(0) - pad, mu.max(0) + pad), log_Z=0.0,
                  sample=sample, std=std, info={"means": mu, "weights": w, "var": var})


@register
def bimodal() -> Target:
    """¼N(−2, 1) + ¾N(2, 1) (paper 001 §5.2): mean 1, variance 4, P(x < 0) = 0.26138."""
    return mixture(((-2.0,), (2.0,)), (0.25, 0.75), 1.0, name="bimodal")


@register
def bimodal_far() -> Target:
    """¼N(−4, 1) + ¾N(4, 1) (paper 001 §5.3, sampled with geometric annealing)."""
    return mixture(((-4.0,), (4.0,)), (0.25, 0.75), 1.0, name="bimodal_far")


@register
def grid16(spacing: float = 10.0, var: float = 1.0) -> Target:
    """16 equal modes N((a, b), var·I), a, b ∈ spacing·{−3/2, −1/2, 1/2, 3/2} (paper 001 §5.4; spacing 10 is
    the reference code's {−15, −5, 5, 15}²)."""
    axis = spacing * np.array([-1.5, -0.5, 0.5, 1.5])
    return mixture(np.array(list(itertools.product(axis, axis))), None, var, name="grid16")
