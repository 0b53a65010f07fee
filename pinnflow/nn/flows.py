"""Normalizing flows T_θ with exact log-determinants, as pure functions of a parameter pytree (paper 004 §4.1).

A flow pushes the reference p = N(0, I) forward: for one point x (d,), `flow.apply(params, x)` returns
(T_θ(x), log|det ∂T_θ/∂x|), so the push-forward density at the image is

    log ρ_θ(T_θ x) = log p(x) − log|det ∂T_θ(x)|.

Registered (`FLOWS`, built from a `FlowConfig`):

- `planar`: T = f_K ∘ … ∘ f_1, f_k(x) = x + h(w_kᵀx + b_k) û_k (Rezende & Mohamed 2015), with
  log|det ∂f_k| = log|1 + h′(w_kᵀx_{k−1} + b_k) w_kᵀû_k| at the layer's *input* x_{k−1} (paper 004 eqs. 39–40
  print the wrong sign, the output instead of the input, and drop b_k; see the papers' README). f_k is
  invertible iff w_kᵀû_k ≥ −1, so û is a reparametrisation of a free u:
  û = u + (m(wᵀu) − wᵀu) w/‖w‖², m(a) = −1 + softplus(a), which gives wᵀû = m(wᵀu) > −1 for every u.
  Identity initialisation: w small and random, b = 0, u = log(e − 1) w/‖w‖² (so m(wᵀu) = 0 and û = 0).
- `affine`: T(x) = A x + c, log|det A|; the exact Gaussian family (a special case of the scheme's flows).

User-given layer parameters enter through `planar_params(w, u_hat, b)` / `affine_params(A, c)`, which raise
`ValueError` naming the layer whose invertibility constraint fails.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from pinnflow.core.config import Section, check_name, check_positive_ints, is_positive, need
from pinnflow.core.registry import Registry

__all__ = ["Flow", "FlowConfig", "FLOWS", "PLANAR_NONLINEARITIES", "PlanarFlow", "AffineFlow", "make_flow",
           "planar_params", "affine_params", "IDENTITY_U"]

Params = Any
IDENTITY_U = math.log(math.e - 1.0)
"""wᵀu at which m(wᵀu) = −1 + softplus(wᵀu) = 0, i.e. û = 0: the identity layer."""

PLANAR_NONLINEARITIES: dict[str, tuple[Callable, Callable]] = {
    "tanh": (jnp.tanh, lambda a: 1.0 - jnp.tanh(a) ** 2),
}
"""h and h′ of a planar layer by name."""


class Flow(Protocol):
    """A normalizing flow over R^d: `init(key)` gives the identity map's parameters, `apply(params, x)` returns
    (T(x), log|det ∂T(x)|) for one point, `check(params)` raises `ValueError` if `params` are not a valid
    (invertible, finite) parameter set of this flow."""

    dim: int

    def init(self, key: jax.Array) -> Params: ...

    def apply(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]: ...

    def check(self, params: Params) -> None: ...


def _check_arrays(kind: str, params: Params, shapes: dict[str, tuple[int, ...]]) -> None:
    """Each named array of `params` present, of its shape and finite; `ValueError` naming the first that is not."""
    for nm, shape in shapes.items():
        if nm not in params:
            raise ValueError(f"{kind} flow parameters lack {nm!r} (need {', '.join(shapes)})")
        if np.shape(params[nm]) != shape:
            raise ValueError(f"{kind} flow parameter {nm} has shape {np.shape(params[nm])}, expected {shape}")
        if not np.all(np.isfinite(np.asarray(params[nm]))):
            raise ValueError(f"{kind} flow parameter {nm} is not finite")


def _softplus(a):
    return jnp.logaddexp(a, 0.0)


def _u_hat(w: jax.Array, u: jax.Array) -> jax.Array:
    """û = u + (m(wᵀu) − wᵀu) w/‖w‖² with m(a) = −1 + softplus(a) (Rezende & Mohamed 2015, App. A.1); a layer
    with w = 0 is a shift x + h(b)u and is left as it is."""
    wu = w @ u
    ww = w @ w
    safe = jnp.where(ww > 0, ww, 1.0)
    return u + jnp.where(ww > 0, (-1.0 + _softplus(wu) - wu) / safe, 0.0) * w


@dataclass(frozen=True)
class PlanarFlow:
    """K planar layers over R^d with nonlinearity `activation` (a name in `PLANAR_NONLINEARITIES`); params
    {"w": (K, d), "u": (K, d) (free; û from `_u_hat`), "b": (K,)}. `init_scale`: the std of w at init is
    init_scale/√d."""

    dim: int
    layers: int = 60
    activation: str = "tanh"
    init_scale: float = 1.0

    def init(self, key: jax.Array) -> Params:
        w = self.init_scale / math.sqrt(self.dim) * jax.random.normal(key, (self.layers, self.dim))
        u = IDENTITY_U * w / jnp.sum(w * w, axis=1, keepdims=True)
        return {"w": w, "u": u, "b": jnp.zeros((self.layers,), w.dtype)}

    def apply(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h, dh = PLANAR_NONLINEARITIES[self.activation]

        def layer(carry, p):
            x, logdet = carry
            w, u, b = p
            u = _u_hat(w, u)
            a = w @ x + b  # at the layer's input x_{k-1}
            logdet = logdet + jnp.log(jnp.abs(1.0 + dh(a) * (w @ u)))
            return (x + h(a) * u, logdet), None

        (y, logdet), _ = jax.lax.scan(layer, (x, jnp.zeros((), x.dtype)),
                                      (params["w"], params["u"], params["b"]))
        return y, logdet

    def layer_params(self, params: Params) -> dict[str, np.ndarray]:
        """The layers' actual (w, û, b) and wᵀû (≥ −1 by construction)."""
        w, u = np.asarray(params["w"]), np.asarray(params["u"])
        uh = np.asarray(jax.vmap(_u_hat)(jnp.asarray(w), jnp.asarray(u)))
        return {"w": w, "u_hat": uh, "b": np.asarray(params["b"]), "wu": np.sum(w * uh, axis=1)}

    def check(self, params: Params) -> None:
        K, d = self.layers, self.dim
        _check_arrays("planar", params, {"w": (K, d), "u": (K, d), "b": (K,)})


