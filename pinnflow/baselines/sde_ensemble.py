"""The SDE reference for any Fokker–Planck problem (paper 000 §3: "the SDE" curves and KDEs of Figs. 1–5).

An ensemble of n independent realisations of dX = b(X, t) dt + √(2D(t)) dW, X_0 ~ ρ0, is simulated by
Euler–Maruyama (`pinnflow.dynamics.integrators.euler_maruyama`, with the problem's `sde_sigma`, σσᵀ = 2D) and
recorded at the save times: the particles (optional), their mean and covariance, and for particle systems
(`problem.particles = (N, s)`) the one-particle mean and covariance pooled over the N particles. The
one-particle density is then a kernel density estimate (`one_particle_kde`, `pinnflow.metrics.kde`).

Time grid: save times 0 ≤ t_1 < … < t_k ≤ T; the interval before each save time (from 0 for the first) gets
m_j = ⌈(t_j − t_{j−1})/dt⌉ uniform steps, so every save time is hit exactly and no step exceeds dt (given
`steps`, dt = t_k/steps). Weak order 1: moments carry an O(dt) bias besides their O(1/√n) sampling error.

One compiled program per (problem, n, number of save times, keep_particles, devices): a `lax.scan` over the
save intervals, each a loop over its (traced) number of steps, so other save times or step sizes reuse it.
The particles are sharded over `jax.devices()` like the samplers' batches (`DataParallel`); the noise comes
from JAX's partitionable threefry (the default), so sharded and unsharded runs draw the same numbers.
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pinnflow.core.parallel import DataParallel
from pinnflow.dynamics.integrators import euler_maruyama
from pinnflow.fokker_planck import FokkerPlanckProblem
from pinnflow.metrics.kde import kde

__all__ = ["Ensemble", "simulate_ensemble", "one_particle_kde", "one_particle_points"]

_HI = jax.lax.Precision.HIGHEST  # no TF32 / bf16 passes in the moment sums on accelerators


class Ensemble(NamedTuple):
    """An SDE ensemble recorded at `times (k,)` (numpy).

    `mean (k, d)` and `cov (k, d, d)` are the sample mean and covariance (ddof = 1) of the n realisations;
    `particles (k, n, d)` the states themselves (None with `keep_particles=False`; sharded over devices as
    simulated); `final (n, d)` the states at the last save time (kept either way). Particle systems
    (`particle_shape = (N, s)`): `one_particle_mean (k, s)` and
    `one_particle_cov (k, s, s)` pool all n·N particle positions (the one-particle marginal of an exchangeable
    system; ddof = 1 over the n·N positions). `steps (k,)`: Euler–Maruyama steps in the interval ending at
    each save time; `dt`: the largest step used; `seconds`: wall time including compilation."""

    times: np.ndarray
    mean: jax.Array
    cov: jax.Array
    particles: jax.Array | None
    final: jax.Array
    one_particle_mean: jax.Array | None
    one_particle_cov: jax.Array | None
    n: int
    steps: np.ndarray
    dt: float
    particle_shape: tuple[int, int] | None
    problem: str
    seconds: float


def _resolve_problem(problem, problem_params) -> FokkerPlanckProblem:
    if isinstance(problem, str):
        import problems.fokker_planck  # the registry lives outside the library (like pinn.train's targets)

        return problems.fokker_planck.get(problem, **(problem_params or {}))  # unknown: KeyError with choices
    if problem_params:
        raise ValueError("problem_params only apply to a problem given by name")
    if not isinstance(problem, FokkerPlanckProblem):
        raise TypeError("simulate_ensemble: problem must be a FokkerPlanckProblem or a registered name, got "
                        f"{type(problem).__name__}")
    return problem


def _check_int(value, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"simulate_ensemble: {what} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_times(save_times, problem: FokkerPlanckProblem) -> np.ndarray:
    T = problem.T
    if save_times is None:
        return np.linspace(0.0, T, 11)
    try:
        ts = np.atleast_1d(np.asarray(save_times, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"simulate_ensemble: save_times must be numbers, got {save_times!r}") from None
    if ts.ndim != 1 or ts.size == 0:
        raise ValueError(f"simulate_ensemble: save_times must be a non-empty 1-D sequence, got shape {ts.shape}")
    if not np.all(np.isfinite(ts)):
        raise ValueError(f"simulate_ensemble: save_times must be finite, got {ts.tolist()}")
    tol = 1e-12 * T
    bad = ts[(ts < -tol) | (ts > T + tol)]
    if bad.size:
        raise ValueError(f"simulate_ensemble: save times {bad.tolist()} lie outside [0, T = {T}] of problem "
                         f"{problem.name!r}")
    if np.any(np.diff(ts) <= 0):
        raise ValueError(f"simulate_ensemble: save_times must be strictly increasing, got {ts.tolist()}")
    return np.clip(ts, 0.0, T)


def _segment_steps(times: np.ndarray, dt, steps) -> tuple[np.ndarray, np.ndarray]:
    """(starts, number of steps) of the intervals ending at each save time."""
    if (dt is None) == (steps is None):
        raise ValueError("simulate_ensemble: give exactly one of dt (the largest step) and steps (the number of "
                         f"steps from 0 to the last save time), got dt={dt!r}, steps={steps!r}")
    t_last = float(times[-1])
    if dt is not None:
        if isinstance(dt, bool) or not isinstance(dt, int | float | np.floating | np.integer) \
                or not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"simulate_ensemble: dt must be a finite number > 0, got {dt!r}")
        h = float(dt)
    else:
        h = t_last / _check_int(steps, "steps", 1) if t_last > 0 else 1.0
    starts = np.concatenate([[0.0], times[:-1]])
    lengths = times - starts
    m = np.where(lengths > 0, np.maximum(1, np.ceil(lengths / h - 1e-9)), 0).astype(np.int64)
    if m.sum() > 2**31 - 1:
        raise ValueError(f"simulate_ensemble: {int(m.sum())} steps is too many (dt = {h:g})")
    return starts, m


def simulate_ensemble(
    problem: FokkerPlanckProblem | str,
    n: int,
    save_times=None,
    key: jax.Array | None = None,
    *,
    dt: float | None = None,
    steps: int | None = None,
    data_parallel: bool = True,
    keep_particles: bool = True,
    problem_params: dict | None = None,
    x0=None,
) -> Ensemble:
    """Simulate n realisations of the problem's SDE dX = b dt + √(2D) dW from X_0 ~ ρ0 (`problem.sample0`) by
    Euler–Maruyama and record them at `save_times` (default: 11 equispaced times on [0, T]).

    `problem`: a `FokkerPlanckProblem` or a registered name (`problems.fokker_planck`, with `problem_params`).
    Exactly one of `dt` (the largest step; each save interval is split into ⌈length/dt⌉ equal steps) or
    `steps` (dt = t_k/steps: exactly `steps` steps when the save times are multiples of dt, else up to one more
    per save interval). `key` (default `PRNGKey(0)`) draws ρ0 and the
    noise. `data_parallel`: shard the particles over all devices (n must be a multiple of their number).
    `keep_particles=False` records only the moments (memory O(n d) instead of O(k n d)). `x0 (n, d)`: start
    from these states instead of draws of ρ0 (e.g. the particles another method starts from).

    Bad input raises before anything compiles: `ValueError` naming the argument (n < 2, save times outside
    [0, T] or not increasing, dt ≤ 0, …), `KeyError` listing the choices for an unknown problem name. An
    ensemble that blows up (dt too large for a stiff drift) raises `FloatingPointError` naming the first
    non-finite save time."""
    problem = _resolve_problem(problem, problem_params)
    n = _check_int(n, "n (the number of realisations; the covariance needs 2)", 2)
    times = _check_times(save_times, problem)
    starts, counts = _segment_steps(times, dt, steps)
    dp = DataParallel.create(bool(data_parallel))
    if n % dp.size:
        raise ValueError(f"simulate_ensemble: n = {n} must be a multiple of the number of devices ({dp.size}) "
                         "to shard the particles; change n or pass data_parallel=False")
    key = jax.random.PRNGKey(0) if key is None else key
    if x0 is not None:
        x0 = jnp.asarray(x0)
        if x0.shape != (n, problem.dim) or not bool(jnp.all(jnp.isfinite(x0))):
            raise ValueError(f"simulate_ensemble: x0 must be finite with shape ({n}, {problem.dim}), got "
                             f"{'non-finite values' if x0.shape == (n, problem.dim) else x0.shape}")
    lengths = times - starts
    h_used = float(np.max(np.where(counts > 0, lengths / np.maximum(counts, 1), 0.0)))
    t_start = time.perf_counter()
    out = _simulate(problem, n, bool(keep_particles), dp, key, jnp.asarray(starts), jnp.asarray(times),
                    jnp.asarray(counts, jnp.int32), x0)
    out = jax.block_until_ready(out)
    finite = np.all(np.isfinite(np.asarray(out["mean"])), axis=1) & np.all(np.isfinite(np.asarray(out["cov"])),
                                                                             axis=(1, 2))
    if not finite.all():
        raise FloatingPointError(
            f"simulate_ensemble: the Euler-Maruyama ensemble of problem {problem.name!r} is not finite at save "
            f"time t = {times[np.argmin(finite)]:g} (dt = {h_used:g}); the drift is too stiff for this step: "
            "decrease dt")
    return Ensemble(
        times=times, mean=out["mean"], cov=out["cov"], particles=out.get("particles"), final=out["final"],
        one_particle_mean=out.get("one_mean"), one_particle_cov=out.get("one_cov"), n=n, steps=counts,
        dt=h_used, particle_shape=problem.particles, problem=problem.name,
        seconds=time.perf_counter() - t_start,
    )


def _mean_cov(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sample mean and covariance (ddof = 1) over the leading axis of x (n, d), centred before the product."""
    mean = jnp.mean(x, axis=0)
    c = x - mean
    return mean, jnp.einsum("ni,nj->ij", c, c, precision=_HI) / (x.shape[0] - 1)


