"""The isotropic Gaussian log-density, shared by priors, reference SDE kernels and baselines."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["normal_log_prob"]


def normal_log_prob(x: jax.Array, mean: jax.Array | float, var: jax.Array | float) -> jax.Array:
    """log N(x; mean, var·I), summed over the last axis (x: (..., d); var a scalar variance)."""
    x = jnp.asarray(x)
    var = jnp.asarray(var, x.dtype)
    return -0.5 * jnp.sum((x - mean) ** 2, axis=-1) / var - 0.5 * x.shape[-1] * jnp.log(2.0 * jnp.pi * var)