def planar_params(w, u_hat, b) -> Params:
    """The free parameters of planar layers with the given actual (w_k, û_k, b_k), shapes (K, d), (K, d), (K,).
    Each layer must satisfy w_kᵀû_k > −1 (invertibility; = −1 is singular), otherwise `ValueError` names the
    layer."""
    w, uh, b = (np.asarray(v, dtype=np.float64) for v in (w, u_hat, b))
    if w.ndim != 2 or uh.shape != w.shape or b.shape != (w.shape[0],):
        raise ValueError(f"planar layers need w (K, d), u_hat (K, d), b (K,); got {w.shape}, {uh.shape}, {b.shape}")
    for nm, v in (("w", w), ("u_hat", uh), ("b", b)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"planar layer parameter {nm} is not finite")
    s = np.sum(w * uh, axis=1)
    bad = np.flatnonzero(s <= -1.0)
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"planar layer {k} is not invertible: w·û = {s[k]:.6g} must be > -1 "
                         f"({bad.size} layer(s) violate it: {bad[:10].tolist()})")
    ww = np.sum(w * w, axis=1)  # a layer with w = 0 is a shift; the reparametrisation leaves its u = û
    a = np.log(np.expm1(s + 1.0))  # m(a) = s
    u = uh + np.where(ww > 0, (a - s) / np.where(ww > 0, ww, 1.0), 0.0)[:, None] * w
    return {"w": jnp.asarray(w), "u": jnp.asarray(u), "b": jnp.asarray(b)}


@dataclass(frozen=True)
class AffineFlow:
    """T(x) = A x + c over R^d; params {"A": (d, d), "c": (d,)}; identity init. `check` rejects a singular A."""

    dim: int

    def init(self, key: jax.Array) -> Params:
        del key
        return {"A": jnp.eye(self.dim), "c": jnp.zeros((self.dim,))}

    def apply(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return params["A"] @ x + params["c"], jnp.linalg.slogdet(params["A"])[1]

    def check(self, params: Params) -> None:
        d = self.dim
        _check_arrays("affine", params, {"A": (d, d), "c": (d,)})
        s = np.linalg.svd(np.asarray(params["A"], dtype=np.float64), compute_uv=False)
        if s[-1] <= 1e-12 * max(s[0], 1e-300):
            raise ValueError(f"affine flow is not invertible: A is singular (smallest singular value {s[-1]:.3g})")


def affine_params(A, c) -> Params:
    """Parameters of the affine flow x ↦ A x + c; a singular A raises `ValueError`."""
    A, c = np.asarray(A, dtype=np.float64), np.asarray(c, dtype=np.float64)
    params = {"A": jnp.asarray(A), "c": jnp.asarray(c)}
    AffineFlow(A.shape[0] if A.ndim == 2 else 0).check(params)
    return params


@dataclass
class FlowConfig(Section):
    """The normalizing flow (paper 004 §4.1, §6: planar, length 60, tanh). `kind`: a name in `FLOWS`;
    `layers`, `activation` and `init_scale` (std of w at init ·√d) apply to planar flows."""

    kind: str = "planar"
    layers: int = 60
    activation: str = "tanh"
    init_scale: float = 1.0

    def validate(self, where: str = "flow.") -> None:
        check_name(FLOWS, self.kind, f"{where}kind")
        check_positive_ints(self, where, ("layers",))
        need(self.activation in PLANAR_NONLINEARITIES, f"{where}activation",
             f"unknown planar nonlinearity {self.activation!r}; available: {', '.join(PLANAR_NONLINEARITIES)}")
        need(is_positive(self.init_scale), f"{where}init_scale", f"must be > 0, got {self.init_scale!r}")


FLOWS: Registry[Flow] = Registry("flow")


@FLOWS.register(name="planar")
def _planar(d: int, cfg: FlowConfig) -> Flow:
    return PlanarFlow(d, cfg.layers, cfg.activation, float(cfg.init_scale))


@FLOWS.register(name="affine")
def _affine(d: int, cfg: FlowConfig) -> Flow:
    del cfg
    return AffineFlow(d)


def make_flow(d: int, cfg: FlowConfig) -> Flow:
    """The flow `cfg.kind` over R^d."""
    return FLOWS.factory(cfg.kind)(d, cfg)
