"""Time steppers of the parametric Fokker–Planck equation θ̇ = −G(θ)⁻¹∇_θH(θ) (paper 004 eq. 27), one time step h
per call of a pure `step(state, aux) -> (state, info)` for the shared run loop (`SCHEMES`):

- `semi_implicit` (Algorithm 1, eq. 45 with Remarks 7, 9): θ_{k+1} = argmin_θ max_φ ..., solved by M_out outer
  steps; before each, M_in inner steps fit ∇ψ_λ to the rescaled displacement on samples of ρ_θk,

      min_λ E_{X∼p} |∇ψ_λ(T_θk X) − (T_θ X − T_θk X)/ε|²                      (eq. 66),

  then one step on the surrogate with ψ frozen,

      J̃(θ) = E_{X∼p} 2∇ψ_λ(T_θk X)·T_θ X + (2h/ε)[V(T_θ X) + β log ρ_θ(T_θ X)]   (eq. 67, with the factor β).

  The same draw X enters T_θ and T_θk (common random numbers: the displacement is a difference of two maps at
  the same point, not of two samples); every inner and outer step draws a fresh batch (Algorithm 1, lines 6, 9).
- `flat`: the parameter gradient flow θ̇ = −∇_θH by M_out explicit Euler substeps of h/M_out (the paper's
  Fig. 16 contrast: no Wasserstein metric).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from pinnflow.core.registry import Registry
from pinnflow.wgf.psi import Psi
from pinnflow.wgf.pushforward import PushForward

__all__ = ["WGFState", "Scheme", "SCHEMES", "OPTIMIZERS", "INNER_SOLVERS", "standard_normal"]

Params = Any
Draw = Callable[[jax.Array, int], jax.Array]  # (key, n) -> (n, d) reference samples


class WGFState(NamedTuple):
    """θ (flow), λ (ψ), the outer and inner optimiser states, the RNG key and the physical time t."""

    theta: Params
    lam: Params
    opt_out: Any
    opt_in: Any
    key: jax.Array
    t: jax.Array


OPTIMIZERS: Registry[optax.GradientTransformation] = Registry("optimizer")
OPTIMIZERS.register(lambda lr: optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8), name="adam")
OPTIMIZERS.register(lambda lr: optax.sgd(lr), name="sgd")

INNER_SOLVERS: Registry[Any] = Registry("inner solver")
for _name in OPTIMIZERS.names():
    INNER_SOLVERS.register(OPTIMIZERS.factory(_name), name=_name)
INNER_SOLVERS.register(lambda lr: optax.identity(), name="lstsq")


def standard_normal(d: int) -> Draw:
    """X ∼ p = N(0, I_d) in batches."""
    def draw(key: jax.Array, n: int) -> jax.Array:
        return jax.random.normal(key, (n, d))

    return draw


@dataclass(frozen=True)
class Scheme:
    """One time stepper on a push-forward model, a potential V and β. `kind` in `SCHEMES`; `draw` gives the
    reference batches (tests pass a fixed, whitened batch)."""

    model: PushForward
    psi: Psi
    V: Callable[[jax.Array], jax.Array]
    beta: float
    h: float
    m_out: int
    m_in: int
    batch: int
    eps: float
    outer: optax.GradientTransformation
    inner: optax.GradientTransformation
    inner_solver: str
    kind: str
    warm_start: bool
    draw: Draw
    outer_decay: float = 1.0

    def init(self, theta: Params, lam: Params, key: jax.Array, t: float = 0.0) -> WGFState:
        return WGFState(theta, lam, self.outer.init(theta), self.inner.init(lam), key, jnp.asarray(t))

    # ------------------------------------------------------------------------------------------ pieces
    def grad_psi(self, lam: Params, y: jax.Array) -> jax.Array:
        """∇ψ_λ over a batch y (n, d)."""
        return jax.vmap(jax.grad(self.psi.apply, argnums=1), in_axes=(None, 0))(lam, y)

    def displacement(self, theta: Params, theta0: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(T_θk z, (T_θ z − T_θk z)/ε) at the same reference points z (common random numbers)."""
        y0 = self.model.push(theta0, z)[0]
        return y0, (self.model.push(theta, z)[0] - y0) / self.eps

    def inner_loss(self, lam: Params, y0: jax.Array, target: jax.Array) -> jax.Array:
        """Eq. (66): mean |∇ψ_λ(T_θk X) − (T_θ X − T_θk X)/ε|²."""
        return jnp.mean(jnp.sum((self.grad_psi(lam, y0) - target) ** 2, axis=-1))

    def surrogate(self, theta: Params, g_psi: jax.Array, z: jax.Array) -> jax.Array:
        """Eq. (67): mean of 2∇ψ(T_θk X)·T_θ X + (2h/ε)[V(T_θ X) + β log ρ_θ(T_θ X)], ψ frozen."""
        y, log_rho = self.model.push(theta, z)
        energy = jax.vmap(self.V)(y) + self.beta * log_rho
        return jnp.mean(2.0 * jnp.sum(g_psi * y, axis=-1) + (2.0 * self.h / self.eps) * energy)

    def fit_psi(self, lam, opt_in, theta, theta0, key):
        """The inner loop: M_in optimiser steps on eq. (66), a fresh batch each; or the exact least-squares
        solution on one batch of `batch` points when ψ is linear in λ (`lstsq`). Returns (λ, state, loss)."""
        if self.inner_solver == "lstsq":
            y0, target = self.displacement(theta, theta0, self.draw(key, self.batch))
            flat, unravel = ravel_pytree(lam)
            def features(v):
                return self.grad_psi(unravel(v), y0).reshape(-1)
            A = jax.jacfwd(features)(jnp.zeros_like(flat))  # exact: ∇ψ is linear in λ
            sol = jnp.linalg.lstsq(A, target.reshape(-1))[0]
            lam = unravel(sol)
            return lam, opt_in, self.inner_loss(lam, y0, target)

        def one(c, k):
            lam, opt_in = c
            y0, target = self.displacement(theta, theta0, self.draw(k, self.batch))
            loss, g = jax.value_and_grad(self.inner_loss)(lam, y0, target)
            upd, opt_in = self.inner.update(g, opt_in, lam)
            return (optax.apply_updates(lam, upd), opt_in), loss

        (lam, opt_in), losses = jax.lax.scan(one, (lam, opt_in), jax.random.split(key, self.m_in))
        return lam, opt_in, losses[-1]

    # ------------------------------------------------------------------------------------------ steps
    def step(self, state: WGFState, aux=None) -> tuple[WGFState, dict]:
        """One time step θ_k → θ_{k+1} of size h."""
        del aux
        return SCHEMES.factory(self.kind)(self, state)


