"""Closed forms for Gaussian-mixture data under a forward SDE with kernel N(α(t)x₀, σ(t)²I): the perturbed law
p_t = Σ_k w_k N(α m_k, α² C_k + σ² I), its log-density u(x, t) (the exact solution of the log-Fokker–Planck
equation (16), so its residual vanishes) and score ∇u, and the minimum of the DSM objective for one Gaussian.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from pinnflow.diffusion.sdes import ForwardSDE

__all__ = ["mixture_log_density", "mixture_score", "gaussian_dsm_minimum"]


def mixture_log_density(mixture: dict, sde: ForwardSDE):
    """u(x, t) = log p_t(x) of one point for `mixture = {"weights", "means", "covs"}` (a data set's
    `info["mixture"]`)."""
    logw = jnp.log(jnp.asarray(mixture["weights"]))
    m, C = jnp.asarray(mixture["means"]), jnp.asarray(mixture["covs"])
    d = m.shape[1]

    def u(x, t):
        a, s = sde.alpha(t), sde.sigma(t)
        cov = a**2 * C.astype(x.dtype) + s**2 * jnp.eye(d, dtype=x.dtype)
        r = x - a * m.astype(x.dtype)
        L = jnp.linalg.cholesky(cov)
        z = jax.vmap(lambda Lk, rk: jax.scipy.linalg.solve_triangular(Lk, rk, lower=True))(L, r)
        logdet = 2 * jnp.sum(jnp.log(jnp.diagonal(L, axis1=1, axis2=2)), axis=1)
        return jax.nn.logsumexp(logw.astype(x.dtype) - 0.5 * jnp.sum(z * z, 1) - 0.5 * logdet
                                - 0.5 * d * jnp.log(2 * jnp.pi))

    return u


def mixture_score(mixture: dict, sde: ForwardSDE):
    """∇_x log p_t(x) of one point."""
    return jax.grad(mixture_log_density(mixture, sde))


def gaussian_dsm_minimum(c: float, d: int, sde: ForwardSDE, weighting, t_lo: float, t_hi: float,
                         nodes: int = 4001) -> float:
    """min_s L_DSM for data N(m, c I) with t ~ U(t_lo, t_hi): E_t λ(t) d(1/σ² − 1/(α²c + σ²)) (the DSM value at
    the true score: E‖ε/σ‖² − E‖∇log p_t‖²), by the trapezoidal rule in t."""
    t = np.linspace(t_lo, t_hi, nodes)
    a, s = np.asarray(sde.alpha(jnp.asarray(t))), np.asarray(sde.sigma(jnp.asarray(t)))
    lam = np.asarray(weighting(sde, jnp.asarray(t)))
    f = lam * d * (1 / s**2 - 1 / (a**2 * c + s**2))
    return float(np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(t)) / (t_hi - t_lo))
