"""Adam training of a registered loss on collocation batches (paper 003 §3, App. B.1).

`train(target, config, run_dir=None)` compiles the step loop in chunks of `optim.chunk` steps
(`lax.scan`, no host synchronisation inside a chunk), shows a progress bar, keeps a history table and,
given a run directory, writes atomic checkpoints every `optim.checkpoint_every` steps. `resume=True`
continues a killed run exactly (same step, optimiser state and RNG stream). A non-finite loss stops
training with `TrainingDiverged`; the last good state is saved first.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from flax import nnx
from tqdm.auto import tqdm

from pinnflow import checkpoint, losses, metrics
from pinnflow.collocation import Domain, mix_batch, trajectory_cache
from pinnflow.config import Config
from pinnflow.models import PARAMETRISATIONS, Fields, GaussianPrior, Learned, Setup
from pinnflow.operators import BACKENDS, Auto, Backend, unbiased_square
from pinnflow.parallel import DataParallel
from pinnflow.precision import set_precision
from pinnflow.target import Target

__all__ = ["Run", "train", "TrainingDiverged", "build", "make_loss_fn", "make_point_residual", "load_run"]

CHECKPOINT = "checkpoint.pkl"
CONFIG = "config.yaml"
HISTORY = "history.csv"


class TrainingDiverged(RuntimeError):
    """The loss became non-finite; the last good state was kept."""


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


# ---- building blocks ----------------------------------------------------------------------------------


def operator(config: Config) -> Backend:
    """The configured trace backend (`config.operator`, a name in `operators.BACKENDS`)."""
    params = {"num_probes": config.hutchinson_probes} if config.operator == "hutchinson" else {}
    return BACKENDS.get(config.operator, **params)


def initial_log_z(target: Target, prior: GaussianPrior, z_init: float | str, n: int = 100_000) -> float:
    """z_init as a number: a number passes through; "prior_is" is log mean(ρ/p_prior) over n prior samples
    (fixed key). Use it when log Z is far from 0 (e.g. unnormalised Gaussian coordinates: many_well_50 has
    log Z ≈ 42.8), since Adam moves z by about lr per step and the networks absorb the offset otherwise."""
    if z_init != "prior_is":
        return float(z_init)
    x = prior.sample(jax.random.PRNGKey(20240), n)
    est = float(metrics.log_z_importance(target.log_prob(x) - prior.log_prob(x)))
    if not np.isfinite(est):
        raise ValueError(f"z_init='prior_is': the prior importance-sampling estimate of log Z for {target.name!r} "
                         "is not finite; pass a number")
    return est


def build(target: Target, config: Config) -> tuple[losses.Loss, Setup, Domain, nnx.GraphDef, nnx.State]:
    """Resolve the loss defaults, build the networks (seeded by `config.seed`) and the collocation domain."""
    loss = losses.get(config.loss)
    T = loss.T if config.T is None else float(config.T)
    sigma = loss.sigma if config.sigma is None else float(config.sigma)
    prior = GaussianPrior(target.dim, config.prior_std)
    setup = Setup(target, prior, T, sigma, config.network, initial_log_z(target, prior, config.z_init))
    model = PARAMETRISATIONS.get(loss.parametrisation).init(setup, nnx.Rngs(config.seed))
    graphdef, params = nnx.split(model)
    domain = Domain.build(target, config.collocation, config.prior_std, T)
    return loss, setup, domain, graphdef, params


def make_loss_fn(loss: losses.Loss, setup: Setup, graphdef: nnx.GraphDef, op: Backend, alpha: float):
    """(params, x (n,d), t (n,), key) -> (total, {term: mean square}) with the loss's weights.

    With a stochastic backend each squared residual is the unbiased product of two independent
    estimates (`unbiased_square`)."""
    pz = PARAMETRISATIONS.get(loss.parametrisation)

    def loss_fn(params, xs, ts, key):
        fields = pz.fields(nnx.merge(graphdef, params), setup)

        def point(x, t, k):
            return unbiased_square(lambda kk: loss.residuals(fields, x, t, op, kk), k if op.stochastic else None)

        keys = jax.random.split(key, xs.shape[0])
        sq = jax.vmap(point)(xs, ts, keys)
        terms = {k: jnp.mean(v) for k, v in sq.items()}
        weights = loss.term_weights(alpha, terms)
        return sum(weights[k] * v for k, v in terms.items()), terms

    return loss_fn


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


def learning_rate_schedule(config: Config) -> optax.Schedule:
    """lr decaying exponentially from `optim.lr` to `optim.lr_final` over `optim.steps`."""
    o = config.optim
    return optax.exponential_decay(o.lr, transition_steps=o.steps, decay_rate=o.lr_final / o.lr)


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """Adam on `learning_rate_schedule`; optional global-norm clipping."""
    o = config.optim
    parts = [optax.clip_by_global_norm(o.clip_norm)] if o.clip_norm else []
    return optax.chain(*parts, optax.adam(learning_rate_schedule(config)))


def trajectory_refresher(loss: losses.Loss, setup: Setup, graphdef: nnx.GraphDef, target: Target, config: Config):
    """jitted (params, key) -> trajectory cache of the model's ODE flow (App. D.1) with the sizes of
    `config.collocation`. Cached points beyond 4x the target's box are dropped (runaway trajectories of a
    half-trained flow overflowed many_well_50's quartic)."""
    pz = PARAMETRISATIONS.get(loss.parametrisation)
    c = config.collocation
    far_limit = 4.0 * np.maximum(np.abs(target.domain[0]), np.abs(target.domain[1]))

    @jax.jit
    def refresh(params, key):
        flow = pz.fields(nnx.merge(graphdef, params), setup).flow
        return trajectory_cache(flow, setup.prior, setup.T, c.trajectory_count, c.trajectory_steps, key,
                                limit=far_limit)

    return refresh


