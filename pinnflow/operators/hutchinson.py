"""`Hutchinson`: unbiased stochastic traces with Rademacher probes (square residuals with `unbiased_square`)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from pinnflow.operators.base import Scalar, Vector

__all__ = ["Hutchinson"]


@dataclass(frozen=True)
class Hutchinson:
    """Stochastic traces with `num_probes` Rademacher probes: E[vᵀMv] = Tr(M), unbiased for one call.

    Square residuals with `unbiased_square`, never directly.
    """

    num_probes: int = 1
    stochastic: bool = True

    def __post_init__(self):
        if int(self.num_probes) < 1:
            raise ValueError(f"Hutchinson needs num_probes >= 1, got {self.num_probes}")

    def _probes(self, key: jax.Array | None, x: jax.Array) -> jax.Array:
        if key is None:
            raise ValueError("the Hutchinson backend needs a PRNG key (pass key=...)")
        return jax.random.rademacher(key, (self.num_probes, x.shape[-1]), dtype=x.dtype)

    def divergence(self, f: Vector, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """(1/k) Σ_j v_jᵀ J_f(x) v_j."""
        v = self._probes(key, x)
        _, jvp = jax.linearize(f, x)
        return jnp.mean(jnp.sum(v * jax.vmap(jvp)(v), axis=-1))

    def laplacian(self, f: Scalar, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """(1/k) Σ_j v_jᵀ ∇²f(x) v_j."""
        return self.divergence(jax.grad(f), x, key)

    def weighted_trace(
        self, f: Scalar, A: jax.Array, x: jax.Array, key: jax.Array | None = None
    ) -> jax.Array:
        """(1/k) Σ_j (Aᵀv_j)ᵀ ∇²f(x) v_j, since E[v vᵀ] = I gives E[vᵀ A H v] = Tr(A H)."""
        v = self._probes(key, x)
        _, hvp = jax.linearize(jax.grad(f), x)
        return jnp.mean(jnp.sum((v @ A) * jax.vmap(hvp)(v), axis=-1))
