"""Training of a diffusion model by DSM + w_R · a Fokker–Planck residual (paper 002 §4) on the shared run loop.

`train(dataset, config, run_dir=None)` checks the inputs (data shape and finiteness, the collocation box
against the data, t_min < T, registry names: all before anything compiles), builds the network, and hands a
pure Adam step to `pinnflow.core.loop.run_loop`: chunks under `lax.scan`, a progress bar, a history row per
chunk with each term (`dsm`, `residual`, `boundary`, `loss`, `lr`), atomic checkpoints, exact resume, and
`TrainingDiverged` on a non-finite loss. One step draws B data points x₀ (a fresh draw from the data set, or
a resample of a fixed training set), t by `loss.time_sampling`, ε ~ N(0, I), and — when w_R > 0 — C
collocation points x ~ U(Ω), s ~ U(residual_t_min, T):

    L = (1/B) Σ λ(t)‖s(x_t, t) + ε/σ(t)‖²  +  w_R [(1/C) Σ r(x, s)²  +  boundary_weight · mean exp(2φ) on ∂Ω].

The DSM term sums over coordinates (eq. 5); the authors' code averages over them, which halves its DSM and so
doubles its effective w_R relative to ours.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from flax import nnx

from pinnflow.core.config import ConfigError
from pinnflow.core.loop import TrainingDiverged, run_loop
from pinnflow.core.precision import precision
from pinnflow.core.rng import Stream, stream_key
from pinnflow.core.rundir import CONFIG, Progress, RunDir
from pinnflow.dataset import Dataset, check_data
from pinnflow.diffusion.config import RESUMABLE, DiffusionConfig
from pinnflow.diffusion.losses import (
    BASES,
    PARAMETRISATIONS,
    REGULARISERS,
    TIME_SAMPLING,
    WEIGHTINGS,
    Fields,
    Parametrisation,
    dsm_point,
)
from pinnflow.diffusion.samplers import sample, time_grid
from pinnflow.diffusion.sdes import ForwardSDE
from pinnflow.nn import network
from pinnflow.operators import backend
from pinnflow.optim.adam import learning_rate_schedule, make_optimizer

__all__ = ["DiffusionRun", "TrainState", "train", "load_run", "build", "make_loss_fn", "collocation_box", "base_of",
           "TrainingDiverged"]


class TrainState(NamedTuple):
    params: nnx.State
    opt_state: optax.OptState
    key: jax.Array


@dataclass
class DiffusionRun:
    """A trained (or training) diffusion model: config, data set, forward SDE, parameters and history."""

    config: DiffusionConfig
    dataset: Dataset
    sde: ForwardSDE
    parametrisation: Parametrisation
    graphdef: nnx.GraphDef
    params: nnx.State
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    run_dir: Path | None = None
    base: Callable | None = None
    step: int = 0
    train_seconds: float = 0.0
    seconds_per_it: float = float("nan")

    def fields(self, params: nnx.State | None = None) -> Fields:
        """φ (None for a score network) and the score s = ∇φ, functions of one point (x (d,), t)."""
        return self.parametrisation.fields(nnx.merge(self.graphdef, self.params if params is None else params),
                                           self.base)

    def sample(self, kind: str, n: int, seed: int = 0, x_T=None) -> np.ndarray:
        """n samples at t_end from the `ode` or `sde` sampler (config.sampler), seeded by `seed`."""
        s = self.config.sampler
        ts = time_grid(self.sde.T, s.t_end, s.steps, s.fine_final)
        with precision(self.config.precision):
            return sample(kind, self.fields().score, self.sde, n, self.dataset.dim, jax.random.PRNGKey(seed), ts,
                          batch=s.batch, x_T=x_T)

    @property
    def num_params(self) -> int:
        return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(self.params)))


def collocation_box(dataset: Dataset, config: DiffusionConfig) -> tuple[np.ndarray, np.ndarray]:
    """Ω: `loss.box`, or the data set's box."""
    box = config.loss.box if config.loss.box is not None else dataset.box
    lo, hi = np.asarray(box[0], float), np.asarray(box[1], float)
    if lo.shape != (dataset.dim,):
        raise ConfigError(f"loss.box: {lo.size} coordinates for data of dimension {dataset.dim}")
    return lo, hi


