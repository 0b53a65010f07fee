"""Sequential score-based transport modeling (paper 000 §2.3, Algorithm 1 with v = b − D s, eq. 5) on the
shared run loop.

The state holds the particles X_t, the score parameters θ_t learned at the same time t, and what is carried
along the trajectories. One step of the loop (`Solver.step`, made by `build`) goes from t to t + Δt:

1. move the particles with the current score: an Euler or Heun step of dX/dt = v = b − D s_θ(X)
   (`sbtm.integrators`; `sbtm.flow` gives v, ∇·v and s·v);
2. learn the score at t + Δt on the moved particles: warm start from θ_t (parameters and Adam moments),
   up to `inner.max_steps` Adam steps on the configured loss (`sbtm.losses`), stopping after the first step
   whose gradient norm — measured before its update — is below `inner.gtol` (a `lax.while_loop`; paper 000
   App. D.1: 25 steps, gtol 0.1);
3. evaluate the flow at the new particles with the new score (kept in the state: the next step starts from
   it) and integrate what rides along from both ends of the step: log ρ(X_t) by −∇·v (eq. 7), the entropy
   integrals ∫E[∇·v] (route 16) and ∫E[s·v] (route 17) (`sbtm.observables` states the sign conventions).

Before the first step s_0 is fitted to ∇log ρ_0 (eq. D.1) to `init.rel_tol`, so that state and score always
describe the same time. With `score="exact"` the problem's exact score replaces the network (no training):
a test of the transport alone.

`solve` runs the steps in chunks of `save_every` (one history row and one checkpoint per chunk; exact resume
through `RunDir`, the horizon `time.T` may be extended), all in `precision(config.precision)`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from flax import nnx

from pinnflow.core.config import ConfigError
from pinnflow.core.loop import run_loop
from pinnflow.core.precision import default_dtype, precision
from pinnflow.core.rundir import RunDir
from pinnflow.fokker_planck import FokkerPlanckProblem
from pinnflow.metrics.solutions import (
    moment_errors,
    one_particle_cov_error,
    one_particle_summary,
    relative_score_error,
)
from pinnflow.operators import backend
from pinnflow.sbtm.config import RESUMABLE, SBTMConfig
from pinnflow.sbtm.flow import Flow, FlowValues, exact_score_source, make_flow
from pinnflow.sbtm.integrators import INTEGRATORS, carried
from pinnflow.sbtm.losses import LOSSES, relative_fit_loss
from pinnflow.sbtm.models import build_model
from pinnflow.sbtm.observables import probability_current

__all__ = ["SBTMState", "SBTMResult", "Solver", "build", "initial_fit", "initial_state", "initial_structure",
           "solve", "horizon_steps"]


class SBTMState(NamedTuple):
    """Everything one SBTM time step reads and writes (checkpointed as is).

    X: particles (n, d) at t = k·Δt; flow: v, ∇·v, s·v at X with the score at t; log_rho: log ρ_t(X_t) along
    each trajectory (n,); params / opt_state: the score model's parameters learned at t and the inner Adam
    state (both empty for score="exact");
    int_div = ∫_0^t E[∇·v], int_sv = ∫_0^t E[s·v]; S0: the entropy at t = 0 both routes start from; k: time
    steps done (int32); key: the PRNG key."""

    X: jax.Array
    flow: FlowValues
    log_rho: jax.Array
    params: Any
    opt_state: Any
    int_div: jax.Array
    int_sv: jax.Array
    S0: jax.Array
    k: jax.Array
    key: jax.Array


def horizon_steps(problem: FokkerPlanckProblem, config: SBTMConfig) -> tuple[float, int]:
    """(T, number of steps): T = `time.T` or the problem's; T/Δt must be whole (ConfigError naming time.dt)."""
    T = problem.T if config.time.T is None else float(config.time.T)
    dt = float(config.time.dt)
    steps = int(round(T / dt))
    if steps < 1 or abs(steps * dt - T) > 1e-9 * max(T, 1.0):
        raise ConfigError(f"config time.dt: the horizon T = {T} is not a whole number of steps of {dt}")
    return T, steps


