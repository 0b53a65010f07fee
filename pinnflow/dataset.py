"""`Dataset`: samples of an unknown law, the data a generative model learns from (paper 002).

A data set is known only through draws: `sample(key, n) -> (n, d)` (jittable, so training can draw a fresh
batch inside a compiled step), a box that holds the data (the default collocation box Ω of a Fokker–Planck
regulariser and the default histogram box), and optional facts in `info` (e.g. the exact mixture of a
Gaussian mixture, for closed-form checks). `Dataset.from_array` wraps a finite sample set (a user's data);
its draws are with replacement. Checked at construction: wrong shapes and non-finite values raise
`ValueError` naming what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Dataset", "check_data"]

Sampler = Callable[[jax.Array, int], jax.Array]  # (key, n) -> (n, d)


def check_data(x, dim: int | None = None, what: str = "data") -> np.ndarray:
    """`x` as a float array of shape (n, d), n ≥ 1, every value finite; else ValueError naming the problem."""
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{what}: expected an array of shape (n, d) with n, d >= 1, got shape {a.shape}")
    if dim is not None and a.shape[1] != dim:
        raise ValueError(f"{what}: expected {dim} coordinates per sample, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{what}: expected numbers, got dtype {a.dtype}")
    bad = ~np.isfinite(a).all(axis=1)
    if bad.any():
        raise ValueError(f"{what}: {int(bad.sum())} of {a.shape[0]} samples have NaN or infinite coordinates "
                         f"(first at row {int(np.argmax(bad))})")
    return a.astype(np.float64) if a.dtype.kind != "f" else a


@dataclass(frozen=True, eq=False)
class Dataset:
    """Draws of a data law: `sample(key, n)`; `box = (lo, hi)` holds (nearly) all of the data."""

    name: str
    dim: int
    sampler: Sampler
    box: tuple[tuple[float, ...], tuple[float, ...]]
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if not (isinstance(self.dim, int) and self.dim >= 1):
            raise ValueError(f"data set {self.name!r}: dim must be a positive integer, got {self.dim!r}")
        lo, hi = (tuple(float(v) for v in np.broadcast_to(np.asarray(b, float), (self.dim,))) for b in self.box)
        if not all(a < b for a, b in zip(lo, hi, strict=True)):
            raise ValueError(f"data set {self.name!r}: box needs lo < hi in every coordinate, got {lo}, {hi}")
        object.__setattr__(self, "box", (lo, hi))
        x = check_data(self.sampler(jax.random.PRNGKey(0), 8), self.dim, f"data set {self.name!r} sampler")
        del x

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """n draws, shape (n, d) (jittable with n static)."""
        return self.sampler(key, n)

    def draw(self, seed: int, n: int) -> np.ndarray:
        """n draws as a NumPy array, from `seed` (reproducible)."""
        return np.asarray(self.sampler(jax.random.PRNGKey(seed), n))

    @classmethod
    def from_array(cls, name: str, x, box=None, margin: float = 0.1, info: dict | None = None) -> Dataset:
        """A finite sample set (drawn from with replacement). `box` default: the data's bounding box widened
        by `margin` times its side on each end."""
        a = check_data(x, what=f"data set {name!r}")
        if box is None:
            lo, hi = a.min(axis=0), a.max(axis=0)
            pad = margin * np.maximum(hi - lo, 1e-12)
            box = (tuple(lo - pad), tuple(hi + pad))
        data = jnp.asarray(a)

        def sampler(key, n):
            return data[jax.random.randint(key, (n,), 0, data.shape[0])]

        return cls(name, a.shape[1], sampler, box, {"size": a.shape[0], **(info or {})})