def check_inputs(dataset: Dataset, config: DiffusionConfig, lo: np.ndarray, hi: np.ndarray) -> None:
    """Data finite and of the right shape; Ω holding the bulk of the data (else the residual constrains the
    model where there is no data and DSM trains it where the residual is blind)."""
    if dataset.name != config.data.name:
        raise ConfigError(f"data.name is {config.data.name!r} but the data set passed is {dataset.name!r}; set "
                          f"data.name={dataset.name!r} so that the run records what it learned from")
    x = check_data(dataset.draw(Stream.FIXED_DOMAIN_CHECK, 4096), dataset.dim, f"data set {dataset.name!r}")
    e = config.eval.box
    if e is not None:
        inside = float(np.mean(np.all(np.abs(x) <= e, axis=1)))
        if inside < 0.5:
            raise ConfigError(f"eval.box: the histogram box [-{e:g}, {e:g}]^{dataset.dim} holds only "
                              f"{100 * inside:.1f}% of the data set {dataset.name!r}; widen it (or null: the "
                              "data set's box)")
    if config.loss.w_R > 0:
        inside = float(np.mean(np.all((x >= lo) & (x <= hi), axis=1)))
        if inside < 0.9:
            raise ConfigError(f"loss.box [{lo.tolist()}, {hi.tolist()}] holds only {100 * inside:.1f}% of the "
                              f"data set {dataset.name!r}; widen it so that Ω covers the data")


def build(dataset: Dataset, config: DiffusionConfig, *, abstract: bool = False):
    """(sde, parametrisation, graphdef, params) in the current precision (call inside `precision(...)`)."""
    sde = config.forward_sde()
    par = PARAMETRISATIONS.get(config.loss.parametrisation)
    d = dataset.dim

    def init():
        return network(config.network.kind, d, 1 if par.scalar else d, config.network, sde.T,
                       nnx.Rngs(config.seed), scalar=par.scalar)

    graphdef, params = nnx.split(nnx.eval_shape(init) if abstract else init())
    return sde, par, graphdef, params


def base_of(dataset: Dataset, config: DiffusionConfig, sde: ForwardSDE) -> Callable | None:
    """The potential's fixed base (`loss.base`), its data statistics from a fixed draw (reproducible on load)."""
    if config.loss.base == "none":
        return None
    return BASES.get(config.loss.base, sde=sde, data=dataset.draw(Stream.FIXED_DOMAIN_CHECK, 10_000))


def _training_draw(dataset: Dataset, config: DiffusionConfig) -> Callable[[jax.Array, int], jax.Array]:
    """x₀ batches: fresh draws, or resamples of a fixed training set of `data.size` draws."""
    if config.data.size is None:
        return dataset.sample
    fixed = jnp.asarray(dataset.draw(config.seed + Stream.TRAINING_SET, config.data.size))
    return lambda key, n: fixed[jax.random.randint(key, (n,), 0, fixed.shape[0])]


def make_loss_fn(config: DiffusionConfig, sde: ForwardSDE, par: Parametrisation, graphdef: nnx.GraphDef,
                 draw: Callable, lo: np.ndarray, hi: np.ndarray, base: Callable | None = None):
    """loss(params, key) -> (L, {"dsm", "residual", "boundary"}); the residual terms only when w_R > 0."""
    lc = config.loss
    B, C, d = config.optim.batch_size, lc.collocation, lo.size
    weighting = WEIGHTINGS.get(lc.weighting)
    times = TIME_SAMPLING.get(lc.time_sampling)
    reg = REGULARISERS.get(lc.regulariser)
    op = backend(lc.operator)
    regularise = lc.w_R > 0
    boundary = regularise and lc.boundary_weight > 0 and par.scalar

    def loss(params, key):
        fields = par.fields(nnx.merge(graphdef, params), base)
        k0, kt, ke, kx, ks, kb, kf = jax.random.split(key, 7)
        dtype = jax.tree_util.tree_leaves(params)[0].dtype
        x0 = draw(k0, B).astype(dtype)
        t = times(kt, B, lc.t_min, sde.T).astype(dtype)
        eps = jax.random.normal(ke, (B, d), dtype)
        dsm = jnp.mean(jax.vmap(lambda a, b, c: dsm_point(fields.score, sde, weighting, a, b, c))(x0, t, eps))
        terms = {"dsm": dsm}
        total = dsm
        if regularise:
            lo_j, hi_j = jnp.asarray(lo, dtype), jnp.asarray(hi, dtype)
            xs = jax.random.uniform(kx, (C, d), dtype, lo_j, hi_j)
            ss = jax.random.uniform(ks, (C,), dtype, lc.residual_t_min, sde.T)
            res = jnp.mean(jax.vmap(lambda x, s: reg(fields, sde, x, s, op))(xs, ss))
            terms["residual"] = res
            total = total + lc.w_R * res
            if boundary:
                xb = jax.random.uniform(kb, (C, d), dtype, lo_j, hi_j)
                face = jax.random.randint(kf, (C,), 0, 2 * d)
                axis, side = face % d, face // d
                onto = jnp.where(side == 0, lo_j[axis], hi_j[axis])
                xb = xb.at[jnp.arange(C), axis].set(onto)
                bnd = jnp.mean(jnp.exp(2 * jax.vmap(fields.potential)(xb, ss)))
                terms["boundary"] = bnd
                total = total + lc.w_R * lc.boundary_weight * bnd
        return total, terms

    return loss


