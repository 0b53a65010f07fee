"""`evaluate(run)`: sample a trained run and compute the metrics of paper 003 App. B.3 with definitions."""

from __future__ import annotations

import time

import jax
import numpy as np
import pandas as pd

from pinnflow import metrics
from pinnflow.sampling import Samples, sample
from pinnflow.target import Target

__all__ = ["evaluate", "METRIC_DEFINITIONS"]

METRIC_DEFINITIONS = {
    "ess": "normalised effective sample size (Σw)²/(n Σw²) of ODE importance weights w = ρ/p_model (eq. 68)",
    "delta_log_z": "|log Z − E[log w]|: error of the lower bound (the paper's ΔlogZ, App. B.3)",
    "delta_log_z_is": "|log Z − log mean w|: error of the importance-sampling estimate",
    "log_z_lower_bound": "E[log w]",
    "sinkhorn": "entropic OT transport cost <P_ε, C> to exact target samples (cost, ε, n, debiasing listed)",
    "delta_std": "mean over coordinates of |std_i(model samples) − std_i(target)|",
    "seconds_per_it": "median wall seconds per training step (after compilation)",
    "train_seconds": "total wall seconds of training",
}


def evaluate(run, target: Target | None = None, n: int | None = None, key: jax.Array | None = None,
             sinkhorn_debiased: bool = False, samples: Samples | None = None) -> tuple[dict, pd.DataFrame]:
    """Metrics of a trained run on `n` ODE samples (default `config.sampler.n_eval`).

    Returns (dict, one-row DataFrame). Metrics needing unknown reference facts (log Z, stds, an exact
    sampler) are omitted. Sinkhorn uses `config.sampler.sinkhorn_n` points and `sinkhorn_epsilon`.
    The key defaults to one derived from `config.seed`, so results are reproducible. Pass ODE `samples`
    (with log-weights) to evaluate those instead of drawing new ones."""
    target = run.target if target is None else target
    n = run.config.sampler.n_eval if n is None else int(n)
    key = jax.random.PRNGKey(run.config.seed + 1) if key is None else key
    k_model, k_ref = jax.random.split(key)
    t0 = time.perf_counter()
    s = sample(run, k_model, n, method="ode") if samples is None else samples
    if s.log_w is None:
        raise ValueError("evaluate needs ODE samples with log-weights (method='ode')")
    n = int(s.x.shape[0])
    log_w = np.asarray(s.log_w, dtype=np.float64)
    x = np.asarray(s.x)
    out: dict = {"problem": target.name, "loss": run.loss.name, "n": n, "steps": run.step,
                 "num_params": run.num_params, "finite_fraction": float(np.mean(np.isfinite(log_w)))}
    finite = np.isfinite(log_w)
    log_w, x = log_w[finite], x[finite]
    out["ess"] = float(metrics.ess(log_w))
    out["log_z_lower_bound"] = float(metrics.log_z_lower_bound(log_w))
    out["log_z_is"] = float(metrics.log_z_importance(log_w))
    if target.log_Z is not None:
        out.update({k: float(v) for k, v in metrics.delta_log_z(log_w, target.log_Z).items()})
    if target.std is not None:
        out["delta_std"] = float(metrics.delta_std(x, target.std))
    if target.sample is not None:
        m = min(run.config.sampler.sinkhorn_n, x.shape[0])
        ref = target.sample(k_ref, m)
        eps = run.config.sampler.sinkhorn_epsilon
        out.update(metrics.sinkhorn(x[:m], ref, epsilon=eps, debiased=sinkhorn_debiased, n_max=m))
    out["train_seconds"] = run.train_seconds
    out["seconds_per_it"] = run.seconds_per_it
    out["eval_seconds"] = time.perf_counter() - t0
    return out, pd.DataFrame([out])
