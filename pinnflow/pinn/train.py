"""Adam training of a registered loss on collocation batches (paper 003 §3, App. B.1).

`train(target, config, run_dir=None)` builds the loss, the networks and the collocation domain, and hands a
pure step to the shared run loop (`pinnflow.core.loop`): chunks of `optim.chunk` steps under `lax.scan`, a
progress bar, a history table, atomic checkpoints every `optim.checkpoint_every` steps in `run_dir`, exact
resume (`resume=True`), and `TrainingDiverged` (after keeping the last good state) on a non-finite loss.
Everything runs in the config's precision; the caller's precision is restored afterwards.
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

from pinnflow.core.chunking import mean_value_and_grad, resolve_chunk
from pinnflow.core.loop import TrainingDiverged, run_loop
from pinnflow.core.parallel import DataParallel
from pinnflow.core.precision import precision
from pinnflow.core.rng import Stream, stream_key
from pinnflow.core.rundir import CHECKPOINT, CONFIG, HISTORY, Progress, RunDir
from pinnflow.metrics import log_z_importance
from pinnflow.operators import Auto, Backend, backend, unbiased_square
from pinnflow.optim.adam import learning_rate_schedule, make_optimizer
from pinnflow.pinn import losses
from pinnflow.pinn.collocation import Domain, mix_batch, no_trajectory_cache, trajectory_refresher
from pinnflow.pinn.config import Config
from pinnflow.pinn.parametrisations import PARAMETRISATIONS, Fields, GaussianPrior, Learned, Setup
from pinnflow.target import FINITE_HINT, Target

RESUMABLE = ("optim.steps", "optim.checkpoint_every", "optim.point_chunk")
"""Config keys a resumed run may change: extending a run (with `optim.schedule_steps` fixed, the result equals
one uninterrupted run; with it null the horizon follows `optim.steps`, so the remaining learning rates change)."""

__all__ = ["RESUMABLE", "Run", "TrainState", "train", "TrainingDiverged", "build", "make_loss_fn",
           "make_value_and_grad", "make_point_terms",
           "make_point_residual", "load_run", "operator", "flow_of", "CHECKPOINT", "CONFIG", "HISTORY"]


@dataclass
class Run:
    """A trained (or training) transport: config, target, learned parameters and history."""

    config: Config
    target: Target
    loss: losses.Loss
    setup: Setup
    graphdef: nnx.GraphDef
    params: nnx.State
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    run_dir: Path | None = None
    step: int = 0
    train_seconds: float = 0.0
    seconds_per_it: float = float("nan")

    @property
    def model(self) -> Learned:
        return nnx.merge(self.graphdef, self.params)

    def fields(self, params: nnx.State | None = None) -> Fields:
        """The learned callables V, μ, flow ... (with `params`, or the run's own)."""
        model = nnx.merge(self.graphdef, self.params if params is None else params)
        return PARAMETRISATIONS.get(self.loss.parametrisation).fields(model, self.setup)

    @property
    def num_params(self) -> int:
        return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(self.params)))


class TrainState(NamedTuple):
    """The Adam loop's state: parameters, optimiser state, PRNG key, and the parameters of the last
    trajectory-cache refresh (so a resumed run rebuilds the same cache)."""

    params: nnx.State
    opt_state: optax.OptState
    key: jax.Array
    traj_params: nnx.State


# ---- building blocks ----------------------------------------------------------------------------------


def operator(config: Config) -> Backend:
    """The configured trace backend (`config.operator`, a name in `operators.BACKENDS`)."""
    return backend(config.operator, config.hutchinson_probes)


def initial_log_z(target: Target, prior: GaussianPrior, z_init: float | str, n: int = 100_000) -> float:
    """z_init as a number: a number passes through; "prior_is" is log mean(ρ/p_prior) over n prior samples
    (fixed key). Use it when log Z is far from 0 (e.g. unnormalised Gaussian coordinates: many_well_50 has
    log Z ≈ 42.8), since Adam moves z by about lr per step and the networks absorb the offset otherwise."""
    if z_init != "prior_is":
        return float(z_init)
    x = prior.sample(jax.random.PRNGKey(Stream.FIXED_PRIOR_IS), n)
    est = float(log_z_importance(target.log_prob(x) - prior.log_prob(x)))
    if not np.isfinite(est):
        raise ValueError(f"z_init='prior_is': the prior importance-sampling estimate of log Z for {target.name!r} "
                         "is not finite; pass a number")
    return est