@dataclass
class Solver:
    """The pieces of one SBTM solve, built by `build` in the current precision: the score model's structure,
    the loss, the flow for given parameters, the pure step and the observables."""

    problem: FokkerPlanckProblem
    config: SBTMConfig
    graphdef: nnx.GraphDef | None
    init_params: Any
    tx: optax.GradientTransformation
    flow_of: Callable[[Any], Flow]
    train: Callable[..., tuple]
    step: Callable[[SBTMState, Any], tuple[SBTMState, dict]]
    dt: float

    @property
    def learned(self) -> bool:
        return self.config.score == "learned"

    @property
    def full_score(self) -> bool:
        """Whether the score model gives every component of ∇log ρ (False for `noisy_mlp`)."""
        return not self.learned or getattr(nnx.merge(self.graphdef, self.init_params), "full_score", True)

    def score_fn(self, params: Any, t) -> Callable[[jax.Array], jax.Array]:
        """x (d,) -> s(x): the learned score with `params`, or the exact score at time t."""
        if self.learned:
            model = nnx.merge(self.graphdef, params)
            return model.score
        return lambda x: self.problem.score(x, t)

    def observe(self, state: SBTMState) -> dict[str, jax.Array]:
        """The observables at the state's time t (`sbtm.observables`, `metrics.solutions`): the entropy by routes
        (16) and (17), `entropy_gap` = (16) − (17), the particle estimate −mean log ρ_t(X_t) and the
        one-particle mean and covariance (`one_particle_summary`, one-particle spaces of ≤ 3 dimensions); where the
        problem knows them, the exact entropy, the relative score error (22) of the state's score, the
        mean/covariance errors (`moment_errors`; for particle systems also the one-particle covariance's,
        `one_particle_cov_error`) and mean_i |log ρ_t(X_i) − exact log ρ_t(X_i)|."""
        p, X = self.problem, state.X
        t = state.k.astype(X.dtype) * self.dt
        row = {"t": t, "entropy_16": state.S0 + state.int_div, "entropy_17": state.S0 - state.int_sv,
               "entropy_particles": -jnp.mean(state.log_rho), "entropy_gap": state.int_div + state.int_sv}
        if not self.full_score:  # route (17) needs the whole score (`noisy_mlp` learns part of it)
            row["entropy_17"] = row["entropy_gap"] = jnp.asarray(jnp.nan, X.dtype)
        row.update(one_particle_summary(X, p.particles))
        if p.entropy is not None:
            row["entropy_exact"] = p.entropy(t)
        if p.score is not None:
            s = jax.vmap(self.score_fn(state.params, t))(X)
            row["score_error"] = relative_score_error(s, jax.vmap(p.score, in_axes=(0, None))(X, t))
        if p.mean is not None and p.cov is not None:
            m, C = p.mean(t), p.cov(t)
            row["mean_error"], row["cov_error"] = moment_errors(X, m, C)
            if p.particles is not None:
                row["one_particle_cov_error"] = one_particle_cov_error(X, m, C, p.particles)
        if p.log_rho is not None:
            exact = jax.vmap(p.log_rho, in_axes=(0, None))(X, t)
            row["log_rho_error"] = jnp.mean(jnp.abs(state.log_rho - exact))
        return row


def build(problem: FokkerPlanckProblem, config: SBTMConfig) -> Solver:
    """The model, loss, flow and pure step of `config` for `problem` (call inside `precision(...)`)."""
    op = backend(config.operator.kind, config.operator.probes)
    op_v = backend(config.operator.transport, config.operator.probes)
    scheme = INTEGRATORS.get(config.time.integrator)
    dt = float(config.time.dt)
    learned = config.score == "learned"
    inner = config.inner
    tx = optax.adam(inner.lr)
    if learned:
        graphdef, params = nnx.split(build_model(problem, config.model, config.seed))
        loss = LOSSES.get(config.loss.kind, op=op, cfg=config.loss)

        def flow_of(p) -> Flow:
            model = nnx.merge(graphdef, p)
            return make_flow(problem, lambda x, t, D, k: model.score_and_trace(x, op_v, k, D), op_v)
    else:
        graphdef, params, loss = None, {}, None
        exact = make_flow(problem, exact_score_source(problem, op_v), op_v)

        def flow_of(p) -> Flow:
            del p
            return exact

    def train(params, opt_state, X, key):
        """Warm-started Adam on the loss at particles X: up to max_steps steps, stopping after the first
        whose gradient norm (before its update) is < gtol. Returns (params, opt_state, steps, |g|, loss)."""

        def objective(p, k):
            return loss(nnx.merge(graphdef, p), X, k)

        def cond(c):
            return (c[2] < inner.max_steps) & (c[3] >= inner.gtol)

        def body(c):
            p, o, i, _, _ = c
            val, g = jax.value_and_grad(objective)(p, jax.random.fold_in(key, i))
            updates, o = tx.update(g, o, p)
            return optax.apply_updates(p, updates), o, i + 1, optax.tree.norm(g), val

        dtype = X.dtype
        start = (params, opt_state, jnp.zeros((), jnp.int32), jnp.asarray(jnp.inf, dtype), jnp.zeros((), dtype))
        return jax.lax.while_loop(cond, body, start)

    def step(state: SBTMState, aux) -> tuple[SBTMState, dict]:
        del aux
        key, k_move, k_train, k_flow = jax.random.split(state.key, 4)
        dtype = state.X.dtype
        t, t1, h = state.k.astype(dtype) * dt, (state.k + 1).astype(dtype) * dt, jnp.asarray(dt, dtype)
        X1 = scheme.move(flow_of(state.params), state.X, state.flow, t, h, k_move)
        params, opt_state, info = state.params, state.opt_state, {}
        if learned:
            params, opt_state, used, gnorm, val = train(params, opt_state, X1, k_train)
            info.update(loss=val, inner_steps=used, grad_norm=gnorm)
        f1 = flow_of(params)(X1, t1, k_flow)
        c = carried(state.flow, f1, h, scheme.end_weight)
        info["div_v"] = jnp.mean(f1.div)
        new = state._replace(X=X1, flow=f1, log_rho=state.log_rho + c.d_log_rho, params=params,
                             opt_state=opt_state, int_div=state.int_div + c.int_div,
                             int_sv=state.int_sv + c.int_sv, k=state.k + 1, key=key)
        return new, info

    return Solver(problem, config, graphdef, params, tx, flow_of, train, step, dt)


