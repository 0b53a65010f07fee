"""Controlled SDEs on path space: Euler–Maruyama paths and their log importance weights (PIS, DIS).

A trajectory-based sampler simulates a controlled forward SDE on [0, T] (paper 003, eq. 41),

    dX_s = b(X_s, s) ds + σ(s) v(X_s, s) ds + σ(s) dW_s,    X_0 ~ p_prior,

on the grid s_k = kΔ, k = 0..N (Δ = T/N). Its discrete path law has Euler transition kernels
F_k(x_{k+1} | x_k) = N(x_k + (b + σv)(x_k, s_k)Δ, σ(s_k)²Δ I). The *target* path law starts from the target
at s = T and runs a fixed reference process backward, with kernels B_k(x_k | x_{k+1}). The importance weight
of a path is the Radon–Nikodym derivative of the target path law (times Z) with respect to the forward one,

    log w = log ρ(X_N) + Σ_k [log B_k(X_k | X_{k+1}) − log F_k(X_{k+1} | X_k)] − log p_prior(X_0),

an exact density ratio of two discrete Markov chains, so E[w] = Z and E[log w] ≤ log Z for every control and
step count (the chains agree only as Δ → 0 with the optimal control; then log w ≡ log Z). Each setup below
writes this sum in a numerically convenient form: `log_weight_step` is the summand of step k and
`log_weight_boundary` holds the terms at s = 0 and s = T other than log ρ(X_N).

- `PIS`: Path Integral Sampler (Zhang & Chen 2022, ref. [78]); Dirac prior at 0, Brownian reference, b = 0.
- `DIS`: Time-Reversed Diffusion Sampler (Berner, Richter & Ullrich 2024, ref. [5]); the reference is a
  variance-preserving Ornstein–Uhlenbeck noising process started at the target (paper 003, eq. 62).

`simulate` draws paths and accumulates log w in one `lax.scan`; with `detach=True` the paths are cut from
the autodiff graph (for the log-variance loss), while the increments still depend on the control.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from pinnflow.distributions import normal_log_prob

__all__ = ["ControlledSDE", "PIS", "DIS", "Paths", "simulate", "Control", "LogDensity"]

Control = Callable[[jax.Array, jax.Array], jax.Array]  # v(x: (d,), s: ()) -> (d,), s the forward time
LogDensity = Callable[[jax.Array], jax.Array]  # log ρ(x: (d,)) -> ()


class ControlledSDE(abc.ABC):
    """A forward SDE dX = (b + σv) ds + σ dW on [0, T] with N Euler steps, a prior, and the reference
    process that defines the target path law. Methods act on one point; `k` is the step index (traced)."""

    T: float
    steps: int

    @property
    def dt(self) -> float:
        return self.T / self.steps

    @abc.abstractmethod
    def sigma(self, k: jax.Array) -> jax.Array:
        """σ(s_k), a scalar (the diffusion is σ·I)."""

    @abc.abstractmethod
    def drift(self, x: jax.Array, v: jax.Array, k: jax.Array) -> jax.Array:
        """The forward drift b(x, s_k) + σ(s_k) v at step k, given the network output v = v(x, s_k)."""

    @abc.abstractmethod
    def sample_prior(self, key: jax.Array, n: int, dim: int) -> jax.Array:
        """X_0 ~ p_prior, shape (n, dim)."""

    @abc.abstractmethod
    def log_weight_step(self, x: jax.Array, x_next: jax.Array, v: jax.Array, k: jax.Array) -> jax.Array:
        """Step k's term of log w: log B_k(x | x_next) − log F_k(x_next | x), up to terms moved to the boundary."""

    @abc.abstractmethod
    def log_weight_boundary(self, x0: jax.Array, xT: jax.Array) -> jax.Array:
        """The remaining terms of log w besides log ρ(X_N) (prior and reference marginals)."""

    def info(self) -> dict:
        """The settings, for `BaselineResult.info`."""
        return {"sde": type(self).__name__.lower(), "T": self.T, "time_steps": self.steps}


