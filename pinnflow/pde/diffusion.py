"""The diffusion of dX = μ dt + σ dW: σ as a scalar, a (d, d) matrix or a function of t; D = σσᵀ."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

__all__ = ["Sigma", "ScalarField", "VectorField", "diffusion_at", "is_zero", "diffusion_matrix", "half_quadratic"]

ScalarField = Callable[[jax.Array, jax.Array], jax.Array]  # (x (d,), t) -> ()
VectorField = Callable[[jax.Array, jax.Array], jax.Array]  # (x (d,), t) -> (d,)
Sigma = float | jax.Array | Callable[[jax.Array], jax.Array]


def diffusion_at(sigma: Sigma, t) -> jax.Array:
    """σ(t): a scalar (σ·I) or a (d, d) matrix."""
    return jnp.asarray(sigma(t) if callable(sigma) else sigma)


def is_zero(sigma: Sigma) -> bool:
    """Statically zero diffusion (a Python number 0), so the second-order term can be skipped."""
    return isinstance(sigma, int | float) and sigma == 0


def diffusion_matrix(sigma: Sigma, x: jax.Array, t) -> jax.Array | None:
    """D = σσᵀ as the operator backends take it: None for σ ≡ 0, a scalar σ² for σ·I, else the (d, d) matrix."""
    if is_zero(sigma):
        return None
    S = diffusion_at(sigma, t).astype(x.dtype)
    return S**2 if S.ndim == 0 else S @ S.T


def half_quadratic(D: jax.Array | None, g: jax.Array) -> jax.Array:
    """½‖σᵀg‖² = ½ gᵀDg (0 for D = None)."""
    if D is None:
        return jnp.zeros((), g.dtype)
    return 0.5 * D * (g @ g) if jnp.ndim(D) == 0 else 0.5 * g @ (D @ g)
