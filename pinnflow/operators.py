"""Differential operators over one point: gradient, time derivative, divergence, Laplacian, Tr(A ∇²f).

Fields are callables of one point, `x: (d,)`. Trace-type operators (divergence, Laplacian, weighted
trace) come from a *backend*, chosen by value:

- `Exact()`: forward-mode; `jax.linearize` once, then one JVP per basis vector (vectorised with `vmap`);
  the Hessian is never formed by reverse-over-reverse differentiation.
- `Hutchinson(num_probes=k)`: the unbiased stochastic trace Tr(M) ≈ (1/k) Σ_j v_jᵀ M v_j with
  Rademacher probes v_j; needs a `key`.

A squared residual built on *one* stochastic trace is biased: E[R̂²] = R² + Var[R̂]. Use
`unbiased_square(residual, key)`, the product of two residual estimates with independent probes, whose
expectation is exactly R² (paper 003 squares residuals in eqs. 12–23).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp

__all__ = [
    "grad",
    "time_derivative",
    "jacobian",
    "Backend",
    "Exact",
    "Hutchinson",
    "EXACT",
    "unbiased_square",
]

Scalar = Callable[[jax.Array], jax.Array]  # (d,) -> ()
Vector = Callable[[jax.Array], jax.Array]  # (d,) -> (d,)


def grad(f: Scalar, x: jax.Array) -> jax.Array:
    """∇f(x) of a scalar field, shape (d,)."""
    return jax.grad(f)(x)


def time_derivative(f: Callable[[jax.Array, jax.Array], jax.Array], x: jax.Array, t: jax.Array) -> jax.Array:
    """∂_t f(x, t) by one forward-mode JVP in t (f may be scalar- or vector-valued)."""
    t = jnp.asarray(t, dtype=x.dtype)
    return jax.jvp(lambda s: f(x, s), (t,), (jnp.ones_like(t),))[1]


def jacobian(f: Vector, x: jax.Array) -> jax.Array:
    """J_ij = ∂_j f_i(x) by forward mode, shape (d_out, d)."""
    return jax.jacfwd(f)(x)


@runtime_checkable
class Backend(Protocol):
    """How trace-type operators are evaluated at one point. `key` is ignored by exact backends."""

    stochastic: bool

    def divergence(self, f: Vector, x: jax.Array, key: jax.Array | None = None) -> jax.Array: ...

    def laplacian(self, f: Scalar, x: jax.Array, key: jax.Array | None = None) -> jax.Array: ...

    def weighted_trace(
        self, f: Scalar, A: jax.Array, x: jax.Array, key: jax.Array | None = None
    ) -> jax.Array: ...


def _columns(jvp: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
    """Apply a linear map to every basis vector e_i; row i of the result is jvp(e_i)."""
    return jax.vmap(jvp)(jnp.eye(x.shape[-1], dtype=x.dtype))


@dataclass(frozen=True)
class Exact:
    """Exact traces by forward mode: linearise once, push the d basis vectors through (vmap)."""

    stochastic: bool = False

    def divergence(self, f: Vector, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """div f(x) = Σ_i ∂_i f_i(x)."""
        del key
        _, jvp = jax.linearize(f, x)
        return jnp.trace(_columns(jvp, x))

    def laplacian(self, f: Scalar, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """Δf(x) = div ∇f(x) (forward-over-reverse)."""
        return self.divergence(jax.grad(f), x, key)

    def weighted_trace(
        self, f: Scalar, A: jax.Array, x: jax.Array, key: jax.Array | None = None
    ) -> jax.Array:
        """Tr(A ∇²f(x)) for a constant (d, d) matrix A."""
        del key
        _, hvp = jax.linearize(jax.grad(f), x)
        H = _columns(hvp, x)  # H[i] = ∇²f e_i (symmetric)
        return jnp.sum(A * H.T)


@dataclass(frozen=True)
class Hutchinson:
    """Stochastic traces with `num_probes` Rademacher probes: E[vᵀMv] = Tr(M), unbiased for one call.

    Square residuals with `unbiased_square`, never directly.
    """

    num_probes: int = 1
    stochastic: bool = True

    def __post_init__(self):
        if int(self.num_probes) < 1:
            raise ValueError(f"Hutchinson needs num_probes >= 1, got {self.num_probes}")

    def _probes(self, key: jax.Array | None, x: jax.Array) -> jax.Array:
        if key is None:
            raise ValueError("the Hutchinson backend needs a PRNG key (pass key=...)")
        return jax.random.rademacher(key, (self.num_probes, x.shape[-1]), dtype=x.dtype)

    def divergence(self, f: Vector, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """(1/k) Σ_j v_jᵀ J_f(x) v_j."""
        v = self._probes(key, x)
        _, jvp = jax.linearize(f, x)
        return jnp.mean(jnp.sum(v * jax.vmap(jvp)(v), axis=-1))

    def laplacian(self, f: Scalar, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """(1/k) Σ_j v_jᵀ ∇²f(x) v_j."""
        return self.divergence(jax.grad(f), x, key)

    def weighted_trace(
        self, f: Scalar, A: jax.Array, x: jax.Array, key: jax.Array | None = None
    ) -> jax.Array:
        """(1/k) Σ_j (Aᵀv_j)ᵀ ∇²f(x) v_j, since E[v vᵀ] = I gives E[vᵀ A H v] = Tr(A H)."""
        v = self._probes(key, x)
        _, hvp = jax.linearize(jax.grad(f), x)
        return jnp.mean(jnp.sum((v @ A) * jax.vmap(hvp)(v), axis=-1))


EXACT = Exact()


def unbiased_square(residual: Callable[[jax.Array | None], jax.Array], key: jax.Array | None) -> jax.Array:
    """R̂(k₁)·R̂(k₂) with independent probe keys: an unbiased estimate of R² (E[R̂²] = R² + Var R̂ is not).

    `residual(key)` evaluates a residual (an array or a pytree of them, e.g. a dict of named terms) whose
    traces use `key`. With `key=None`
    (an exact backend) this is simply R².
    """
    if key is None:
        return jax.tree.map(lambda r: r * r, residual(None))
    k1, k2 = jax.random.split(key)
    return jax.tree.map(lambda a, b: a * b, residual(k1), residual(k2))