@dataclass(frozen=True)
class PIS(ControlledSDE):
    """Path Integral Sampler [78]: dX = σ v ds + σ dW from X_0 = 0 (a Dirac prior).

    The reference is the uncontrolled process σW, with terminal law N(0, σ²T I); the target path law is the
    reference conditioned on X_T ~ ρ/Z (Brownian bridges backward from target samples). The bridge kernels
    are exactly the time reversal of the Gaussian random walk, so they cancel against the walk's kernels F⁰_k
    and (Girsanov, Euler-discretised)

        log w = log ρ(X_N) − log N(X_N; 0, σ²T I) − Σ_k [v_k·(X_{k+1} − X_k)/σ − ½|v_k|²Δ],

    the sum being Σ_k log F_k/F⁰_k, i.e. ∫ v·dW + ½∫|v|² ds along the forward path. The optimal control is
    v* = σ∇ log h(x, s), h(x, s) = E[(ρ / N(0, σ²T I))(x + σW_{T−s})]. (A Gaussian start is not offered: the
    conditioned reference would not start at the prior, so log w could not be constant.)"""

    T: float = 1.0
    steps: int = 100
    sigma_: float = math.sqrt(2.0)

    def __post_init__(self):
        if not (self.T > 0 and self.steps >= 1 and self.sigma_ > 0):
            raise ValueError(f"PIS needs T > 0, steps >= 1 and sigma > 0; got {self}")

    @property
    def terminal_var(self) -> float:
        """Variance of the reference at s = T per coordinate: σ²T."""
        return self.sigma_**2 * self.T

    def sigma(self, k: jax.Array) -> jax.Array:
        del k
        return jnp.asarray(self.sigma_)

    def drift(self, x: jax.Array, v: jax.Array, k: jax.Array) -> jax.Array:
        del x, k
        return self.sigma_ * v

    def sample_prior(self, key: jax.Array, n: int, dim: int) -> jax.Array:
        del key
        return jnp.zeros((n, dim))

    def log_weight_step(self, x: jax.Array, x_next: jax.Array, v: jax.Array, k: jax.Array) -> jax.Array:
        del k
        return -(jnp.dot(v, x_next - x) / self.sigma_ - 0.5 * self.dt * jnp.sum(v**2))

    def log_weight_boundary(self, x0: jax.Array, xT: jax.Array) -> jax.Array:
        del x0
        return -normal_log_prob(xT, jnp.zeros_like(xT), jnp.asarray(self.terminal_var, xT.dtype))

    def info(self) -> dict:
        return {**super().info(), "sigma": self.sigma_, "reference": "Brownian motion sigma*W from 0; b = 0"}


