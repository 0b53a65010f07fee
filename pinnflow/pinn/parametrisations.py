"""Learned fields: networks by name, and the parametrisations of V, μ, Φ that the losses learn.

A *parametrisation* builds the learnable `nnx.Module` for a problem and turns it into `Fields`
(callables of one point): the log-density path V, the drift μ, the diffusion σ and the ODE drift with
the same marginals (μ itself, or the probability-flow drift of paper 003 eq. 66).

- `general` (log_fp, log_ce): learn μ, φ and a constant z; V is eq. (10).
- `anneal` (log_fp_anneal, log_ce_anneal): learn μ and z(t) (a small Fourier-MLP of t), φ = 0 (eq. 72).
- `score` (score): learn φ; V(x, t) = (t/T) log ρ(x) + (1 − t/T)(log p_prior(x) + φ(x, t)) (App. B.1:
  no z, and the prior is not enforced: V(·, T) is exact, V(·, 0) is left to the PDE, the prior being only
  its starting guess); μ = σσᵀ∇V − f with the VP drift f = −(σ²/2) x.
- `potential` (sb, ot): learn Φ, φ, z; μ = ∇Φ, V is eq. (10).

A *drift offset* (`DRIFT_OFFSETS`, config key `drift_offset`) adds a fixed field to the learned drift of the
`general`, `anneal` and `potential` parametrisations. `none` is the paper's μ = network. `langevin` is
μ = (σ²/2)∇V_ref + network with V_ref(x, t) = (t/T) log ρ(x) + (1 − t/T) log p_prior(x), the geometric path
(for `potential`: Φ = (σ²/2)V_ref + network, so μ = ∇Φ stays a gradient). The function class is unchanged
(any μ is an offset plus something); what changes is the probability-flow drift of eq. (66):
μ − (σ²/2)∇V = network − (σ²/2)(t/T)(1 − t/T)∇φ (z does not depend on x). The target's score, which grows
like |x|³ on many-well and which a network cancels only inside the collocation box, is no longer in it, so
probability-flow particles cannot run away. With σ = 0 the offset is zero. It is the choice of eq. (57)'s
setting (μ̃ = ½σσᵀ∇V + ∇φ, [69]) with the fixed reference path in place of the learned V.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from pinnflow.core.registry import Registry
from pinnflow.distributions import normal_log_prob
from pinnflow.dynamics.integrators import probability_flow
from pinnflow.nn.networks import FourierMLP
from pinnflow.nn.registry import NetworkConfig, network
from pinnflow.operators import GradientField
from pinnflow.target import Target

__all__ = [
    "PARAMETRISATIONS",
    "Fields",
    "Setup",
    "Learned",
    "GaussianPrior",
    "boundary_V",
    "DRIFT_OFFSETS",
    "reference_V",
]

ScalarField = Callable[[jax.Array, jax.Array], jax.Array]
VectorField = Callable[[jax.Array, jax.Array], jax.Array]

# ---- priors and the boundary-satisfying V -------------------------------------------------------------


@dataclass(frozen=True)
class GaussianPrior:
    """p_prior = N(0, std² I) (App. B.1)."""

    dim: int
    std: float = 1.0

    def log_prob(self, x: jax.Array) -> jax.Array:
        return normal_log_prob(x, 0.0, self.std**2)

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        return self.std * jax.random.normal(key, (n, self.dim))


def boundary_V(log_rho, log_prior, T: float, phi=None, z=None) -> ScalarField:
    """Eq. (10): V(x,t) = (t/T)(log ρ(x) − z(t)) + (1 − t/T) log p_prior(x) + (t/T)(1 − t/T) φ(x, t).

    `z` is a function of t (or None for 0), `phi` a scalar field (or None for 0, the annealed path)."""

    def V(x, t):
        s = t / T
        out = s * log_rho(x) + (1 - s) * log_prior(x)
        if z is not None:
            out = out - s * z(t)
        if phi is not None:
            out = out + s * (1 - s) * phi(x, t)
        return out

    return V


def reference_V(log_rho, log_prior, T: float) -> ScalarField:
    """The geometric path V_ref(x, t) = (t/T) log ρ(x) + (1 − t/T) log p_prior(x) (eq. 10 with φ = z = 0)."""
    return boundary_V(log_rho, log_prior, T)


# ---- drift offsets ------------------------------------------------------------------------------------

DRIFT_OFFSETS: Registry = Registry("drift offset")
"""name -> factory(setup) -> the scalar field U whose gradient is added to the learned drift (None: nothing)."""


@DRIFT_OFFSETS.register(name="none")
def _no_offset(s: Setup):
    """The paper's parametrisation: μ (or Φ) is the network."""
    return None