def initial_fit(solver: Solver, params: Any, X0: jax.Array) -> tuple[Any, jax.Array, jax.Array]:
    """Fit s_0 to ∇log ρ_0 at the initial particles (paper 000 eq. D.1) with Adam (`init.lr`) until the
    relative error is below `init.rel_tol` or `init.max_steps`. Returns (params, relative error, steps). Jittable."""
    cfg = solver.config.init
    target = jax.vmap(solver.problem.score0)(X0)
    tx = optax.adam(cfg.lr)

    def err(p):
        return relative_fit_loss(nnx.merge(solver.graphdef, p), X0, target)

    def cond(c):
        return (c[2] < cfg.max_steps) & (c[3] >= cfg.rel_tol)

    def body(c):
        p, o, i, _, g = c
        updates, o = tx.update(g, o, p)
        p = optax.apply_updates(p, updates)
        val, g = jax.value_and_grad(err)(p)
        return p, o, i + 1, val, g

    val, g = jax.value_and_grad(err)(params)
    p, _, i, val, _ = jax.lax.while_loop(cond, body, (params, tx.init(params), jnp.zeros((), jnp.int32), val, g))
    return p, val, i


def initial_state(solver: Solver) -> tuple[SBTMState, dict[str, jax.Array]]:
    """(state at t = 0, initial-fit facts), one compiled program: particles from ρ_0 (`sample0`, key from
    `seed`), log ρ_0 at them, S_0 (the exact entropy when the problem has it, else −mean log ρ_0(X_0)), the
    fitted s_0 and the flow at X_0. Facts: `fit_error` (eq. D.1; NaN for score="exact") and `fit_steps`."""
    p, cfg = solver.problem, solver.config

    @jax.jit
    def start(params):
        dtype = default_dtype()
        k_sample, k_flow, k_run = jax.random.split(jax.random.PRNGKey(cfg.seed), 3)
        X0 = jnp.asarray(p.sample0(k_sample, cfg.n_particles), dtype)
        log_rho0 = jax.vmap(p.log_rho0)(X0)
        zero = jnp.zeros((), dtype)
        S0 = jnp.asarray(p.entropy(zero), dtype) if p.entropy is not None else -jnp.mean(log_rho0)
        fit = {"fit_error": jnp.asarray(jnp.nan, dtype), "fit_steps": jnp.zeros((), jnp.int32)}
        if solver.learned:
            params, fit["fit_error"], fit["fit_steps"] = initial_fit(solver, params, X0)
        f0 = solver.flow_of(params)(X0, zero, k_flow)
        state = SBTMState(X0, f0, log_rho0, params, solver.tx.init(params), zero, zero, S0,
                          jnp.zeros((), jnp.int32), k_run)
        return state, fit

    return start(solver.init_params)


def initial_structure(solver: Solver) -> tuple[SBTMState, dict[str, jax.Array]]:
    """Shapes and dtypes of `initial_state` (traced, not compiled or run): what a checkpoint is loaded into."""
    return jax.eval_shape(lambda: initial_state(solver))


