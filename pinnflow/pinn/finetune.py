"""Fine-tuning a trained PINN run (paper 003 §4, Table 3): Gauss–Newton on the loss's stacked residual vector
(`pinnflow.optim.gauss_newton`), or L-BFGS on the loss (`pinnflow.optim.lbfgs`), both on the shared run loop.

The Gauss–Newton batches follow the run's collocation: with `collocation.trajectory_fraction` > 0 that share
of both the Gramian batch and the held-out batch lies on trajectories of the current model, redrawn every
step. A fine-tuning runs in `gn.precision` (default float64) and leaves the caller's precision as it was.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import pandas as pd
from jax.flatten_util import ravel_pytree

from pinnflow.core.loop import run_loop
from pinnflow.core.parallel import DataParallel
from pinnflow.core.precision import in_run_precision, precision
from pinnflow.core.rng import Stream, stream_key
from pinnflow.core.rundir import RunDir
from pinnflow.operators import EXACT
from pinnflow.optim.gauss_newton import GNState, choose_solver, make_step
from pinnflow.optim.lbfgs import make_lbfgs
from pinnflow.pinn.collocation import mix_batch, trajectory_refresher
from pinnflow.pinn.config import Config
from pinnflow.pinn.train import Run, build, flow_of, make_loss_fn, make_point_residual
from pinnflow.target import Target

__all__ = ["gauss_newton", "lbfgs", "FinetuneState", "FINETUNE_DIR"]

FINETUNE_DIR = "finetune"
RESUMABLE = ("gn.steps", "gn.checkpoint_every")  # keys a resumed fine-tuning may change (to extend it)


class FinetuneState(NamedTuple):
    """θ (flat parameters), the Gauss–Newton solver state, the key of the next step, the key of the current
    Gramian batch (kept for `gn.resample_every` steps) and the step counter."""

    theta: jax.Array
    gn: GNState
    key: jax.Array
    batch_key: jax.Array
    i: jax.Array


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
    prec = gn.precision or config.precision
    if prec != config.precision:  # the fine-tuned run lives in the fine-tuning precision
        config = config.override([f"precision={prec}"])
    if run_dir is None and run.run_dir is not None:
        run_dir = Path(run.run_dir) / FINETUNE_DIR
    rundir = None if run_dir is None else RunDir.open(run_dir, config, resume, what="fine-tuning",
                                                         may_change=RESUMABLE)
    with precision(prec):
        loss, setup, domain, graphdef, _ = build(run.target, config)
        dtype = jnp.result_type(float)
        params = jax.tree.map(lambda x: jnp.asarray(x, dtype), run.params)
        theta, unravel = ravel_pytree(params)
        point = make_point_residual(loss, setup, graphdef, config.alpha)
        x0, t0 = jnp.zeros(run.target.dim, dtype), jnp.asarray(0.5, dtype)
        n_terms = jax.eval_shape(point, params, x0, t0).shape[0]
        solver = choose_solver(gn, gn.batch_size * n_terms, theta.shape[0], jnp.dtype(dtype).itemsize)
        dp = DataParallel.create(config.data_parallel)
        for what, n in (("gn.batch_size", gn.batch_size), ("gn.val_batch_size", gn.val_batch_size)):
            dp.check_batch(n, what)
        gn_step, _ = make_step(point, unravel, gn, solver, dp.shard_batch)
        frac = config.collocation.trajectory_fraction
        n_traj, n_traj_val = int(round(frac * gn.batch_size)), int(round(frac * gn.val_batch_size))
        refresh = trajectory_refresher(flow_of(loss, setup, graphdef), setup.prior, setup.T, run.target,
                                       config.collocation)

        def step(s: FinetuneState, aux):
            del aux
            key, k_batch, k_val, k_traj = jax.random.split(s.key, 4)
            batch_key = jnp.where(s.i % gn.resample_every == 0, k_batch, s.batch_key)
            xs, ts = domain.sample(batch_key, gn.batch_size, dtype)
            xv, tv = domain.sample(k_val, gn.val_batch_size, dtype)
            if n_traj:
                k_cache, k_mix, k_mix_val = jax.random.split(k_traj, 3)
                cache = refresh(unravel(s.theta), k_cache)
                xs, ts = mix_batch(k_mix, xs, ts, *cache, n_traj)
                xv, tv = mix_batch(k_mix_val, xv, tv, *cache, n_traj_val)
            theta, gn_state, info = gn_step(s.theta, s.gn, xs, ts, xv, tv)
            return FinetuneState(theta, gn_state, key, batch_key, s.i + 1), info

        key = stream_key(config.seed, Stream.FINETUNE)
        state = FinetuneState(theta, GNState(jnp.zeros_like(theta), jnp.asarray(gn.damping, dtype)), key, key,
                              jnp.zeros((), jnp.int32))
        result = run_loop(
            step, state, steps=gn.steps, chunk=1, name=f"Gauss-Newton ({solver})", rundir=rundir, resume=resume,
            checkpoint_every=gn.checkpoint_every, parallel=dp, progress=progress, finite_key="val_loss_after",
            extra_row=lambda _: {"solver": solver, "trajectory_points": n_traj},
            export=lambda s: {"params": unravel(s.theta)},
            diverged_hint="The held-out loss is not finite: check the run's parameters.")
        prog = result.progress
        return Run(config, run.target, loss, setup, graphdef, unravel(result.state.theta),
                   pd.DataFrame(prog.history), None if rundir is None else rundir.path, prog.step,
                   run.train_seconds + prog.seconds, prog.seconds_per_it)


@in_run_precision
def lbfgs(run: Run, steps: int = 500, batch_size: int = 4096, resample_every: int = 100, memory: int = 20,
          seed: int = 0, seconds: float | None = None, progress: bool | None = False) -> Run:
    """Fine-tune `run` with L-BFGS for `steps` steps (or until `seconds` of wall time); returns a new `Run`.
    The loss is the run's, with exact traces; a non-finite loss stops it with the last finite parameters."""
    if steps < 1 or batch_size < 1:
        raise ValueError(f"lbfgs needs steps and batch_size >= 1, got {steps}, {batch_size}")
    loss, setup, domain, graphdef, _ = build(run.target, run.config)
    loss_fn = make_loss_fn(loss, setup, graphdef, EXACT, run.config.alpha)
    theta, unravel = ravel_pytree(run.params)  # a flat vector: optax's state lookup needs a plain array
    init, step = make_lbfgs(lambda th, xs, ts: loss_fn(unravel(th), xs, ts, jax.random.PRNGKey(0))[0],
                            lambda k: domain.sample(k, batch_size), memory, resample_every)
    result = run_loop(step, init(theta, stream_key(seed, Stream.LBFGS)), steps=steps, chunk=resample_every,
                      name="L-BFGS", progress=progress, max_seconds=seconds, on_nonfinite="stop")
    prog = result.progress
    return dataclasses.replace(run, params=unravel(result.state.theta), history=pd.DataFrame(prog.history),
                               step=prog.step, run_dir=None, train_seconds=run.train_seconds + prog.seconds,
                               seconds_per_it=prog.seconds_per_it)
