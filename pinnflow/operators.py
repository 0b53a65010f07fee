"""Differential operators over one point: gradient, time derivative, divergence, Laplacian, Tr(A ∇²f).

Fields are callables of one point, `x: (d,)`. Trace-type operators (divergence, Laplacian, weighted
trace) come from a *backend*, chosen by value:

- `Exact()`: forward-mode; `jax.linearize` once, then one JVP per basis vector (vectorised with `vmap`);
  the Hessian is never formed by reverse-over-reverse differentiation.
- `ForwardLaplacian()`: the forward-Laplacian propagation of `pinnflow.forward_laplacian`; value, ∇f, ∂_t f
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

from pinnflow.forward_laplacian import forward_laplacian
from pinnflow.registry import Registry

__all__ = [
    "grad",
    "time_derivative",
    "jacobian",
    "Backend",
    "Exact",
    "Hutchinson",
    "ForwardLaplacian",
    "Auto",
    "Derivatives",
    "derivatives",
    "GradientField",
    "field_divergence",
    "EXACT",
    "BACKENDS",
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


class Derivatives(NamedTuple):
    """F(x, t), ∇_x F, ∂_t F and the second-order trace Tr(D ∇²F) (0 when no D was asked for)."""

    value: jax.Array
    grad: jax.Array
    dt: jax.Array
    trace: jax.Array


def _separate_passes(op, F, x, t, D, key) -> Derivatives:
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
    return fused(F, x, t, D, key) if fused is not None else _separate_passes(op, F, x, t, D, key)


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


def _eigen_directions(A: jax.Array, dtype) -> tuple[jax.Array, jax.Array]:
    """(λ, rows q_kᵀ) of sym(A): Tr(A H) = Σ_k λ_k q_kᵀ H q_k for any symmetric H."""
    lam, Q = jnp.linalg.eigh(0.5 * (A + A.T).astype(dtype))
    return lam, Q.T


@dataclass(frozen=True)
class ForwardLaplacian:
    """Exact traces by forward-Laplacian propagation (`pinnflow.forward_laplacian`): one pass carries the
    value, the d + 1 first derivatives (x and t) and the trace through the network."""

    stochastic: bool = False

    def divergence(self, f: Vector, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """div f(x) from a first-order forward Jacobian (no second-order terms)."""
        del key
        eye = jnp.eye(x.shape[-1], dtype=x.dtype)
        return jnp.trace(forward_laplacian(f, (x,), (eye,), m=0).J)

    def laplacian(self, f: Scalar, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        del key
        eye = jnp.eye(x.shape[-1], dtype=x.dtype)
        return forward_laplacian(f, (x,), (eye,), m=x.shape[-1]).L

    def weighted_trace(
        self, f: Scalar, A: jax.Array, x: jax.Array, key: jax.Array | None = None
    ) -> jax.Array:
        """Tr(A∇²f) = Σ_k λ_k q_kᵀ∇²f q_k over the eigenpairs of sym(A) (∇²f is symmetric)."""
        del key
        lam, dirs = _eigen_directions(A, x.dtype)
        return forward_laplacian(f, (x,), (dirs,), m=x.shape[-1], weights=lam).L

    def derivatives(self, F, x, t, D=None, key=None) -> Derivatives:
        """One pass over directions (e_1..e_d, ∂_t), or the eigenvectors of D for a matrix D."""
        del key
        d = x.shape[-1]
        t = jnp.asarray(t, dtype=x.dtype)
        if D is None or jnp.ndim(D) == 0:
            dirs, weights = jnp.eye(d, dtype=x.dtype), None
        else:
            weights, dirs = _eigen_directions(D, x.dtype)
        tx = jnp.concatenate([dirs, jnp.zeros((1, d), x.dtype)])
        tt = jnp.zeros((d + 1,), x.dtype).at[d].set(1.0)
        out = forward_laplacian(F, (x, t), (tx, tt), m=0 if D is None else d, weights=weights)
        g = out.J[:d] if weights is None else dirs.T @ out.J[:d]
        if D is None:
            trace = jnp.zeros((), x.dtype)
        else:
            trace = D * out.L if jnp.ndim(D) == 0 else out.L
        return Derivatives(out.value, g, out.J[d], trace)


@dataclass(frozen=True)
class Auto:
    """The fastest exact backend per operation, as measured by `experiments/bench_operators.py` and
    `experiments/bench_step.py` on CPU: second-order traces (Laplacians, Tr(D∇²F)) by `ForwardLaplacian`
    when d ≥ `min_dim`; divergences and first derivatives by `Exact` (linearised JVPs and one reverse pass,
    which beat a (d + 1)-direction forward propagation)."""

    min_dim: int = 1
    stochastic: bool = False

    def pick(self, x: jax.Array):
        """The backend for second-order traces at a point of this dimension."""
        return FORWARD_LAPLACIAN if x.shape[-1] >= self.min_dim else EXACT

    def divergence(self, f, x, key=None):
        return EXACT.divergence(f, x, key)

    def laplacian(self, f, x, key=None):
        return self.pick(x).laplacian(f, x, key)

    def weighted_trace(self, f, A, x, key=None):
        return self.pick(x).weighted_trace(f, A, x, key)

    def derivatives(self, F, x, t, D=None, key=None) -> Derivatives:
        return derivatives(EXACT if D is None else self.pick(x), F, x, t, D, key)


EXACT = Exact()
FORWARD_LAPLACIAN = ForwardLaplacian()

BACKENDS: Registry[Backend] = Registry("operator backend")
"""Operator backends by name (`config.operator`): `BACKENDS.get(name, **params)`."""
BACKENDS.register(Auto, name="auto")
BACKENDS.register(Exact, name="exact")
BACKENDS.register(ForwardLaplacian, name="forward_laplacian")
BACKENDS.register(Hutchinson, name="hutchinson")


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
