"""PIS and DIS baselines: path-space log-weights against closed-form optimal controls, training, the registry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from closed_forms import VP

import problems
from pinnflow.baselines import BASELINES, BaselineBudget, run_baseline
from pinnflow.baselines.controlled_sde import DIS, PIS, simulate
from pinnflow.pinn.train import TrainingDiverged
from pinnflow.target import Target

MEAN = np.array([1.0, -0.5])
COV = np.array([[1.0, 0.3], [0.3, 0.5]])
LOG_Z = 0.7
NAMES = ["pis_kl", "pis_lv", "dis_kl", "dis_lv"]


@pytest.fixture(scope="module")
def gaussian():
    return problems.get("gaussian", mean=MEAN, cov=COV, log_Z=LOG_Z)


def pis_optimal(sde: PIS):
    """v* = σ∇ log h, h(x, s) = E[f(x + σW_{T−s})], f = ρ/N(0, σ²T I) ∝ exp(−½xᵀAx + bᵀx) with A = C⁻¹ − I/(σ²T),
    b = C⁻¹m; the Gaussian integral gives ∇ log h = (I + τA)⁻¹(b − Ax), τ = σ²(T − s)."""
    prec = np.linalg.inv(COV)
    A = jnp.asarray(prec - np.eye(2) / sde.terminal_var)
    b = jnp.asarray(prec @ MEAN)

    def v(x, s):
        tau = sde.sigma_**2 * (sde.T - s)
        return sde.sigma_ * jnp.linalg.solve(jnp.eye(2) + tau * A, b - A @ x)

    return v


def dis_optimal(sde: DIS):
    """u* = σ∇ log p_Y(·, T − s) for the VP noising of N(m, C) (closed_forms.VP); the network learns v = u + σx."""
    vp = VP(MEAN, COV, b0=sde.beta_min, b1=(sde.beta_max - sde.beta_min) / sde.T)
    score = jax.grad(vp.V)

    def v(x, s):
        t = sde.T - s
        return vp.sigma(t) * (score(x, t) + x)

    return v


def log_weights(sde, control, target, n, seed=0):
    fn = jax.jit(lambda key: simulate(sde, control, target.log_density, key, n, target.dim).log_w)
    return np.asarray(fn(jax.random.PRNGKey(seed)), np.float64)


def is_estimate(lw):
    """log mean exp(log w) and its delta-method standard error std(w)/(mean(w)√n)."""
    w = np.exp(lw - lw.max())
    return np.log(w.mean()) + lw.max(), w.std() / (w.mean() * np.sqrt(lw.size))


@pytest.mark.parametrize("make_sde, optimal", [
    (lambda n: PIS(steps=n), pis_optimal),
    (lambda n: DIS(steps=n), dis_optimal),
    (lambda n: DIS(T=3.0, steps=n, beta_min=1.0, beta_max=3.0), dis_optimal),
], ids=["pis", "dis", "dis_linear_beta"])
def test_optimal_control_makes_log_weights_constant(gaussian, make_sde, optimal):
    """With the exact optimal control log w ≡ log Z up to Euler error: std(log w) = O(Δ^½), E[log w] ≤ log Z
    with a gap O(Δ); the importance-sampling estimate is unbiased for every Δ."""
    stats = {}
    for steps in (100, 400):
        sde = make_sde(steps)
        lw = log_weights(sde, optimal(sde), gaussian, 4000)
        stats[steps] = lw.mean(), lw.std(), lw.std() / np.sqrt(lw.size)
        est, se = is_estimate(lw)
        assert abs(est - LOG_Z) < 4 * se + 2e-3, (steps, est, se)
    (m1, s1, e1), (m4, s4, e4) = stats[100], stats[400]
    assert s1 < 0.3 and s4 < 0.15, stats
    assert 0.4 < s4 / s1 < 0.6, stats  # strong order ½ of the discretised log-RN derivative
    assert LOG_Z - 0.04 < m1 < LOG_Z + 3 * e1, stats
    assert LOG_Z - 0.012 < m4 < LOG_Z + 3 * e4, stats


@pytest.mark.parametrize("sde, optimal", [(PIS(steps=5), pis_optimal), (DIS(steps=10), dis_optimal)],
                         ids=["pis", "dis"])
def test_weights_are_exact_for_coarse_steps(gaussian, sde, optimal):
    """log w is an exact density ratio of two discrete chains: E[w] = Z even when Δ is coarse (mean log w is far
    below log Z there)."""
    lw = log_weights(sde, optimal(sde), gaussian, 20000, seed=1)
    est, se = is_estimate(lw)
    assert lw.mean() < LOG_Z - 0.2
    assert abs(est - LOG_Z) < 4 * se + 2e-3, (est, se)


def test_wrong_control_is_detected(gaussian):
    """The closed-form test has power: halving the optimal control inflates std(log w) several-fold."""
    sde = PIS(steps=100)
    opt = pis_optimal(sde)
    good = log_weights(sde, opt, gaussian, 2000)
    bad = log_weights(sde, lambda x, s: 0.5 * opt(x, s), gaussian, 2000)
    assert bad.std() > 3 * good.std() and bad.mean() < good.mean() - 0.1


def small_budget(steps, time_steps=30, width=32, n_eval=2000, **extra):
    return BaselineBudget(steps=steps, batch=256, lr=3e-3, time_steps=time_steps, width=width, depth=2,
                          n_eval=n_eval, extra={"chunk": 50, **extra})


@pytest.mark.parametrize("name", [n if n == "pis_lv" else pytest.param(n, marks=pytest.mark.slow) for n in NAMES])
def test_training_raises_the_lower_bound(gaussian, name):
    """A few hundred steps move E[log w] from far below log Z to near it (never above, up to noise)."""
    key = jax.random.PRNGKey(3)
    before = run_baseline(name, gaussian, small_budget(0), key, progress=False)
    after = run_baseline(name, gaussian, small_budget(300), key, progress=False)
    lb0, lb = before.info["lower_bound"], after.info["lower_bound"]
    se = after.log_weights.std() / np.sqrt(after.log_weights.size)
    assert lb0 < LOG_Z - 1.5
    assert LOG_Z - 0.3 < lb < LOG_Z + 3 * se, (lb0, lb)
    assert abs(after.log_Z_estimate - LOG_Z) < 0.1
    assert after.samples.shape == (2000, 2) and after.log_weights.shape == (2000,)
    assert np.all(np.isfinite(after.samples)) and np.all(np.isfinite(after.log_weights))
    assert after.steps == 300 and after.seconds_per_step > 0 and after.train_seconds > 0
    assert after.info["loss"] == name.split("_")[1] and after.info["time_steps"] == 30
    np.testing.assert_allclose(after.samples.mean(0), MEAN, atol=0.15)


def test_same_key_same_result_and_score_informed_control(gaussian):
    budget = small_budget(10, time_steps=10, width=8, n_eval=100, target_score=True)
    a = run_baseline("pis_lv", gaussian, budget, jax.random.PRNGKey(5), progress=False)
    b = run_baseline("pis_lv", gaussian, budget, jax.random.PRNGKey(5), progress=False)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.log_weights, b.log_weights)
    assert a.info["control"] == "fourier_mlp+score"


def test_non_finite_loss_names_baseline_and_step():
    bad = Target(name="log_of_negative", dim=1, log_density=lambda x: jnp.log(x[0] - 10.0),
                 domain=([10.5], [12.0]))
    with pytest.raises(TrainingDiverged, match=r"pis_kl on log_of_negative: non-finite loss at step 0"):
        run_baseline("pis_kl", bad, small_budget(2, time_steps=5, width=8, chunk=1), jax.random.PRNGKey(0),
                     progress=False)


def test_registry_names_and_unknown_name(gaussian):
    assert set(NAMES) <= set(BASELINES.names())
    with pytest.raises(KeyError, match="available: .*dis_kl.*pis_lv"):
        run_baseline("pis_kll", gaussian)
