"""PDE residuals of dynamical measure transport, evaluated at one point (x, t).

Fields are callables: scalar fields `V, Phi: (x, t) -> ()`, vector fields `mu, f, s: (x, t) -> (d,)`.
`sigma` is a scalar, a constant `(d, d)` matrix, or a function of t returning either; D = σσᵀ.
Every residual takes an operator backend `op` (default exact) and a `key` for stochastic backends.
Paper 003 = Sun et al., *Dynamical measure transport*; paper 002 = Deveney et al., *ODE–SDE gap*.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from pinnflow.core.rng import split_or_none
from pinnflow.operators import EXACT, Backend, derivatives, field_divergence, jacobian, time_derivative
from pinnflow.pde.diffusion import ScalarField, Sigma, VectorField, diffusion_at, diffusion_matrix, half_quadratic

__all__ = ["log_fp", "log_ce", "hjb", "score", "score_fp", "diffusion_at"]

def log_fp(
    V: ScalarField, mu: VectorField, sigma: Sigma, x: jax.Array, t, op: Backend = EXACT, key=None
) -> jax.Array:
    """Log Fokker–Planck residual, paper 003 eq. (7):
    ∂_tV + div μ + ∇V·μ − ½‖σᵀ∇V‖² − ½Tr(σσᵀ∇²V)."""
    k_div, k_tr = split_or_none(key, 2)
    D = diffusion_matrix(sigma, x, t)
    v = derivatives(op, V, x, t, D, k_tr)
    div_mu = field_divergence(op, mu, x, t, k_div)
    return v.dt + div_mu + v.grad @ mu(x, t) - half_quadratic(D, v.grad) - 0.5 * v.trace


def log_ce(V: ScalarField, mu: VectorField, x: jax.Array, t, op: Backend = EXACT, key=None) -> jax.Array:
    """Log continuity-equation residual, paper 003 eq. (8): ∂_tV + div μ + ∇V·μ (eq. 7 with σ = 0)."""
    return log_fp(V, mu, 0, x, t, op, key)


def hjb(Phi: ScalarField, sigma: Sigma, x: jax.Array, t, op: Backend = EXACT, key=None) -> jax.Array:
    """Hamilton–Jacobi–Bellman residual, paper 003 eq. (20): ∂_tΦ + ½‖∇Φ‖² + ½Tr(σσᵀ∇²Φ);
    eq. (21) for σ = 0 (optimal transport)."""
    p = derivatives(op, Phi, x, t, diffusion_matrix(sigma, x, t), key)
    return p.dt + 0.5 * (p.grad @ p.grad) + 0.5 * p.trace


def score(
    V: ScalarField, f: VectorField, sigma: Sigma, x: jax.Array, t, op: Backend = EXACT, key=None
) -> jax.Array:
    """Time-reversal (score) residual, paper 003 eq. (15), i.e. eq. (7) with μ = σσᵀ∇V − f:
    ∂_tV − div f − ∇V·f + ½‖σᵀ∇V‖² + ½Tr(σσᵀ∇²V)."""
    k_div, k_tr = split_or_none(key, 2)
    D = diffusion_matrix(sigma, x, t)
    v = derivatives(op, V, x, t, D, k_tr)
    div_f = field_divergence(op, f, x, t, k_div)
    return v.dt - div_f - v.grad @ f(x, t) + half_quadratic(D, v.grad) + 0.5 * v.trace


def score_fp(
    s: VectorField, f: VectorField, sigma: Sigma, x: jax.Array, t, op: Backend = EXACT, key=None
) -> jax.Array:
    """Score Fokker–Planck residual (vector), the x-gradient of eq. (7) with μ = f, s = ∇V
    (paper 002 eqs. 31–32, transposes as derived; J_ij = ∂_j s_i, D = σσᵀ):
    ∂_t s + ∇(div f) + J_sᵀf + J_fᵀs − J_sᵀDs − ½∇ div(Ds)."""
    k_f, k_s = split_or_none(key, 2)
    st = lambda y: s(y, t)  # noqa: E731
    ft = lambda y: f(y, t)  # noqa: E731
    s_x, f_x = st(x), ft(x)
    J_s, J_f = jacobian(st, x), jacobian(ft, x)
    out = time_derivative(s, x, t) + jax.grad(lambda y: op.divergence(ft, y, k_f))(x)
    out = out + J_s.T @ f_x + J_f.T @ s_x
    D = diffusion_matrix(sigma, x, t)
    if D is None:
        return out
    D = D * jnp.eye(x.shape[-1], dtype=x.dtype) if jnp.ndim(D) == 0 else D
    Ds = lambda y: D @ st(y)  # noqa: E731
    return out - J_s.T @ (D @ s_x) - 0.5 * jax.grad(lambda y: op.divergence(Ds, y, k_s))(x)
