"""The Ornstein–Uhlenbeck problem dX = −Γ(X − b) dt + √(2D) dW, X_0 ~ N(m0, C0) (paper 000 App. C, eq. C.1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

import jax
import jax.numpy as jnp
import numpy as np

from pinnflow.fokker_planck import FokkerPlanckProblem
from problems.fokker_planck import register
from problems.fokker_planck.gaussian_solution import (
    LinearFlow,
    gaussian_entropy,
    gaussian_log_density,
    gaussian_score,
)

__all__ = ["ou", "default_parameters"]

# d = 2 defaults: Γ non-symmetric, symmetric part positive definite (so Re λ(Γ) > 0: eigenvalues 0.75 ± 0.56i,
# a stable spiral), D anisotropic with a correlation, ρ0 off-centre and correlated.
GAMMA_2 = np.array([[1.0, 0.8], [-0.4, 0.5]])
D_2 = np.array([[0.5, 0.1], [0.1, 0.2]])
B_2 = np.array([1.0, -0.5])
M0_2 = np.array([-1.0, 1.0])
C0_2 = np.array([[0.5, 0.1], [0.1, 0.3]])


def default_parameters(d: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Γ, b, D, m0, C0 used when not given. d = 2: the constants above. Otherwise drawn with
    `numpy.random.default_rng(seed)`: Γ = S + K with S = GGᵀ/d + ½I (SPD, eigenvalues ≥ ½) and K a skew matrix
    of size ~½ (so Γ is non-symmetric and Re λ(Γ) ≥ ½); D = ½(HHᵀ/d + 0.2 I) (anisotropic, full rank);
    b, m0 ~ N(0, I); C0 = PPᵀ/d + 0.3 I."""
    if d == 2:
        return {"Gamma": GAMMA_2, "b": B_2, "D": D_2, "m0": M0_2, "C0": C0_2}
    rng = np.random.default_rng(seed)
    G = rng.normal(size=(d, d))
    S = G @ G.T / d + 0.5 * np.eye(d)
    K = rng.normal(size=(d, d))
    K = 0.25 * (K - K.T)
    H = rng.normal(size=(d, d))
    P = rng.normal(size=(d, d))
    return {
        "Gamma": S + K,
        "b": rng.normal(size=d),
        "D": 0.5 * (H @ H.T / d + 0.2 * np.eye(d)),
        "m0": rng.normal(size=d),
        "C0": P @ P.T / d + 0.3 * np.eye(d),
    }


@register
def ou(
    d: int = 2,
    Gamma: Sequence[Sequence[float]] | np.ndarray | None = None,
    b: Sequence[float] | np.ndarray | None = None,
    D: float | Sequence[Sequence[float]] | np.ndarray | None = None,
    m0: Sequence[float] | np.ndarray | None = None,
    C0: Sequence[Sequence[float]] | np.ndarray | None = None,
    T: float = 1.0,
    seed: int = 0,
) -> FokkerPlanckProblem:
    """dX = −Γ(X − b) dt + √(2D) dW (∂_tρ = ∇·(Γ(x − b)ρ) + ∇·(D∇ρ)), ρ0 = N(m0, C0); exact at every t.

    Γ (d, d) need not be symmetric; D is a scalar or a symmetric PSD (d, d) matrix (rank-deficient allowed,
    as long as C_t stays positive definite, e.g. C0 ≻ 0); C0 must be SPD. Anything not given comes from
    `default_parameters(d, seed)`. Exact solution (paper 000 eq. C.3): m_t = b + e^{−Γt}(m0 − b),
    C_t = e^{−Γt} C0 e^{−Γᵀt} + ∫_0^t e^{−Γs} 2D e^{−Γᵀs} ds, both from one matrix exponential of a 2d × 2d
    block matrix (Van Loan), with exact doublings so that no block grows (`LinearFlow`).
    """
    name = "ou"

    def fail(msg: str) -> NoReturn:
        raise ValueError(f"Fokker-Planck problem {name!r}: {msg}")

    if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1:
        fail(f"d must be a positive integer, got {d!r}")
    d = int(d)
    given = {"Gamma": Gamma, "b": b, "D": D, "m0": m0, "C0": C0}
    defaults = default_parameters(d, seed) if any(v is None for v in given.values()) else {}
    p = {k: np.asarray(defaults[k] if v is None else v, dtype=np.float64) for k, v in given.items()}
    for k, shape in (("Gamma", (d, d)), ("b", (d,)), ("m0", (d,)), ("C0", (d, d))):
        if p[k].shape != shape:
            fail(f"{k} has shape {p[k].shape}, expected {shape} for d = {d}")
    if p["D"].shape not in ((), (d, d)):
        fail(f"D must be a scalar or a ({d}, {d}) matrix, got shape {p['D'].shape}")
    for k, v in p.items():
        if not np.all(np.isfinite(v)):
            fail(f"{k} must be finite")
    C0m = p["C0"]
    if not np.allclose(C0m, C0m.T, rtol=1e-10, atol=1e-12):
        fail("C0 must be symmetric")
    try:
        chol0 = np.linalg.cholesky(C0m)
    except np.linalg.LinAlgError:
        fail("C0 must be positive definite")
    Gm, bv, m0v = p["Gamma"], p["b"], p["m0"]
    Dm = p["D"] * np.eye(d) if p["D"].ndim == 0 else p["D"]
    flow = LinearFlow(-Gm, 2.0 * Dm, T)  # ṁ = −Γm + Γb, Ċ = −ΓC − CΓᵀ + 2D

    def drift(x: jax.Array, t) -> jax.Array:
        del t
        return -jnp.asarray(Gm, x.dtype) @ (x - jnp.asarray(bv, x.dtype))

    def moments(t):
        Phi, W = flow(t)
        dt = Phi.dtype
        m = jnp.asarray(bv, dt) + Phi @ jnp.asarray(m0v - bv, dt)
        C = Phi @ jnp.asarray(C0m, dt) @ Phi.T + W
        return m, 0.5 * (C + C.T)

    def mean(t):
        return moments(t)[0]

    def cov(t):
        return moments(t)[1]

    def log_rho(x, t):
        m, C = moments(t)
        return gaussian_log_density(x, m.astype(x.dtype), C.astype(x.dtype))

    def score(x, t):
        m, C = moments(t)
        return gaussian_score(x, m.astype(x.dtype), C.astype(x.dtype))

    def entropy(t):
        return gaussian_entropy(cov(t))

    def log_rho0(x):
        return gaussian_log_density(x, jnp.asarray(m0v, x.dtype), jnp.asarray(C0m, x.dtype))

    def score0(x):
        return gaussian_score(x, jnp.asarray(m0v, x.dtype), jnp.asarray(C0m, x.dtype))

    def sample0(key, n):
        z = jax.random.normal(key, (n, d))
        return jnp.asarray(m0v, z.dtype) + z @ jnp.asarray(chol0, z.dtype).T

    return FokkerPlanckProblem(
        name=name, dim=d, drift=drift, D=p["D"] if p["D"].ndim == 0 else Dm, T=T,
        log_rho0=log_rho0, score0=score0, sample0=sample0,
        mean=mean, cov=cov, log_rho=log_rho, score=score, entropy=entropy,
        info={"Gamma": Gm, "b": bv, "D": Dm, "m0": m0v, "C0": C0m, "seed": seed,
              "paper": "000 App. C (eqs. C.1-C.4)", "exact": "Van Loan matrix exponential with exact doublings"},
    )