@DRIFT_OFFSETS.register(name="langevin")
def _langevin_offset(s: Setup):
    """U = (σ²/2) V_ref: μ = ∇U + network, an annealed-Langevin drift towards the geometric path."""
    if s.sigma == 0:
        return None
    V_ref = reference_V(s.target.log_density, s.prior.log_prob, s.T)
    c = 0.5 * s.sigma**2
    return lambda x, t: c * V_ref(x, t)


def _offset(s: Setup):
    return DRIFT_OFFSETS.factory(s.drift_offset)(s)


def _add_gradient(mu: VectorField, U) -> VectorField:
    if U is None:
        return mu
    gU = jax.grad(U)
    return lambda x, t: mu(x, t) + gU(x, t)


def _add_scalar(Phi: ScalarField, U) -> ScalarField:
    if U is None:
        return Phi
    return lambda x, t: Phi(x, t) + U(x, t)


# ---- fields and parametrisations ----------------------------------------------------------------------


class Fields(NamedTuple):
    """Callables of one point (x: (d,), t) making up a learned transport."""

    V: ScalarField  # log-density of X_t
    drift: VectorField  # μ of dX = μ dt + σ dW
    sigma: float  # σ (scalar diffusion coefficient)
    flow: VectorField  # ODE drift with the marginals of X (μ, or eq. 66 when σ > 0)
    Phi: ScalarField | None = None  # potential with μ = ∇Φ (sb, ot)
    f: VectorField | None = None  # reference drift of the time-reversed process (score)
    log_z: Callable[[jax.Array], jax.Array] | None = None  # learned normaliser z(t)


@dataclass(frozen=True)
class Setup:
    """The resolved problem a parametrisation needs: target, prior, horizon, diffusion, network config."""

    target: Target
    prior: GaussianPrior
    T: float
    sigma: float
    network: NetworkConfig
    z_init: float = 0.0  # initial value of the constant z of eq. (10)
    drift_offset: str = "none"  # a name in DRIFT_OFFSETS


class Learned(nnx.Module):
    """Container of the learned networks/parameters of one parametrisation (attributes by name)."""

    def __init__(self, **parts):
        for name, part in parts.items():
            setattr(self, name, part)


class ScalarParam(nnx.Module):
    """A learnable constant, callable as a function of t (the constant z of eq. 10)."""

    def __init__(self, value: float = 0.0):
        self.value = nnx.Param(jnp.asarray(value, dtype=jnp.result_type(float)))

    def __call__(self, t):
        del t
        return self.value[...]


@dataclass(frozen=True)
class Parametrisation:
    """How a loss's unknowns are parametrised: `init(setup, rngs) -> Learned`, `fields(model, setup)`."""

    name: str
    init: Callable[[Setup, nnx.Rngs], Learned]
    fields: Callable[[Learned, Setup], Fields]


PARAMETRISATIONS: Registry[Parametrisation] = Registry("parametrisation")


def _flow(drift: VectorField, V: ScalarField, sigma: float) -> VectorField:
    """The ODE drift with the marginals of X: μ itself for σ = 0, else the probability flow (eq. 66)."""
    return drift if sigma == 0 else probability_flow(drift, jax.grad(V), sigma)


