"""The deterministic SBTM sampler (paper 001) on closed forms: the 1-D Ornstein–Uhlenbeck path of §5.1
(π = N(0, 1), f_t = N(0, σ_t²), σ_t² = 1 − e^{−2(t+0.1)}), the annealing paths, ULA, and the errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import problems
import problems.fokker_planck as fp
from pinnflow.core.config import ConfigError
from pinnflow.gradient_flow import ANNEALING, AnnealConfig, StartConfig, gradient_flow_problem, start_law
from pinnflow.sbtm.sampler import SamplerConfig, sample, solution_of, start_particles
from pinnflow.target import Target

VAR0 = 1.0 - math.exp(-0.2)


def sigma2(t):
    return 1.0 - np.exp(-2.0 * (np.asarray(t) + 0.1))


@pytest.fixture(scope="module")
def ou1d():
    target = problems.get("gaussian", mean=(0.0,), cov=[[1.0]])
    ou = fp.get("ou", d=1, Gamma=[[1.0]], b=[0.0], D=1.0, m0=[0.0], C0=[[VAR0]], T=1.0)
    return target, solution_of(ou)


def ou_config(**kw):
    base = dict(n_particles=400, precision="float64", start={"std": math.sqrt(VAR0), "stratified": True},
                time={"dt": 1e-2, "integrator": "heun", "T": 1.0}, save_every=25, density_grid=64)
    base.update(kw)
    return SamplerConfig(**base)


def test_closed_form_values_of_the_issue():
    s2 = sigma2([0.0, 0.5, 1.0])
    kl = 0.5 * (s2 - 1 - np.log(s2))
    F = (1 - s2) ** 2 / s2
    np.testing.assert_allclose(kl, [0.44452, 0.028594, 3.3167e-3], rtol=1e-4)
    np.testing.assert_allclose(F[0], 3.6979, rtol=1e-4)


def test_exact_score_flow_reproduces_the_ou_variance(ou1d):
    """With s = ∇log f_t exact the flow is linear, X_t = X_0 σ_t/σ_0: the variance ratio matches to ≤ 1e-4, the
    Fisher estimate is the exact F at the particles and the dissipation identity reduces to −dKL/dt = F."""
    target, sol = ou1d
    cfg = ou_config(score="exact", time={"dt": 2.5e-3, "integrator": "heun", "T": 1.0}, save_every=100,
                    density_grid=0)
    res = sample(target, cfg, solution=sol, progress=False)
    X0 = start_particles(target, res.config)
    ratio = np.var(res.particles) / np.var(X0)
    assert abs(ratio / (sigma2(1.0) / VAR0) - 1) <= 1e-4
    h = res.history
    np.testing.assert_allclose(h["fisher"], h["fisher_exact"], rtol=1e-10)
    np.testing.assert_allclose(h["dissipation_exact"], h["fisher_exact"], rtol=1e-10)
    assert h["log_rho_error"].max() < 1e-4  # log f carried along the trajectories (trapezoid, O(Δt²))
    # the particle estimates of KL and F are those of the exact f_t at the particles: with m2 = mean X_t²,
    # mean(log f_t − log π) = ½ m2 (1 − 1/σ_t²) − ½ log σ_t² and mean|∇log(f_t/π)|² = m2 (1 − 1/σ_t²)²
    s2 = sigma2(h["t"])
    m2 = np.mean(np.asarray(X0) ** 2) * s2 / VAR0
    np.testing.assert_allclose(h["kl"], 0.5 * m2 * (1 - 1 / s2) - 0.5 * np.log(s2), atol=1e-4)
    np.testing.assert_allclose(h["fisher"], m2 * (1 - 1 / s2) ** 2, rtol=1e-4)  # the step's O(Δt²) error
    # ... and close to the closed forms KL_t = ½(σ_t² − 1 − log σ_t²), F_t = (1 − σ_t²)²/σ_t² (sampling error)
    np.testing.assert_allclose(h["kl"], 0.5 * (s2 - 1 - np.log(s2)), rtol=0.1, atol=3e-3)
    np.testing.assert_allclose(h["fisher"], (1 - s2) ** 2 / s2, rtol=0.02)
    # the measured −ΔKL/Δt lies between the rates at the interval's ends (KL is convex in t here)
    rate = h["kl_rate"].to_numpy()[1:]
    assert np.all(rate < h["fisher"].to_numpy()[:-1]) and np.all(rate > h["fisher"].to_numpy()[1:])


def test_learned_sampler_follows_the_ou_path_and_stops_on_fisher(ou1d):
    """Learned score (paper 001's reference settings: Euler, implicit score matching, a few Adam steps per time
    step): variance, Fisher information and the predicted dissipation track the closed forms, and the Fisher
    criterion ends the run at the first saved time below the tolerance."""
    target, sol = ou1d
    cfg = ou_config(time={"dt": 5e-3, "integrator": "euler", "T": 0.5}, save_every=25, fisher_tol=0.3,
                    inner={"lr": 5e-4, "max_steps": 10, "gtol": 1e-4})
    res = sample(target, cfg, solution=sol, progress=False)
    h = res.history
    assert res.converged and res.t == pytest.approx(0.375)  # F(0.25) = 0.47, F(0.375) = 0.25
    assert h["fisher"].iloc[-1] < 0.3 <= h["fisher"].iloc[-2]
    t = res.t
    assert abs(np.var(res.particles) / sigma2(t) - 1) < 0.02
    last = h.iloc[-1]
    F = (1 - sigma2(t)) ** 2 / sigma2(t)
    assert abs(last["fisher"] / F - 1) < 0.15
    assert abs(last["dissipation"] / last["dissipation_exact"] - 1) < 0.15
    assert last["l2_exact"] < 0.08


def test_annealing_paths():
    target = problems.get("bimodal")
    g = jax.grad(target.log_density)
    x = jnp.asarray([0.7])
    law = start_law(StartConfig(std=2.0), 1)
    geo = ANNEALING.factory("geometric").from_config(AnnealConfig(kind="geometric", duration=2.0))
    np.testing.assert_allclose(geo.score(g, law.score, x, 0.0), law.score(x))
    np.testing.assert_allclose(geo.score(g, law.score, x, 1.0), 0.5 * law.score(x) + 0.5 * g(x))
    np.testing.assert_allclose(geo.score(g, law.score, x, 3.0), g(x))
    dil = ANNEALING.factory("dilation").from_config(AnnealConfig(kind="dilation", duration=2.0, t0=0.5))
    lam = 0.75  # (t + t0)/τ at t = 1
    expected = jax.grad(lambda y: target.log_density(y / lam))(x)  # ∇_x log π(x/λ)
    np.testing.assert_allclose(dil.score(g, law.score, x, 1.0), expected, rtol=1e-6)
    np.testing.assert_allclose(dil.score(g, law.score, x, 5.0), g(x))
    tem = ANNEALING.factory("tempered_dilation").from_config(
        AnnealConfig(kind="tempered_dilation", duration=2.0, t0=0.5))
    expected = jax.grad(lambda y: lam * target.log_density(y / lam))(x)  # ∇_x log π(x/λ)^λ
    np.testing.assert_allclose(tem.score(g, law.score, x, 1.0), expected, rtol=1e-6)
    problem = gradient_flow_problem(target, StartConfig(std=2.0), AnnealConfig(kind="geometric"), 1.0)
    assert problem.D == 1.0 and problem.dim == 1


def test_stratified_start_is_stratified():
    law = start_law(StartConfig(mean=[1.0, -1.0], std=2.0, stratified=True), 2)
    X = np.asarray(law.sample(jax.random.PRNGKey(0), 100))
    u = jax.scipy.stats.norm.cdf((X - np.array([1.0, -1.0])) / 2.0)
    for j in range(2):  # one point in each of the 100 equal-probability strata per coordinate
        assert sorted(np.floor(np.asarray(u[:, j]) * 100).astype(int)) == list(range(100))


def test_bad_input_is_named_before_compiling():
    target = problems.get("bimodal")
    with pytest.raises(ConfigError, match="anneal.t0.*singular"):
        SamplerConfig(anneal={"kind": "dilation", "t0": 0.0})
    with pytest.raises(ConfigError, match="anneal.kind.*dilation, geometric, none"):
        SamplerConfig(anneal={"kind": "cosine"})
    with pytest.raises(ConfigError, match="time.integrator.*euler, heun"):
        SamplerConfig(time={"integrator": "rk4"})
    with pytest.raises(ConfigError, match="n_particles"):
        SamplerConfig(n_particles=0)
    with pytest.raises(ConfigError, match="time.dt"):
        SamplerConfig(time={"dt": -0.1, "T": 1.0})
    with pytest.raises(ConfigError, match="time.T"):
        SamplerConfig(time={"dt": 0.1, "T": None})
    with pytest.raises(ValueError, match="start.mean has 2 values"):
        sample(target, SamplerConfig(start={"mean": [0.0, 1.0]}))

    def log_density(x):  # finite at the domain centre, NaN beyond x = 5
        return -0.5 * jnp.sum(x**2) + jnp.where(x[0] > 5.0, jnp.nan, 0.0)

    bad = Target("nan_right", 1, log_density, (-4.0, 4.0))
    with pytest.raises(ValueError, match="not finite at .* of 50 start particles"):
        sample(bad, SamplerConfig(n_particles=50, start={"mean": 6.0}))


def test_ula_matches_the_ou_path(ou1d):
    from pinnflow.baselines.ula import ula

    target, sol = ou1d
    cfg = ou_config(n_particles=4000)
    x0 = start_particles(target, cfg)
    res = ula(target, n=4000, dt=1e-2, T=1.0, start=cfg.start, save_every=50, precision_name="float64",
              solution=sol, x0=x0)
    assert list(res.history["t"]) == [0.0, 0.5, 1.0]
    assert res.history["cov_error"].iloc[0] < 1e-2  # the given start particles
    # Euler–Maruyama of the OU SDE: var_{k+1} = (1 − h)² var_k + 2h, sampling error ≈ √(2/n) relative
    v, h = VAR0, 1e-2
    for _ in range(100):
        v = (1 - h) ** 2 * v + 2 * h
    assert abs(np.var(res.particles) / v - 1) < 4 * math.sqrt(2 / 4000)
    with pytest.raises(ValueError, match="whole number of steps"):
        ula(target, n=10, dt=0.3, T=1.0)


def test_mixture_targets_are_exact():
    t = problems.get("bimodal")
    x = np.linspace(-12, 12, 20001)
    p = np.exp(np.asarray(jax.vmap(t.log_density)(jnp.asarray(x[:, None]))))
    dx = x[1] - x[0]
    assert abs(p.sum() * dx - 1) < 1e-6  # normalised: log Z = 0
    assert abs((x * p).sum() * dx - 1.0) < 1e-6 and abs(((x - 1) ** 2 * p).sum() * dx - 4.0) < 1e-5
    assert abs(p[x < 0].sum() * dx - 0.26138) < 1e-4
    np.testing.assert_allclose(t.std, [2.0])
    g = problems.get("grid16")
    assert g.dim == 2 and g.info["means"].shape == (16, 2) and set(g.info["means"][:, 0]) == {-15, -5, 5, 15}