def train(dataset: Dataset, config: DiffusionConfig, run_dir: str | Path | None = None, resume: bool = False,
          progress: bool | None = None, callback: Callable[[dict], None] | None = None) -> DiffusionRun:
    """Train a diffusion model on `dataset` (see the module docstring); `callback(row)` sees each history row."""
    config.validate()
    lo, hi = collocation_box(dataset, config)
    check_inputs(dataset, config, lo, hi)
    rundir = None if run_dir is None else RunDir.open(run_dir, config, resume, what="diffusion run",
                                                       may_change=RESUMABLE)
    o = config.optim
    with precision(config.precision):
        sde, par, graphdef, params = build(dataset, config)
        tx = make_optimizer(o)
        lr_at = learning_rate_schedule(o)
        base = base_of(dataset, config, sde)
        loss_fn = make_loss_fn(config, sde, par, graphdef, _training_draw(dataset, config), lo, hi, base)

        def step(state: TrainState, aux):
            del aux
            key, k = jax.random.split(state.key)
            (total, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, k)
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
            return TrainState(optax.apply_updates(state.params, updates), opt_state, key), {"loss": total, **terms}

        state = TrainState(params, tx.init(params), stream_key(config.seed, Stream.TRAIN))
        result = run_loop(
            step, state, steps=o.steps, chunk=o.chunk, name=f"diffusion on {dataset.name} (w_R={config.loss.w_R:g})",
            rundir=rundir, resume=resume, checkpoint_every=o.checkpoint_every, progress=progress,
            extra_row=lambda s: {"lr": float(lr_at(s))},
            on_chunk=None if callback is None else (lambda s, prog: callback(prog.history[-1])),
            export=lambda s: {"params": s.params},
            diverged_hint="Lower optim.lr, enable optim.clip_norm, raise loss.t_min or lower loss.w_R.")
        prog: Progress = result.progress
        return DiffusionRun(config, dataset, sde, par, graphdef, result.state.params, pd.DataFrame(prog.history),
                            None if rundir is None else rundir.path, base, prog.step, prog.seconds,
                            prog.seconds_per_it)


def load_run(run_dir: str | Path, dataset: Dataset | None = None) -> DiffusionRun:
    """Rebuild a run from its directory (config + checkpointed parameters); the data set comes from the
    `problems.datasets` registry by `data.name` unless given."""
    rundir = RunDir(Path(run_dir))
    if not rundir.exists():
        raise FileNotFoundError(f"no checkpoint in {rundir.path}")
    config = DiffusionConfig.from_saved(rundir.path / CONFIG)
    if dataset is None:
        from problems import datasets

        dataset = datasets.get(config.data.name, **config.data.params)
    with precision(config.precision):
        sde, par, graphdef, params = build(dataset, config, abstract=True)
        trees, prog = rundir.load({"params": params})
    return DiffusionRun(config, dataset, sde, par, graphdef, trees["params"], pd.DataFrame(prog.history),
                        rundir.path, base_of(dataset, config, sde), prog.step, prog.seconds, prog.seconds_per_it)
