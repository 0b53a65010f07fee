"""The PINN route on Fokker–Planck problems (`pinnflow.pinn.fokker_planck`): the initial condition is built into V,
the residual wiring (σσᵀ = 2D) and the fitted Gaussian reference give a zero residual on the exact solution, a
short training on `ou` (d = 2) lowers the log-FP residual and reaches the exact entropy and score at T, config
errors name the key, and a bad initial density is rejected before anything compiles.

(That pinnflow's `log_fp` vanishes on the exact OU / harmonic-trap log-densities is tests/fpe/test_problems.py;
that a wrong-shaped drift is rejected is `FokkerPlanckProblem`'s own check, tested there too.)"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import problems.fokker_planck as F
from pinnflow.core.config import ConfigError
from pinnflow.operators import FORWARD_LAPLACIAN
from pinnflow.pde.residuals import log_fp
from pinnflow.pinn import fokker_planck as M
from pinnflow.pinn.fokker_planck import GaussianReference, PINNFPConfig, fp_residual, initial_value_V, solve
from problems.fokker_planck.gaussian_solution import gaussian_log_density

SMALL = ["optim.steps=600", "optim.chunk=200", "optim.checkpoint_every=600", "optim.batch_size=256",
         "network.model=network", "network.width=32", "network.depth=2", "operator=exact",
         "collocation.trajectories=500", "collocation.grid=50", "collocation.sde_dt=0.01",
         "evaluation.particles=500", "evaluation.steps=10", "evaluation.saves=2", "evaluation.chunk=null",
         "evaluation.residual=false"]


def small_config(*over: str) -> PINNFPConfig:
    return PINNFPConfig().override(SMALL + list(over))


def exact_moments(p, times):
    """The problem's exact (mean, cov) at `times`, one compiled program."""
    m, C = jax.jit(jax.vmap(lambda t: (p.mean(t), p.cov(t))))(jnp.asarray(times))
    return np.asarray(m), np.asarray(C)


def test_initial_condition_is_built_in():
    """V(·, 0) = log ρ0 exactly (to round-off: a different compiled program may fuse log ρ0 differently) whatever
    N and the reference, and V(·, t) ≠ log ρ0 for t > 0."""
    with jax.enable_x64(True):
        p = F.get("ou")

        def N(x, t):  # any N
            return jnp.sin(3.0 * x[0] + t) + x @ x

        times = np.linspace(0.0, 1.0, 11)  # any smooth moments will do: a rotating, widening Gaussian
        mean = np.stack([np.cos(times), np.sin(times)], axis=1)
        cov = (1.0 + times)[:, None, None] * np.array([[1.0, 0.3], [0.3, 0.5]])
        ref = GaussianReference.fit(times, mean, cov, 1.0, 4)
        x = p.sample0(jax.random.PRNGKey(1), 16)

        @jax.jit
        def values(x):
            at = lambda r, t: jax.vmap(initial_value_V(p.log_rho0, N, r), in_axes=(0, None))(x, t)  # noqa: E731
            return jax.vmap(p.log_rho0)(x), [(at(r, 0.0), at(r, 0.5)) for r in (None, ref)]

        lp0, pairs = values(x)
        for at0, later in pairs:
            np.testing.assert_allclose(np.asarray(at0), np.asarray(lp0), rtol=1e-15, atol=1e-15)
            assert np.min(np.abs(np.asarray(later - lp0))) > 1e-6


@pytest.mark.slow  # ~8 s; the exact densities' zero log_fp residual is in the default suite (tests/fpe)
def test_fitted_reference_of_the_exact_moments_has_zero_residual():
    """Anisotropic, non-symmetric Γ (ou d = 2): V = log ρ0 + g(·, t) − g(·, 0) with g fitted to the exact moments
    and N = 0 is the exact solution up to the fit, so the residual wiring (drift b, σ = sde_sigma with σσᵀ = 2D,
    the forward Laplacian) must give R[V] ≤ 1e-6; with D in place of 2D it must not."""
    with jax.enable_x64(True):
        p = F.get("ou")
        assert not np.allclose(p.info["Gamma"], p.info["Gamma"].T)
        rng = np.random.default_rng(0)
        ts = rng.uniform(0.0, p.T, 24)
        grid = np.linspace(0.0, p.T, 513)
        mean, cov = exact_moments(p, np.concatenate([grid, ts]))
        ref = GaussianReference.fit(grid, mean[:513], cov[:513], p.T, 128)
        V = initial_value_V(p.log_rho0, lambda x, t: jnp.zeros((), x.dtype), ref)
        xs = jnp.asarray(mean[513:] + rng.normal(size=(24, 2)))
        half = lambda s: p.sde_sigma(s) / jnp.sqrt(2.0)  # noqa: E731 - σσᵀ = D: paper 000's σ read as pinnflow's

        @jax.jit
        @jax.vmap
        def residuals(x, t, m, C):
            return (fp_residual(p, FORWARD_LAPLACIAN)(V, x, t), log_fp(V, p.drift, half, x, t, FORWARD_LAPLACIAN),
                    ref(x, t) - gaussian_log_density(x, m, C))

        good, wrong, fit = (np.asarray(a) for a in residuals(xs, jnp.asarray(ts), mean[513:], cov[513:]))
        assert np.max(np.abs(good)) <= 1e-6, good
        assert np.min(np.abs(wrong)) > 1e-3, wrong
        assert np.max(np.abs(fit)) <= 1e-8  # the reference is the exact log-density up to the fit


