"""Integrators against closed forms: RK 3/8 order and stability polynomial, the change-of-variables
log-likelihood (paper 003, eq. 64) on an OU probability flow (eq. 66), Euler–Maruyama moments on OU/VP."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from closed_forms import OU, VP, random_spd
from scipy.integrate import solve_ivp

from pinnflow.dynamics.integrators import euler_maruyama, ode, ode_with_logp, probability_flow, rk38_step
from pinnflow.operators import EXACT, Hutchinson
from pinnflow.pde import residuals as R

D = 3


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def ou_case(S_kind="matrix"):
    """OU with anisotropic C0 and a scalar, matrix or time-function diffusion; returns (ou, sigma)."""
    rng = np.random.default_rng(0)
    C0, _ = random_spd(rng, D, 0.3, 2.0)
    _, Q = random_spd(rng, D)  # a second eigenbasis: D = SSᵀ does not commute with C0
    m0 = rng.normal(size=D)
    S = Q @ np.diag([1.0, 0.6, 1.3]) @ Q.T if S_kind != "scalar" else 0.8
    ou = OU(m0, C0, S)
    sigma = (lambda t: jnp.asarray(S)) if S_kind == "function" else S  # noqa: E731
    return ou, sigma


def ou_score(ou):
    """∇V(x, t) = −C_t⁻¹(x − m_t) in closed form; C_t⁻¹ depends on t only, so vmap does not batch it."""

    def grad_V(x, t):
        m, C = ou.mean_cov(t)
        return -jnp.linalg.inv(C) @ (x - m)

    return grad_V


def gaussian_samples(seed, n, m, C):
    z = np.random.default_rng(seed).normal(size=(n, len(m)))
    return jnp.asarray(np.asarray(m) + z @ np.linalg.cholesky(np.asarray(C)).T)


# --- Runge–Kutta 3/8 -----------------------------------------------------------------------------------


def test_rk38_step_pytree_matches_fourth_order_taylor_polynomial():
    # on y' = λy every 4-stage fourth-order RK step multiplies by 1 + z + z²/2 + z³/6 + z⁴/24, z = λ dt
    lam = {"a": -2.0, "b": jnp.array([0.5, -1.0])}
    y = {"a": jnp.array(1.5), "b": jnp.array([1.0, 2.0])}
    dt = 0.3
    y1 = rk38_step(lambda u, t: jax.tree_util.tree_map(lambda lu, yu: lu * yu, lam, u), y, 0.7, dt)
    for name in ("a", "b"):
        z = lam[name] * dt
        np.testing.assert_allclose(y1[name], y[name] * (1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24), rtol=1e-14)


def test_rk38_fourth_order_convergence():
    # y' = −y cos t, y(0) = y0  ⇒  y(t) = y0 exp(−sin t)
    def mu(x, t):
        return -x * jnp.cos(t)

    x0 = jnp.array([[1.0], [-0.5]])
    t1 = 1.0
    exact = x0 * jnp.exp(-jnp.sin(t1))
    errs = np.array([float(jnp.max(jnp.abs(ode(mu, x0, 0.0, t1, n) - exact))) for n in (10, 20, 40)])
    ratios = errs[:-1] / errs[1:]
    assert np.all((ratios > 12) & (ratios < 20)), (errs, ratios)
    # ode is the x-part of ode_with_logp (d/dt log p = −div μ = cos t here)
    x1, logp1 = ode_with_logp(mu, x0, jnp.zeros(2), 0.0, t1, 10)
    np.testing.assert_allclose(x1, ode(mu, x0, 0.0, t1, 10), rtol=1e-15)
    np.testing.assert_allclose(logp1, np.full(2, np.sin(t1)), atol=1e-5)


# --- ODE + log-likelihood, eq. (64) --------------------------------------------------------------------


def log_density(ou):
    """Exact V(x, t) = log N(x; m_t, C_t) over a batch of points, jitted."""
    return jax.jit(jax.vmap(ou.V, in_axes=(0, None)))


def ou_flow_map(ou, t0, t1):
    """A of the exact affine probability-flow map x ↦ m_t1 + A(x − m_t0), from A' = (−I + ½DC_t⁻¹)A
    (prob-flow drift −x + ½DC_t⁻¹(x − m_t), eq. 66), solved to 1e-13 by scipy."""
    Dm, I = np.asarray(ou.D), np.eye(D)

    def rhs(t, a):
        _, C = ou.mean_cov(t)
        return ((-I + 0.5 * Dm @ np.linalg.inv(np.asarray(C))) @ a.reshape(D, D)).ravel()

    sol = solve_ivp(rhs, (t0, t1), I.ravel(), method="DOP853", rtol=1e-13, atol=1e-13)
    return sol.y[:, -1].reshape(D, D)


def test_ode_with_logp_matches_exact_gaussian_flow():
    # start at t0 = 0.2 from p_{t0} = N(m_t0, C_t0); jitted with traced times, static mu/steps/op
    ou, S = ou_case("matrix")
    mu = probability_flow(ou.f, ou_score(ou), S)
    t0, t1 = 0.2, 1.0
    m_t0, C_t0 = ou.mean_cov(t0)
    x0 = gaussian_samples(1, 200, m_t0, C_t0)
    V = log_density(ou)
    logp0 = V(x0, t0)
    run = jax.jit(ode_with_logp, static_argnames=("mu", "steps", "op"))
    x1, logp1 = run(mu, x0, logp0, jnp.asarray(t0), jnp.asarray(t1), steps=100)

    m1, _ = ou.mean_cov(t1)
    A = ou_flow_map(ou, t0, t1)
    np.testing.assert_allclose(x1, np.asarray(m1) + (np.asarray(x0) - np.asarray(m_t0)) @ A.T, atol=1e-8)
    np.testing.assert_allclose(logp1, V(x1, t1), atol=1e-6)
    # the log-density really moved: by −∫div μ = −log det A (so logp1 = logp0 would fail)
    np.testing.assert_allclose(logp1 - logp0, -np.log(np.linalg.det(A)), atol=1e-6)
    assert abs(np.log(np.linalg.det(A))) > 0.1


def test_ode_with_logp_hutchinson_is_unbiased():
    ou, S = ou_case("matrix")
    mu = probability_flow(ou.f, ou_score(ou), S)
    x0 = gaussian_samples(3, 50, ou.m0, ou.C0)
    V = log_density(ou)
    logp0 = V(x0, 0.0)
    op = Hutchinson(num_probes=2)

    def run(key):
        return ode_with_logp(mu, x0, logp0, 0.0, 1.0, 100, op=op, key=key)

    x1, logp1 = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(0), 40))  # (40 keys, 50 particles)
    np.testing.assert_allclose(x1, jnp.broadcast_to(x1[0], x1.shape), atol=1e-14)  # probes only touch logp
    # the drift is affine in x, so the probe errors are i.i.d. over keys and particles
    err = np.asarray(logp1 - V(x1[0], 1.0)).ravel()
    se = err.std(ddof=1) / np.sqrt(err.size)
    assert err.std() > 1e-3  # genuinely stochastic
    assert abs(err.mean()) < 5 * se + 1e-6, (err.mean(), se)


def test_ode_with_logp_keeps_one_probe_per_particle():
    # μ = Bx: with one fixed Rademacher probe v per particle, log p moves by exactly −t vᵀBv, one of 2^(d−1)
    # values; probes redrawn every step would average to values outside this set.
    B = jnp.asarray(np.random.default_rng(4).normal(size=(D, D)))
    x0 = jnp.zeros((64, D))
    _, logp1 = ode_with_logp(lambda x, t: B @ x, x0, jnp.zeros(64), 0.0, 1.0, 10, op=Hutchinson(1),
                             key=jax.random.key(1))
    signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * D)).reshape(D, -1).T
    allowed = -np.einsum("ki,ij,kj->k", signs, np.asarray(B), signs)
    dist = np.min(np.abs(np.asarray(logp1)[:, None] - allowed[None, :]), axis=1)
    assert np.all(dist < 1e-12), dist
    assert len(np.unique(np.round(np.asarray(logp1), 8))) > 1


def test_stochastic_backend_without_key_raises():
    x0 = jnp.zeros((4, D))
    with pytest.raises(ValueError, match="key"):
        ode_with_logp(lambda x, t: -x, x0, jnp.zeros(4), 0.0, 1.0, 5, op=Hutchinson(2))
    with pytest.raises(ValueError, match="steps"):
        ode_with_logp(lambda x, t: -x, x0, jnp.zeros(4), 0.0, 1.0, 0, op=EXACT)


# --- Euler–Maruyama ------------------------------------------------------------------------------------


def assert_moments(x, m, C, rel=0.02):
    """Sample mean/cov within 5 Monte-Carlo standard errors plus `rel` (discretisation bias, O(dt))."""
    x, m, C = np.asarray(x), np.asarray(m), np.asarray(C)
    n = x.shape[0]
    se_m = np.sqrt(np.diag(C) / n)
    assert np.all(np.abs(x.mean(0) - m) <= 5 * se_m + rel * np.abs(m)), (x.mean(0), m)
    se_C = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / n)  # Gaussian: Var Ĉ_ij = (C_iiC_jj + C_ij²)/n
    assert np.all(np.abs(np.cov(x.T) - C) <= 5 * se_C + rel * np.abs(C)), (np.cov(x.T), C)


@pytest.mark.parametrize("S_kind", ["scalar", "matrix"])  # σ(t) as a function: the VP test below
def test_euler_maruyama_ou_moments(S_kind):
    ou, S = ou_case(S_kind)
    x0 = gaussian_samples(5, 20000, ou.m0, ou.C0)
    x1 = euler_maruyama(ou.f, S, x0, jax.random.key(2), 0.0, 1.0, 200)
    assert_moments(x1, *ou.mean_cov(1.0))


def test_euler_maruyama_time_dependent_sigma_from_point_mass():
    # VP-SDE dX = −β(t)X dt + √(2β(t)) dW (paper 003, eq. 73): m_1 = e^{−B}m0, C_1 = (1 − e^{−2B}) I
    vp = VP(np.array([2.0, -1.0, 0.5]), np.zeros((D, D)))
    x0 = jnp.tile(vp.m0, (20000, 1))
    x1 = euler_maruyama(vp.f, vp.sigma, x0, jax.random.key(3), 0.0, 1.0, 200)
    B = vp.b0 + 0.5 * vp.b1
    assert_moments(x1, np.exp(-B) * np.asarray(vp.m0), (1 - np.exp(-2 * B)) * np.eye(D))


# --- probability flow, eq. (66) -------------------------------------------------------------------------


@pytest.mark.parametrize("S_kind", ["scalar", "matrix", "function"])
def test_probability_flow_ou(S_kind):
    ou, S = ou_case(S_kind)
    mu = probability_flow(ou.f, jax.grad(ou.V), S)
    xs = gaussian_samples(6, 8, ou.m0, ou.C0)

    @jax.jit
    def check(t):  # (μ_ODE, −x − ½D∇V with ∇V = −C_t⁻¹(x − m_t), log-CE residual eq. 8) at the points
        m, C = ou.mean_cov(t)
        expected = -xs + 0.5 * (xs - m) @ jnp.linalg.inv(C) @ ou.D
        ce = jax.vmap(lambda x: R.log_ce(ou.V, mu, x, t))(xs)
        return jax.vmap(mu, in_axes=(0, None))(xs, t), expected, ce

    for t in (0.0, 0.4, 1.0):
        got, expected, ce = check(t)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
        assert np.max(np.abs(ce)) < 1e-9  # the flow transports the SDE marginals


def test_probability_flow_time_dependent_sigma_solves_continuity_equation():
    vp = VP(np.array([1.0, 0.0, -1.0]), random_spd(np.random.default_rng(7), D)[0])
    mu = probability_flow(vp.f, jax.grad(vp.V), vp.sigma)
    xs = gaussian_samples(8, 8, np.zeros(D), np.eye(D))

    @jax.jit
    def check(t):  # (μ_ODE, f − ½σ(t)²∇V with σ(t)² = 2β(t), log-CE residual eq. 8)
        expected = jax.vmap(lambda x: vp.f(x, t) - vp.beta(t) * jax.grad(vp.V)(x, t))(xs)
        ce = jax.vmap(lambda x: R.log_ce(vp.V, mu, x, t))(xs)
        return jax.vmap(mu, in_axes=(0, None))(xs, t), expected, ce

    for t in (0.1, 0.5, 1.0):
        got, expected, ce = check(t)
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        assert np.max(np.abs(ce)) < 1e-9


def test_ode_trajectory_ends_where_ode_ends():
    from pinnflow.dynamics.integrators import ode, ode_trajectory

    mu = lambda x, t: -x * (1 + t) + jnp.sin(x[::-1])  # noqa: E731
    x0 = jnp.asarray(np.random.default_rng(0).normal(size=(7, 3)))
    path, ts = ode_trajectory(mu, x0, 0.2, 1.0, 16)
    assert path.shape == (17, 7, 3) and ts.shape == (17,)
    np.testing.assert_allclose(path[0], x0)
    np.testing.assert_allclose(path[-1], ode(mu, x0, 0.2, 1.0, 16), rtol=1e-12)
    np.testing.assert_allclose([ts[0], ts[-1]], [0.2, 1.0], rtol=1e-12)
