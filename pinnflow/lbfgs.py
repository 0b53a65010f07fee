"""L-BFGS fine-tuning (optax.lbfgs with its zoom line search): the comparison optimiser for Gauss–Newton,
since it is what PINN users usually try after Adam. The collocation batch is held fixed for `resample_every`
steps (a moving batch would corrupt the curvature pairs); a new batch restarts the memory."""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import optax
import pandas as pd
from jax.flatten_util import ravel_pytree

from pinnflow.operators import EXACT
from pinnflow.train import Run, build, make_loss_fn

__all__ = ["lbfgs"]


def lbfgs(run: Run, steps: int = 500, batch_size: int = 4096, resample_every: int = 100, memory: int = 20,
          seed: int = 0, seconds: float | None = None) -> Run:
    """Fine-tune `run` with L-BFGS for `steps` steps (or until `seconds` of wall time); returns a new `Run`."""
    if steps < 1 or batch_size < 1 or resample_every < 1:
        raise ValueError("lbfgs needs steps, batch_size and resample_every >= 1")
    loss, setup, domain, graphdef, _ = build(run.target, run.config)
    loss_fn = make_loss_fn(loss, setup, graphdef, EXACT, run.config.alpha)
    opt = optax.lbfgs(memory_size=memory)

    theta, unravel = ravel_pytree(run.params)  # a flat vector: optax's state lookup needs a plain array

    @functools.partial(jax.jit, static_argnums=3)
    def segment(params, xs, ts, n):
        f = lambda th: loss_fn(unravel(th), xs, ts, jax.random.PRNGKey(0))[0]  # noqa: E731
        value_and_grad = optax.value_and_grad_from_state(f)

        def body(carry, _):
            params, state = carry
            value, grad = value_and_grad(params, state=state)
            updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=f)
            return (optax.apply_updates(params, updates), state), value

        (params, _), values = jax.lax.scan(body, (params, opt.init(params)), None, length=n)
        return params, values

    params, history, step, t0 = theta, [], 0, time.perf_counter()
    key = jax.random.PRNGKey(seed + 31)
    while step < steps and (seconds is None or time.perf_counter() - t0 < seconds):
        xs, ts = domain.sample(jax.random.fold_in(key, step), batch_size)
        n = min(resample_every, steps - step)
        new, values = segment(params, xs, ts, n)
        values = jnp.asarray(values)
        if not bool(jnp.all(jnp.isfinite(values))):
            break  # keep the last finite parameters
        params, step = new, step + n
        history.append({"step": step, "loss": float(values[-1]), "seconds": time.perf_counter() - t0})
    hist = pd.DataFrame(history)
    spent = time.perf_counter() - t0
    return dataclasses.replace(run, params=unravel(params), history=hist, step=step, run_dir=None,
                               train_seconds=run.train_seconds + spent, seconds_per_it=spent / max(step, 1))
