"""The PDE residuals vanish on closed-form solutions (float64, 1e-8 relative) and move by the exact,
predicted amount when a drift or potential is perturbed, so these tests can fail."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from closed_forms import OU, VP, McCann, QuadraticBridge, random_spd

from pinnflow.operators import BACKENDS, EXACT, Hutchinson
from pinnflow.pde import residuals as R

D = 4
TIMES = (0.0, 0.3, 0.9)


@pytest.fixture(params=["exact", "forward_laplacian"])
def op(request):
    """Every closed-form and perturbation test runs with every exact operator backend."""
    return BACKENDS.get(request.param)


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def points(seed=0, n=5, d=D):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(n, d)) * 1.5)


def assert_vanishes(res, scale):
    """|R| ≤ 1e-8 · scale, where scale is the size of the terms that cancel."""
    res, scale = np.asarray(res), np.asarray(scale)
    assert np.all(np.abs(res) <= 1e-8 * np.maximum(scale, 1.0)), (res, scale)


def ou_case(S_kind):
    rng = np.random.default_rng(1)
    C0, Q = random_spd(rng, D)
    m0 = rng.normal(size=D)
    S = np.sqrt(2.0) if S_kind == "scalar" else np.sqrt(2.0) * (Q @ np.diag([1.0, 0.7, 1.2, 0.9]) @ Q.T)
    return OU(m0, C0, S)


@pytest.mark.parametrize("S_kind", ["scalar", "matrix"])
def test_log_fp_ou(S_kind, op):
    ou = ou_case(S_kind)
    for t in TIMES:
        for x in points():
            r = R.log_fp(ou.V, ou.f, ou.S, x, t, op=op)
            gV = jax.grad(ou.V)(x, t)
            assert_vanishes(r, abs(gV @ x) + D)


@pytest.mark.parametrize("S_kind", ["scalar", "matrix"])
def test_log_ce_probability_flow_ou(S_kind, op):
    ou = ou_case(S_kind)

    def mu(x, t):  # probability-flow drift, paper 003 eq. (66)
        return ou.f(x, t) - 0.5 * ou.D @ jax.grad(ou.V)(x, t)

    for t in TIMES:
        for x in points(2):
            assert_vanishes(R.log_ce(ou.V, mu, x, t, op=op), abs(jax.grad(ou.V)(x, t) @ mu(x, t)) + D)


@pytest.mark.parametrize("S_kind", ["scalar", "matrix"])
def test_score_time_reversed_ou(S_kind, op):
    ou, T = ou_case(S_kind), 1.3

    def V_rev(x, t):  # log-density of the OU process at time T − t (paper 003, eqs. 15–17)
        return ou.V(x, T - t)

    for t in TIMES:
        for x in points(3):
            assert_vanishes(R.score(V_rev, ou.f, ou.S, x, t, op=op), abs(jax.grad(V_rev)(x, t) @ x) + D)
            # eq. (15) is eq. (7) with μ = σσᵀ∇V − f
            mu = lambda y, s: ou.D @ jax.grad(V_rev)(y, s) - ou.f(y, s)  # noqa: E731
            np.testing.assert_allclose(R.log_fp(V_rev, mu, ou.S, x, t, op=op), R.score(V_rev, ou.f, ou.S, x, t, op=op),
                                       atol=1e-10)


@pytest.mark.parametrize("S_kind", ["scalar", "matrix"])
def test_score_fp_ou(S_kind, op):
    ou = ou_case(S_kind)
    s = jax.grad(ou.V)
    for t in TIMES:
        for x in points(4):
            r = R.score_fp(s, ou.f, ou.S, x, t, op=op)
            assert r.shape == (D,)
            assert_vanishes(r, np.abs(s(x, t)).max() * np.abs(x).max() + D)


def test_log_fp_time_dependent_sigma(op):
    rng = np.random.default_rng(5)
    C0, _ = random_spd(rng, D)
    vp = VP(rng.normal(size=D), C0)
    for t in TIMES:
        for x in points(6):
            r = R.log_fp(vp.V, vp.f, vp.sigma, x, t, op=op)
            assert_vanishes(r, abs(jax.grad(vp.V)(x, t) @ vp.f(x, t)) + D)
            assert_vanishes(R.score_fp(jax.grad(vp.V), vp.f, vp.sigma, x, t, op=op), 10.0)


def mccann_case():
    rng = np.random.default_rng(7)
    C0, _ = random_spd(rng, D, 0.5, 1.5)
    C1, _ = random_spd(rng, D, 0.2, 3.0)
    return McCann(rng.normal(size=D), C0, rng.normal(size=D) + 2.0, C1)


def test_hjb_and_log_ce_optimal_transport(op):
    ot = mccann_case()
    mu = jax.grad(ot.Phi)
    for t in (0.0, 0.4, 1.0):
        for x in points(8):
            g = mu(x, t)
            assert_vanishes(R.hjb(ot.Phi, 0, x, t, op=op), g @ g)
            assert_vanishes(R.log_ce(ot.V, mu, x, t, op=op), abs(jax.grad(ot.V)(x, t) @ g) + D)


@pytest.mark.parametrize("S_kind", ["scalar", "matrix"])
def test_hjb_and_log_fp_schrodinger_type_bridge(S_kind, op):
    rng = np.random.default_rng(9)
    Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    s = np.full(D, 0.8) if S_kind == "scalar" else np.array([0.5, 0.8, 1.1, 0.3])
    br = QuadraticBridge(Q, p=[0.5, -0.3, 1.2, 0.1], c=[1.0, 0.6, 0.4, 2.0], s=s, m0=rng.normal(size=D))
    S = 0.8 if S_kind == "scalar" else br.S
    mu = jax.grad(br.Phi)
    for t in (0.0, 0.5, 1.0):
        for x in points(10):
            g = mu(x, t)
            assert_vanishes(R.hjb(br.Phi, S, x, t, op=op), g @ g + 1)
            assert_vanishes(R.log_fp(br.V, mu, S, x, t, op=op), abs(jax.grad(br.V)(x, t) @ g) + D)


# --- perturbations: the residuals react by exactly the predicted amount -------------------------------

def test_perturbed_drift_changes_log_fp_and_log_ce_by_the_predicted_amount(op):
    ou = ou_case("matrix")
    rng = np.random.default_rng(11)
    c, W = jnp.asarray(rng.normal(size=D)), jnp.asarray(rng.normal(size=(D, D)))
    # δ(x) = c + W x: the residual is linear in μ, so it changes by div δ + ∇V·δ = tr W + ∇V·(c + W x)
    mu = lambda x, t: ou.f(x, t) + c + W @ x  # noqa: E731
    for t in TIMES:
        for x in points(12):
            expected = jnp.trace(W) + jax.grad(ou.V)(x, t) @ (c + W @ x)
            np.testing.assert_allclose(R.log_fp(ou.V, mu, ou.S, x, t, op=op), expected, rtol=1e-8, atol=1e-10)
            assert abs(expected) > 1e-2


def test_perturbed_potential_changes_hjb_by_the_predicted_amount(op):
    ot = mccann_case()
    a = jnp.array([0.3, -0.2, 0.5, 0.1])
    Phi = lambda x, t: ot.Phi(x, t) + a @ x  # noqa: E731
    for x in points(13):
        expected = a @ jax.grad(ot.Phi)(x, 0.5) + 0.5 * a @ a
        np.testing.assert_allclose(R.hjb(Phi, 0, x, 0.5, op=op), expected, rtol=1e-8, atol=1e-12)


def test_perturbed_f_changes_score_and_score_fp_by_the_predicted_amount(op):
    ou, T = ou_case("scalar"), 1.3
    V_rev = lambda x, t: ou.V(x, T - t)  # noqa: E731
    c = jnp.array([0.4, -0.1, 0.2, 0.3])
    f_pert = lambda x, t: ou.f(x, t) + c  # noqa: E731
    s = jax.grad(ou.V)
    for x in points(14):
        np.testing.assert_allclose(R.score(V_rev, f_pert, ou.S, x, 0.2, op=op), -jax.grad(V_rev)(x, 0.2) @ c,
                                   rtol=1e-8, atol=1e-12)
        J_s = jax.jacfwd(s)(x, 0.2)
        np.testing.assert_allclose(R.score_fp(s, f_pert, ou.S, x, 0.2, op=op), J_s.T @ c, rtol=1e-8, atol=1e-12)


def test_score_fp_is_the_gradient_of_log_fp_for_a_non_gaussian_field(op):
    """score_fp(∇V) = ∇_x log_fp(V) for any smooth V and f (the defining identity, eq. 31–32)."""
    W = jnp.asarray(np.random.default_rng(15).normal(size=(D, D))) * 0.5
    V = lambda x, t: -jnp.sum(jnp.log(jnp.cosh(W @ x + t))) - 0.1 * t * x @ x  # noqa: E731
    f = lambda x, t: jnp.tanh(W.T @ x) * (1 + t) - x  # noqa: E731
    S = jnp.asarray(np.random.default_rng(16).normal(size=(D, D)))
    for x in points(17):
        lhs = R.score_fp(jax.grad(V), f, S, x, 0.4, op=op)
        rhs = jax.grad(lambda y: R.log_fp(V, f, S, y, 0.4, op=op))(x)
        np.testing.assert_allclose(lhs, rhs, rtol=1e-8, atol=1e-10)


# --- Hutchinson agrees with exact in expectation ------------------------------------------------------

N_KEYS = 3000


def _stat_check(samples, exact):
    """Sample mean within 5 standard errors of the exact value."""
    samples = np.asarray(samples)
    se = samples.std(axis=0) / np.sqrt(samples.shape[0])
    assert np.all(np.abs(samples.mean(axis=0) - exact) <= 5 * se + 1e-12), (samples.mean(0), exact, se)


@pytest.mark.parametrize("name", ["log_fp", "log_ce", "score", "hjb", "score_fp"])
def test_hutchinson_residuals_are_unbiased(name):
    ou, ot = ou_case("matrix"), mccann_case()
    c = jnp.array([0.4, -0.1, 0.2, 0.3])
    mu = lambda x, t: ou.f(x, t) + c  # noqa: E731  (non-zero residual)
    calls = {
        "log_fp": lambda op, k, x: R.log_fp(ou.V, mu, ou.S, x, 0.3, op, k),
        "log_ce": lambda op, k, x: R.log_ce(ou.V, mu, x, 0.3, op, k),
        "score": lambda op, k, x: R.score(ou.V, mu, ou.S, x, 0.3, op, k),
        "hjb": lambda op, k, x: R.hjb(ot.Phi, ou.S, x, 0.3, op, k),
        "score_fp": lambda op, k, x: R.score_fp(jax.grad(ou.V), mu, ou.S, x, 0.3, op, k),
    }
    x = points(18)[0]
    exact = calls[name](EXACT, None, x)
    keys = jax.random.split(jax.random.key(0), N_KEYS)
    hut = jax.vmap(lambda k: calls[name](Hutchinson(2), k, x))(keys)
    assert np.std(np.asarray(hut)) > 0  # genuinely stochastic
    _stat_check(hut, exact)


def test_unbiased_square_removes_the_bias_of_a_squared_stochastic_residual():
    ou = ou_case("matrix")
    c = jnp.array([0.4, -0.1, 0.2, 0.3])
    mu = lambda x, t: ou.f(x, t) + c  # noqa: E731
    x = points(19)[0]
    res = lambda k: R.log_fp(ou.V, mu, ou.S, x, 0.3, Hutchinson(1), k)  # noqa: E731
    exact_sq = R.log_fp(ou.V, mu, ou.S, x, 0.3) ** 2
    keys = jax.random.split(jax.random.key(1), 20000)
    from pinnflow.operators import unbiased_square

    unbiased = jax.vmap(lambda k: unbiased_square(res, k))(keys)
    naive = jax.vmap(lambda k: res(k) ** 2)(keys)
    _stat_check(unbiased, exact_sq)
    var = np.var(np.asarray(jax.vmap(res)(keys)))
    assert var > 0.05 * float(exact_sq)  # the bias is not negligible here ...
    assert np.mean(np.asarray(naive)) - exact_sq > 0.5 * var  # ... and the naive square carries it


def test_score_fp_transposes_for_a_non_conservative_field():
    """For any s (not only gradients), J_sᵀf + J_fᵀs = ∇(s·f) and J_sᵀDs = ∇(½sᵀDs), so
    score_fp(s) = ∂_t s + ∇[div f + s·f − ½sᵀDs − ½div(Ds)] — this pins the transposes (paper 002 erratum)."""
    rng = np.random.default_rng(20)
    A, W = (jnp.asarray(rng.normal(size=(D, D))) for _ in range(2))
    S = jnp.asarray(rng.normal(size=(D, D)))
    Dm = S @ S.T
    s = lambda x, t: jnp.tanh(A @ x) * (1 + t) + jnp.sin(x[::-1])  # noqa: E731  (curl ≠ 0)
    f = lambda x, t: jnp.tanh(W @ x) - t * x  # noqa: E731
    t = 0.7

    def scalar_part(y):
        div = lambda g: jnp.trace(jax.jacfwd(g)(y))  # noqa: E731
        sy = s(y, t)
        return (div(lambda z: f(z, t)) + sy @ f(y, t) - 0.5 * sy @ Dm @ sy
                - 0.5 * div(lambda z: Dm @ s(z, t)))

    for x in points(21):
        assert not np.allclose(jax.jacfwd(s)(x, t), jax.jacfwd(s)(x, t).T)
        expected = jax.jacfwd(s, argnums=1)(x, t) + jax.grad(scalar_part)(x)
        np.testing.assert_allclose(R.score_fp(s, f, S, x, t), expected, rtol=1e-8, atol=1e-10)
