"""Time integrators for sampling: RK4 (3/8 rule) ODEs with the log-likelihood, Euler–Maruyama SDEs, and
the probability-flow drift (paper 003, App. B.1–B.2, eqs. 64–66).

Drifts are functions of one point, `mu(x: (d,), t: ()) -> (d,)`; the integrators vectorise them over the
`n` particles with `vmap` and step through time with `jax.lax.scan` on a uniform grid of `steps` steps.
Everything is jittable with `mu`, `sigma`, `op` and `steps` static (`t0`, `t1`, arrays and keys may be
traced). `sigma` is a scalar (σ·I), a constant `(d, d)` matrix, or a function of t returning either.

The log-likelihood needs μ and div μ at every RK stage: `value_and_divergence` takes both from one
linearisation of μ for the exact backends (the forward pass is shared by the value and the d JVPs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from pinnflow.operators import EXACT, Auto, Backend, Exact
from pinnflow.operators.exact import basis_columns
from pinnflow.pde.diffusion import Sigma, diffusion_at

__all__ = ["rk38_step", "ode", "ode_trajectory", "ode_with_logp", "value_and_divergence", "euler_maruyama",
           "probability_flow"]

PyTree = Any
Time = float | jax.Array  # a scalar time, Python or traced
VectorField = Callable[[jax.Array, jax.Array], jax.Array]  # (x: (d,), t: ()) -> (d,)
ScoreField = Callable[[jax.Array, jax.Array], jax.Array]  # ∇V: (x: (d,), t: ()) -> (d,)


def rk38_step(f: Callable[[PyTree, jax.Array], PyTree], y: PyTree, t: Time, dt: Time) -> PyTree:
    """One step of the classical Runge–Kutta 3/8 rule for y' = f(y, t) on a pytree state y.

    Fourth order: local error O(dt⁵), global error O(dt⁴) (paper 003, App. B.1).
    k₁ = f(y, t), k₂ = f(y + dt k₁/3, t + dt/3), k₃ = f(y + dt(k₂ − k₁/3), t + 2dt/3),
    k₄ = f(y + dt(k₁ − k₂ + k₃), t + dt);  y ← y + dt(k₁ + 3k₂ + 3k₃ + k₄)/8.
    """
    k1 = f(y, t)
    k2 = f(_step(y, dt, (1 / 3,), (k1,)), t + dt / 3)
    k3 = f(_step(y, dt, (-1 / 3, 1.0), (k1, k2)), t + 2 * dt / 3)
    k4 = f(_step(y, dt, (1.0, -1.0, 1.0), (k1, k2, k3)), t + dt)
    return _step(y, dt, (1 / 8, 3 / 8, 3 / 8, 1 / 8), (k1, k2, k3, k4))


def _step(y: PyTree, dt: Time, coeffs: tuple[float, ...], ks: tuple[PyTree, ...]) -> PyTree:
    """y + dt Σ_i c_i k_i, leaf by leaf."""

    def leaf(y0, *k):
        return y0 + dt * sum(c * ki for c, ki in zip(coeffs, k, strict=True))

    return jax.tree_util.tree_map(leaf, y, *ks)


def _check_steps(steps: int) -> int:
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer (static), got {steps!r}")
    return int(steps)


def _rk38_solve(
    f: Callable[[PyTree, jax.Array], PyTree], y0: PyTree, t0: Time, t1: Time, steps: int, dtype,
    keep_path: bool = False,
) -> PyTree:
    """Integrate y' = f(y, t) from t0 to t1 with `steps` uniform RK 3/8 steps inside one `lax.scan`.
    With `keep_path`, return (y1, states after each step stacked on a leading axis)."""
    steps = _check_steps(steps)
    t0, t1 = jnp.asarray(t0, dtype), jnp.asarray(t1, dtype)
    dt = (t1 - t0) / steps

    def body(y, k):
        y1 = rk38_step(f, y, t0 + k * dt, dt)  # t_k = t0 + k dt, no drift from accumulation
        return y1, (y1 if keep_path else None)

    y1, path = jax.lax.scan(body, y0, jnp.arange(steps, dtype=dtype))
    return (y1, path) if keep_path else y1


def ode(mu: VectorField, x0: jax.Array, t0: Time, t1: Time, steps: int) -> jax.Array:
    """Particles x0 `(n, d)` pushed along dx/dt = μ(x, t) from t0 to t1 (paper 003, eq. 3; App. B.1).

    RK4 (3/8 rule) with `steps` uniform steps: global error O(((t1 − t0)/steps)⁴).
    """
    drift = jax.vmap(mu, in_axes=(0, None))
    return _rk38_solve(drift, x0, t0, t1, steps, x0.dtype)


def ode_trajectory(mu: VectorField, x0: jax.Array, t0, t1, steps: int) -> tuple[jax.Array, jax.Array]:
    """The whole RK4 (3/8) path of `ode`: states (steps + 1, n, d) at times (steps + 1,), t0 first."""
    dtype = x0.dtype
    _, path = _rk38_solve(jax.vmap(mu, in_axes=(0, None)), x0, t0, t1, steps, dtype, keep_path=True)
    ts = jnp.linspace(jnp.asarray(t0, dtype), jnp.asarray(t1, dtype), _check_steps(steps) + 1)
    return jnp.concatenate([x0[None], path]), ts


def ode_with_logp(
    mu: VectorField,
    x0: jax.Array,
    logp0: jax.Array,
    t0: Time,
    t1: Time,
    steps: int,
    op: Backend = EXACT,
    key: jax.Array | None = None,
    chunk: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """(x1 `(n, d)`, logp1 `(n,)`): dx/dt = μ(x, t) together with the change of variables
    d/dt log p(X_t, t) = −div μ(X_t, t) (paper 003, eq. 64), by RK4 (3/8 rule), global error O(dt⁴).

    μ and div μ come from `value_and_divergence` (`op.divergence`; for the exact backends one linearisation
    of μ gives both). A stochastic backend (`op.stochastic`) needs `key`: it is split once into one probe key per
    particle, kept for the whole trajectory. The positions never see the probes and the RK update is linear
    in the divergence values, so each logp1 is an unbiased estimate of the exact-backend logp1.

    `chunk`: integrate the particles `chunk` at a time inside one `lax.map` (same results: particles are
    independent). On CPU about a thousand particles per pass keep the activations in cache, which is faster
    than one pass over a large batch; None integrates all `n` at once (best on accelerators).
    """
    n = x0.shape[0]
    keys = None
    if op.stochastic:
        if key is None:
            raise ValueError(f"{type(op).__name__} is a stochastic backend: ode_with_logp needs key=...")
        keys = jax.random.split(key, n)
    logp0 = jnp.asarray(logp0, x0.dtype)
    steps = _check_steps(steps)

    def solve(x0, logp0, keys):
        if keys is None:
            one = jax.vmap(lambda x, t: value_and_divergence(mu, x, t, op), in_axes=(0, None))
        else:
            one = jax.vmap(lambda x, t, k: value_and_divergence(mu, x, t, op, k), in_axes=(0, None, 0))

        def f(state, t):
            v, div = one(state[0], t) if keys is None else one(state[0], t, keys)
            return v, -div

        return _rk38_solve(f, (x0, logp0), t0, t1, steps, x0.dtype)

    if chunk is None or int(chunk) >= n:
        return solve(x0, logp0, keys)
    chunks = -(-n // int(chunk))
    size = -(-n // chunks)  # balanced chunks; the last is padded (padding particles are dropped)
    pad = chunks * size - n

    def split(a):
        a = jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)]) if pad else a
        return a.reshape((chunks, size) + a.shape[1:])

    args = (split(x0), split(logp0), None if keys is None else split(keys))
    x1, logp1 = jax.lax.map(lambda a: solve(*a), args)
    return x1.reshape((-1,) + x0.shape[1:])[:n], logp1.reshape(-1)[:n]


def value_and_divergence(mu: VectorField, x: jax.Array, t: Time, op: Backend = EXACT,
                         key: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """(μ(x, t), div_x μ(x, t)) at one point `x (d,)`. For `Exact` and `Auto` (whose divergence is `Exact`'s)
    one `jax.linearize` of μ gives both: the value and the d JVPs share the forward pass, where evaluating μ
    and then `op.divergence` would run it twice. Other backends (stochastic ones with `key`): μ(x, t) and
    `op.divergence`."""
    f = lambda z: mu(z, t)  # noqa: E731
    if isinstance(op, Exact | Auto):
        y, jvp = jax.linearize(f, x)
        return y, jnp.trace(basis_columns(jvp, x))
    return f(x), op.divergence(f, x, key)


def _times_sigma(S: jax.Array, v: jax.Array) -> jax.Array:
    """σ v for a batch of vectors v `(..., d)`, σ a scalar or a (d, d) matrix."""
    return S * v if S.ndim == 0 else v @ S.T


def euler_maruyama(
    mu: VectorField, sigma: Sigma, x0: jax.Array, key: jax.Array, t0: Time, t1: Time, steps: int
) -> jax.Array:
    """Particles x0 `(n, d)` pushed along dX = μ(X, t) dt + σ(t) dW from t0 to t1 > t0 (paper 003, App. B.1):
    X_{k+1} = X_k + μ(X_k, t_k) dt + σ(t_k) √dt ξ_k, ξ_k ~ N(0, I) i.i.d., `steps` uniform steps.

    Strong order 1/2 (order 1 for additive noise), weak order 1.
    """
    steps = _check_steps(steps)
    dtype = x0.dtype
    t0, t1 = jnp.asarray(t0, dtype), jnp.asarray(t1, dtype)
    dt = (t1 - t0) / steps
    drift = jax.vmap(mu, in_axes=(0, None))

    def body(x, inputs):
        k, key_k = inputs
        t = t0 + k * dt
        S = diffusion_at(sigma, t).astype(dtype)
        xi = jax.random.normal(key_k, x.shape, dtype)
        return x + drift(x, t) * dt + _times_sigma(S, xi) * jnp.sqrt(dt), None

    x1, _ = jax.lax.scan(body, x0, (jnp.arange(steps, dtype=dtype), jax.random.split(key, steps)))
    return x1


def probability_flow(mu_sde: VectorField, grad_V: ScoreField, sigma: Sigma) -> VectorField:
    """The probability-flow drift μ_ODE(x, t) = μ_SDE(x, t) − ½σσᵀ∇V(x, t) (paper 003, eq. 66): the ODE
    with the same marginals as the SDE, so its log-likelihood follows eq. (64). Exact, no discretisation."""

    def mu_ode(x: jax.Array, t: Time) -> jax.Array:
        g = grad_V(x, t)
        S = diffusion_at(sigma, t).astype(g.dtype)
        sst_g = S**2 * g if S.ndim == 0 else S @ (S.T @ g)
        return mu_sde(x, t) - 0.5 * sst_g

    return mu_ode
