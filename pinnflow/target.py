"""`Target`: an unnormalised density, the box where its mass lives, and optional reference facts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Target", "FINITE_HINT"]

LogDensity = Callable[[jax.Array], jax.Array]  # (d,) -> ()
Sampler = Callable[[jax.Array, int], jax.Array]  # (key, n) -> (n, d)


FINITE_HINT = ("The PDE losses evaluate log ρ at collocation points throughout the box Ω of eq. (63), so it must "
               "be finite there: shrink the domain (or collocation.target_lo/hi) to the support, or replace "
               "-inf outside the support by a finite, steep penalty.")


def _as_vector(a, dim: int) -> np.ndarray:
    """A scalar is broadcast to `(dim,)`; anything else is returned as a float array, shape unchanged."""
    a = np.asarray(a, dtype=np.float64)
    return np.full(dim, float(a)) if a.ndim == 0 else a


@dataclass(frozen=True, eq=False)
class Target:
    """An unnormalised target density rho_target (paper 003, eq. 1) and what is known about it.

    `log_density` maps one point `(d,)` to a scalar; use `log_prob` for batches. `domain = (lo, hi)`
    is the box where the target's mass lives (used for collocation, eq. 63). `log_Z`, `sample` (exact
    sampler `(key, n) -> (n, d)`) and `std` (per-coordinate reference standard deviations) are optional.
    Checked once at construction: a bad shape or a non-finite density raises `ValueError`.
    """

    name: str
    dim: int
    log_density: LogDensity
    domain: tuple[np.ndarray, np.ndarray]
    log_Z: float | None = None
    sample: Sampler | None = None
    std: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        def fail(msg: str):
            raise ValueError(f"target {self.name!r}: {msg}")

        if not isinstance(self.dim, int | np.integer) or self.dim < 1:
            fail(f"dim must be a positive integer, got {self.dim!r}")
        try:
            lo, hi = self.domain
        except (TypeError, ValueError):
            fail("domain must be a pair (lo, hi) of arrays of shape (dim,)")
        lo, hi = _as_vector(lo, self.dim), _as_vector(hi, self.dim)
        for nm, a in (("lo", lo), ("hi", hi)):
            if a.shape != (self.dim,):
                fail(f"domain {nm} has shape {a.shape}, expected ({self.dim},)")
            if not np.all(np.isfinite(a)):
                fail(f"domain {nm} must be finite, got {a}")
        if np.any(lo >= hi):
            bad = np.flatnonzero(lo >= hi)
            fail(f"domain needs lo < hi in every coordinate; violated at index {bad.tolist()}")
        object.__setattr__(self, "domain", (lo, hi))
        if self.std is not None:
            std = _as_vector(self.std, self.dim)
            if std.shape != (self.dim,) or not np.all(std > 0):
                fail(f"std must be positive with shape ({self.dim},), got {self.std!r}")
            object.__setattr__(self, "std", std)
        if self.log_Z is not None:
            if not np.isfinite(self.log_Z):
                fail(f"log_Z must be finite, got {self.log_Z}")
            object.__setattr__(self, "log_Z", float(self.log_Z))
        center = jnp.asarray(0.5 * (lo + hi), dtype=jnp.result_type(float))
        try:
            val = self.log_density(center)
        except Exception as err:  # noqa: BLE001 - report any failure with the target's name
            fail(f"log_density failed on a point of shape ({self.dim},): {type(err).__name__}: {err}")
        if jnp.shape(val) != ():
            fail(f"log_density must return a scalar for one point of shape ({self.dim},), "
                 f"got shape {jnp.shape(val)}")
        try:  # the solvers differentiate and vectorise it: it must trace (no Python branching on x)
            jax.eval_shape(jax.grad(self.log_density), center)
        except jax.errors.ConcretizationTypeError as err:
            fail("log_density must be traceable by JAX: it branches on its input with Python control flow "
                 "(`if`, `while`, `float(x)`, ...); use jnp.where / jax.lax.cond instead "
                 f"({type(err).__name__}: {str(err).splitlines()[0]})")
        except Exception as err:  # noqa: BLE001
            fail(f"log_density cannot be differentiated by JAX: {type(err).__name__}: {str(err).splitlines()[0]}")
        if not np.isfinite(float(val)):
            fail(f"log_density is not finite at the domain centre {np.asarray(center).tolist()}: {val}. "
                 + FINITE_HINT)
        if self.sample is not None:
            xs = self.sample(jax.random.key(0), 2)
            if jnp.shape(xs) != (2, self.dim):
                fail(f"sample(key, 2) must return shape (2, {self.dim}), got {jnp.shape(xs)}")

    def log_prob(self, x: jax.Array) -> jax.Array:
        """Unnormalised log-density for a batch `(n, d)` (or one point `(d,)`)."""
        x = jnp.asarray(x)
        if x.shape[-1] != self.dim:
            raise ValueError(
                f"target {self.name!r}: points have dimension {x.shape[-1]}, expected {self.dim}"
            )
        if x.ndim == 1:
            return self.log_density(x)
        return jax.vmap(self.log_density)(x.reshape(-1, self.dim)).reshape(x.shape[:-1])

    def __repr__(self) -> str:
        return f"Target(name={self.name!r}, dim={self.dim}, log_Z={self.log_Z})"