def no_trajectory_cache(target: Target, setup: Setup) -> tuple[jax.Array, jax.Array]:
    """A placeholder cache (path, grid) for runs without trajectory collocation (`mix_batch` ignores it)."""
    dtype = jnp.result_type(float)
    return jnp.zeros((2, 1, target.dim), dtype), jnp.array([0.0, setup.T], dtype)


def _save(run_dir: Path, state, traj_params, step: int, history: list[dict], seconds: float) -> None:
    checkpoint.save(run_dir / CHECKPOINT, state[0], (*state[1:], traj_params), step, history, seconds,
                    run_dir / HISTORY)


# ---- the training loop --------------------------------------------------------------------------------


def _check_target(target: Target, setup: Setup, domain: Domain) -> None:
    """Catch a non-finite target density on Ω before compiling anything."""
    xs, _ = domain.sample(jax.random.PRNGKey(1), 256)
    lp = np.asarray(target.log_prob(xs))
    if not np.all(np.isfinite(lp)):
        bad = np.asarray(xs)[~np.isfinite(lp)][0]
        raise ValueError(f"target {target.name!r}: log_density is not finite at collocation point {bad.tolist()}"
                         " of the domain; shrink collocation.target_lo/hi or fix the density")


def train(target: Target, config: Config, run_dir: str | Path | None = None, resume: bool = False,
          progress: bool | None = None, callback: Callable[[dict], None] | None = None,
          monitor: Callable[[Run], None] | None = None) -> Run:
    """Train `config.loss` on `target` with Adam; see the module docstring for checkpoints and resume.

    `callback(row)` gets each chunk's history row; `monitor(run)` gets a `Run` with the parameters after each
    chunk (e.g. `lambda r: r.step % 20000 or print(pf.evaluate(r)[0]["ess"])` for intermediate metrics)."""
    config.validate()
    set_precision(config.precision)
    loss, setup, domain, graphdef, params = build(target, config)
    _check_target(target, setup, domain)
    op = operator(config)
    tx = make_optimizer(config)
    lr_at = learning_rate_schedule(config)
    loss_fn = make_loss_fn(loss, setup, graphdef, op, config.alpha)
    o = config.optim

    dp = DataParallel.create(config.data_parallel)
    dp.check_batch(o.batch_size, "optim.batch_size")
    c = config.collocation
    n_cache = int(round(c.trajectory_fraction * o.batch_size))
    state = (params, tx.init(params), jax.random.PRNGKey(config.seed))
    traj_params = params  # parameters of the last trajectory-cache refresh (checkpointed, not the cache)
    step, history, seconds = 0, [], 0.0
    if run_dir is not None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        if resume and (run_dir / CHECKPOINT).exists():
            saved = Config.from_yaml(run_dir / CONFIG)
            if saved.to_dict() != config.to_dict():
                raise ValueError(f"--resume: the config differs from the one saved in {run_dir / CONFIG}")
            params, (opt_state, key, traj_params), data = checkpoint.load(
                run_dir / CHECKPOINT, state[0], (*state[1:], traj_params))
            state = (params, opt_state, key)
            step, history, seconds = data["step"], data["history"], data["train_seconds"]
        elif (run_dir / CHECKPOINT).exists() and not resume:
            raise FileExistsError(f"{run_dir} already holds a run; pass resume=True (--resume) or another dir")
        config.to_yaml(run_dir / CONFIG)

    state = dp.replicate(state)

    refresh = trajectory_refresher(loss, setup, graphdef, target, config)
    cache = no_trajectory_cache(target, setup)
    traj_key = jax.random.PRNGKey(config.seed + 7)
    if n_cache and (step == 0 or step % c.trajectory_every):  # (else the loop refreshes at once)
        cache = refresh(traj_params, jax.random.fold_in(traj_key, step - step % c.trajectory_every))

    def one_step(carry, cache):
        params, opt_state, key = carry
        key, k_batch, k_res, k_mix = jax.random.split(key, 4)
        xs, ts = domain.sample(k_batch, o.batch_size)
        xs, ts = mix_batch(k_mix, xs, ts, *cache, n_cache)
        xs, ts = dp.shard_batch(xs), dp.shard_batch(ts)
        (total, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, xs, ts, k_res)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, key), (total, terms)

    def chunk_fn(carry, cache, n):
        return jax.lax.scan(lambda cr, _: one_step(cr, cache), carry, None, length=n)

    run_chunk = jax.jit(chunk_fn, static_argnums=2)

    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=o.steps, initial=step, disable=not show, desc=f"{config.loss} on {target.name}",
               unit="it", dynamic_ncols=True)
    times = []
    try:
        while step < o.steps:
            n = min(o.chunk, o.steps - step)
            t0 = time.perf_counter()
            if n_cache and step % c.trajectory_every == 0 and step > 0:
                traj_params = state[0]
                cache = refresh(traj_params, jax.random.fold_in(traj_key, step))
            new_state, (total, terms) = run_chunk(state, cache, n)
            total = np.asarray(total)  # one host sync per chunk
            dt = time.perf_counter() - t0
            if not np.all(np.isfinite(total)):
                bad = step + int(np.argmax(~np.isfinite(total)))
                if run_dir is not None:
                    _save(run_dir, state, traj_params, step, history, seconds)
                raise TrainingDiverged(
                    f"non-finite loss at step {bad} ({config.loss} on {target.name}); the state of step {step}"
                    f" is kept{' in ' + str(run_dir) if run_dir else ''}. Lower optim.lr, enable"
                    " optim.clip_norm or shrink the collocation domain.")
            state, step, seconds = new_state, step + n, seconds + dt
            times.append(dt / n)
            row = {"step": step, "loss": float(total.mean()), "lr": float(lr_at(step)),
                   "seconds": seconds, **{k: float(np.mean(v)) for k, v in terms.items()}}
            history.append(row)
            if callback is not None:
                callback(row)
            if monitor is not None:
                monitor(Run(config, target, loss, setup, graphdef, state[0], pd.DataFrame(history), run_dir, step,
                            seconds, float(np.median(times))))
            bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k not in ("step", "seconds")})
            bar.update(n)
            if run_dir is not None and (step % o.checkpoint_every == 0 or step == o.steps):
                _save(run_dir, state, traj_params, step, history, seconds)
    except KeyboardInterrupt:
        if run_dir is not None:
            _save(run_dir, state, traj_params, step, history, seconds)
        raise
    finally:
        bar.close()

    spi = float(np.median(times[1:])) if len(times) > 1 else (times[0] if times else float("nan"))
    return Run(config, target, loss, setup, graphdef, state[0], pd.DataFrame(history),
               run_dir, step, seconds, spi)


def load_run(run_dir: str | Path, target: Target | None = None) -> Run:
    """Rebuild a run from its directory (config + checkpoint). The target comes from `config.problem`
    via the problems registry unless given."""
    run_dir = Path(run_dir)
    if not (run_dir / CHECKPOINT).exists():
        raise FileNotFoundError(f"no checkpoint in {run_dir}")
    config = Config.from_yaml(run_dir / CONFIG)
    set_precision(config.precision)
    if target is None:
        if config.problem is None:
            raise ValueError(f"{run_dir}: config has no `problem`; pass the target explicitly")
        import problems

        target = problems.get(config.problem, **config.problem_params)
    loss, setup, _, graphdef, params = build(target, config)
    params, _, data = checkpoint.load(run_dir / CHECKPOINT, params)
    hist = pd.DataFrame(data["history"])
    steps = max(data["step"], 1)
    return Run(config, target, loss, setup, graphdef, params, hist, run_dir, data["step"],
               data["train_seconds"], data["train_seconds"] / steps)
