"""Gauss–Newton fine-tuning of a trained run (paper 003 §4, Table 3).

With r̃(θ) the stacked residual vector of the loss over N collocation points (each term times
√(weight/N), so L(θ) = ‖r̃‖²) and J = ∂r̃/∂θ, one step is

    θ ← θ − η δ,    δ = (JᵀJ + εI)⁻¹ Jᵀr̃    (G = JᵀJ is the Gramian; ∇L = 2Jᵀr̃, the 2 is absorbed in η)

solved either matrix-free by conjugate gradients (G v by one JVP and one VJP, warm-started from the last
direction) or in sample space, δ = Jᵀ(JJᵀ + εI)⁻¹ r̃ (Woodbury), with J formed row by row (one gradient
per point) and the N×N system solved by Cholesky. The step size η comes from a line search judged on a
held-out batch; a step that does not lower the held-out loss, or is not finite, is rejected (θ unchanged)
and, with Levenberg–Marquardt adaptation, ε grows. Every loss of the registry works: the residual vector
is built from the loss's named terms.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.flatten_util import ravel_pytree
from tqdm.auto import tqdm

from pinnflow import checkpoint
from pinnflow.collocation import mix_batch
from pinnflow.config import Config, GaussNewtonConfig
from pinnflow.linsolve import cg, cholesky_solve
from pinnflow.parallel import DataParallel
from pinnflow.precision import set_precision
from pinnflow.target import Target
from pinnflow.train import CHECKPOINT, CONFIG, HISTORY, Run, build, make_point_residual, trajectory_refresher

__all__ = ["gauss_newton", "GNState", "make_step", "choose_solver", "FINETUNE_DIR"]

FINETUNE_DIR = "finetune"


class GNState(NamedTuple):
    """Solver state carried between steps."""

    direction: jax.Array  # last δ (warm start of CG)
    damping: jax.Array  # ε
    key: jax.Array


def choose_solver(gn: GaussNewtonConfig, n_rows: int, n_params: int, itemsize: int) -> str:
    """"sample-space" when the rows of J are fewer than the parameters and J fits in `gn.memory_mb`."""
    if gn.solver != "auto":
        return gn.solver
    fits = n_rows * n_params * itemsize / 2**20 <= gn.memory_mb
    return "sample-space" if n_rows < n_params and fits else "cg"


def line_search_grid(loss_at, theta, delta, L0, ls_steps: int, rule: str, slope):
    """Evaluate η = 1, 1/2, …, 2^-(ls_steps-1) and pick one: the best ("grid") or the largest with
    Armijo decrease L(θ − ηδ) ≤ L0 − 1e-4 η·slope ("armijo"). Returns (η, L(θ − ηδ)); η = 0 and L0 when no
    finite trial lowers the loss."""
    etas = 0.5 ** jnp.arange(ls_steps, dtype=theta.dtype)
    trial = jax.lax.map(lambda eta: loss_at(theta - eta * delta), etas)
    ok = jnp.isfinite(trial) & (trial < L0)
    if rule == "armijo":
        ok = ok & (trial <= L0 - 1e-4 * etas * slope)
        idx = jnp.argmax(ok)  # first (largest) admissible η
    else:
        idx = jnp.argmin(jnp.where(ok, trial, jnp.inf))
    accept = ok[idx]
    return jnp.where(accept, etas[idx], 0.0), jnp.where(accept, trial[idx], L0)


def make_step(point_residual, unravel, domain, gn: GaussNewtonConfig, solver: str, shard=lambda a: a):
    """The jitted Gauss–Newton step (theta, state, xs, ts, xv, tv) -> (theta, state, info). `shard` constrains
    the collocation batches (leading axis) to be split across devices, so the Jacobian products, the
    Gramian and the line-search losses are computed data-parallel (parameters replicated)."""

    def residuals(theta, xs, ts):
        params = unravel(theta)
        r = jax.vmap(lambda x, t: point_residual(params, x, t))(xs, ts)
        return r.ravel() / jnp.sqrt(xs.shape[0])

    def loss(theta, xs, ts):
        r = residuals(theta, xs, ts)
        return r @ r

    def direction(theta, state, xs, ts):
        r, jvp = jax.linearize(lambda th: residuals(th, xs, ts), theta)
        vjp = jax.linear_transpose(jvp, theta)
        g = vjp(r)[0]
        if solver == "cg":
            delta, iters = cg(lambda v: vjp(jvp(v))[0] + state.damping * v, g, x0=state.direction,
                              maxiter=gn.cg_iters, tol=gn.cg_tol)
        else:
            rows = jax.vmap(jax.jacrev(lambda th, x, t: point_residual(unravel(th), x, t)),
                            in_axes=(None, 0, 0))(theta, xs, ts)
            J = rows.reshape(-1, theta.shape[0]) / jnp.sqrt(xs.shape[0])
            K = J @ J.T + state.damping * jnp.eye(J.shape[0], dtype=J.dtype)
            delta, iters = J.T @ cholesky_solve(K, r), jnp.asarray(0)
        return r @ r, g, delta, iters

    def step(theta, state: GNState, xs, ts, xv, tv):
        xs, ts, xv, tv = (shard(a) for a in (xs, ts, xv, tv))
        L_batch, g, delta, iters = direction(theta, state, xs, ts)
        L0 = loss(theta, xv, tv)
        eta, L1 = line_search_grid(lambda th: loss(th, xv, tv), theta, delta, L0, gn.ls_steps,
                                   gn.line_search, 2 * g @ delta)
        damping = state.damping
        if gn.adapt_damping:
            damping = jnp.where(eta == 0, damping * 10.0, jnp.where(eta == 1, damping * 0.5, damping))
            damping = jnp.clip(damping, 1e-12, 1e6)
        new_dir = jnp.where(eta > 0, delta, state.direction)
        info = {"loss": L_batch, "val_loss": L0, "val_loss_after": L1, "eta": eta, "cg_iters": iters,
                "damping": state.damping, "step_norm": eta * jnp.linalg.norm(delta)}
        return theta - eta * delta, GNState(new_dir, damping, state.key), info

    return jax.jit(step), jax.jit(loss)


def gauss_newton(run: Run, target: Target | None = None, config: Config | None = None,
                 run_dir: str | Path | None = None, resume: bool = False, progress: bool | None = None) -> Run:
    """Fine-tune a trained run with Gauss–Newton (config section `gn`, default the run's); returns a new `Run`.

    With `run_dir` (default: `<run.run_dir>/finetune` when the run has a directory) checkpoints are written
    every `gn.checkpoint_every` steps and `resume=True` continues a killed fine-tuning exactly."""
    config = run.config if config is None else config
    config.validate()
    if target is not None:
        run = dataclasses.replace(run, target=target)
    gn = config.gn
    precision = gn.precision or config.precision
    if precision != config.precision:  # the fine-tuned run lives in the fine-tuning precision
        config = config.override([f"precision={precision}"])
    set_precision(precision)
    loss, setup, domain, graphdef, _ = build(run.target, config)
    dtype = jnp.float64 if precision == "float64" else jnp.float32
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), run.params)
    theta, unravel = ravel_pytree(params)
    point = make_point_residual(loss, setup, graphdef, config.alpha)
    n_terms = jax.eval_shape(point, params, jnp.zeros(run.target.dim, dtype), jnp.asarray(0.5, dtype)).shape[0]
    solver = choose_solver(gn, gn.batch_size * n_terms, theta.shape[0], jnp.dtype(dtype).itemsize)
    dp = DataParallel.create(config.data_parallel)
    for what, n in (("gn.batch_size", gn.batch_size), ("gn.val_batch_size", gn.val_batch_size)):
        dp.check_batch(n, what)
    step_fn, _ = make_step(point, unravel, domain, gn, solver, dp.shard_batch)
    # the run's collocation mix: a share of both batches on trajectories of the current model (App. D.1)
    frac = config.collocation.trajectory_fraction
    n_traj, n_traj_val = int(round(frac * gn.batch_size)), int(round(frac * gn.val_batch_size))
    refresh = trajectory_refresher(loss, setup, graphdef, run.target, config) if n_traj else None

    state = GNState(jnp.zeros_like(theta), jnp.asarray(gn.damping, dtype), jax.random.PRNGKey(config.seed + 17))
    step, history, seconds = 0, [], 0.0
    if run_dir is None and run.run_dir is not None:
        run_dir = Path(run.run_dir) / FINETUNE_DIR
    if run_dir is not None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        if (run_dir / CHECKPOINT).exists():
            if not resume:
                raise FileExistsError(f"{run_dir} already holds a fine-tuning; pass resume=True (--resume)")
            params, state, data = checkpoint.load(run_dir / CHECKPOINT, params, state)
            theta = ravel_pytree(params)[0]
            step, history, seconds = data["step"], data["history"], data["train_seconds"]
        config.to_yaml(run_dir / CONFIG)

    def save():
        if run_dir is not None:
            checkpoint.save(run_dir / CHECKPOINT, unravel(theta), state, step, history, seconds, run_dir / HISTORY)

    show = progress if progress is not None else __import__("sys").stderr.isatty()
    bar = tqdm(total=gn.steps, initial=step, disable=not show, desc=f"Gauss-Newton ({solver})", unit="step")
    try:
        while step < gn.steps:
            key = jax.random.fold_in(state.key, step // gn.resample_every)
            xs, ts = domain.sample(jax.random.fold_in(key, 0), gn.batch_size, dtype)
            xv, tv = domain.sample(jax.random.fold_in(jax.random.fold_in(state.key, step), 1),
                                   gn.val_batch_size, dtype)
            t0 = time.perf_counter()
            if refresh is not None:
                k_traj = jax.random.fold_in(jax.random.fold_in(state.key, step), 2)
                cache = refresh(unravel(theta), jax.random.fold_in(k_traj, 0))
                xs, ts = mix_batch(jax.random.fold_in(k_traj, 1), xs, ts, *cache, n_traj)
                xv, tv = mix_batch(jax.random.fold_in(k_traj, 2), xv, tv, *cache, n_traj_val)
            theta, state, info = step_fn(dp.replicate(theta), state, xs, ts, xv, tv)
            info = {k: float(v) for k, v in info.items()}
            dt = time.perf_counter() - t0
            step, seconds = step + 1, seconds + dt
            history.append({"step": step, **info, "solver": solver, "trajectory_points": n_traj, "seconds": seconds})
            bar.set_postfix(loss=f"{info['val_loss_after']:.3g}", eta=f"{info['eta']:.3g}",
                            cg=int(info["cg_iters"]), eps=f"{info['damping']:.1e}")
            bar.update(1)
            if step % gn.checkpoint_every == 0 or step == gn.steps:
                save()
    except KeyboardInterrupt:
        save()
        raise
    finally:
        bar.close()
    hist = pd.DataFrame(history)
    spi = float(np.median(hist["seconds"].diff().dropna())) if len(hist) > 1 else seconds
    return Run(config, run.target, loss, setup, graphdef, unravel(theta), hist, run_dir, step,
               run.train_seconds + seconds, spi)
