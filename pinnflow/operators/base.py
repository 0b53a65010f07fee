"""Differential operators over one point: gradient, time derivative, divergence, Laplacian, Tr(A ∇²f).

Fields are callables of one point, `x: (d,)`. Trace-type operators (divergence, Laplacian, weighted
trace) come from a *backend*, chosen by value:

- `Exact()`: forward-mode; `jax.linearize` once, then one JVP per basis vector (vectorised with `vmap`);
  the Hessian is never formed by reverse-over-reverse differentiation.
- `ForwardLaplacian()`: the forward-Laplacian propagation of `pinnflow.operators.forward_laplacian`; value, ∇f, ∂_t f
  and the trace in one pass, and divergences by a lean forward Jacobian (f'(y) applied once per layer).
- `Auto(min_dim)`: the fastest exact backend per operation (the forward Laplacian for second-order traces
  from `min_dim` on, `Exact` otherwise; measured by `experiments/bench_operators.py`).
- `Hutchinson(num_probes=k)`: the unbiased stochastic trace Tr(M) ≈ (1/k) Σ_j v_jᵀ M v_j with
  Rademacher probes v_j; needs a `key`.

A squared residual built on *one* stochastic trace is biased: E[R̂²] = R² + Var[R̂]. Use
`unbiased_square(residual, key)`, the product of two residual estimates with independent probes, whose
expectation is exactly R² (paper 003 squares residuals in eqs. 12–23).
"""


from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

__all__ = ["grad", "time_derivative", "jacobian", "Backend", "Derivatives", "derivatives", "separate_passes",
           "GradientField", "field_divergence", "unbiased_square", "Scalar", "Vector"]

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


class Derivatives(NamedTuple):
    """F(x, t), ∇_x F, ∂_t F and the second-order trace Tr(D ∇²F) (0 when no D was asked for)."""

    value: jax.Array
    grad: jax.Array
    dt: jax.Array
    trace: jax.Array


def separate_passes(op, F, x, t, D, key) -> Derivatives:
    """Derivatives by separate passes: reverse-mode gradient, a JVP in t, the backend's trace."""
    t = jnp.asarray(t, dtype=x.dtype)
    Ft = lambda y: F(y, t)  # noqa: E731
    value, g = jax.value_and_grad(Ft)(x)
    dt = time_derivative(F, x, t)
    if D is None:
        trace = jnp.zeros((), x.dtype)
    elif jnp.ndim(D) == 0:
        trace = D * op.laplacian(Ft, x, key)
    else:
        trace = op.weighted_trace(Ft, D, x, key)
    return Derivatives(value, g, dt, trace)


def derivatives(op: Backend, F: Callable[[jax.Array, jax.Array], jax.Array], x: jax.Array, t, D=None,
                key: jax.Array | None = None) -> Derivatives:
    """All derivatives a residual needs of a scalar field F(x, t) at one point, in as few passes as the
    backend allows. `D`: None (no second order), a scalar (D·ΔF) or a constant symmetric (d, d) matrix
    (Tr(D∇²F))."""
    fused = getattr(op, "derivatives", None)
    return fused(F, x, t, D, key) if fused is not None else separate_passes(op, F, x, t, D, key)


@dataclass(frozen=True)
class GradientField:
    """A vector field known to be a gradient, μ(x, t) = ∇_x Φ(x, t) (the `potential` parametrisation, OT and
    Schrödinger-bridge losses). Keeping Φ lets div μ = ΔΦ use the backend's Laplacian (one forward-Laplacian
    pass) instead of d JVPs of ∇Φ."""

    potential: Callable[[jax.Array, jax.Array], jax.Array]

    def __call__(self, x: jax.Array, t) -> jax.Array:
        return jax.grad(self.potential)(x, t)


def field_divergence(op: Backend, field: Callable, x: jax.Array, t, key: jax.Array | None = None) -> jax.Array:
    """div_x field(x, t) on backend `op`; ΔΦ for a `GradientField`."""
    potential = getattr(field, "potential", None)
    if potential is not None:
        return op.laplacian(lambda y: potential(y, t), x, key)
    return op.divergence(lambda y: field(y, t), x, key)


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
