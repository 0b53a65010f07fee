"""L-BFGS (optax.lbfgs with its zoom line search) on a loss of a flat parameter vector and a batch: the
comparison optimiser for Gauss–Newton, since it is what PINN users usually try after Adam. The batch is held
fixed for `resample_every` steps (a moving batch would corrupt the curvature pairs); a new batch restarts the
memory."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import optax

__all__ = ["LBFGSState", "make_lbfgs"]


class LBFGSState(NamedTuple):
    """θ, the optimiser state, the current batch, the key for the next batch and the step counter."""

    theta: jax.Array
    opt_state: optax.OptState
    xs: jax.Array
    ts: jax.Array
    key: jax.Array
    i: jax.Array


def make_lbfgs(loss: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
               sample: Callable[[jax.Array], tuple[jax.Array, jax.Array]], memory: int = 20,
               resample_every: int = 100):
    """(init(theta, key) -> LBFGSState, step(state, aux) -> (state, {"loss"})) for `loss(theta, xs, ts)` on
    batches `sample(key) -> (xs, ts)`; `step` has the run loop's signature (`aux` is unused)."""
    if memory < 1 or resample_every < 1:
        raise ValueError(f"lbfgs needs memory and resample_every >= 1, got {memory}, {resample_every}")
    opt = optax.lbfgs(memory_size=memory)

    def init(theta, key):
        xs, ts = sample(key)
        return LBFGSState(theta, opt.init(theta), xs, ts, key, jax.numpy.zeros((), jax.numpy.int32))

    def step(state: LBFGSState, aux):
        del aux
        key, k_batch = jax.random.split(state.key)
        fresh = state.i % resample_every == 0
        xs, ts = jax.lax.cond(fresh, lambda: sample(k_batch), lambda: (state.xs, state.ts))
        opt_state = jax.lax.cond(fresh, lambda: opt.init(state.theta), lambda: state.opt_state)
        f = lambda th: loss(th, xs, ts)  # noqa: E731
        value, grad = optax.value_and_grad_from_state(f)(state.theta, state=opt_state)
        updates, opt_state = opt.update(grad, opt_state, state.theta, value=value, grad=grad, value_fn=f)
        theta = optax.apply_updates(state.theta, updates)
        return LBFGSState(theta, opt_state, xs, ts, key, state.i + 1), {"loss": value}

    return init, step
