"""The fast paths of the ODE log-likelihood (issue 12, item 6) compute the same numbers as the plain ones:
μ and div μ from one linearisation, and particles integrated in chunks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from closed_forms import OU

from pinnflow.dynamics.integrators import ode_with_logp, probability_flow, value_and_divergence
from pinnflow.operators import EXACT, Auto, ForwardLaplacian, Hutchinson

D = 3


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def drift(x, t):
    """A nonlinear, non-gradient drift of one point."""
    A = jnp.asarray(np.random.default_rng(0).normal(size=(D, D)))
    return jnp.tanh(A @ x) * (1 + t) - 0.3 * x * jnp.sum(x**2) + jnp.sin(t) * x[::-1]


@pytest.mark.parametrize("op", [EXACT, Auto(), ForwardLaplacian()])
def test_value_and_divergence_is_the_value_and_the_jacobian_trace(op):
    x, t = jnp.asarray([0.3, -1.2, 0.7]), jnp.asarray(0.4)
    value, div = value_and_divergence(drift, x, t, op)
    np.testing.assert_allclose(value, drift(x, t), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(div, jnp.trace(jax.jacfwd(lambda y: drift(y, t))(x)), rtol=1e-12)


def test_value_and_divergence_of_a_stochastic_backend_uses_its_key():
    x, t, key = jnp.asarray([0.3, -1.2, 0.7]), 0.4, jax.random.key(3)
    op = Hutchinson(2)
    value, div = value_and_divergence(drift, x, t, op, key)
    np.testing.assert_allclose(value, drift(x, t))
    np.testing.assert_allclose(div, op.divergence(lambda y: drift(y, t), x, key))


def _ou_flow():
    rng = np.random.default_rng(1)
    ou = OU(rng.normal(size=D), np.eye(D) * 0.5, 0.8)
    return probability_flow(ou.f, jax.grad(ou.V), 0.8)


@pytest.mark.parametrize("kind", ["drift", "probability_flow"])
def test_chunked_integration_equals_one_pass(kind):
    mu = drift if kind == "drift" else _ou_flow()
    x0 = jnp.asarray(np.random.default_rng(2).normal(size=(37, D)))  # 37 = 4 chunks of 10, the last padded
    logp0 = -0.5 * jnp.sum(x0**2, axis=1)
    whole = ode_with_logp(mu, x0, logp0, 0.0, 1.0, 20)
    chunked = jax.jit(ode_with_logp, static_argnames=("mu", "steps", "op", "chunk"))(
        mu, x0, logp0, 0.0, 1.0, steps=20, chunk=10)
    for a, b in zip(whole, chunked, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_chunked_integration_keeps_each_particles_probe():
    x0 = jnp.asarray(np.random.default_rng(3).normal(size=(23, D)))
    key, op = jax.random.key(4), Hutchinson(1)
    whole = ode_with_logp(drift, x0, jnp.zeros(23), 0.0, 1.0, 10, op=op, key=key)
    chunked = ode_with_logp(drift, x0, jnp.zeros(23), 0.0, 1.0, 10, op=op, key=key, chunk=8)
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