SCHEMES: Registry[Callable[[Scheme, WGFState], tuple[WGFState, dict]]] = Registry("scheme")


@SCHEMES.register(name="semi_implicit")
def _semi_implicit(s: Scheme, state: WGFState) -> tuple[WGFState, dict]:
    theta0 = state.theta
    key, k_steps = jax.random.split(state.key)
    lam, opt_out, opt_in = state.lam, state.opt_out, state.opt_in
    if not s.warm_start:
        opt_out, opt_in = s.outer.init(theta0), s.inner.init(lam)

    # outer step j is scaled by outer_decay^(j / (M_out − 1)): 1 keeps the paper's constant rate
    scale = s.outer_decay ** (jnp.arange(s.m_out) / max(s.m_out - 1, 1))

    def outer(c, kj):
        k, factor = kj
        theta, lam, opt_out, opt_in = c
        k_in, k_out = jax.random.split(k)
        lam, opt_in, inner = s.fit_psi(lam, opt_in, theta, theta0, k_in)
        z = s.draw(k_out, s.batch)
        g_psi = jax.lax.stop_gradient(s.grad_psi(lam, s.model.push(theta0, z)[0]))
        loss, g = jax.value_and_grad(s.surrogate)(theta, g_psi, z)
        upd, opt_out = s.outer.update(g, opt_out, theta)
        upd = jax.tree.map(lambda u: factor.astype(u.dtype) * u, upd)
        return (optax.apply_updates(theta, upd), lam, opt_out, opt_in), (loss, inner)

    (theta, lam, opt_out, opt_in), (loss, inner) = jax.lax.scan(
        outer, (theta0, lam, opt_out, opt_in), (jax.random.split(k_steps, s.m_out), scale))
    new = WGFState(theta, lam, opt_out, opt_in, key, state.t + s.h)
    return new, {"loss": loss[-1], "inner_loss": inner[-1], "t": new.t}


@SCHEMES.register(name="flat")
def _flat(s: Scheme, state: WGFState) -> tuple[WGFState, dict]:
    key, k_steps = jax.random.split(state.key)
    dt = s.h / s.m_out

    def sub(theta, k):
        H, g = jax.value_and_grad(s.model.free_energy)(theta, s.draw(k, s.batch), s.V, s.beta)
        return jax.tree.map(lambda p, gp: p - dt * gp, theta, g), H

    theta, H = jax.lax.scan(sub, state.theta, jax.random.split(k_steps, s.m_out))
    new = state._replace(theta=theta, key=key, t=state.t + s.h)
    return new, {"loss": H[-1], "inner_loss": jnp.zeros_like(H[-1]), "t": new.t}
