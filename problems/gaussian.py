"""A Gaussian target with a known normalising constant, for sanity checks of the samplers and log Z."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NoReturn

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from pinnflow.target import Target
from problems import register

__all__ = ["gaussian"]


@register
def gaussian(
    mean: Sequence[float] | np.ndarray = (0.0, 0.0),
    cov: Sequence[Sequence[float]] | np.ndarray | None = None,
    log_Z: float = 0.0,
) -> Target:
    """rho(x) = exp(log_Z) N(x; mean, cov) (cov defaults to I); log Z is exact, the sampler is mean + L z.

    `cov` must be a symmetric positive definite (d, d) matrix. Domain: mean +- 6 std per coordinate.
    """
    name = "gaussian"

    def fail(msg: str) -> NoReturn:
        raise ValueError(f"target {name!r}: {msg}")

    mean = np.asarray(mean, dtype=np.float64)
    if mean.ndim != 1 or mean.size == 0 or not np.all(np.isfinite(mean)):
        fail(f"mean must be a finite non-empty vector, got {mean!r}")
    dim = mean.size
    cov = np.eye(dim) if cov is None else np.asarray(cov, dtype=np.float64)
    if cov.shape != (dim, dim):
        fail(f"cov has shape {cov.shape}, expected ({dim}, {dim}) to match mean")
    if not np.all(np.isfinite(cov)):
        fail("cov must be finite")
    if not np.allclose(cov, cov.T, rtol=1e-10, atol=1e-12):
        fail("cov must be symmetric")
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        fail("cov must be positive definite")
    if not np.isfinite(log_Z):
        fail(f"log_Z must be finite, got {log_Z!r}")
    log_norm = float(log_Z) - float(np.sum(np.log(np.diag(chol)))) - 0.5 * dim * math.log(2.0 * math.pi)

    def log_density(x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        x = x.astype(jnp.result_type(x, float))
        diff = x - jnp.asarray(mean, dtype=x.dtype)
        z = solve_triangular(jnp.asarray(chol, dtype=x.dtype), diff, lower=True)
        return -0.5 * jnp.sum(z**2) + log_norm

    def sample(key: jax.Array, n: int) -> jax.Array:
        z = jax.random.normal(key, (n, dim))
        return jnp.asarray(mean, dtype=z.dtype) + z @ jnp.asarray(chol, dtype=z.dtype).T

    std = np.sqrt(np.diag(cov))
    return Target(
        name=name,
        dim=dim,
        log_density=log_density,
        domain=(mean - 6.0 * std, mean + 6.0 * std),
        log_Z=float(log_Z),
        sample=sample,
        std=std,
        info={"mean": mean, "cov": cov},
    )