def build(target: Target, config: Config, *, abstract: bool = False
          ) -> tuple[losses.Loss, Setup, Domain, nnx.GraphDef, nnx.State]:
    """Resolve the loss defaults, build the networks (seeded by `config.seed`) and the collocation domain
    (in the current precision: call it inside `precision(config.precision)`).

    `abstract=True` (for loading checkpointed parameters into the structure): the parameters are shapes and
    dtypes only (`nnx.eval_shape`: no initialiser runs or compiles), and z_init = "prior_is" is not estimated
    (the loaded parameters hold the learned z; `setup.z_init`, only the initial value, is then NaN)."""
    loss = losses.get(config.loss)
    T = loss.T if config.T is None else float(config.T)
    sigma = loss.sigma if config.sigma is None else float(config.sigma)
    prior = GaussianPrior(target.dim, config.prior_std)
    skip_z = abstract and config.z_init == "prior_is"
    z_init = float("nan") if skip_z else initial_log_z(target, prior, config.z_init)
    setup = Setup(target, prior, T, sigma, config.network, z_init, config.drift_offset)

    def init() -> Learned:
        return PARAMETRISATIONS.get(loss.parametrisation).init(setup, nnx.Rngs(config.seed))

    graphdef, params = nnx.split(nnx.eval_shape(init) if abstract else init())
    domain = Domain.build(target, config.collocation, config.prior_std, T)
    return loss, setup, domain, graphdef, params


def make_point_terms(loss: losses.Loss, setup: Setup, graphdef: nnx.GraphDef, op: Backend):
    """(params, x (d,), t, key) -> {term: squared residual} at one point (the unbiased product of two
    independent estimates with a stochastic backend, `unbiased_square`)."""
    pz = PARAMETRISATIONS.get(loss.parametrisation)

    def point(params, x, t, k):
        fields = pz.fields(nnx.merge(graphdef, params), setup)
        return unbiased_square(lambda kk: loss.residuals(fields, x, t, op, kk), k if op.stochastic else None)

    return point


def make_loss_fn(loss: losses.Loss, setup: Setup, graphdef: nnx.GraphDef, op: Backend, alpha: float):
    """(params, x (n,d), t (n,), key) -> (total, {term: mean square}) with the loss's weights.

    With a stochastic backend each squared residual is the unbiased product of two independent
    estimates (`unbiased_square`)."""
    point = make_point_terms(loss, setup, graphdef, op)

    def loss_fn(params, xs, ts, key):
        keys = jax.random.split(key, xs.shape[0])
        sq = jax.vmap(point, in_axes=(None, 0, 0, 0))(params, xs, ts, keys)
        terms = {k: jnp.mean(v) for k, v in sq.items()}
        weights = loss.term_weights(alpha, terms)
        return sum(weights[k] * v for k, v in terms.items()), terms

    return loss_fn


def make_value_and_grad(loss: losses.Loss, setup: Setup, graphdef: nnx.GraphDef, op: Backend, alpha: float,
                        chunk: int | None = None):
    """(params, xs, ts, key) -> ((total, {term: mean square}), ∇total): `jax.value_and_grad` of `make_loss_fn`'s
    loss (same per-point keys), accumulated over slices of `chunk` points (None: one vmap; see
    `pinnflow.core.chunking`)."""
    point = make_point_terms(loss, setup, graphdef, op)

    def value_and_grad(params, xs, ts, key):
        keys = jax.random.split(key, xs.shape[0])
        return mean_value_and_grad(point, lambda terms: loss.term_weights(alpha, terms), params, (xs, ts, keys),
                                   chunk)

    return value_and_grad


def make_point_residual(loss: losses.Loss, setup: Setup, graphdef: nnx.GraphDef, alpha: float,
                        op: Backend | None = None):
    """(params, x (d,), t) -> (k,): the loss's k terms at one point, each times √weight, so that the mean over
    a batch of the squared norm is the loss. Gauss–Newton stacks these. `op` must be exact (default: Auto)."""
    op = Auto() if op is None else op
    if op.stochastic:
        raise ValueError(f"point residuals need an exact operator backend, got {op!r}")
    pz = PARAMETRISATIONS.get(loss.parametrisation)

    def point(params, x, t):
        fields = pz.fields(nnx.merge(graphdef, params), setup)
        r = loss.residuals(fields, x, t, op, None)
        w = loss.term_weights(alpha, r)
        return jnp.stack([jnp.sqrt(w[k]) * r[k] for k in sorted(r)])

    return point


def flow_of(loss: losses.Loss, setup: Setup, graphdef: nnx.GraphDef):
    """params -> the learned ODE drift (μ, or the probability flow of eq. 66 for SDE losses)."""
    pz = PARAMETRISATIONS.get(loss.parametrisation)
    return lambda params: pz.fields(nnx.merge(graphdef, params), setup).flow


def _check_target(target: Target, domain: Domain) -> None:
    """Catch a non-finite target density on Ω before compiling anything."""
    xs, _ = domain.sample(jax.random.PRNGKey(Stream.FIXED_DOMAIN_CHECK), 256)
    lp = np.asarray(target.log_prob(xs))
    if not np.all(np.isfinite(lp)):
        bad = np.asarray(xs)[~np.isfinite(lp)][0]
        raise ValueError(f"target {target.name!r}: log_density is not finite at collocation point {bad.tolist()}"
                         f" of the domain. {FINITE_HINT}")