@pytest.fixture(scope="module")
def ou_run():
    p = F.get("ou")
    return p, solve(p, small_config(), progress=False)


@pytest.mark.slow  # ~20 s, mostly compilation; the default suite has its time budget
def test_short_training_on_ou_reaches_the_exact_solution(ou_run):
    p, r = ou_run
    h = r.history
    assert list(h["t"]) == pytest.approx([0.0, 0.5, 1.0])
    assert {"entropy", "entropy_V", "entropy_exact", "score_error", "mean_error", "cov_error", "log_rho_error",
            "V_error", "train_seconds"} <= set(h.columns)
    assert "residual" not in h.columns  # evaluation.residual = false
    end = h.iloc[-1]
    assert abs(end["entropy"] - end["entropy_exact"]) <= 0.03 * abs(end["entropy_exact"])
    assert abs(end["entropy_V"] - end["entropy_exact"]) <= 0.03 * abs(end["entropy_exact"])
    assert end["score_error"] <= 5e-2
    assert end["cov_error"] <= 0.25 and end["mean_error"] <= 0.1  # 500 particles: sampling error ~0.05
    assert end["train_seconds"] == r.seconds > 0 and r.step == 600
    # the training lowered the mean squared log-FP residual (from about the fitted reference's, which carries
    # the ensemble's sampling error): the first chunk's mean against the last's
    loss = r.train_history["loss"].to_numpy()
    assert np.all(np.isfinite(loss)) and loss[-1] < 0.7 * loss[0], loss
    # V(·, 0) = log ρ0 for the trained model too
    x = np.asarray(r.solver.path[0, :8])
    np.testing.assert_allclose(np.asarray(r.log_rho(x, 0.0)), np.asarray(jax.vmap(p.log_rho0)(x)), rtol=1e-6)


@pytest.mark.parametrize("over, key", [
    ({"optim": {"lr": -1.0}}, "optim.lr"),
    ({"network": {"model": "nope"}}, "network.model"),
    ({"network": {"time_period": 0.0}}, "network.time_period"),
    ({"reference": "nope"}, "reference"),
    ({"reference_intervals": 0}, "reference_intervals"),
    ({"reference_intervals": 99}, "reference_intervals"),
    ({"operator": "nope"}, "operator"),
    ({"T": -1.0}, "T"),
    ({"precision": "float16"}, "precision"),
    ({"evaluation": {"steps": 7, "saves": 2}}, "evaluation.steps"),
    ({"evaluation": {"particles": 1}}, "evaluation.particles"),
    ({"collocation": {"flow_fraction": 1.5}}, "collocation.flow_fraction"),
    ({"collocation": {"trajectories": 1}}, "collocation.trajectories"),
    ({"collocation": {"flow_fraction": 0.5, "flow_every": 300}}, "collocation.flow_every"),
    ({"seed": "zero"}, "seed"),
])
def test_config_errors_name_the_key(over, key):
    with pytest.raises(ConfigError, match=rf"config {key}\b"):
        PINNFPConfig.from_dict(over)


def _no_compile(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("reached the collocation ensemble or the training")

    monkeypatch.setattr(M, "simulate_ensemble", boom)
    monkeypatch.setattr(M, "run_loop", boom)


def test_bad_input_is_rejected_before_anything_compiles(monkeypatch):
    _no_compile(monkeypatch)
    p = F.get("ou")
    with pytest.raises(ConfigError, match=r"config T: must be at most the problem's horizon 1.0"):
        solve(p, small_config("T=2.0"))
    with pytest.raises(TypeError, match="FokkerPlanckProblem"):
        solve("ou", small_config())
    # log ρ0 finite at the one sample the problem checks at construction, not finite on a part of ρ0's mass
    first = float(p.sample0(jax.random.key(0), 2)[0, 0])
    cut = first + 0.5

    def log_rho0(x):
        return jnp.where(x[0] > cut, jnp.nan, p.log_rho0(x))

    bad = dataclasses.replace(p, name="cut", log_rho0=log_rho0, score0=None, log_rho=None, score=None)
    with pytest.raises(ValueError, match=r"problem .cut.: log_rho0 is not finite \(nan\) at the evaluation"):
        solve(bad, small_config())


@pytest.mark.slow  # ~50 s: three short solves (one resumed)
def test_resume_and_flow_collocation(tmp_path):
    """A solve stopped after 200 steps and resumed to 400 equals one of 400 steps (with probability-flow
    collocation refreshed every 200 steps, so the resume also rebuilds the flow paths)."""
    p = F.get("ou")
    over = ("optim.steps=400", "optim.schedule_steps=400", "optim.checkpoint_every=200",
            "collocation.flow_fraction=0.25", "collocation.flow_every=200", "collocation.flow_count=200",
            "collocation.flow_steps=20")
    full = solve(p, small_config(*over), progress=False)
    solve(p, small_config(*over, "optim.steps=200"), run_dir=tmp_path, progress=False)
    resumed = solve(p, small_config(*over), run_dir=tmp_path, resume=True, progress=False)
    assert resumed.step == 400
    for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert full.history.iloc[-1]["score_error"] <= 5e-2
