"""Exact Gaussian solutions of linear Fokker–Planck equations, shared by `ou` and `harmonic_trap`.

For dX = (A X + f_t) dt + √(2D) dW with X_0 ~ N(m0, C0) the law stays Gaussian, N(m_t, C_t), with
ṁ = A m + f_t and Ċ = A C + C Aᵀ + 2D (paper 000 eq. C.3 with A = −Γ, f = Γ b).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import expm, solve_triangular

__all__ = ["LinearFlow", "doublings", "gaussian_log_density", "gaussian_score", "gaussian_entropy"]


def doublings(A: np.ndarray, T: float) -> int:
    """How many times to halve [0, T] so that ‖A‖₂ · T / 2^k ≤ 1/2 (no growth e^{‖A‖h} in Van Loan's block)."""
    norm = float(np.linalg.norm(A, 2)) * max(float(T), 1e-300)
    return max(0, math.ceil(math.log2(2.0 * norm))) if norm > 0.5 else 0


class LinearFlow:
    """Φ_t = e^{A t} and W_t = ∫_0^t e^{A s} Q e^{Aᵀ s} ds for constant A, Q, exactly.

    Van Loan (1978): expm(h [[−A, Q], [0, Aᵀ]]) = [[·, E12], [0, E22]] with E22 = e^{Aᵀh}, so Φ_h = E22ᵀ and
    W_h = Φ_h E12. The block e^{−Ah} grows like e^{‖A‖h}, so h = t / 2^k with k fixed from (A, T) at
    construction (static, jittable), followed by k exact doublings Φ_{2h} = Φ_h², W_{2h} = W_h + Φ_h W_h Φ_hᵀ.
    Differentiable in t (jax.scipy.linalg.expm has a JVP).
    """

    def __init__(self, A: np.ndarray, Q: np.ndarray, T: float):
        self.A = np.asarray(A, dtype=np.float64)
        self.Q = np.asarray(Q, dtype=np.float64)
        self.d = self.A.shape[0]
        self.k = doublings(self.A, T)
        z = np.zeros_like(self.A)
        self.M = np.block([[-self.A, self.Q], [z, self.A.T]])

        self._jitted = jax.jit(self._moments)  # one compilation per dtype, shared by every exact function

    def __call__(self, t) -> tuple[jax.Array, jax.Array]:
        return self._jitted(jnp.asarray(t, dtype=jnp.result_type(t, float)))

    def _moments(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        d = self.d
        E = expm(jnp.asarray(self.M, dtype=t.dtype) * (t / 2.0**self.k))
        Phi = E[d:, d:].T
        W = Phi @ E[:d, d:]
        for _ in range(self.k):
            W = W + Phi @ W @ Phi.T
            Phi = Phi @ Phi
        return Phi, 0.5 * (W + W.T)


def gaussian_log_density(x: jax.Array, m: jax.Array, C: jax.Array) -> jax.Array:
    """log N(x; m, C) for one point (Cholesky; differentiable in x, m and C)."""
    L = jnp.linalg.cholesky(C)
    z = solve_triangular(L, x - m, lower=True)
    return -0.5 * (z @ z) - jnp.sum(jnp.log(jnp.diag(L))) - 0.5 * x.shape[-1] * jnp.log(2.0 * jnp.pi)


def gaussian_score(x: jax.Array, m: jax.Array, C: jax.Array) -> jax.Array:
    """∇ log N(x; m, C) = −C⁻¹(x − m) (paper 000 eq. C.4)."""
    L = jnp.linalg.cholesky(C)
    z = solve_triangular(L, x - m, lower=True)
    return -solve_triangular(L.T, z, lower=False)


def gaussian_entropy(C: jax.Array) -> jax.Array:
    """Differential entropy ½ log det(2πe C) (paper 000 eq. 21, App. D.1.5)."""
    L = jnp.linalg.cholesky(C)
    return 0.5 * C.shape[-1] * (jnp.log(2.0 * jnp.pi) + 1.0) + jnp.sum(jnp.log(jnp.diag(L)))
