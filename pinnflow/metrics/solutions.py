"""How close particles and a learned score are to a Fokker–Planck problem's exact solution (paper 000 §3):
the relative score error (eq. 22), mean and covariance errors, and the one-particle marginal of a particle
system (N particles in k dimensions, particle-major). Shared by every Fokker–Planck solver (`pinnflow.sbtm`,
`pinnflow.pinn.fokker_planck`, `pinnflow.fpe`) and the figures."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["relative_score_error", "empirical_moments", "moment_errors", "moment_errors_of", "one_particle_moments",
           "one_particle_cov_error", "one_particle_cov_error_of", "SUMMARY_MAX_DIM", "one_particle_columns",
           "one_particle_summary"]


def relative_score_error(s: jax.Array, s_star: jax.Array) -> jax.Array:
    """mean_i |s_i − s*_i|² / mean_i |s*_i|² over the particles (paper 000 eq. 22 with ρ̄ the particle
    measure; eq. D.1 at t = 0). Shapes (n, d)."""
    return jnp.sum((s - s_star) ** 2) / jnp.sum(s_star**2)


def empirical_moments(X: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean (d,), covariance (d, d)) of the particles X (n, d), covariance normalised by n (not n − 1)."""
    m = jnp.mean(X, axis=0)
    Y = X - m
    return m, Y.T @ Y / X.shape[0]


def moment_errors(X: jax.Array, m: jax.Array, C: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(‖m̂ − m‖₂ / √tr C, ‖Ĉ − C‖_F / ‖C‖_F): the particle mean's error in units of the spread and the
    relative Frobenius error of the particle covariance (normalised by n), against exact m, C."""
    mh, Ch = empirical_moments(X)
    return moment_errors_of(mh, Ch, m, C)


def moment_errors_of(mh: jax.Array, Ch: jax.Array, m: jax.Array, C: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`moment_errors` from estimated moments (mh, Ch) instead of particles (e.g. an SDE ensemble's)."""
    return (jnp.linalg.norm(mh - m) / jnp.sqrt(jnp.trace(C)),
            jnp.linalg.norm(Ch - C) / jnp.linalg.norm(C))


def one_particle_moments(m: jax.Array, C: jax.Array, particles: tuple[int, int]) -> tuple[jax.Array, jax.Array]:
    """(mean (k,), covariance (k, k)) of the one-particle marginal of N particles in k dimensions whose joint
    law has mean m (N k,) and covariance C (N k, N k) (particle-major): the law of a uniformly chosen particle,
    (1/N)Σ_i law(x⁽ⁱ⁾), so mean = (1/N)Σ_i m_i and cov = (1/N)Σ_i (C_ii + m_i m_iᵀ) − mean meanᵀ (paper 000
    Fig. 1B plots its covariance; for an exchangeable system every C_ii is the same)."""
    N, k = particles
    mi = m.reshape(N, k)
    Cii = jnp.diagonal(C.reshape(N, k, N, k), axis1=0, axis2=2)  # (k, k, N)
    mean = jnp.mean(mi, axis=0)
    second = jnp.mean(jnp.moveaxis(Cii, -1, 0), axis=0) + mi.T @ mi / N
    return mean, second - jnp.outer(mean, mean)


def one_particle_cov_error(X: jax.Array, m: jax.Array, C: jax.Array, particles: tuple[int, int]) -> jax.Array:
    """‖Ĉ₁ − C₁‖_F / ‖C₁‖_F: the relative error of the one-particle covariance pooled over the N particles of
    every sample of X (n, N k) (normalised by n N), against the exact one (`one_particle_moments` of m, C)."""
    _, Ch = empirical_moments(X.reshape(-1, particles[1]))
    return one_particle_cov_error_of(Ch, m, C, particles)


def one_particle_cov_error_of(Ch: jax.Array, m: jax.Array, C: jax.Array, particles: tuple[int, int]) -> jax.Array:
    """`one_particle_cov_error` from an estimated one-particle covariance Ĉ₁ (k, k) (e.g. an SDE ensemble's)."""
    _, C1 = one_particle_moments(m, C, particles)
    return jnp.linalg.norm(Ch - C1) / jnp.linalg.norm(C1)


SUMMARY_MAX_DIM = 3  # one-particle summaries are reported for one-particle spaces of at most this dimension


def one_particle_columns(mean: jax.Array, cov: jax.Array) -> dict[str, jax.Array]:
    """Named entries of a one-particle mean (k,) and covariance (k, k): `op_mean_<i>`, `op_cov_<i><j>` (i ≤ j)
    — the curves of paper 000 Figs. 1B and 4."""
    k = mean.shape[0]
    out = {f"op_mean_{i}": mean[i] for i in range(k)}
    out.update({f"op_cov_{i}{j}": cov[i, j] for i in range(k) for j in range(i, k)})
    return out


def one_particle_summary(X: jax.Array, particles: tuple[int, int] | None) -> dict[str, jax.Array]:
    """`one_particle_columns` of the particles X (n, d) pooled over the N particles of each sample (the whole
    state when `particles` is None); empty when the one-particle space has more than `SUMMARY_MAX_DIM`
    dimensions. Covariance normalised by the number of pooled points."""
    k = X.shape[1] if particles is None else particles[1]
    if k > SUMMARY_MAX_DIM:
        return {}
    return one_particle_columns(*empirical_moments(X.reshape(-1, k)))
