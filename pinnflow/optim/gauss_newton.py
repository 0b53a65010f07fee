"""Gauss–Newton fine-tuning of a trained run (paper 003 §4, Table 3).

With r̃(θ) the stacked residual vector of the loss over N collocation points (each term times
√(weight/N), so L(θ) = ‖r̃‖²) and J = ∂r̃/∂θ, one step is

    θ ← θ − η δ,    δ = (JᵀJ + εI)⁻¹ Jᵀr̃    (G = JᵀJ is the Gramian; ∇L = 2Jᵀr̃, the 2 is absorbed in η)

solved either matrix-free by conjugate gradients (G v by one JVP and one VJP, warm-started from the last
direction) or in sample space, δ = Jᵀ(JJᵀ + εI)⁻¹ r̃ (Woodbury), with J formed row by row (one gradient
per point) and the N×N system solved by Cholesky. The step size η comes from a line search judged on a
held-out batch; a step that does not lower the held-out loss, or is not finite, is rejected (θ unchanged)
and, with Levenberg–Marquardt adaptation, ε grows. The residual is any `point_residual(params, x, t) -> (k,)`;
the PINN solver's fine-tuning driver (`pinnflow.pinn.finetune`) builds it from a loss's named terms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from pinnflow.core.config import Section, check_name, check_positive_ints, is_positive, need
from pinnflow.core.precision import PRECISIONS
from pinnflow.core.registry import Registry
from pinnflow.optim.linsolve import cg, cholesky_solve, gram

__all__ = ["GaussNewtonConfig", "GNState", "make_step", "choose_solver", "SOLVERS", "LINE_SEARCHES",
           "best_on_grid", "armijo", "line_search"]

SOLVERS: Registry = Registry("Gauss-Newton solver")
"""Direction solvers `(jvp, vjp, r, g, rows, damping, x0, gn) -> (δ, iterations)`; `gn.solver` also takes "auto"."""

LINE_SEARCHES: Registry = Registry("line search")
"""Step-size rules `(trial losses, η grid, L0, slope, c) -> (index, admissible)` over η = 2^-k."""


@dataclass
class GaussNewtonConfig(Section):
    """Gauss–Newton fine-tuning (paper 003 §4): θ ← θ − η (G + εI)⁻¹ Jᵀr with G = JᵀJ."""

    # Defaults = Table 3's cpu setting, measured to cut 1 − ESS 10× on GMM after 40k Adam steps (20 steps at
    # ε = 1e-5, the old defaults, cut it 3× from the demo run: issue 17)
    steps: int = 40
    solver: str = "auto"  # a name in SOLVERS ("cg" matrix-free, "sample-space" Woodbury N×N), or "auto"
    damping: float = 1e-4  # initial ε (adapted with adapt_damping); the paper's Table 3 used 1e-5
    adapt_damping: bool = True  # Levenberg–Marquardt: shrink ε after full steps, grow it after rejections
    damping_up: float = 10.0  # ε ← ε·damping_up after a rejected step (η = 0)
    damping_down: float = 0.5  # ε ← ε·damping_down after a full step (η = 1)
    damping_min: float = 1e-12  # the adapted ε stays in [damping_min, damping_max]
    damping_max: float = 1e6
    cg_iters: int = 200
    cg_tol: float = 1e-10
    batch_size: int = 4096  # collocation points N of the Gramian
    val_batch_size: int = 4096  # held-out points on which the line search judges a step
    resample_every: int = 1  # draw a fresh batch every k steps
    line_search: str = "grid"  # a name in LINE_SEARCHES: "grid" (best of η = 2^-k), "armijo" (first sufficient)
    ls_steps: int = 12
    armijo_c: float = 1e-4  # sufficient decrease L(θ − ηδ) ≤ L0 − c·η·slope of the "armijo" rule
    precision: str | None = "float64"  # float32 Gramians lose their small eigenvalues; null: the run's
    checkpoint_every: int = 5
    memory_mb: float = 2000.0  # "auto" uses the sample-space solver only if J (N×p) fits in this

    def validate(self, where: str = "gn.") -> None:
        check_positive_ints(self, where, ("steps", "cg_iters", "batch_size", "val_batch_size", "resample_every",
                                          "ls_steps", "checkpoint_every"))
        need(self.solver == "auto" or self.solver in SOLVERS, f"{where}solver",
             f"unknown solver {self.solver!r}; available: auto, {', '.join(SOLVERS.names())}")
        check_name(LINE_SEARCHES, self.line_search, f"{where}line_search")
        for k in ("damping", "cg_tol", "memory_mb", "damping_up", "damping_down", "damping_min", "damping_max",
                  "armijo_c"):
            need(is_positive(getattr(self, k)), f"{where}{k}", f"must be > 0, got {getattr(self, k)!r}")
        need(self.damping_min <= self.damping_max, f"{where}damping_min", "must be <= damping_max")
        need(self.precision is None or self.precision in PRECISIONS, f"{where}precision",
             f"null or one of {PRECISIONS}, got {self.precision!r}")


class GNState(NamedTuple):
    """Solver state carried between steps."""

    direction: jax.Array  # last δ (warm start of CG)
    damping: jax.Array  # ε


def choose_solver(gn: GaussNewtonConfig, n_rows: int, n_params: int, itemsize: int) -> str:
    """"sample-space" when the rows of J are fewer than the parameters and J fits in `gn.memory_mb`."""
    if gn.solver != "auto":
        return gn.solver
    fits = n_rows * n_params * itemsize / 2**20 <= gn.memory_mb
    return "sample-space" if n_rows < n_params and fits else "cg"


@SOLVERS.register(name="cg")
def _cg_direction(jvp, vjp, r, g, rows: Callable, damping, x0, gn: GaussNewtonConfig):
    """(JᵀJ + εI) δ = Jᵀr matrix-free (JᵀJ v by one JVP and one VJP), CG warm-started from the last δ."""
    del r, rows
    return cg(lambda v: vjp(jvp(v))[0] + damping * v, g, x0=x0, maxiter=gn.cg_iters, tol=gn.cg_tol)


@SOLVERS.register(name="sample-space")
def _sample_space_direction(jvp, vjp, r, g, rows: Callable, damping, x0, gn: GaussNewtonConfig):
    """δ = Jᵀ(JJᵀ + εI)⁻¹ r (Woodbury) with J formed one gradient per point, the N×N system by Cholesky."""
    del jvp, vjp, g, x0, gn
    J = rows()
    K = gram(J) + damping * jnp.eye(J.shape[0], dtype=J.dtype)
    return J.T @ cholesky_solve(K, r), jnp.asarray(0)


@LINE_SEARCHES.register(name="grid")
def best_on_grid(trial, etas, L0, slope, c):
    """The η of the grid with the lowest finite trial loss below L0."""
    del etas, slope, c
    ok = jnp.isfinite(trial) & (trial < L0)
    idx = jnp.argmin(jnp.where(ok, trial, jnp.inf))
    return idx, ok[idx]


@LINE_SEARCHES.register(name="armijo")
def armijo(trial, etas, L0, slope, c):
    """The largest η of the grid with sufficient decrease L(θ − ηδ) ≤ L0 − c·η·slope (Armijo backtracking)."""
    ok = jnp.isfinite(trial) & (trial < L0) & (trial <= L0 - c * etas * slope)
    idx = jnp.argmax(ok)
    return idx, ok[idx]


def line_search(loss_at, theta, delta, L0, ls_steps: int, rule: str, slope, c: float = 1e-4):
    """Try η = 1, 1/2, …, 2^-(ls_steps-1) and pick one by `rule` (a name in LINE_SEARCHES: `(trial losses, η
    grid, L0, slope, c) -> (index, admissible)`). Returns (η, L(θ − ηδ)); η = 0 and L0 when no finite trial
    lowers the loss."""
    etas = 0.5 ** jnp.arange(ls_steps, dtype=theta.dtype)
    trial = jax.lax.map(lambda eta: loss_at(theta - eta * delta), etas)
    idx, accept = LINE_SEARCHES.factory(rule)(trial, etas, L0, slope, c)
    return jnp.where(accept, etas[idx], 0.0), jnp.where(accept, trial[idx], L0)


def make_step(point_residual, unravel, gn: GaussNewtonConfig, solver: str, shard=lambda a: a):
    """The jitted Gauss–Newton step (theta, state, xs, ts, xv, tv) -> (theta, state, info) for the residual
    `point_residual(params, x, t) -> (k,)` (params = unravel(theta)) on the batch (xs, ts), judged on the
    held-out batch (xv, tv). `shard` constrains the batches (leading axis) to be split across devices, so the
    Jacobian products, the Gramian and the line-search losses are computed data-parallel. Also returns the
    jitted loss (theta, xs, ts) -> ‖r̃‖²."""
    direction_fn = SOLVERS.factory(solver)

    def residuals(theta, xs, ts):
        params = unravel(theta)
        r = jax.vmap(lambda x, t: point_residual(params, x, t))(xs, ts)
        return r.ravel() / jnp.sqrt(xs.shape[0])

    def loss(theta, xs, ts):
        r = residuals(theta, xs, ts)
        return r @ r

    def jacobian_rows(theta, xs, ts):
        rows = jax.vmap(jax.jacrev(lambda th, x, t: point_residual(unravel(th), x, t)),
                        in_axes=(None, 0, 0))(theta, xs, ts)
        return rows.reshape(-1, theta.shape[0]) / jnp.sqrt(xs.shape[0])

    def step(theta, state: GNState, xs, ts, xv, tv):
        xs, ts, xv, tv = (shard(a) for a in (xs, ts, xv, tv))
        r, jvp = jax.linearize(lambda th: residuals(th, xs, ts), theta)
        vjp = jax.linear_transpose(jvp, theta)
        g = vjp(r)[0]
        delta, iters = direction_fn(jvp, vjp, r, g, lambda: jacobian_rows(theta, xs, ts), state.damping,
                                    state.direction, gn)
        L0 = loss(theta, xv, tv)
        eta, L1 = line_search(lambda th: loss(th, xv, tv), theta, delta, L0, gn.ls_steps, gn.line_search,
                              2 * g @ delta, gn.armijo_c)
        damping = state.damping
        if gn.adapt_damping:
            damping = jnp.where(eta == 0, damping * gn.damping_up,
                                jnp.where(eta == 1, damping * gn.damping_down, damping))
            damping = jnp.clip(damping, gn.damping_min, gn.damping_max)
        new_dir = jnp.where(eta > 0, delta, state.direction)
        info = {"loss": r @ r, "val_loss": L0, "val_loss_after": L1, "eta": eta, "cg_iters": iters,
                "damping": state.damping, "step_norm": eta * jnp.linalg.norm(delta)}
        return theta - eta * delta, GNState(new_dir, damping), info

    return jax.jit(step), jax.jit(loss)
