"""Many-well targets: m double wells times a (d-m)-dim standard Gaussian (paper 003, App. C, eq. 71)."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy import integrate

from pinnflow.target import Target
from problems import register

__all__ = ["many_well", "many_well_5", "many_well_50"]

_GRID_POINTS = 20001  # inverse-CDF table for the sampler


def _well(x: np.ndarray | float, delta: float) -> np.ndarray | float:
    """Unnormalised 1-D double well exp(-(x^2 - delta)^2)."""
    return np.exp(-((np.asarray(x) ** 2 - delta) ** 2))


def _well_moments(delta: float) -> tuple[float, float]:
    """(log Z_1, std) of the 1-D double well by adaptive quadrature (it is even, so mean 0)."""
    peak = math.sqrt(max(delta, 0.0))
    upper = peak + 8.0  # the integrand is below exp(-(8^2)^2) beyond this point
    opts = {"points": [peak] if peak > 0 else None, "epsabs": 0.0, "epsrel": 1e-13, "limit": 200}
    z, _ = integrate.quad(lambda t: _well(t, delta), 0.0, upper, **opts)
    m2, _ = integrate.quad(lambda t: t * t * _well(t, delta), 0.0, upper, **opts)
    return math.log(2.0 * z), math.sqrt(m2 / z)


def _well_cdf_table(delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid on [-L, L], L = sqrt(delta) + 4, and the normalised trapezoidal CDF of the double well on it."""
    half = math.sqrt(max(delta, 0.0)) + 4.0
    grid = np.linspace(-half, half, _GRID_POINTS)
    pdf = _well(grid, delta)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
    return grid, cdf / cdf[-1]


def _mode_centres(d: int, m: int, delta: float) -> np.ndarray:
    """The 2^m local maxima (±√δ on each well coordinate, 0 elsewhere; δ ≤ 0 has one mode at 0), (2^m, d)."""
    if m == 0 or delta <= 0:
        return np.zeros((1, d))
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=m)))
    return np.concatenate([math.sqrt(delta) * signs, np.zeros((2**m, d - m))], axis=1)


@register
def many_well(d: int = 5, m: int = 5, delta: float = 4.0) -> Target:
    """log rho(x) = -sum_{i<m} (x_i^2 - delta)^2 - 1/2 sum_{i>=m} x_i^2 (eq. 71), with 2^m modes.

    log Z, the per-coordinate std and the exact sampler (inverse CDF per well, normal otherwise) use the
    factorisation over coordinates. Domain: +-(sqrt(delta) + 2) on well coordinates, +-5 on the others.
    """
    name = f"many_well(d={d},m={m},delta={delta})"
    if not (isinstance(d, int | np.integer) and isinstance(m, int | np.integer) and 0 <= m <= d and d >= 1):
        raise ValueError(f"target {name!r}: need integers d >= 1 and 0 <= m <= d")
    if not np.isfinite(delta):
        raise ValueError(f"target {name!r}: delta must be finite")
    d, m, delta = int(d), int(m), float(delta)
    log_z1, std1 = _well_moments(delta)
    log_Z = m * log_z1 + 0.5 * (d - m) * math.log(2.0 * math.pi)
    grid, cdf = _well_cdf_table(delta)

    def log_density(x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        x = x.astype(jnp.result_type(x, float))
        dlt = jnp.asarray(delta, dtype=x.dtype)
        return -jnp.sum((x[:m] ** 2 - dlt) ** 2) - 0.5 * jnp.sum(x[m:] ** 2)

    def sample(key: jax.Array, n: int) -> jax.Array:
        k_well, k_gauss = jax.random.split(key)
        u = jax.random.uniform(k_well, (n, m))
        wells = jnp.interp(u, jnp.asarray(cdf, dtype=u.dtype), jnp.asarray(grid, dtype=u.dtype))
        return jnp.concatenate([wells, jax.random.normal(k_gauss, (n, d - m), dtype=u.dtype)], axis=1)

    well_half = math.sqrt(max(delta, 0.0)) + 2.0
    hi = np.concatenate([np.full(m, well_half), np.full(d - m, 5.0)])
    return Target(
        name=name,
        dim=d,
        log_density=log_density,
        domain=(-hi, hi),
        log_Z=log_Z,
        sample=sample,
        std=np.concatenate([np.full(m, std1), np.ones(d - m)]),
        info={"d": d, "m": m, "delta": delta, "n_modes": 2**m, "reference": "paper 003, App. C, eq. 71",
              "means": _mode_centres(d, m, delta)},
    )


@register
def many_well_5() -> Target:
    """Benchmark preset MW (d=5, m=5, delta=4) of paper 003, Sec. 5."""
    return many_well(d=5, m=5, delta=4.0)


@register
def many_well_50() -> Target:
    """Benchmark preset MW (d=50, m=5, delta=2) of paper 003, Sec. 5."""
    return many_well(d=50, m=5, delta=2.0)
