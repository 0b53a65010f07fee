"""Normalizing flows (paper 004 §4.1): exact log-determinants against the Jacobian, the invertibility
reparametrisation of planar layers, identity initialisation, and errors for invalid user parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnflow.core.config import ConfigError
from pinnflow.core.precision import precision
from pinnflow.nn.flows import AffineFlow, FlowConfig, PlanarFlow, affine_params, make_flow, planar_params


def _random_planar(d, K, key, scale=1.5):
    kw, ku, kb = jax.random.split(key, 3)
    return {"w": scale * jax.random.normal(kw, (K, d)), "u": scale * jax.random.normal(ku, (K, d)),
            "b": jax.random.normal(kb, (K,))}


@pytest.mark.parametrize("d", [1, 3, 5])
def test_planar_logdet_matches_the_jacobian_determinant_float64(d):
    with precision("float64"):
        flow = PlanarFlow(d, layers=8)
        params = _random_planar(d, 8, jax.random.PRNGKey(d))
        xs = 1.5 * jax.random.normal(jax.random.PRNGKey(10 + d), (6, d))
        for x in xs:
            y, logdet = flow.apply(params, x)
            J = jax.jacfwd(lambda v: flow.apply(params, v)[0])(x)
            sign, ref = jnp.linalg.slogdet(J)
            assert sign > 0  # invertible and orientation-preserving, as the reparametrisation promises
            assert abs(float(logdet - ref)) <= 1e-8
        # the printed eq. (39) (output instead of input, no b_k) gives a different number: the test can fail
        assert float(jnp.max(jnp.abs(jax.vmap(lambda v: flow.apply(params, v)[1])(xs)))) > 1e-3


def test_affine_logdet_and_identity_inits():
    with precision("float64"):
        A = jnp.array([[2.0, 0.5, 0.0], [0.1, -1.0, 0.3], [0.0, 0.2, 0.7]])
        params = affine_params(A, [1.0, 2.0, 3.0])
        flow = AffineFlow(3)
        y, logdet = flow.apply(params, jnp.ones(3))
        np.testing.assert_allclose(y, A @ jnp.ones(3) + jnp.array([1.0, 2.0, 3.0]), atol=1e-14)
        assert abs(float(logdet) - np.log(abs(np.linalg.det(np.asarray(A))))) < 1e-12
        x = jnp.array([0.3, -1.2, 2.0])
        for fl in (flow, PlanarFlow(3, layers=5)):
            p = fl.init(jax.random.PRNGKey(0))
            y, logdet = fl.apply(p, x)
            np.testing.assert_allclose(y, x, atol=1e-12)
            assert abs(float(logdet)) < 1e-12
        assert float(jnp.max(jnp.abs(PlanarFlow(3, layers=5).init(jax.random.PRNGKey(0))["w"]))) > 0  # trainable


def test_planar_reparametrisation_round_trip_and_constraint():
    with precision("float64"):
        flow = PlanarFlow(4, layers=6)
        raw = _random_planar(4, 6, jax.random.PRNGKey(3), scale=3.0)
        layers = flow.layer_params(raw)
        assert np.all(layers["wu"] > -1.0)  # every free u gives an invertible layer
        back = flow.layer_params(planar_params(layers["w"], layers["u_hat"], layers["b"]))
        np.testing.assert_allclose(back["u_hat"], layers["u_hat"], rtol=1e-9, atol=1e-9)
    w = np.array([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="planar layer 1 is not invertible"):
        planar_params(w, np.array([[0.5, 0.0], [0.0, -1.5]]), np.zeros(2))
    with pytest.raises(ValueError, match="singular"):
        affine_params(np.array([[1.0, 2.0], [2.0, 4.0]]), np.zeros(2))
    with pytest.raises(ValueError, match="shape"):
        flow.check({"w": np.zeros((6, 3)), "u": np.zeros((6, 4)), "b": np.zeros(6)})


def test_flow_config_names_the_choices():
    with pytest.raises(ConfigError, match="available: affine, planar"):
        FlowConfig(kind="realnvp").validate()
    assert isinstance(make_flow(2, FlowConfig(kind="affine")), AffineFlow)