@dataclass(frozen=True)
class DIS(ControlledSDE):
    """Time-Reversed Diffusion Sampler [5] with a variance-preserving noising process (paper 003, eq. 62).

    Noising (reference, run from the target): dY = −β(t) Y dt + σ(t) dW, σ(t) = √(2β(t)), β linear in t
    from `beta_min` to `beta_max` (paper 003, eqs. 73–74; constant β = σ̄²/2 as in App. B.1), so
    N(0, I) = p_prior is stationary. The sampler runs it backward, s = T − t:

        dX = (β X + σ u) ds + σ dW,   u* = σ ∇ log p_Y(·, T − s)   (Prop. 3.1 (iii), eq. 61),

    and we learn v = u + σX (the score's deviation from the prior score −x), i.e. b(x, s) = −β x: v = 0 is
    the stationary OU process, a stable start. Kernels: F_k is Euler for X with (β, σ) at t = T − s_k, B_k is
    Euler for Y from x_{k+1} with (β, σ) at t = T − s_{k+1}; the boundary term is −log N(X_0; 0, I).
    To first order in Δ the step sum is ∫(div(−f) − ½|u|²) ds − ∫u·dW of eq. (62) with w = u."""

    T: float = 3.0
    steps: int = 100
    beta_min: float = 2.0
    beta_max: float = 2.0

    def __post_init__(self):
        if not (self.T > 0 and self.steps >= 1 and self.beta_min > 0 and self.beta_max > 0):
            raise ValueError(f"DIS needs T > 0, steps >= 1, beta_min > 0, beta_max > 0; got {self}")

    def beta(self, t: jax.Array) -> jax.Array:
        """β(t) at noising time t (eq. 74 with σ_min, σ_max → 2β_min, 2β_max)."""
        return self.beta_min + (self.beta_max - self.beta_min) * t / self.T

    def noise_scale(self, t: jax.Array) -> jax.Array:
        """a(t) = exp(−∫₀ᵗ β): Y_t = a(t) Y_0 + √(1 − a(t)²) ε."""
        return jnp.exp(-(self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2 / self.T))

    def _noising_time(self, k: jax.Array) -> jax.Array:
        return self.T - k * self.dt

    def sigma(self, k: jax.Array) -> jax.Array:
        return jnp.sqrt(2.0 * self.beta(self._noising_time(k)))

    def drift(self, x: jax.Array, v: jax.Array, k: jax.Array) -> jax.Array:
        return -self.beta(self._noising_time(k)) * x + self.sigma(k) * v

    def sample_prior(self, key: jax.Array, n: int, dim: int) -> jax.Array:
        return jax.random.normal(key, (n, dim))

    def log_weight_step(self, x: jax.Array, x_next: jax.Array, v: jax.Array, k: jax.Array) -> jax.Array:
        dt = self.dt
        sig_f, sig_b = self.sigma(k), self.sigma(k + 1)  # forward at t = T − s_k, backward at t = T − s_{k+1}
        mean_f = x + self.drift(x, v, k) * dt
        mean_b = x_next - self.beta(self._noising_time(k + 1)) * x_next * dt
        return normal_log_prob(x, mean_b, sig_b**2 * dt) - normal_log_prob(x_next, mean_f, sig_f**2 * dt)

    def log_weight_boundary(self, x0: jax.Array, xT: jax.Array) -> jax.Array:
        del xT
        return -normal_log_prob(x0, jnp.zeros_like(x0), jnp.ones((), x0.dtype))

    def info(self) -> dict:
        return {**super().info(), "beta_min": self.beta_min, "beta_max": self.beta_max,
                "reference": "VP noising dY = -beta Y dt + sqrt(2 beta) dW from the target; prior N(0, I)"}


class Paths(NamedTuple):
    """End points X_N `(n, d)` of simulated paths and their log importance weights `(n,)`."""

    x: jax.Array
    log_w: jax.Array


def simulate(sde: ControlledSDE, control: Control, log_density: LogDensity, key: jax.Array, n: int, dim: int,
             detach: bool = False) -> Paths:
    """Simulate n Euler–Maruyama paths of `sde` under `control` and accumulate log w (module docstring).

    `detach=False`: the paths are reparametrised functions of the control (gradients flow through the
    solver, for the KL loss). `detach=True`: the paths are simulated with a stop-gradient control and cut
    from the graph; log w still depends on the control through the forward kernels (log-variance loss)."""
    k_prior, k_noise = jax.random.split(key)
    x0 = sde.sample_prior(k_prior, n, dim)
    sqrt_dt = math.sqrt(sde.dt)
    ctrl = jax.vmap(control, in_axes=(0, None))
    drift = jax.vmap(sde.drift, in_axes=(0, 0, None))
    increment = jax.vmap(sde.log_weight_step, in_axes=(0, 0, 0, None))

    def step(carry, inputs):
        x, acc = carry
        k, key_k = inputs
        v = ctrl(x, k * sde.dt)
        v_sim = jax.lax.stop_gradient(v) if detach else v
        noise = jax.random.normal(key_k, x.shape, x.dtype)
        x_next = x + drift(x, v_sim, k) * sde.dt + sde.sigma(k) * sqrt_dt * noise
        if detach:
            x_next = jax.lax.stop_gradient(x_next)
        return (x_next, acc + increment(x, x_next, v, k)), None

    steps = jnp.arange(sde.steps)
    (xT, acc), _ = jax.lax.scan(step, (x0, jnp.zeros(n, x0.dtype)), (steps, jax.random.split(k_noise, sde.steps)))
    log_w = jax.vmap(log_density)(xT) + jax.vmap(sde.log_weight_boundary)(x0, xT) + acc
    return Paths(xT, log_w)
