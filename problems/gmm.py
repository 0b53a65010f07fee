"""Two-dimensional mixture of nine Gaussians on a grid (paper 003, App. C, eqs. 69-70)."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from pinnflow.target import Target
from problems import register

__all__ = ["gmm"]


@register
def gmm(scale: float = 5.0, var: float = 0.3) -> Target:
    """Equal-weight mixture of N(mu, var*I), mu in {-scale, 0, scale}^2 (eqs. 69-70); normalised, log Z = 0.

    The domain is [-scale-3, scale+3]^2; `std` is the exact per-coordinate value sqrt(var + 2/3 scale^2).
    """
    if not (np.isfinite(scale) and scale > 0 and np.isfinite(var) and var > 0):
        raise ValueError(f"target 'gmm': need scale > 0 and var > 0, got scale={scale!r}, var={var!r}")
    scale, var = float(scale), float(var)
    centers = np.array(list(itertools.product((-scale, 0.0, scale), repeat=2)))  # (9, 2)
    n_modes, dim = centers.shape
    log_norm = -math.log(n_modes) - 0.5 * dim * math.log(2.0 * math.pi * var)

    def log_density(x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        x = x.astype(jnp.result_type(x, float))
        mu = jnp.asarray(centers, dtype=x.dtype)
        sq = jnp.sum((x - mu) ** 2, axis=-1)  # (9,)
        return jax.nn.logsumexp(-0.5 * sq / var) + log_norm

    def sample(key: jax.Array, n: int) -> jax.Array:
        k_mode, k_noise = jax.random.split(key)
        idx = jax.random.randint(k_mode, (n,), 0, n_modes)
        noise = jax.random.normal(k_noise, (n, dim))
        return jnp.asarray(centers, dtype=noise.dtype)[idx] + math.sqrt(var) * noise

    half = scale + 3.0
    return Target(
        name="gmm",
        dim=dim,
        log_density=log_density,
        domain=(np.full(dim, -half), np.full(dim, half)),
        log_Z=0.0,
        sample=sample,
        std=np.full(dim, math.sqrt(var + 2.0 / 3.0 * scale**2)),
        info={"scale": scale, "var": var, "n_modes": n_modes, "means": centers,
              "reference": "paper 003, App. C, eqs. 69-70"},
    )
