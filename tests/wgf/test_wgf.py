"""Paper 004's scheme (`pinnflow.wgf`): the free energy at the identity flow, the affine flow following the exact
Wasserstein gradient flow of an OU process to first order in h, a short planar solve with exact resume, and
every bad input caught before a compile."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import problems.fokker_planck as F
from pinnflow.core.config import ConfigError
from pinnflow.core.precision import precision
from pinnflow.fokker_planck import potential_problem
from pinnflow.nn.flows import planar_params
from pinnflow.wgf import WGFConfig, build, solve


def test_identity_flow_free_energy():
    """H(θ0) = E_p[V] − (β/2) d log(2πe) at the identity flow (ρ_θ0 = p = N(0, I))."""
    with precision("float64"):
        p = F.get("quadratic_10d", beta=0.7)
        s = build(p, WGFConfig().override(["flow.layers=6"]))
        theta = s.model.flow.init(jax.random.PRNGKey(0))
        z = jax.random.normal(jax.random.PRNGKey(1), (50_000, 10))
        H = float(jax.jit(lambda th, z: s.model.free_energy(th, z, p.potential, p.beta))(theta, z))
        terms = jax.vmap(p.potential)(z) + 0.7 * (-0.5 * jnp.sum(z**2, 1) - 5 * math.log(2 * math.pi))
        assert abs(H - float(jnp.mean(terms))) < 1e-9  # on the same draw: V + β log p, nothing else
        P = np.linalg.inv(p.info["Sigma"])
        EV = 0.5 * np.trace(P) + 0.5 * p.info["mu"] @ P @ p.info["mu"]  # closed form E_p[V]
        se = float(jnp.std(terms)) / math.sqrt(len(terms))
        assert abs(H - (EV - 0.35 * 10 * math.log(2 * math.pi * math.e))) < 4 * se


def _whitened(n, d, seed=0):
    """n points with mean exactly 0 and covariance exactly I: for a quadratic V, an affine flow and a quadratic
    ψ every expectation of the scheme only needs these two moments, so the scheme runs on the population."""
    z = np.random.default_rng(seed).normal(size=(n, d))
    z -= z.mean(0)
    L = np.linalg.cholesky(z.T @ z / n)
    return jnp.asarray(np.linalg.solve(L, z.T).T)


def _affine_error(h, T=0.2):
    p = F.get("quadratic_aniso", T=T)
    cfg = WGFConfig().override([f"scheme.h={h}", "flow.kind=affine", "psi.kind=quadratic",
                                "scheme.inner_solver=lstsq", "scheme.optimizer=sgd", "scheme.m_out=40",
                                "scheme.eps=0.005", "scheme.lr_out=0.00125"])  # steps that contract onto the prox point
    z = _whitened(64, 2)
    s = build(p, cfg, draw=lambda key, n: z)
    state = s.init(s.model.flow.init(None), s.psi.init(None), jax.random.PRNGKey(0))
    step = jax.jit(s.step)
    for _ in range(round(T / h)):
        state, _ = step(state)
    A, c = np.asarray(state.theta["A"]), np.asarray(state.theta["c"])
    # the exact flow from Γ = I, b = 0 for diagonal Σ: Γ(t) = C(t)^{1/2} (Γ̇ = −Σ⁻¹Γ + βΓ^{−T}), b(t) = µ(t)
    Gamma = np.diag(np.sqrt(np.diag(np.asarray(p.cov(T)))))
    return np.linalg.norm(A - Gamma) + np.linalg.norm(c - np.asarray(p.mean(T)))


def test_affine_flow_follows_the_exact_ode_to_first_order():
    with precision("float64"):
        e1, e2, e4 = (_affine_error(h) for h in (0.02, 0.01, 0.005))
    assert e1 < 0.1 and e4 < 0.025
    assert 1.7 < e1 / e2 < 2.3 and 1.7 < e2 / e4 < 2.3  # first order in h


FAST = ["flow.layers=8", "scheme.m_out=20", "scheme.m_in=10", "scheme.batch=400", "scheme.h=0.01",
        "scheme.T=0.08", "eval.every=2", "eval.samples=4000"]


def test_short_planar_solve_moves_toward_the_exact_solution_and_resumes_exactly(tmp_path):
    p = F.get("quadratic")
    cfg = WGFConfig().override(FAST)
    full = solve(p, cfg, progress=False)
    h = full.history
    np.testing.assert_allclose(h["t"], [0.0, 0.02, 0.04, 0.06, 0.08], atol=1e-12)
    assert np.all(np.diff(h["H"]) < 0)  # the free energy decays
    # ρ_θ follows ρ_t: the mean moves from 0 toward µ(t) = 3(1 − e^{−4t}) ≈ 0.82 by t = 0.08
    assert abs(h["mean_0"].iloc[-1] - float(p.mean(0.08)[0])) < 0.15
    assert h["mean_abs_error"].iloc[-1] < 0.25
    assert set(full.snapshots) == set(h["t"])
    half = solve(p, cfg.override(["scheme.T=0.04"]), run_dir=tmp_path / "run", progress=False)
    assert half.history["t"].iloc[-1] == pytest.approx(0.04)
    rest = solve(p, cfg, run_dir=tmp_path / "run", resume=True, progress=False)
    np.testing.assert_allclose(np.asarray(rest.state.theta["w"]), np.asarray(full.state.theta["w"]), atol=1e-6)
    assert len(rest.snapshots) == 5  # the first half's snapshots come back from disk
    y, log_rho = rest.sample(100, jax.random.PRNGKey(0), t=0.04)
    assert y.shape == (100, 2) and np.all(np.isfinite(log_rho))



def test_flat_scheme_lowers_the_free_energy():
    p = F.get("quadratic")
    s = build(p, WGFConfig().override(["scheme.kind=flat", "flow.layers=4", "scheme.batch=200", "scheme.m_out=4"]))
    state = s.init(s.model.flow.init(jax.random.PRNGKey(0)), s.psi.init(jax.random.PRNGKey(1)), jax.random.PRNGKey(2))
    z = jax.random.normal(jax.random.PRNGKey(3), (4000, 2))
    H0 = float(s.model.free_energy(state.theta, z, p.potential, p.beta))
    state, info = jax.jit(s.step)(state)
    assert float(state.t) == pytest.approx(0.005) and np.isfinite(float(info["loss"]))
    assert float(s.model.free_energy(state.theta, z, p.potential, p.beta)) < H0


def test_bad_input_is_caught_before_compiling():
    p = F.get("quadratic")
    with pytest.raises(ConfigError, match="scheme.h"):
        WGFConfig().override(["scheme.h=0"]).validate()
    with pytest.raises(ConfigError, match="available: affine, planar"):
        WGFConfig().override(["flow.kind=glow"]).validate()
    with pytest.raises(ConfigError, match="available: flat, semi_implicit"):
        WGFConfig().override(["scheme.kind=jko"]).validate()
    with pytest.raises(ConfigError, match="lstsq needs a ψ linear"):
        WGFConfig().override(["scheme.inner_solver=lstsq"]).validate()
    with pytest.raises(ValueError, match="beta must be finite and > 0"):
        F.get("quadratic", beta=0.0)
    with pytest.raises(ValueError, match="beta must be finite and > 0"):
        F.get("styblinski_tang", beta=-1.0)
    with pytest.raises(KeyError, match="available: .*quadratic_10d.*styblinski_tang"):
        F.get("quadratic_12d")
    with pytest.raises(ValueError, match="not a whole number of time steps"):
        solve(p, WGFConfig().override(["scheme.h=0.3"]), progress=False)
    with pytest.raises(ValueError, match="has no potential"):
        solve(F.get("ou"), WGFConfig(), progress=False)
    # V finite at ρ0's check points but not at every initial sample
    def V(x):
        return jnp.where(x[0] > 2.5, jnp.nan, 0.5 * x @ x)

    bad = potential_problem("bad_v", 2, V, 1.0, 0.1, lambda x: -0.5 * x @ x - jnp.log(2 * jnp.pi),
                            lambda k, n: jax.random.normal(k, (n, 2)) * 0.1)
    with pytest.raises(ValueError, match="potential V of 'bad_v' is not finite at"):
        solve(bad, WGFConfig().override(["scheme.h=0.05"]), progress=False)
    theta = planar_params(np.ones((60, 2)), 0.2 * np.ones((60, 2)), np.zeros(60))
    theta["u"] = theta["u"][:, :1]
    with pytest.raises(ValueError, match="parameter u has shape"):
        solve(p, WGFConfig(), theta0=theta, progress=False)
    with pytest.raises(ValueError, match="needs a Gaussian"):
        solve(potential_problem("laplace0", 1, lambda x: jnp.sum(x**2), 1.0, 0.1,
                                lambda x: -jnp.sum(jnp.abs(x)) - jnp.log(2.0),
                                lambda k, n: jax.random.laplace(k, (n, 1))), WGFConfig(), progress=False)


def test_potential_problem_checks():
    with pytest.raises(ValueError, match="drift must be −∇V"):
        from pinnflow.fokker_planck import FokkerPlanckProblem

        FokkerPlanckProblem("wrong", 1, lambda x, t: x, 1.0, 1.0, lambda x: -0.5 * jnp.sum(x**2),
                            lambda k, n: jax.random.normal(k, (n, 1)), potential=lambda x: 0.5 * jnp.sum(x**2))
    p = F.get("styblinski_tang", d=3, beta=0.1)
    x = jnp.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(p.drift(x, 0.0), -0.06 * (4 * x**3 - 32 * x + 5), rtol=1e-6)
    assert p.beta == 0.1 and float(p.D) == 0.1
