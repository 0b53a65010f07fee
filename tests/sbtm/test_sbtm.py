"""SBTM (paper 000) against closed forms on the Ornstein–Uhlenbeck problem: the transport with the exact score
reproduces the exact mean, covariance, log-density along trajectories and entropy (both routes); the learned
score reaches relative error (22) ≤ 1e-2 and the entropy routes (16), (17) agree to 1%; resume is exact; the
models' traces and the losses are what they claim; config errors name the key."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import problems.fokker_planck as F
from pinnflow.core.config import ConfigError
from pinnflow.fokker_planck import FokkerPlanckProblem
from pinnflow.operators import EXACT, Auto, Hutchinson
from pinnflow.sbtm import LOSSES, SBTMConfig, solve
from pinnflow.sbtm.config import LossConfig, ScoreModelConfig
from pinnflow.sbtm.models import PairPotential, Potential, ScoreMLP


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def moment_matched(problem):
    """`problem` with a sampler whose particles have exactly the mean m0 and covariance C0 (normalised by n).

    With the exact (affine) score of an OU process the probability flow is affine, so the particles' empirical
    mean and covariance follow the exact ones up to the time-stepping error alone: no sampling error."""
    m0, L = np.asarray(problem.info["m0"]), np.linalg.cholesky(np.asarray(problem.info["C0"]))

    def sample0(key, n):
        z = jax.random.normal(key, (n, problem.dim))
        if n > problem.dim:  # (the construction check draws 2 points)
            z = z - z.mean(0)
            W = jnp.linalg.cholesky(z.T @ z / n)
            z = jax.scipy.linalg.solve_triangular(W, z.T, lower=True).T
        return jnp.asarray(m0, z.dtype) + z @ jnp.asarray(L, z.dtype).T

    return dataclasses.replace(problem, sample0=sample0)


def exact_solve(d, dt, integrator="heun", n=200):
    p = moment_matched(F.get("ou", d=d))
    cfg = SBTMConfig(score="exact", n_particles=n, save_every=25, precision="float64",
                     time={"dt": dt, "integrator": integrator})
    return p, solve(p, cfg, progress=False)


def max_log_rho_error(p, r):
    exact = jax.vmap(p.log_rho, in_axes=(0, None))(r.state.X, jnp.asarray(r.t))
    return float(jnp.max(jnp.abs(r.state.log_rho - exact)))


@pytest.mark.parametrize("d, dt", [(2, 0.01), pytest.param(10, 0.0025, marks=pytest.mark.slow)])  # d = 10: 8 s
def test_exact_score_transport_reproduces_the_exact_solution(d, dt):
    """Heun with the exact score: mean, covariance, entropy by both routes and log ρ(X_T) per particle at T."""
    p, r = exact_solve(d, dt)
    last = r.history.iloc[-1]
    assert r.t == pytest.approx(p.T) and len(r.history) == 1 + round(p.T / dt) // 25
    assert last.mean_error <= 1e-3 and last.cov_error <= 1e-3
    assert abs(last.entropy_16 - last.entropy_exact) <= 1e-3
    assert abs(last.entropy_17 - last.entropy_exact) <= 1e-3
    assert max_log_rho_error(p, r) <= 1e-3
    assert last.entropy_exact != pytest.approx(r.history.entropy_exact[0], abs=1e-2)  # the entropy did move


@pytest.mark.slow
def test_time_steps_converge_at_their_order():
    """Euler is first order, Heun second order (errors at T of log ρ and of the covariance, d = 2)."""
    errs = {}
    for integrator in ("euler", "heun"):
        for dt in (0.02, 0.01):
            p, r = exact_solve(2, dt, integrator, n=50)
            errs[integrator, dt] = (max_log_rho_error(p, r), r.history.cov_error.iloc[-1])
    for k in range(2):
        assert 1.6 < errs["euler", 0.02][k] / errs["euler", 0.01][k] < 2.5
        assert 3.2 < errs["heun", 0.02][k] / errs["heun", 0.01][k] < 5.0


def test_learned_score_ou_d2():
    """A short solve on ou (d = 2, T = 1, 100 Heun steps): relative score error (22) ≤ 1e-2 at every saved
    time, and the entropy routes (16) and (17) agree to 1%."""
    p = F.get("ou", d=2)
    cfg = SBTMConfig(n_particles=1000, save_every=10, precision="float64", model={"width": 32},
                     operator={"kind": "exact", "transport": "exact"}, time={"dt": 0.01, "integrator": "heun"},
                     inner={"lr": 1e-3}, init={"rel_tol": 1e-3, "lr": 1e-2})
    r = solve(p, cfg, progress=False)
    h = r.history
    assert len(h) == 11 and h.t.iloc[-1] == pytest.approx(1.0)
    assert h.score_error.iloc[0] < 1e-3  # the initial fit
    assert (h.score_error <= 1e-2).all(), h.score_error.tolist()
    gap = (h.entropy_16 - h.entropy_17).abs() / h.entropy_exact.abs()
    assert (gap <= 1e-2).all(), gap.tolist()
    assert (h.inner_steps.iloc[1:] <= cfg.inner.max_steps).all()
    # route 16 is −mean log ρ_t(X_t) up to the sampling error of S_0 (exact S_0 vs the particles' estimate)
    s0_gap = h.entropy_exact[0] - h.entropy_particles[0]
    np.testing.assert_allclose(h.entropy_16 - h.entropy_particles, s0_gap, atol=1e-12)


@pytest.mark.slow  # ~2 min
def test_learned_score_ou_d10():
    """ou, d = 10 (anisotropic Γ, full D), T = 1: the learned score stays within relative error 1e-2 and the
    entropy within 1% of the exact one. It needs many particles: with n = 1000 the implicit loss overfits
    the particles (measured: relative error 2.4e-2 after 25 inner steps per time step, 0.19 after 100),
    with n = 4000 it stays below 6e-3."""
    p = F.get("ou", d=10)
    cfg = SBTMConfig(n_particles=4000, save_every=10, precision="float64", model={"width": 32},
                     operator={"kind": "exact", "transport": "exact"}, time={"dt": 0.01, "integrator": "heun"},
                     inner={"lr": 1e-3}, init={"rel_tol": 1e-3, "lr": 1e-2})
    h = solve(p, cfg, progress=False).history
    assert (h.score_error <= 1e-2).all(), h.score_error.tolist()
    rel = (h.entropy_16 - h.entropy_exact).abs() / h.entropy_exact.abs()
    assert (rel <= 1e-2).all(), rel.tolist()
    gap = (h.entropy_16 - h.entropy_17).abs() / h.entropy_exact.abs()
    assert (gap <= 1e-2).all(), gap.tolist()


def small_config(**over):
    base = dict(n_particles=64, save_every=5, precision="float64", model={"width": 16},
                time={"dt": 0.01, "integrator": "heun", "T": 0.2}, inner={"lr": 1e-3},
                init={"rel_tol": 1e-2, "lr": 1e-2})
    base.update(over)
    return SBTMConfig(**base)


def time_dependent_problem():
    """dX = (sin(2t) − X) dt + √(2·0.5) dW from N(0, I) in d = 2, given without its solution (cheap to compile)."""
    return FokkerPlanckProblem(
        name="linear_forced", dim=2, drift=lambda x, t: jnp.sin(2.0 * t) - x, D=0.5, T=0.2,
        log_rho0=lambda x: -0.5 * x @ x - jnp.log(2.0 * jnp.pi), sample0=lambda k, n: jax.random.normal(k, (n, 2)))


@pytest.mark.slow  # 7 s; the run loop's resume is covered fast in tests/pinn
def test_resume_extends_a_solve_bit_for_bit(tmp_path):
    """A solve stopped after 2 saves (T = 0.1) and resumed to T = 0.2 equals an uninterrupted one."""
    p = time_dependent_problem()
    full = solve(p, small_config(), progress=False)
    first = small_config(time={"dt": 0.01, "integrator": "heun", "T": 0.1})
    solve(p, first, run_dir=tmp_path / "run", progress=False)
    resumed = solve(p, small_config(), run_dir=tmp_path / "run", resume=True, progress=False)
    assert resumed.start_seconds == 0.0 and resumed.fit_error == full.fit_error
    for a, b in zip(jax.tree_util.tree_leaves(full.state), jax.tree_util.tree_leaves(resumed.state), strict=True):
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    cols = [c for c in full.history.columns if c != "seconds"]
    assert list(resumed.history.columns) == list(full.history.columns)
    np.testing.assert_array_equal(full.history[cols].to_numpy(), resumed.history[cols].to_numpy())
    with pytest.raises(ConfigError, match="n_particles"):
        solve(p, small_config(n_particles=32), run_dir=tmp_path / "run", resume=True, progress=False)
    with pytest.raises(FileExistsError):
        solve(p, small_config(), run_dir=tmp_path / "run", progress=False)


def model_cfg(width=8):
    return ScoreModelConfig(width=width, depth=2, activation="tanh")


def test_model_traces_match_autodiff():
    """score_and_trace gives s and Tr(D∇s) for every model, D = None, a scalar and a matrix, exact backends."""
    d = 6
    x = jax.random.normal(jax.random.key(1), (d,))
    A = jax.random.normal(jax.random.key(2), (d, d))
    Dm = A @ A.T / d
    models = [ScoreMLP(d, model_cfg(), nnx.Rngs(0)), Potential(d, model_cfg(), nnx.Rngs(0)),
              PairPotential(3, 2, model_cfg(), nnx.Rngs(0))]
    Ds = (None, jnp.asarray(0.3), Dm)

    @nnx.jit
    def check(m, y):
        J = jax.jacfwd(m.score)(y)
        want = (jnp.trace(J), 0.3 * jnp.trace(J), jnp.sum(Dm * J.T))
        got = [m.score_and_trace(y, op, None, D) for op in (EXACT, Auto()) for D in Ds]
        return m.score(y), want * 2, got

    for model in models:
        s_ref, want, got = check(model, x)
        for (s, tr), w in zip(got, want, strict=True):
            np.testing.assert_allclose(s, s_ref, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(tr, w, rtol=1e-10, atol=1e-12)


def test_pair_potential_is_permutation_invariant():
    model = PairPotential(4, 2, model_cfg(), nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(3), (8,))
    perm = np.array([2, 0, 3, 1])
    xp = x.reshape(4, 2)[perm].reshape(-1)
    U, Up, s, sp = nnx.jit(lambda m, a, b: (m.potential(a), m.potential(b), m.score(a), m.score(b)))(model, x, xp)
    np.testing.assert_allclose(Up, U, rtol=1e-12)
    np.testing.assert_allclose(sp, s.reshape(4, 2)[perm].reshape(-1), rtol=1e-12)


def test_losses_estimate_the_implicit_loss():
    """Hutchinson's implicit loss is unbiased; the antithetic denoising loss is the implicit one up to O(α²)
    for a fixed noise (with ξᵀ∇s ξ in place of ∇·s)."""
    d, n = 4, 50
    model = Potential(d, model_cfg(16), nnx.Rngs(0))
    X = jax.random.normal(jax.random.key(4), (n, d))
    implicit = LOSSES.get("implicit", op=EXACT, cfg=LossConfig())
    hutch = LOSSES.get("implicit", op=Hutchinson(1), cfg=LossConfig())
    alphas = (1e-2, 5e-3)
    denoise = [LOSSES.get("denoising", op=EXACT, cfg=LossConfig(kind="denoising", noise_scale=a)) for a in alphas]

    @nnx.jit
    def values(m, X, key):
        exact = implicit(m, X, None)
        hutchinson = jax.vmap(lambda k: hutch(m, X, k))(jax.random.split(jax.random.fold_in(key, 1), 400))
        xi = jax.random.normal(key, X.shape)  # the noise the denoising losses draw from `key`
        quad = jax.vmap(lambda x, v: v @ jax.jvp(m.score, (x,), (v,))[1])(X, xi)
        s = jax.vmap(m.score)(X)
        return exact, hutchinson, jnp.mean(jnp.sum(s * s, -1) + 2.0 * quad), [f(m, X, key) for f in denoise]

    exact, vals, target, den = values(model, X, jax.random.key(6))
    assert abs(float(vals.mean() - exact)) < 4 * float(vals.std()) / np.sqrt(400)
    assert float(vals.std()) > 0
    errs = [abs(float(v - target)) for v in den]
    assert errs[0] < 1e-2 * abs(float(target)) and 3.0 < errs[0] / errs[1] < 5.0, errs


@pytest.mark.parametrize("over, key", [
    ({"model": {"kind": "transformer"}}, "model.kind"),
    ({"model": {"activation": "relu6"}}, "model.activation"),
    ({"loss": {"kind": "sliced"}}, "loss.kind"),
    ({"loss": {"noise_scale": 0.0}}, "loss.noise_scale"),
    ({"operator": {"kind": "magic"}}, "operator.kind"),
    ({"operator": {"transport": "magic"}}, "operator.transport"),
    ({"operator": {"probes": 0}}, "operator.probes"),
    ({"time": {"integrator": "rk4"}}, "time.integrator"),
    ({"time": {"dt": -0.1}}, "time.dt"),
    ({"inner": {"gtol": -1.0}}, "inner.gtol"),
    ({"inner": {"max_steps": 0}}, "inner.max_steps"),
    ({"init": {"rel_tol": 0}}, "init.rel_tol"),
    ({"n_particles": 0}, "n_particles"),
    ({"save_every": 2.5}, "save_every"),
    ({"score": "approximate"}, "score"),
    ({"precision": "float16"}, "precision"),
])
def test_config_errors_name_the_key(over, key):
    with pytest.raises(ConfigError, match=f"config {key}"):
        SBTMConfig(**over)


def test_errors_at_solve_time_name_the_key():
    p = F.get("ou", d=2)
    with pytest.raises(ConfigError, match="time.dt"):
        solve(p, SBTMConfig(time={"dt": 0.3}), progress=False)  # T = 1 is not a whole number of steps
    with pytest.raises(ConfigError, match="model.kind"):
        solve(p, SBTMConfig(model={"kind": "pair_potential"}, time={"dt": 0.1}), progress=False)
    cfg = SBTMConfig().override(["time.dt=0.01", "model.kind=mlp"])
    assert cfg.time.dt == 0.01 and cfg.model.kind == "mlp"


def test_noisy_score_model_on_the_active_swimmer():
    """`noisy_mlp` learns only the v-component (D acts on v only): the x-component is zero, route (17) is NaN,
    and the v-marginal, an OU process N(0, D + (var0 − D)e^{−2γt}), is transported: var(v) at t = 0.5 over
    var(v) at 0 matches the exact ratio to 3% (the particles' own sampling error cancels in the ratio)."""
    p = F.get("active_swimmer", var0=0.5)
    cfg = SBTMConfig(n_particles=1000, save_every=10, model={"kind": "noisy_mlp", "width": 16, "depth": 2},
                     time={"dt": 0.05, "integrator": "heun", "T": 0.5}, inner={"lr": 1e-3},
                     init={"rel_tol": 1e-3, "lr": 1e-2})
    r = solve(p, cfg, progress=False)
    h = r.history
    assert np.isnan(h.entropy_17.iloc[-1]) and np.isfinite(h.entropy_16.iloc[-1])
    s = np.asarray(r.score(np.zeros((3, 2))))
    assert np.all(s[:, 0] == 0.0)
    var_v = lambda t: 1.0 + (0.5 - 1.0) * np.exp(-2 * 0.1 * t)  # noqa: E731 - gamma = 0.1, D = 1
    assert h.op_cov_11.iloc[-1] / h.op_cov_11.iloc[0] == pytest.approx(var_v(0.5) / var_v(0.0), rel=0.03)


def test_noisy_score_model_needs_some_noise():
    p = F.get("active_swimmer")
    with pytest.raises(ConfigError, match="no noisy coordinate"):
        solve(dataclasses.replace(p, D=0.0), SBTMConfig(model={"kind": "noisy_mlp"}))
