"""Gaussian kernel density estimates (paper 000 §3, Figs. 2–3 and App. D: one-particle densities of SDE ensembles).

    ρ̂(y) = (1/n) Σ_i N(y; x_i, H),      H = the kernel covariance,

computed in log space (a streaming log-sum-exp over chunks of the points), so the memory is O(m · chunk · k) for
m evaluation points in k dimensions, whatever n is, and far-away evaluation points give a finite log ρ̂.

Bandwidth (`bandwidth`):
- None or "scott" (default): H = f² Σ̂ with Scott's factor f = n^(−1/(k+4));
- "silverman": H = f² Σ̂ with Silverman's factor f = (n (k + 2)/4)^(−1/(k+4));
- a positive number h: H = h² I (an isotropic kernel of standard deviation h);
- a (k, k) symmetric positive definite matrix: H itself.
Σ̂ is the sample covariance of the points (ddof = 1): the rules follow `scipy.stats.gaussian_kde`, whose values
these estimates reproduce. For Gaussian data N(μ, Σ) the expected estimate is exactly N(μ, Σ + H) (the bias).
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

__all__ = ["kde", "log_kde", "bandwidth_matrix", "scott_factor", "silverman_factor"]

CHUNK_ELEMENTS = 2**22  # m · chunk · k elements per pass when `chunk` is not given (16 MiB in float32)


def scott_factor(n: int, k: int) -> float:
    """Scott's rule: f = n^(−1/(k+4)); the kernel covariance is f² Σ̂."""
    return float(n) ** (-1.0 / (k + 4))


def silverman_factor(n: int, k: int) -> float:
    """Silverman's rule: f = (n (k + 2)/4)^(−1/(k+4)); the kernel covariance is f² Σ̂."""
    return (n * (k + 2) / 4.0) ** (-1.0 / (k + 4))


RULES = {"scott": scott_factor, "silverman": silverman_factor}


def _concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_points(points, at=None) -> tuple[jax.Array, jax.Array | None]:
    points = jnp.asarray(points)
    if points.ndim != 2 or points.shape[0] < 1 or points.shape[1] < 1:
        raise ValueError(f"kde: points must have shape (n, k) with n, k >= 1, got {points.shape}")
    if not jnp.issubdtype(points.dtype, jnp.floating):
        points = points.astype(jnp.result_type(float))
    if at is None:
        return points, None
    at = jnp.asarray(at, dtype=points.dtype)
    if at.ndim != 2 or at.shape[1] != points.shape[1]:
        raise ValueError(f"kde: `at` must have shape (m, {points.shape[1]}) like the points (n, k), got {at.shape}")
    return points, at


def bandwidth_matrix(points, bandwidth=None) -> jax.Array:
    """The kernel covariance H (k, k) that `kde(points, ·, bandwidth)` uses (see the module docstring)."""
    points, _ = _check_points(points)
    n, k = points.shape
    dtype = points.dtype
    if bandwidth is None or isinstance(bandwidth, str):
        rule = "scott" if bandwidth is None else bandwidth.lower()
        if rule not in RULES:
            raise ValueError(f"kde: unknown bandwidth rule {bandwidth!r}; use 'scott', 'silverman', a positive "
                             "number (kernel standard deviation) or a (k, k) kernel covariance")
        if n < 2:
            raise ValueError(f"kde: the {rule} rule needs at least 2 points to estimate their covariance, got {n}; "
                             "pass an explicit bandwidth")
        c = points - jnp.mean(points, axis=0)
        cov = jnp.einsum("ni,nj->ij", c, c, precision=jax.lax.Precision.HIGHEST) / (n - 1)
        H = RULES[rule](n, k) ** 2 * cov
    else:
        bw = jnp.asarray(bandwidth, dtype=dtype)
        if bw.ndim == 0:
            if _concrete(bw) and not (np.isfinite(float(bw)) and float(bw) > 0):
                raise ValueError(f"kde: a scalar bandwidth (the kernel standard deviation) must be finite and > 0, "
                                 f"got {bandwidth!r}")
            H = bw**2 * jnp.eye(k, dtype=dtype)
        elif bw.shape == (k, k):
            H = 0.5 * (bw + bw.T)
        else:
            raise ValueError(f"kde: bandwidth must be a rule name, a scalar or a ({k}, {k}) kernel covariance, "
                             f"got shape {bw.shape}")
    if _concrete(H):
        Hn = np.asarray(H, dtype=np.float64)
        w = np.linalg.eigvalsh(Hn) if np.all(np.isfinite(Hn)) else np.array([np.nan])
        if not (np.all(np.isfinite(w)) and w.min() > 1e-12 * max(w.max(), 1e-300)):
            by_rule = bandwidth is None or isinstance(bandwidth, str)
            what = ("the points' sample covariance is singular (e.g. identical points, or points on a lower-"
                    "dimensional subspace); pass an explicit bandwidth" if by_rule
                    else "a matrix bandwidth must be a symmetric positive definite kernel covariance")
            raise ValueError(f"kde: {what} (eigenvalues of H: {np.array2string(w, precision=3)})")
    return H


