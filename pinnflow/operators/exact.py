"""`Exact`: exact traces by forward mode (linearise once, push the d basis vectors through)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from pinnflow.operators.base import Scalar, Vector

__all__ = ["Exact", "EXACT", "basis_columns"]


def basis_columns(jvp: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
    """Apply a linear map to every basis vector e_i; row i of the result is jvp(e_i)."""
    return jax.vmap(jvp)(jnp.eye(x.shape[-1], dtype=x.dtype))


@dataclass(frozen=True)
class Exact:
    """Exact traces by forward mode: linearise once, push the d basis vectors through (vmap)."""

    stochastic: bool = False

    def divergence(self, f: Vector, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """div f(x) = Σ_i ∂_i f_i(x)."""
        del key
        _, jvp = jax.linearize(f, x)
        return jnp.trace(basis_columns(jvp, x))

    def laplacian(self, f: Scalar, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """Δf(x) = div ∇f(x) (forward-over-reverse)."""
        return self.divergence(jax.grad(f), x, key)

    def weighted_trace(
        self, f: Scalar, A: jax.Array, x: jax.Array, key: jax.Array | None = None
    ) -> jax.Array:
        """Tr(A ∇²f(x)) for a constant (d, d) matrix A."""
        del key
        _, hvp = jax.linearize(jax.grad(f), x)
        H = basis_columns(hvp, x)  # H[i] = ∇²f e_i (symmetric)
        return jnp.sum(A * H.T)

EXACT = Exact()
