"""Operators against dense reference derivatives (jax.hessian / jacfwd) on a non-trivial field."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnflow.operators import EXACT, Exact, Hutchinson, grad, time_derivative

D = 5


@pytest.fixture(autouse=True)
def x64():
    global X
    with jax.enable_x64(True):
        X = jnp.asarray(X0)
        yield


rng = np.random.default_rng(0)
W1 = rng.normal(size=(8, D))
W2 = rng.normal(size=(D, 8))


def scalar(x):
    return jnp.sum(jnp.tanh(jnp.asarray(W1) @ x) ** 2) + jnp.sin(x[0] * x[1])


def vector(x):
    return jnp.asarray(W2) @ jnp.tanh(jnp.asarray(W1) @ x) + x**3


X0 = rng.normal(size=D)


def test_exact_operators_match_dense_derivatives():
    H = jax.hessian(scalar)(X)
    A = jnp.asarray(rng.normal(size=(D, D)))
    np.testing.assert_allclose(grad(scalar, X), jax.grad(scalar)(X), rtol=1e-12)
    np.testing.assert_allclose(EXACT.divergence(vector, X), jnp.trace(jax.jacfwd(vector)(X)), rtol=1e-12)
    np.testing.assert_allclose(EXACT.laplacian(scalar, X), jnp.trace(H), rtol=1e-12)
    np.testing.assert_allclose(EXACT.weighted_trace(scalar, A, X), jnp.trace(A @ H), rtol=1e-12)


def test_time_derivative():
    f = lambda x, t: jnp.sin(3 * t) * x  # noqa: E731
    np.testing.assert_allclose(time_derivative(f, X, 0.2), 3 * jnp.cos(0.6) * X, rtol=1e-12)


def test_hutchinson_is_unbiased_and_exact_with_many_probes_on_the_diagonal():
    A = jnp.asarray(rng.normal(size=(D, D)))
    H = jax.hessian(scalar)(X)
    keys = jax.random.split(jax.random.key(3), 4000)
    for fn, exact in [
        (lambda k: Hutchinson(1).divergence(vector, X, k), jnp.trace(jax.jacfwd(vector)(X))),
        (lambda k: Hutchinson(1).laplacian(scalar, X, k), jnp.trace(H)),
        (lambda k: Hutchinson(1).weighted_trace(scalar, A, X, k), jnp.trace(A @ H)),
    ]:
        est = np.asarray(jax.vmap(fn)(keys))
        assert est.std() > 0
        assert abs(est.mean() - exact) < 5 * est.std() / np.sqrt(est.size)
    # Rademacher probes are exact on a diagonal matrix
    diag = lambda x: jnp.sum(jnp.arange(1.0, D + 1) * x**2)  # noqa: E731
    assert np.isclose(Hutchinson(3).laplacian(diag, X, jax.random.key(0)), 2 * D * (D + 1) / 2)


def test_backend_errors():
    with pytest.raises(ValueError, match="PRNG key"):
        Hutchinson(2).laplacian(scalar, X)
    with pytest.raises(ValueError, match="num_probes"):
        Hutchinson(0)
    assert not Exact().stochastic and Hutchinson().stochastic
