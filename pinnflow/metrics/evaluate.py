"""`evaluate_samples`: the metrics of paper 003 App. B.3 for any sampler's output, each with its definition."""

from __future__ import annotations

import warnings

import jax
import numpy as np

from pinnflow.metrics.moments import delta_std
from pinnflow.metrics.sinkhorn import sinkhorn
from pinnflow.metrics.weights import delta_log_z, ess, log_z_importance, log_z_lower_bound
from pinnflow.target import Target

__all__ = ["evaluate_samples", "METRIC_DEFINITIONS", "MIN_ESS_SAMPLES"]

MIN_ESS_SAMPLES = 100

METRIC_DEFINITIONS = {
    "ess": "normalised effective sample size (Σw)²/(n Σw²) of ODE importance weights w = ρ/p_model (eq. 68)",
    "delta_log_z": "|log Z − E[log w]|: error of the lower bound (the paper's ΔlogZ, App. B.3)",
    "delta_log_z_is": "|log Z − log mean w|: error of the importance-sampling estimate",
    "log_z_lower_bound": "E[log w]",
    "sinkhorn": "entropic OT transport cost <P_ε, C> to exact target samples (cost, ε, n, debiasing listed)",
    "delta_std": "mean over coordinates of |std_i(model samples) − std_i(target)|",
    "log_z_is": "log mean w: the importance-sampling estimate of log Z",
    "finite_fraction": "share of the samples with a finite log-weight (the others are dropped from every metric)",
    "n": "number of samples drawn",
    "seconds_per_it": "median execution seconds per training step (compilation excluded)",
    "train_seconds": "total wall seconds of training steps (compilation excluded)",
    "eval_seconds": "wall seconds of this evaluation (sampling, compilation included, and the metrics)",
    "steps": "training steps of the run",
    "num_params": "number of learned parameters",
    "sinkhorn_cost": "ground cost of the Sinkhorn metric (euclidean: |x − y|, as in the paper's benchmark)",
    "sinkhorn_epsilon": "entropic regularisation ε of the Sinkhorn metric (absolute)",
    "sinkhorn_n": "model samples in the Sinkhorn metric",
    "sinkhorn_m": "exact target samples in the Sinkhorn metric",
    "sinkhorn_debiased": "whether the Sinkhorn divergence is debiased (S(x,y) − ½S(x,x) − ½S(y,y))",
    "sinkhorn_converged": "whether the Sinkhorn iterations met their tolerance",
    "log_z_estimate": "the sampler's own log Z estimate (e.g. SMC's), if it makes one",
    "delta_log_z_estimate": "|log Z − the sampler's own log Z estimate|",
}


def evaluate_samples(target: Target, samples, log_weights=None, key: jax.Array | None = None, *,
                     sinkhorn_n: int = 500, sinkhorn_epsilon: float = 1e-3, sinkhorn_debiased: bool = False,
                     train_seconds: float | None = None, seconds_per_it: float | None = None,
                     log_Z_estimate: float | None = None) -> dict:
    """The metrics of App. B.3 for any sampler: `samples (n, d)` with log importance weights
    `log_weights (n,)` = log ρ(x) − log q(x) (None if the sampler has none: ESS and the log Z bounds are
    then omitted). Samples with a non-finite log-weight (or non-finite coordinates) are dropped and counted
    in `finite_fraction`. `key` draws the exact target samples for Sinkhorn (the first `sinkhorn_n` model
    samples against as many exact ones). Timing, if given, is passed through under the names `evaluate`
    uses; `log_Z_estimate` (a sampler's own estimate, e.g. SMC's) adds `delta_log_z_estimate`.
    Metrics needing unknown reference facts (log Z, stds, an exact sampler) are omitted."""
    x = np.asarray(samples)
    key = jax.random.PRNGKey(0) if key is None else key
    if log_weights is not None and x.shape[0] < MIN_ESS_SAMPLES:
        warnings.warn(f"ESS and log Z from {x.shape[0]} samples are not meaningful (ESS of one sample is 1); "
                      f"use at least {MIN_ESS_SAMPLES}", stacklevel=2)
    if log_weights is None:
        finite = np.all(np.isfinite(x), axis=-1)
    else:
        log_w = np.asarray(log_weights, dtype=np.float64)
        finite = np.isfinite(log_w)
    out: dict = {"n": int(x.shape[0]), "finite_fraction": float(np.mean(finite))}
    x = x[finite]
    empty = x.shape[0] == 0  # nothing to measure: the metrics are NaN, not an error
    nan = float("nan")
    if log_weights is not None:
        log_w = log_w[finite]
        out["ess"] = nan if empty else float(ess(log_w))
        out["log_z_lower_bound"] = nan if empty else float(log_z_lower_bound(log_w))
        out["log_z_is"] = nan if empty else float(log_z_importance(log_w))
        if target.log_Z is not None:
            out.update({k: nan if empty else float(v) for k, v in delta_log_z(log_w, target.log_Z).items()})
    if log_Z_estimate is not None:
        out["log_z_estimate"] = float(log_Z_estimate)
        if target.log_Z is not None:
            out["delta_log_z_estimate"] = abs(float(target.log_Z) - float(log_Z_estimate))
    if target.std is not None:
        out["delta_std"] = nan if empty else float(delta_std(x, target.std))
    if target.sample is not None:
        if empty:
            out["sinkhorn"] = nan
        else:
            m = min(int(sinkhorn_n), x.shape[0])
            ref = target.sample(key, m)
            out.update(sinkhorn(x[:m], ref, epsilon=sinkhorn_epsilon, debiased=sinkhorn_debiased, n_max=m))
    if train_seconds is not None:
        out["train_seconds"] = float(train_seconds)
    if seconds_per_it is not None:
        out["seconds_per_it"] = float(seconds_per_it)
    return out