def _moments(x: jax.Array, particles: tuple[int, int] | None) -> dict:
    mean, cov = _mean_cov(x)
    out = {"mean": mean, "cov": cov}
    if particles is not None:
        out["one_mean"], out["one_cov"] = _mean_cov(x.reshape(-1, particles[1]))
    return out


def _simulate_impl(problem: FokkerPlanckProblem, n: int, keep: bool, dp: DataParallel, key, starts, ends, counts,
                   x0=None):
    k_init, k_noise = jax.random.split(key)
    x0 = dp.shard_batch(jnp.asarray(problem.sample0(k_init, n) if x0 is None else x0))
    dtype = x0.dtype
    starts, ends = starts.astype(dtype), ends.astype(dtype)
    seg_keys = jax.random.split(k_noise, starts.shape[0])

    def segment(x, inputs):
        t_a, t_b, m, k_seg = inputs
        h = (t_b - t_a) / jnp.maximum(m, 1).astype(dtype)

        def one_step(i, x):
            # grid t_a + i h; the last step ends exactly at the save time. t1 − t0 is exact in floating point
            # (Sterbenz), so the steps of an interval sum to its length.
            t0 = t_a + i.astype(dtype) * h
            t1 = jnp.where(i + 1 == m, t_b, t_a + (i + 1).astype(dtype) * h)
            x = euler_maruyama(problem.drift, problem.sde_sigma, x, jax.random.fold_in(k_seg, i), t0, t1, 1)
            return dp.shard_batch(x)

        x = jax.lax.fori_loop(0, m, one_step, x)
        rec = _moments(x, problem.particles)
        if keep:
            rec["particles"] = x
        return x, rec

    final, recorded = jax.lax.scan(segment, x0, (starts, ends, counts, seg_keys))
    recorded["final"] = final
    return recorded