class Normalised(nnx.Module):
    """net(x / scale, t) · out_scale: inputs rescaled to O(1) on the collocation box (`scale` per
    coordinate); a vector output (a drift) is scaled back by the same factors."""

    def __init__(self, net: nnx.Module, scale: tuple[float, ...], vector_output: bool):
        self.net, self.scale, self.vector_output = net, tuple(float(v) for v in scale), vector_output

    def __call__(self, x, t):
        s = jnp.asarray(self.scale, dtype=x.dtype)
        y = self.net(x / s, t)
        return y * s if self.vector_output else y


def _net(s: Setup, rngs, d_out, scalar, kind=None):
    net = network(kind or s.network.kind, s.target.dim, d_out, s.network, s.T, rngs, scalar)
    if not s.network.normalize:
        return net
    lo, hi = s.target.domain
    scale = np.maximum(np.maximum(np.abs(lo), np.abs(hi)), s.prior.std)
    return Normalised(net, tuple(scale), vector_output=not scalar)


def _general_init(s: Setup, rngs):
    return Learned(mu=_net(s, rngs, s.target.dim, False), phi=_net(s, rngs, 1, True), z=ScalarParam(s.z_init))


def _general_fields(m: Learned, s: Setup) -> Fields:
    V = boundary_V(s.target.log_density, s.prior.log_prob, s.T, phi=m.phi, z=m.z)
    mu = _add_gradient(m.mu, _offset(s))
    return Fields(V=V, drift=mu, sigma=s.sigma, flow=_flow(mu, V, s.sigma), log_z=m.z)


def _anneal_init(s: Setup, rngs):
    zc = NetworkConfig(width=s.network.z_width, depth=2, activation=s.network.activation,
                       num_freq=s.network.num_freq)
    z = FourierMLP(0, 1, width=zc.width, depth=zc.depth, activation=zc.activation, num_freq=zc.num_freq,
                   t_max=s.T, scalar_output=True, rngs=rngs)
    return Learned(mu=_net(s, rngs, s.target.dim, False), z=z)


def _anneal_fields(m: Learned, s: Setup) -> Fields:
    z = lambda t: m.z(None, t)  # noqa: E731
    V = boundary_V(s.target.log_density, s.prior.log_prob, s.T, phi=None, z=z)
    mu = _add_gradient(m.mu, _offset(s))
    return Fields(V=V, drift=mu, sigma=s.sigma, flow=_flow(mu, V, s.sigma), log_z=z)


def _score_init(s: Setup, rngs):
    return Learned(phi=_net(s, rngs, 1, True))


def _score_fields(m: Learned, s: Setup) -> Fields:
    log_rho, log_prior, T, sig = s.target.log_density, s.prior.log_prob, s.T, s.sigma

    def V(x, t):
        return (t / T) * log_rho(x) + (1 - t / T) * (log_prior(x) + m.phi(x, t))

    def f(x, t):  # VP reference drift, App. B.1
        del t
        return -0.5 * sig**2 * x

    def drift(x, t):
        return sig**2 * jax.grad(V)(x, t) - f(x, t)

    return Fields(V=V, drift=drift, sigma=sig, flow=_flow(drift, V, sig), f=f)


def _potential_init(s: Setup, rngs):
    return Learned(Phi=_net(s, rngs, 1, True, kind=s.network.potential_kind), phi=_net(s, rngs, 1, True),
                   z=ScalarParam(s.z_init))


def _potential_fields(m: Learned, s: Setup) -> Fields:
    V = boundary_V(s.target.log_density, s.prior.log_prob, s.T, phi=m.phi, z=m.z)
    Phi = _add_scalar(m.Phi, _offset(s))
    drift = GradientField(Phi)  # div μ = ΔΦ by the backend's Laplacian
    return Fields(V=V, drift=drift, sigma=s.sigma, flow=_flow(drift, V, s.sigma), Phi=Phi, log_z=m.z)


for _p in (
    Parametrisation("general", _general_init, _general_fields),
    Parametrisation("anneal", _anneal_init, _anneal_fields),
    Parametrisation("score", _score_init, _score_fields),
    Parametrisation("potential", _potential_init, _potential_fields),
):
    PARAMETRISATIONS.register(lambda p=_p: p, name=_p.name)
