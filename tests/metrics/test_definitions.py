"""Every number `evaluate_samples` reports has its definition in METRIC_DEFINITIONS, and a handful of samples
gives a warning instead of a confident ESS (issue 12, item 7)."""

import jax
import numpy as np
import pytest

import problems
from pinnflow.metrics import METRIC_DEFINITIONS, MIN_ESS_SAMPLES, evaluate_samples


def test_every_reported_metric_is_defined():
    target = problems.get("gmm")
    x = np.asarray(target.sample(jax.random.PRNGKey(0), 400))
    log_w = np.random.default_rng(0).normal(size=400)
    m = evaluate_samples(target, x, log_w, jax.random.PRNGKey(1), sinkhorn_n=50, train_seconds=1.0,
                         seconds_per_it=1e-3, log_Z_estimate=0.1)
    missing = sorted(k for k in m if k not in METRIC_DEFINITIONS)
    assert not missing, missing
    for key in ("ess", "log_z_is", "finite_fraction", "eval_seconds", "sinkhorn_converged"):
        assert METRIC_DEFINITIONS[key]


def test_too_few_samples_warn():
    target = problems.get("gmm")
    x = np.asarray(target.sample(jax.random.PRNGKey(0), 1))
    with pytest.warns(UserWarning, match="not meaningful"):
        m = evaluate_samples(target, x, np.zeros(1), sinkhorn_n=1)
    assert m["ess"] == 1.0 and MIN_ESS_SAMPLES >= 100
