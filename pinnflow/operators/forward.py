"""`ForwardLaplacian`: exact traces by forward-Laplacian propagation (the interpreter in
`pinnflow.operators.forward_laplacian`): value, ∇f, ∂_t f and the trace in one pass."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from pinnflow.operators.base import Derivatives, Scalar, Vector
from pinnflow.operators.forward_laplacian import forward_laplacian

__all__ = ["ForwardLaplacian", "FORWARD_LAPLACIAN"]


def _eigen_directions(A: jax.Array, dtype) -> tuple[jax.Array, jax.Array]:
    """(λ, rows q_kᵀ) of sym(A): Tr(A H) = Σ_k λ_k q_kᵀ H q_k for any symmetric H."""
    lam, Q = jnp.linalg.eigh(0.5 * (A + A.T).astype(dtype))
    return lam, Q.T


@dataclass(frozen=True)
class ForwardLaplacian:
    """Exact traces by forward-Laplacian propagation (`pinnflow.forward_laplacian`): one pass carries the
    value, the d + 1 first derivatives (x and t) and the trace through the network."""

    stochastic: bool = False

    def divergence(self, f: Vector, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """div f(x) from a first-order forward Jacobian (no second-order terms)."""
        del key
        eye = jnp.eye(x.shape[-1], dtype=x.dtype)
        return jnp.trace(forward_laplacian(f, (x,), (eye,), m=0).J)

    def laplacian(self, f: Scalar, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        del key
        eye = jnp.eye(x.shape[-1], dtype=x.dtype)
        return forward_laplacian(f, (x,), (eye,), m=x.shape[-1]).L

    def weighted_trace(
        self, f: Scalar, A: jax.Array, x: jax.Array, key: jax.Array | None = None
    ) -> jax.Array:
        """Tr(A∇²f) = Σ_k λ_k q_kᵀ∇²f q_k over the eigenpairs of sym(A) (∇²f is symmetric)."""
        del key
        lam, dirs = _eigen_directions(A, x.dtype)
        return forward_laplacian(f, (x,), (dirs,), m=x.shape[-1], weights=lam).L

    def derivatives(self, F, x, t, D=None, key=None) -> Derivatives:
        """One pass over directions (e_1..e_d, ∂_t), or the eigenvectors of D for a matrix D."""
        del key
        d = x.shape[-1]
        t = jnp.asarray(t, dtype=x.dtype)
        if D is None or jnp.ndim(D) == 0:
            dirs, weights = jnp.eye(d, dtype=x.dtype), None
        else:
            weights, dirs = _eigen_directions(D, x.dtype)
        tx = jnp.concatenate([dirs, jnp.zeros((1, d), x.dtype)])
        tt = jnp.zeros((d + 1,), x.dtype).at[d].set(1.0)
        out = forward_laplacian(F, (x, t), (tx, tt), m=0 if D is None else d, weights=weights)
        g = out.J[:d] if weights is None else dirs.T @ out.J[:d]
        if D is None:
            trace = jnp.zeros((), x.dtype)
        else:
            trace = D * out.L if jnp.ndim(D) == 0 else out.L
        return Derivatives(out.value, g, out.J[d], trace)

FORWARD_LAPLACIAN = ForwardLaplacian()
