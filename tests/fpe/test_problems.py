"""Fokker–Planck problems (paper 000): the exact solutions satisfy the FPE (pinnflow's own log_fp residual with
σσᵀ = 2D), their moments solve the moment ODEs, the harmonic-trap entropies are the paper's, and bad input
raises an error that names the problem."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import problems.fokker_planck as F
from pinnflow.fokker_planck import FokkerPlanckProblem
from pinnflow.operators import EXACT
from pinnflow.pde.residuals import log_fp

TIMES = (0.0, 0.37, 0.81)


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def exact_cases():
    return {
        "ou_d2": F.get("ou"),
        "ou_d10": F.get("ou", d=10),
        "harmonic_trap_N5": F.get("harmonic_trap", N=5),
        "quadratic_10d": F.get("quadratic_10d", beta=0.6),
    }


@pytest.fixture(scope="module")
def cases():
    with jax.enable_x64(True):
        return exact_cases()


def test_registry_lists_the_problems():
    assert F.names() == ["active_swimmer", "harmonic_trap", "ou", "quadratic", "quadratic_10d", "quadratic_aniso",
                         "rosenbrock", "soft_spheres", "styblinski_tang"]
    import problems

    assert problems.fokker_planck.get("ou").dim == 2


@pytest.mark.parametrize("case", ["ou_d2", "ou_d10", "harmonic_trap_N5", "quadratic_10d"])
def test_exact_log_density_solves_the_fpe(cases, case):
    """log_fp(log ρ, b, σ) = 0 with σσᵀ = 2D (pinnflow's dX = b dt + σ dW) at random points and times."""
    p = cases[case]
    rng = np.random.default_rng(3)
    times = np.array(TIMES + (0.5 * p.T, p.T))
    ts = np.repeat(times, 3)
    xs = np.stack([np.asarray(p.mean(t)) for t in ts]) + rng.normal(size=(ts.size, p.dim))

    @jax.jit
    @jax.vmap
    def residual(x, t):
        good = log_fp(p.log_rho, p.drift, p.sde_sigma, x, t, EXACT)
        # D instead of 2D (paper 000's √2σ read as pinnflow's σ) must fail: the test can fail
        wrong = log_fp(p.log_rho, p.drift, lambda s: p.sde_sigma(s) / jnp.sqrt(2.0), x, t, EXACT)
        return good, wrong

    good, wrong = (np.asarray(r) for r in residual(jnp.asarray(xs), jnp.asarray(ts)))
    assert np.max(np.abs(good)) <= 1e-6, (case, ts, good)
    assert np.min(np.abs(wrong)) > 1e-3, (case, ts, wrong)


@pytest.mark.parametrize("case", ["ou_d2", "ou_d10", "harmonic_trap_N5", "quadratic_10d"])
def test_moments_solve_the_moment_odes(cases, case):
    """The drift is affine, b(x, t) = A x + f(t): dm/dt = b(m, t), dC/dt = AC + CAᵀ + 2D (central differences)."""
    p = cases[case]
    h = 1e-4
    for t in TIMES[1:] + (p.T,):
        m, C = p.mean(t), p.cov(t)
        A = jax.jacfwd(p.drift)(m, t)
        dm = (p.mean(t + h) - p.mean(t - h)) / (2 * h)
        dC = (p.cov(t + h) - p.cov(t - h)) / (2 * h)
        np.testing.assert_allclose(dm, p.drift(m, t), atol=1e-6, rtol=0)
        np.testing.assert_allclose(dC, A @ C + C @ A.T + 2 * p.D_at(t), atol=1e-6, rtol=0)
        np.testing.assert_allclose(C, C.T, atol=1e-14)
        assert np.linalg.eigvalsh(np.asarray(C)).min() > 0


@pytest.mark.parametrize("case", ["ou_d2", "ou_d10", "harmonic_trap_N5", "quadratic_10d"])
def test_exact_fields_are_consistent(cases, case):
    """score = ∇ log ρ, entropy = ½ log det(2πe C), log ρ is the Gaussian N(mean, cov), t = 0 gives ρ0."""
    p = cases[case]
    x0 = p.sample0(jax.random.key(1), 3)
    for x in x0:
        np.testing.assert_allclose(p.log_rho(x, 0.0), p.log_rho0(x), rtol=1e-12)
        np.testing.assert_allclose(p.score0(x), jax.grad(p.log_rho0)(x), atol=1e-10)
    for t in TIMES + (p.T,):
        m, C = np.asarray(p.mean(t)), np.asarray(p.cov(t))
        for x in x0:
            np.testing.assert_allclose(p.score(x, t), jax.grad(p.log_rho)(x, t), atol=1e-10)
            r = np.asarray(x) - m
            _, logdet = np.linalg.slogdet(C)
            ref = -0.5 * r @ np.linalg.solve(C, r) - 0.5 * (p.dim * np.log(2 * np.pi) + logdet)
            np.testing.assert_allclose(p.log_rho(x, t), ref, rtol=1e-10)
        _, logdet = np.linalg.slogdet(2 * np.pi * np.e * C)
        np.testing.assert_allclose(p.entropy(t), 0.5 * logdet, rtol=1e-12)


def test_probability_flow_with_the_exact_score_transports_the_covariance(cases):
    """v = b − D s with s = −C⁻¹(x − m): J_v C + C J_vᵀ = dC/dt (with b + D s it would be AC + CAᵀ − 2D)."""
    for p in (cases["ou_d2"], cases["harmonic_trap_N5"]):

        @jax.jit
        def parts(t, p=p):
            v, m = p.velocity(p.score), p.mean(t)
            return jax.jacfwd(v)(m, t), jax.jacfwd(p.drift)(m, t), p.cov(t), v(m, t), p.drift(m, t)

        t = 0.6
        J, A, C, v_m, b_m = parts(t)
        np.testing.assert_allclose(J @ C + C @ J.T, A @ C + C @ A.T + 2 * p.D_at(t), atol=1e-10)
        np.testing.assert_allclose(v_m, b_m, atol=1e-12)


def test_harmonic_trap_covariance_agrees_with_the_general_ou_solution():
    """The trap's closed-form covariance = Van Loan's for the same linear part (independent constructions)."""
    N, alpha = 5, 0.5
    trap = F.get("harmonic_trap", N=N, alpha=alpha)
    A = np.asarray(jax.jacfwd(trap.drift)(jnp.zeros(2 * N), 0.0))
    gen = F.get("ou", d=2 * N, Gamma=-A, b=np.zeros(2 * N), D=0.25, m0=np.zeros(2 * N), C0=0.25 * np.eye(2 * N),
                T=5.0)
    for t in (0.3, 2.0, 5.0):
        np.testing.assert_allclose(trap.cov(t), gen.cov(t), atol=1e-12)
    Cd = np.asarray(trap.cov(2.0))[:2, :2]
    np.testing.assert_allclose(trap.info["one_particle_cov"](2.0), Cd, atol=1e-14)


def test_harmonic_trap_entropies_are_the_papers():
    """N = 50, D = 0.25, α = +0.5, var0 = 0.25: S(t) of issue 13 / paper 000 Fig. 1B to 1e-3."""
    p = F.get("harmonic_trap")
    assert p.dim == 100 and p.particles == (50, 2)
    expected = {0.0: 72.579, 1.25: 98.967, 2.5: 104.490, 3.75: 105.964, 5.0: 106.378}
    for t, S in expected.items():
        assert abs(float(p.entropy(t)) - S) <= 1e-3, (t, float(p.entropy(t)), S)
    # the printed attractive sign (−α) would give a different curve: the check can fail
    assert abs(float(F.get("harmonic_trap", alpha=-0.5).entropy(5.0)) - 106.378) > 1.0


def test_sde_sigma_squares_to_twice_D():
    for p in (F.get("ou"), F.get("harmonic_trap", N=3), F.get("active_swimmer")):
        S = jnp.asarray(p.sde_sigma(0.5))
        SS = S**2 * jnp.eye(p.dim) if S.ndim == 0 else S @ S.T
        np.testing.assert_allclose(SS, 2 * p.D_at(0.5), atol=1e-14)
    sw = F.get("active_swimmer")
    np.testing.assert_allclose(sw.D_at(0.0), [[0.0, 0.0], [0.0, 0.1]])
    # a time-dependent, rank-deficient D
    p = FokkerPlanckProblem(
        name="td", dim=2, drift=lambda x, t: -x, D=lambda t: (1.0 + t) * jnp.diag(jnp.array([1.0, 0.0])), T=1.0,
        log_rho0=lambda x: -0.5 * x @ x - jnp.log(2 * jnp.pi), sample0=lambda k, n: jax.random.normal(k, (n, 2)))
    S = p.sde_sigma(0.5)
    np.testing.assert_allclose(S @ S.T, 2 * p.D_at(0.5), atol=1e-14)
    np.testing.assert_allclose(p.velocity(lambda x, t: x)(jnp.ones(2), 0.5), [-2.5, -1.0])


def test_soft_spheres_and_active_swimmer():
    ss = F.get("soft_spheres")
    assert ss.dim == 10 and ss.particles == (5, 2) and ss.log_rho is None
    np.testing.assert_allclose(ss.info["R"], 0.375)
    x = ss.sample0(jax.random.key(0), 1)[0]
    U = ss.info["potential"]
    b, grad_U = jax.jit(lambda x: (ss.drift(x, 0.3), jax.grad(U)(x, 0.3)))(x)
    np.testing.assert_allclose(b, -grad_U, rtol=1e-12, atol=1e-12)
    sw = F.get("active_swimmer")
    np.testing.assert_allclose(sw.drift(jnp.array([2.0, 1.0]), 0.0), [-7.0, -0.1])
    for t in (0.0, 1.0, 6.0):
        mv, vv = sw.info["marginal_v"](t)
        assert float(mv) == 0.0 and abs(float(vv) - 1.0) < 1e-15
    mv, vv = F.get("active_swimmer", var0=0.5).info["marginal_v"](2.0)
    np.testing.assert_allclose(vv, 1.0 - 0.5 * np.exp(-0.4))


def _problem(**over):
    kw = dict(name="mine", dim=2, drift=lambda x, t: -x, D=0.5, T=1.0,
              log_rho0=lambda x: -0.5 * x @ x - jnp.log(2 * jnp.pi),
              sample0=lambda k, n: jax.random.normal(k, (n, 2)))
    kw.update(over)
    return FokkerPlanckProblem(**kw)


@pytest.mark.parametrize("over, match", [
    ({"D": np.array([[1.0, 0.0], [0.0, -0.1]])}, "positive semi-definite"),
    ({"D": -0.1}, "positive semi-definite"),
    ({"D": lambda t: jnp.array([[1.0, 0.0], [0.0, 1.0 - 2 * t]])}, r"positive semi-definite at t = 1.0"),
    ({"D": np.array([[1.0, 0.5], [0.0, 1.0]])}, "symmetric"),
    ({"D": np.eye(3)}, r"scalar or a \(2, 2\) matrix"),
    ({"drift": lambda x, t: jnp.concatenate([x, x])}, r"drift\(x, t\) must return shape \(2,\)"),
    ({"log_rho0": lambda x: jnp.log(-jnp.abs(x[0]) - 1.0)}, "log_rho0 is not finite"),
    ({"sample0": lambda k, n: jax.random.normal(k, (n, 3))}, r"sample0\(key, 2\) must return shape \(2, 2\)"),
    ({"T": 0.0}, "T must be finite and > 0"),
    ({"dim": 0}, "dim must be a positive integer"),
    ({"particles": (3, 2)}, "particles"),
    ({"log_rho": lambda x, t: -x @ x}, r"log_rho\(x, 0\)"),
])
def test_bad_problems_raise_naming_the_problem(over, match):
    with pytest.raises(ValueError, match=match) as err:
        _problem(**over)
    assert "Fokker-Planck problem 'mine'" in str(err.value)


def test_registered_factories_reject_bad_input_naming_the_problem():
    with pytest.raises(ValueError, match=r"Fokker-Planck problem 'ou': .*positive semi-definite"):
        F.get("ou", D=np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match=r"Fokker-Planck problem 'ou': C0 must be positive definite"):
        F.get("ou", C0=-np.eye(2))
    with pytest.raises(ValueError, match=r"Fokker-Planck problem 'harmonic_trap': N"):
        F.get("harmonic_trap", N=0)
    with pytest.raises(ValueError, match=r"Fokker-Planck problem 'harmonic_trap': .*positive semi-definite"):
        F.get("harmonic_trap", D=-0.25)
    with pytest.raises(KeyError, match=r"unknown Fokker-Planck problem 'harmonic'; available: active_swimmer, "
                                       r"harmonic_trap, ou, quadratic, .*soft_spheres"):
        F.get("harmonic")


def test_quadratic_10d_block_a_is_the_corrected_solution(cases):
    """Paper 004 §6.1.2 (errata): Σ_A⁻¹ has eigenvalue 4 along (1, 1), so µ1 = µ2 = 1 − e^{−4t} and
    Σ_A(t) = Σ_A + (3/8)e^{−8t}𝟙𝟙ᵀ (β = 1); the printed f(t) and 1 − e^{−t} are wrong."""
    p = F.get("quadratic_10d")
    for t in (0.1, 0.7, 2.0):
        m, C = np.asarray(p.mean(t)), np.asarray(p.cov(t))
        np.testing.assert_allclose(m[:2], 1 - np.exp(-4 * t), rtol=1e-10)
        np.testing.assert_allclose(C[:2, :2], [[5 / 8, -3 / 8], [-3 / 8, 5 / 8]] + 3 / 8 * np.exp(-8 * t),
                                   rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(m[4:6], [1 - np.exp(-t), 2 * (1 - np.exp(-4 * t))], rtol=1e-10)
        np.testing.assert_allclose(np.diag(C)[4:6], [1.0, (1 + 3 * np.exp(-8 * t)) / 4], rtol=1e-10)
