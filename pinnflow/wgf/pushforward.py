"""ρ_θ = T_θ#N(0, I) and the free energy H(θ) = E_{X∼p}[V(T_θX) + β log ρ_θ(T_θX)] (paper 004 eqs. 26, 40).

`PushForward` composes a fixed affine base z ↦ m0 + L0 z (ρ0 = N(m0, L0L0ᵀ), so that the identity flow gives
ρ_θ0 = ρ0) with a trainable flow (`pinnflow.nn.flows`). For one reference point z,

    log ρ_θ(T_θ z) = log p(z) − log|det L0| − log|det ∂flow|,

with p = N(0, I) (the corrected eq. 39; the paper's ρ0 is p itself, m0 = 0, L0 = I). At the identity flow,
H = E_p[V(T z)] − (β/2) d log(2πe) − β log|det L0|.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pinnflow.nn.flows import Flow

__all__ = ["PushForward"]

Params = Any


@dataclass(frozen=True)
class PushForward:
    """T_θ = flow ∘ (z ↦ m0 + L0 z) on R^d; `m0` (d,), `L0` (d, d) lower-triangular with positive diagonal."""

    flow: Flow
    m0: np.ndarray
    L0: np.ndarray

    @property
    def dim(self) -> int:
        return self.flow.dim

    def point(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(T_θ z, log ρ_θ(T_θ z)) for one reference point z (d,)."""
        x = jnp.asarray(self.m0, z.dtype) + jnp.asarray(self.L0, z.dtype) @ z
        y, logdet = self.flow.apply(params, x)
        log_p = -0.5 * (z @ z) - 0.5 * z.shape[-1] * jnp.log(2.0 * jnp.pi)
        log_det0 = jnp.sum(jnp.log(jnp.diag(jnp.asarray(self.L0, z.dtype))))
        return y, log_p - log_det0 - logdet

    def push(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """`point` over a batch z (n, d): (n, d) samples of ρ_θ and their (n,) log-densities."""
        return jax.vmap(self.point, in_axes=(None, 0))(params, z)

    def free_energy_terms(self, params: Params, z: jax.Array, V) -> tuple[jax.Array, jax.Array]:
        """Per-sample (V(T_θ z), log ρ_θ(T_θ z)) over a batch z (n, d); H = mean(V) + β mean(log ρ)."""
        y, log_rho = self.push(params, z)
        return jax.vmap(V)(y), log_rho

    def free_energy(self, params: Params, z: jax.Array, V, beta: float) -> jax.Array:
        """The Monte-Carlo estimate of H(θ) over the reference batch z (paper 004 eq. 40 with the factor β)."""
        v, log_rho = self.free_energy_terms(params, z, V)
        return jnp.mean(v) + beta * jnp.mean(log_rho)
