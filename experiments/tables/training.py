"""What a loss cell computes: train (or resume) a pinnflow run in the cell's run directory, score it with
`pf.evaluate` (plus the loss on a fixed fresh batch), and draw paper-style figures of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import jax
import numpy as np

import pinnflow as pf
import problems as problem_registry
from experiments.framework.cells import Cell, Context
from pinnflow.core.config import ConfigError
from pinnflow.core.precision import precision
from pinnflow.core.rundir import RunDir
from pinnflow.operators import EXACT
from pinnflow.pinn.train import build, make_loss_fn

__all__ = ["seconds_per_it", "make_target", "train_run", "fresh_loss", "score", "write_figures", "loss_cell"]


def seconds_per_it(run: pf.Run) -> float:
    """The run's median seconds per step; for a finished run restored from its checkpoint (`pf.train` then
    times nothing) the median over its history's chunks, excluding the first (compilation)."""
    if np.isfinite(run.seconds_per_it):
        return float(run.seconds_per_it)
    h = run.history
    if h is None or len(h) < 2 or "seconds" not in h:
        return float(run.train_seconds / max(run.step, 1))
    return float((h["seconds"].diff() / h["step"].diff()).dropna().median())


def make_target(config: pf.Config) -> pf.Target:
    """The config's problem from the `problems` registry."""
    return problem_registry.get(config.problem, **config.problem_params)


def train_run(target: pf.Target, config: pf.Config, run_dir: Path, progress: bool) -> pf.Run:
    """`pf.train` in `run_dir`, resuming (or returning at once) if it holds a run of the same config, and
    starting afresh if it holds another (`RunDir.require_config`, the check `pf.train` makes on resume)."""
    rd = RunDir(Path(run_dir))
    if rd.exists():
        try:
            rd.require_config(config)
        except (ConfigError, OSError):  # another config, or none readable: not this cell's run
            shutil.rmtree(rd.path)
    return pf.train(target, config, run_dir=run_dir, resume=True, progress=progress)


def fresh_loss(run: pf.Run, n: int = 16384, seed: int = 1234, chunk: int = 4096) -> float:
    """The run's loss on a fixed fresh batch of n uniform collocation points (the same for every row)."""
    with precision(run.config.precision):
        loss, setup, domain, graphdef, _ = build(run.target, run.config)
        fn = jax.jit(make_loss_fn(loss, setup, graphdef, EXACT, run.config.alpha))
        xs, ts = domain.sample(jax.random.PRNGKey(seed), n)
        total = 0.0
        for i in range(0, n, chunk):  # bounded memory
            x, t = xs[i:i + chunk], ts[i:i + chunk]
            total += float(fn(run.params, x, t, jax.random.PRNGKey(0))[0]) * len(t)
    return total / n


def score(run: pf.Run, loss_n: int = 0, **extra) -> dict:
    """pf.evaluate's metrics of a run (in the run's precision), 1 − ESS, and the fresh-batch loss if loss_n."""
    with precision(run.config.precision):
        m, _ = pf.evaluate(run)
        m = {k: v for k, v in m.items() if k not in ("problem", "loss")}
        m["seconds_per_it"] = seconds_per_it(run)
        h = run.history
        m["train_loss"] = float(h["loss"].iloc[-1]) if "loss" in h and len(h) else None
        if loss_n:
            m["loss"] = fresh_loss(run, int(loss_n))
    return {**m, **extra}


def write_figures(run: pf.Run, cell: Cell, ctx: Context) -> None:
    """Paper 003 Figs. 1–5 for a trained cell (seed 0 only): samples and first marginal vs exact, ODE
    trajectories over time, and (d = 2) the learned density path, as PNG under <cells dir>/figures/."""
    from pinnflow.viz import plot_density_path, plot_samples, plot_trajectories

    out = ctx.cells_dir / "figures"
    out.mkdir(parents=True, exist_ok=True)
    with precision(run.config.precision):
        samples = pf.sample(run, jax.random.PRNGKey(99), 5000)
        plot_samples(run, samples, out / f"{cell.id}_samples.png")
        plot_trajectories(run, out / f"{cell.id}_trajectories.png", n=200, steps=run.config.sampler.steps)
        if run.target.dim == 2:
            plot_density_path(run, out / f"{cell.id}_density_path.png", samples=samples)


def loss_cell(cell: Cell, ctx: Context, loss: str | None = None) -> dict:
    """Train `loss` (default: the cell's method) under the cell's config, score it, and for seed 0 draw its
    figures."""
    config = ctx.config(cell, loss or cell.method)
    target = make_target(config)
    run = train_run(target, config, ctx.run_dir / cell.id, ctx.progress)
    scores = score(run, ctx.params(cell).get("loss_n", 0))
    if cell.seed == 0 and ctx.figures:
        write_figures(run, cell, ctx)
    return scores
