"""What SBTM reports along the particle trajectories, each with its definition (paper 000 §2.4, §3.1.1); the
errors against an exact solution (score, moments, one-particle marginal) are `pinnflow.metrics.solutions`.

Entropy: the *differential* entropy S_t = −∫ρ_t log ρ_t (paper 000 eq. 21; the paper's symbol S_t = ∫ρ log ρ
in eqs. 16–17 is the negentropy, see ../shared/papers/README.md). With the flow map X_t of the probability
flow (eq. 6) and Stein's identity, both of the paper's routes read, for the differential entropy,

    (16)  S_t = −E[log ρ_t(X_t)] = S_0 + ∫_0^t E[∇·v_τ(X_τ)] dτ,
    (17)  S_t = S_0 − ∫_0^t E[s_τ(X_τ)·v_τ(X_τ)] dτ,

(dS/dt = −∫ log ρ ∂_tρ = −∫ ∇log ρ · v ρ = ∫ ∇·v ρ). With a perfect score both agree; their gap measures
the score's error. Expectations are particle means; S_0 is the problem's exact entropy at t = 0 when known
(as in paper 000 §2.4), else the particle estimate −mean log ρ_0(X_0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["probability_current"]


def probability_current(v: jax.Array, log_rho: jax.Array) -> jax.Array:
    """The probability current j_t = v_t ρ_t at the particles (paper 000 eq. 15), from the velocity there
    (n, d) and log ρ_t along the trajectories (n,)."""
    return v * jnp.exp(log_rho)[:, None]
