"""Moments and mode coverage of samples (paper 003, eq. 67 and App. C)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["delta_std", "mode_fractions"]


def delta_std(samples: jax.Array, ref_std: jax.Array) -> jax.Array:
    """Δstd = (1/d) Σ_i |std_i(samples) − ref_std_i| (paper 003, eq. 67); std over axis 0 with ddof = 0."""
    samples = jnp.asarray(samples)
    return jnp.mean(jnp.abs(jnp.std(samples, axis=0) - jnp.asarray(ref_std)))


def mode_fractions(samples: jax.Array, centers: jax.Array) -> jax.Array:
    """Fraction of `samples (n, d)` nearest (Euclidean) to each of `centers (k, d)`, shape `(k,)`.

    Mode-coverage check for the GMM target (paper 003, App. C, eq. 70): ideally 1/9 each.
    """
    samples, centers = jnp.asarray(samples), jnp.asarray(centers)
    sq_dist = jnp.sum((samples[:, None, :] - centers[None, :, :]) ** 2, axis=-1)
    nearest = jnp.argmin(sq_dist, axis=1)
    return jnp.bincount(nearest, length=centers.shape[0]) / samples.shape[0]
