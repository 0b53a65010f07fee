"""Time steps of the particles along the probability flow, and the quadrature of what rides along
(paper 000 Algorithm 1 line 5 with v = b − D s, eq. 5; eqs. 7, 16, 17).

Over one step t → t + Δt the particles follow dX/dt = v(X) with the score s_t learned at the step's start
(the drift and D are evaluated at each stage's time). What rides along — d log ρ/dt = −∇·v(X) (eq. 7) and
the entropy integrands E[∇·v], E[s·v] (eqs. 16, 17) — does not feed back into X, so it is integrated after
the score has been re-learned at t + Δt, from the flow values at both ends, each with its own score:
∫_t^{t+Δt} f ≈ Δt((1 − w) f(X_t; s_t) + w f(X_{t+Δt}; s_{t+Δt})) with the scheme's end weight w.

- `euler`: X' = X + Δt v(X, t); w = 0 (Algorithm 1). First order.
- `heun`: predictor X̃ = X + Δt v(X, t), X' = X + Δt/2 (v(X, t) + v(X̃, t + Δt)) with the same score at X̃
  (the score at t + Δt is not learned yet; the exact score, `score="exact"`, is evaluated at t + Δt);
  w = ½ (trapezoid). Second order for a time-independent score; with a learned score the positions carry
  an O(Δt) error from the frozen score over the step, while the trapezoid with the re-learned end score keeps
  the quadrature of log ρ and of the entropy integrands second order.

Chosen by `time.integrator`, a name in `INTEGRATORS` (`INTEGRATORS.get(name)` is the scheme).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import jax
import jax.numpy as jnp

from pinnflow.core.config import Section, check_name, is_positive, need
from pinnflow.core.registry import Registry
from pinnflow.sbtm.flow import Flow, FlowValues

__all__ = ["TimeConfig", "INTEGRATORS", "Scheme", "Euler", "Heun", "Carried", "carried"]


class Scheme(Protocol):
    """A particle step: `move` gives X_{t+Δt} from X_t and the flow values f0 there; `end_weight` is the
    weight of the step's end in the quadrature of the carried quantities (`carried`)."""

    end_weight: float

    def move(self, flow: Flow, X: jax.Array, f0: FlowValues, t: jax.Array, dt: jax.Array,
             key: jax.Array) -> jax.Array: ...


INTEGRATORS: Registry[Scheme] = Registry("integrator")
"""Particle steps by name: `INTEGRATORS.get(name)` is the scheme."""


@dataclass
class TimeConfig(Section):
    """Time stepping: `dt` (paper 000 App. D: 1e-3), `integrator` (Algorithm 1: forward Euler), and the
    horizon `T` (null: the problem's T). T/dt must be an integer number of steps."""

    dt: float = 1e-3
    integrator: str = "euler"
    T: float | None = None

    def validate(self, where: str = "time.") -> None:
        need(is_positive(self.dt), f"{where}dt", f"must be > 0, got {self.dt!r}")
        check_name(INTEGRATORS, self.integrator, f"{where}integrator")
        need(self.T is None or is_positive(self.T), f"{where}T", f"must be > 0 or null, got {self.T!r}")


@INTEGRATORS.register(name="euler")
@dataclass(frozen=True)
class Euler:
    """Forward Euler, X' = X + Δt v(X, t) (paper 000 Algorithm 1, with v = b − D s); left-point quadrature."""

    end_weight: float = 0.0

    def move(self, flow, X, f0, t, dt, key):
        del flow, t, key
        return X + dt * f0.v


@INTEGRATORS.register(name="heun")
@dataclass(frozen=True)
class Heun:
    """Heun (explicit trapezoid): v re-evaluated at the predicted point with the same score; trapezoid
    quadrature."""

    end_weight: float = 0.5

    def move(self, flow, X, f0, t, dt, key):
        f_pred = flow(X + dt * f0.v, t + dt, key)
        return X + 0.5 * dt * (f0.v + f_pred.v)


class Carried(NamedTuple):
    """Over one step: the change of log ρ along each trajectory (n,), ∫E[∇·v] dt and ∫E[s·v] dt."""

    d_log_rho: jax.Array
    int_div: jax.Array
    int_sv: jax.Array


def carried(f0: FlowValues, f1: FlowValues, dt: jax.Array, end_weight: float) -> Carried:
    """Quadrature of −∇·v (per particle), E[∇·v] and E[s·v] over a step from the flow values at its ends."""
    w0, w1 = 1.0 - end_weight, end_weight
    div = w0 * f0.div + w1 * f1.div
    sv = w0 * jnp.mean(f0.s_dot_v) + w1 * jnp.mean(f1.s_dot_v)
    return Carried(-dt * div, dt * jnp.mean(div), dt * sv)
