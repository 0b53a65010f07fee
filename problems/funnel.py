"""Neal's funnel: a normalised, strongly anisotropic and heavy-tailed benchmark target."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from pinnflow.target import Target
from problems import register

__all__ = ["funnel"]


@register
def funnel(d: int = 10, scale: float = 3.0) -> Target:
    """x_0 ~ N(0, scale^2), x_i | x_0 ~ N(0, exp(x_0)) for i = 1..d-1; normalised, log Z = 0.

    The domain (+-3 scale for x_0, +-20 otherwise) does NOT hold all the mass: the marginals of x_i are
    heavy-tailed (std exp(scale^2/4), about 9.5 for scale=3). The sampler is exact.
    """
    name = "funnel"
    if not (isinstance(d, int | np.integer) and d >= 2):
        raise ValueError(f"target {name!r}: need an integer d >= 2, got {d!r}")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"target {name!r}: need scale > 0, got {scale!r}")
    d, scale = int(d), float(scale)
    log_2pi = math.log(2.0 * math.pi)

    def log_density(x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        x = x.astype(jnp.result_type(x, float))
        x0, rest = x[0], x[1:]
        log_p0 = -0.5 * (x0 / scale) ** 2 - math.log(scale) - 0.5 * log_2pi
        log_rest = -0.5 * jnp.sum(rest**2) * jnp.exp(-x0) - 0.5 * (d - 1) * (x0 + log_2pi)
        return log_p0 + log_rest

    def sample(key: jax.Array, n: int) -> jax.Array:
        z = jax.random.normal(key, (n, d))
        x0 = scale * z[:, :1]
        return jnp.concatenate([x0, jnp.exp(0.5 * x0) * z[:, 1:]], axis=1)

    hi = np.concatenate([[3.0 * scale], np.full(d - 1, 20.0)])
    return Target(
        name=name,
        dim=d,
        log_density=log_density,
        domain=(-hi, hi),
        log_Z=0.0,
        sample=sample,
        std=np.concatenate([[scale], np.full(d - 1, math.exp(scale**2 / 4.0))]),
        info={"d": d, "scale": scale, "reference": "Neal (2003), Slice sampling, Sec. 8"},
    )
