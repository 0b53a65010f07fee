"""N harmonically interacting particles in a moving harmonic trap (paper 000 §3.1.1, eq. 20, App. D.1)."""

from __future__ import annotations

import math
from typing import NoReturn

import jax
import jax.numpy as jnp
import numpy as np

from pinnflow.fokker_planck import FokkerPlanckProblem
from problems.fokker_planck import register
from problems.fokker_planck.particles import isotropic_start, moving_trap

__all__ = ["harmonic_trap"]


def _growth(lam: float, t: jax.Array, var0: float, D: float) -> jax.Array:
    """Variance of one mode with ċ = 2λc + 2D, c(0) = var0: c = var0 e^{2λt} + 2D t φ(2λt), φ(z) = (eᶻ − 1)/z
    (stable and exact for any λ, including λ = 0)."""
    z = 2.0 * lam * t
    if lam == 0.0:
        return var0 + 2.0 * D * t
    return var0 * jnp.exp(z) + 2.0 * D * jnp.expm1(z) / (2.0 * lam)


@register
def harmonic_trap(
    N: int = 50,
    a: float = 2.0,
    omega: float = 1.0,
    D: float = 0.25,
    alpha: float = 0.5,
    T: float = 5.0,
    var0: float = 0.25,
) -> FokkerPlanckProblem:
    """dX⁽ⁱ⁾ = (β_t − X⁽ⁱ⁾) dt + α(X⁽ⁱ⁾ − X̄) dt + √(2D) dW⁽ⁱ⁾, i = 1..N, X⁽ⁱ⁾ ∈ R², d = 2N (particle-major).

    β_t = a(cos πωt, sin πωt). The interaction is repulsive (+α): eq. (20) prints −α, but the paper's moment
    equations (D.2)-(D.3) and its reference entropies need +α (see ../shared/papers/README.md errata).
    ρ0 = N(β0 ⊗ 1_N, var0 · I) (§3.1.1: mean β0, the initial trap position, for every particle; App. D.1.2
    writes σ0 = 0.25 where §3.1.1 writes variance 0.25 — var0 = 0.25 reproduces the paper's S(0)).

    Exact solution (closed form, no ODE solve). The drift is A x + 1_N ⊗ β_t with
    A = −I + α(I − P), P = (1/N) 1 1ᵀ ⊗ I₂ the projector on the centre-of-mass mode. C0 = var0·I commutes
    with A, so C_t = c_com(t) P + c_rel(t)(I − P), each mode solving ċ = 2λc + 2D with λ_com = −1,
    λ_rel = α − 1. Every particle has the same mean m̄_t solving dm̄/dt = β_t − m̄ (relative modes start at 0),
    in complex form m̄ = a e^{iπωt}/(1 + iπω) + (m̄0 − a/(1 + iπω)) e^{−t}. The one-particle covariance
    (App. D.1.3 C_d) is c_rel + (c_com − c_rel)/N; S_t = N(log 2π + 1) + ½ log det C_t (eq. 21).
    """
    name = "harmonic_trap"

    def fail(msg: str) -> NoReturn:
        raise ValueError(f"Fokker-Planck problem {name!r}: {msg}")

    if isinstance(N, bool) or not isinstance(N, int | np.integer) or N < 1:
        fail(f"N must be a positive integer, got {N!r}")
    N = int(N)
    for nm, v in (("a", a), ("omega", omega), ("D", D), ("alpha", alpha), ("var0", var0)):
        if not np.isfinite(v):
            fail(f"{nm} must be finite, got {v!r}")
    if var0 <= 0:
        fail(f"var0 (the initial variance per coordinate) must be > 0, got {var0!r}")
    a, omega, D, alpha, var0 = float(a), float(omega), float(D), float(alpha), float(var0)
    d, kappa = 2 * N, math.pi * omega
    lam_com, lam_rel = -1.0, alpha - 1.0
    c_fac = 1.0 / (1.0 + kappa**2)
    beta0, beta = moving_trap(a, omega)
    p0 = a * c_fac * np.array([1.0, -kappa])  # particular solution at t = 0

    def _t(t):
        return jnp.asarray(t, dtype=jnp.result_type(t, float))

    def one_particle_mean(t):
        t = _t(t)
        c, s = jnp.cos(kappa * t), jnp.sin(kappa * t)
        p = a * c_fac * jnp.stack([c + kappa * s, s - kappa * c])
        return p + jnp.asarray(beta0 - p0, t.dtype) * jnp.exp(-t)

    def modes(t):
        t = _t(t)
        return _growth(lam_com, t, var0, D), _growth(lam_rel, t, var0, D)

    def one_particle_cov(t):
        c_com, c_rel = modes(t)
        return (c_rel + (c_com - c_rel) / N) * jnp.eye(2, dtype=c_com.dtype)

    def mean(t):
        return jnp.tile(one_particle_mean(t), N)

    P = np.kron(np.full((N, N), 1.0 / N), np.eye(2))

    def cov(t):
        c_com, c_rel = modes(t)
        Pj = jnp.asarray(P, c_com.dtype)
        return c_com * Pj + c_rel * (jnp.eye(d, dtype=c_com.dtype) - Pj)

    def logdet(c_com, c_rel):
        return 2.0 * jnp.log(c_com) + 2.0 * (N - 1) * jnp.log(c_rel)

    def split(x, t):
        y = x.reshape(N, 2) - one_particle_mean(t).astype(x.dtype)
        ybar = jnp.mean(y, axis=0)
        return y, ybar

    def log_rho(x, t):
        y, ybar = split(x, t)
        c_com, c_rel = (c.astype(x.dtype) for c in modes(t))
        quad = N * (ybar @ ybar) / c_com + jnp.sum((y - ybar) ** 2) / c_rel
        return -0.5 * quad - 0.5 * logdet(c_com, c_rel) - 0.5 * d * jnp.log(2.0 * jnp.pi)

    def score(x, t):
        y, ybar = split(x, t)
        c_com, c_rel = (c.astype(x.dtype) for c in modes(t))
        return -(ybar / c_com + (y - ybar) / c_rel).reshape(d)

    def entropy(t):
        c_com, c_rel = modes(t)
        return 0.5 * d * (jnp.log(2.0 * jnp.pi) + 1.0) + 0.5 * logdet(c_com, c_rel)

    def drift(x, t):
        X = x.reshape(N, 2)
        b = beta(t).astype(x.dtype)
        return ((b - X) + alpha * (X - jnp.mean(X, axis=0))).reshape(d)

    log_rho0, score0, sample0 = isotropic_start(beta0, N, var0)

    return FokkerPlanckProblem(
        name=name, dim=d, drift=drift, D=D, T=T,
        log_rho0=log_rho0, score0=score0, sample0=sample0,
        mean=mean, cov=cov, log_rho=log_rho, score=score, entropy=entropy,
        particles=(N, 2),
        info={
            "N": N, "a": a, "omega": omega, "D": D, "alpha": alpha, "var0": var0,
            "beta": beta, "one_particle_mean": one_particle_mean, "one_particle_cov": one_particle_cov,
            "paper": "000 §3.1.1 (eq. 20, 21), App. D.1",
            "conventions": "repulsive +alpha (errata); initial variance var0 per coordinate; mean beta_0",
            "exact": "closed form (centre-of-mass / relative modes)",
        },
    )
