"""The probability-flow velocity v_t = b_t − D_t s_t (paper 000 eq. 5; Algorithm 1 prints b + D s, which is
wrong) with what the trajectories need from it, at every particle: v, its divergence and s·v.

    ∇·v = ∇·b − Tr(D ∇s)            (D constant in x, as `FokkerPlanckProblem` has it)

∇·b comes from the operator backend's divergence of the drift; Tr(D∇s) from the score source: a score model
(`score_and_trace`, e.g. −Tr(D∇²U) by a Laplacian for s = −∇U) or the problem's exact score (the backend's
divergence of x ↦ D s(x, t)). d/dt log ρ_t(X_t) = −∇·v(X_t) along a trajectory (paper 000 eq. 7, App. A.7).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from pinnflow.fokker_planck import FokkerPlanckProblem
from pinnflow.operators import Backend
from pinnflow.sbtm.models import trace_of

__all__ = ["FlowValues", "Flow", "ScoreAndTrace", "diffusion_value", "make_flow", "exact_score_source"]

ScoreAndTrace = Callable[[jax.Array, jax.Array, jax.Array, jax.Array | None], tuple[jax.Array, jax.Array]]
"""(x (d,), t, D, key) -> (s(x), Tr(D∇s(x))), D a scalar or a (d, d) matrix."""


class FlowValues(NamedTuple):
    """At each of n particles: v (n, d), ∇·v (n,), s·v (n,)."""

    v: jax.Array
    div: jax.Array
    s_dot_v: jax.Array


Flow = Callable[[jax.Array, jax.Array, jax.Array], FlowValues]  # (X (n, d), t, key) -> FlowValues


def diffusion_value(problem: FokkerPlanckProblem, t: jax.Array, dtype) -> jax.Array:
    """D(t) as given: a scalar (D·I) or a (d, d) matrix, in `dtype`."""
    D = problem.D(t) if callable(problem.D) else problem.D
    return jnp.asarray(D, dtype=dtype)


def exact_score_source(problem: FokkerPlanckProblem, op: Backend) -> ScoreAndTrace:
    """The problem's exact score s(x, t) = ∇log ρ_t(x) with Tr(D∇s) by the backend (for testing transport)."""
    if problem.score is None:
        raise ValueError(f"score='exact': problem {problem.name!r} has no exact score")

    def source(x, t, D, key):
        f = lambda y: problem.score(y, t)  # noqa: E731
        return f(x), trace_of(op, f, x, D, key)

    return source


def make_flow(problem: FokkerPlanckProblem, source: ScoreAndTrace, op: Backend) -> Flow:
    """(X (n, d), t, key) -> FlowValues of v = b − D s: ∇·b by `op`, s and Tr(D∇s) from `source` (the same
    backend's traces). A stochastic `op` gets independent probes per particle and per term."""

    def point(x, t, key):
        kb, ks = (None, None) if key is None else tuple(jax.random.split(key))
        D = diffusion_value(problem, t, x.dtype)
        s, tr = source(x, t, D, ks)
        v = problem.drift(x, t) - (D * s if D.ndim == 0 else D @ s)
        div_b = op.divergence(lambda y: problem.drift(y, t), x, kb)
        return v, div_b - tr, s @ v

    def flow(X: jax.Array, t: jax.Array, key: jax.Array) -> FlowValues:
        if op.stochastic:
            v, div, sv = jax.vmap(point, in_axes=(0, None, 0))(X, t, jax.random.split(key, X.shape[0]))
        else:
            v, div, sv = jax.vmap(lambda x: point(x, t, None))(X)
        return FlowValues(v, div, sv)

    return flow
