"""The SDE reference (Euler–Maruyama ensembles) and Gaussian KDEs against closed forms.

Tolerances. Both test problems are linear SDEs, so the Euler–Maruyama law is Gaussian with moments that follow
exact discrete recursions (m ← m + h(Am + c_t), C ← (I + hA)C(I + hA)ᵀ + 2Dh). The ensemble moments are then
compared with the exact continuous moments within z standard errors (exact Gaussian formulas, or per-realisation
estimates for pooled one-particle moments) plus the Euler–Maruyama weak error |EM − exact|, computed exactly
from those recursions rather than bounded. z = 4 (two-sided tail 6e-5 per comparison; ≤ 0.3% family-wise over
the ≤ 50 comparisons of a test), z = 4.5 for the 195 entries of the 10-D state moments.

KDEs: for Gaussian data N(μ, Σ) and kernel covariance H the expected estimate is exactly N(μ, Σ + H) and its
variance is (E[K_H(x − X)²] − E[K_H(x − X)]²)/n with E[K_H²] = N(x; μ, Σ + H/2)/((4π)^{k/2}|H|^{1/2}). The
estimate is a mean of n independent terms in [0, K_max], K_max = K_H(0), so Bernstein's inequality bounds
P(|ρ̂ − Eρ̂| ≥ 5 sd + 8 K_max/n) by 2e^{−12} ≈ 1e-5 per grid point (the 8 K_max/n term covers the tails, where
one stray point makes ρ̂ far from Gaussian; at the peak 5 sd dominates).
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from scipy.stats import gaussian_kde, multivariate_normal

import problems.fokker_planck as F
from pinnflow.baselines.sde_ensemble import one_particle_kde, one_particle_points, simulate_ensemble
from pinnflow.fokker_planck import FokkerPlanckProblem
from pinnflow.metrics.kde import bandwidth_matrix, kde, log_kde, scott_factor

OU_TIMES = (0.0, 0.25, 0.5, 1.0)
TRAP_TIMES = (0.0, 0.5, 1.0)
N_OU, N_TRAP = 20000, 10000


@pytest.fixture(scope="module")
def ou():
    return F.get("ou", d=2)


@pytest.fixture(scope="module")
def trap():
    return F.get("harmonic_trap", N=5)


@pytest.fixture(scope="module")
def ou_ens(ou):
    return simulate_ensemble(ou, N_OU, OU_TIMES, jax.random.PRNGKey(1), dt=2e-3)


@pytest.fixture(scope="module")
def trap_ens(trap):
    return simulate_ensemble(trap, N_TRAP, TRAP_TIMES, jax.random.PRNGKey(2), dt=5e-3)


def em_moments(A, c_of_t, twoD, m0, C0, times, steps):
    """Exact mean and covariance of the Euler–Maruyama chain for dX = (AX + c_t) dt + √(2D) dW on the same grid
    as `simulate_ensemble` (each save interval split into `steps[j]` equal steps), float64."""
    m, C = np.array(m0, float), np.array(C0, float)
    out_m, out_C, t_prev = [], [], 0.0
    eye = np.eye(len(m))
    for t, k in zip(times, steps, strict=True):
        h = (t - t_prev) / max(k, 1)
        for i in range(k):
            s = t_prev + i * h
            m = m + h * (A @ m + c_of_t(s))
            B = eye + h * A
            C = B @ C @ B.T + h * twoD
        out_m.append(m.copy())
        out_C.append(C.copy())
        t_prev = t
    return np.array(out_m), np.array(out_C)


def gaussian_se(C, n):
    """Standard errors of the sample mean (d,) and covariance (d, d) of n Gaussian draws with covariance C."""
    v = np.diag(C)
    return np.sqrt(v / n), np.sqrt((np.outer(v, v) + C**2) / n)


def trap_em_moments(trap, ens):
    N, info = trap.info["N"], trap.info
    d = 2 * N
    P = np.kron(np.full((N, N), 1.0 / N), np.eye(2))
    A = -np.eye(d) + info["alpha"] * (np.eye(d) - P)
    beta = lambda s: np.tile([info["a"] * np.cos(np.pi * info["omega"] * s),  # noqa: E731
                              info["a"] * np.sin(np.pi * info["omega"] * s)], N)
    m0 = np.tile([info["a"], 0.0], N)
    return em_moments(A, beta, 2 * info["D"] * np.eye(d), m0, info["var0"] * np.eye(d), ens.times, ens.steps)


# ---------------------------------------------------------------- the ensemble against closed forms


def test_ou_mean_and_cov_match_exact_within_standard_errors_and_weak_error(ou, ou_ens):
    e = ou_ens
    np.testing.assert_array_equal(e.times, OU_TIMES)
    np.testing.assert_array_equal(e.steps, [0, 125, 125, 250])  # save times hit exactly, dt = 2e-3
    assert e.dt == pytest.approx(2e-3) and e.n == N_OU and e.particles.shape == (4, N_OU, 2)
    info = ou.info
    em_m, em_C = em_moments(-info["Gamma"], lambda s: info["Gamma"] @ info["b"], 2 * info["D"], info["m0"],
                            info["C0"], e.times, e.steps)
    for i, t in enumerate(OU_TIMES):
        m_ex, C_ex = np.asarray(ou.mean(t), float), np.asarray(ou.cov(t), float)
        se_m, se_C = gaussian_se(C_ex, N_OU)
        bias_m, bias_C = np.abs(em_m[i] - m_ex), np.abs(em_C[i] - C_ex)
        assert np.all(bias_m <= 0.5 * se_m) and np.all(bias_C <= 0.5 * se_C)  # dt is small: O(dt) ≪ 1/√n
        err_m = np.abs(np.asarray(e.mean[i]) - m_ex)
        err_C = np.abs(np.asarray(e.cov[i]) - C_ex)
        assert np.all(err_m <= 4 * se_m + bias_m + 1e-5), (t, err_m / se_m)
        assert np.all(err_C <= 4 * se_C + bias_C + 1e-5), (t, err_C / se_C)
        # against the Euler–Maruyama chain itself: sampling error only
        assert np.all(np.abs(np.asarray(e.mean[i]) - em_m[i]) <= 4 * se_m + 1e-5)
        assert np.all(np.abs(np.asarray(e.cov[i]) - em_C[i]) <= 4 * se_C + 1e-5)
    assert e.one_particle_mean is None and e.particle_shape is None
    # t = 0 takes no step: the draws of ρ0 (sample0 with the first half of the key; jit vs eager rounding)
    np.testing.assert_allclose(e.particles[0], ou.sample0(jax.random.split(jax.random.PRNGKey(1))[0], N_OU),
                               rtol=1e-6, atol=1e-6)


def test_harmonic_trap_state_and_pooled_one_particle_moments(trap, trap_ens):
    e, N = trap_ens, trap.info["N"]
    assert e.particle_shape == (5, 2) and e.one_particle_mean.shape == (3, 2) and e.one_particle_cov.shape == (3, 2, 2)
    em_m, em_C = trap_em_moments(trap, e)
    for i, t in enumerate(TRAP_TIMES):
        x = np.asarray(e.particles[i], float).reshape(N_TRAP, N, 2)
        # one-particle moments: SE from the i.i.d. per-realisation contributions (particles in one are correlated)
        m1_ex = np.asarray(trap.info["one_particle_mean"](t), float)
        C1_ex = np.asarray(trap.info["one_particle_cov"](t), float)
        ybar = x.mean(axis=1)
        c = x - x.reshape(-1, 2).mean(axis=0)
        Q = np.einsum("rni,rnj->rij", c, c) / N
        se_m1, se_C1 = ybar.std(axis=0, ddof=1) / np.sqrt(N_TRAP), Q.std(axis=0, ddof=1) / np.sqrt(N_TRAP)
        em_m1 = em_m[i].reshape(N, 2).mean(axis=0)
        em_C1 = np.mean([em_C[i][2 * j:2 * j + 2, 2 * j:2 * j + 2] for j in range(N)], axis=0)
        bias_m1, bias_C1 = np.abs(em_m1 - m1_ex), np.abs(em_C1 - C1_ex)
        err_m1 = np.abs(np.asarray(e.one_particle_mean[i]) - m1_ex)
        err_C1 = np.abs(np.asarray(e.one_particle_cov[i]) - C1_ex)
        assert np.all(err_m1 <= 4 * se_m1 + bias_m1 + 1e-5), (t, err_m1 / se_m1)
        assert np.all(err_C1 <= 4 * se_C1 + bias_C1 + 1e-5), (t, err_C1 / se_C1)
        # the full 10-D state
        m_ex, C_ex = np.asarray(trap.mean(t), float), np.asarray(trap.cov(t), float)
        se_m, se_C = gaussian_se(C_ex, N_TRAP)
        err_m = np.abs(np.asarray(e.mean[i]) - m_ex)
        err_C = np.abs(np.asarray(e.cov[i]) - C_ex)
        assert np.all(err_m <= 4.5 * se_m + np.abs(em_m[i] - m_ex) + 1e-5), (t, np.max(err_m / se_m))
        assert np.all(err_C <= 4.5 * se_C + np.abs(em_C[i] - C_ex) + 1e-5), (t, np.max(err_C / se_C))
        # the pooled statistics are those of the kept particles
        np.testing.assert_allclose(np.asarray(e.one_particle_mean[i]), x.reshape(-1, 2).mean(axis=0), atol=1e-5)


@pytest.fixture(scope="module")
def small(trap):
    """Small ensembles (one compilation each): particles kept; moments only, the problem given by name (the
    registry lookup is recorded and answered with the same problem object, so nothing is built twice)."""
    key, calls = jax.random.PRNGKey(5), []
    full = simulate_ensemble(trap, 64, (0.2, 0.5), key, dt=0.05)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(F, "get", lambda name, **params: calls.append((name, params)) or trap)
        lean = simulate_ensemble("harmonic_trap", 64, (0.2, 0.5), key, dt=0.05, keep_particles=False,
                                 problem_params={"N": 5})
    return full, lean, calls


def test_moments_only_steps_and_problem_by_name_give_the_same_ensemble(trap, small):
    full, lean, calls = small
    assert calls == [("harmonic_trap", {"N": 5})]
    by_steps = simulate_ensemble(trap, 64, (0.2, 0.5), jax.random.PRNGKey(5), steps=10)  # dt = 0.5/10: same program
    assert lean.particles is None and full.particles.shape == (2, 64, 10) and lean.problem == "harmonic_trap"
    np.testing.assert_array_equal(full.steps, [4, 6])
    # the last save time's states are kept either way
    np.testing.assert_array_equal(np.asarray(full.final), np.asarray(full.particles[-1]))
    np.testing.assert_allclose(np.asarray(lean.final), np.asarray(full.final), rtol=1e-6, atol=1e-6)
    for other in (lean, by_steps):
        np.testing.assert_allclose(other.mean, full.mean, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(other.cov, full.cov, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(other.one_particle_cov, full.one_particle_cov, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(by_steps.particles, full.particles)


# ---------------------------------------------------------------- KDE


def test_kde_reproduces_scipy_gaussian_kde():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(700, 2)) @ np.array([[1.0, 0.4], [0.0, 0.6]]) + np.array([0.5, -1.0])
    at = rng.normal(size=(40, 2)) * 1.5
    with jax.enable_x64(True):
        for rule in ("scott", "silverman"):
            ref = gaussian_kde(pts.T, bw_method=rule)
            np.testing.assert_allclose(kde(pts, at, rule, chunk=64), ref(at.T), rtol=1e-10)
            np.testing.assert_allclose(bandwidth_matrix(pts, rule), ref.covariance, rtol=1e-10)
        ref = gaussian_kde(pts.T)  # the default is Scott's rule
        np.testing.assert_allclose(kde(pts, at, chunk=64), ref(at.T), rtol=1e-10)
        np.testing.assert_allclose(log_kde(pts, at, chunk=7), ref.logpdf(at.T), rtol=1e-10)
        for bw, H in ((np.array([[0.2, 0.05], [0.05, 0.1]]),) * 2, (0.3, 0.09 * np.eye(2))):  # matrix; scalar std
            direct = multivariate_normal(np.zeros(2), H).pdf(at[:, None, :] - pts[None, :, :]).mean(axis=1)
            np.testing.assert_allclose(kde(pts, at, bw, chunk=64), direct, rtol=1e-10)
        # far from the data the density underflows but its log stays finite: −½|z|² up to O(1)
        far = log_kde(pts, np.array([[1e3, 1e3]]), 0.3)
        assert np.isfinite(far[0]) and far[0] < -1e6


def kde_tolerance(mu, Sig, H, grid, n):
    """(E ρ̂, 5 sd + 8 K_max/n) of a Gaussian KDE of n draws of N(μ, Σ) at the grid (module docstring)."""
    smoothed = multivariate_normal(mu, Sig + H).pdf(grid)
    k_max = 1.0 / np.sqrt(np.linalg.det(2 * np.pi * H))
    second = multivariate_normal(mu, Sig + H / 2).pdf(grid) * k_max / 2 ** (len(mu) / 2)
    sd = np.sqrt(np.maximum(second - smoothed**2, 0.0) / n)
    return smoothed, 5 * sd + 8 * k_max / n


def test_kde_integrates_to_one_and_matches_a_known_gaussian():
    """n = 20000 draws of N(μ, Σ), float32, Scott's rule: ρ̂ is within the Bernstein bound of N(μ, Σ + H), and of
    the true density within that plus the exact smoothing bias |N(μ, Σ + H) − N(μ, Σ)|."""
    n, mu, Sig = 20000, np.array([0.3, -0.2]), np.array([[1.0, 0.5], [0.5, 0.8]])
    pts = np.random.default_rng(1).multivariate_normal(mu, Sig, size=n)
    g = np.linspace(-6.0, 6.0, 61)
    X, Y = np.meshgrid(g, g, indexing="ij")
    grid = np.stack([X.ravel(), Y.ravel()], axis=1)
    dens = np.asarray(kde(pts, grid), float)
    assert np.sum(dens) * (g[1] - g[0]) ** 2 == pytest.approx(1.0, abs=1e-4)  # smooth, ±6σ: the sum is exact
    H = np.asarray(bandwidth_matrix(pts), float)
    np.testing.assert_allclose(H, scott_factor(n, 2) ** 2 * Sig, rtol=0.03)  # Σ̂ ≈ Σ
    smoothed, tol = kde_tolerance(mu, Sig, H, grid, n)
    assert np.all(np.abs(dens - smoothed) <= tol)
    exact = multivariate_normal(mu, Sig).pdf(grid)
    assert np.all(np.abs(dens - exact) <= np.abs(smoothed - exact) + tol)
    # in numbers: ≈ 5% of the peak, mostly the smoothing bias (peak × f²/(1 + f²) ≈ 3.6% for Scott's f)
    assert np.max(np.abs(dens - exact)) < 0.07 * exact.max()


def test_one_particle_kde_matches_the_exact_one_particle_density(trap, trap_ens):
    """Pooled positions are correlated within a realisation, but the average of the N identically distributed
    kernel values of one realisation has variance ≤ that of one value and lies in [0, K_max]: the Bernstein
    bound with n realisations applies."""
    i, t = 2, TRAP_TIMES[2]
    m1 = np.asarray(trap.info["one_particle_mean"](t), float)
    C1 = np.asarray(trap.info["one_particle_cov"](t), float)
    gx = m1[0] + np.linspace(-4, 4, 41) * np.sqrt(C1[0, 0])
    gy = m1[1] + np.linspace(-4, 4, 35) * np.sqrt(C1[1, 1])
    n_used = N_TRAP // 2  # realisations (max_points = n_used · N pooled positions)
    dens = np.asarray(one_particle_kde(trap_ens, i, (gx, gy), max_points=5 * n_used), float)
    assert dens.shape == (41, 35)
    assert dens.sum() * (gx[1] - gx[0]) * (gy[1] - gy[0]) == pytest.approx(1.0, abs=2e-3)  # ±4σ box: 0.9987²
    pts = one_particle_points(trap_ens, i, max_points=5 * n_used)
    assert pts.shape == (n_used * 5, 2) and one_particle_points(trap_ens, i).shape == (N_TRAP * 5, 2)
    H = np.asarray(bandwidth_matrix(pts), float)
    X, Y = np.meshgrid(gx, gy, indexing="ij")
    grid = np.stack([X.ravel(), Y.ravel()], axis=1)
    smoothed, tol = kde_tolerance(m1, C1, H, grid, n_used)  # n realisations: the bound holds for pooled means
    assert np.all(np.abs(dens.ravel() - smoothed) <= tol)
    # points form and a subset of realisations
    sub = one_particle_kde(trap_ens, i, grid[:7], max_points=1000)
    assert sub.shape == (7,) and one_particle_points(trap_ens, i, max_points=1000).shape == (1000, 2)


# ---------------------------------------------------------------- bad input


def test_bad_input_raises_naming_the_problem(ou, trap_ens, small):
    key = jax.random.PRNGKey(0)
    cases = [
        (dict(n=1), ValueError, "n .*>= 2"),
        (dict(n=2.5), ValueError, "n .*integer"),
        (dict(save_times=(0.5, 1.5)), ValueError, r"\[1.5\] lie outside \[0, T = 1.0\] of problem 'ou'"),
        (dict(save_times=(-0.1, 0.5)), ValueError, "outside"),
        (dict(save_times=(0.5, 0.2)), ValueError, "strictly increasing"),
        (dict(save_times=(0.5, float("nan"))), ValueError, "finite"),
        (dict(save_times=()), ValueError, "non-empty"),
        (dict(dt=0.0), ValueError, "dt must be"),
        (dict(dt=-1e-3), ValueError, "dt must be"),
        (dict(dt=1e-3, steps=10), ValueError, "exactly one of dt"),
        (dict(dt=None), ValueError, "exactly one of dt"),
        (dict(dt=None, steps=0), ValueError, "steps"),
    ]
    for kw, err, msg in cases:
        args = dict(problem=ou, n=100, save_times=(0.5, 1.0), key=key, dt=1e-2) | kw
        with pytest.raises(err, match=msg):
            simulate_ensemble(**args)
    with pytest.raises(KeyError, match="unknown Fokker-Planck problem 'no_such'.*harmonic_trap"):
        simulate_ensemble("no_such", 100, (0.5,), key, dt=1e-2)
    with pytest.raises(TypeError, match="FokkerPlanckProblem"):
        simulate_ensemble(object(), 100, (0.5,), key, dt=1e-2)
    with pytest.raises(ValueError, match="problem_params"):
        simulate_ensemble(ou, 100, (0.5,), key, dt=1e-2, problem_params={"d": 3})
    with pytest.raises(ValueError, match="keep_particles=True"):
        one_particle_kde(small[1], 0, np.zeros((3, 2)))
    with pytest.raises(IndexError, match="i_time = 3"):
        one_particle_kde(trap_ens, 3, np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"grid must be points \(m, 2\)"):
        one_particle_kde(trap_ens, 0, np.zeros((3, 3)))
    # an ensemble that blows up (EM on dx = −x³ dt with x0 ~ N(0, 9), dt = 0.25) is an error, not NaN moments
    stiff = FokkerPlanckProblem(name="cubic", dim=1, drift=lambda x, t: -(x**3), D=0.1, T=1.0,
                                log_rho0=lambda x: -x[0] ** 2 / 18 - 0.5 * np.log(18 * np.pi),
                                sample0=lambda k, n: 3.0 * jax.random.normal(k, (n, 1)))
    with pytest.raises(FloatingPointError, match="'cubic' is not finite at save time t = 1 .*decrease dt"):
        simulate_ensemble(stiff, 256, (0.25, 1.0), key, dt=0.25)
    pts = np.random.default_rng(0).normal(size=(50, 2))
    for bw, msg in ((-0.1, "finite and > 0"), ("nope", "unknown bandwidth rule"), (np.eye(3), "shape"),
                    (np.array([[1.0, 2.0], [2.0, 1.0]]), "positive definite")):
        with pytest.raises(ValueError, match=msg):
            kde(pts, pts[:3], bw)
    with pytest.raises(ValueError, match=r"`at` must have shape \(m, 2\)"):
        kde(pts, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="singular"):
        kde(np.ones((10, 2)), pts[:3])
    with pytest.raises(ValueError, match="at least 2 points"):
        kde(pts[:1], pts[:3])


# ---------------------------------------------------------------- data parallel

SCRIPT = r"""
import json, jax, numpy as np
import problems.fokker_planck as F
from pinnflow.fokker_planck import FokkerPlanckProblem
from pinnflow.baselines.sde_ensemble import simulate_ensemble
assert jax.device_count() == 2, jax.devices()
p = F.get("harmonic_trap", N=5)
runs = {dp: simulate_ensemble(p, 2000, (0.0, 0.3, 0.6), jax.random.PRNGKey(3), dt=0.01, data_parallel=dp)
        for dp in (True, False)}
a, b = runs[True], runs[False]
diff = lambda f: float(np.max(np.abs(np.asarray(getattr(a, f)) - np.asarray(getattr(b, f)))))
print(json.dumps({"particles": diff("particles"), "mean": diff("mean"), "cov": diff("cov"),
                  "one_cov": diff("one_particle_cov"), "devices": [len(r.particles.sharding.device_set)
                                                                    for r in (a, b)]}))
"""


@pytest.mark.slow  # ~15 s on one shared core: a fresh interpreter and two compilations
def test_sharded_ensemble_equals_unsharded():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    res = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["devices"] == [2, 1]
    assert out["particles"] <= 1e-6  # same noise (partitionable threefry), same per-realisation arithmetic
    assert out["mean"] <= 1e-5 and out["cov"] <= 1e-5 and out["one_cov"] <= 1e-5  # reduction order only
