"""`evaluate(run)`: sample a trained run and compute the metrics of paper 003 App. B.3 with definitions
(`pinnflow.metrics.evaluate_samples`, shared with the baselines)."""

from __future__ import annotations

import time

import jax
import pandas as pd

from pinnflow.core.precision import in_run_precision
from pinnflow.core.rng import Stream, stream_key
from pinnflow.metrics import evaluate_samples
from pinnflow.pinn.sampling import Samples, sample
from pinnflow.target import Target

__all__ = ["evaluate", "evaluation_keys"]


def evaluation_keys(run, key: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """(key of the model samples, key of the exact reference samples) that `evaluate` uses; `key` defaults to
    the run's evaluation stream (`Stream.EVALUATE` of `config.seed`)."""
    key = stream_key(run.config.seed, Stream.EVALUATE) if key is None else key
    k_model, k_ref = jax.random.split(key)
    return k_model, k_ref


@in_run_precision
def evaluate(run, target: Target | None = None, n: int | None = None, key: jax.Array | None = None,
             sinkhorn_debiased: bool = False, samples: Samples | None = None) -> tuple[dict, pd.DataFrame]:
    """Metrics of a trained run on `n` ODE samples (default `config.sampler.n_eval`).

    Returns (dict, one-row DataFrame). Metrics needing unknown reference facts (log Z, stds, an exact
    sampler) are omitted. Sinkhorn uses `config.sampler.sinkhorn_n` points and `sinkhorn_epsilon`.
    The key defaults to one derived from `config.seed`, so results are reproducible. Pass ODE `samples`
    (with log-weights) to evaluate those instead of drawing new ones. The metrics themselves are
    `evaluate_samples`'s (shared with the baselines)."""
    target = run.target if target is None else target
    n = run.config.sampler.n_eval if n is None else int(n)
    k_model, k_ref = evaluation_keys(run, key)
    t0 = time.perf_counter()
    s = sample(run, k_model, n, method="ode") if samples is None else samples
    if s.log_w is None:
        raise ValueError("evaluate needs ODE samples with log-weights (method='ode')")
    sampler = run.config.sampler
    m = evaluate_samples(target, s.x, s.log_w, k_ref, sinkhorn_n=sampler.sinkhorn_n,
                         sinkhorn_epsilon=sampler.sinkhorn_epsilon, sinkhorn_debiased=sinkhorn_debiased,
                         train_seconds=run.train_seconds, seconds_per_it=run.seconds_per_it)
    out: dict = {"problem": target.name, "loss": run.loss.name, "n": m.pop("n"), "steps": run.step,
                 "num_params": run.num_params, **m}
    out["eval_seconds"] = time.perf_counter() - t0
    return out, pd.DataFrame([out])
