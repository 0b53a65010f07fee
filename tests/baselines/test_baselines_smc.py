"""The adaptive tempered SMC baseline (blackjax) on targets whose log Z, moments and modes are known.

log Z tolerance: each stage estimates log mean(w_k) from N particles whose incremental weights have
normalised ESS e_k, so by the delta method its variance is about (1/e_k − 1)/N; summing the K stages gives
σ ≈ sqrt(Σ_k (1/e_k − 1)/N) (≈ 0.04–0.065 for 2000 particles, e_k ≈ 0.5, K = 3–8 stages). The tests allow
3σ. Measured errors with 2000 particles (seeds 0–7 gaussian, 0–4 gmm, 0–5 many_well_5): standard deviation
0.026 / 0.033 / 0.021, largest |error| 0.062 / 0.054 / 0.043, all well inside 3σ.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

import problems
from pinnflow import Target
from pinnflow.baselines import BASELINES, BaselineBudget, run_baseline
from pinnflow.metrics import ess, mode_fractions

N = 2000
MEAN = np.array([1.0, -2.0, 0.5])
STD = np.array([0.7, 1.5, 1.0])
LOG_Z = 1.3


def log_z_tolerance(result, n_particles: int) -> float:
    """3σ with σ² = Σ_k (1/ESS_k − 1) / N over the stages' incremental weights (see the module docstring)."""
    stage_ess = np.asarray(result.info["stage_ess"])
    return 3.0 * math.sqrt(np.sum(1.0 / stage_ess - 1.0) / n_particles)


def shifted_gaussian() -> Target:
    """The 3-D Gaussian target with a domain stretched to one side, so the prior's centre is 2 units off
    the mean in every coordinate (the SMC has to move the particles, not only reshape them)."""
    g = problems.get("gaussian", mean=MEAN, cov=np.diag(STD**2), log_Z=LOG_Z)
    lo, hi = g.domain
    return Target(name="gaussian_off_centre", dim=3, log_density=g.log_density, domain=(lo - 4.0, hi),
                  log_Z=g.log_Z, std=g.std)


def check_stages(result):
    info = result.info
    lambdas = np.asarray(info["lambdas"])
    assert info["n_stages"] == result.steps == len(lambdas) == len(info["acceptance_rates"]) >= 2
    assert np.all(np.diff(lambdas) > 0) and lambdas[-1] == 1.0
    assert result.seconds_per_step > 0 and result.train_seconds > 0
    assert np.all(np.isfinite(info["log_Z_increments"]))
    assert math.isclose(sum(info["log_Z_increments"]), result.log_Z_estimate, abs_tol=1e-4)


def test_registered():
    assert "smc" in BASELINES.names()


def test_gaussian_log_z_and_moments_mala():
    target = shifted_gaussian()
    budget = BaselineBudget(particles=N, mcmc_steps=10, n_eval=1500)
    res = run_baseline("smc", target, budget, jax.random.PRNGKey(0), progress=False)
    check_stages(res)
    assert res.samples.shape == (1500, 3) and res.log_weights is None
    np.testing.assert_allclose(res.info["prior_mean"], MEAN - 2.0)
    assert abs(res.log_Z_estimate - LOG_Z) < log_z_tolerance(res, N)
    # the pilot keeps the acceptance of the moves near the MALA optimum 0.574
    assert all(0.3 < a < 0.9 for a in res.info["acceptance_rates"][1:])
    assert 0.3 < res.info["final_move_acceptance"] < 0.9
    x = res.samples
    np.testing.assert_array_less(np.abs(x.mean(0) - MEAN), 0.15 * STD)
    np.testing.assert_array_less(np.abs(x.std(0) / STD - 1.0), 0.1)


def test_gmm_finds_all_modes():
    target = problems.get("gmm")
    res = run_baseline("smc", target, BaselineBudget(particles=N, mcmc_steps=10, n_eval=N), jax.random.PRNGKey(1),
                       progress=False)
    check_stages(res)
    assert abs(res.log_Z_estimate - target.log_Z) < log_z_tolerance(res, N)
    fractions = np.asarray(mode_fractions(res.samples, target.info["means"]))
    assert np.all(np.abs(fractions - 1.0 / 9.0) < 0.05), fractions
    np.testing.assert_array_less(np.abs(res.samples.std(0) - target.std), 0.3)


def test_weighted_output_hmc_carries_the_smc_estimate():
    target = shifted_gaussian()
    budget = BaselineBudget(particles=N, mcmc_steps=5, n_eval=N, extra={"kernel": "hmc", "output": "weighted"})
    res = run_baseline("smc", target, budget, jax.random.PRNGKey(2), progress=False)
    check_stages(res)
    lw = res.log_weights
    assert lw.shape == (N,) and np.all(np.isfinite(lw))
    # all particles returned: their log-mean-exp weight is the SMC estimate itself
    assert math.isclose(logsumexp(lw) - math.log(N), res.log_Z_estimate, abs_tol=1e-3)
    assert math.isclose(float(ess(jnp.asarray(lw))), res.info["final_stage_ess"], rel_tol=1e-3)
    assert abs(res.log_Z_estimate - LOG_Z) < log_z_tolerance(res, N)
    w = np.exp(lw - logsumexp(lw))
    mean = w @ res.samples
    std = np.sqrt(w @ (res.samples - mean) ** 2)
    np.testing.assert_array_less(np.abs(mean - MEAN), 0.15 * STD)
    np.testing.assert_array_less(np.abs(std / STD - 1.0), 0.1)


def test_stage_limit_raises():
    target = problems.get("gaussian", mean=[0.0], cov=[[1.0]])
    budget = BaselineBudget(particles=64, mcmc_steps=1, extra={"max_stages": 2, "prior_scale": 100.0})
    with pytest.raises(RuntimeError, match="max_stages=2"):
        run_baseline("smc", target, budget, jax.random.PRNGKey(0), progress=False)


@pytest.mark.parametrize("extra, budget_kw, match", [
    ({"target_ess": 1.0}, {}, "target_ess"),
    ({"kernel": "nuts"}, {}, "kernel"),
    ({"output": "all"}, {}, "output"),
    ({"prior_scale": -1.0}, {}, "prior scale"),
    ({}, {"particles": 1}, "particles"),
    ({}, {"mcmc_steps": 0}, "mcmc_steps"),
])
def test_bad_settings_raise(extra, budget_kw, match):
    budget = BaselineBudget(extra=extra, **budget_kw)
    with pytest.raises(ValueError, match=match):
        run_baseline("smc", problems.get("gmm"), budget, jax.random.PRNGKey(0), progress=False)