_simulate = jax.jit(_simulate_impl, static_argnums=(0, 1, 2, 3))  # problems hash by identity


def one_particle_points(ensemble: Ensemble, i_time: int, max_points: int | None = None) -> jax.Array:
    """The pooled one-particle positions (n·N, s) at save time `i_time` (all coordinates (n, d) when the
    problem has no particle structure). `max_points` keeps the first ⌈max_points/N⌉ realisations (whole
    realisations; they are i.i.d., so this is a random subset)."""
    if ensemble.particles is None:
        raise ValueError("one-particle densities need the particles: simulate with keep_particles=True")
    k = len(ensemble.times)
    if isinstance(i_time, bool) or not isinstance(i_time, int | np.integer) or not -k <= i_time < k:
        raise IndexError(f"i_time = {i_time!r} is not the index of one of the {k} save times")
    N, s = ensemble.particle_shape or (1, ensemble.particles.shape[-1])
    x = ensemble.particles[int(i_time)]
    if max_points is not None:
        rows = max(1, -(-_check_int(max_points, "max_points", 1) // N))
        x = x[:rows]
    return x.reshape(-1, s)


def one_particle_kde(ensemble: Ensemble, i_time: int, grid, bandwidth=None, max_points: int | None = 200_000,
                     chunk: int | None = None) -> jax.Array:
    """Kernel density estimate of the one-particle density at save time `ensemble.times[i_time]`, pooling the
    N particles of every realisation (paper 000 Figs. 2, 3B; the whole state for problems without particles).

    `grid`: points (m, s), giving (m,) densities; or, for s = 2, a pair of 1-D arrays (gx, gy), giving the
    (len(gx), len(gy)) array of densities at (gx[i], gy[j]). `bandwidth`: as `pinnflow.metrics.kde.kde`
    (default Scott's rule on the pooled points). `max_points` bounds the pooled points used (cost m · points)."""
    pts = one_particle_points(ensemble, i_time, max_points)
    s = pts.shape[1]
    if isinstance(grid, tuple | list) and len(grid) == 2 and all(np.ndim(g) == 1 for g in grid):
        if s != 2:
            raise ValueError(f"a grid pair (gx, gy) is for 2-D one-particle densities; this one has s = {s}")
        gx, gy = (jnp.asarray(g, pts.dtype) for g in grid)
        X, Y = jnp.meshgrid(gx, gy, indexing="ij")
        return kde(pts, jnp.stack([X.ravel(), Y.ravel()], axis=1), bandwidth, chunk).reshape(X.shape)
    at = jnp.asarray(grid, pts.dtype)
    if at.ndim != 2 or at.shape[1] != s:
        raise ValueError(f"grid must be points (m, {s}) or a pair of 1-D arrays (gx, gy), got shape {at.shape}")
    return kde(pts, at, bandwidth, chunk)
