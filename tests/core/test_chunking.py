"""Chunked accumulation of a mean loss's value and gradient (pinnflow.core.chunking) against one vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnflow as pf
from pinnflow.core.chunking import auto_chunk, mean_value_and_grad, resolve_chunk
from pinnflow.core.config import ConfigError


def _terms(params, x, y):
    r = jnp.tanh(x @ params["W"]) @ params["v"] - y
    return {"fit": r**2, "reg": jnp.sum(params["W"] ** 2) * x[0] ** 2}


def _weights(terms):
    return {"fit": 1.0, "reg": 0.3}


@pytest.mark.parametrize("chunk", [None, 1, 7, 16, 50, 64])
def test_chunks_match_one_vmap_and_the_closed_form_mean(chunk):
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(0), 4)
    params = {"W": jax.random.normal(k1, (3, 5)), "v": jax.random.normal(k2, (5,))}
    x, y = jax.random.normal(k3, (50, 3)), jax.random.normal(k4, (50,))

    def loss(p):  # the definition: Σ_k w_k mean_i t_k
        t = jax.vmap(_terms, in_axes=(None, 0, 0))(p, x, y)
        return jnp.mean(t["fit"]) + 0.3 * jnp.mean(t["reg"])

    want, g_want = jax.value_and_grad(loss)(params)
    (total, means), g = jax.jit(lambda p: mean_value_and_grad(_terms, _weights, p, (x, y), chunk))(params)
    np.testing.assert_allclose(total, want, rtol=1e-6)
    np.testing.assert_allclose(means["reg"], jnp.sum(params["W"] ** 2) * jnp.mean(x[:, 0] ** 2), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_auto_chunks_only_on_one_cpu_device():
    assert resolve_chunk("auto", 50, 1, "cpu") == auto_chunk(50) == 40
    assert auto_chunk(2) == 64 and auto_chunk(1000) == 16
    assert resolve_chunk("auto", 2, 2, "cpu") is None  # a scan would serialise a sharded batch
    assert resolve_chunk("auto", 2, 1, "gpu") is None
    assert resolve_chunk(8, 2, 4, "gpu") == 8 and resolve_chunk(None, 2) is None


@pytest.mark.parametrize("bad", [0, -3, "fast", 2.5, True])
def test_bad_point_chunk_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="optim.point_chunk"):
        pf.Config(optim={"point_chunk": bad}).validate()