def log_kde(points, at, bandwidth=None, chunk: int | None = None) -> jax.Array:
    """log ρ̂ at `at (m, k)` for the Gaussian KDE of `points (n, k)`; `(m,)` (see the module docstring).

    The points are whitened by the Cholesky factor of H, then `chunk` points at a time are reduced by a
    log-sum-exp inside one `lax.scan` (memory O(m · chunk · k); `chunk=None` picks ≈ 2²² / (m k) points per
    pass). Jittable for a rule or scalar bandwidth (value checks then happen only on concrete input)."""
    points, at = _check_points(points, at)
    n, k = points.shape
    m = at.shape[0]
    H = bandwidth_matrix(points, bandwidth).astype(points.dtype)
    if chunk is None:
        chunk = CHUNK_ELEMENTS // max(m * k, 1)
    if isinstance(chunk, bool) or not isinstance(chunk, int | np.integer) or chunk < 1:
        raise ValueError(f"kde: chunk must be a positive integer, got {chunk!r}")
    return _log_kde(points, at, H, max(1, min(int(chunk), n)))


@partial(jax.jit, static_argnums=3)
def _log_kde(points: jax.Array, at: jax.Array, H: jax.Array, chunk: int) -> jax.Array:
    n, k = points.shape
    m, dtype = at.shape[0], points.dtype
    L = jnp.linalg.cholesky(H)
    center = jnp.mean(points, axis=0)  # smaller whitened coordinates: less cancellation in float32
    P = solve_triangular(L, (points - center).T, lower=True).T  # (n, k): kernel N(0, I) in these coordinates
    A = solve_triangular(L, (at - center).T, lower=True).T  # (m, k)
    log_norm = -0.5 * k * math.log(2.0 * math.pi) - jnp.sum(jnp.log(jnp.diag(L))) - math.log(n)
    blocks = -(-n // chunk)
    pad = blocks * chunk - n
    valid = jnp.arange(blocks * chunk) < n
    P = jnp.concatenate([P, jnp.zeros((pad, k), dtype)]) if pad else P
    P, valid = P.reshape(blocks, chunk, k), valid.reshape(blocks, chunk)

    def body(acc, block):
        Pc, ok = block
        d2 = jnp.sum((A[:, None, :] - Pc[None, :, :]) ** 2, axis=-1)  # (m, chunk)
        logits = jnp.where(ok[None, :], -0.5 * d2, -jnp.inf)
        return jnp.logaddexp(acc, jax.nn.logsumexp(logits, axis=1)), None

    acc, _ = jax.lax.scan(body, jnp.full((m,), -jnp.inf, dtype), (P, valid))
    return acc + log_norm.astype(dtype)


def kde(points, at, bandwidth=None, chunk: int | None = None) -> jax.Array:
    """ρ̂ at `at (m, k)` for the Gaussian KDE of `points (n, k)`: `(m,)` densities, exp of `log_kde` (which see;
    default bandwidth: Scott's rule H = n^(−2/(k+4)) Σ̂)."""
    return jnp.exp(log_kde(points, at, bandwidth, chunk))
