"""What the trapped particle systems of paper 000 §3.1 share: the moving trap centre β_t and the initial law
(N particles in the plane, each N(β0, var0·I) independently)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["isotropic_start", "moving_trap"]


def moving_trap(a: float, omega: float):
    """(β0, β): the trap centre β_t = a(cos πωt, sin πωt) and its value at t = 0 (a numpy array)."""
    kappa = math.pi * omega

    def beta(t):
        t = jnp.asarray(t, dtype=jnp.result_type(t, float))
        return a * jnp.stack([jnp.cos(kappa * t), jnp.sin(kappa * t)])

    return np.array([a, 0.0]), beta


def isotropic_start(beta0, N: int, var0: float):
    """(log_rho0, score0, sample0) of x = (x_1 … x_N) with x_i ~ N(β0, var0·I₂) independently (d = 2N)."""
    d = 2 * N
    log_norm0 = -0.5 * d * math.log(2.0 * math.pi * var0)

    def log_rho0(x):
        y = x.reshape(N, 2) - jnp.asarray(beta0, x.dtype)
        return -0.5 * jnp.sum(y**2) / var0 + log_norm0

    def score0(x):
        return -(x.reshape(N, 2) - jnp.asarray(beta0, x.dtype)).reshape(d) / var0

    def sample0(key, n):
        z = jax.random.normal(key, (n, d))
        return jnp.tile(jnp.asarray(beta0, z.dtype), N) + math.sqrt(var0) * z

    return log_rho0, score0, sample0
