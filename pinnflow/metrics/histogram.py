"""Binned distributions and the exact Wasserstein-2 distance between them (paper 002, "Closing the ODE–SDE gap in
score-based diffusion models", Tables 1–3: W2² between 2-D samples binned on a 64×64 grid, exact discrete OT).

Definitions (the number is only meaningful with all of them stated beside it):

- Grid. `HistogramGrid(lo, hi, bins)` has `bins` equally spaced nodes per axis on [lo_i, hi_i], both ends
  included (`np.linspace(lo_i, hi_i, bins)`), spacing h_i = (hi_i - lo_i) / (bins - 1); the product grid is
  ordered as `np.meshgrid(..., indexing="ij")` flattened (C order, the last axis fastest).
- Binning. Every sample goes to its *nearest* node: per axis, index round((x_i - lo_i) / h_i), clipped. So each
  point moves by at most h_i / 2 per coordinate, and the binned W2 differs from the W2 of the underlying
  samples by at most (sum_i (h_i / 2)²)^½ (triangle inequality). Samples outside the box
  [lo_i - h_i/2, hi_i + h_i/2] are dropped (the reference code truncates to the box; `outside="raise"`
  refuses them instead) and the kept fraction is reported; a box that keeps less than `min_kept` of the samples
  is an error, never a silently truncated number. Weights are normalised to sum 1.
- Cost. W2² = min over couplings π of Σ π_ij |x_i - y_j|², the squared Euclidean distance between nodes,
  solved *exactly* (network simplex, POT's `ot.emd2`) in float64 on the nodes that carry mass.
- Comparability. The box and the number of bins must be the same for every row of a table: the binning bias
  and the truncation depend on them. `noise_floor` gives the value the estimator returns for two independent
  draws of the same distribution at n samples — differences below it are not resolved.

Why POT and not ott-jax (already a dependency, used by `pinnflow.metrics.sinkhorn`): `ot.emd2` is an exact
network-simplex solver, whereas ott-jax solves the entropic problem, which is biased at any ε > 0 and slow to
converge as ε → 0; the exact tables therefore use POT. `ot` is imported inside `w2_squared`, so importing this
module (and `pinnflow`) does not load POT or SciPy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["HistogramGrid", "histogram", "w2_squared", "w2_squared_samples", "noise_floor"]

SOLVER = "POT ot.emd2 (exact network simplex)"
_CHUNK = 1 << 20  # samples binned at a time (bounds the temporary memory for very large sample sets)


@dataclass(frozen=True)
class HistogramGrid:
    """`bins` equally spaced nodes per axis on [lo_i, hi_i] (both ends included); the product grid is ordered as
    `np.meshgrid(*axes, indexing="ij")` flattened. Validated on construction (`validate`)."""

    lo: tuple[float, ...]
    hi: tuple[float, ...]
    bins: int = 64

    def __post_init__(self):
        lo = tuple(float(v) for v in np.atleast_1d(np.asarray(self.lo, dtype=np.float64)))
        hi = tuple(float(v) for v in np.atleast_1d(np.asarray(self.hi, dtype=np.float64)))
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)
        self.validate()

    @classmethod
    def square(cls, half_width: float, bins: int = 64, d: int = 2) -> HistogramGrid:
        """The grid on the box [-half_width, half_width]^d."""
        if not (isinstance(d, (int, np.integer)) and d >= 1):
            raise ValueError(f"HistogramGrid.square: d must be a positive integer, got {d!r}")
        w = float(half_width)
        return cls(lo=(-w,) * d, hi=(w,) * d, bins=bins)

    def validate(self) -> None:
        """Raise ValueError naming the problem: bins < 2, mismatched lengths of lo/hi, non-finite or lo >= hi."""
        if isinstance(self.bins, bool) or not isinstance(self.bins, (int, np.integer)):
            raise ValueError(f"HistogramGrid: bins must be an integer, got {self.bins!r}")
        if self.bins < 2:
            raise ValueError(f"HistogramGrid: bins must be >= 2 (nodes include both ends of each axis), "
                             f"got bins={self.bins}")
        if len(self.lo) != len(self.hi):
            raise ValueError(f"HistogramGrid: lo and hi have mismatched lengths ({len(self.lo)} vs {len(self.hi)}): "
                             f"lo={self.lo}, hi={self.hi}")
        if len(self.lo) == 0:
            raise ValueError("HistogramGrid: lo and hi are empty (need at least one axis)")
        if not (np.all(np.isfinite(self.lo)) and np.all(np.isfinite(self.hi))):
            raise ValueError(f"HistogramGrid: lo and hi must be finite, got lo={self.lo}, hi={self.hi}")
        bad = [i for i, (a, b) in enumerate(zip(self.lo, self.hi, strict=True)) if not a < b]
        if bad:
            raise ValueError(f"HistogramGrid: lo must be < hi on every axis; fails on axis {bad} "
                             f"(lo={self.lo}, hi={self.hi})")

    @property
    def d(self) -> int:
        """The dimension (number of axes)."""
        return len(self.lo)

    @property
    def spacing(self) -> np.ndarray:
        """h_i = (hi_i - lo_i) / (bins - 1), shape (d,)."""
        return (np.asarray(self.hi) - np.asarray(self.lo)) / (self.bins - 1)

    @property
    def size(self) -> int:
        """The number of nodes, bins**d."""
        return self.bins ** self.d

    @property
    def axes(self) -> list[np.ndarray]:
        """The node coordinates of each axis, `np.linspace(lo_i, hi_i, bins)`."""
        return [np.linspace(a, b, self.bins) for a, b in zip(self.lo, self.hi, strict=True)]

    @property
    def nodes(self) -> np.ndarray:
        """All nodes, shape (bins**d, d), in `np.meshgrid(..., indexing="ij")` flattened order."""
        mesh = np.meshgrid(*self.axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)


def histogram(samples: Any, grid: HistogramGrid, *, outside: str = "drop",
              min_kept: float = 0.5) -> tuple[np.ndarray, float]:
    """Bin `samples` (n, d) to the nearest node of `grid`: returns (weights of shape (bins**d,) summing to 1,
    the fraction of samples kept).

    Samples outside the box [lo_i - h_i/2, hi_i + h_i/2] are dropped (`outside="drop"`) or refused
    (`outside="raise"`). ValueError for: a non-(n, d) array, non-finite samples, no samples (or none in the box),
    and a kept fraction below `min_kept` (the box excludes the data: widen it).
    """
    grid.validate()
    if outside not in ("drop", "raise"):
        raise ValueError(f"histogram: outside must be 'drop' or 'raise', got {outside!r}")
    if not 0.0 <= float(min_kept) <= 1.0:
        raise ValueError(f"histogram: min_kept must lie in [0, 1], got {min_kept!r}")
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != grid.d:
        raise ValueError(f"histogram: samples must be a 2-D array of shape (n, {grid.d}) to match the grid's "
                         f"dimension d={grid.d}, got shape {x.shape}")
    n = x.shape[0]
    if n == 0:
        raise ValueError("histogram: samples is empty (0 rows)")
    n_bad = int(np.count_nonzero(~np.all(np.isfinite(x), axis=1)))
    if n_bad:
        raise ValueError(f"histogram: {n_bad} of {n} samples are non-finite (NaN or inf); remove or fix them first")

    lo = np.asarray(grid.lo)
    h = grid.spacing
    top = grid.bins - 1
    counts = np.zeros(grid.size, dtype=np.int64)
    kept = 0
    for start in range(0, n, _CHUNK):
        t = (x[start:start + _CHUNK] - lo) / h  # position in units of the spacing
        inside = np.all((t >= -0.5) & (t <= top + 0.5), axis=1)
        idx = np.clip(np.rint(t[inside]), 0, top).astype(np.int64)
        flat = np.ravel_multi_index(tuple(idx.T), (grid.bins,) * grid.d)
        counts += np.bincount(flat, minlength=grid.size)
        kept += int(np.count_nonzero(inside))

    kept_fraction = kept / n
    if outside == "raise" and kept < n:
        raise ValueError(f"histogram: {n - kept} of {n} samples lie outside the box [lo - h/2, hi + h/2] "
                         f"(lo={grid.lo}, hi={grid.hi}, h={tuple(h.tolist())}) and outside='raise'")
    if kept == 0:
        raise ValueError(f"histogram: none of the {n} samples lies in the box [lo - h/2, hi + h/2] "
                         f"(lo={grid.lo}, hi={grid.hi}): the result would be empty; use a wider box")
    if kept_fraction < min_kept:
        raise ValueError(f"histogram: only {kept_fraction:.1%} of the samples ({kept} of {n}) lie in the box "
                         f"[lo - h/2, hi + h/2] (lo={grid.lo}, hi={grid.hi}), below min_kept={min_kept:g}: "
                         f"the box excludes the data; use a wider box")
    return counts / kept, kept_fraction


def _check_weights(w: Any, name: str, size: int) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (size,):
        raise ValueError(f"w2_squared: {name} must have shape ({size},) = (bins**d,) for this grid, got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"w2_squared: {name} has {int(np.count_nonzero(~np.isfinite(w)))} non-finite weights")
    if np.any(w < 0):
        raise ValueError(f"w2_squared: {name} has {int(np.count_nonzero(w < 0))} negative weights "
                         f"(min {w.min():g})")
    total = w.sum()
    if not total > 0:
        raise ValueError(f"w2_squared: {name} has zero total mass")
    return w / total


def w2_squared(a: Any, b: Any, grid: HistogramGrid) -> float:
    """Exact W2² between the weight vectors `a`, `b` (each (bins**d,), on `grid`'s nodes) with the squared
    Euclidean cost, by POT's network simplex (`ot.emd2`) in float64 on the nodes where a or b has mass."""
    import ot

    grid.validate()
    a = _check_weights(a, "a", grid.size)
    b = _check_weights(b, "b", grid.size)
    ia, ib = np.flatnonzero(a > 0), np.flatnonzero(b > 0)
    a, b = a[ia], b[ib]
    a /= a.sum()
    b /= b.sum()
    # squared node distances from integer index differences: exact up to one rounding per axis
    shape = (grid.bins,) * grid.d
    ja, jb = np.unravel_index(ia, shape), np.unravel_index(ib, shape)
    M = np.zeros((ia.size, ib.size))
    for k, hk in enumerate(grid.spacing):
        M += (hk * (ja[k][:, None] - jb[k][None, :]).astype(np.float64)) ** 2
    cost, log = ot.emd2(a, b, M, numItermax=10_000_000, log=True)
    if log.get("warning") is not None:
        raise RuntimeError(f"w2_squared: ot.emd2 did not reach the exact optimum: {log['warning']}")
    return float(cost)


def w2_squared_samples(x: Any, y: Any, grid: HistogramGrid, **histogram_kwargs: Any) -> dict[str, Any]:
    """Bin both sample sets on `grid` (`histogram`, with `histogram_kwargs`) and return the exact W2² between
    the histograms together with its definition: kept fractions, bins, box and solver."""
    a, kept_x = histogram(x, grid, **histogram_kwargs)
    b, kept_y = histogram(y, grid, **histogram_kwargs)
    return {"w2_squared": w2_squared(a, b, grid), "kept_x": kept_x, "kept_y": kept_y, "bins": grid.bins,
            "box": {"lo": grid.lo, "hi": grid.hi}, "solver": SOLVER}


def noise_floor(sample_fn: Callable[[int, int], Any], n: int, grid: HistogramGrid,
                seeds: Sequence[int] = (0, 1), **histogram_kwargs: Any) -> float:
    """W2² between the histograms of two independent draws `sample_fn(seed, n)` (each (n, d)), one per seed:
    the value the estimator returns for identical distributions at n samples (its floor)."""
    if len(seeds) != 2 or seeds[0] == seeds[1]:
        raise ValueError(f"noise_floor: seeds must be two different seeds, got {tuple(seeds)!r}")
    draws = []
    for seed in seeds:
        s = np.asarray(sample_fn(seed, n))
        if s.ndim != 2 or s.shape[0] != n:
            raise ValueError(f"noise_floor: sample_fn({seed}, {n}) must return an array of shape ({n}, d), "
                             f"got shape {s.shape}")
        draws.append(histogram(s, grid, **histogram_kwargs)[0])
    return w2_squared(draws[0], draws[1], grid)
