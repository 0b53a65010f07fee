"""An active swimmer in a quartic trap: (x, v) with noise on v only (paper 000 §3.2, eqs. 23-24, App. D.3)."""

from __future__ import annotations

import math
from typing import NoReturn

import jax
import jax.numpy as jnp
import numpy as np

from pinnflow.fokker_planck import FokkerPlanckProblem
from problems.fokker_planck import register

__all__ = ["active_swimmer"]


@register
def active_swimmer(gamma: float = 0.1, D: float = 1.0, T: float = 6.0, var0: float = 1.0) -> FokkerPlanckProblem:
    """dx = (−x³ + v) dt, dv = −γ v dt + √(2γD) dW; state (x, v), d = 2.

    The diffusion tensor is degenerate: D_FP = [[0, 0], [0, γD]] (paper 000 eq. 1 convention, dX = b dt +
    √(2 D_FP) dW), so only the v-component of the score enters the probability flow. ρ0 = N(0, var0·I)
    (App. D.3.1: σ0 = 1). T = 6 (the paper's last snapshot, Fig. D.5; it does not state T).

    Exactly known: v is an autonomous OU process, so its marginal is N(0, D + (var0 − D) e^{−2γt}) — N(0, 1)
    at every t for the defaults (`info['marginal_v'](t) -> (mean, var)`); the drift is odd and ρ0 even, so
    ρ_t(x, v) = ρ_t(−x, −v) and the mean is exactly 0 (`mean`). The joint density, covariance and entropy are
    not known in closed form; the stationary state carries a nonzero probability current.
    """
    name = "active_swimmer"

    def fail(msg: str) -> NoReturn:
        raise ValueError(f"Fokker-Planck problem {name!r}: {msg}")

    for nm, v in (("gamma", gamma), ("D", D), ("var0", var0)):
        if not np.isfinite(v):
            fail(f"{nm} must be finite, got {v!r}")
    if var0 <= 0:
        fail(f"var0 must be > 0, got {var0!r}")
    gamma, D, var0 = float(gamma), float(D), float(var0)
    D_fp = np.array([[0.0, 0.0], [0.0, gamma * D]])

    def drift(z, t):
        del t
        x, v = z[0], z[1]
        return jnp.stack([-(x**3) + v, -gamma * v])

    def mean(t):
        t = jnp.asarray(t, dtype=jnp.result_type(t, float))
        return jnp.zeros(2, t.dtype)

    def marginal_v(t):
        t = jnp.asarray(t, dtype=jnp.result_type(t, float))
        return jnp.zeros((), t.dtype), D + (var0 - D) * jnp.exp(-2.0 * gamma * t)

    log_norm0 = -math.log(2.0 * math.pi * var0)

    def log_rho0(z):
        return -0.5 * jnp.sum(z**2) / var0 + log_norm0

    def score0(z):
        return -z / var0

    def sample0(key, n):
        return math.sqrt(var0) * jax.random.normal(key, (n, 2))

    return FokkerPlanckProblem(
        name=name, dim=2, drift=drift, D=D_fp, T=T,
        log_rho0=log_rho0, score0=score0, sample0=sample0, mean=mean,
        info={
            "gamma": gamma, "D": D, "var0": var0, "coordinates": ("x", "v"), "noisy_coordinates": (1,),
            "marginal_v": marginal_v,
            "paper": "000 §3.2 (eqs. 23-24), App. D.3",
            "exact": "mean = 0 and the v-marginal N(0, D + (var0 - D) exp(-2 gamma t)) only",
        },
    )
