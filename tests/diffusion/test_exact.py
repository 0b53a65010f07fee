"""Paper 002's parts against closed forms: the exact perturbed log-density of Gaussian / Gaussian-mixture data has
zero log-FP and score-FP residual, DSM at the exact score equals its analytic minimum (and the excess of another
score is its score-matching loss), the probability-flow ODE and reverse SDE map Gaussian data exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import problems.datasets as datasets
from pinnflow.core.precision import precision
from pinnflow.diffusion.exact import gaussian_dsm_minimum, mixture_log_density
from pinnflow.diffusion.losses import REGULARISERS, WEIGHTINGS, Fields, dsm_point
from pinnflow.diffusion.samplers import sample, time_grid
from pinnflow.diffusion.sdes import SDES


def _exact_fields(ds, sde):
    u = mixture_log_density(ds.info["mixture"], sde)
    return Fields(u, jax.grad(u))


@pytest.mark.parametrize(("sde_name", "data"), [("ou", "mixture"), ("ou", "gaussian"), ("vp", "mixture"),
                                                ("ve", "mixture")])
def test_exact_log_density_has_zero_fokker_planck_residuals(sde_name, data):
    with precision("float64"):
        sde = SDES.get(sde_name)
        ds = datasets.get(data)
        fields = _exact_fields(ds, sde)
        key = jax.random.PRNGKey(0)
        x = jax.random.uniform(key, (64, 2), minval=-3.5, maxval=3.5)
        t = jnp.linspace(0.02, 1.0, 64) * sde.T
        wrong = Fields(lambda a, b: fields.potential(a, 1.1 * b), None)  # the solution at the wrong time

        @jax.jit
        def residuals(x, t):
            point = lambda f, name: jax.vmap(lambda a, b: REGULARISERS.get(name)(f, sde, a, b))(x, t)  # noqa: E731
            return point(fields, "log_fp"), point(fields, "score_fp"), point(wrong, "log_fp")

        log_fp, score_fp, log_fp_wrong = (float(jnp.max(jnp.sqrt(r))) for r in residuals(x, t))
        assert log_fp <= 1e-6 and score_fp <= 1e-6, (log_fp, score_fp)
        assert log_fp_wrong > 1e-3


def test_dsm_at_the_exact_score_is_its_analytic_minimum_and_the_excess_is_score_matching():
    with precision("float64"):
        sde = SDES.get("ou")
        c, m = 0.25, jnp.array([0.5, -0.5])
        ds = datasets.get("gaussian", mean=(0.5, -0.5), std=c**0.5)
        fields = _exact_fields(ds, sde)
        lam = WEIGHTINGS.get("likelihood")
        n, t_lo, t_hi = 100_000, 0.05, sde.T
        k0, kt, ke = jax.random.split(jax.random.PRNGKey(1), 3)
        x0 = m + c**0.5 * jax.random.normal(k0, (n, 2))
        t = jax.random.uniform(kt, (n,), minval=t_lo, maxval=t_hi)
        eps = jax.random.normal(ke, (n, 2))
        per = jax.vmap(lambda a, b, e: dsm_point(fields.score, sde, lam, a, b, e))(x0, t, eps)
        exact = gaussian_dsm_minimum(c, 2, sde, lam, t_lo, t_hi)
        se = float(jnp.std(per)) / n**0.5
        assert abs(float(jnp.mean(per)) - exact) < 4 * se, (float(jnp.mean(per)), exact, se)
        # another score: DSM excess = E‖s − ∇log p_t‖² (eq. 4 vs eq. 5, up to Monte Carlo error)
        bias = jnp.array([0.3, -0.2])
        other = lambda x, tt: fields.score(x, tt) + bias  # noqa: E731
        per2 = jax.vmap(lambda a, b, e: dsm_point(other, sde, lam, a, b, e))(x0, t, eps)
        excess = float(jnp.mean(per2 - per))
        assert abs(excess - float(bias @ bias)) < 4 * float(jnp.std(per2 - per)) / n**0.5
        assert excess > 0.5 * float(bias @ bias)


def test_probability_flow_ode_and_reverse_sde_map_gaussian_data_exactly():
    with precision("float64"):
        sde = SDES.get("ou")
        c, m = 0.09, np.array([0.5, -0.5])
        ds = datasets.get("gaussian", mean=tuple(m), std=c**0.5)
        score = _exact_fields(ds, sde).score
        ts = time_grid(sde.T, 0.0, 4000, fine_final=40)
        # the ODE map is affine: push the prior's mean and one standard deviation along each axis
        s0 = sde.prior_std
        x_T = np.array([[0.0, 0.0], [s0, 0.0], [0.0, s0]])
        y = sample("ode", score, sde, 3, 2, jax.random.PRNGKey(0), ts, x_T=x_T)
        assert np.max(np.abs(y[0] - m)) <= 1e-3, y[0]
        assert np.max(np.abs(np.linalg.norm(y[1:] - y[0], axis=1) - c**0.5)) <= 1e-3, y
        # the reverse SDE: moments of 40k samples within Monte Carlo error
        n = 20_000
        z = sample("sde", score, sde, n, 2, jax.random.PRNGKey(3), time_grid(sde.T, 0.0, 400, 10))
        se_mean, se_std = (c / n) ** 0.5, (c / (2 * n)) ** 0.5
        assert np.all(np.abs(z.mean(0) - m) < 4 * se_mean + 2e-3), z.mean(0)
        assert np.all(np.abs(z.std(0) - c**0.5) < 4 * se_std + 2e-3), z.std(0)
