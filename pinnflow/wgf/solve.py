"""Solve a potential Fokker–Planck problem ∂_tρ = ∇·(ρ∇V) + βΔρ by a normalizing flow pushed along the
Wasserstein gradient flow of H(θ) (paper 004, Algorithm 1), on the shared run loop.

`solve(problem, config, run_dir, resume, progress, theta0)`:
- checks every input before anything compiles (`check_inputs`): the problem must have a potential and a
  Gaussian ρ0 (the identity flow then starts exactly at ρ0), V must be finite at the initial samples, h must
  divide T, user-given flow parameters must be valid (an invertible flow);
- one run-loop step is one time step h; one history row (H, entropy, moments, errors against the exact
  solution where known) and one checkpoint every `eval.every` steps; the progress bar counts time steps and
  shows t; `resume=True` continues exactly (the horizon `scheme.T` may be raised);
- θ at every row is kept (`WGFResult.snapshots`; on disk under `run_dir/snapshots/`), so samples and
  log-densities of ρ_θ(t) are available at every saved time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from pinnflow.core import checkpoint
from pinnflow.core.loop import run_loop
from pinnflow.core.precision import precision
from pinnflow.core.rng import Stream, stream_key
from pinnflow.core.rundir import RunDir
from pinnflow.fokker_planck import FokkerPlanckProblem
from pinnflow.nn.flows import make_flow
from pinnflow.wgf.config import RESUMABLE, WGFConfig
from pinnflow.wgf.psi import make_psi
from pinnflow.wgf.pushforward import PushForward
from pinnflow.wgf.scheme import INNER_SOLVERS, OPTIMIZERS, Scheme, WGFState, standard_normal

__all__ = ["solve", "build", "check_inputs", "gaussian_base", "horizon", "WGFResult", "evaluator", "SNAPSHOTS"]

SNAPSHOTS = "snapshots"
MAX_MOMENT_COLUMNS = 10  # mean_i / var_i columns in the history for d <= this


def gaussian_base(problem: FokkerPlanckProblem) -> tuple[np.ndarray, np.ndarray]:
    """(m0, L0) with ρ0 = N(m0, L0L0ᵀ): from `problem.info` ("m0", "C0") or N(0, I); checked against
    `problem.log_rho0` at samples of ρ0 (a non-Gaussian ρ0 raises `ValueError`)."""
    d = problem.dim
    m0 = np.asarray(problem.info.get("m0", np.zeros(d)), dtype=np.float64)
    C0 = np.asarray(problem.info.get("C0", np.eye(d)), dtype=np.float64)
    L0 = np.linalg.cholesky(C0)
    x = np.asarray(problem.sample0(jax.random.PRNGKey(Stream.FIXED_DOMAIN_CHECK), 8), dtype=np.float64)
    z = np.linalg.solve(L0, (x - m0).T).T
    gauss = -0.5 * np.sum(z**2, axis=1) - np.sum(np.log(np.diag(L0))) - 0.5 * d * np.log(2 * np.pi)
    got = np.asarray(jax.vmap(problem.log_rho0)(jnp.asarray(x)), dtype=np.float64)
    if not np.allclose(got, gauss, rtol=1e-4, atol=1e-4):
        raise ValueError(f"wgf: problem {problem.name!r} needs a Gaussian ρ0 = N(m0, C0) (info 'm0', 'C0', default "
                         f"N(0, I)): log_rho0 differs from it by up to {np.max(np.abs(got - gauss)):.3g} at samples")
    return m0, L0


def horizon(problem: FokkerPlanckProblem, config: WGFConfig) -> tuple[float, int]:
    """(T, number of time steps); T must be a whole number of steps h."""
    T = problem.T if config.scheme.T is None else float(config.scheme.T)
    h = float(config.scheme.h)
    steps = int(round(T / h))
    if steps < 1 or abs(steps * h - T) > 1e-9 * max(T, 1.0):
        raise ValueError(f"wgf: the horizon T = {T} is not a whole number of time steps h = {h}")
    return T, steps


def build(problem: FokkerPlanckProblem, config: WGFConfig, draw=None) -> Scheme:
    """The time stepper for `problem` (see `pinnflow.wgf.scheme`); `draw(key, n)` overrides the reference
    sampler p = N(0, I) (tests pass a fixed batch)."""
    d = problem.dim
    m0, L0 = gaussian_base(problem)
    sc = config.scheme
    model = PushForward(make_flow(d, config.flow), m0, L0)
    return Scheme(model=model, psi=make_psi(d, config.psi), V=problem.potential, beta=problem.beta, h=float(sc.h),
                  m_out=sc.m_out, m_in=sc.m_in, batch=sc.batch_size(d), eps=sc.rescale,
                  outer=OPTIMIZERS.factory(sc.optimizer)(sc.lr_out),
                  inner=INNER_SOLVERS.factory(sc.inner_solver)(sc.lr_in), inner_solver=sc.inner_solver,
                  kind=sc.kind, warm_start=bool(sc.warm_start), draw=draw or standard_normal(d),
                  outer_decay=float(sc.outer_decay))


def check_inputs(problem: FokkerPlanckProblem, config: WGFConfig, theta0: Any = None) -> None:
    """Everything that can be wrong before a compile, with errors that name it (see the module docstring)."""
    if not isinstance(problem, FokkerPlanckProblem):
        raise TypeError(f"wgf: problem must be a FokkerPlanckProblem, got {type(problem).__name__}")
    if problem.potential is None:
        raise ValueError(f"wgf: problem {problem.name!r} has no potential V; the Wasserstein gradient flow needs "
                         "∂_tρ = ∇·(ρ∇V) + βΔρ (build it with pinnflow.fokker_planck.potential_problem)")
    config.validate()
    horizon(problem, config)
    m0, L0 = gaussian_base(problem)
    flow = make_flow(problem.dim, config.flow)
    if theta0 is not None:
        flow.check(theta0)
    theta = flow.init(jax.random.PRNGKey(0)) if theta0 is None else theta0
    model = PushForward(flow, m0, L0)
    z = jax.random.normal(stream_key(config.seed, Stream.EVALUATE), (min(config.scheme.batch_size(problem.dim),
                                                                          4096), problem.dim))
    y, log_rho = jax.jit(model.push)(theta, z)
    if not np.all(np.isfinite(np.asarray(log_rho))):
        raise ValueError("wgf: the initial flow gives non-finite log-densities (a singular flow?)")
    v = np.asarray(jax.jit(jax.vmap(problem.potential))(y))
    bad = ~np.isfinite(v)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"wgf: the potential V of {problem.name!r} is not finite at {int(bad.sum())} of {len(v)} "
                         f"initial samples (e.g. V({np.asarray(y[i]).tolist()[:4]}...) = {v[i]})")


def evaluator(problem: FokkerPlanckProblem, model: PushForward, samples: int, seed: int):
    """`evaluate(theta, t) -> dict` of floats: H, entropy (−E log ρ_θ), moments, and against the exact solution
    where the problem has one: mean_abs_error ‖µ̂ − µ(t)‖₂ and cov_fro_error ‖Σ̂ − Σ(t)‖_F (paper 004 Figs.
    20–21), the relative mean_error/cov_error of `pinnflow.fpe`, H_exact = E_{ρ(t)}[V] − β S(t) (E[V] by Monte
    Carlo on the same reference draw) and entropy_exact. One fixed reference draw of `samples` points."""
    d, beta = problem.dim, problem.beta
    z = jax.random.normal(stream_key(seed, Stream.EVALUATE), (samples, d))
    exact = problem.mean is not None and problem.cov is not None

    @jax.jit
    def stats(theta, t):
        y, log_rho = model.push(theta, z)
        v = jax.vmap(problem.potential)(y)
        m = jnp.mean(y, axis=0)
        r = y - m
        C = r.T @ r / (samples - 1)
        out = {"H": jnp.mean(v) + beta * jnp.mean(log_rho), "entropy": -jnp.mean(log_rho), "mean": m, "cov": C,
               "finite": jnp.mean(jnp.isfinite(v) & jnp.isfinite(log_rho))}
        if exact:
            mt, Ct = problem.mean(t).astype(y.dtype), problem.cov(t).astype(y.dtype)
            out.update(mean_abs_error=jnp.linalg.norm(m - mt), cov_fro_error=jnp.linalg.norm(C - Ct),
                       mean_error=jnp.linalg.norm(m - mt) / jnp.sqrt(jnp.trace(Ct)),
                       cov_error=jnp.linalg.norm(C - Ct) / jnp.linalg.norm(Ct))
            if problem.entropy is not None:
                S = problem.entropy(t).astype(y.dtype)
                ys = mt + z @ jnp.linalg.cholesky(Ct).T
                out.update(entropy_exact=S, H_exact=jnp.mean(jax.vmap(problem.potential)(ys)) - beta * S)
        return out

    def evaluate(theta, t: float) -> dict:
        out = jax.device_get(stats(theta, jnp.asarray(t)))
        m, C = np.asarray(out.pop("mean")), np.asarray(out.pop("cov"))
        row = {k: float(v) for k, v in out.items()}
        if d <= MAX_MOMENT_COLUMNS:
            row.update({f"mean_{i}": float(m[i]) for i in range(d)})
            row.update({f"var_{i}": float(C[i, i]) for i in range(d)})
        return row

    return evaluate


@dataclass
class WGFResult:
    """A WGF solve: `history` (one row per saved time: t, step, H, entropy, moments, errors, loss, seconds),
    `snapshots` {t: θ} at those times, the final `state`, the push-forward `model`, wall and step seconds."""

    config: WGFConfig
    problem: FokkerPlanckProblem
    model: PushForward
    state: WGFState
    history: pd.DataFrame
    snapshots: dict[float, Any]
    seconds: float
    wall_seconds: float
    seconds_per_step: float
    compile_seconds: float
    run_dir: Path | None

    def sample(self, n: int, key: jax.Array, t: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """n samples of ρ_θ at saved time t (default: the end) and their exact log-densities log ρ_θ."""
        theta = self.state.theta if t is None else self.snapshots[min(self.snapshots, key=lambda s: abs(s - t))]
        with precision(self.config.precision):
            y, log_rho = jax.jit(self.model.push)(theta, jax.random.normal(key, (n, self.problem.dim)))
        return np.asarray(y), np.asarray(log_rho)


def _snapshot_path(rundir: RunDir, step: int) -> Path:
    return rundir.path / SNAPSHOTS / f"step_{step:07d}.npz"


def solve(problem: FokkerPlanckProblem, config: WGFConfig, run_dir: str | Path | None = None, resume: bool = False,
          progress: bool | None = None, theta0: Any = None) -> WGFResult:
    """Solve `problem` by paper 004's scheme (`config.scheme.kind`) up to `scheme.T` (default the problem's T);
    see the module docstring. `theta0`: initial flow parameters (default: the identity flow, so ρ_θ0 = ρ0)."""
    t_wall = time.perf_counter()
    check_inputs(problem, config, theta0)
    T, steps = horizon(problem, config)
    rundir = None if run_dir is None else RunDir.open(run_dir, config, resume, "WGF solve", may_change=RESUMABLE)
    with precision(config.precision):
        scheme = build(problem, config)
        k_flow, k_psi = jax.random.split(stream_key(config.seed, Stream.TRAIN))
        theta = scheme.model.flow.init(k_flow) if theta0 is None else jax.tree.map(jnp.asarray, theta0)
        dtype = jnp.zeros(()).dtype
        theta = jax.tree.map(lambda a: jnp.asarray(a, dtype), theta)
        state = scheme.init(theta, scheme.psi.init(k_psi), stream_key(config.seed, Stream.TRAJECTORIES))
        evaluate = evaluator(problem, scheme.model, config.eval.samples, config.seed)
        h = float(config.scheme.h)
        first = {"t": 0.0, "step": 0, **evaluate(state.theta, 0.0), "seconds": 0.0}
        snapshots: dict[float, Any] = {0.0: state.theta}
        if rundir is not None and resume and rundir.exists():
            for p in sorted((rundir.path / SNAPSHOTS).glob("step_*.npz")):
                k = int(p.stem.split("_")[1])
                snapshots[k * h] = checkpoint.load(p, {"theta": state.theta})[0]["theta"]

        def on_chunk(s: WGFState, prog) -> None:
            row = prog.history[-1]
            row["t"] = prog.step * h  # exact (the state's t accumulates round-off)
            row.update(evaluate(s.theta, row["t"]))
            snapshots[row["t"]] = s.theta
            if rundir is not None:
                (rundir.path / SNAPSHOTS).mkdir(exist_ok=True)
                checkpoint.save(_snapshot_path(rundir, prog.step), {"theta": s.theta}, {"t": row["t"]})

        result = run_loop(
            scheme.step, state, steps=steps, chunk=config.eval.every, name=f"wgf {problem.name} to T={T}",
            rundir=rundir, resume=resume, checkpoint_every=config.eval.every, on_chunk=on_chunk, progress=progress,
            diverged_hint="Lower scheme.lr_out or scheme.h, or raise scheme.m_in.")
        prog = result.progress
        history = pd.DataFrame([first] + prog.history)
        lead = ["t", "step"]
        history = history[lead + [c for c in history.columns if c not in lead]]
        return WGFResult(config, problem, scheme.model, result.state, history, dict(sorted(snapshots.items())),
                         prog.seconds, time.perf_counter() - t_wall, prog.seconds_per_it, prog.compile_seconds,
                         None if rundir is None else rundir.path)
