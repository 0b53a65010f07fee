"""Reverse-time samplers of a trained diffusion model, from the prior at t = T down to `t_end` (paper 002 §2.4):

- `sde`: Euler–Maruyama for the reverse approximate SDE (7),
  x ← x − Δt (f(x, t) − g(t)² s(x, t)) + g(t) √Δt z; the last step adds no noise (it returns the mean);
- `ode`: Euler for the probability-flow ODE (10), x ← x − Δt (f(x, t) − ½ g(t)² s(x, t)) (eq. 9 as printed
  is wrong: see `../shared/papers/README.md`).

`time_grid` gives the times: `steps` uniform steps from T to t_end, the last `fine_final` of them each replaced
by ten steps of a tenth the size (the authors' refinement near t = 0, where the score is steepest). Particles
are processed in batches of `batch` (one compiled pass each, with `lax.scan` over the steps), so memory stays
bounded for millions of samples; a batch's noise comes from `fold_in(key, batch index)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from pinnflow.core.registry import Registry
from pinnflow.diffusion.sdes import ForwardSDE

__all__ = ["time_grid", "ReverseStep", "SAMPLERS", "sample"]

Field = Callable[[jax.Array, jax.Array], jax.Array]


def time_grid(T: float, t_end: float, steps: int, fine_final: int = 0) -> np.ndarray:
    """Decreasing times T = t₀ > t₁ > … > t_K = t_end (see the module docstring)."""
    if not (0 <= t_end < T) or steps < 1 or not (0 <= fine_final <= steps):
        raise ValueError(f"time_grid needs 0 <= t_end < T, steps >= 1 and 0 <= fine_final <= steps; got "
                         f"T={T}, t_end={t_end}, steps={steps}, fine_final={fine_final}")
    h = (T - t_end) / steps
    coarse = T - h * np.arange(steps - fine_final + 1)
    start = coarse[-1]
    fine = start - (h / 10) * np.arange(1, 10 * fine_final + 1)
    ts = np.concatenate([coarse, fine])
    ts[-1] = t_end
    return ts


@dataclass(frozen=True)
class ReverseStep:
    """One reverse-time step x ← x − Δt (f(x, t) − c g(t)² s(x, t)) [+ g(t) √Δt z if `stochastic`]: c = 1 with
    noise is Euler–Maruyama for the reverse SDE (7), c = ½ without is Euler for the probability-flow ODE (10)."""

    score_factor: float
    stochastic: bool

    def __call__(self, score: Field, sde: ForwardSDE):
        def step(x, t, dt, z, noisy):
            drift = jax.vmap(sde.drift, (0, None))(x, t) - self.score_factor * sde.g(t) ** 2 * jax.vmap(
                score, (0, None))(x, t)
            x = x - dt * drift
            return x + noisy * sde.g(t) * jnp.sqrt(dt) * z if self.stochastic else x

        return step


SAMPLERS: Registry[ReverseStep] = Registry("sampler")
"""Reverse-time steps by name (`sde`, `ode`); `SAMPLERS.get(name)` is a `ReverseStep`."""
SAMPLERS.register(lambda: ReverseStep(1.0, True), name="sde")
SAMPLERS.register(lambda: ReverseStep(0.5, False), name="ode")


def sample(kind: str, score: Field, sde: ForwardSDE, n: int, d: int, key: jax.Array, ts: np.ndarray,
           batch: int = 65536, x_T: jax.Array | None = None, dtype=None) -> np.ndarray:
    """n samples at t = ts[-1] from the `kind` sampler started at the prior (or at `x_T`), as a NumPy array."""
    rev = SAMPLERS.get(kind)
    step, noisy_run = rev(score, sde), rev.stochastic
    dtype = dtype or jnp.result_type(float)
    ts_j = jnp.asarray(ts, dtype)
    dts = ts_j[:-1] - ts_j[1:]
    noisy = jnp.asarray(np.r_[np.ones(len(ts) - 2), 0.0] if noisy_run else np.zeros(len(ts) - 1), dtype)

    @jax.jit
    def run(x, key):
        def body(x, inp):
            t, dt, k, nz = inp
            z = jax.random.normal(k, x.shape, x.dtype) if noisy_run else jnp.zeros_like(x)
            return step(x, t, dt, z, nz), None

        keys = jax.random.split(key, len(ts) - 1)
        x, _ = jax.lax.scan(body, x, (ts_j[:-1], dts, keys, noisy))
        return x

    k_prior, k_path = jax.random.split(key)
    out = []
    for i, lo in enumerate(range(0, n, batch)):
        m = min(batch, n - lo)
        x0 = (sde.prior_sample(jax.random.fold_in(k_prior, i), m, d, dtype) if x_T is None
              else jnp.asarray(x_T[lo:lo + m], dtype))
        if m < batch and n > batch:  # pad the last batch so that one compiled shape serves every batch
            x0 = jnp.concatenate([x0, jnp.zeros((batch - m, d), dtype)])
        out.append(np.asarray(run(x0, jax.random.fold_in(k_path, i)))[:m])
    return np.concatenate(out)
