"""Forward Laplacian: value, first derivatives and a Laplacian-type trace of a scalar field in one pass.

The second-order Taylor coefficients of f along k directions q_1..q_k are propagated *forward* through
the computation, jointly for all directions (the idea of Li et al., "A computational framework for neural
network-based variational Monte Carlo with Forward Laplacian", 2023). Every intermediate value y carries

    y,   J = (∂_{q_1} y, …, ∂_{q_k} y)   (shape (k, *y.shape)),   L = Σ_{i≤m} w_i ∂²_{q_i} y   (shape y.shape)

and each primitive maps these triples to the output's triple:

- linear primitives (add, reshape, reduce_sum, concatenate, …) apply themselves to J (row-wise) and to L;
- products (mul, dot_general) add the cross term 2 Σ_i w_i J_a,i J_b,i to L;
- elementwise nonlinearities use f'(y) and f''(y) once: J ↦ f'J, L ↦ f'L + f''Σ_i w_i J_i²;
- anything else falls back to the general Taylor rule with JAX's own `jvp` (custom JVP rules respected).

Only the first `m` directions enter L (weights `w`, default 1); the others get first derivatives only,
which is how ∂_t rides along with ∇_x. Under `vmap` over collocation points, everything that does not
depend on the point (e.g. the input layer's Jacobian W·q_i) is computed once for the whole batch.

Cost: about (k + 2) forward passes of matrix products, against ~3k for forward-over-reverse Hessian traces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.extend.core as jcore
import jax.numpy as jnp

__all__ = ["Jet", "forward_laplacian", "value_grad_laplacian"]


class Jet(NamedTuple):
    """A value with its directional first derivatives `J` (k rows) and weighted second-order trace `L`.
    `J`/`L` are None where they are identically zero (the value does not depend on the inputs)."""

    value: jax.Array
    J: jax.Array | None
    L: jax.Array | None


class _Ctx(NamedTuple):
    m: int  # directions 0..m-1 enter the second-order trace
    w: jax.Array | None  # their weights (None: all ones)

    def wsum(self, s: jax.Array) -> jax.Array:
        """Σ_i w_i s_i over the leading direction axis of a stack of second-order terms (i < m)."""
        if self.w is None:
            return jnp.sum(s, axis=0)
        return jnp.sum(self.w.reshape((-1,) + (1,) * (s.ndim - 1)).astype(s.dtype) * s, axis=0)

    def qsum(self, a: jax.Array, b: jax.Array) -> jax.Array:
        """Σ_{i<m} w_i a_i b_i over the leading direction axis (broadcasting the rest)."""
        return self.wsum(a[: self.m] * b[: self.m])


def _differentiable(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def _zeros_J(k: int, x: jax.Array) -> jax.Array:
    return jnp.zeros((k,) + jnp.shape(x), jnp.result_type(x))


def _add_opt(a, b):
    return b if a is None else (a if b is None else a + b)


# ---------------------------------------------------------------------------------------------------
# Rules. Each takes (ctx, k, jets, bind) where bind(*values) applies the primitive with its parameters,
# and returns the output Jet (single-output primitives only; others use the fallback).
# ---------------------------------------------------------------------------------------------------

_LINEAR = {
    "neg", "concatenate", "reduce_sum", "broadcast_in_dim", "reshape", "squeeze",
    "expand_dims", "transpose", "convert_element_type", "copy", "copy_p", "rev", "cumsum", "slice",
    "reduce_precision", "real", "imag", "conj",
}
# Linear in the leading operand(s) given the others (indices, predicates, padding values held fixed).
_LINEAR_IN = {"select_n": "cases", "dynamic_slice": (0,), "gather": (0,), "pad": (0,)}
_ELEMENTWISE = {
    "tanh", "logistic", "exp", "exp2", "log", "log1p", "expm1", "sin", "cos", "tan", "sqrt", "rsqrt", "cbrt",
    "integer_pow", "square", "erf", "erfc", "erf_inv", "atan", "asin", "acos", "sinh", "cosh", "asinh", "acosh",
    "atanh", "lgamma", "digamma", "abs",
}


def _linear(ctx, k, jets, bind, slots=None):
    """A map linear in the operands at `slots` (all by default) with the others held fixed."""
    slots = range(len(jets)) if slots is None else slots
    varying = [i for i in slots if jets[i].J is not None]
    out = bind(*[j.value for j in jets])
    if not varying:
        return Jet(out, None, None)

    def apply(parts):  # the linear part: fixed operands keep values, linear slots take `parts`
        args = [j.value for j in jets]
        for i in slots:
            args[i] = parts[i]
        return bind(*args)

    Jparts = {i: (jets[i].J if jets[i].J is not None else _zeros_J(k, jets[i].value)) for i in slots}
    J = jax.vmap(lambda *p: apply(dict(zip(slots, p, strict=True))))(*[Jparts[i] for i in slots])
    if all(jets[i].L is None for i in slots):
        return Jet(out, J, None)
    Lparts = {i: (jets[i].L if jets[i].L is not None else jnp.zeros_like(jets[i].value)) for i in slots}
    return Jet(out, J, apply(Lparts))


def _add_sub(ctx, k, jets, bind, sign: float):
    """a ± b without materialising zero tangents for a constant operand."""
    a, b = jets
    out = bind(a.value, b.value)
    shape = jnp.shape(out)

    def fit(x, lead):  # broadcast a (lead + operand shape) array to (lead + output shape)
        if x.shape[len(lead):] == shape:
            return x
        return jnp.broadcast_to(x.reshape(lead + (1,) * (len(shape) - x.ndim + len(lead)) + x.shape[len(lead):]),
                                lead + shape)

    J = L = None
    for jet, s in ((a, 1.0), (b, sign)):
        if jet.J is not None:
            J = _add_opt(J, fit(jet.J if s == 1.0 else -jet.J, (k,)))
        if jet.L is not None:
            L = _add_opt(L, fit(jet.L if s == 1.0 else -jet.L, ()))
    return Jet(out, J, L)


def _bilinear(ctx, k, jets, bind):
    """mul / dot_general: product rule, with the cross term 2Σ w_i (J_a,i ⊗ J_b,i) in L."""
    a, b = jets
    out = bind(a.value, b.value)
    if a.J is None and b.J is None:
        return Jet(out, None, None)
    J = L = None
    if a.J is not None:
        J = jax.vmap(lambda ja: bind(ja, b.value))(a.J)
        L = None if a.L is None else bind(a.L, b.value)
    if b.J is not None:
        J = _add_opt(J, jax.vmap(lambda jb: bind(a.value, jb))(b.J))
        L = _add_opt(L, None if b.L is None else bind(a.value, b.L))
    if a.J is not None and b.J is not None and ctx.m > 0:
        L = _add_opt(L, 2 * ctx.wsum(jax.vmap(bind)(a.J[: ctx.m], b.J[: ctx.m])))
    return Jet(out, J, L)


def _elementwise(ctx, k, jets, bind):
    """Unary elementwise f: J ↦ f'(y)J, L ↦ f'(y)L + f''(y) Σ w_i J_i²."""
    (a,) = jets
    if a.J is None:
        return Jet(bind(a.value), None, None)
    ones = jnp.ones_like(a.value)
    d1 = lambda v: jax.jvp(bind, (v,), (ones,))  # noqa: E731  (f(v), f'(v))
    if ctx.m == 0:  # first order only
        out, f1 = d1(a.value)
        return Jet(out, f1 * a.J, None if a.L is None else f1 * a.L)
    (out, f1), (_, f2) = jax.jvp(d1, (a.value,), (ones,))
    J = f1 * a.J
    L = f2 * ctx.qsum(a.J, a.J)
    if a.L is not None:
        L = L + f1 * a.L
    return Jet(out, J, L)


def _general(ctx, k, jets, bind, multiple_results: bool):
    """Any primitive: first order by vmapped JVPs, second order by JVP-of-JVP per direction (Taylor rule)."""
    values = tuple(j.value for j in jets)
    idx = [i for i, j in enumerate(jets) if j.J is not None and _differentiable(j.value)]
    out = bind(*values)
    outs = list(out) if multiple_results else [out]
    keep = [n for n, o in enumerate(outs) if _differentiable(o)]
    res = [Jet(o, None, None) for o in outs]
    if not idx or not keep:
        return res

    def f(*vs):  # the primitive's differentiable outputs as a function of its varying operands
        args = list(values)
        for i, v in zip(idx, vs, strict=True):
            args[i] = v
        r = bind(*args)
        r = tuple(r) if multiple_results else (r,)
        return tuple(r[n] for n in keep)

    prim = tuple(values[i] for i in idx)
    first = lambda *ts: jax.jvp(f, prim, ts)[1]  # noqa: E731
    Js = jax.vmap(first)(*[jets[i].J for i in idx])

    def second(*ts):
        return jax.jvp(lambda *p: jax.jvp(f, p, ts)[1], prim, ts)[1]

    Ls = [None] * len(keep)
    if ctx.m > 0:
        sec = jax.vmap(second)(*[jets[i].J[: ctx.m] for i in idx])
        Ls = [ctx.wsum(s) for s in sec]
    if any(jets[i].L is not None for i in idx):
        lt = tuple(jets[i].L if jets[i].L is not None else jnp.zeros_like(values[i]) for i in idx)
        Ls = [_add_opt(a, b) for a, b in zip(Ls, first(*lt), strict=True)]
    for n, Jo, Lo in zip(keep, Js, Ls, strict=True):
        res[n] = Jet(outs[n], Jo, Lo)
    return res


# ---------------------------------------------------------------------------------------------------
# The interpreter
# ---------------------------------------------------------------------------------------------------

_CALLS = {"pjit", "jit", "closed_call", "core_call", "remat", "checkpoint"}


def _read(env, v):
    if isinstance(v, jcore.Literal):
        return Jet(v.val, None, None)
    return env[v]


def _eval(jaxpr: jcore.Jaxpr, consts, args: list[Jet], ctx: _Ctx, k: int) -> list[Jet]:
    env: dict = {}
    for v, c in zip(jaxpr.constvars, consts, strict=True):
        env[v] = Jet(c, None, None)
    for v, a in zip(jaxpr.invars, args, strict=True):
        env[v] = a
    for eqn in jaxpr.eqns:
        jets = [_read(env, v) for v in eqn.invars]
        name = eqn.primitive.name
        params = eqn.primitive.get_bind_params(eqn.params)

        def bind(*vals, _p=eqn.primitive, _k=params):
            return _p.bind(*vals, **_k)

        if all(j.J is None for j in jets):
            out = bind(*[j.value for j in jets])
            outs = [Jet(o, None, None) for o in (out if eqn.primitive.multiple_results else [out])]
        elif name == "stop_gradient":
            outs = [Jet(bind(jets[0].value), None, None)]
        elif name in _CALLS and "jaxpr" in eqn.params:
            sub = eqn.params["jaxpr"]
            if isinstance(sub, jcore.ClosedJaxpr):
                outs = _eval(sub.jaxpr, sub.consts, jets, ctx, k)
            else:
                outs = _eval(sub, [], jets, ctx, k)
        elif name in ("add", "add_any", "sub") and len(jets) == 2:
            outs = [_add_sub(ctx, k, jets, bind, -1.0 if name == "sub" else 1.0)]
        elif name in _LINEAR:
            outs = [_linear(ctx, k, jets, bind)]
        elif name in _LINEAR_IN:
            slots = _LINEAR_IN[name]
            slots = tuple(range(1, len(jets))) if slots == "cases" else slots
            fixed_vary = any(jets[i].J is not None for i in range(len(jets)) if i not in slots)
            outs = (_general(ctx, k, jets, bind, False) if fixed_vary else [_linear(ctx, k, jets, bind, slots)])
        elif name in ("mul", "dot_general") and len(jets) == 2:
            outs = [_bilinear(ctx, k, jets, bind)]
        elif name in _ELEMENTWISE and len(jets) == 1:
            outs = [_elementwise(ctx, k, jets, bind)]
        else:
            outs = _general(ctx, k, jets, bind, eqn.primitive.multiple_results)
        for v, o in zip(eqn.outvars, outs, strict=True):
            env[v] = o if _differentiable(o.value) else Jet(o.value, None, None)
    return [_read(env, v) for v in jaxpr.outvars]


def forward_laplacian(
    f: Callable[..., jax.Array], args: tuple, tangents: tuple, m: int, weights: jax.Array | None = None
) -> Jet:
    """Propagate `f(*args)` with per-argument tangents `tangents[i]: (k, *args[i].shape)` (None: constant).

    The first `m` of the k directions enter the second-order trace, with `weights` (default 1).
    `f` must return a single array. Closed-over arrays (e.g. network parameters under `jax.grad`) are fine.
    """
    closed = jax.make_jaxpr(f)(*args)
    ks = {t.shape[0] for t in tangents if t is not None}
    if len(ks) != 1:
        raise ValueError(f"all tangents need the same number of directions, got {sorted(ks)}")
    k = ks.pop()
    ctx = _Ctx(m, None if weights is None else jnp.asarray(weights))
    leaves = [Jet(a, t, None) for a, t in zip(args, tangents, strict=True)]
    (out,) = _eval(closed.jaxpr, closed.consts, leaves, ctx, k)
    J = _zeros_J(k, out.value) if out.J is None else out.J
    L = jnp.zeros_like(out.value) if out.L is None else out.L
    return Jet(out.value, J, L)


def value_grad_laplacian(f: Callable[[jax.Array], jax.Array], x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(f(x), ∇f(x), Δf(x)) of a scalar field of one point `x: (d,)`, in one forward pass."""
    eye = jnp.eye(x.shape[-1], dtype=x.dtype)
    out = forward_laplacian(f, (x,), (eye,), m=x.shape[-1])
    return out.value, out.J, out.L
