"""Forward SDEs dx = f(x, t) dt + g(t) dW of score-based diffusion models, with their Gaussian perturbation
kernels p(x_t | x_0) = N(α(t) x_0, σ(t)² I) and the prior the samplers start from (paper 002 §2).

Registered in `SDES` (`SDES.get(name, **params)`):

- `ou`: f = −θx, g = s (paper 002 §4: θ = 1, s = 1, T = 10). α = e^{−θt}, σ² = s²(1 − e^{−2θt})/(2θ); the
  stationary law and prior are N(0, s²/(2θ) I) — N(0, ½I) for the paper's SDE, not N(0, I).
- `vp` (Song et al. 2021): f = −½β(t)x, g = √β(t), β linear from β_min to β_max over [0, T].
  α = exp(−½∫₀ᵗβ), σ² = 1 − α²; prior N(0, I).
- `ve` (Song et al. 2021): f = 0, g = σ_min r^{t/T} √(2 log r / T) with r = σ_max/σ_min, so that
  σ(t)² = σ_min²(r^{2t/T} − 1) is the variance added since t = 0; α = 1; prior N(0, σ_max² I).

Each is a `ForwardSDE` of pure functions of one point (`drift(x, t)`, `g(t)`, `alpha(t)`, `sigma(t)`), so the
log-Fokker–Planck residual (`pinnflow.pde.log_fp` with μ = f, σ = g) and the samplers take them as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from pinnflow.core.config import ConfigError
from pinnflow.core.registry import Registry

__all__ = ["ForwardSDE", "SDES", "ou", "vp", "ve"]


@dataclass(frozen=True, eq=False)
class ForwardSDE:
    """A forward SDE with a linear drift and a Gaussian kernel N(α(t)x₀, σ(t)²I); prior N(0, prior_std²I)."""

    name: str
    T: float
    drift: Callable[[jax.Array, jax.Array], jax.Array]  # f(x (d,), t) -> (d,)
    g: Callable[[jax.Array], jax.Array]  # g(t) -> ()
    alpha: Callable[[jax.Array], jax.Array]  # kernel mean factor α(t)
    sigma: Callable[[jax.Array], jax.Array]  # kernel standard deviation σ(t)
    prior_std: float
    params: dict

    def perturb(self, x0: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
        """x_t = α(t) x₀ + σ(t) ε for one point."""
        return self.alpha(t) * x0 + self.sigma(t) * eps

    def prior_sample(self, key: jax.Array, n: int, d: int, dtype=None) -> jax.Array:
        return self.prior_std * jax.random.normal(key, (n, d), dtype or jnp.result_type(float))

    def prior_log_prob(self, x: jax.Array) -> jax.Array:
        """log N(x; 0, prior_std² I) of one point."""
        d = x.shape[-1]
        return -0.5 * (x @ x) / self.prior_std**2 - 0.5 * d * jnp.log(2 * jnp.pi * self.prior_std**2)


SDES: Registry[ForwardSDE] = Registry("forward SDE")


def _positive(name: str, **values) -> None:
    for k, v in values.items():
        if not (isinstance(v, int | float) and v > 0):
            raise ConfigError(f"sde.params.{k}: the {name} SDE needs {k} > 0, got {v!r}")


@SDES.register(name="ou")
def ou(theta: float = 1.0, g: float = 1.0, T: float = 10.0) -> ForwardSDE:
    _positive("ou", theta=theta, g=g, T=T)
    return ForwardSDE(
        "ou", float(T),
        drift=lambda x, t: -theta * x,
        g=lambda t: g * jnp.ones_like(t),
        alpha=lambda t: jnp.exp(-theta * t),
        sigma=lambda t: g * jnp.sqrt(-jnp.expm1(-2 * theta * t) / (2 * theta)),
        prior_std=g / (2 * theta) ** 0.5,
        params={"theta": theta, "g": g, "T": T},
    )


@SDES.register(name="vp")
def vp(beta_min: float = 0.1, beta_max: float = 20.0, T: float = 1.0) -> ForwardSDE:
    _positive("vp", beta_min=beta_min, beta_max=beta_max, T=T)
    beta = lambda t: beta_min + (beta_max - beta_min) * t / T  # noqa: E731
    int_beta = lambda t: beta_min * t + 0.5 * (beta_max - beta_min) * t**2 / T  # noqa: E731
    return ForwardSDE(
        "vp", float(T),
        drift=lambda x, t: -0.5 * beta(t) * x,
        g=lambda t: jnp.sqrt(beta(t)),
        alpha=lambda t: jnp.exp(-0.5 * int_beta(t)),
        sigma=lambda t: jnp.sqrt(-jnp.expm1(-int_beta(t))),
        prior_std=1.0,
        params={"beta_min": beta_min, "beta_max": beta_max, "T": T},
    )


@SDES.register(name="ve")
def ve(sigma_min: float = 0.01, sigma_max: float = 10.0, T: float = 1.0) -> ForwardSDE:
    _positive("ve", sigma_min=sigma_min, sigma_max=sigma_max, T=T)
    if sigma_max <= sigma_min:
        raise ConfigError(f"sde.params: the ve SDE needs sigma_max > sigma_min, got {sigma_max} <= {sigma_min}")
    log_r = float(jnp.log(sigma_max / sigma_min))
    return ForwardSDE(
        "ve", float(T),
        drift=lambda x, t: jnp.zeros_like(x),
        g=lambda t: sigma_min * jnp.exp(log_r * t / T) * jnp.sqrt(2 * log_r / T),
        alpha=lambda t: jnp.ones_like(t),
        sigma=lambda t: sigma_min * jnp.sqrt(jnp.expm1(2 * log_r * t / T)),
        prior_std=float(sigma_max),
        params={"sigma_min": sigma_min, "sigma_max": sigma_max, "T": T},
    )
