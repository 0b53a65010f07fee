"""N soft spheres in a moving anharmonic trap (paper 000 §3.1.2, App. D.2); no closed-form solution."""

from __future__ import annotations

import math
from typing import NoReturn

import jax.numpy as jnp
import numpy as np

from pinnflow.fokker_planck import FokkerPlanckProblem
from problems.fokker_planck import register
from problems.fokker_planck.particles import isotropic_start, moving_trap

__all__ = ["soft_spheres"]


@register
def soft_spheres(
    N: int = 5,
    a: float = 2.0,
    omega: float = 1.0,
    D: float = 0.25,
    A: float = 30.0,
    r: float = 0.15,
    gamma: float = 1.25,
    T: float = 5.0,
    var0: float = 0.25,
) -> FokkerPlanckProblem:
    """dX⁽ⁱ⁾ = 4B(β_t − X⁽ⁱ⁾)|X⁽ⁱ⁾ − β_t|² dt + (A / (N r²)) Σ_j (X⁽ⁱ⁾ − X⁽ʲ⁾) e^{−|X⁽ⁱ⁾ − X⁽ʲ⁾|²/(2r²)} dt
    + √(2D) dW⁽ⁱ⁾, X⁽ⁱ⁾ ∈ R², d = 2N (particle-major).

    A gradient drift b = −∇U with U = B Σ_i |x⁽ⁱ⁾ − β_t|⁴ + (A/N) Σ_{i<j} e^{−|x⁽ⁱ⁾ − x⁽ʲ⁾|²/(2r²)}
    (`info['potential']`). β_t = a(cos πωt, sin πωt) (the paper prints "a cos(πωt, sin πωt)"). B = D / R²
    with R = √(γN)·r (the paper prints "R = √γNr"; we read R² = γ N r², the area of N spheres of radius r
    times γ, "so that the trap scales with the number of particles": R = 0.375, B ≈ 1.778 by default).
    ρ0 = N(β0 ⊗ 1_N, var0·I), var0 = σ0² = 0.25 (App. D.2.2: σ0 = 0.5). App. D.2.2 also takes 100 SDE steps
    in artificial time at t = 0 to separate overlapping spheres before the solve: a solver's choice, recorded
    in `info['pre_equilibration']`, not part of ρ0. T = 5 (the paper's snapshots reach t = 4.95).
    """
    name = "soft_spheres"

    def fail(msg: str) -> NoReturn:
        raise ValueError(f"Fokker-Planck problem {name!r}: {msg}")

    if isinstance(N, bool) or not isinstance(N, int | np.integer) or N < 1:
        fail(f"N must be a positive integer, got {N!r}")
    N = int(N)
    for nm, v in (("a", a), ("omega", omega), ("D", D), ("A", A), ("r", r), ("gamma", gamma), ("var0", var0)):
        if not np.isfinite(v):
            fail(f"{nm} must be finite, got {v!r}")
    for nm, v in (("r", r), ("gamma", gamma), ("var0", var0), ("D", D)):
        if v <= 0:
            fail(f"{nm} must be > 0, got {v!r}")
    a, omega, D, A, r, gamma, var0 = (float(v) for v in (a, omega, D, A, r, gamma, var0))
    d = 2 * N
    R = math.sqrt(gamma * N) * r
    B = D / R**2
    beta0, beta = moving_trap(a, omega)

    def drift(x, t):
        X = x.reshape(N, 2)
        y = beta(t).astype(x.dtype) - X
        trap = 4.0 * B * y * jnp.sum(y**2, axis=1, keepdims=True)
        diff = X[:, None, :] - X[None, :, :]  # (N, N, 2); the i = j term is 0
        w = jnp.exp(-jnp.sum(diff**2, axis=-1) / (2.0 * r**2))
        rep = (A / (N * r**2)) * jnp.sum(w[..., None] * diff, axis=1)
        return (trap + rep).reshape(d)

    iu = np.triu_indices(N, k=1)

    def potential(x, t):
        X = x.reshape(N, 2)
        y = X - beta(t).astype(x.dtype)
        diff = X[:, None, :] - X[None, :, :]
        w = jnp.exp(-jnp.sum(diff**2, axis=-1) / (2.0 * r**2))
        return B * jnp.sum(jnp.sum(y**2, axis=1) ** 2) + (A / N) * jnp.sum(w[iu])

    log_rho0, score0, sample0 = isotropic_start(beta0, N, var0)

    return FokkerPlanckProblem(
        name=name, dim=d, drift=drift, D=D, T=T,
        log_rho0=log_rho0, score0=score0, sample0=sample0,
        particles=(N, 2),
        info={
            "N": N, "a": a, "omega": omega, "D": D, "A": A, "r": r, "gamma": gamma, "R": R, "B": B,
            "var0": var0, "beta": beta, "potential": potential,
            "pre_equilibration": {"sde_steps": 100, "physical_time": 0.0,
                                  "note": "App. D.2.2: SDE steps in artificial time at t = 0 (step size not given)"},
            "paper": "000 §3.1.2, App. D.2",
            "exact": "none",
        },
    )
