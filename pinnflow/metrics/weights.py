"""Importance weights of a sampler (paper 003, App. B.3): ESS (eq. 68) and log Z estimates.

Weights are always passed in log space, `log_w = log rho_target(x) - log p_model(x)` (eq. 65), shape `(n,)`;
entries may be `-inf` (zero weight). Pure jittable functions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

__all__ = ["ess", "log_mean_exp", "log_z_lower_bound", "log_z_importance", "delta_log_z"]


def log_mean_exp(a: jax.Array) -> jax.Array:
    """log((1/n) Σ exp(a_i)) over the leading axis, without overflow."""
    a = jnp.asarray(a)
    return logsumexp(a, axis=0) - jnp.log(a.shape[0])


def ess(log_w: jax.Array) -> jax.Array:
    """Normalised effective sample size (Σw)² / (n Σw²) ∈ [1/n, 1] (paper 003, eq. 68).

    Computed as exp(2 LSE(log w) − LSE(2 log w) − log n): invariant to a constant shift of log w,
    no overflow for large log-weights.
    """
    log_w = jnp.asarray(log_w)
    n = log_w.shape[0]
    return jnp.exp(2.0 * logsumexp(log_w) - logsumexp(2.0 * log_w) - jnp.log(n))


def log_z_lower_bound(log_w: jax.Array) -> jax.Array:
    """E[log w] ≤ log Z, the estimate behind Table 2's ΔlogZ (paper 003, App. B.2–B.3; Jensen)."""
    return jnp.mean(jnp.asarray(log_w))


def log_z_importance(log_w: jax.Array) -> jax.Array:
    """Importance-sampling estimate log((1/n) Σ w) of log Z (not used in the paper's Table 2)."""
    return log_mean_exp(log_w)


def delta_log_z(log_w: jax.Array, log_Z: float | jax.Array) -> dict[str, jax.Array]:
    """ΔlogZ (paper 003, App. B.3): `delta_log_z` = |log Z − E[log w]| (the paper's, lower bound) and
    `delta_log_z_is` = |log Z − log mean w| (importance sampling)."""
    return {
        "delta_log_z": jnp.abs(log_Z - log_z_lower_bound(log_w)),
        "delta_log_z_is": jnp.abs(log_Z - log_z_importance(log_w)),
    }


