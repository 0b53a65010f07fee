"""The one-particle moments of a particle system against a large sample of its joint Gaussian law."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnflow.core.precision import precision
from pinnflow.metrics.solutions import empirical_moments, one_particle_cov_error, one_particle_moments


def test_one_particle_moments_match_pooled_samples():
    N, k = 3, 2
    rng = np.random.default_rng(0)
    m = rng.normal(size=N * k)  # particles with different means: the mixture term m_i m_iᵀ matters
    A = rng.normal(size=(N * k, N * k))
    C = A @ A.T / (N * k) + 0.1 * np.eye(N * k)
    with precision("float64"):
        X = jax.random.multivariate_normal(jax.random.PRNGKey(0), jnp.asarray(m), jnp.asarray(C), (400_000,))
        mean, cov = one_particle_moments(jnp.asarray(m), jnp.asarray(C), (N, k))
        pooled_mean, pooled_cov = empirical_moments(X.reshape(-1, k))
        np.testing.assert_allclose(mean, pooled_mean, atol=5e-3)
        np.testing.assert_allclose(cov, pooled_cov, atol=1e-2)
        assert float(one_particle_cov_error(X, jnp.asarray(m), jnp.asarray(C), (N, k))) < 1e-2
        # a wrong covariance is seen
        assert float(one_particle_cov_error(X, jnp.asarray(m), 1.2 * jnp.asarray(C), (N, k))) > 0.05


def test_density_grid_and_l2():
    import jax
    import jax.numpy as jnp
    import numpy as np

    from pinnflow.metrics.density import box_grid, kde_l2_error, l2_distance

    at, cell = box_grid([-1.0, 0.0], [1.0, 4.0], 4)
    assert at.shape == (16, 2) and cell == pytest.approx(0.5)
    np.testing.assert_allclose(at[0], [-0.75, 0.5])
    assert float(l2_distance(jnp.ones(3), jnp.ones(3), 0.1)) == 0.0
    # the KDE of N(0, 1) samples with bandwidth h is N(0, 1 + h²) in expectation: compare with the closed form
    grid, c = box_grid([-8.0], [8.0], 800)
    X = jax.random.normal(jax.random.PRNGKey(0), (20000, 1))
    h = 0.3
    smoothed = np.exp(-0.5 * grid[:, 0] ** 2 / (1 + h**2)) / np.sqrt(2 * np.pi * (1 + h**2))
    assert float(kde_l2_error(X, jnp.asarray(grid), jnp.asarray(smoothed), c, bandwidth=h)) < 0.01
    exact = np.exp(-0.5 * grid[:, 0] ** 2) / np.sqrt(2 * np.pi)
    assert float(kde_l2_error(X, jnp.asarray(grid), jnp.asarray(exact), c, bandwidth=h)) > 0.02