def trajectory_schedule(refresh, traj_key: jax.Array, every: int, placeholder, enabled: bool):
    """The loop's `prepare` hook for trajectory collocation (App. D.1): at every multiple of `every` (after
    step 0) the cache is rebuilt from the current parameters; the first chunk of a (resumed) run rebuilds the
    cache of the last refresh from the checkpointed `traj_params`, so resume is exact."""
    cache = [None]

    def prepare(state: TrainState, step: int):
        if not enabled:
            return state, placeholder
        if step % every == 0 and step > 0:
            state = state._replace(traj_params=state.params)
            cache[0] = refresh(state.traj_params, jax.random.fold_in(traj_key, step))
        elif cache[0] is None:
            cache[0] = refresh(state.traj_params, jax.random.fold_in(traj_key, step - step % every))
        return state, cache[0]

    return prepare


# ---- training -----------------------------------------------------------------------------------------


def train(target: Target, config: Config, run_dir: str | Path | None = None, resume: bool = False,
          progress: bool | None = None, callback: Callable[[dict], None] | None = None,
          monitor: Callable[[Run], None] | None = None) -> Run:
    """Train `config.loss` on `target` with Adam; see the module docstring for checkpoints and resume.

    `callback(row)` gets each chunk's history row; `monitor(run)` gets a `Run` with the parameters after each
    chunk (e.g. `lambda r: r.step % 20000 or print(pf.evaluate(r)[0]["ess"])` for intermediate metrics)."""
    config.validate()
    rundir = None if run_dir is None else RunDir.open(run_dir, config, resume, may_change=RESUMABLE)
    with precision(config.precision):
        loss, setup, domain, graphdef, params = build(target, config)
        _check_target(target, domain)
        o, c = config.optim, config.collocation
        dp = DataParallel.create(config.data_parallel)
        dp.check_batch(o.batch_size, "optim.batch_size")
        tx = make_optimizer(o)
        lr_at = learning_rate_schedule(o)
        value_and_grad = make_value_and_grad(loss, setup, graphdef, operator(config), config.alpha,
                                             resolve_chunk(o.point_chunk, target.dim, dp.size))
        n_cache = int(round(c.trajectory_fraction * o.batch_size))

        def step(state: TrainState, cache):
            key, k_batch, k_res, k_mix = jax.random.split(state.key, 4)
            xs, ts = domain.sample(k_batch, o.batch_size)
            xs, ts = mix_batch(k_mix, xs, ts, *cache, n_cache)
            xs, ts = dp.shard_batch(xs), dp.shard_batch(ts)
            (total, terms), grads = value_and_grad(state.params, xs, ts, k_res)
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
            new = state._replace(params=optax.apply_updates(state.params, updates), opt_state=opt_state, key=key)
            return new, {"loss": total, **terms}

        refresh = trajectory_refresher(flow_of(loss, setup, graphdef), setup.prior, setup.T, target, c)
        prepare = trajectory_schedule(refresh, stream_key(config.seed, Stream.TRAJECTORIES), c.trajectory_every,
                                      no_trajectory_cache(target.dim, setup.T), n_cache > 0)

        def to_run(params, prog: Progress) -> Run:
            return Run(config, target, loss, setup, graphdef, params, pd.DataFrame(prog.history),
                       None if rundir is None else rundir.path, prog.step, prog.seconds, prog.seconds_per_it)

        def on_chunk(state: TrainState, prog: Progress) -> None:
            if callback is not None:
                callback(prog.history[-1])
            if monitor is not None:
                monitor(to_run(state.params, prog))

        state = TrainState(params, tx.init(params), stream_key(config.seed, Stream.TRAIN), params)
        result = run_loop(
            step, state, steps=o.steps, chunk=o.chunk, name=f"{config.loss} on {target.name}", rundir=rundir,
            resume=resume, checkpoint_every=o.checkpoint_every, parallel=dp, prepare=prepare,
            extra_row=lambda s: {"lr": float(lr_at(s))}, on_chunk=on_chunk, progress=progress,
            export=lambda s: {"params": s.params},
            diverged_hint="Lower optim.lr, enable optim.clip_norm or shrink the collocation domain.")
        return to_run(result.state.params, result.progress)


def load_run(run_dir: str | Path, target: Target | None = None) -> Run:
    """Rebuild a run (or a fine-tuning) from its directory: config + checkpointed parameters. The target comes
    from `config.problem` (the problems registry) or `config.target` (a reference to your own) unless given."""
    rundir = RunDir(Path(run_dir))
    if not rundir.exists():
        raise FileNotFoundError(f"no checkpoint in {rundir.path}")
    config = Config.from_saved(rundir.path / CONFIG)
    if target is None:
        if config.problem is None and config.target is None:
            raise ValueError(f"{rundir.path}: the config names no `problem` or `target` reference; pass the "
                             "target explicitly: load_run(dir, target=...)")
        import problems

        target = problems.resolve(config.problem, config.target, config.problem_params)
    with precision(config.precision):  # the structure only: the checkpoint supplies the values
        loss, setup, _, graphdef, params = build(target, config, abstract=True)
        trees, prog = rundir.load({"params": params})
    return Run(config, target, loss, setup, graphdef, trees["params"], pd.DataFrame(prog.history), rundir.path,
               prog.step, prog.seconds, prog.seconds_per_it)
