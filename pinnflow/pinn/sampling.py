"""Sampling a trained run: the learned ODE with log-likelihoods, or the learned SDE (paper 003 App. B.1–B.2).

`method="ode"` integrates the ODE drift with the marginals of X (μ itself, or the probability-flow drift
of eq. 66 for SDE losses) by RK4 (3/8 rule), together with d/dt log p = −div μ (eq. 64); the log
importance weights are log w = log ρ_target(X_T) − log p_{X_T}(X_T) (eq. 65). `method="sde"` simulates
dX = μ dt + σ dW by Euler–Maruyama (no weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from pinnflow.core.config import Section, check_positive_ints, is_positive, need
from pinnflow.core.parallel import DataParallel
from pinnflow.core.precision import in_run_precision
from pinnflow.core.registry import Registry
from pinnflow.dynamics.integrators import euler_maruyama, ode_with_logp

__all__ = ["Samples", "sample", "METHODS", "SamplerConfig"]


@dataclass
class SamplerConfig(Section):
    """Time discretisation of the samplers and the evaluation sample size."""

    steps: int = 100
    n_eval: int = 20000
    sinkhorn_n: int = 500  # points per cloud; ε = 1e-3 with n = 2000 does not converge in minutes on CPU
    sinkhorn_epsilon: float = 1e-3

    def validate(self, where: str = "sampler.") -> None:
        check_positive_ints(self, where, ("steps", "n_eval", "sinkhorn_n"))
        eps = self.sinkhorn_epsilon
        need(is_positive(eps), f"{where}sinkhorn_epsilon", f"must be > 0, got {eps}")


class Samples(NamedTuple):
    """x: samples (n, d) at time T; log_p: model log-density at x (ODE only); log_w: log ρ(x) − log_p."""

    x: jax.Array
    log_p: jax.Array | None = None
    log_w: jax.Array | None = None


METHODS: Registry = Registry("sampling method")


@METHODS.register(name="ode")
def _ode(run, key, n: int, steps: int, shard) -> Samples:
    fields, prior, T = run.fields(), run.setup.prior, run.setup.T
    x0 = shard(prior.sample(key, n))
    x, log_p = ode_with_logp(fields.flow, x0, prior.log_prob(x0), 0.0, T, steps)
    return Samples(x, log_p, run.target.log_prob(x) - log_p)


@METHODS.register(name="sde")
def _sde(run, key, n: int, steps: int, shard) -> Samples:
    fields, prior, T = run.fields(), run.setup.prior, run.setup.T
    if fields.sigma == 0:
        raise ValueError(f"loss {run.loss.name!r} learns an ODE (sigma = 0); sample it with method='ode'")
    k0, k1 = jax.random.split(key)
    return Samples(euler_maruyama(fields.drift, fields.sigma, shard(prior.sample(k0, n)), k1, 0.0, T, steps))


@in_run_precision
def sample(run, key: jax.Array, n: int, method: str = "ode", steps: int | None = None,
           batch: int = 10000) -> Samples:
    """n samples of a trained run at time T, computed in batches of `batch` (one compiled function), each
    batch sharded across devices when `config.data_parallel`."""
    fn = METHODS.factory(method)
    steps = run.config.sampler.steps if steps is None else int(steps)
    if n < 1 or steps < 1:
        raise ValueError(f"need n >= 1 and steps >= 1, got n={n}, steps={steps}")
    dp = DataParallel.create(run.config.data_parallel)
    size = min(n, batch)
    size = max(dp.size, size - size % dp.size)  # particles are sharded across devices
    jitted = jax.jit(lambda k: fn(run, k, size, steps, dp.shard_batch))
    parts = [jitted(k) for k in jax.random.split(key, -(-n // size))]
    cat = [None if parts[0][i] is None else jnp.concatenate([p[i] for p in parts])[:n] for i in range(3)]
    return Samples(*cat)
