"""Metrics of paper 003 App. B.3 against hand-made weights, brute-force OT and a reference numpy Sinkhorn."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp as np_logsumexp

from pinnflow.metrics import (
    delta_log_z,
    delta_std,
    ess,
    log_z_importance,
    log_z_lower_bound,
    mode_fractions,
    sinkhorn,
)


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


# ---------------------------------------------------------------- ESS (eq. 68)


def test_ess_exact_on_hand_made_weights():
    assert float(ess(jnp.zeros(7))) == pytest.approx(1.0, abs=1e-14)
    assert float(ess(jnp.array([0.0, -jnp.inf, -jnp.inf, -jnp.inf]))) == pytest.approx(0.25, abs=1e-14)
    assert float(ess(jnp.array([0.0, -1e4, -1e4, -1e4]))) == pytest.approx(0.25, abs=1e-14)
    w = np.array([1.0, 2.0, 3.0, 4.0])
    assert float(ess(jnp.log(w))) == pytest.approx(10.0**2 / (4 * 30.0), rel=1e-13)


def test_ess_shift_invariant_and_no_overflow():
    log_w = jnp.log(jnp.array([1.0, 2.0, 3.0, 4.0]))
    for shift in (-700.0, 5.0, 1e3, 1e4):  # exact up to rounding of log w + shift: ~1e-16 · |shift|
        assert float(ess(log_w + shift)) == pytest.approx(100.0 / 120.0, rel=1e-15 * max(abs(shift), 100.0))
    big = jnp.asarray(1e3 + np.log([1.0, 2.0, 3.0, 4.0]), dtype=jnp.float32)  # exp(1e3) overflows
    assert float(ess(big)) == pytest.approx(100.0 / 120.0, rel=1e-5)


# ---------------------------------------------------------------- ΔlogZ (App. B.3)


def test_delta_log_z_matches_numpy_and_jensen():
    log_w = np.random.default_rng(1).normal(loc=0.3, scale=1.5, size=50)
    lower = np.mean(log_w)
    importance = np.log(np.mean(np.exp(log_w)))
    np.testing.assert_allclose(log_z_lower_bound(log_w), lower, rtol=1e-13)
    np.testing.assert_allclose(log_z_importance(log_w), importance, rtol=1e-13)
    assert lower < importance  # Jensen: E[log w] ≤ log E[w], strict for non-constant w
    d = delta_log_z(jnp.asarray(log_w), 0.7)
    np.testing.assert_allclose(d["delta_log_z"], abs(0.7 - lower), rtol=1e-13)
    np.testing.assert_allclose(d["delta_log_z_is"], abs(0.7 - importance), rtol=1e-13)
    # Exact weights (log w ≡ log Z): both errors vanish.
    d = delta_log_z(jnp.full(9, -0.54), -0.54)
    assert float(d["delta_log_z"]) < 1e-14 and float(d["delta_log_z_is"]) < 1e-14


# ---------------------------------------------------------------- Δstd (eq. 67), mode coverage


def test_delta_std_on_constructed_samples():
    col = np.tile([-1.0, 1.0], 50)  # std 1 exactly (ddof = 0)
    samples = jnp.asarray(np.stack([col, 3.0 * col + 7.0], axis=1))
    np.testing.assert_allclose(delta_std(samples, jnp.array([1.5, 2.0])), (0.5 + 1.0) / 2, rtol=1e-13)
    np.testing.assert_allclose(delta_std(samples, jnp.array([1.0, 3.0])), 0.0, atol=1e-13)


def test_mode_fractions_on_gmm_grid():
    centers = np.array([[a, b] for a in (-5.0, 0.0, 5.0) for b in (-5.0, 0.0, 5.0)])
    counts = np.arange(1, 10)
    rng = np.random.default_rng(2)
    samples = np.repeat(centers, counts, axis=0) + 0.5 * rng.normal(size=(counts.sum(), 2))
    frac = mode_fractions(jnp.asarray(rng.permutation(samples)), jnp.asarray(centers))
    np.testing.assert_allclose(frac, counts / counts.sum(), rtol=1e-14)


# ---------------------------------------------------------------- Sinkhorn


def _cost(x, y, p):
    return np.linalg.norm(x[:, None, :] - y[None, :, :], axis=-1) ** p


def _brute_force_ot(c):
    """Exact OT between uniform n-point clouds: an optimal plan is a permutation (Birkhoff)."""
    n = c.shape[0]
    return min(c[np.arange(n), list(perm)].mean() for perm in itertools.permutations(range(n)))


def _numpy_sinkhorn(c, eps, max_iterations=50_000):
    """Reference log-domain Sinkhorn, uniform weights: P_ij = a_i b_j exp((f_i + g_j − C_ij)/ε); <P, C>.

    For a self-term (C = Cᵀ) it uses the averaged symmetric update f ← ½(f + T f) (Feydy et al. 2019),
    since alternating updates crawl when the kernel is nearly the identity.
    """
    n, m = c.shape
    log_a, log_b = np.full(n, -np.log(n)), np.full(m, -np.log(m))
    symmetric = n == m and np.array_equal(c, c.T)
    f, g = np.zeros(n), np.zeros(m)
    for _ in range(max_iterations):
        if symmetric:
            f = 0.5 * (f - eps * np_logsumexp((f[None, :] - c) / eps + log_b[None, :], axis=1))
            g = f
        else:
            f = -eps * np_logsumexp((g[None, :] - c) / eps + log_b[None, :], axis=1)
            g = -eps * np_logsumexp((f[:, None] - c) / eps + log_a[:, None], axis=0)
        plan = np.exp((f[:, None] + g[None, :] - c) / eps + log_a[:, None] + log_b[None, :])
        rows, cols = plan.sum(axis=1) - np.exp(log_a), plan.sum(axis=0) - np.exp(log_b)
        if np.abs(rows).sum() + np.abs(cols).sum() < 1e-12:
            return float(np.sum(plan * c))
    raise AssertionError("reference Sinkhorn did not converge")


RNG = np.random.default_rng(3)
X4, Y4 = RNG.normal(size=(4, 2)), RNG.normal(size=(4, 2)) + np.array([0.5, 0.0])
X5, Y6 = 3.0 * RNG.normal(size=(5, 3)), 3.0 * RNG.normal(size=(6, 3)) + 1.0  # mean cost ≫ 1


@pytest.mark.parametrize("cost, p", [("euclidean", 1), ("sqeuclidean", 2)])
def test_sinkhorn_small_epsilon_matches_brute_force_ot(cost, p):
    # For the entropic plan, 0 ≤ <P_ε, C> − OT ≤ ε (H(P_ε) − H(P_OT)) ≤ ε log m (OT's plan is a permutation,
    # entropy log n; any coupling has entropy ≤ log(nm)); + 1e-8 for the marginal tolerance.
    eps = 1e-3
    exact = _brute_force_ot(_cost(X4, Y4, p))
    out = sinkhorn(X4, Y4, epsilon=eps, cost=cost, threshold=1e-10)
    assert out["sinkhorn_converged"]
    assert exact - 1e-8 <= out["sinkhorn"] <= exact + eps * np.log(4) + 1e-8
    assert out["sinkhorn"] == pytest.approx(exact, rel=1e-2)


def test_sinkhorn_epsilon_is_absolute_and_matches_numpy_reference():
    eps = 0.5
    c = _cost(X5, Y6, 1)
    reference = _numpy_sinkhorn(c, eps)
    out = sinkhorn(X5, Y6, epsilon=eps, threshold=1e-12)
    assert out["sinkhorn_converged"]
    np.testing.assert_allclose(out["sinkhorn"], reference, rtol=1e-5)
    # The test can tell: ε read as relative to the mean cost (ott's `relative_epsilon="mean"`) differs.
    relative = _numpy_sinkhorn(c, eps * c.mean())
    assert abs(relative - reference) > 1e-2 * reference
    # Annealing ε changes only the path, not the fixed point.
    plain = sinkhorn(X5, Y6, epsilon=eps, threshold=1e-12, epsilon_start=None)
    np.testing.assert_allclose(plain["sinkhorn"], reference, rtol=1e-5)


def test_sinkhorn_debiased_metadata_and_subsampling():
    eps = 0.5
    out = sinkhorn(X5, Y6, epsilon=eps, debiased=True, threshold=1e-12)
    keys = ["sinkhorn_cost", "sinkhorn_epsilon", "sinkhorn_debiased", "sinkhorn_n", "sinkhorn_m"]
    assert [out[k] for k in keys] == ["euclidean", 0.5, True, 5, 6]
    assert "sinkhorn" in out and out["sinkhorn_converged"] is True
    s_xx = _numpy_sinkhorn(_cost(X5, X5, 1), eps)
    s_yy = _numpy_sinkhorn(_cost(Y6, Y6, 1), eps)
    s_xy = _numpy_sinkhorn(_cost(X5, Y6, 1), eps)
    assert s_xx > 1e-3 and s_yy > 1e-3  # the self-terms are not zero at this ε
    np.testing.assert_allclose(out["sinkhorn"], s_xy - 0.5 * s_xx - 0.5 * s_yy, rtol=1e-5)
    same = sinkhorn(X5, X5, epsilon=eps, debiased=True, threshold=1e-12)
    assert abs(same["sinkhorn"]) < 1e-8  # S(x, x) by alternating vs averaged updates: equal to tolerance
    # Only the first n_max points are used, and the count is recorded.
    sub = sinkhorn(Y6, X5, epsilon=eps, n_max=4, threshold=1e-12)
    assert (sub["sinkhorn_n"], sub["sinkhorn_m"]) == (4, 4)
    np.testing.assert_allclose(sub["sinkhorn"], _numpy_sinkhorn(_cost(Y6[:4], X5[:4], 1), eps), rtol=1e-5)
    with pytest.raises(KeyError, match="euclidean"):
        sinkhorn(X5, Y6, cost="manhattan")
