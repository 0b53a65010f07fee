"""Potential Fokker–Planck problems ∂_tρ = ∇·(ρ∇V) + βΔρ, ρ0 = N(0, I) unless given (paper 004 §6): drift −∇V,
D = β, `potential = V` (`pinnflow.fokker_planck.potential_problem`).

- `quadratic`: V = ½(x − µ)ᵀΣ⁻¹(x − µ), exact Gaussian solution (an OU process with Γ = Σ⁻¹, b = µ, D = β):
  m(t) = µ + e^{−Σ⁻¹t}(m0 − µ), C(t) = βΣ + e^{−Σ⁻¹t}(C0 − βΣ)e^{−Σ⁻¹t}. Defaults: §6.1.1's isotropic case
  (d = 2, µ = [3, 3], Σ = diag(¼, ¼), T = 0.7).
- `quadratic_aniso`: §6.1.1's anisotropic case, Σ = diag(1, ¼), T = 1.4.
- `quadratic_10d`: §6.1.2, Σ = diag(Σ_A, I₂, Σ_B, I₂, Σ_C), µ = (1, 1, 0, 0, 1, 2, 0, 0, 2, 3). The printed exact
  solution for block A is wrong (see the papers' README): Σ_A⁻¹ has eigenvalue 4 along (1, 1), so
  µ1 = µ2 = 1 − e^{−4t} and Σ_A(t) = Σ_A + (3/8)e^{−8t} 𝟙𝟙ᵀ; this family computes it from the closed form.
- `styblinski_tang`: V = (3/50)Σ(x_i⁴ − 16x_i² + 5x_i) (§6.2.1, d = 30, T = 3). Separable, so every marginal solves
  the 1-D problem `styblinski_tang(d=1)`, whose SDE is dX = −V′(X)dt + √(2β)dW (eq. 113 prints +V′; wrong).
- `rosenbrock`: V = (3/50)Σ_{i<d}[10(x_{i+1} − x_i²)² + (x_i − 1)²] (§6.2.2, d = 10, T = 1); no closed form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy.linalg import block_diag

from pinnflow.distributions import normal_log_prob
from pinnflow.fokker_planck import FokkerPlanckProblem, check_beta, potential_problem
from problems.fokker_planck import register
from problems.fokker_planck.ou import ou

__all__ = ["quadratic", "quadratic_aniso", "quadratic_10d", "styblinski_tang", "rosenbrock", "SIGMA_10D", "MU_10D"]

SIGMA_10D = block_diag([[5 / 8, -3 / 8], [-3 / 8, 5 / 8]], np.eye(2), np.diag([1.0, 0.25]), np.eye(2),
                       np.diag([0.25, 0.25]))
MU_10D = np.array([1.0, 1.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 2.0, 3.0])


def _standard_normal(d: int):
    def log_rho0(x):
        return jnp.sum(normal_log_prob(x, 0.0, 1.0))

    def sample0(key, n):
        return jax.random.normal(key, (n, d))

    return log_rho0, sample0


@register
def quadratic(d: int = 2, mu: Sequence[float] | np.ndarray | None = None,
              Sigma: Sequence[Sequence[float]] | np.ndarray | None = None, beta: float = 1.0, T: float = 0.7,
              m0: Sequence[float] | np.ndarray | None = None, C0: Sequence[Sequence[float]] | np.ndarray | None = None,
              name: str = "quadratic") -> FokkerPlanckProblem:
    """V = ½(x − µ)ᵀΣ⁻¹(x − µ), ρ0 = N(m0, C0) (default N(0, I)); exact Gaussian solution at every t. Defaults
    (d = 2): µ = [3, 3], Σ = diag(¼, ¼), T = 0.7 (paper 004 §6.1.1); otherwise µ = 0, Σ = I."""
    if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1:
        raise ValueError(f"Fokker-Planck problem {name!r}: d must be a positive integer, got {d!r}")
    d = int(d)
    mu = np.asarray(mu if mu is not None else ([3.0, 3.0] if d == 2 else np.zeros(d)), dtype=np.float64)
    S = np.asarray(Sigma if Sigma is not None else (0.25 * np.eye(2) if d == 2 else np.eye(d)), dtype=np.float64)
    if mu.shape != (d,) or S.shape != (d, d):
        raise ValueError(f"Fokker-Planck problem {name!r}: mu must have shape ({d},) and Sigma ({d}, {d}), "
                         f"got {mu.shape} and {S.shape}")
    if not (np.all(np.isfinite(S)) and np.allclose(S, S.T)):
        raise ValueError(f"Fokker-Planck problem {name!r}: Sigma must be finite and symmetric")
    if np.linalg.eigvalsh(S).min() <= 0:
        raise ValueError(f"Fokker-Planck problem {name!r}: Sigma must be positive definite")
    beta = check_beta(name, beta)
    P = np.linalg.inv(S)
    P = 0.5 * (P + P.T)
    m0 = np.zeros(d) if m0 is None else np.asarray(m0, dtype=np.float64)
    C0 = np.eye(d) if C0 is None else np.asarray(C0, dtype=np.float64)
    base = ou(d, Gamma=P, b=mu, D=beta, m0=m0, C0=C0, T=T)

    def V(x: jax.Array) -> jax.Array:
        r = x - jnp.asarray(mu, x.dtype)
        return 0.5 * r @ (jnp.asarray(P, x.dtype) @ r)

    info = {**base.info, "mu": mu, "Sigma": S, "beta": beta, "paper": "004 §6.1 (V quadratic)"}
    return dataclasses.replace(base, name=name, potential=V, info=info)


@register
def quadratic_aniso(beta: float = 1.0, T: float = 1.4) -> FokkerPlanckProblem:
    """Paper 004 §6.1.1's anisotropic case: d = 2, µ = [3, 3], Σ = diag(1, ¼), T = 1.4;
    m(t) = (3(1 − e^{−t}), 3(1 − e^{−4t})), C(t) = diag(1, (1 + 3e^{−8t})/4) for β = 1."""
    return quadratic(2, mu=[3.0, 3.0], Sigma=np.diag([1.0, 0.25]), beta=beta, T=T, name="quadratic_aniso")


@register
def quadratic_10d(beta: float = 1.0, T: float = 0.7) -> FokkerPlanckProblem:
    """Paper 004 §6.1.2: d = 10, Σ = diag(Σ_A, I, Σ_B, I, Σ_C), µ = (1, 1, 0, 0, 1, 2, 0, 0, 2, 3), T = 0.7 (the
    paper also runs to T = 2); block A solved correctly (module docstring)."""
    return quadratic(10, mu=MU_10D, Sigma=SIGMA_10D, beta=beta, T=T, name="quadratic_10d")


def _styblinski_tang_1d(x):
    return 0.06 * (x**4 - 16.0 * x**2 + 5.0 * x)


@register
def styblinski_tang(d: int = 30, beta: float = 1.0, T: float = 3.0) -> FokkerPlanckProblem:
    """V = (3/50)Σ(x_i⁴ − 16x_i² + 5x_i), ρ0 = N(0, I) (paper 004 §6.2.1, d = 30, T = 3, β ∈ {10, 1, 0.1}). Each
    marginal solves this problem with d = 1 (dX = −V′dt + √(2β)dW)."""
    log_rho0, sample0 = _standard_normal(d)

    def V(x: jax.Array) -> jax.Array:
        return jnp.sum(_styblinski_tang_1d(x))

    return potential_problem("styblinski_tang", d, V, beta, T, log_rho0, sample0,
                             info={"beta": beta, "separable": True, "marginal_problem": {"d": 1, "beta": beta},
                                   "paper": "004 §6.2.1, §6.3 (reference SDE drift −V′, not +V′)"})


@register
def rosenbrock(d: int = 10, beta: float = 1.0, T: float = 1.0) -> FokkerPlanckProblem:
    """V = (3/50)Σ_{i<d}[10(x_{i+1} − x_i²)² + (x_i − 1)²], ρ0 = N(0, I) (paper 004 §6.2.2, d = 10, T = 1)."""
    if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 2:
        raise ValueError(f"Fokker-Planck problem 'rosenbrock': d must be an integer >= 2, got {d!r}")
    log_rho0, sample0 = _standard_normal(d)

    def V(x: jax.Array) -> jax.Array:
        return 0.06 * jnp.sum(10.0 * (x[1:] - x[:-1] ** 2) ** 2 + (x[:-1] - 1.0) ** 2)

    return potential_problem("rosenbrock", d, V, beta, T, log_rho0, sample0,
                             info={"beta": beta, "paper": "004 §6.2.2"})
