"""PIS and DIS baselines (paper 003, Table 2): a neural control trained with the KL or the log-variance loss.

Registered in `BASELINES` as `pis_kl`, `pis_lv`, `dis_kl`, `dis_lv`. Each trains the control v(x, s) of a
`ControlledSDE` (`pinnflow.baselines.controlled_sde`: the SDEs and the path-space log-weights log w) and
returns `budget.n_eval` end points with their log-weights; mean(log w) is a lower bound on log Z and
log mean exp(log w) the importance-sampling estimate reported as `log_Z_estimate`.

Losses (Richter & Berner, ref. [57]; in continuous time both are minimised by the optimal control, where
log w ≡ log Z):
- `kl`: E[−log w] = KL(P_v ‖ P*) − log Z on paths simulated with the current control, differentiated
  through the Euler–Maruyama scheme (reparametrisation), as in PIS [78] and DIS [5].
- `lv`: Var(log w) over the batch, on paths simulated with a frozen copy of the control and cut from the
  graph (no backpropagation through the solver); gradients reach v only through the forward kernels of log w.

The control is a `FourierMLP` of (x, s) with a zero-initialised output layer, so training starts from the
reference (PIS: Brownian motion; DIS: the stationary OU process). With `extra["target_score"] = True` it is
NN₁(x, s) + NN₂(s) ⊙ ∇ log ρ(x) (the gradient-informed network of PIS/DIS); off by default.

Budget: `steps`, `batch`, `lr`, `time_steps`, `width`, `depth`, `n_eval`; `extra` may set `pis_T` (1),
`pis_sigma` (√2; T = 1, σ̄ = √2 as App. B.1), `dis_T` (3), `dis_beta_min`/`dis_beta_max` (2, 2:
the VP-SDE with σ̄ = 2, T = 3 of App. B.1, as the `score` loss), `lr_final` (lr: constant; else exponential
decay), `clip_norm` (1), `chunk` (steps per compiled chunk, 100), `eval_batch` (4096), `target_score`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from pinnflow.baselines.controlled_sde import DIS, PIS, ControlledSDE, LogDensity, simulate
from pinnflow.baselines.result import BASELINES, BaselineBudget, BaselineResult
from pinnflow.core.loop import run_loop
from pinnflow.core.precision import precision
from pinnflow.metrics import log_mean_exp
from pinnflow.nn.networks import FourierMLP
from pinnflow.target import Target

__all__ = ["ControlNet", "SDES", "LOSSES", "kl_loss", "lv_loss", "sample_with_weights", "run"]

Loss = Callable[..., tuple[jax.Array, jax.Array]]


# ---- the control network -------------------------------------------------------------------------------


class ControlNet(nnx.Module):
    """v(x, s) = NN₁(x, s) [+ NN₂(s) ⊙ ∇ log ρ(x)], Fourier-MLPs in s ∈ [0, T] (App. B.1; PIS [78]).

    Both outputs start at zero. Call with `score` = ∇ log ρ(x) (d,) when built with `target_score=True`."""

    def __init__(self, dim: int, width: int, depth: int, T: float, target_score: bool, *, rngs: nnx.Rngs):
        self.net = FourierMLP(dim, dim, width, depth, t_max=T, zero_init_output=True, rngs=rngs)
        self.gate = FourierMLP(0, dim, width, 1, t_max=T, zero_init_output=True, rngs=rngs) if target_score else None

    def __call__(self, x: jax.Array, s: jax.Array, score: jax.Array | None = None) -> jax.Array:
        v = self.net(x, s)
        if self.gate is not None:
            v = v + self.gate(None, s) * score
        return v


def _control(graphdef: nnx.GraphDef, params: nnx.State, log_density: LogDensity, target_score: bool):
    """The point function v(x, s) of the network with `params`."""
    model = nnx.merge(graphdef, params)
    grad_log_rho = jax.grad(log_density)

    def v(x, s):
        return model(x, s, grad_log_rho(x) if target_score else None)

    return v


# ---- SDEs and losses -----------------------------------------------------------------------------------


def _pis(budget: BaselineBudget) -> PIS:
    e = budget.extra
    return PIS(T=float(e.get("pis_T", 1.0)), steps=budget.time_steps, sigma_=float(e.get("pis_sigma", math.sqrt(2.0))))


def _dis(budget: BaselineBudget) -> DIS:
    e = budget.extra
    return DIS(T=float(e.get("dis_T", 3.0)), steps=budget.time_steps, beta_min=float(e.get("dis_beta_min", 2.0)),
               beta_max=float(e.get("dis_beta_max", 2.0)))


SDES: dict[str, Callable[[BaselineBudget], ControlledSDE]] = {"pis": _pis, "dis": _dis}
"""The SDE of each method, built from a budget."""


def kl_loss(sde: ControlledSDE, control, log_density: LogDensity, key: jax.Array, n: int, dim: int):
    """E[−log w] = KL(P_v ‖ P*) − log Z; reparametrised paths, gradients through the solver. Returns (loss, log w)."""
    log_w = simulate(sde, control, log_density, key, n, dim, detach=False).log_w
    return -jnp.mean(log_w), log_w


def lv_loss(sde: ControlledSDE, control, log_density: LogDensity, key: jax.Array, n: int, dim: int):
    """Var(log w) over the batch on detached paths of the current (frozen) control [57]. Returns (loss, log w)."""
    log_w = simulate(sde, control, log_density, key, n, dim, detach=True).log_w
    return jnp.var(log_w), log_w


LOSSES: dict[str, Loss] = {"kl": kl_loss, "lv": lv_loss}


def sample_with_weights(sde: ControlledSDE, control_of, params, log_density: LogDensity, key: jax.Array, n: int,
                        dim: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """n end points and log-weights, simulated in jitted batches of `batch` paths (memory O(batch·d))."""
    batch = min(batch, n)

    @jax.jit
    def one(params, key):
        return simulate(sde, control_of(params), log_density, key, batch, dim)

    xs, lws = [], []
    for i in range(-(-n // batch)):
        paths = one(params, jax.random.fold_in(key, i))
        xs.append(np.asarray(paths.x))
        lws.append(np.asarray(paths.log_w))
    return np.concatenate(xs)[:n], np.concatenate(lws)[:n]


# ---- training ------------------------------------------------------------------------------------------


class PISState(NamedTuple):
    """The control's parameters, the Adam state and the PRNG key."""

    params: nnx.State
    opt_state: optax.OptState
    key: jax.Array


