"""Densities on a grid: a reconstructed density (Gaussian KDE of particles) against a known one, by the L² distance

    ‖ρ̂ − ρ‖_{L²} ≈ ( Σ_g (ρ̂(y_g) − ρ(y_g))² · |cell| )^{1/2}

over the midpoints y_g of a uniform grid of a box (paper 001 §5.1, Fig. 2 right). Meant for d ≤ 2 (the grid has
`per_axis`^d points); both densities must be normalised, and the box must hold their mass.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from pinnflow.metrics.kde import kde

__all__ = ["box_grid", "l2_distance", "kde_l2_error", "target_density", "reconstruction_errors"]


def box_grid(lo, hi, per_axis: int) -> tuple[np.ndarray, float]:
    """(midpoints (per_axis^d, d), cell volume) of a uniform grid of the box [lo, hi] (arrays of shape (d,))."""
    lo, hi = np.atleast_1d(np.asarray(lo, np.float64)), np.atleast_1d(np.asarray(hi, np.float64))
    if lo.shape != hi.shape or lo.ndim != 1 or np.any(hi <= lo):
        raise ValueError(f"box_grid: need lo < hi of equal shape (d,), got {lo} and {hi}")
    if isinstance(per_axis, bool) or not isinstance(per_axis, int | np.integer) or per_axis < 2:
        raise ValueError(f"box_grid: per_axis must be an integer >= 2, got {per_axis!r}")
    h = (hi - lo) / per_axis
    axes = [lo[i] + h[i] * (np.arange(per_axis) + 0.5) for i in range(lo.size)]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, lo.size)
    return mesh, float(np.prod(h))


def l2_distance(p: jax.Array, q: jax.Array, cell: float) -> jax.Array:
    """The L² distance of two densities given by their values at the grid midpoints."""
    return jnp.sqrt(jnp.sum((p - q) ** 2) * cell)


def kde_l2_error(points: jax.Array, grid: jax.Array, density: jax.Array, cell: float, bandwidth=None) -> jax.Array:
    """‖KDE(points) − ρ‖_{L²} on the grid (`density`: ρ at the grid's midpoints); jittable (`metrics.kde`'s
    bandwidth rules, default Scott's)."""
    return l2_distance(kde(points, grid, bandwidth), density, cell)


def target_density(target, grid: tuple[np.ndarray, float]) -> np.ndarray | None:
    """The normalised density of a `Target` at the grid's midpoints (computed once, reused at every time), or
    None when its log Z is unknown."""
    if target.log_Z is None:
        return None
    at = jnp.asarray(grid[0], jnp.result_type(float))
    return np.asarray(jnp.exp(jax.vmap(target.log_density)(at) - target.log_Z))


def reconstruction_errors(X: jax.Array, t: jax.Array, grid: tuple[np.ndarray, float], target_values=None,
                          exact_log_rho=None) -> dict[str, jax.Array]:
    """The L² errors of the KDE of particles X (n, d) at time t on `grid` (`box_grid`'s pair): `l2_target`
    against the target's normalised density at the grid's midpoints (`target_values`, from `target_density`),
    `l2_exact` against the exact log-density `exact_log_rho(x, t)` of the particles' law. Jittable; only the
    columns whose reference is given."""
    at, cell = jnp.asarray(grid[0], X.dtype), grid[1]
    density = kde(X, at)
    out = {}
    if target_values is not None:
        out["l2_target"] = l2_distance(density, jnp.asarray(target_values, X.dtype), cell)
    if exact_log_rho is not None:
        out["l2_exact"] = l2_distance(density, jnp.exp(jax.vmap(exact_log_rho, in_axes=(0, None))(at, t)), cell)
    return out
