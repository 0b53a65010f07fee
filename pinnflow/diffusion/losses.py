"""The terms of paper 002's loss L(θ, w_R) = L_DSM(θ, ∇φ_θ, λ) + w_R R̃(θ, φ_θ, 0), at one point, and the
registries they are chosen from (each name lists the choices when unknown):

- `PARAMETRISATIONS`: `potential` (a scalar network φ(x, t), score ∇φ, conservative by construction; §2.3)
  or `score` (a vector network s(x, t), the usual choice; its curl need not vanish, Fig. 1).
- `BASES`: a fixed function added to the potential, φ = network + base: `none` (the paper's), or `gaussian`,
  the log-density of the data's Gaussian approximation N(m, c I) carried by the forward SDE,
  log N(x; α(t) m, (α(t)² c + σ(t)²) I), with m and c (the mean per-coordinate variance) from a fixed draw of
  the data. It solves the log-FP equation exactly (zero residual), so an untrained network already samples the
  Gaussian approximation instead of letting the reverse flow expand (by up to e^T for the OU SDE), and the
  network learns only the correction.
- `WEIGHTINGS` λ(t): `likelihood` (g(t)², the paper's; = 1 for its OU SDE), `sigma2` (σ(t)²), `one`.
- `TIME_SAMPLING` of t for DSM: `uniform` on [t_min, T] (the paper's text) or `beta12` (t_min + (T − t_min)·B,
  B ~ Beta(1, 2), which the authors' code uses; more weight near t = 0 where the data's detail is).
- `REGULARISERS` (squared residual at one collocation point): `log_fp`, eq. (20)'s integrand
  ∂_tφ + ∇·f + ∇φ·f − ½g²‖∇φ‖² − ½g²Δφ (pinnflow.pde.log_fp with μ = f, σ = g), for a potential; `score_fp`,
  ‖eq. (32)'s integrand‖² with the transposes as derived (pinnflow.pde.score_fp), for either parametrisation.

DSM (eq. 5) at one draw: λ(t)‖s(x_t, t) − ∇log p(x_t | x₀)‖² with x_t = α(t)x₀ + σ(t)ε, so
∇log p(x_t | x₀) = −ε/σ(t). Its minimum over s is reached by the true score; the excess over the minimum is
the score-matching loss (eq. 4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from pinnflow.core.registry import Registry
from pinnflow.diffusion.sdes import ForwardSDE
from pinnflow.operators import EXACT, Backend
from pinnflow.pde import log_fp, score_fp

__all__ = ["Parametrisation", "PARAMETRISATIONS", "BASES", "WEIGHTINGS", "TIME_SAMPLING", "REGULARISERS", "dsm_point",
           "Fields"]

Field = Callable[[jax.Array, jax.Array], jax.Array]


@dataclass(frozen=True)
class Fields:
    """The learned functions of one point: the potential φ(x, t) (None for a score network) and the score."""

    potential: Field | None
    score: Field


@dataclass(frozen=True)
class Parametrisation:
    """How a network of (x, t) gives the score: `scalar` output (a potential) or a d-vector."""

    name: str
    scalar: bool
    regularisers: tuple[str, ...]

    def fields(self, model, base: Field | None = None) -> Fields:
        """φ = network (+ base) and its score; a score network's output (+ ∇base)."""
        if self.scalar:
            phi = (lambda x, t: model(x, t)) if base is None else (lambda x, t: model(x, t) + base(x, t))
            return Fields(phi, lambda x, t: jax.grad(phi)(x, t))
        if base is None:
            return Fields(None, lambda x, t: model(x, t))
        return Fields(None, lambda x, t: model(x, t) + jax.grad(base)(x, t))


PARAMETRISATIONS: Registry[Parametrisation] = Registry("parametrisation")
PARAMETRISATIONS.register(lambda: Parametrisation("potential", True, ("log_fp", "score_fp")), name="potential")
PARAMETRISATIONS.register(lambda: Parametrisation("score", False, ("score_fp",)), name="score")

BASES: Registry[Callable] = Registry("base")
"""Bases of the potential by name; each entry is a factory `(sde, data (n, d) array) -> base(x, t) or None`."""


def _gaussian_base(sde: ForwardSDE, data: np.ndarray) -> Field:
    m, c = np.mean(data, axis=0), float(np.mean(np.var(data, axis=0)))
    d = m.size

    def base(x, t):
        a = sde.alpha(t)
        v = a**2 * c + sde.sigma(t) ** 2
        r = x - a * jnp.asarray(m, x.dtype)
        return -0.5 * (r @ r) / v - 0.5 * d * jnp.log(2 * jnp.pi * v)

    return base


BASES.register(lambda sde, data: None, name="none")
BASES.register(_gaussian_base, name="gaussian")

WEIGHTINGS: Registry[Callable[[ForwardSDE, jax.Array], jax.Array]] = Registry("weighting")
"""λ(t) by name; each entry is a zero-argument factory returning `(sde, t) -> λ(t)`."""
WEIGHTINGS.register(lambda: lambda sde, t: sde.g(t) ** 2, name="likelihood")
WEIGHTINGS.register(lambda: lambda sde, t: sde.sigma(t) ** 2, name="sigma2")
WEIGHTINGS.register(lambda: lambda sde, t: jnp.ones_like(t), name="one")

TIME_SAMPLING: Registry[Callable[[jax.Array, int, float, float], jax.Array]] = Registry("time sampling")
"""t for DSM by name; each entry is a zero-argument factory returning `(key, n, t_min, T) -> (n,)`."""
TIME_SAMPLING.register(lambda: lambda key, n, t_min, T: jax.random.uniform(key, (n,), minval=t_min, maxval=T),
                       name="uniform")
TIME_SAMPLING.register(lambda: lambda key, n, t_min, T: t_min + (T - t_min) * jax.random.beta(key, 1.0, 2.0, (n,)),
                       name="beta12")


def dsm_point(score: Field, sde: ForwardSDE, weighting, x0: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    """λ(t)‖s(x_t, t) + ε/σ(t)‖² at one draw (x₀, t, ε)."""
    s = score(sde.perturb(x0, t, eps), t)
    r = s + eps / sde.sigma(t)
    return weighting(sde, t) * (r @ r)


def _log_fp_sq(fields: Fields, sde: ForwardSDE, x, t, op: Backend = EXACT):
    r = log_fp(fields.potential, sde.drift, sde.g, x, t, op)
    return r * r


def _score_fp_sq(fields: Fields, sde: ForwardSDE, x, t, op: Backend = EXACT):
    r = score_fp(fields.score, sde.drift, sde.g, x, t, op)
    return r @ r


REGULARISERS: Registry[Callable] = Registry("regulariser")
"""Squared residuals by name; each entry is a zero-argument factory returning `(fields, sde, x, t, op) -> ()`."""
REGULARISERS.register(lambda: _log_fp_sq, name="log_fp")
REGULARISERS.register(lambda: _score_fp_sq, name="score_fp")