def run(method: str, loss: str, target: Target, budget: BaselineBudget, key: jax.Array,
        progress: bool = True) -> BaselineResult:
    """Train `method` ∈ SDES with `loss` ∈ LOSSES by Adam (clipped) for `budget.steps` steps, then sample."""
    name = f"{method}_{loss}"
    sde = SDES[method](budget)
    loss_fn = LOSSES[loss]
    e = budget.extra
    target_score = bool(e.get("target_score", False))
    chunk = int(e.get("chunk", 100))
    if budget.steps < 0 or budget.batch < 2 or chunk < 1 or budget.n_eval < 1:
        raise ValueError(f"{name}: need steps >= 0, batch >= 2, chunk >= 1, n_eval >= 1; got {budget}")
    dim = target.dim
    k_init, k_train, k_eval = jax.random.split(key, 3)
    model = ControlNet(dim, budget.width, budget.depth, sde.T, target_score, rngs=nnx.Rngs(params=k_init))
    graphdef, params = nnx.split(model)

    def control_of(p):
        return _control(graphdef, p, target.log_density, target_score)

    lr_final = float(e.get("lr_final", budget.lr))
    schedule = optax.exponential_decay(budget.lr, max(budget.steps, 1), lr_final / budget.lr)
    clip = float(e.get("clip_norm", 1.0))
    tx = optax.chain(*([optax.clip_by_global_norm(clip)] if clip else []), optax.adam(schedule))

    def objective(p, k):
        return loss_fn(sde, control_of(p), target.log_density, k, budget.batch, dim)

    def step(state: PISState, aux):
        del aux
        key, k_step = jax.random.split(state.key)
        (value, log_w), grads = jax.value_and_grad(objective, has_aux=True)(state.params, k_step)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return PISState(optax.apply_updates(state.params, updates), opt_state, key), {"loss": value,
                                                                                     "elbo": jnp.mean(log_w)}

    result = run_loop(step, PISState(params, tx.init(params), k_train), steps=budget.steps, chunk=chunk,
                      name=f"{name} on {target.name}", progress=progress,
                      diverged_hint="Lower budget.lr, the clip norm (extra['clip_norm']) or increase "
                                    "budget.time_steps.")
    state, prog = result
    history, seconds, step, spi = prog.history, prog.seconds, prog.step, prog.seconds_per_it
    params = state.params
    samples, log_w = sample_with_weights(sde, control_of, params, target.log_density, k_eval, budget.n_eval, dim,
                                         int(e.get("eval_batch", 4096)))
    info = {**sde.info(), "method": method, "loss": loss, "control": "fourier_mlp" + ("+score" if target_score else ""),
            "num_params": int(sum(np.size(a) for a in jax.tree_util.tree_leaves(params))),
            "lower_bound": float(np.mean(log_w)), "history": history}
    with precision("float64"):  # the estimate in double precision, whatever the run's
        log_z = float(log_mean_exp(np.asarray(log_w, np.float64)))
    return BaselineResult(samples=samples, log_weights=log_w, log_Z_estimate=log_z,
                          train_seconds=seconds, seconds_per_step=None if step == 0 else spi, steps=step, info=info)


for _method in SDES:
    for _loss in LOSSES:
        BASELINES.register(partial(run, _method, _loss), name=f"{_method}_{_loss}")