@dataclass
class SBTMResult:
    """A finished (or extended) solve: the final state, one history row per saved time (t = 0 first), the
    initial fit (`fit_error`, eq. D.1, NaN for score="exact"; `fit_steps`) and timings: `seconds` of the time
    steps (compilation excluded), their median `seconds_per_step`, `compile_seconds` of the steps,
    `start_seconds` (sampling, initial fit and their compilation; 0 when resumed) and `wall_seconds` of the
    whole call."""

    config: SBTMConfig
    problem: FokkerPlanckProblem
    state: SBTMState
    history: pd.DataFrame
    fit_error: float
    fit_steps: int
    seconds: float
    seconds_per_step: float
    compile_seconds: float
    start_seconds: float
    wall_seconds: float
    run_dir: Path | None = None
    graphdef: nnx.GraphDef | None = field(default=None, repr=False)

    @property
    def t(self) -> float:
        return float(self.state.k) * float(self.config.time.dt)

    @property
    def current(self) -> jax.Array:
        """The probability current v ρ at the final particles (n, d) (paper 000 eq. 15)."""
        return probability_current(self.state.flow.v, self.state.log_rho)

    def score(self, X: jax.Array) -> jax.Array:
        """The score at the final time at points X (n, d): the learned network, or the exact score."""
        with precision(self.config.precision):
            X = jnp.asarray(X, default_dtype())
            if self.config.score == "learned":
                return jax.vmap(nnx.merge(self.graphdef, self.state.params).score)(X)
            return jax.vmap(self.problem.score, in_axes=(0, None))(X, jnp.asarray(self.t, X.dtype))


INITIAL = "initial"  # the checkpoint's tree of t = 0 facts: the first history row and the initial fit


def _floats(row: dict) -> dict:
    return {k: float(np.asarray(v)) for k, v in row.items()}


def solve(problem: FokkerPlanckProblem, config: SBTMConfig, run_dir: str | Path | None = None,
          resume: bool = False, progress: bool | None = None, *,
          observe_extra: Callable[[Solver, SBTMState], dict] | None = None,
          stop_when: Callable[[dict], bool] | None = None) -> SBTMResult:
    """Solve the Fokker–Planck equation of `problem` by SBTM (paper 000 Algorithm 1, v = b − D s) up to
    `time.T` (default the problem's T); see the module docstring. With `run_dir`, checkpoints every
    `save_every` steps; `resume=True` continues from its checkpoint (only `time.T` may change).

    `observe_extra(solver, state) -> dict` adds columns to every history row (compiled with the observables);
    `stop_when(row)` ends the solve at the first saved time whose history row makes it true."""
    t_wall = time.perf_counter()
    config.validate()
    T, steps = horizon_steps(problem, config)
    rundir = None if run_dir is None else RunDir.open(run_dir, config, resume, "SBTM solve", may_change=RESUMABLE)
    with precision(config.precision):
        solver = build(problem, config)
        if observe_extra is None:
            observe = jax.jit(solver.observe)
        else:
            observe = jax.jit(lambda s: {**solver.observe(s), **observe_extra(solver, s)})
        t0 = time.perf_counter()
        if rundir is not None and resume and rundir.exists():  # run_loop loads the state into this structure
            state, fit = initial_structure(solver)
            initial = rundir.load({INITIAL: {"row": observe.eval_shape(state), **fit}})[0][INITIAL]
            start_seconds = 0.0
        else:
            state, fit = initial_state(solver)
            initial = {"row": observe(state), **fit}
            jax.block_until_ready(initial)
            start_seconds = time.perf_counter() - t0
            if solver.learned and not float(fit["fit_error"]) < config.init.rel_tol:
                warnings.warn(f"SBTM on {problem.name!r}: the initial fit stopped at relative error "
                              f"{float(fit['fit_error']):.3g} > init.rel_tol = {config.init.rel_tol} after "
                              f"{int(fit['fit_steps'])} steps (raise init.max_steps or init.lr)", stacklevel=2)

        def on_chunk(s: SBTMState, prog) -> None:
            prog.history[-1].update(_floats(observe(s)))

        result = run_loop(
            solver.step, state, steps=steps, chunk=config.save_every, name=f"sbtm {problem.name} to T={T}",
            rundir=rundir, resume=resume, checkpoint_every=config.save_every, on_chunk=on_chunk,
            export=lambda s: {INITIAL: initial}, progress=progress,
            stop_when=None if stop_when is None else lambda s, prog: bool(stop_when(prog.history[-1])),
            finite_key="loss" if solver.learned else "div_v",
            diverged_hint="Lower inner.lr or time.dt, or raise n_particles.")
        prog = result.progress
        history = pd.DataFrame([{"step": 0, **_floats(initial["row"]), "seconds": 0.0}] + prog.history)
        first = ["t", "step"]
        history = history[first + [c for c in history.columns if c not in first]]
        return SBTMResult(config, problem, result.state, history, float(initial["fit_error"]),
                          int(initial["fit_steps"]), prog.seconds, prog.seconds_per_it, prog.compile_seconds,
                          start_seconds, time.perf_counter() - t_wall, None if rundir is None else rundir.path,
                          solver.graphdef)
