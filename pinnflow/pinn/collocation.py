"""Collocation points (ξ, τ) where the residuals are evaluated (paper 003 App. B.1 eq. 63, App. D.1)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from pinnflow.core.config import Section, check_positive_ints, is_number, is_positive, need
from pinnflow.dynamics.integrators import ode_trajectory
from pinnflow.target import Target

__all__ = ["CollocationConfig", "Domain", "trajectory_cache", "mix_batch", "trajectory_refresher",
           "no_trajectory_cache", "RUNAWAY_FACTOR"]

RUNAWAY_FACTOR = 4.0
"""Cached trajectory points beyond this multiple of the target's box are dropped (runaway trajectories of a
half-trained flow overflowed many_well_50's quartic)."""


@dataclass
class CollocationConfig(Section):
    """Uniform collocation on Ω of eq. (63): a box moving from the prior box to the target box; optionally a
    share of every batch on learned ODE trajectories (App. D.1)."""

    prior_k: float = 4.0  # prior box: ±prior_k prior standard deviations
    target_lo: list[float] | float | None = None  # default: the target's domain
    target_hi: list[float] | float | None = None
    trajectory_fraction: float = 0.0  # share of each batch drawn along learned trajectories (App. D.1)
    trajectory_count: int = 10000  # trajectories per cache refresh
    trajectory_steps: int = 200  # RK4 steps (time points) per trajectory
    trajectory_every: int = 5000  # refresh the cache every k steps (a multiple of optim.chunk)

    def validate(self, where: str = "collocation.") -> None:
        need(is_positive(self.prior_k), f"{where}prior_k", f"must be > 0, got {self.prior_k}")
        f = self.trajectory_fraction
        need(is_number(f) and 0 <= f < 1, f"{where}trajectory_fraction", f"must be in [0, 1), got {f}")
        check_positive_ints(self, where, ("trajectory_count", "trajectory_steps", "trajectory_every"))


@dataclass(frozen=True)
class Domain:
    """Ω of eq. (63): at time t the box [lo(t), hi(t)] interpolates linearly (in t/T) between the prior box
    and the target box. `sample` draws τ ~ U[0, T] and ξ ~ U[lo(τ), hi(τ)]."""

    prior_lo: np.ndarray
    prior_hi: np.ndarray
    target_lo: np.ndarray
    target_hi: np.ndarray
    T: float

    @classmethod
    def build(cls, target: Target, cfg: CollocationConfig, prior_std: float, T: float) -> Domain:
        """Prior box ±prior_k·prior_std; target box from the config or else the target's `domain`."""
        d = target.dim
        lo = target.domain[0] if cfg.target_lo is None else np.broadcast_to(cfg.target_lo, (d,))
        hi = target.domain[1] if cfg.target_hi is None else np.broadcast_to(cfg.target_hi, (d,))
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        if lo.shape != (d,) or hi.shape != (d,) or np.any(lo >= hi):
            raise ValueError(f"collocation target box must have lo < hi with shape ({d},), got {lo}, {hi}")
        k = cfg.prior_k * prior_std
        return cls(np.full(d, -k), np.full(d, k), lo, hi, float(T))

    def box(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(lo(t), hi(t)) for times of any shape; boxes have shape t.shape + (d,)."""
        s = (jnp.asarray(t) / self.T)[..., None]
        lo = s * self.target_lo + (1 - s) * self.prior_lo
        hi = s * self.target_hi + (1 - s) * self.prior_hi
        return lo, hi

    def sample(self, key: jax.Array, n: int, dtype=None) -> tuple[jax.Array, jax.Array]:
        """n uniform points of Ω: returns (x (n, d), t (n,))."""
        dtype = dtype or jnp.result_type(float)
        kt, kx = jax.random.split(key)
        t = jax.random.uniform(kt, (n,), dtype, 0.0, self.T)
        lo, hi = self.box(t)
        u = jax.random.uniform(kx, (n, self.prior_lo.shape[0]), dtype)
        return (lo + u * (hi - lo)).astype(dtype), t


def trajectory_cache(flow, prior, T: float, n: int, steps: int, key: jax.Array,
                     limit: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Learned trajectories for collocation (paper 003 App. D.1, Table 4): n prior samples pushed through the
    ODE drift `flow` with `steps` RK4 steps. Returns the path (steps + 1, n, d) and its time grid (steps + 1,);
    `mix_batch` draws points on it at τ ~ U[0, T]. The points are data: no gradient flows through the solver.
    Points with a coordinate beyond `limit` (|x_i| > limit_i; a runaway trajectory of a half-trained flow,
    which can overflow a quartic log-density) are marked NaN, so `mix_batch` replaces them by uniform points."""
    path, ts = ode_trajectory(flow, prior.sample(key, n), 0.0, T, steps)
    path = jax.lax.stop_gradient(path)
    if limit is not None:
        far = jnp.any(jnp.abs(path) > jnp.asarray(limit, path.dtype), axis=-1)
        path = jnp.where(far[..., None], jnp.nan, path)
    return path, ts


def mix_batch(key: jax.Array, xs: jax.Array, ts: jax.Array, path: jax.Array, grid: jax.Array,
              n_cache: int) -> tuple[jax.Array, jax.Array]:
    """Replace the last `n_cache` points of a uniform batch by points on cached trajectories: a trajectory j
    uniformly, a time τ ~ U[grid[0], grid[-1]], and ξ = the path of j at τ, linearly interpolated between the
    grid points around τ (the solver's grid is uniform). Non-finite points are replaced by the uniform ones."""
    if n_cache == 0:
        return xs, ts
    k_traj, k_tau = jax.random.split(key)
    steps = path.shape[0] - 1
    j = jax.random.randint(k_traj, (n_cache,), 0, path.shape[1])
    tau = jax.random.uniform(k_tau, (n_cache,), xs.dtype, grid[0], grid[-1])
    s = (tau - grid[0]) / (grid[-1] - grid[0]) * steps
    k = jnp.clip(jnp.floor(s).astype(jnp.int32), 0, steps - 1)
    w = (s - k)[:, None]
    cx = (1 - w) * path[k, j] + w * path[k + 1, j]
    ok = jnp.all(jnp.isfinite(cx), axis=-1)
    cx = jnp.where(ok[:, None], cx, xs[-n_cache:])
    return jnp.concatenate([xs[:-n_cache], cx]), jnp.concatenate([ts[:-n_cache], jnp.where(ok, tau, ts[-n_cache:])])


def trajectory_refresher(flow_of, prior, T: float, target: Target, c: CollocationConfig):
    """jitted (params, key) -> trajectory cache (path, grid) of the ODE drift `flow_of(params)` (App. D.1) with
    the sizes of `c`; points beyond `RUNAWAY_FACTOR` times the target's box are dropped."""
    far_limit = RUNAWAY_FACTOR * np.maximum(np.abs(target.domain[0]), np.abs(target.domain[1]))

    @jax.jit
    def refresh(params, key):
        return trajectory_cache(flow_of(params), prior, T, c.trajectory_count, c.trajectory_steps, key,
                                limit=far_limit)

    return refresh


def no_trajectory_cache(dim: int, T: float) -> tuple[jax.Array, jax.Array]:
    """A placeholder cache (path, grid) for runs without trajectory collocation (`mix_batch` ignores it)."""
    dtype = jnp.result_type(float)
    return jnp.zeros((2, 1, dim), dtype), jnp.array([0.0, T], dtype)
